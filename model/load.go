package model

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"dejavu/checkpoint"
	"dejavu/kernels"
)

// Linear is a weight matrix (out×in, as nn.Linear stores it) and an optional bias.
type Linear struct {
	W kernels.Mat
	B []float32 // nil when the layer has no bias
}

// Layer holds one transformer block's weights. For OPT, Up is fc1, Down is
// fc2 and Gate is empty; for the Llama family Gate, Up and Down are the gated MLP.
type Layer struct {
	AttnNormW, AttnNormB []float32 // B only for LayerNorm (OPT)
	Q, K, V, O           Linear
	MLPNormW, MLPNormB   []float32
	Gate, Up, Down       Linear
}

// Model is a loaded model: configuration and weights. Weights alias the
// memory-mapped checkpoint until Close.
type Model struct {
	Cfg             Config
	Embed           kernels.Mat // Vocab × ProjDim
	Pos             kernels.Mat // OPT learned positions: (MaxPos+2) × Hidden
	ProjIn, ProjOut *Linear     // OPT when word_embed_proj_dim != hidden_size
	NormW, NormB    []float32   // final norm (absent for post-LN OPT)
	Head            kernels.Mat // Vocab × ProjDim
	Layers          []Layer
	// Source names what was loaded (a directory or a llama2.c file).
	Source string
	closer io.Closer
	sparse *sparseWeights // neuron-major copies, after PrepareSparse
}

// Close releases the checkpoint mapping. The model must not be used afterwards.
func (m *Model) Close() error {
	if m.closer == nil {
		return nil
	}
	err := m.closer.Close()
	m.closer = nil
	return err
}

// WeightBytes is the number of bytes of all matrices a decode step reads
// (embedding rows excluded: one row per token).
func (m *Model) WeightBytes() int64 {
	n := m.Head.Bytes()
	for _, p := range []*Linear{m.ProjIn, m.ProjOut} {
		if p != nil {
			n += p.W.Bytes()
		}
	}
	for i := range m.Layers {
		l := &m.Layers[i]
		for _, w := range []*Linear{&l.Q, &l.K, &l.V, &l.O, &l.Gate, &l.Up, &l.Down} {
			n += w.W.Bytes()
		}
	}
	return n
}

// Load opens a model: a Hugging Face directory (config.json + safetensors),
// a GGUF file (a path ending in .gguf; see loadGGUF) or a llama2.c
// checkpoint file (.bin).
func Load(path string) (*Model, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	if !fi.IsDir() {
		if strings.HasSuffix(strings.ToLower(path), ".gguf") {
			return loadGGUF(path)
		}
		return loadLlama2C(path)
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		return nil, err
	}
	st, err := checkpoint.OpenSafetensors(path)
	if err != nil {
		return nil, err
	}
	m, err := FromStore(cfg, st)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("model: %s: %w", path, err)
	}
	m.Source = path
	m.closer = st
	return m, nil
}

func loadLlama2C(path string) (*Model, error) {
	lc, st, err := checkpoint.OpenLlama2C(path)
	if err != nil {
		return nil, err
	}
	cfg := Config{Arch: "llama2.c", Family: Llama, Vocab: lc.VocabSize, Hidden: lc.Dim, Layers: lc.NLayers,
		Heads: lc.NHeads, KVHeads: lc.NKVHeads, HeadDim: lc.Dim / lc.NHeads, FFN: lc.HiddenDim, MaxPos: lc.SeqLen,
		NormEps: 1e-5, Act: kernels.SiLU, ActName: "silu", TiedHead: lc.SharedClassifier, BOS: 1, EOS: 2,
		DType: "float32", ProjDim: lc.Dim, RopeTheta: 10000, Interleave: true}
	if err := cfg.Validate(); err != nil {
		st.Close()
		return nil, fmt.Errorf("model: %s: %w", path, err)
	}
	m, err := FromStore(cfg, st)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("model: %s: %w", path, err)
	}
	m.Source = path
	m.closer = st
	return m, nil
}

// loader fetches tensors by name and checks their shapes.
type loader struct {
	st     *checkpoint.Store
	prefix string
}

func (ld *loader) tensor(name string, shape ...int) (checkpoint.Tensor, error) {
	full := ld.prefix + name
	t, ok := ld.st.Tensor(full)
	if !ok {
		return t, fmt.Errorf("tensor %q is missing from the checkpoint", full)
	}
	if !sameShape(t.Shape, shape) {
		return t, fmt.Errorf("tensor %q has shape %v, expected %v", full, t.Shape, shape)
	}
	if !t.DType.IsFloat() {
		return t, fmt.Errorf("tensor %q has dtype %v, expected F32, F16 or BF16", full, t.DType)
	}
	return t, nil
}

