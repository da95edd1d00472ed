package sparsity

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"dejavu/checkpoint"
	"dejavu/kernels"
	"dejavu/model"
)

// TrainOptions configure Train. Zero values take the defaults shown.
type TrainOptions struct {
	Rank        int     // MLP predictor rank for every layer (0: auto, see BytesFrac)
	BytesFrac   float64 // auto rank: a layer's predictors stay under this fraction of its weight bytes (0.1)
	Epochs      int     // passes over the training split (6)
	Batch       int     // tokens per step (256)
	LR          float64 // AdamW learning rate (3e-3, cosine-decayed to a tenth)
	WeightDecay float64 // AdamW decoupled weight decay on the matrices (1e-4)
	ValFrac     float64 // the last fraction of the tokens held out for validation (0.1)
	Recall      float64 // target recall of active neurons on validation (0.99)
	HeadFrac    float64 // a head is important when among this top fraction by output norm (0.5)
	HeadRecall  float64 // target recall of important heads (0.999: on small models every dropped head costs)
	MaxTokens   int     // use at most this many recorded tokens (0: all)
	// Mass, when > 0, sets each layer's MLP budget to the smallest reaching
	// this activation-mass recall on validation instead of Recall.
	Mass float64
	// HeadMass, when > 0, sets each layer's head budget to the smallest
	// reaching this head-norm-mass recall on validation instead of HeadRecall.
	HeadMass float64
	// HeadLabelMass, when > 0, labels as important the fewest heads covering
	// this fraction of a token's head-norm mass instead of the top HeadFrac.
	HeadLabelMass float64
	Seed          uint64
	// MLPInput is what the MLP predictors read: MLPInputBlock (""; the
	// default) or MLPInputLayer (DejaVu's choice: the prediction overlaps
	// the attention).
	MLPInput string
	// Progress, if set, is called after each epoch of each predictor.
	Progress func(layer int, what string, epoch, epochs int)
}

func (o *TrainOptions) defaults() {
	def := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.BytesFrac, 0.1)
	def(&o.LR, 3e-3)
	def(&o.WeightDecay, 1e-4)
	def(&o.ValFrac, 0.1)
	def(&o.Recall, 0.99)
	def(&o.HeadFrac, 0.5)
	def(&o.HeadRecall, 0.999)
	if o.Epochs <= 0 {
		o.Epochs = 6
	}
	if o.Batch <= 0 {
		o.Batch = 256
	}
}

// AutoRank is the MLP predictor rank Train picks for layer l: the largest
// multiple of 8 whose f16 predictor (Hidden·r + r·FFN) stays under frac of
// the layer's weight bytes, within [8, min(Hidden, FFN)].
func AutoRank(m *model.Model, l int, frac float64) int {
	c := m.Cfg
	lb := layerBytes(m, l)
	r := int(frac*float64(lb)/float64(2*(c.Hidden+c.FFN))) / 8 * 8
	return max(8, min(r, c.Hidden, c.FFN))
}

func layerBytes(m *model.Model, l int) int64 {
	L := &m.Layers[l]
	var n int64
	for _, w := range []*model.Linear{&L.Q, &L.K, &L.V, &L.O, &L.Gate, &L.Up, &L.Down} {
		n += w.W.Bytes()
	}
	return n
}

