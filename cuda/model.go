package cuda

import (
	"fmt"
	"math"
	"os"

	"dejavu/internal/half"
	"dejavu/kernels"
	"dejavu/model"
)

// mat is an f16 (bf16 when bf is set) matrix in device memory, rows ×
// cols row-major; or, when q8 is set, a Q8_0 matrix (8-bit predictors,
// read by gemv_q8 only): int8 quants at p (rows × cols bytes), f16 scales
// at s (rows × cols/32, one per block of 32 weights of a row).
type mat struct {
	p          uint64
	rows, cols int
	bf         bool
	q8         bool
	s          uint64
}

// kernel is the entry point of kernel base for m's weight type: base +
// "_f16" or base + "_bf16".
func (m mat) kernel(base string) string {
	if m.bf {
		return base + "_bf16"
	}
	return base + "_f16"
}

func (m mat) bytes() int64 {
	if m.q8 {
		return int64(m.rows) * int64(m.cols) * (kernels.Q8Block + 2) / kernels.Q8Block
	}
	return int64(m.rows) * int64(m.cols) * 2
}

// layer is one block's weights on the GPU. QKV is [Q; K; V] stacked (rows
// Heads·HeadDim + 2·KVHeads·HeadDim); Up is [Gate; Up] for gated MLPs;
// OT and DownT are the output and down projections transposed (one head
// dimension, one neuron per row). Biases and norms are f32 (0 = absent).
type layer struct {
	attnW, attnB, mlpW, mlpB uint64
	qkv                      mat
	qkvB                     uint64
	oT                       mat
	oB                       uint64
	up                       mat
	upB                      uint64
	downT                    mat
	downB                    uint64
}

// Model is a model's weights on a GPU.
type Model struct {
	Cfg    model.Config
	dev    *Device
	embed  mat // Vocab × ProjDim
	pos    mat // OPT: (MaxPos+2) × Hidden, f16 (f32 when posF32)
	posF32 bool
	projIn mat // Hidden × ProjDim (0 when absent)
	projOu mat // ProjDim × Hidden
	normW  uint64
	normB  uint64
	head   mat // Vocab × ProjDim (the embedding when tied)
	layers []layer
	allocs []uint64
	wbytes int64
	bf16   bool                     // the matrices are bf16 (else f16); prompt activations too
	preds  map[predKey]*predWeights // predictors uploaded once per model (see SetPredictors)
	predUp int                      // how many predictor sets were uploaded (tests)
}

// Upload copies m's weights to the GPU, with the down and output
// projections transposed: as bf16 when the checkpoint's weights are bf16
// (the first layer's query matrix decides), else as f16 (f32, f16 and Q8_0
// matrices are decoded and rounded to f16). DEJAVU_CUDA_DTYPE=f16 or bf16
// forces one.
func (d *Device) Upload(m *model.Model) (*Model, error) {
	if m == nil {
		return nil, fmt.Errorf("cuda: upload of a nil model")
	}
	g := &Model{Cfg: m.Cfg, dev: d, layers: make([]layer, len(m.Layers))}
	g.bf16 = len(m.Layers) > 0 && m.Layers[0].Q.W.DType == kernels.BF16
	switch os.Getenv("DEJAVU_CUDA_DTYPE") {
	case "f16":
		g.bf16 = false
	case "bf16":
		g.bf16 = true
	}
	err := d.do(func() error { return g.upload(m) })
	if err != nil {
		g.Close()
		return nil, err
	}
	return g, nil
}

func (g *Model) alloc(bytes int64, what string) (uint64, error) {
	p, err := g.dev.alloc(bytes, what)
	if err == nil {
		g.allocs = append(g.allocs, p)
	}
	return p, err
}

// mats uploads the matrices ws stacked by rows (each rows × cols), as the
// model's weight type (f16 or bf16), transposed when trans is set (then the
// result is cols × rows of one matrix).
func (g *Model) mats(what string, trans bool, ws ...kernels.Mat) (mat, error) {
	return g.matsAs(g.bf16, what, trans, ws...)
}

func (g *Model) matsAs(bf bool, what string, trans bool, ws ...kernels.Mat) (mat, error) {
	round := half.F32ToF16
	if bf {
		round = half.F32ToBF16
	}
	rows, cols := 0, ws[0].Cols
	for _, w := range ws {
		if w.Cols != cols {
			return mat{}, fmt.Errorf("cuda: %s: stacked matrices of %d and %d columns", what, cols, w.Cols)
		}
		rows += w.Rows
	}
	out := make([]uint16, rows*cols)
	row := make([]float32, cols)
	r0 := 0
	for _, w := range ws {
		for i := 0; i < w.Rows; i++ {
			w.Row(i, row)
			if trans {
				for j, v := range row {
					out[j*rows+r0+i] = round(v)
				}
			} else {
				o := out[(r0+i)*cols : (r0+i+1)*cols]
				for j, v := range row {
					o[j] = round(v)
				}
			}
		}
		r0 += w.Rows
	}
	m := mat{rows: rows, cols: cols, bf: bf}
	if trans {
		m.rows, m.cols = cols, rows
	}
	p, err := g.alloc(m.bytes(), what)
	if err != nil {
		return mat{}, err
	}
	m.p = p
	return m, htod(g.dev, p, out, what)
}

