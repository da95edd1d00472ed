package cuda

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"dejavu/internal/half"
	"dejavu/kernels"
	"dejavu/model"
	"dejavu/sparsity"
)

// TestQ8Split (no GPU): the quants and scales recovered from a Q8_0
// matrix's decoded rows give back every weight exactly, zero blocks and
// tiny scales (f16 subnormals) included.
func TestQ8Split(t *testing.T) {
	rows, cols := 7, 96
	r := rand.New(rand.NewPCG(5, 6))
	src := make([]float32, rows*cols)
	for i := range src {
		src[i] = float32(r.NormFloat64())
	}
	for j := 0; j < 32; j++ {
		src[cols+j] = 0                                    // row 1, block 0: zeros
		src[2*cols+32+j] = float32(r.NormFloat64()) * 1e-6 // row 2, block 1: subnormal scale
		src[3*cols+64+j] = float32(r.NormFloat64()) * 3e3  // row 3, block 2: large
	}
	w := kernels.QuantizeQ8_0(rows, cols, src)
	q, sc, err := q8Split(w)
	if err != nil {
		t.Fatal(err)
	}
	row := make([]float32, cols)
	for i := 0; i < rows; i++ {
		w.Row(i, row)
		for j, v := range row {
			if got := half.F16ToF32(sc[i*cols/32+j/32]) * float32(q[i*cols+j]); got != v {
				t.Fatalf("row %d col %d: %g, want %g", i, j, got, v)
			}
		}
	}
	if _, _, err := q8Split(kernels.MatF32(1, 32, src[:32])); err == nil {
		t.Error("an f32 matrix was split")
	}
}

// TestGemvQ8: gemv_q8 against the CPU's integer Q8_0 product (x quantized
// block by block, q8emu below) on predictor shapes, plain and with the
// input standardized in the prologue, and its compare-and-compact output.
func TestGemvQ8(t *testing.T) {
	d := gpu(t)
	r := rand.New(rand.NewPCG(7, 8))
	defer func() { d.q8Warp = false }()
	for i, sh := range []struct{ rows, cols int }{{32, 64}, {128, 32}, {96, 32}, {256, 4096}, {16384, 256}, {256, 5120}, {20480, 256}, {64, 8192}} {
		for _, norm := range []bool{false, true} {
			d.q8Warp = i%2 == 1 // both ways of quantizing x
			src := make([]float32, sh.rows*sh.cols)
			for i := range src {
				src[i] = float32(r.NormFloat64()) * 0.05
			}
			w := kernels.QuantizeQ8_0(sh.rows, sh.cols, src)
			x := make([]float32, sh.cols)
			for i := range x {
				x[i] = float32(r.NormFloat64())*2 + 0.5
			}
			bias := make([]float32, sh.rows)
			for i := range bias {
				bias[i] = float32(r.NormFloat64()) * 0.1
			}
			xr := x
			if norm {
				xr = make([]float32, len(x))
				standardizeRef(xr, x)
			}
			want := q8emu(w, xr)
			for i := range want {
				want[i] += bias[i]
			}
			thr := float32(0.2)
			got := make([]float32, sh.rows)
			sel := make([]int32, sh.rows+1)
			up := &Model{dev: d}
			err := d.do(func() error {
				m, err := up.q8Mat("w", w)
				if err != nil {
					return err
				}
				ones := make([]float32, sh.cols)
				for i := range ones {
					ones[i] = 1
				}
				xp, err := up.vecs("x", x)
				if err != nil {
					return err
				}
				op, err := up.vecs("ones", ones)
				if err != nil {
					return err
				}
				bp, err := up.vecs("bias", bias)
				if err != nil {
					return err
				}
				yp, err := up.alloc(int64(4*sh.rows), "y")
				if err != nil {
					return err
				}
				sp, err := up.alloc(int64(4*(sh.rows+1)), "sel")
				if err != nil {
					return err
				}
				if err := zero(d, sp, sh.rows+1, "sel"); err != nil {
					return err
				}
				g := gemvOp{w: m, x: xp, bias: bp, y: yp, rows: sh.rows, act: -1, selOut: sp + 4, selCount: sp, thr: thr}
				if norm {
					g.normW, g.fuse, g.eps = op, true, 1e-5
				}
				if err := (&Session{d: d}).gemvQ8(g); err != nil {
					return err
				}
				if err := dtoh(d, got, yp, "y"); err != nil {
					return err
				}
				return dtoh(d, sel, sp, "sel")
			})
			freeAll(up.allocs)
			if err != nil {
				t.Fatal(err)
			}
			var worst, scale float64
			for i := range want {
				worst = math.Max(worst, math.Abs(float64(got[i]-want[i])))
				scale = math.Max(scale, math.Abs(float64(want[i])))
			}
			worst /= scale
			n := int(sel[0])
			picked := map[int32]bool{}
			bad := 0
			for _, i := range sel[1 : 1+n] {
				picked[i] = true
			}
			for i, v := range want {
				if (v > thr) != picked[int32(i)] && math.Abs(float64(v-thr)) > 1e-4*scale {
					bad++
				}
			}
			t.Logf("gemv_q8 %5d×%-5d norm %-5v x a warp a block %-5v: max |y − ref| / max |ref| %.2e, %d selected, %d differ from the reference", sh.rows, sh.cols, norm, d.q8Warp, worst, n, bad)
			tol := 1e-5
			if norm {
				tol = 2e-2 // the prologue's standardization differs in f32 rounding, which may move a rounding of x's quants
			}
			if worst > tol || bad > 0 || math.IsNaN(worst) {
				t.Errorf("gemv_q8 %d×%d norm %v: rel.err %.3g, %d selections differ", sh.rows, sh.cols, norm, worst, bad)
			}
		}
	}
}