// Train fits, for every layer of m, the MLP-neuron predictor (residual
// stream entering the MLP → one logit per neuron; label: activation > 0) and
// the lookahead head predictor (residual stream entering layer l's attention
// → one logit per head of layer l+1; label: among the top HeadFrac heads by
// output norm). Both are linear low-rank maps d→r→out, as in DejaVu, over
// the standardized input, trained with positive-weighted binary
// cross-entropy and AdamW; the epoch with the smallest budget reaching the
// recall target on the validation split is kept, and that budget (top-k,
// multiples of 8 neurons) and a logit threshold are calibrated per layer.
func Train(m *model.Model, pool *kernels.Pool, ds *Dataset, o TrainOptions) (*Predictors, error) {
	o.defaults()
	c := m.Cfg
	if err := checkMLPInput(o.MLPInput); err != nil {
		return nil, fmt.Errorf("sparsity: %w", err)
	}
	layerIn := o.MLPInput == MLPInputLayer
	fp := Fingerprint(m)
	if !fingerprintMatches(m, fp, ds.Fingerprint) {
		return nil, fmt.Errorf("sparsity: the activations in %s were recorded from another model (%s, fingerprint %.12s…), not %s (%.12s…): collect them again", ds.Dir, ds.Model, ds.Fingerprint, m.Source, fp)
	}
	if ds.Layers != c.Layers || ds.Hidden != c.Hidden || ds.FFN != c.FFN || ds.Heads != c.Heads {
		return nil, errors.New("sparsity: the activations' shapes do not match the model")
	}
	N := ds.Tokens
	if o.MaxTokens > 0 {
		N = min(N, o.MaxTokens)
	}
	// Validation: every round(1/ValFrac)-th block of valBlock consecutive
	// tokens: held-out text spread over all sources.
	every := max(2, int(math.Round(1/o.ValFrac)))
	valBlock := min(128, max(1, N/(every*20)))
	var train, val []int
	for i := 0; i < N; i++ {
		if (i/valBlock)%every == every-1 {
			val = append(val, i)
		} else {
			train = append(train, i)
		}
	}
	if len(val) < 8 || len(train) < 8 {
		return nil, fmt.Errorf("sparsity: %d recorded tokens are too few to train and validate (collect more)", N)
	}
	nVal := len(val)
	norm := "layernorm"
	if c.Family == model.Llama {
		norm = "rms"
	}
	p := &Predictors{Fingerprint: fp, Info: Info{Model: m.Source, Layers: c.Layers, Hidden: c.Hidden,
		FFN: c.FFN, Heads: c.Heads, Norm: norm, Kind: "linear-lowrank", Tokens: N - nVal, ValTokens: nVal,
		Recall: o.Recall, HeadFrac: o.HeadFrac, HeadRecallT: o.HeadRecall}}
	if layerIn {
		p.Info.MLPInput = MLPInputLayer
	}
	rms := norm == "rms"
	rng := rand.New(rand.NewPCG(o.Seed, 0x5eed))
	nHeadPos := max(1, int(math.Ceil(o.HeadFrac*float64(c.Heads))))
	for l := 0; l < c.Layers; l++ {
		last := l+1 == c.Layers
		ld, err := ds.Layer(l, !last || layerIn, true, true, false)
		if err != nil {
			return nil, err
		}
		std := func(X []float32) []float32 {
			X = X[:N*c.Hidden]
			for i := 0; i < N; i++ {
				standardize(X[i*c.Hidden:(i+1)*c.Hidden], X[i*c.Hidden:(i+1)*c.Hidden], rms)
			}
			return X
		}
		var Xa []float32 // standardized attention inputs (lookahead, and the MLP predictor's with layerIn)
		if !last || layerIn {
			Xa = std(ld.AttnIn)
		}
		st := LayerStats{Layer: l, LayerBytes: layerBytes(m, l)}
		st.Rank = o.Rank
		if st.Rank <= 0 {
			st.Rank = AutoRank(m, l, o.BytesFrac)
		}
		st.Rank = min(st.Rank, c.Hidden, c.FFN)
		Xm := std(ld.MLPIn) // the MLP block's standardized inputs: exact activations
		X := Xm
		if layerIn {
			X = Xa
		}
		fd := &fitData{X: X, in: c.Hidden, Y: ld.Act, stride: (c.FFN + 7) / 8, out: c.FFN, train: train, val: val}
		prog := func(e int) {
			if o.Progress != nil {
				o.Progress(l, "mlp", e, o.Epochs)
			}
		}
		var init func(*trainer)
		first := &m.Layers[l].Up
		if c.Family == model.Llama {
			first = &m.Layers[l].Gate
		}
		// Started from the up projection itself when it is exact for the
		// input (the MLP block's); from the layer's input that start is
		// worse than a random one (docs/sparsity.md).
		if w, b, ok := exactLinear(m, l, first); ok && !layerIn {
			init = func(t *trainer) { initLowRank(t, w, b, rng) }
		}
		lr, cal, best := fit(pool, fd, st.Rank, 8, o.Recall, &o, rng, prog, init)
		p.mlp = append(p.mlp, lr)
		st.BestEpoch = best
		st.Budget, st.Recall, st.Precision = cal.k, cal.recall, cal.precision
		st.TrueDensity, st.PredDensity = cal.trueDensity, float64(cal.k)/float64(c.FFN)
		st.Threshold, st.ThreshDensity = cal.thr, cal.thrDensity
		st.PredictorBytes = lr.A.Bytes() + lr.B.Bytes() + 4*int64(len(lr.Bias))
		mlpCurves(pool, m, l, &lr, fd, Xm, &st, o.Mass)
		if !last {
			next, err := ds.Layer(l+1, false, false, false, true)
			if err != nil {
				return nil, err
			}
			var hy []byte
			if o.HeadLabelMass > 0 {
				hy = headMassLabels(next.HeadNorm[:N*c.Heads], c.Heads, o.HeadLabelMass)
			} else {
				hy = headLabels(next.HeadNorm[:N*c.Heads], c.Heads, nHeadPos)
			}
			hfd := &fitData{X: Xa, in: c.Hidden, Y: hy,
				stride: (c.Heads + 7) / 8, out: c.Heads, train: train, val: val}
			hprog := func(e int) {
				if o.Progress != nil {
					o.Progress(l, "heads", e, o.Epochs)
				}
			}
			hlr, hcal, _ := fit(pool, hfd, c.Heads, 1, o.HeadRecall, &o, rng, hprog, nil)
			p.head = append(p.head, hlr)
			st.HeadBudget, st.HeadRecall = max(1, hcal.k), hcal.recall
			zs := predLogits(pool, &hlr, Xa, c.Hidden, val)
			st.HeadMassCurve = coverCurve(pool, zs, gatherRows(next.HeadNorm, c.Heads, val), nVal, c.Heads, 1)
			if o.HeadMass > 0 {
				st.HeadBudget = budgetFor(st.HeadMassCurve, o.HeadMass, 1, c.Heads)
				st.HeadRecall = 0 // the label recall target was not used
			}
			st.HeadMass = float64(st.HeadMassCurve[st.HeadBudget-1])
			st.HeadDensity = float64(st.HeadBudget) / float64(c.Heads)
			st.PredictorBytes += hlr.A.Bytes() + hlr.B.Bytes() + 4*int64(len(hlr.Bias))
		}
		p.Info.Stats = append(p.Info.Stats, st)
	}
	if err := p.finish(); err != nil {
		return nil, err
	}
	return p, nil
}

