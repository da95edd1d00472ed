package kernels

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"dejavu/internal/half"
)

// offsetQ8 makes a rows×cols Q8_0 matrix of quantized random normal values
// whose blocks start off bytes into a larger buffer of 0xff bytes (any
// scale read outside the matrix is an f16 NaN), and returns the decoded
// values.
func offsetQ8(r *rand.Rand, rows, cols, off int) (Mat, []float32) {
	src := make([]float32, rows*cols)
	for i := range src {
		src[i] = float32(r.NormFloat64())
	}
	q := QuantizeQ8_0(rows, cols, src)
	buf := make([]byte, off+len(q.q8)+40)
	for i := range buf {
		buf[i] = 0xff
	}
	copy(buf[off:], q.q8)
	m, err := NewMat(Q8_0, rows, cols, buf[off:off+len(q.q8)])
	if err != nil {
		panic(err)
	}
	vals := make([]float32, rows*cols)
	for i := 0; i < rows; i++ {
		m.Row(i, vals[i*cols:(i+1)*cols])
	}
	return m, vals
}

func TestQuantizeQ8_0Layout(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	x := make([]float32, 64)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	x[5], x[40] = -3, 0.5 // block 0's max |x| is 3; block 1: whatever
	m := QuantizeQ8_0(2, 32, x)
	if m.Bytes() != 2*34 || len(m.q8) != 68 {
		t.Fatalf("2×32 Q8_0 is %d bytes, want 68", m.Bytes())
	}
	for b := 0; b < 2; b++ {
		blk := m.q8[b*34 : (b+1)*34]
		var amax float32
		for _, v := range x[b*32 : (b+1)*32] {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		d := amax / 127
		if h := binary.LittleEndian.Uint16(blk); h != half.F32ToF16(d) {
			t.Fatalf("block %d: scale %#04x, want f16(%v) = %#04x", b, h, d, half.F32ToF16(d))
		}
		for j, v := range x[b*32 : (b+1)*32] {
			want := int8(math.Round(float64(v * (1 / d))))
			if got := int8(blk[2+j]); got != want {
				t.Fatalf("block %d q[%d] = %d, want %d", b, j, got, want)
			}
		}
	}
	if q := int8(m.q8[2+5]); q != -127 {
		t.Fatalf("the largest magnitude quantizes to %d, want -127", q)
	}
	// Decoding: d·q, and the error is at most half a step (plus the f16
	// rounding of d).
	row := make([]float32, 32)
	m.Row(0, row)
	d := HalfToFloat(binary.LittleEndian.Uint16(m.q8))
	for j, v := range row {
		if v != d*float32(int8(m.q8[2+j])) {
			t.Fatalf("Row[%d] = %v, want d·q", j, v)
		}
		if e := math.Abs(float64(v - x[j])); e > 0.5*3/127*1.001+3*1e-3 {
			t.Fatalf("element %d: %v decodes to %v", j, x[j], v)
		}
	}
	// An all-zero block has scale 0 and decodes to zeros.
	z := QuantizeQ8_0(1, 32, make([]float32, 32))
	for _, b := range z.q8 {
		if b != 0 {
			t.Fatalf("zero block encodes to %v", z.q8)
		}
	}
	if _, err := NewMat(Q8_0, 2, 48, make([]byte, 2*51)); err == nil {
		t.Fatal("NewMat accepted Q8_0 columns that are not a multiple of 32")
	}
	if _, err := NewMat(Q8_0, 2, 32, make([]byte, 67)); err == nil {
		t.Fatal("NewMat accepted a short Q8_0 buffer")
	}
}

func TestFloatToHalf(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		if h&0x7c00 == 0x7c00 && h&0x3ff != 0 {
			continue // NaN
		}
		if got := half.F32ToF16(HalfToFloat(uint16(h))); got != uint16(h) {
			t.Fatalf("half %#04x round-trips to %#04x", h, got)
		}
	}
	// Random values round to the nearest half, ties to even.
	r := rand.New(rand.NewPCG(23, 24))
	for range 100000 {
		f := float32(math.Abs(r.NormFloat64()) * math.Pow(2, float64(r.IntN(36)-26)))
		h := half.F32ToF16(f)
		e := math.Abs(float64(HalfToFloat(h)) - float64(f))
		for _, n := range []uint16{h - 1, h + 1} {
			en := math.Abs(float64(HalfToFloat(n)) - float64(f))
			if en < e || en == e && h&1 != 0 {
				t.Fatalf("half.F32ToF16(%v) = %#04x (%v), but %#04x (%v) is nearer", f, h, HalfToFloat(h), n, HalfToFloat(n))
			}
		}
	}
}

