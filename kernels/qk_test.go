package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"

	"dejavu/internal/half"
)

// randQK makes a rows×cols Q5_K, Q6_K, Q5_0 or Q5_1 matrix from random
// bytes with random, moderate f16 scales (blocks starting off bytes into a
// buffer of 0xff bytes). It returns the matrix, its decoded values, per
// element the magnitude bound of a product's terms (|scale·q| + |offset|,
// the offset -dmin·m for Q5_K, -16d for Q5_0, m for Q5_1, none for Q6_K)
// and the part that multiplies the 8-bit x (|scale·q|).
func randQK(r *rand.Rand, dt DType, rows, cols, off int) (m Mat, vals, mags, qmag []float32) {
	n := rows * dt.RowBytes(cols)
	buf := make([]byte, off+n+64)
	for i := range buf {
		buf[i] = 0xff
	}
	data := buf[off : off+n]
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	scale := func(p []byte, s float64) {
		h := half.F32ToF16(float32(s * (0.02 + r.Float64())))
		p[0], p[1] = byte(h), byte(h>>8)
	}
	bb := dt.q4BlockBytes()
	for b := 0; b < n/bb; b++ {
		blk := data[b*bb : (b+1)*bb]
		switch dt {
		case Q5_K, Q5_1:
			scale(blk, 0.05)
			scale(blk[2:], 0.05)
		case Q5_0:
			scale(blk, 0.05)
		default:
			scale(blk[bb-2:], 0.001)
		}
	}
	m, err := NewMat(dt, rows, cols, data)
	if err != nil {
		panic(err)
	}
	vals = make([]float32, rows*cols)
	for i := 0; i < rows; i++ {
		m.Row(i, vals[i*cols:(i+1)*cols])
	}
	mags = make([]float32, rows*cols)
	qmag = make([]float32, rows*cols)
	for i, v := range vals {
		mags[i] = float32(math.Abs(float64(v)))
		qmag[i] = mags[i]
	}
	bs := dt.q4Block()
	for b := 0; b < n/bb && dt != Q6_K; b++ {
		blk := data[b*bb : (b+1)*bb]
		for j := 0; j < bs; j++ {
			var off float32
			switch dt {
			case Q5_K:
				_, mn := q4KScaleMin(blk[4:16], j/32)
				off = -q8Scale(blk[2:]) * float32(mn)
			case Q5_0:
				off = -16 * q8Scale(blk)
			case Q5_1:
				off = q8Scale(blk[2:])
			}
			k := b*bs + j
			qmag[k] = float32(math.Abs(float64(vals[k] - off)))
			mags[k] = qmag[k] + float32(math.Abs(float64(off)))
		}
	}
	return m, vals, mags, qmag
}

// TestQKLayout checks the bit positions of both formats on hand-made
// blocks (the fixture test checks ggml's values on random ones).
func TestQKLayout(t *testing.T) {
	// Q6_K: weight j of the block has q = j mod 64, scale 16-weight
	// sub-block t = t - 8, d = 0.25.
	b := make([]byte, q6KBlockBytes)
	for j := 0; j < QKBlock; j++ {
		q := byte(j % 64)
		h, p := j/128, j%128
		g, l := p/32, p%32
		lo := &b[64*h+l+32*(g&1)]
		if g < 2 {
			*lo |= q & 15
		} else {
			*lo |= (q & 15) << 4
		}
		b[128+32*h+l] |= (q >> 4) << (2 * g)
	}
	for s := 0; s < 16; s++ {
		b[192+s] = byte(int8(s - 8))
	}
	hd := half.F32ToF16(0.25)
	b[208], b[209] = byte(hd), byte(hd>>8)
	row := make([]float32, QKBlock)
	decodeQ6K(b, row)
	for j, v := range row {
		if want := 0.25 * float32(j/16-8) * float32(j%64-32); v != want {
			t.Fatalf("Q6_K weight %d = %v, want %v", j, v, want)
		}
	}
	// Q5_K: weight j has q = (j·7) mod 32, sub-block scales 1..8 and mins
	// 0 except sub-block 5 (min 3); d = 0.5, dmin = 2.
	b = make([]byte, q5KBlockBytes)
	hd, hm := half.F32ToF16(0.5), half.F32ToF16(2)
	b[0], b[1], b[2], b[3] = byte(hd), byte(hd>>8), byte(hm), byte(hm>>8)
	for s := 0; s < 4; s++ {
		b[4+s] = byte(s + 1)
		b[12+s] = byte(s+5) & 15
	}
	b[12+1] |= 3 << 4 // min of sub-block 5
	for j := 0; j < QKBlock; j++ {
		q := byte(j * 7 % 32)
		s, l := j/32, j%32
		b[48+32*(s/2)+l] |= (q & 15) << (4 * (s & 1))
		b[16+l] |= (q >> 4) << s
	}
	decodeQ5K(b, row)
	for j, v := range row {
		want := 0.5 * float32(j/32+1) * float32(j*7%32)
		if j/32 == 5 {
			want -= 6
		}
		if v != want {
			t.Fatalf("Q5_K weight %d = %v, want %v", j, v, want)
		}
	}
}