// headLabels marks, per token, the top k heads by norm (as bit rows).
func headLabels(norms []float32, H, k int) []byte {
	stride := (H + 7) / 8
	n := len(norms) / H
	out := make([]byte, n*stride)
	idx := make([]int32, 0, H)
	scratch := make([]float32, H)
	for i := 0; i < n; i++ {
		idx = topK(norms[i*H:(i+1)*H], k, scratch, idx[:0])
		for _, h := range idx {
			out[i*stride+int(h)>>3] |= 1 << (h & 7)
		}
	}
	return out
}

// headMassLabels marks, per token, the fewest heads (largest norms first)
// whose norms sum to at least frac of the token's total (as bit rows).
func headMassLabels(norms []float32, H int, frac float64) []byte {
	stride := (H + 7) / 8
	n := len(norms) / H
	out := make([]byte, n*stride)
	idx := make([]int, H)
	for i := 0; i < n; i++ {
		row := norms[i*H : (i+1)*H]
		var total float64
		for h := range idx {
			idx[h] = h
			total += float64(row[h])
		}
		slices.SortFunc(idx, func(a, b int) int {
			switch {
			case row[a] > row[b]:
				return -1
			case row[a] < row[b]:
				return 1
			}
			return a - b
		})
		var cum float64
		for _, h := range idx {
			out[i*stride+h>>3] |= 1 << (h & 7)
			if cum += float64(row[h]); cum >= frac*total {
				break
			}
		}
	}
	return out
}