var q8Cols = []int{32, 64, 96, 160, 320, 2048}

// q8DotRef is the integer Q8_0 product of row i of m with x in float64
// (x quantized block by block as the kernels do: per block dw·dx·Σq_w·q_x)
// and the sum of the magnitudes of the block terms.
func q8DotRef(m Mat, i int, x []float32) (want, mag float64) {
	rb := Q8_0.RowBytes(m.Cols)
	src := m.q8[i*rb : (i+1)*rb]
	var q [Q8Block]int8
	for b := 0; b < m.Cols/Q8Block; b++ {
		blk := src[b*q8BlockBytes:]
		dx := quantizeXBlock(&q, x[b*Q8Block:])
		var si, sa int64
		for j := range Q8Block {
			p := int64(int8(blk[2+j])) * int64(q[j])
			si += p
			sa += max(p, -p)
		}
		sc := float64(q8Scale(blk)) * float64(dx)
		want += sc * float64(si)
		mag += math.Abs(sc) * float64(sa)
	}
	return want, mag
}

// checkDotQ8 checks a Q8_0 dot product of row i (decoded values row) with
// x: against q8DotRef up to f32 summation, and against the exact product
// of the decoded row within the rounding of x (checkDotQ8Loose).
func checkDotQ8(got float32, m Mat, i int, row, x []float32) error {
	want, mag := q8DotRef(m, i, x)
	if !(math.Abs(float64(got)-want) <= 1e-5*mag+1e-30) {
		return fmt.Errorf("got %v, integer reference %v (sum |terms| %v)", got, want, mag)
	}
	return checkDotQ8Loose(got, row, x)
}

// checkDotQ8Loose checks got against the exact product of row and x with
// room for rounding every x to its block's int8 step (dx/2 per element,
// dx = max|x of the block|/127), as the integer kernels do, or not (f32).
func checkDotQ8Loose(got float32, row, x []float32) error {
	var want, mag, room float64
	for b := 0; b < len(row)/Q8Block; b++ {
		var amax float64
		for _, v := range x[b*Q8Block : (b+1)*Q8Block] {
			amax = max(amax, math.Abs(float64(v)))
		}
		for j := b * Q8Block; j < (b+1)*Q8Block; j++ {
			p := float64(row[j]) * float64(x[j])
			want += p
			mag += math.Abs(p)
			room += math.Abs(float64(row[j])) * amax / 127 / 2 * 1.001
		}
	}
	if !(math.Abs(float64(got)-want) <= room+1e-5*mag+1e-30) {
		return fmt.Errorf("got %v, exact %v (x rounding allows %v)", got, want, room)
	}
	return nil
}

func TestQ8GEMVMatchesReference(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(25, 26))
		for _, cols := range q8Cols {
			for _, rows := range []int{1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 23, 37, 70} {
				off := r.IntN(4)
				m, vals := offsetQ8(r, rows, cols, off)
				x := randVec(r, cols, r.IntN(3))
				y := nanVec(rows)
				start, end := 0, rows
				if off > 1 {
					start = r.IntN(rows)
					end = start + r.IntN(rows-start+1)
				}
				m.gemvRows(y, x, start, end)
				for i := range y {
					if i < start || i >= end {
						if !math.IsNaN(float64(y[i])) {
							t.Fatalf("%dx%d [%d,%d): wrote y[%d]", rows, cols, start, end, i)
						}
						continue
					}
					if err := checkDotQ8(y[i], m, i, vals[i*cols:(i+1)*cols], x); err != nil {
						t.Fatalf("%dx%d off %d [%d,%d): y[%d]: %v", rows, cols, off, start, end, i, err)
					}
					if err := checkDotQ8(m.dotRow(i, x), m, i, vals[i*cols:(i+1)*cols], x); err != nil {
						t.Fatalf("%dx%d: dotRow(%d): %v", rows, cols, i, err)
					}
				}
			}
		}
	})
}

