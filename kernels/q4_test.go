package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"

	"dejavu/internal/half"
)

// randQ4 makes a rows×cols matrix of dtype dt (Q4_0 or Q4_K) from random
// bytes with random, moderate f16 scales, whose blocks start off bytes into
// a buffer of 0xff bytes (a scale read outside the matrix is an f16 NaN).
// It returns the matrix, its decoded values, and per element the magnitude
// bound of a product's terms (|d·sc·q| + |dmin·m| for Q4_K, |w| for Q4_0).
func randQ4(r *rand.Rand, dt DType, rows, cols, off int) (Mat, []float32, []float32) {
	n := rows * dt.RowBytes(cols)
	buf := make([]byte, off+n+64)
	for i := range buf {
		buf[i] = 0xff
	}
	data := buf[off : off+n]
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	scale := func(p []byte) {
		h := half.F32ToF16(float32(0.001 + 0.05*r.Float64()))
		p[0], p[1] = byte(h), byte(h>>8)
	}
	bb := dt.q4BlockBytes()
	for b := 0; b < n/bb; b++ {
		scale(data[b*bb:])
		if dt == Q4_K {
			scale(data[b*bb+2:])
		}
	}
	m, err := NewMat(dt, rows, cols, data)
	if err != nil {
		panic(err)
	}
	vals := make([]float32, rows*cols)
	mags := make([]float32, rows*cols)
	for i := 0; i < rows; i++ {
		m.Row(i, vals[i*cols:(i+1)*cols])
	}
	for i := range vals {
		mags[i] = float32(math.Abs(float64(vals[i])))
	}
	if dt == Q4_K {
		for b := 0; b < n/bb; b++ {
			blk := data[b*bb : (b+1)*bb]
			d, dmin := q8Scale(blk), q8Scale(blk[2:])
			for j := 0; j < QKBlock; j++ {
				s, mn := q4KScaleMin(blk[4:16], j/32)
				q := blk[16+32*(j/64)+j%32]
				if j%64 >= 32 {
					q >>= 4
				}
				mags[b*QKBlock+j] = d*float32(s)*float32(q&15) + dmin*float32(mn)
			}
		}
	}
	return m, vals, mags
}

// checkDotQ4 compares got with the exact dot of row and x. Allowed: a
// reordered f32 sum (2e-6 of Σ mag·|x|) plus what quantizing x to 8 bits
// per 32 values may cost: per element |scale·q|·dx/2 (q the unsigned
// nibble, scale d for Q4_0 and d·sc for Q4_K; the offset and the mins use
// exact sums of x). qmag holds |scale·q| per element.
func checkDotQ4(got float32, row, mag, qmag, x []float32) error {
	qx := quantizeQ4X(x)
	defer q4XPool.Put(qx)
	var want, s, xe float64
	for j := range row {
		want += float64(row[j]) * float64(x[j])
		s += float64(mag[j]) * math.Abs(float64(x[j]))
		xe += float64(qmag[j]) * float64(qx.d[j/Q4Block]) / 2
	}
	if e := math.Abs(float64(got) - want); !(e <= 2e-6*s+xe*1.0001+1e-30) {
		return fmt.Errorf("got %v, want %v (error %.3g; allowed %.3g rounding + %.3g from 8-bit x)", got, want, e, 2e-6*s, xe)
	}
	return nil
}

// q4QMag is |scale·q| per element of m (see checkDotQ4).
func q4QMag(m Mat) []float32 {
	out := make([]float32, m.Rows*m.Cols)
	bs, bb := m.DType.q4Block(), m.DType.q4BlockBytes()
	for b := 0; b < len(m.q4)/bb; b++ {
		blk := m.q4[b*bb : (b+1)*bb]
		d := float64(q8Scale(blk))
		for j := 0; j < bs; j++ {
			var q byte
			sc := 1.0
			if m.DType == Q4_0 {
				q = blk[2+j%16]
				if j >= 16 {
					q >>= 4
				}
			} else {
				k, _ := q4KScaleMin(blk[4:16], j/32)
				sc = float64(k)
				q = blk[16+32*(j/64)+j%32]
				if j%64 >= 32 {
					q >>= 4
				}
			}
			out[b*bs+j] = float32(math.Abs(d * sc * float64(q&15)))
		}
	}
	return out
}

func q4Shapes(dt DType) [][2]int {
	bs := dt.q4Block()
	var sh [][2]int
	for _, nb := range []int{1, 2, 3, 5, 8} {
		for _, rows := range []int{1, 3, 7, 13} {
			sh = append(sh, [2]int{rows + nb%3, nb * bs})
		}
	}
	return append(sh, [2]int{33, 2048 / bs * bs}, [2]int{129, 64 * bs})
}