// TestQKProductsMatchReference runs GEMV, GEMM, gather and accumulate over
// Q5_K, Q6_K, Q5_0 and Q5_1 matrices of odd row counts with every kernel set, against
// the exact products of the decoded weights (tolerance of checkDotQ4).
func TestQKProductsMatchReference(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(51, 52))
		pool := NewPool(2)
		defer pool.Close()
		for _, dt := range []DType{Q5_K, Q6_K, Q5_0, Q5_1} {
			for _, sh := range q4Shapes(dt) {
				rows, cols := sh[0], sh[1]
				m, vals, mags, qmag := randQK(r, dt, rows, cols, 1+rows%5)
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
				list := make([]int32, 2*rows+1)
				for k := range list {
					list[k] = int32(r.IntN(rows))
				}
				y := make([]float32, len(list))
				e.GatherMatVec(y, m, x[:cols], list)
				for k, i := range list {
					lo, hi := int(i)*cols, (int(i)+1)*cols
					if err := checkDotQ4(y[k], vals[lo:hi], mags[lo:hi], qmag[lo:hi], x[:cols]); err != nil {
						t.Fatalf("%v %d×%d gather row %d: %v", dt, rows, cols, i, err)
					}
				}
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
					if i := int(list[0]); m.atQ4(i*cols+j) != vals[i*cols+j] {
						t.Fatalf("%v atQ4(%d, %d) = %v, want %v", dt, i, j, m.atQ4(i*cols+j), vals[i*cols+j])
					}
				}
			}
		}
	})
}

// TestQKTransposeIsQ8 checks the neuron-major copy of Q5_K, Q6_K, Q5_0
// and Q5_1 matrices: Q8_0 (f16 when the rows are not a multiple of 32), within half
// a Q8_0 step of the decoded weights.
func TestQKTransposeIsQ8(t *testing.T) {
	r := rand.New(rand.NewPCG(53, 54))
	for _, dt := range []DType{Q5_K, Q6_K, Q5_0, Q5_1} {
		for _, rows := range []int{64, 33} {
			m, vals, _, _ := randQK(r, dt, rows, 2*QKBlock, 0)
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
					if e := math.Abs(float64(row[i] - vals[i*m.Cols+j])); e > amax/254*1.01+amax*1e-3 {
						t.Fatalf("%v transpose [%d][%d] = %v, want %v", dt, j, i, row[i], vals[i*m.Cols+j])
					}
				}
			}
		}
	}
}

func TestQKShapes(t *testing.T) {
	for _, c := range []struct {
		dt           DType
		block, bytes int
		name         string
	}{{Q5_K, 256, 176, "q5_k"}, {Q6_K, 256, 210, "q6_k"}, {Q5_0, 32, 22, "q5_0"}, {Q5_1, 32, 24, "q5_1"}} {
		if got := c.dt.RowBytes(3 * c.block); got != 3*c.bytes {
			t.Errorf("%v: RowBytes(%d) = %d, want %d", c.dt, 3*c.block, got, 3*c.bytes)
		}
		if _, err := NewMat(c.dt, 1, 16, make([]byte, c.bytes)); err == nil {
			t.Errorf("%v with 16 columns accepted", c.dt)
		}
		if c.block == QKBlock {
			if _, err := NewMat(c.dt, 1, 32, make([]byte, c.bytes)); err == nil {
				t.Errorf("%v with 32 columns accepted", c.dt)
			}
		}
		if _, err := NewMat(c.dt, 2, c.block, make([]byte, c.bytes)); err == nil {
			t.Errorf("%v 2×%d accepted with one block", c.dt, c.block)
		}
		if c.dt.String() != c.name {
			t.Errorf("%v: name %q", c.dt, c.name)
		}
	}
}