func TestQ8SparseMatchReference(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(27, 28))
		for _, cols := range q8Cols {
			rows := 1 + r.IntN(60)
			if cols >= 320 {
				rows = 150
			}
			off := r.IntN(4)
			m, vals := offsetQ8(r, rows, cols, off)
			x := randVec(r, cols, r.IntN(3))
			for _, sel := range rowLists(r, rows) {
				y := nanVec(len(sel) + 5)
				m.gatherRows(y, x, sel)
				for k, i := range sel {
					if err := checkDotQ8(y[k], m, int(i), vals[int(i)*cols:int(i+1)*cols], x); err != nil {
						t.Fatalf("gather %dx%d off %d, %d rows: y[%d] (row %d): %v", rows, cols, off, len(sel), k, i, err)
					}
				}
				for k := len(sel); k < len(y); k++ {
					if !math.IsNaN(float64(y[k])) {
						t.Fatalf("gather %dx%d of %d rows wrote y[%d]", rows, cols, len(sel), k)
					}
				}
				a := randVec(r, len(sel), r.IntN(3))
				buf := append(randVec(r, cols, 0), nanVec(5)...)
				y0 := append([]float32(nil), buf...)
				m.accumRows(buf[:cols], sel, a)
				if err := checkAccum(buf, y0, vals, cols, sel, a); err != nil {
					t.Fatalf("accumulate %dx%d off %d, %d rows: %v", rows, cols, off, len(sel), err)
				}
				for j := cols; j < len(buf); j++ {
					if !math.IsNaN(float64(buf[j])) {
						t.Fatalf("accumulate %dx%d wrote y[%d] past the row", rows, cols, j)
					}
				}
			}
		}
	})
}

// MatMul covers the GEMV per input (n < 8), the GEMM with Q8_0 rows
// decoded in the pack step (n ≥ 8) and the pure-Go row decode; the Exec
// sparse products split rows over workers.
func TestQ8ExecProducts(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(29, 30))
		pool := NewPool(2)
		defer pool.Close()
		for _, sh := range [][2]int{{1, 32}, {9, 64}, {37, 288}, {70, 544}} {
			rows, cols := sh[0], sh[1]
			m, vals := offsetQ8(r, rows, cols, 1)
			e := NewExec(pool, cols)
			for _, n := range []int{1, 3, 8, 13} {
				x := randVec(r, n*cols, 0)
				y := nanVec(n * rows)
				e.MatMul(y, m, x, n)
				for b := range n {
					for i := range rows {
						// n < 8: GEMV per input (integer); else the f32 GEMM
						if err := checkDotQ8Loose(y[b*rows+i], vals[i*cols:(i+1)*cols], x[b*cols:(b+1)*cols]); err != nil {
							t.Fatalf("%dx%d n=%d y[%d][%d]: %v", rows, cols, n, b, i, err)
						}
					}
				}
			}
			x := randVec(r, cols, 0)
			for _, sel := range rowLists(r, rows) {
				y := nanVec(len(sel))
				e.GatherMatVec(y, m, x, sel)
				for k, i := range sel {
					if err := checkDotQ8(y[k], m, int(i), vals[int(i)*cols:int(i+1)*cols], x); err != nil {
						t.Fatalf("%dx%d GatherMatVec row %d: %v", rows, cols, i, err)
					}
				}
				a := randVec(r, len(sel), 0)
				yy := randVec(r, cols, 0)
				y0 := append([]float32(nil), yy...)
				e.AccumRows(yy, m, sel, a)
				if err := checkAccum(yy, y0, vals, cols, sel, a); err != nil {
					t.Fatalf("%dx%d AccumRows: %v", rows, cols, err)
				}
			}
		}
	})
}