func (ld *loader) has(name string) bool {
	_, ok := ld.st.Tensor(ld.prefix + name)
	return ok
}

// matDTypes maps the checkpoint dtypes a weight matrix may have (the block
// types from GGUF files included) to the kernels'.
var matDTypes = map[checkpoint.DType]kernels.DType{
	checkpoint.F32: kernels.F32, checkpoint.F16: kernels.F16, checkpoint.BF16: kernels.BF16,
	checkpoint.Q8_0: kernels.Q8_0, checkpoint.Q4_0: kernels.Q4_0, checkpoint.Q4_K: kernels.Q4_K,
	checkpoint.Q5_K: kernels.Q5_K, checkpoint.Q6_K: kernels.Q6_K,
	checkpoint.Q5_0: kernels.Q5_0, checkpoint.Q5_1: kernels.Q5_1,
}

func (ld *loader) mat(name string, rows, cols int) (kernels.Mat, error) {
	full := ld.prefix + name
	t, ok := ld.st.Tensor(full)
	if !ok {
		return kernels.Mat{}, fmt.Errorf("tensor %q is missing from the checkpoint", full)
	}
	if !sameShape(t.Shape, []int{rows, cols}) {
		return kernels.Mat{}, fmt.Errorf("tensor %q has shape %v, expected %v", full, t.Shape, []int{rows, cols})
	}
	dt, ok := matDTypes[t.DType]
	if !ok {
		return kernels.Mat{}, fmt.Errorf("tensor %q has dtype %v, expected F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q5_1, Q4_K, Q5_K or Q6_K", full, t.DType)
	}
	m, err := kernels.NewMat(dt, rows, cols, t.Data)
	if err != nil {
		return m, fmt.Errorf("tensor %q: %w", ld.prefix+name, err)
	}
	return m, nil
}

func (ld *loader) vec(name string, n int) ([]float32, error) {
	t, err := ld.tensor(name, n)
	if err != nil {
		return nil, err
	}
	v := make([]float32, n)
	return v, t.ToFloat32(v)
}

func (ld *loader) linear(name string, out, in int, bias bool) (Linear, error) {
	w, err := ld.mat(name+".weight", out, in)
	if err != nil {
		return Linear{}, err
	}
	l := Linear{W: w}
	if bias {
		if l.B, err = ld.vec(name+".bias", out); err != nil {
			return Linear{}, err
		}
	}
	return l, nil
}

// FromStore builds a model from a configuration and its tensors.
func FromStore(cfg Config, st *checkpoint.Store) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Family == OPT {
		return loadOPT(cfg, st)
	}
	return loadLlama(cfg, st, hfLlamaNames)
}

func loadOPT(c Config, st *checkpoint.Store) (*Model, error) {
	ld := &loader{st: st, prefix: "model.decoder."}
	if !ld.has("embed_tokens.weight") {
		ld.prefix = "decoder." // checkpoints saved from OPTModel
	}
	m := &Model{Cfg: c, Layers: make([]Layer, c.Layers)}
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var err error
	m.Embed, err = ld.mat("embed_tokens.weight", c.Vocab, c.ProjDim)
	add(err)
	m.Pos, err = ld.mat("embed_positions.weight", c.MaxPos+2, c.Hidden)
	add(err)
	if c.ProjDim != c.Hidden {
		pi, err := ld.linear("project_in", c.Hidden, c.ProjDim, false)
		add(err)
		po, err := ld.linear("project_out", c.ProjDim, c.Hidden, false)
		add(err)
		m.ProjIn, m.ProjOut = &pi, &po
	}
	if c.FinalNorm {
		m.NormW, err = ld.vec("final_layer_norm.weight", c.Hidden)
		add(err)
		m.NormB, err = ld.vec("final_layer_norm.bias", c.Hidden)
		add(err)
	}
	d, f := c.Hidden, c.FFN
	for i := range m.Layers {
		l := &m.Layers[i]
		p := fmt.Sprintf("layers.%d.", i)
		l.Q, err = ld.linear(p+"self_attn.q_proj", d, d, c.QKVBias)
		add(err)
		l.K, err = ld.linear(p+"self_attn.k_proj", d, d, c.QKVBias)
		add(err)
		l.V, err = ld.linear(p+"self_attn.v_proj", d, d, c.QKVBias)
		add(err)
		l.O, err = ld.linear(p+"self_attn.out_proj", d, d, c.OBias)
		add(err)
		l.AttnNormW, err = ld.vec(p+"self_attn_layer_norm.weight", d)
		add(err)
		l.AttnNormB, err = ld.vec(p+"self_attn_layer_norm.bias", d)
		add(err)
		l.Up, err = ld.linear(p+"fc1", f, d, c.MLPBias)
		add(err)
		l.Down, err = ld.linear(p+"fc2", d, f, c.MLPBias)
		add(err)
		l.MLPNormW, err = ld.vec(p+"final_layer_norm.weight", d)
		add(err)
		l.MLPNormB, err = ld.vec(p+"final_layer_norm.bias", d)
		add(err)
		if len(errs) > 0 {
			break
		}
	}
	if len(errs) == 0 {
		m.Head, err = headMat(st, "lm_head.weight", m.Embed, c)
		add(err)
	}
	return m, joinFirst(errs)
}