// TestQKAsmMatchesGo compares the Q6_K, Q5_K, Q5_0 and Q5_1 assembly
// kernels, GEMV and gather, with the pure-Go references on the same
// quantized x (odd row counts, gather lists with repeats, a guard after y).
func TestQKAsmMatchesGo(t *testing.T) {
	if len(archKernels) == 0 {
		t.Skip("no assembly kernels on this CPU")
	}
	r := rand.New(rand.NewPCG(55, 56))
	for _, k := range archKernels {
		for _, dt := range []DType{Q5_K, Q6_K, Q5_0, Q5_1} {
			if !q4HasAsm(dt) {
				continue
			}
			for _, sh := range q4Shapes(dt) {
				rows, cols := sh[0], sh[1]
				m, _, mags, _ := randQK(r, dt, rows, cols, 3)
				x := randVec(r, cols, 2)
				qx := quantizeQ4X(x)
				list := make([]int32, rows+2)
				for i := range list {
					list[i] = int32(r.IntN(rows))
					if i%3 == 1 {
						list[i] = list[i-1]
					}
				}
				y := make([]float32, rows+1)
				yg := make([]float32, len(list)+1)
				y[rows], yg[len(list)] = 7, 7
				rb := dt.RowBytes(cols)
				archDotRowsQ4(k.id, dt, m.q4Ptr(0, rows), rb, qx, &y[0], nil, rows, cols)
				archDotRowsQ4(k.id, dt, m.q4Ptr(0, rows), rb, qx, &yg[0], &list[0], len(list), cols)
				if y[rows] != 7 || yg[len(list)] != 7 {
					t.Fatalf("%s %v %d×%d: wrote past y", k.name, dt, rows, cols)
				}
				// A GEMV over rows 1.. (the other parity of n) gives the
				// same values and leaves y[0] alone.
				if rows > 1 {
					y1 := make([]float32, rows)
					y1[0] = 7
					archDotRowsQ4(k.id, dt, unsafe.Add(m.q4Ptr(0, rows), rb), rb, qx, &y1[1], nil, rows-1, cols)
					if y1[0] != 7 {
						t.Fatalf("%s %v %d×%d: GEMV of rows 1.. wrote y[0]", k.name, dt, rows, cols)
					}
					for i := 1; i < rows; i++ {
						if y1[i] != y[i] {
							t.Fatalf("%s %v %d×%d: row %d %v in a GEMV of rows 1.., %v", k.name, dt, rows, cols, i, y1[i], y[i])
						}
					}
				}
				for i := range rows {
					g := m.dotRowQ4X(i, qx)
					var s float64
					for j := range x {
						s += float64(mags[i*cols+j]) * (math.Abs(float64(x[j])) + float64(qx.d[j/Q4Block]))
					}
					if math.Abs(float64(y[i]-g)) > 4e-6*s {
						t.Fatalf("%s %v %d×%d row %d: asm %v, go %v", k.name, dt, rows, cols, i, y[i], g)
					}
				}
				for j, i := range list {
					if yg[j] != y[i] {
						t.Fatalf("%s %v %d×%d: gather row %d %v, GEMV %v", k.name, dt, rows, cols, i, yg[j], y[i])
					}
				}
				q4XPool.Put(qx)
			}
		}
	}
}

// BenchmarkQKGEMV is single-threaded GEMV over 16384×2048 weights in
// Q4_K (for reference), Q6_K, Q5_0, Q5_K and Q5_1, per kernel set.
func BenchmarkQKGEMV(b *testing.B) {
	defer SetPureGo(false)
	r := rand.New(rand.NewPCG(3, 3))
	rows, cols := 16384, 2048
	for _, dt := range []DType{Q4_K, Q6_K, Q5_0, Q5_K, Q5_1} {
		m, _, _, _ := randQK(r, dt, rows, cols, 0)
		x := randVec(r, cols, 0)
		y := make([]float32, rows)
		for _, name := range kernelNames() {
			if name == "go" && q4HasAsm(dt) {
				continue
			}
			b.Run(dt.String()+"/"+name, func(b *testing.B) {
				useKernels(name)
				b.SetBytes(m.Bytes())
				for b.Loop() {
					m.gemvRows(y, x, 0, rows)
				}
			})
		}
	}
}