// mlpCurves measures layer l's MLP predictor on the validation rows of fd:
// the activation-mass recall and the (per-token) neuron recall at every
// budget (activations recomputed from Xm, the MLP block's standardized
// inputs); with mass > 0 the layer's budget becomes the smallest reaching
// that mass recall.
func mlpCurves(pool *kernels.Pool, m *model.Model, l int, lr *lowRank, fd *fitData, Xm []float32, st *LayerStats, mass float64) {
	F := fd.out
	n := len(fd.val)
	zs := predLogits(pool, lr, fd.X, fd.in, fd.val)
	bits := make([]float32, n*F)
	for k, i := range fd.val {
		for f := 0; f < F; f++ {
			if fd.label(i, f) {
				bits[k*F+f] = 1
			}
		}
	}
	st.RecallCurve = coverCurve(pool, zs, bits, n, F, 8)
	mw := neuronMass(m, pool, l, Xm, fd.val)
	if mw == nil {
		mw = bits // post-LN: no exact activations; every active neuron counts the same
	}
	st.MassCurve = coverCurve(pool, zs, mw, n, F, 8)
	if mass > 0 {
		st.Budget = budgetFor(st.MassCurve, mass, 8, F)
		st.PredDensity = float64(st.Budget) / float64(F)
		st.Recall = float64(st.RecallCurve[st.Budget/8-1])
		st.Precision = st.Recall * st.TrueDensity / st.PredDensity
	}
	st.MassRecall = float64(st.MassCurve[st.Budget/8-1])
}

// fitData is one predictor's training problem: N rows of in standardized
// inputs and out binary labels (bit rows of stride bytes), split into
// training and validation rows.
type fitData struct {
	X           []float32
	in          int
	Y           []byte
	stride, out int
	train, val  []int // row indices
}

func (d *fitData) label(i, f int) bool { return d.Y[i*d.stride+f>>3]>>(f&7)&1 != 0 }

type calibration struct {
	k                              int
	recall, precision, trueDensity float64
	thr                            float32
	thrDensity                     float64
}

// better reports whether a beats b: a smaller budget, then a higher recall.
func (a calibration) better(b calibration) bool {
	return a.k < b.k || a.k == b.k && a.recall > b.recall
}

// trainer holds one predictor's parameters, optimizer state and the
// buffers of one batch. All products run through kernels.Exec.MatMul.
type trainer struct {
	d                  *fitData
	exec               *kernels.Exec
	pool               *kernels.Pool
	r, B               int
	A, Bt, c           []float32 // r×in, out×r, out
	gA, gB, gc         []float32
	mA, vA, mB, vB     []float32
	mc, vc             []float32
	step               int
	xb, xt, h, ht, z   []float32
	g, gt, dh, dht, bm []float32
	wpos               float32
	gtask              gradTask
}

