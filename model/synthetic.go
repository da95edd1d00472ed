package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"unsafe"

	"dejavu/checkpoint"
	"dejavu/kernels"
)

// synthetic shapes of real models, for speed measurements at sizes that
// cannot be downloaded here.
var synthetic = map[string]Config{
	"opt-125m":     optShape(768, 12, 12, 3072, 768, true),
	"opt-350m":     optShape(1024, 24, 16, 4096, 512, false),
	"opt-1.3b":     optShape(2048, 24, 32, 8192, 2048, true),
	"opt-2.7b":     optShape(2560, 32, 32, 10240, 2560, true),
	"opt-6.7b":     optShape(4096, 32, 32, 16384, 4096, true),
	"opt-13b":      optShape(5120, 40, 40, 20480, 5120, true),
	"opt-30b":      optShape(7168, 48, 56, 28672, 7168, true), // 60 GB in f16: the largest OPT one 80 GB GPU holds
	"llama-2-7b":   llamaShape(4096, 32, 32, 32, 11008, 32000, 4096, false, 10000, nil),
	"llama-3.2-1b": llamaShape(2048, 16, 32, 8, 8192, 128256, 131072, true, 500000, &RopeScaling{Type: "llama3", Factor: 32, LowFreqFactor: 1, HighFreqFactor: 4, OrigMaxPosition: 8192}),
}

func optShape(d, layers, heads, ffn, proj int, preLN bool) Config {
	return Config{Arch: "OPTForCausalLM", Family: OPT, Vocab: 50272, Hidden: d, Layers: layers, Heads: heads,
		KVHeads: heads, HeadDim: d / heads, FFN: ffn, MaxPos: 2048, NormEps: 1e-5, Act: kernels.ReLU, ActName: "relu",
		TiedHead: true, BOS: 2, EOS: 2, ProjDim: proj, PreLN: preLN, FinalNorm: preLN, QKVBias: true, OBias: true, MLPBias: true}
}

func llamaShape(d, layers, heads, kv, ffn, vocab, maxPos int, tied bool, theta float64, sc *RopeScaling) Config {
	return Config{Arch: "LlamaForCausalLM", Family: Llama, Vocab: vocab, Hidden: d, Layers: layers, Heads: heads,
		KVHeads: kv, HeadDim: d / heads, FFN: ffn, MaxPos: maxPos, NormEps: 1e-5, Act: kernels.SiLU, ActName: "silu",
		TiedHead: tied, BOS: 1, EOS: 2, ProjDim: d, RopeTheta: theta, RopeScale: sc}
}

// SyntheticNames lists the shapes Synthetic knows.
func SyntheticNames() []string {
	names := make([]string, 0, len(synthetic))
	for n := range synthetic {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Synthetic builds a model with the exact shapes of a real one (see
// SyntheticNames) and random weights of the given dtype, in memory. For
// Q8_0 the blocks hold uniform random int8s and random scales (and OPT's
// learned positions stay f16, as Model.Quantize leaves them).
func Synthetic(name string, dtype kernels.DType, seed uint64) (*Model, error) {
	c, ok := synthetic[name]
	if !ok {
		return nil, fmt.Errorf("model: no synthetic shape %q (have %v)", name, SyntheticNames())
	}
	if dtype != kernels.F32 && dtype != kernels.F16 && dtype != kernels.BF16 && dtype != kernels.Q8_0 {
		return nil, fmt.Errorf("model: synthetic weights come in f32, f16, bf16 or q8_0, not %v", dtype)
	}
	if err := checkSyntheticMemory(name, dtype, syntheticBytes(c, dtype), memAvailable); err != nil {
		return nil, err
	}
	c.DType = dtype.String()
	g := &weightGen{r: rand.New(rand.NewPCG(seed, seed+1)), dtype: dtype}
	m := &Model{Cfg: c, Layers: make([]Layer, c.Layers), Source: "synthetic " + name}
	d, f, qd, kvd := c.Hidden, c.FFN, c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	m.Embed = g.mat(c.Vocab, c.ProjDim)
	m.Head = m.Embed
	if !c.TiedHead {
		m.Head = g.mat(c.Vocab, c.ProjDim)
	}
	if c.Family == OPT {
		m.Pos = g.posMat(c.MaxPos+2, d)
		if c.ProjDim != d {
			m.ProjIn = &Linear{W: g.mat(d, c.ProjDim)}
			m.ProjOut = &Linear{W: g.mat(c.ProjDim, d)}
		}
	}
	if c.FinalNorm || c.Family == Llama {
		m.NormW, m.NormB = g.ones(d), g.bias(d, c.Family == OPT)
	}
	for i := range m.Layers {
		l := &m.Layers[i]
		l.AttnNormW, l.AttnNormB = g.ones(d), g.bias(d, c.Family == OPT)
		l.MLPNormW, l.MLPNormB = g.ones(d), g.bias(d, c.Family == OPT)
		l.Q = Linear{g.mat(qd, d), g.bias(qd, c.QKVBias)}
		l.K = Linear{g.mat(kvd, d), g.bias(kvd, c.QKVBias)}
		l.V = Linear{g.mat(kvd, d), g.bias(kvd, c.QKVBias)}
		l.O = Linear{g.mat(d, qd), g.bias(d, c.OBias)}
		if c.Family == Llama {
			l.Gate = Linear{W: g.mat(f, d)}
		}
		l.Up = Linear{g.mat(f, d), g.bias(f, c.MLPBias)}
		l.Down = Linear{g.mat(d, f), g.bias(d, c.MLPBias)}
	}
	return m, nil
}

// weightGen fills matrices with small random values quickly: a table of
// encoded values indexed by a fast generator.
type weightGen struct {
	r     *rand.Rand
	dtype kernels.DType
	tab16 []uint16
	tab32 []float32
}

func (g *weightGen) mat(rows, cols int) kernels.Mat {
	const tabSize = 4096
	if g.tab32 == nil {
		g.tab32 = make([]float32, tabSize)
		g.tab16 = make([]uint16, tabSize)
		for i := range g.tab32 {
			v := float32(g.r.NormFloat64() * 0.02)
			g.tab32[i] = v
			g.tab16[i] = encode16(v, g.dtype)
			if g.dtype == kernels.Q8_0 { // scales: |v|·3/127
				g.tab16[i] = checkpoint.F32ToF16(float32(math.Abs(float64(v))) * 3 / 127)
			}
		}
	}
	n := rows * cols
	if g.dtype == kernels.Q8_0 {
		return g.matQ8(rows, cols)
	}
	if g.dtype == kernels.F32 {
		buf := make([]float32, n)
		for i := range buf {
			buf[i] = g.tab32[g.r.Uint32()%tabSize]
		}
		return kernels.MatF32(rows, cols, buf)
	}
	buf := make([]uint16, n)
	for i := 0; i < n; i += 4 {
		x := g.r.Uint64()
		for j := i; j < min(i+4, n); j++ {
			buf[j] = g.tab16[x%tabSize]
			x >>= 16
		}
	}
	b := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(buf))), 2*n)
	m, err := kernels.NewMat(g.dtype, rows, cols, b)
	if err != nil {
		panic(err) // sizes are computed here, never from input
	}
	return m
}