// standardizeRef is sparsity's standardization, (x − mean)/std, ε 1e-5.
func standardizeRef(dst, x []float32) {
	n := float32(len(x))
	var mean, ss float32
	for _, v := range x {
		mean += v
	}
	mean /= n
	for _, v := range x {
		ss += (v - mean) * (v - mean)
	}
	inv := float32(1 / math.Sqrt(float64(ss/n)+1e-5))
	for i, v := range x {
		dst[i] = (v - mean) * inv
	}
}

// q8emu is the CPU's integer Q8_0 product (kernels/q8x.go): x quantized
// in blocks of 32 (dx = max|x|/127, round to even), dw·dx·Σ q_w·q_x.
func q8emu(w kernels.Mat, x []float32) []float32 {
	q, sc, err := q8Split(w)
	if err != nil {
		panic(err)
	}
	nb := w.Cols / 32
	xq := make([]int8, len(x))
	xd := make([]float32, nb)
	for b := 0; b < nb; b++ {
		var amax float32
		for _, v := range x[b*32 : b*32+32] {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		dx := amax / 127
		var id float32
		if dx != 0 {
			id = 1 / dx
		}
		xd[b] = dx
		for j := 0; j < 32; j++ {
			xq[b*32+j] = int8(math.RoundToEven(float64(x[b*32+j] * id)))
		}
	}
	y := make([]float32, w.Rows)
	for r := 0; r < w.Rows; r++ {
		var s float32
		for b := 0; b < nb; b++ {
			var si int32
			for j := 0; j < 32; j++ {
				si += int32(q[r*w.Cols+b*32+j]) * int32(xq[b*32+j])
			}
			s += float32(si) * (half.F16ToF32(sc[r*nb+b]) * xd[b])
		}
		y[r] = s
	}
	return y
}

// checkQ8Selections: on the same inputs, the GPU's 8-bit MLP predictors
// (gemv_q8 twice, standardizing in the first one's prologue, the threshold
// applied by the second's compaction) select exactly what p (quantized with
// sparsity.Predictors.Quantize) selects on the CPU, with the calibrated
// thresholds and with a top-k of 25% (taken on the host from the GPU's
// logits), over random hidden states of every layer. Leaves p's selection
// at the thresholds.
func checkQ8Selections(t *testing.T, d *Device, g *Model, p *sparsity.Predictors, name string) {
	t.Helper()
	c := g.Cfg
	r := rand.New(rand.NewPCG(11, 12))
	rms := 0
	if p.RMSInput() {
		rms = 1
	}
	var pw *predWeights
	up := &Model{dev: d}
	defer func() { freeAll(up.allocs) }()
	var xp, ones, h, z, sel uint64
	err := d.do(func() error {
		var err error
		if pw, err = g.predictorWeights(p); err != nil {
			return err
		}
		o := make([]float32, c.Hidden)
		for i := range o {
			o[i] = 1
		}
		if ones, err = up.vecs("ones", o); err != nil {
			return err
		}
		for _, b := range []struct {
			p *uint64
			n int
		}{{&xp, c.Hidden}, {&h, pw.maxRank}, {&z, c.FFN}, {&sel, c.FFN + 1}} {
			if *b.p, err = up.alloc(int64(4*b.n), "scratch"); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	checked, diff, fusedChecked := 0, 0, 0
	maxRel := 0.0
	for _, selection := range []sparsity.Selection{{MLPDensity: 0.25, HeadDensity: 0.5}, {}} {
		if err := p.SetSelection(selection); err != nil {
			t.Fatal(err)
		}
		for l := 0; l < c.Layers; l++ {
			k, thr, useThr, _ := p.LayerSelection(l)
			for trial := 0; trial < 16; trial++ {
				x := make([]float32, c.Hidden)
				off, scale := float32(r.NormFloat64()), float32(0.5+3*r.Float64())
				for i := range x {
					x[i] = off + scale*float32(r.NormFloat64())
				}
				want := p.MLP(l, x, nil)
				zs := make([]float32, c.FFN)
				cnt := make([]int32, c.FFN+1)
				s := &Session{d: d}
				err := d.do(func() error {
					if err := htod(d, xp, x, "x"); err != nil {
						return err
					}
					lr := pw.mlp[l]
					if err := s.gemvQ8(gemvOp{w: lr.a, x: xp, normW: ones, fuse: true, eps: 1e-5, rms: rms, y: h, rows: lr.a.rows, act: -1, zero: sel}); err != nil {
						return err
					}
					b := gemvOp{w: lr.b, x: h, bias: lr.bias, y: z, rows: c.FFN, act: -1}
					if useThr {
						b.selOut, b.selCount, b.thr = sel+4, sel, thr
					}
					if err := s.gemvQ8(b); err != nil {
						return err
					}
					if err := dtoh(d, zs, z, "logits"); err != nil {
						return err
					}
					return dtoh(d, cnt, sel, "selection")
				})
				if err != nil {
					t.Fatal(err)
				}
				var got []int32
				if useThr && trial < 2 {
					fusedChecked++
					if rel := checkPredMLP(t, d, g, p, pw, l, thr, r); rel > maxRel {
						maxRel = rel
					}
				}
				if useThr {
					got = append(got, cnt[1:1+cnt[0]]...)
				} else {
					idx := make([]int32, c.FFN)
					for i := range idx {
						idx[i] = int32(i)
					}
					slices.SortStableFunc(idx, func(a, b int32) int { return cmp.Compare(zs[b], zs[a]) })
					got = idx[:k]
				}
				inWant := map[int32]bool{}
				for _, i := range want {
					inWant[i] = true
				}
				n := 0
				for _, i := range got {
					if !inWant[i] {
						n++
					}
				}
				n += max(0, len(want)-len(got))
				checked += len(want)
				diff += n
			}
		}
	}
	t.Logf("%s: GPU q8_0 MLP predictors vs the CPU's on the same inputs (top-k 25%% and thresholds, %d layers × 16 inputs): %d of %d selected neurons differ",
		name, c.Layers, diff, checked)
	if diff > 0 {
		t.Errorf("%s: %d of %d selected neurons differ between the GPU's and the CPU's q8_0 predictors", name, diff, checked)
	}
	t.Logf("%s: pred_mlp (norm, q8_0 predictor with its threshold, up GEMV in one kernel) vs norm_rows, gemv_q8 twice and gemv, %d cases: same selections, up outputs within %.2g (max |Δ| / max |y|)",
		name, fusedChecked, maxRel)
}

// checkPredMLP runs layer l's MLP norm, predictor with its threshold and
// up GEMV both ways on a random hidden state: as separate kernels
// (norm_rows with the standardized copy, gemv_q8 twice with the
// compaction, gemv over the selection — the decode step without pred_mlp)
// and as pred_mlp. The selections must be the same sets, but for neurons
// whose separate logit is within 1e-4 of the threshold (the two take the
// norm's statistics in other orders); it returns the up outputs' largest
// difference relative to the largest output.
func checkPredMLP(t *testing.T, d *Device, g *Model, p *sparsity.Predictors, pw *predWeights, l int, thr float32, r *rand.Rand) float64 {
	t.Helper()
	c := g.Cfg
	s, err := g.NewSession(8)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.SetPredictors(p); err != nil {
		t.Fatal(err)
	}
	pr := s.sparse.pred
	if !s.canPredMLP(pr, l, 0) {
		t.Logf("layer %d: no pred_mlp for this predictor", l)
		return 0
	}
	x := make([]float32, c.Hidden)
	off, scale := float32(r.NormFloat64()), float32(0.5+3*r.Float64())
	for i := range x {
		x[i] = off + scale*float32(r.NormFloat64())
	}
	gl := &g.layers[l]
	normW, normB := gl.mlpW, gl.mlpB
	if !(c.Family == model.Llama || c.PreLN) {
		normW, normB = 0, 0
	}
	gated := 0
	if c.Family == model.Llama {
		gated = c.FFN
	}
	up := &Model{dev: d}
	defer func() { freeAll(up.allocs) }()
	var xp, xn, std, sel1, sel2, y1, y2 uint64
	zs := make([]float32, c.FFN)
	cnt1, cnt2 := make([]int32, c.FFN+1), make([]int32, c.FFN+1)
	ya, yb := make([]float32, c.FFN), make([]float32, c.FFN)
	err = d.do(func() error {
		for _, b := range []struct {
			p *uint64
			n int
		}{{&xp, c.Hidden}, {&xn, c.Hidden}, {&std, c.Hidden}, {&sel1, c.FFN + 1}, {&sel2, c.FFN + 1}, {&y1, c.FFN}, {&y2, c.FFN}} {
			var err error
			if *b.p, err = up.alloc(int64(4*b.n), "scratch"); err != nil {
				return err
			}
		}
		if err := htod(d, xp, x, "x"); err != nil {
			return err
		}
		in := xp
		if normW != 0 {
			if err := s.normStd(xp, normW, normB, xn, 0, 1, std); err != nil {
				return err
			}
			in = xn
		} else if err := d.launch("norm_rows", [3]int{1, 1, 1}, [3]int{256, 1, 1}, 0, xp, pr.ones, uint64(0), std, uint64(0), c.Hidden,
			float32(1e-5), b2i(pr.rms), 0, uint64(0), float32(0)); err != nil {
			return err
		}
		lr := pr.mlp[l]
		if err := s.gemvQ8(gemvOp{w: lr.a, x: std, y: pr.h, rows: lr.a.rows, act: -1, zero: sel1}); err != nil {
			return err
		}
		if err := s.gemvQ8(gemvOp{w: lr.b, x: pr.h, bias: lr.bias, y: pr.z, rows: c.FFN, act: -1, selOut: sel1 + 4, selCount: sel1, thr: thr}); err != nil {
			return err
		}
		upOp := gemvOp{w: gl.up, x: in, bias: gl.upB, y: y1, idx: sel1 + 4, count: sel1, rows: c.FFN, gateOff: gated, act: int(c.Act), expect: c.FFN, dyn: true}
		if err := s.gemv(upOp); err != nil {
			return err
		}
		if err := dtoh(d, zs, pr.z, "logits"); err != nil {
			return err
		}
		upOp.y = y2
		if err := s.predMLP(pr, l, xp, normW, normB, sel2+4, sel2, upOp); err != nil {
			return err
		}
		for _, c := range []struct {
			h []float32
			p uint64
		}{{ya, y1}, {yb, y2}} {
			if err := dtoh(d, c.h, c.p, "up"); err != nil {
				return err
			}
		}
		if err := dtoh(d, cnt1, sel1, "selection"); err != nil {
			return err
		}
		return dtoh(d, cnt2, sel2, "fused selection")
	})
	if err != nil {
		t.Fatal(err)
	}
	edge := func(nr int32) bool { return math.Abs(float64(zs[nr]-thr)) <= 1e-4*max(1, math.Abs(float64(thr))) }
	byNeuron := map[int32]float32{}
	for i, nr := range cnt1[1 : 1+cnt1[0]] {
		byNeuron[nr] = ya[i]
	}
	var maxD, maxY float64
	seen := map[int32]bool{}
	for i, nr := range cnt2[1 : 1+cnt2[0]] {
		seen[nr] = true
		v, ok := byNeuron[nr]
		if !ok {
			if !edge(nr) {
				t.Errorf("layer %d: pred_mlp selected neuron %d (logit %g, threshold %g), the separate kernels did not", l, nr, zs[nr], thr)
			}
			continue
		}
		maxD = max(maxD, math.Abs(float64(yb[i]-v)))
		maxY = max(maxY, math.Abs(float64(v)))
	}
	for nr := range byNeuron {
		if !seen[nr] && !edge(nr) {
			t.Errorf("layer %d: the separate kernels selected neuron %d (logit %g, threshold %g), pred_mlp did not", l, nr, zs[nr], thr)
		}
	}
	rel := 0.0
	if maxY > 0 {
		rel = maxD / maxY
	}
	if rel > 1e-4 {
		t.Errorf("layer %d: pred_mlp's up outputs differ from gemv's by %.3g of the largest", l, rel)
	}
	return rel
}