func newTrainer(pool *kernels.Pool, d *fitData, r, B int, rng *rand.Rand) *trainer {
	in, out := d.in, d.out
	t := &trainer{d: d, pool: pool, exec: kernels.NewExec(pool, max(in, out, r, B)), r: r, B: B,
		A: make([]float32, r*in), Bt: make([]float32, out*r), c: make([]float32, out),
		gA: make([]float32, r*in), gB: make([]float32, out*r), gc: make([]float32, out),
		mA: make([]float32, r*in), vA: make([]float32, r*in), mB: make([]float32, out*r), vB: make([]float32, out*r),
		mc: make([]float32, out), vc: make([]float32, out),
		xb: make([]float32, B*in), xt: make([]float32, in*B), h: make([]float32, B*r), ht: make([]float32, r*B),
		z: make([]float32, B*out), g: make([]float32, B*out), gt: make([]float32, out*B),
		dh: make([]float32, B*r), dht: make([]float32, r*B), bm: make([]float32, r*out)}
	sa, sb := float32(1/math.Sqrt(float64(in))), float32(0.5/math.Sqrt(float64(r)))
	for i := range t.A {
		t.A[i] = float32(rng.NormFloat64()) * sa
	}
	for i := range t.Bt {
		t.Bt[i] = float32(rng.NormFloat64()) * sb
	}
	// Bias: the log-odds of each output's frequency; positives weighted by
	// sqrt(negatives/positives) of the whole layer.
	var pos int
	for f := 0; f < out; f++ {
		n := 0
		for _, i := range d.train {
			if d.label(i, f) {
				n++
			}
		}
		pos += n
		q := min(max(float64(n)/float64(len(d.train)), 1e-4), 1-1e-4)
		t.c[f] = float32(math.Log(q / (1 - q)))
	}
	dens := min(max(float64(pos)/float64(len(d.train)*out), 1e-4), 1-1e-4)
	t.wpos = float32(min(max(math.Sqrt((1-dens)/dens), 1), 30))
	t.gtask.t = t
	t.gtask.loss = make([]float64, pool.Threads())
	return t
}

// forward computes logits z (nb×out) of rows xb (nb×in) into t.z, keeping h.
func (t *trainer) forward(A, Bt kernels.Mat, bias []float32, nb int) {
	t.exec.MatMul(t.h[:nb*t.r], A, t.xb[:nb*t.d.in], nb)
	t.exec.MatMul(t.z[:nb*t.d.out], Bt, t.h[:nb*t.r], nb)
	out := t.d.out
	for i := 0; i < nb; i++ {
		kernels.Add(t.z[i*out:(i+1)*out], bias)
	}
}

func (t *trainer) gather(rows []int) {
	in := t.d.in
	for k, i := range rows {
		copy(t.xb[k*in:(k+1)*in], t.d.X[i*in:(i+1)*in])
	}
}

// gradTask turns logits into loss gradients (G and Gᵀ) over batch rows.
type gradTask struct {
	t    *trainer
	rows []int
	loss []float64
}

func (g *gradTask) Run(worker, start, end int) {
	t := g.t
	out, nb := t.d.out, len(g.rows)
	inv := 1 / float32(nb)
	var loss float64
	for k := start; k < end; k++ {
		i := g.rows[k]
		z := t.z[k*out : (k+1)*out]
		gr := t.g[k*out : (k+1)*out]
		for f, v := range z {
			s := float32(1 / (1 + math.Exp(-float64(v))))
			var gv float32
			if t.d.label(i, f) {
				gv = t.wpos * (s - 1)
				loss += float64(t.wpos) * softplus(-float64(v))
			} else {
				gv = s
				loss += softplus(float64(v))
			}
			gv *= inv
			gr[f] = gv
			t.gt[f*nb+k] = gv
		}
	}
	g.loss[worker] += loss
}

func softplus(x float64) float64 {
	if x > 30 {
		return x
	}
	return math.Log1p(math.Exp(x))
}

// batch runs one AdamW step on rows.
func (t *trainer) batch(rows []int, lr float32, wd float32) {
	in, out, r, nb := t.d.in, t.d.out, t.r, len(rows)
	t.gather(rows)
	t.forward(kernels.MatF32(r, in, t.A), kernels.MatF32(out, r, t.Bt), t.c, nb)
	t.gtask.rows = rows
	t.pool.Parallel(nb, 8, &t.gtask)
	// Transposes for the weight gradients.
	transpose(t.ht[:r*nb], t.h[:nb*r], nb, r)
	transpose(t.xt[:in*nb], t.xb[:nb*in], nb, in)
	transpose(t.bm, t.Bt, out, r)
	// dBᵀ[f][j] = Σ_i G[i][f]·H[i][j]
	t.exec.MatMul(t.gB, kernels.MatF32(r, nb, t.ht[:r*nb]), t.gt[:out*nb], out)
	for f := 0; f < out; f++ {
		var s float32
		for _, v := range t.gt[f*nb : (f+1)*nb] {
			s += v
		}
		t.gc[f] = s
	}
	// dH = G·Bᵀᵀ, then dA[j][k] = Σ_i dH[i][j]·X[i][k]
	t.exec.MatMul(t.dh[:nb*r], kernels.MatF32(r, out, t.bm), t.g[:nb*out], nb)
	transpose(t.dht[:r*nb], t.dh[:nb*r], nb, r)
	t.exec.MatMul(t.gA, kernels.MatF32(in, nb, t.xt[:in*nb]), t.dht[:r*nb], r)
	t.step++
	adamw(t.A, t.gA, t.mA, t.vA, lr, wd, t.step)
	adamw(t.Bt, t.gB, t.mB, t.vB, lr, wd, t.step)
	adamw(t.c, t.gc, t.mc, t.vc, lr, 0, t.step)
}