func TestQ4DecodeLayout(t *testing.T) {
	// Q4_0: one block, d = 0.5, byte j holds (j mod 16) low and 15-(j mod 16) high.
	b := make([]byte, 18)
	h := half.F32ToF16(0.5)
	b[0], b[1] = byte(h), byte(h>>8)
	for j := 0; j < 16; j++ {
		b[2+j] = byte(j) | byte(15-j)<<4
	}
	m, err := NewMat(Q4_0, 1, 32, b)
	if err != nil {
		t.Fatal(err)
	}
	row := make([]float32, 32)
	m.Row(0, row)
	for j := 0; j < 16; j++ {
		if row[j] != 0.5*float32(j-8) || row[j+16] != 0.5*float32(7-j) {
			t.Fatalf("Q4_0 weights %d, %d = %v, %v", j, j+16, row[j], row[j+16])
		}
	}
	// Q4_K scale packing: scales 0..7 = 1, 2, ..., 8 and mins 63, 62, ...
	// (so the top bits of the j ≥ 4 entries are exercised).
	var sc [12]byte
	for j := 0; j < 8; j++ {
		s, mn := byte(j+1)*7, byte(63-j)
		if j < 4 {
			sc[j] |= s & 63
			sc[j+4] |= mn & 63
		} else {
			sc[j+4] = s&15 | (mn&15)<<4
			sc[j-4] |= (s >> 4) << 6
			sc[j] |= (mn >> 4) << 6
		}
	}
	for j := 0; j < 8; j++ {
		s, mn := q4KScaleMin(sc[:], j)
		if s != byte(j+1)*7 || mn != byte(63-j) {
			t.Fatalf("sub-block %d: scale, min = %d, %d; want %d, %d", j, s, mn, (j+1)*7, 63-j)
		}
	}
}

func TestQ4ProductsMatchReference(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(41, 42))
		pool := NewPool(2)
		defer pool.Close()
		for _, dt := range []DType{Q4_0, Q4_K} {
			for _, sh := range q4Shapes(dt) {
				rows, cols := sh[0], sh[1]
				m, vals, mags := randQ4(r, dt, rows, cols, 1+rows%5)
				qmag := q4QMag(m)
				e := NewExec(pool, cols)
				x := randVec(r, 20*cols, 1)
				for _, n := range []int{1, 2, 20} { // GEMV, GEMV per input, GEMM
					y := make([]float32, n*rows)
					for i := range y {
						y[i] = float32(math.NaN())
					}
					e.MatMul(y, m, x[:n*cols], n)
					for b := range n {
						for i := range rows {
							if err := checkDotQ4(y[b*rows+i], vals[i*cols:(i+1)*cols], mags[i*cols:(i+1)*cols], qmag[i*cols:(i+1)*cols], x[b*cols:(b+1)*cols]); err != nil {
								t.Fatalf("%v %d×%d n=%d y[%d][%d]: %v", dt, rows, cols, n, b, i, err)
							}
						}
					}
				}
				// Gather: an odd-length list with repeats, out of order.
				list := make([]int32, 2*rows+1)
				for k := range list {
					list[k] = int32(r.IntN(rows))
				}
				y := make([]float32, len(list))
				e.GatherMatVec(y, m, x[:cols], list)
				for k, i := range list {
					if err := checkDotQ4(y[k], vals[int(i)*cols:(int(i)+1)*cols], mags[int(i)*cols:(int(i)+1)*cols], qmag[int(i)*cols:(int(i)+1)*cols], x[:cols]); err != nil {
						t.Fatalf("%v %d×%d gather row %d: %v", dt, rows, cols, i, err)
					}
				}
				// Accumulate over Q4 rows (Go only) and element access.
				a := randVec(r, len(list), 0)
				acc := make([]float32, cols)
				e.AccumRows(acc, m, list, a)
				for j := 0; j < cols; j += 1 + cols/7 {
					var want, s float64
					for k, i := range list {
						want += float64(a[k]) * float64(vals[int(i)*cols+j])
						s += math.Abs(float64(a[k]) * float64(mags[int(i)*cols+j]))
					}
					if math.Abs(float64(acc[j])-want) > 1e-5*s {
						t.Fatalf("%v %d×%d accum[%d] = %v, want %v", dt, rows, cols, j, acc[j], want)
					}
					if i := int(list[0]); m.at(i*cols+j) != vals[i*cols+j] {
						t.Fatalf("%v at(%d, %d) = %v, want %v", dt, i, j, m.at(i*cols+j), vals[i*cols+j])
					}
				}
			}
		}
	})
}