// matQ8 is a Q8_0 matrix of random bytes whose block scales are random
// f16 values of about 0.02·3/127 (normal weights of σ 0.02).
func (g *weightGen) matQ8(rows, cols int) kernels.Mat {
	b := make([]byte, rows*kernels.Q8_0.RowBytes(cols))
	for i := 0; i < len(b); i += 8 {
		x := g.r.Uint64()
		for j := i; j < min(i+8, len(b)); j++ {
			b[j] = byte(x)
			x >>= 8
		}
	}
	for i := 0; i < len(b); i += kernels.Q8_0.RowBytes(kernels.Q8Block) {
		h := g.tab16[g.r.Uint32()%uint32(len(g.tab16))]
		b[i], b[i+1] = byte(h), byte(h>>8)
	}
	m, err := kernels.NewMat(kernels.Q8_0, rows, cols, b)
	if err != nil {
		panic(err) // sizes are computed here, never from input
	}
	return m
}

// posMat makes OPT's learned positions: f16 when the weights are Q8_0.
func (g *weightGen) posMat(rows, cols int) kernels.Mat {
	if g.dtype != kernels.Q8_0 {
		return g.mat(rows, cols)
	}
	g.dtype = kernels.F16
	defer func() { g.dtype = kernels.Q8_0 }()
	return g.mat(rows, cols)
}

func (g *weightGen) ones(n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = 1
	}
	return v
}

func (g *weightGen) bias(n int, want bool) []float32 {
	if !want {
		return nil
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(g.r.NormFloat64() * 0.01)
	}
	return v
}

func encode16(v float32, dt kernels.DType) uint16 {
	if dt == kernels.BF16 {
		return checkpoint.F32ToBF16(v)
	}
	return checkpoint.F32ToF16(v)
}

// syntheticBytes is the memory the matrices Synthetic builds for shape c
// take in dtype (by kernels.DType.RowBytes; norms and biases are a
// rounding error).
func syntheticBytes(c Config, dtype kernels.DType) int64 {
	d, f, qd, kvd := c.Hidden, c.FFN, c.Heads*c.HeadDim, c.KVHeads*c.HeadDim
	mat := func(rows, cols int, dt kernels.DType) int64 { return int64(rows) * int64(dt.RowBytes(cols)) }
	n := mat(c.Vocab, c.ProjDim, dtype)
	if !c.TiedHead {
		n *= 2
	}
	if c.Family == OPT {
		pos := dtype // learned positions: f16 beside Q8_0 weights (posMat)
		if pos == kernels.Q8_0 {
			pos = kernels.F16
		}
		n += mat(c.MaxPos+2, d, pos)
		if c.ProjDim != d {
			n += mat(d, c.ProjDim, dtype) + mat(c.ProjDim, d, dtype)
		}
	}
	per := mat(qd, d, dtype) + 2*mat(kvd, d, dtype) + mat(d, qd, dtype) + mat(f, d, dtype) + mat(d, f, dtype)
	if c.Family == Llama {
		per += mat(f, d, dtype)
	}
	return n + int64(c.Layers)*per
}

// checkSyntheticMemory refuses a synthetic model whose weights do not fit
// in the memory avail reports (when it can tell): building it would get
// the process killed half-way instead of an error.
func checkSyntheticMemory(name string, dtype kernels.DType, need int64, avail func() (int64, bool)) error {
	have, ok := avail()
	if !ok || need <= have {
		return nil
	}
	return fmt.Errorf("model: synthetic %s in %v needs %.1f GB of memory for its weights; this machine has %.1f GB available (pick a smaller shape or dtype, or --device cuda on a GPU with room)",
		name, dtype, float64(need)/1e9, float64(have)/1e9)
}

// memAvailable is MemAvailable from /proc/meminfo, in bytes (false where
// there is none).
func memAvailable() (int64, bool) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemAvailable:"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb); err == nil {
				return kb * 1024, true
			}
		}
	}
	return 0, false
}