// rowsF32 uploads w as f32 (pos is then not a 16-bit mat: only add_pos
// reads it).
func (g *Model) rowsF32(what string, w kernels.Mat) (mat, error) {
	out := make([]float32, w.Rows*w.Cols)
	for i := 0; i < w.Rows; i++ {
		w.Row(i, out[i*w.Cols:(i+1)*w.Cols])
	}
	p, err := g.alloc(int64(4*len(out)), what)
	if err != nil {
		return mat{}, err
	}
	return mat{p: p, rows: w.Rows, cols: w.Cols}, htod(g.dev, p, out, what)
}

// vecs uploads f32 vectors concatenated; all nil gives 0 (absent).
func (g *Model) vecs(what string, vs ...[]float32) (uint64, error) {
	var all []float32
	for _, v := range vs {
		all = append(all, v...)
	}
	if all == nil {
		return 0, nil
	}
	for _, v := range vs {
		if v == nil {
			return 0, fmt.Errorf("cuda: %s: some of the stacked biases are missing", what)
		}
	}
	p, err := g.alloc(int64(4*len(all)), what)
	if err != nil {
		return 0, err
	}
	return p, htod(g.dev, p, all, what)
}

func (g *Model) upload(m *model.Model) error {
	c := m.Cfg
	var err error
	if g.embed, err = g.mats("embedding", false, m.Embed); err != nil {
		return err
	}
	g.head = g.embed
	if !c.TiedHead {
		if g.head, err = g.mats("output head", false, m.Head); err != nil {
			return err
		}
	}
	if c.Family == model.OPT {
		if g.pos, err = g.rowsF32("positions", m.Pos); err != nil { // f32, as on the CPU: one row a token
			return err
		}
		g.posF32 = true
	}
	if m.ProjIn != nil {
		if g.projIn, err = g.mats("project_in", false, m.ProjIn.W); err != nil {
			return err
		}
		if g.projOu, err = g.mats("project_out", false, m.ProjOut.W); err != nil {
			return err
		}
	}
	if g.normW, err = g.vecs("final norm", m.NormW); err != nil {
		return err
	}
	if g.normB, err = g.vecs("final norm bias", m.NormB); err != nil {
		return err
	}
	for i := range m.Layers {
		l, gl := &m.Layers[i], &g.layers[i]
		p := fmt.Sprintf("layer %d ", i)
		steps := []func() error{
			func() (err error) { gl.attnW, err = g.vecs(p+"attention norm", l.AttnNormW); return },
			func() (err error) { gl.attnB, err = g.vecs(p+"attention norm bias", l.AttnNormB); return },
			func() (err error) { gl.mlpW, err = g.vecs(p+"mlp norm", l.MLPNormW); return },
			func() (err error) { gl.mlpB, err = g.vecs(p+"mlp norm bias", l.MLPNormB); return },
			func() (err error) { gl.qkv, err = g.mats(p+"qkv", false, l.Q.W, l.K.W, l.V.W); return },
			func() (err error) { gl.qkvB, err = g.vecs(p+"qkv bias", l.Q.B, l.K.B, l.V.B); return },
			func() (err error) { gl.oT, err = g.mats(p+"output projection", true, l.O.W); return },
			func() (err error) { gl.oB, err = g.vecs(p+"output bias", l.O.B); return },
			func() (err error) {
				if c.Family == model.Llama {
					gl.up, err = g.mats(p+"gate|up", false, l.Gate.W, l.Up.W)
					if err == nil {
						gl.upB, err = g.vecs(p+"gate|up bias", l.Gate.B, l.Up.B)
					}
					return
				}
				gl.up, err = g.mats(p+"fc1", false, l.Up.W)
				if err == nil {
					gl.upB, err = g.vecs(p+"fc1 bias", l.Up.B)
				}
				return
			},
			func() (err error) { gl.downT, err = g.mats(p+"down projection", true, l.Down.W); return },
			func() (err error) { gl.downB, err = g.vecs(p+"down bias", l.Down.B); return },
		}
		for _, s := range steps {
			if err := s(); err != nil {
				return err
			}
		}
	}
	g.countBytes()
	return nil
}

func (g *Model) countBytes() {
	n := g.head.bytes() + g.projIn.bytes() + g.projOu.bytes()
	for _, l := range g.layers {
		n += l.qkv.bytes() + l.oT.bytes() + l.up.bytes() + l.downT.bytes()
	}
	g.wbytes = n
}

// WeightBytes is the number of weight bytes a dense decode step reads (16-bit
// matrices; the embedding row, norms and biases excluded).
func (g *Model) WeightBytes() int64 { return g.wbytes }

// BF16 reports whether the model's matrices are stored as bf16 (else f16).
func (g *Model) BF16() bool { return g.bf16 }

// Device is the GPU holding the model.
func (g *Model) Device() *Device { return g.dev }

