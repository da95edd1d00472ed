package kernels

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
)

// refDot is the float64 reference for a product of a decoded row and x.
func refDot(row, x []float32) float64 {
	var s float64
	for i := range row {
		s += float64(row[i]) * float64(x[i])
	}
	return s
}

func randMat(r *rand.Rand, dt DType, rows, cols int) (Mat, []float32) {
	vals := make([]float32, rows*cols)
	buf := make([]byte, rows*cols*dt.Size())
	for i := range vals {
		v := float32(r.NormFloat64())
		switch dt {
		case F32:
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
		case F16:
			h := f32ToF16(v)
			binary.LittleEndian.PutUint16(buf[2*i:], h)
			v = HalfToFloat(h)
		case BF16:
			b := uint16(math.Float32bits(v) >> 16)
			binary.LittleEndian.PutUint16(buf[2*i:], b)
			v = math.Float32frombits(uint32(b) << 16)
		}
		vals[i] = v
	}
	m, err := NewMat(dt, rows, cols, buf)
	if err != nil {
		panic(err)
	}
	return m, vals
}

// f32ToF16 truncates to half precision (test helper: exactness of the
// round-trip is what matters, not the rounding mode).
func f32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int((b>>23)&0xff) - 127 + 15
	if exp <= 0 {
		return sign
	}
	if exp >= 31 {
		return sign | 0x7bff
	}
	return sign | uint16(exp)<<10 | uint16((b>>13)&0x3ff)
}

func TestMatVecAndMatMul(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, threads := range []int{1, 2, 3} {
		pool := NewPool(threads)
		for _, dt := range []DType{F32, F16, BF16} {
			for _, sh := range [][2]int{{1, 1}, {7, 3}, {33, 65}, {128, 40}} {
				rows, cols := sh[0], sh[1]
				m, vals := randMat(r, dt, rows, cols)
				e := NewExec(pool, cols)
				for _, n := range []int{1, 2, 5} {
					x := make([]float32, n*cols)
					for i := range x {
						x[i] = float32(r.NormFloat64())
					}
					y := make([]float32, n*rows)
					for i := range y {
						y[i] = float32(math.NaN()) // every element must be written
					}
					e.MatMul(y, m, x, n)
					for b := 0; b < n; b++ {
						for i := 0; i < rows; i++ {
							want := refDot(vals[i*cols:(i+1)*cols], x[b*cols:(b+1)*cols])
							if got := float64(y[b*rows+i]); !(math.Abs(got-want) <= 1e-4*(1+math.Abs(want))) {
								t.Fatalf("%v %dx%d n=%d threads=%d: y[%d][%d] = %v, want %v", dt, rows, cols, n, threads, b, i, got, want)
							}
						}
					}
				}
			}
		}
		pool.Close()
	}
}

func TestHalfToFloat(t *testing.T) {
	cases := map[uint16]float32{0x3c00: 1, 0xc000: -2, 0x7bff: 65504, 0x0001: 5.960464477539063e-08, 0x8000: float32(math.Copysign(0, -1))}
	for h, want := range cases {
		if got := HalfToFloat(h); got != want || math.Signbit(float64(got)) != math.Signbit(float64(want)) {
			t.Errorf("HalfToFloat(%#04x) = %v, want %v", h, got, want)
		}
	}
	if !math.IsInf(float64(HalfToFloat(0x7c00)), 1) || !math.IsNaN(float64(HalfToFloat(0x7e00))) {
		t.Error("inf/nan not preserved")
	}
}

func TestNormsAndSoftmax(t *testing.T) {
	x := []float32{1, 2, 3, 4}
	w := []float32{1, 1, 1, 1}
	dst := make([]float32, 4)
	LayerNorm(dst, x, w, nil, 0)
	var mean, vr float64
	for _, v := range dst {
		mean += float64(v)
		vr += float64(v) * float64(v)
	}
	if math.Abs(mean) > 1e-6 || math.Abs(vr/4-1) > 1e-5 {
		t.Errorf("LayerNorm: mean %v var %v", mean/4, vr/4)
	}
	RMSNorm(dst, x, w, 0)
	var ss float64
	for _, v := range dst {
		ss += float64(v) * float64(v)
	}
	if math.Abs(ss/4-1) > 1e-5 {
		t.Errorf("RMSNorm: mean square %v", ss/4)
	}
	s := []float32{1000, 1000, -1000}
	Softmax(s)
	if math.Abs(float64(s[0])-0.5) > 1e-6 || s[2] != 0 {
		t.Errorf("Softmax = %v", s)
	}
}

func TestRoPELayouts(t *testing.T) {
	// A rotation preserves the norm of each pair; the two layouts pair differently.
	cos, sin := []float32{0, 1}, []float32{1, 0}
	a := []float32{1, 2, 3, 4}
	RoPE(a, cos, sin, false) // pairs (0,2) rotated by 90°, (1,3) unchanged
	if a[0] != -3 || a[2] != 1 || a[1] != 2 || a[3] != 4 {
		t.Errorf("half-split RoPE = %v", a)
	}
	b := []float32{1, 2, 3, 4}
	RoPE(b, cos, sin, true) // pairs (0,1) rotated by 90°, (2,3) unchanged
	if b[0] != -2 || b[1] != 1 || b[2] != 3 || b[3] != 4 {
		t.Errorf("interleaved RoPE = %v", b)
	}
}

func TestPoolCoversRange(t *testing.T) {
	p := NewPool(3)
	defer p.Close()
	for _, n := range []int{0, 1, 7, 8, 9, 100} {
		seen := make([]int32, n)
		task := &countTask{seen: seen}
		p.Parallel(n, 8, task)
		for i, c := range seen {
			if c != 1 {
				t.Fatalf("n=%d: row %d ran %d times", n, i, c)
			}
		}
	}
}

type countTask struct{ seen []int32 }

func (c *countTask) Run(_, start, end int) {
	for i := start; i < end; i++ {
		c.seen[i]++
	}
}
