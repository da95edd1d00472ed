package cuda

import (
	"fmt"
	"math"

	"dejavu/internal/half"
	"dejavu/kernels"
	"dejavu/model"
)

// mat is an f16 matrix in device memory, rows × cols row-major.
type mat struct {
	p          uint64
	rows, cols int
}

func (m mat) bytes() int64 { return int64(m.rows) * int64(m.cols) * 2 }

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
	pos    mat // OPT: (MaxPos+2) × Hidden
	projIn mat // Hidden × ProjDim (0 when absent)
	projOu mat // ProjDim × Hidden
	normW  uint64
	normB  uint64
	head   mat // Vocab × ProjDim (the embedding when tied)
	layers []layer
	allocs []uint64
	wbytes int64
}

// Upload copies m's weights to the GPU as f16 (whatever their dtype on the
// host: f32, f16, bf16 and Q8_0 matrices are decoded and rounded to f16),
// with the down and output projections transposed.
func (d *Device) Upload(m *model.Model) (*Model, error) {
	if m == nil {
		return nil, fmt.Errorf("cuda: upload of a nil model")
	}
	g := &Model{Cfg: m.Cfg, dev: d, layers: make([]layer, len(m.Layers))}
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

// mats uploads the matrices ws stacked by rows (each rows × cols), as f16,
// transposed when trans is set (then the result is cols × rows of one matrix).
func (g *Model) mats(what string, trans bool, ws ...kernels.Mat) (mat, error) {
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
					out[j*rows+r0+i] = half.F32ToF16(v)
				}
			} else {
				o := out[(r0+i)*cols : (r0+i+1)*cols]
				for j, v := range row {
					o[j] = half.F32ToF16(v)
				}
			}
		}
		r0 += w.Rows
	}
	m := mat{rows: rows, cols: cols}
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
		if g.pos, err = g.mats("positions", false, m.Pos); err != nil {
			return err
		}
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

// WeightBytes is the number of weight bytes a dense decode step reads (f16
// matrices; the embedding row, norms and biases excluded).
func (g *Model) WeightBytes() int64 { return g.wbytes }

// Device is the GPU holding the model.
func (g *Model) Device() *Device { return g.dev }

// Close frees the model's device memory.
func (g *Model) Close() error {
	allocs := g.allocs
	g.allocs = nil
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
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("cuda: synthetic model: %w", err)
	}
	g := &Model{Cfg: c, dev: d, layers: make([]layer, c.Layers)}
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
		m := mat{rows: rows, cols: cols}
		p, err := g.alloc(m.bytes(), what)
		if err != nil {
			return m, err
		}
		m.p = p
		seed++
		n := uint64(rows) * uint64(cols)
		return m, d.launch("fill_random", [3]int{4 * d.SMs, 1, 1}, [3]int{256, 1, 1}, 0, p, n, seed*0x2545F4914F6CDD1D, float32(a))
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