// llamaNames is one convention for naming a Llama-family checkpoint's
// tensors: Hugging Face's, or llama.cpp's in GGUF files.
type llamaNames struct {
	embed, norm, head                             string
	layer                                         string // printf pattern of a layer's prefix
	attnNorm, q, k, v, o, mlpNorm, gate, up, down string // within a layer; matrices without ".weight"
}

var hfLlamaNames = llamaNames{
	embed: "model.embed_tokens.weight", norm: "model.norm.weight", head: "lm_head.weight", layer: "model.layers.%d.",
	attnNorm: "input_layernorm.weight", q: "self_attn.q_proj", k: "self_attn.k_proj", v: "self_attn.v_proj",
	o: "self_attn.o_proj", mlpNorm: "post_attention_layernorm.weight", gate: "mlp.gate_proj", up: "mlp.up_proj",
	down: "mlp.down_proj",
}

var ggufLlamaNames = llamaNames{
	embed: "token_embd.weight", norm: "output_norm.weight", head: "output.weight", layer: "blk.%d.",
	attnNorm: "attn_norm.weight", q: "attn_q", k: "attn_k", v: "attn_v", o: "attn_output",
	mlpNorm: "ffn_norm.weight", gate: "ffn_gate", up: "ffn_up", down: "ffn_down",
}

func loadLlama(c Config, st *checkpoint.Store, nm llamaNames) (*Model, error) {
	ld := &loader{st: st}
	m := &Model{Cfg: c, Layers: make([]Layer, c.Layers)}
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var err error
	d, f, qd, kvd := c.Hidden, c.FFN, c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	m.Embed, err = ld.mat(nm.embed, c.Vocab, d)
	add(err)
	m.NormW, err = ld.vec(nm.norm, d)
	add(err)
	for i := range m.Layers {
		l := &m.Layers[i]
		p := fmt.Sprintf(nm.layer, i)
		l.AttnNormW, err = ld.vec(p+nm.attnNorm, d)
		add(err)
		l.Q, err = ld.linear(p+nm.q, qd, d, c.QKVBias)
		add(err)
		l.K, err = ld.linear(p+nm.k, kvd, d, c.QKVBias)
		add(err)
		l.V, err = ld.linear(p+nm.v, kvd, d, c.QKVBias)
		add(err)
		l.O, err = ld.linear(p+nm.o, d, qd, c.OBias)
		add(err)
		l.MLPNormW, err = ld.vec(p+nm.mlpNorm, d)
		add(err)
		l.Gate, err = ld.linear(p+nm.gate, f, d, c.MLPBias)
		add(err)
		l.Up, err = ld.linear(p+nm.up, f, d, c.MLPBias)
		add(err)
		l.Down, err = ld.linear(p+nm.down, d, f, c.MLPBias)
		add(err)
		if len(errs) > 0 {
			break
		}
	}
	if len(errs) == 0 {
		m.Head, err = headMat(st, nm.head, m.Embed, c)
		add(err)
	}
	return m, joinFirst(errs)
}

// headMat is the output projection: lm_head.weight, or the embedding when tied.
func headMat(st *checkpoint.Store, name string, embed kernels.Mat, c Config) (kernels.Mat, error) {
	if _, ok := st.Tensor(name); ok && !c.TiedHead {
		return (&loader{st: st}).mat(name, c.Vocab, c.ProjDim)
	}
	if !c.TiedHead {
		return kernels.Mat{}, fmt.Errorf("tensor %q is missing and tie_word_embeddings is false", name)
	}
	return embed, nil
}

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// joinFirst reports up to three errors, so one bad layout does not print a page.
func joinFirst(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	var b strings.Builder
	for i, e := range errs {
		if i == 3 {
			fmt.Fprintf(&b, "; and %d more", len(errs)-3)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(e.Error())
	}
	return errors.New(b.String())
}

// IsModelDir reports whether dir looks like a Hugging Face model directory.
func IsModelDir(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "config.json"))
	return err == nil
}