// Close frees the model's device memory (the cached predictors' too).
func (g *Model) Close() error {
	allocs := g.allocs
	g.allocs = nil
	for _, pw := range g.preds {
		allocs = append(allocs, pw.allocs...)
	}
	g.preds = nil
	if len(allocs) == 0 {
		return nil
	}
	return g.dev.do(func() error {
		for _, p := range allocs {
			free(p)
		}
		return nil
	})
}

// Synthetic builds a model of configuration c (see model.SyntheticConfig)
// with random f16 weights generated on the GPU (uniform, standard deviation
// 0.02), unit norms and zero biases: for speed measurements at sizes whose
// weights would not fit or take long to build on the host.
func (d *Device) Synthetic(c model.Config, seed uint64) (*Model, error) {
	return d.SyntheticDType(c, seed, kernels.F16)
}

// SyntheticDType is Synthetic with the weights stored as dt: kernels.F16
// or kernels.BF16 (as a bf16 checkpoint would be).
func (d *Device) SyntheticDType(c model.Config, seed uint64, dt kernels.DType) (*Model, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("cuda: synthetic model: %w", err)
	}
	if dt != kernels.F16 && dt != kernels.BF16 {
		return nil, fmt.Errorf("cuda: synthetic model: weights of type %v: only f16 and bf16 are stored on the GPU", dt)
	}
	g := &Model{Cfg: c, dev: d, layers: make([]layer, c.Layers), bf16: dt == kernels.BF16}
	err := d.do(func() error { return g.synth(seed) })
	if err != nil {
		g.Close()
		return nil, err
	}
	return g, nil
}

func (g *Model) synth(seed uint64) error {
	c := g.Cfg
	d := g.dev
	const a = 0.0346 // uniform [-a, a]: σ ≈ 0.02
	rnd := func(rows, cols int, what string) (mat, error) {
		m := mat{rows: rows, cols: cols, bf: g.bf16 && what != "positions"} // add_pos reads f16
		p, err := g.alloc(m.bytes(), what)
		if err != nil {
			return m, err
		}
		m.p = p
		seed++
		n := uint64(rows) * uint64(cols)
		return m, d.launch("fill_random", [3]int{4 * d.SMs, 1, 1}, [3]int{256, 1, 1}, 0, p, n, seed*0x2545F4914F6CDD1D, float32(a), b2i(m.bf))
	}
	fill := func(n int, v float32, want bool, what string) (uint64, error) {
		if !want {
			return 0, nil
		}
		p, err := g.alloc(int64(4*n), what)
		if err != nil {
			return 0, err
		}
		return p, check("cuMemsetD32Async "+what, drv.cuMemsetD32Async(p, math.Float32bits(v), uint64(n), d.stream))
	}
	dd, f, qd, kvd, pd := c.Hidden, c.FFN, c.Heads*c.HeadDim, c.KVHeads*c.HeadDim, c.ProjDim
	opt := c.Family == model.OPT
	var err error
	must := func(e error) {
		if err == nil {
			err = e
		}
	}
	g.embed, err = rnd(c.Vocab, pd, "embedding")
	g.head = g.embed
	if !c.TiedHead {
		var e error
		g.head, e = rnd(c.Vocab, pd, "output head")
		must(e)
	}
	if opt {
		var e error
		g.pos, e = rnd(c.MaxPos+2, dd, "positions")
		must(e)
		if pd != dd {
			g.projIn, e = rnd(dd, pd, "project_in")
			must(e)
			g.projOu, e = rnd(pd, dd, "project_out")
			must(e)
		}
	}
	if c.FinalNorm || !opt {
		var e error
		g.normW, e = fill(dd, 1, true, "final norm")
		must(e)
		g.normB, e = fill(dd, 0, opt, "final norm bias")
		must(e)
	}
	upRows := f
	if !opt {
		upRows = 2 * f
	}
	for i := range g.layers {
		if err != nil {
			break
		}
		l := &g.layers[i]
		var e error
		l.attnW, e = fill(dd, 1, true, "norm")
		must(e)
		l.attnB, e = fill(dd, 0, opt, "norm bias")
		must(e)
		l.mlpW, e = fill(dd, 1, true, "norm")
		must(e)
		l.mlpB, e = fill(dd, 0, opt, "norm bias")
		must(e)
		l.qkv, e = rnd(qd+2*kvd, dd, "qkv")
		must(e)
		l.qkvB, e = fill(qd+2*kvd, 0, c.QKVBias, "qkv bias")
		must(e)
		l.oT, e = rnd(qd, dd, "output projection")
		must(e)
		l.oB, e = fill(dd, 0, c.OBias, "output bias")
		must(e)
		l.up, e = rnd(upRows, dd, "up")
		must(e)
		l.upB, e = fill(upRows, 0, c.MLPBias, "up bias")
		must(e)
		l.downT, e = rnd(f, dd, "down")
		must(e)
		l.downB, e = fill(dd, 0, c.MLPBias, "down bias")
		must(e)
	}
	if err != nil {
		return err
	}
	g.countBytes()
	return d.sync("synthetic weights")
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