// TestQ4AsmMatchesGo compares every assembly kernel, GEMV and gather, with
// the pure-Go reference (dotRowQ4X) on the same quantized x: they differ
// only in the order of f32 operations.
func TestQ4AsmMatchesGo(t *testing.T) {
	if len(archKernels) == 0 {
		t.Skip("no assembly kernels on this CPU")
	}
	r := rand.New(rand.NewPCG(43, 44))
	for _, k := range archKernels {
		for _, dt := range []DType{Q4_0, Q4_K} {
			for _, sh := range q4Shapes(dt) {
				rows, cols := sh[0], sh[1]
				m, _, mags := randQ4(r, dt, rows, cols, 3)
				x := randVec(r, cols, 2)
				qx := quantizeQ4X(x)
				// Gather lists of every length mod 4 (the Q4_0 kernels take
				// four rows per pass, clamping past the end), with repeats
				// of a row next to itself.
				list := make([]int32, rows+2)
				for i := range list {
					list[i] = int32(r.IntN(rows))
					if i%3 == 1 {
						list[i] = list[i-1]
					}
				}
				y := make([]float32, rows+1) // a guard after each
				yg := make([]float32, len(list)+1)
				y[rows], yg[len(list)] = 7, 7
				archDotRowsQ4(k.id, dt, m.q4Ptr(0, rows), dt.RowBytes(cols), qx, &y[0], nil, rows, cols)
				archDotRowsQ4(k.id, dt, m.q4Ptr(0, rows), dt.RowBytes(cols), qx, &yg[0], &list[0], len(list), cols)
				if y[rows] != 7 || yg[len(list)] != 7 {
					t.Fatalf("%s %v %d×%d: wrote past y", k.name, dt, rows, cols)
				}
				// A GEMV over rows 1.. (n-1 rows, another length mod 4)
				// must match too; y[0] is left alone.
				if rows > 1 {
					y0 := y[0]
					rb := dt.RowBytes(cols)
					archDotRowsQ4(k.id, dt, unsafe.Add(m.q4Ptr(0, rows), rb), rb, qx, &y[1], nil, rows-1, cols)
					if y[0] != y0 {
						t.Fatalf("%s %v %d×%d: GEMV of rows 1.. wrote y[0]", k.name, dt, rows, cols)
					}
				}
				check := func(what string, got float32, i int) {
					g := m.dotRowQ4X(i, qx)
					var s float64
					for j := range x {
						s += float64(mags[i*cols+j]) * (math.Abs(float64(x[j])) + float64(qx.d[j/Q4Block]))
					}
					if math.Abs(float64(got-g)) > 4e-6*s {
						t.Fatalf("%s %v %d×%d %s row %d: asm %v, go %v", k.name, dt, rows, cols, what, i, got, g)
					}
				}
				for i := range rows {
					check("gemv", y[i], i)
				}
				for j, i := range list {
					check("gather", yg[j], int(i))
					// A row's sum does not depend on the rows it shares a
					// pass with: gather and GEMV agree exactly.
					if yg[j] != y[i] {
						t.Fatalf("%s %v %d×%d: gather row %d %v, GEMV %v", k.name, dt, rows, cols, i, yg[j], y[i])
					}
				}
				q4XPool.Put(qx)
			}
		}
	}
}

func TestQ4TransposeIsQ8(t *testing.T) {
	r := rand.New(rand.NewPCG(45, 46))
	for _, dt := range []DType{Q4_0, Q4_K} {
		for _, rows := range []int{64, 33} {
			m, vals, _ := randQ4(r, dt, rows, 2*dt.q4Block(), 0)
			tr := m.Transpose()
			want := Q8_0
			if rows%32 != 0 {
				want = F16
			}
			if tr.DType != want || tr.Rows != m.Cols || tr.Cols != rows {
				t.Fatalf("%v %d rows: transpose is %v %d×%d", dt, rows, tr.DType, tr.Rows, tr.Cols)
			}
			row := make([]float32, rows)
			for j := 0; j < m.Cols; j++ {
				tr.Row(j, row)
				var amax float64
				for i := 0; i < rows; i++ {
					amax = max(amax, math.Abs(float64(vals[i*m.Cols+j])))
				}
				for i := 0; i < rows; i++ {
					// half a Q8_0 step of a 32-block (≤ max/254) plus f16 rounding
					if e := math.Abs(float64(row[i] - vals[i*m.Cols+j])); e > amax/254*1.01+amax*1e-3 {
						t.Fatalf("%v transpose [%d][%d] = %v, want %v", dt, j, i, row[i], vals[i*m.Cols+j])
					}
				}
			}
		}
	}
}

