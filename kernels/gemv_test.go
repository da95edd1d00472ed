package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// forEachKernel runs f once per kernel set this CPU supports ("go" first),
// restoring the default afterwards.
func forEachKernel(t *testing.T, f func(t *testing.T)) {
	defer SetPureGo(false)
	for _, name := range kernelNames() {
		if !useKernels(name) {
			t.Fatalf("kernel set %q listed but not selectable", name)
		}
		t.Run(name, f)
	}
}

// offsetMat makes a rows×cols matrix of random normal values whose storage
// starts off elements into a larger slice, and returns the decoded values.
func offsetMat(r *rand.Rand, dt DType, rows, cols, off int) (Mat, []float32) {
	m := Mat{Rows: rows, Cols: cols, DType: dt}
	vals := make([]float32, rows*cols)
	var buf16 []uint16
	var buf32 []float32
	if dt == F32 {
		buf32 = make([]float32, off+rows*cols+3)
		m.f32 = buf32[off : off+rows*cols]
	} else {
		buf16 = make([]uint16, off+rows*cols+3)
		m.u16 = buf16[off : off+rows*cols]
	}
	for i := range vals {
		v := float32(r.NormFloat64())
		switch dt {
		case F32:
			m.f32[i] = v
		case F16:
			m.u16[i] = f32ToF16(v)
			v = HalfToFloat(m.u16[i])
		case BF16:
			m.u16[i] = uint16(math.Float32bits(v) >> 16)
			v = math.Float32frombits(uint32(m.u16[i]) << 16)
		}
		vals[i] = v
	}
	// Poison the storage around the matrix: it must never be read.
	for i := 0; i < off; i++ {
		if buf32 != nil {
			buf32[i] = float32(math.NaN())
		} else {
			buf16[i] = 0x7e00 // NaN in f16 and bf16
		}
	}
	if buf32 != nil {
		for i := off + rows*cols; i < len(buf32); i++ {
			buf32[i] = float32(math.NaN())
		}
	} else {
		for i := off + rows*cols; i < len(buf16); i++ {
			buf16[i] = 0x7e00
		}
	}
	return m, vals
}

func randVec(r *rand.Rand, n, off int) []float32 {
	buf := make([]float32, off+n)
	for i := range buf {
		buf[i] = float32(r.NormFloat64())
	}
	return buf[off:]
}

// checkDot compares got with the exact dot of row and x, allowing the error
// of a reordered f32 sum: relative 1e-5 of the sum of |products|.
func checkDot(got float32, row, x []float32) error {
	var want, mag float64
	for j := range row {
		p := float64(row[j]) * float64(x[j])
		want += p
		mag += math.Abs(p)
	}
	if !(math.Abs(float64(got)-want) <= 1e-5*mag+1e-30) {
		return fmt.Errorf("got %v, want %v (sum |products| %v)", got, want, mag)
	}
	return nil
}

func TestGEMVRowsMatchReference(t *testing.T) {
	type shape struct{ rows, cols int }
	var shapes []shape
	for c := 1; c <= 70; c++ {
		shapes = append(shapes, shape{1 + c%9, c})
	}
	for _, c := range []int{96, 127, 128, 129, 255, 256, 257, 1000, 2049} {
		shapes = append(shapes, shape{7, c}, shape{13, c})
	}
	for _, c := range []int{1, 15, 17, 33, 70, 257} {
		for _, rows := range []int{16, 23, 45, 70} {
			shapes = append(shapes, shape{rows, c})
		}
	}
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(3, 4))
		for _, dt := range []DType{F32, F16, BF16} {
			for _, sh := range shapes {
				for _, off := range []int{0, 1, 3} {
					m, vals := offsetMat(r, dt, sh.rows, sh.cols, off)
					x := randVec(r, sh.cols, off)
					y := make([]float32, sh.rows)
					start := r.IntN(sh.rows)
					end := start + r.IntN(sh.rows-start+1)
					if off == 0 {
						start, end = 0, sh.rows
					}
					for i := range y {
						y[i] = float32(math.NaN())
					}
					m.gemvRows(y, x, start, end)
					for i := range y {
						if i < start || i >= end {
							if !math.IsNaN(float64(y[i])) {
								t.Fatalf("%v %dx%d [%d,%d): wrote y[%d] outside the range", dt, sh.rows, sh.cols, start, end, i)
							}
							continue
						}
						if err := checkDot(y[i], vals[i*sh.cols:(i+1)*sh.cols], x); err != nil {
							t.Fatalf("%v %dx%d off %d [%d,%d): y[%d]: %v", dt, sh.rows, sh.cols, off, start, end, i, err)
						}
						if err := checkDot(m.dotRow(i, x), vals[i*sh.cols:(i+1)*sh.cols], x); err != nil {
							t.Fatalf("%v %dx%d off %d: dotRow(%d): %v", dt, sh.rows, sh.cols, off, i, err)
						}
					}
				}
			}
		}
	})
}