// TestQKDequantAsmMatchesGo: the block decoders of the prompt GEMM's
// packing (assembly for Q6_K and Q5_K) give Mat.Row's values exactly.
func TestQKDequantAsmMatchesGo(t *testing.T) {
	if len(archKernels) == 0 {
		t.Skip("no assembly kernels on this CPU")
	}
	r := rand.New(rand.NewPCG(57, 58))
	for _, dt := range []DType{Q5_K, Q6_K, Q5_0, Q5_1} {
		m, vals, _, _ := randQK(r, dt, 3, 3*dt.q4Block(), 1)
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

// TestQKRowGroups checks the kernels that take four rows per pass (Q6_K's
// dotQ6KAVX2, Q5_K's dotQ5KAVX2, Q4_K's dotQ4KR4VNNI and dotQ4KR4AVX2)
// called directly: GEMV and gather of every row count
// and list length 1..9 and a few larger (passes past the end clamp to the
// last row), lists with repeats in one pass and rows in descending order,
// guards before and after y, the Go reference within the f32-order bound,
// and gather equal to GEMV exactly.
func TestQKRowGroups(t *testing.T) {
	if len(archKernels) == 0 {
		t.Skip("no assembly kernels on this CPU")
	}
	type kernel func(w unsafe.Pointer, stride int, xq *int8, dx, sx, y *float32, rows *int32, n, cols int)
	kernels := []struct {
		name string
		dt   DType
		fn   kernel
	}{{"q6_k", Q6_K, dotQ6KAVX2}, {"q5_k", Q5_K, dotQ5KAVX2}, {"q4_k/avx2", Q4_K, dotQ4KR4AVX2}}
	type entry = struct {
		name string
		dt   DType
		fn   kernel
	}
	if q4VNNI {
		kernels = append(kernels, entry{"q4_k/vnni", Q4_K, dotQ4KR4VNNI})
	}
	r := rand.New(rand.NewPCG(59, 60))
	for _, k := range kernels {
		dt := k.dt
		for _, rows := range []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 33, 127, 128, 130, 256} {
			for _, nb := range []int{1, 3} {
				cols := nb * QKBlock
				var m Mat
				var mags []float32
				if dt == Q4_K {
					m, _, mags = randQ4(r, dt, rows, cols, 1)
				} else {
					m, _, mags, _ = randQK(r, dt, rows, cols, 1)
				}
				x := randVec(r, cols, 3)
				qx := quantizeQ4X(x)
				rb := dt.RowBytes(cols)
				w := m.q4Ptr(0, rows)
				// y with a guard on either side.
				y := make([]float32, rows+2)
				y[0], y[rows+1] = 7, 7
				k.fn(w, rb, &qx.q[0], &qx.d[0], &qx.s[0], &y[1], nil, rows, cols)
				if y[0] != 7 || y[rows+1] != 7 {
					t.Fatalf("%s %d×%d: GEMV wrote outside y", k.name, rows, cols)
				}
				for i := range rows {
					g := m.dotRowQ4X(i, qx)
					var s float64
					for j := range x {
						s += float64(mags[i*cols+j]) * (math.Abs(float64(x[j])) + float64(qx.d[j/Q4Block]))
					}
					if math.Abs(float64(y[1+i]-g)) > 4e-6*s {
						t.Fatalf("%s %d×%d row %d: asm %v, go %v", k.name, rows, cols, i, y[1+i], g)
					}
				}
				for _, n := range []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 2*rows + 3} {
					list := make([]int32, n)
					for i := range list {
						switch i % 3 {
						case 0:
							list[i] = int32(r.IntN(rows))
						case 1:
							list[i] = list[i-1] // a repeat
						default:
							list[i] = int32(rows - 1 - i%rows) // descending
						}
					}
					yg := make([]float32, n+2)
					yg[0], yg[n+1] = 7, 7
					k.fn(w, rb, &qx.q[0], &qx.d[0], &qx.s[0], &yg[1], &list[0], n, cols)
					if yg[0] != 7 || yg[n+1] != 7 {
						t.Fatalf("%s %d×%d: gather of %d wrote outside y", k.name, rows, cols, n)
					}
					for j, i := range list {
						if yg[1+j] != y[1+i] {
							t.Fatalf("%s %d×%d: gather of %d, row %d: %v, GEMV %v", k.name, rows, cols, n, i, yg[1+j], y[1+i])
						}
					}
				}
				q4XPool.Put(qx)
			}
		}
	}
}