func transpose(dst, src []float32, rows, cols int) {
	const bs = 32
	for i0 := 0; i0 < rows; i0 += bs {
		for j0 := 0; j0 < cols; j0 += bs {
			for i := i0; i < min(i0+bs, rows); i++ {
				for j := j0; j < min(j0+bs, cols); j++ {
					dst[j*rows+i] = src[i*cols+j]
				}
			}
		}
	}
}

func adamw(p, g, m, v []float32, lr, wd float32, step int) {
	const b1, b2, eps = 0.9, 0.999, 1e-8
	c1 := float32(1 / (1 - math.Pow(b1, float64(step))))
	c2 := float32(1 / (1 - math.Pow(b2, float64(step))))
	for i, gi := range g {
		m[i] = b1*m[i] + (1-b1)*gi
		v[i] = b2*v[i] + (1-b2)*gi*gi
		mh, vh := m[i]*c1, v[i]*c2
		p[i] -= lr * (mh/(sqrt32(vh)+eps) + wd*p[i])
	}
}

func sqrt32(v float32) float32 { return float32(math.Sqrt(float64(v))) }

// validate computes the validation logits with the given weights and
// calibrates the budget (multiples of step) reaching recall.
func (t *trainer) validate(A, Bt kernels.Mat, bias []float32, step int, recall float64) calibration {
	d := t.d
	zs := make([]float32, len(d.val)*d.out)
	for s := 0; s < len(d.val); s += t.B {
		rows := d.val[s:min(s+t.B, len(d.val))]
		t.gather(rows)
		t.forward(A, Bt, bias, len(rows))
		copy(zs[s*d.out:], t.z[:len(rows)*d.out])
	}
	return calibrate(t.pool, d, zs, step, recall)
}

// rankTask histograms, per worker, the rank of every positive's logit
// within its row (the number of larger logits in the row).
type rankTask struct {
	d       *fitData
	zs      []float32
	hist    [][]int64
	pos     [][]float32
	scratch [][]float32
}

func (r *rankTask) Run(w, start, end int) {
	d := r.d
	for k := start; k < end; k++ {
		z := r.zs[k*d.out : (k+1)*d.out]
		s := r.scratch[w]
		copy(s, z)
		slices.Sort(s)
		for f, v := range z {
			if !d.label(d.val[k], f) {
				continue
			}
			// larger values: len - (index of the first value > v)
			gt := d.out - upperBound(s, v)
			r.hist[w][gt]++
			r.pos[w] = append(r.pos[w], v)
		}
	}
}