func TestQuantizeQ4_0(t *testing.T) {
	r := rand.New(rand.NewPCG(47, 48))
	x := make([]float32, 4*64)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	m, err := QuantizeQ4_0(4, 64, x)
	if err != nil {
		t.Fatal(err)
	}
	row := make([]float32, 64)
	for i := 0; i < 4; i++ {
		m.Row(i, row)
		for b := 0; b < 2; b++ {
			var amax float64
			for _, v := range x[i*64+b*32 : i*64+b*32+32] {
				amax = max(amax, math.Abs(float64(v)))
			}
			for j := b * 32; j < b*32+32; j++ {
				// step amax/8; error at most half a step, plus the clamp at 15
				// of the far end (one step) and f16 rounding of d.
				if e := math.Abs(float64(row[j] - x[i*64+j])); e > amax/8*1.01 {
					t.Fatalf("row %d [%d]: %v quantizes to %v", i, j, x[i*64+j], row[j])
				}
			}
		}
	}
	if _, err := QuantizeQ4_0(1, 33, make([]float32, 33)); err == nil {
		t.Fatal("33 columns accepted")
	}
	if _, err := NewMat(Q4_K, 1, 32, make([]byte, 18)); err == nil {
		t.Fatal("Q4_K with 32 columns accepted")
	}
}

// TestQ4QuantizeXAsmMatchesGo: the assembly quantizer of x gives the Go
// one's int8 values and scales exactly, and its sums to f32 rounding.
func TestQ4QuantizeXAsmMatchesGo(t *testing.T) {
	if len(archKernels) == 0 {
		t.Skip("no assembly kernels on this CPU")
	}
	r := rand.New(rand.NewPCG(49, 50))
	for _, n := range []int{32, 64, 96, 2048} {
		x := randVec(r, n, 1)
		for j := 0; j < 32 && n > 32; j++ {
			x[32+j] = 0 // an all-zero block
		}
		x[0], x[5] = 1.5*127/127, -1.5 // a tie for the largest magnitude
		x[7] = 0.5 * 1.5 / 127         // exactly half a step: ties to even
		a := &q4X{q: make([]int8, n), d: make([]float32, n/32), s: make([]float32, n/32)}
		g := &q4X{q: make([]int8, n), d: make([]float32, n/32), s: make([]float32, n/32)}
		archQuantQ4X(x, a)
		quantizeQ4XGo(x, g)
		for j := range a.q {
			if a.q[j] != g.q[j] {
				t.Fatalf("n=%d q[%d] = %d, Go %d (x %v, d %v)", n, j, a.q[j], g.q[j], x[j], g.d[j/32])
			}
		}
		for b := range a.d {
			var mag float64
			for _, v := range x[b*32 : b*32+32] {
				mag += math.Abs(float64(v))
			}
			if a.d[b] != g.d[b] || math.Abs(float64(a.s[b]-g.s[b])) > 1e-6*mag {
				t.Fatalf("n=%d block %d: d %v s %v, Go d %v s %v", n, b, a.d[b], a.s[b], g.d[b], g.s[b])
			}
		}
	}
}

// TestQ4DequantAsmMatchesGo: the assembly block decoders of the prompt
// GEMM's packing give decodeQ4_0 / decodeQ4K's values exactly.
func TestQ4DequantAsmMatchesGo(t *testing.T) {
	if len(archKernels) == 0 {
		t.Skip("no assembly kernels on this CPU")
	}
	r := rand.New(rand.NewPCG(51, 52))
	for _, dt := range []DType{Q4_0, Q4_K} {
		m, vals, _ := randQ4(r, dt, 3, 3*dt.q4Block(), 1)
		got := make([]float32, len(vals)+8)
		archDequantQ4(dt, &m.q4[0], &got[0], len(m.q4)/dt.q4BlockBytes())
		for j, v := range vals {
			if got[j] != v {
				t.Fatalf("%v element %d: %v, Go %v", dt, j, got[j], v)
			}
		}
		for _, v := range got[len(vals):] {
			if v != 0 {
				t.Fatalf("%v: wrote past the blocks", dt)
			}
		}
	}
}