func TestQ8TransposeAndConvert(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	m, vals := offsetQ8(r, 64, 96, 3)
	tr := m.Transpose()
	if tr.DType != Q8_0 || tr.Rows != 96 || tr.Cols != 64 {
		t.Fatalf("transpose is %v %d×%d", tr.DType, tr.Rows, tr.Cols)
	}
	tv := make([]float32, 96*64)
	for j := 0; j < 96; j++ {
		for i := 0; i < 64; i++ {
			tv[j*64+i] = vals[i*96+j]
		}
	}
	want := QuantizeQ8_0(96, 64, tv)
	if string(want.q8) != string(tr.q8) {
		t.Fatal("Q8_0 transpose differs from quantizing the transposed values")
	}
	// 40 rows: the transpose cannot be Q8_0 and falls back to f16.
	m2, vals2 := offsetQ8(r, 40, 32, 0)
	tr2 := m2.Transpose()
	if tr2.DType != F16 || tr2.Rows != 32 || tr2.Cols != 40 {
		t.Fatalf("transpose of 40×32 is %v %d×%d", tr2.DType, tr2.Rows, tr2.Cols)
	}
	if got, want := tr2.at(5*40+7), vals2[7*32+5]; math.Abs(float64(got-want)) > 1e-3*math.Abs(float64(want))+1e-6 {
		t.Fatalf("f16 transpose element %v, want %v", got, want)
	}
	// Quantize from f16 equals QuantizeQ8_0 of the decoded values, and
	// back to f32 is exact.
	f, fv := offsetMat(r, F16, 5, 64, 1)
	q, err := f.Quantize(Q8_0)
	if err != nil {
		t.Fatal(err)
	}
	if string(q.q8) != string(QuantizeQ8_0(5, 64, fv).q8) {
		t.Fatal("Mat.Quantize(Q8_0) differs from QuantizeQ8_0")
	}
	back, err := q.Quantize(F32)
	if err != nil {
		t.Fatal(err)
	}
	row := make([]float32, 64)
	for i := range 5 {
		q.Row(i, row)
		for j, v := range row {
			if back.f32[i*64+j] != v {
				t.Fatal("Q8_0 → f32 is not exact")
			}
		}
	}
	if _, err := MatF32(2, 33, make([]float32, 66)).Quantize(Q8_0); err == nil {
		t.Fatal("Quantize(Q8_0) accepted 33 columns")
	}
}

func TestQ8ProductsDoNotAllocate(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(33, 34))
		m, _ := offsetQ8(r, 37, 128, 1)
		x := randVec(r, 128, 0)
		y := make([]float32, 128)
		rows := []int32{1, 4, 9, 20, 36}
		a := randVec(r, len(rows), 0)
		if n := testing.AllocsPerRun(10, func() {
			m.gemvRows(y, x, 3, 37)
			m.gatherRows(y, x, rows)
			m.accumRows(y, rows, a)
		}); n != 0 {
			t.Fatalf("%v allocations per run", n)
		}
	})
}

// TestQ8F32KernelsMatchReference covers the f32 Q8_0 dot kernels, which
// serve inputs wider than q8xMaxCols (and q8Integer = false): exact
// products of the decoded weights up to f32 summation.
func TestQ8F32KernelsMatchReference(t *testing.T) {
	defer func(v bool) { q8Integer = v }(q8Integer)
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(35, 36))
		for _, sh := range [][2]int{{13, 64}, {37, 320}, {9, 2048}, {3, q8xMaxCols + 32}} {
			rows, cols := sh[0], sh[1]
			m, vals := offsetQ8(r, rows, cols, r.IntN(4))
			x := randVec(r, cols, 0)
			for _, integer := range []bool{false, true} {
				q8Integer = integer
				if integer && cols <= q8xMaxCols {
					continue // the integer kernels: the tests above
				}
				y := nanVec(rows)
				m.gemvRows(y, x, 0, rows)
				for i := range rows {
					if err := checkDot(y[i], vals[i*cols:(i+1)*cols], x); err != nil {
						t.Fatalf("%dx%d y[%d]: %v", rows, cols, i, err)
					}
				}
				sel := randRows(r, rows, (rows+1)/2)
				m.gatherRows(y, x, sel)
				for k, i := range sel {
					if err := checkDot(y[k], vals[int(i)*cols:int(i+1)*cols], x); err != nil {
						t.Fatalf("%dx%d gather row %d: %v", rows, cols, i, err)
					}
				}
			}
		}
	})
}