func upperBound(s []float32, v float32) int {
	lo, hi := 0, len(s)
	for lo < hi {
		m := (lo + hi) / 2
		if s[m] <= v {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

func calibrate(pool *kernels.Pool, d *fitData, zs []float32, step int, recall float64) calibration {
	nVal := len(d.val)
	W := pool.Threads()
	rt := &rankTask{d: d, zs: zs, hist: make([][]int64, W), pos: make([][]float32, W), scratch: make([][]float32, W)}
	for w := range W {
		rt.hist[w] = make([]int64, d.out+1)
		rt.scratch[w] = make([]float32, d.out)
	}
	pool.Parallel(nVal, 16, rt)
	hist := make([]int64, d.out+1)
	var pos []float32
	for w := range W {
		for i, v := range rt.hist[w] {
			hist[i] += v
		}
		pos = append(pos, rt.pos[w]...)
	}
	P := int64(len(pos))
	cal := calibration{trueDensity: float64(P) / float64(nVal*d.out)}
	if P == 0 {
		cal.k, cal.recall, cal.thr = step, 1, float32(math.Inf(1))
		return cal
	}
	need := int64(math.Ceil(recall * float64(P)))
	var cum int64
	k := 0
	for k < d.out {
		// hits with rank < k+step
		for j := k; j < min(k+step, d.out); j++ {
			cum += hist[j]
		}
		k = min(k+step, d.out)
		if cum >= need {
			break
		}
	}
	cal.k = k
	cal.recall = float64(cum) / float64(P)
	cal.precision = float64(cum) / float64(int64(nVal)*int64(k))
	slices.Sort(pos)
	thr := pos[min(len(pos)-1, int(math.Floor((1-recall)*float64(P))))]
	cal.thr = math.Nextafter32(thr, float32(math.Inf(-1)))
	var above int64
	for _, v := range zs {
		if v > cal.thr {
			above++
		}
	}
	cal.thrDensity = float64(above) / float64(len(zs))
	return cal
}

// fit trains one low-rank predictor and returns it in f16 with the
// calibration of its best epoch (1-based; 0: the initialization, when init
// is given and no epoch beat it).
func fit(pool *kernels.Pool, d *fitData, r, step int, recall float64, o *TrainOptions, rng *rand.Rand, progress func(epoch int), init func(*trainer)) (lowRank, calibration, int) {
	t := newTrainer(pool, d, r, o.Batch, rng)
	order := slices.Clone(d.train)
	nTrain := len(order)
	var (
		best      calibration
		bestEpoch int
		bestA     []float32
		bestB     []float32
		bestC     []float32
	)
	bestEpoch = -1
	if init != nil {
		init(t)
		best = t.validate(toF16(t.A, r, d.in), toF16(t.Bt, d.out, r), t.c, step, recall)
		bestEpoch = 0
		bestA, bestB, bestC = slices.Clone(t.A), slices.Clone(t.Bt), slices.Clone(t.c)
	}
	stepsPerEpoch := (nTrain + o.Batch - 1) / o.Batch
	total := stepsPerEpoch * o.Epochs
	n := 0
	stale := 0
	for e := 1; e <= o.Epochs; e++ {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for s := 0; s < nTrain; s += o.Batch {
			frac := float64(n) / float64(total)
			lr := float32(o.LR * (0.1 + 0.9*0.5*(1+math.Cos(math.Pi*frac))))
			t.batch(order[s:min(s+o.Batch, nTrain)], lr, float32(o.WeightDecay))
			n++
		}
		A16, B16 := toF16(t.A, r, d.in), toF16(t.Bt, d.out, r)
		cal := t.validate(A16, B16, t.c, step, recall)
		if bestEpoch < 0 || cal.better(best) {
			best, bestEpoch = cal, e
			bestA, bestB, bestC = slices.Clone(t.A), slices.Clone(t.Bt), slices.Clone(t.c)
			stale = 0
		} else if stale++; stale >= 2 {
			if progress != nil {
				progress(o.Epochs)
			}
			break
		}
		if progress != nil {
			progress(e)
		}
	}
	return lowRank{A: toF16(bestA, r, d.in), B: toF16(bestB, d.out, r), Bias: bestC}, best, bestEpoch
}

// toF16 rounds a row-major f32 matrix to an f16 kernels.Mat.
func toF16(x []float32, rows, cols int) kernels.Mat {
	b := make([]byte, 2*len(x))
	for i, v := range x {
		h := checkpoint.F32ToF16(v)
		b[2*i], b[2*i+1] = byte(h), byte(h>>8)
	}
	m, err := kernels.NewMat(kernels.F16, rows, cols, b)
	if err != nil {
		panic(err)
	}
	return m
}