func TestDotMatchesReference(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(5, 6))
		lens := []int{0, 1000, 1023, 1024, 1025, 4099}
		for n := 1; n <= 200; n++ {
			lens = append(lens, n)
		}
		for _, n := range lens {
			for _, off := range []int{0, 1} {
				a := randVec(r, n, off)
				// b is longer than a: only b[:len(a)] may count.
				b := randVec(r, n+5, 1-off)
				b[n] = float32(math.NaN())
				got := Dot(a, b)
				if n == 0 && got != 0 {
					t.Fatalf("Dot of empty = %v", got)
				}
				if err := checkDot(got, a, b[:n]); err != nil {
					t.Fatalf("n=%d off=%d: %v", n, off, err)
				}
			}
		}
	})
}

func TestExecProductsAllKernels(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(7, 8))
		for _, threads := range []int{1, 2} {
			pool := NewPool(threads)
			for _, dt := range []DType{F32, F16, BF16} {
				// 37×5000 f32 makes gemmRows split rows into 4-row blocks.
				for _, sh := range [][2]int{{1, 3}, {9, 17}, {37, 5000}, {130, 333}} {
					rows, cols := sh[0], sh[1]
					m, vals := offsetMat(r, dt, rows, cols, 1)
					e := NewExec(pool, cols)
					for _, n := range []int{1, 2, 3, 5} {
						x := randVec(r, n*cols, 0)
						y := make([]float32, n*rows)
						for i := range y {
							y[i] = float32(math.NaN())
						}
						e.MatMul(y, m, x, n)
						for b := range n {
							for i := range rows {
								if err := checkDot(y[b*rows+i], vals[i*cols:(i+1)*cols], x[b*cols:(b+1)*cols]); err != nil {
									t.Fatalf("%v %dx%d n=%d threads=%d y[%d][%d]: %v", dt, rows, cols, n, threads, b, i, err)
								}
							}
						}
					}
				}
			}
			pool.Close()
		}
	})
}

func TestSetPureGo(t *testing.T) {
	defer SetPureGo(false)
	SetPureGo(true)
	if KernelName() != "go" {
		t.Fatalf("SetPureGo(true) left %q active", KernelName())
	}
	SetPureGo(false)
	if len(archKernels) > 0 && KernelName() != archKernels[0].name {
		t.Fatalf("SetPureGo(false) left %q active, want %q", KernelName(), archKernels[0].name)
	}
	t.Logf("kernels available: %v", kernelNames())
}

func TestFastPathsDoNotAllocate(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(9, 9))
		for _, dt := range []DType{F32, F16, BF16} {
			m, _ := offsetMat(r, dt, 37, 100, 1)
			x := randVec(r, 100, 0)
			y := make([]float32, 37)
			var s float32
			if n := testing.AllocsPerRun(10, func() {
				m.gemvRows(y, x, 3, 37)
				s += m.dotRow(5, x) + Dot(x, x)
			}); n != 0 {
				t.Fatalf("%v: %v allocations per run", dt, n)
			}
		}
	})
}
