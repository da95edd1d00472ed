package model

import (
	"fmt"
	"math"
	"strings"

	"dejavu/checkpoint"
	"dejavu/kernels"
)

// GGUF models (llama.cpp's format): the architectures "llama" (Llama,
// Mistral, llama2.c exports) and "qwen2". llama.cpp's converter permutes
// the q/k rows of Llama models from Hugging Face's half-split RoPE layout to
// Meta's interleaved one, so "llama" GGUF models run with Config.Interleave;
// "qwen2" keeps the half-split layout (llama.cpp's NEOX rope).
//
// The key dejavu.hidden_act (written by `dejavu convert`, ignored by
// llama.cpp) names the MLP activation of models that do not use SiLU.

// GGUFActKey is the metadata key naming a non-SiLU MLP activation.
const GGUFActKey = "dejavu.hidden_act"

// ggufMax bounds the dimensions read from GGUF metadata.
const ggufMax = 1 << 24

// loadGGUF opens a .gguf model file.
func loadGGUF(path string) (*Model, error) {
	g, st, err := checkpoint.OpenGGUF(path)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	cfg, err := GGUFConfig(g)
	if err == nil {
		err = ggufRope(&cfg, g, st)
	}
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("model: %s: %w", path, err)
	}
	m, err := loadLlama(cfg, st, ggufLlamaNames)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("model: %s: %w", path, err)
	}
	m.Source = path
	m.closer = st
	return m, nil
}

// GGUFConfig reads the model configuration from GGUF metadata (the keys
// llama.cpp uses: {arch}.embedding_length, block_count, feed_forward_length,
// attention.head_count(_kv), attention.key_length,
// attention.layer_norm_rms_epsilon, rope.freq_base, rope.scaling.*,
// context_length; the vocabulary size from token_embd.weight). RoPE scaling
// given as a rope_freqs.weight tensor is applied by Load, not here.
func GGUFConfig(g *checkpoint.GGUF) (Config, error) {
	arch := g.Architecture()
	var c Config
	switch arch {
	case "llama":
		c.Arch, c.Interleave = "gguf:llama", true
	case "qwen2":
		c.Arch, c.QKVBias = "gguf:qwen2", true
	case "":
		return c, fmt.Errorf("metadata general.architecture is missing")
	default:
		return c, fmt.Errorf("GGUF architecture %q is not supported (want llama or qwen2)", arch)
	}
	c.Family = Llama
	p := arch + "."
	var errs []error
	geti := func(key string, required bool) int {
		n, ok, err := g.Int(p+key, ggufMax)
		if err != nil {
			errs = append(errs, err)
		} else if !ok && required {
			errs = append(errs, fmt.Errorf("metadata %s is missing", p+key))
		}
		return n
	}
	getf := func(key string, def float64) float64 {
		f, ok, err := g.Float(p + key)
		if err != nil {
			errs = append(errs, err)
		}
		if !ok {
			return def
		}
		return f
	}
	c.Hidden = geti("embedding_length", true)
	c.Layers = geti("block_count", true)
	c.FFN = geti("feed_forward_length", true)
	c.Heads = geti("attention.head_count", true)
	c.KVHeads = geti("attention.head_count_kv", false)
	if c.KVHeads == 0 {
		c.KVHeads = c.Heads
	}
	c.MaxPos = geti("context_length", true)
	if n := geti("expert_count", false); n > 0 {
		errs = append(errs, fmt.Errorf("mixture-of-experts models (%s = %d) are not supported", p+"expert_count", n))
	}
	c.HeadDim = geti("attention.key_length", false)
	if c.HeadDim == 0 && c.Heads > 0 {
		c.HeadDim = c.Hidden / c.Heads
	}
	if v := geti("attention.value_length", false); v != 0 && v != c.HeadDim {
		errs = append(errs, fmt.Errorf("attention.value_length %d differs from key_length %d", v, c.HeadDim))
	}
	if r := geti("rope.dimension_count", false); r != 0 && r != c.HeadDim {
		errs = append(errs, fmt.Errorf("partial rotary embeddings (%s = %d, head_dim %d) are not supported", p+"rope.dimension_count", r, c.HeadDim))
	}
	c.NormEps = float32(getf("attention.layer_norm_rms_epsilon", 1e-5))
	c.RopeTheta = getf("rope.freq_base", 10000)
	st, _, err := g.String(p + "rope.scaling.type")
	if err != nil {
		errs = append(errs, err)
	}
	factor := getf("rope.scaling.factor", 0)
	if factor == 0 {
		if lin := getf("rope.scale_linear", 0); lin != 0 { // the older key
			st, factor = "linear", lin
		}
	}
	switch st {
	case "", "none":
	case "linear":
		if factor <= 0 {
			errs = append(errs, fmt.Errorf("rope scaling linear needs rope.scaling.factor > 0, got %v", factor))
		} else if factor != 1 {
			c.RopeScale = &RopeScaling{Type: "linear", Factor: factor}
		}
	default:
		errs = append(errs, fmt.Errorf("rope scaling type %q is not supported (want none or linear)", st))
	}
	c.ActName = "silu"
	if a, ok, err := g.String(GGUFActKey); err != nil {
		errs = append(errs, err)
	} else if ok {
		c.ActName = a
	}
	c.BOS, c.EOS = -1, -1
	for key, dst := range map[string]*int{"tokenizer.ggml.bos_token_id": &c.BOS, "tokenizer.ggml.eos_token_id": &c.EOS} {
		if n, ok, err := g.Int(key, math.MaxInt32); err != nil {
			errs = append(errs, err)
		} else if ok {
			*dst = n
		}
	}
	emb, ok := g.Tensor("token_embd.weight")
	if !ok {
		errs = append(errs, fmt.Errorf("tensor %q is missing", "token_embd.weight"))
	} else if sh := emb.Shape(); len(sh) == 2 {
		c.Vocab = sh[0]
		c.DType = map[checkpoint.GGMLType]string{checkpoint.GGMLF32: "float32", checkpoint.GGMLF16: "float16", checkpoint.GGMLBF16: "bfloat16"}[emb.Type]
		if c.DType == "" {
			c.DType = strings.ToLower(emb.Type.String())
		}
	}
	if n, ok, err := g.Int(p+"vocab_size", ggufMax); err == nil && ok && c.Vocab != 0 && n != c.Vocab {
		errs = append(errs, fmt.Errorf("%s = %d but token_embd.weight has %d rows", p+"vocab_size", n, c.Vocab))
	}
	_, hasOut := g.Tensor("output.weight")
	c.TiedHead = !hasOut
	c.ProjDim = c.Hidden
	if _, ok := g.Tensor("blk.0.attn_q.bias"); ok {
		c.QKVBias = true
	}
	if _, ok := g.Tensor("blk.0.attn_output.bias"); ok {
		c.OBias = true
	}
	if _, ok := g.Tensor("blk.0.ffn_up.bias"); ok {
		c.MLPBias = true
	}
	if len(errs) > 0 {
		return c, joinFirst(errs)
	}
	act, err := ParseAct(c.ActName)
	if err != nil {
		return c, fmt.Errorf("metadata %s: %w", GGUFActKey, err)
	}
	c.Act = act
	return c, c.Validate()
}

// ggufRope applies a rope_freqs.weight tensor (llama.cpp's per-dimension
// frequency divisors, which its converter writes for Llama 3 "llama3" RoPE
// scaling): it recovers llama3 scaling parameters that reproduce the
// divisors (to float32 precision) or fails.
func ggufRope(c *Config, g *checkpoint.GGUF, st *checkpoint.Store) error {
	t, ok := st.Tensor("rope_freqs.weight")
	if !ok {
		return nil
	}
	half := c.HeadDim / 2
	if t.NumElements() != half || !t.DType.IsFloat() {
		return fmt.Errorf("tensor rope_freqs.weight has %v%v, want %d floats", t.DType, t.Shape, half)
	}
	r := make([]float32, half)
	if err := t.ToFloat32(r); err != nil {
		return err
	}
	sc, err := llama3FromFactors(c.RopeTheta, c.HeadDim, r)
	if err != nil {
		return fmt.Errorf("tensor rope_freqs.weight: %w", err)
	}
	if sc != nil && c.RopeScale != nil {
		return fmt.Errorf("both rope_freqs.weight and %s.rope.scaling are set", g.Architecture())
	}
	if sc != nil {
		c.RopeScale = sc
	}
	return nil
}

// ropeInvFreq is the unscaled inverse frequency of pair i, as ropeTables
// computes it.
func ropeInvFreq(theta float64, headDim, i int) float64 {
	return float64(float32(1 / math.Pow(theta, float64(2*i)/float64(headDim))))
}

// Llama3Factors are the per-pair frequency divisors of llama3 RoPE scaling
// (what llama.cpp stores as rope_freqs.weight).
func Llama3Factors(theta float64, headDim int, sc *RopeScaling) []float32 {
	r := make([]float32, headDim/2)
	for i := range r {
		f := ropeInvFreq(theta, headDim, i)
		r[i] = float32(f / scaleFreq(f, sc))
	}
	return r
}

// llama3FromFactors finds llama3 scaling parameters whose divisors equal r
// (nil when all are 1; linear scaling when all are equal).
func llama3FromFactors(theta float64, headDim int, r []float32) (*RopeScaling, error) {
	const tol = 1e-5
	near := func(a, b float64) bool { return math.Abs(a-b) <= tol*math.Max(math.Abs(b), 1) }
	F := 0.0
	for _, v := range r {
		if !(v > 0) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("divisor %v is not a positive number", v)
		}
		F = math.Max(F, float64(v))
	}
	if near(F, 1) {
		return nil, nil
	}
	var high, low, mid []int
	for i, v := range r {
		switch {
		case near(float64(v), 1):
			high = append(high, i)
		case near(float64(v), F):
			low = append(low, i)
		default:
			mid = append(mid, i)
		}
	}
	if len(high) == 0 && len(mid) == 0 {
		return &RopeScaling{Type: "linear", Factor: F}, nil
	}
	wl := func(i int) float64 { return 2 * math.Pi / ropeInvFreq(theta, headDim, i) }
	// In the transition band smooth = orig/wavelen·1/(high-low) -
	// low/(high-low) = a/wavelen - b, and the band is [a/(b+1), a/b].
	smooth := func(i int) float64 { return (1/float64(r[i]) - 1/F) / (1 - 1/F) }
	var a, b float64
	switch {
	case len(mid) >= 2:
		i, j := mid[0], mid[len(mid)-1]
		a = (smooth(i) - smooth(j)) / (1/wl(i) - 1/wl(j))
		b = a/wl(i) - smooth(i)
	case len(mid) == 1:
		b = 1.0 / 3 // low_freq_factor 1, high_freq_factor 4, as Llama 3 uses
		a = (smooth(mid[0]) + b) * wl(mid[0])
	default: // no transition band: put one between the two regions
		if len(low) == 0 {
			return nil, fmt.Errorf("cannot interpret the divisors %v as llama3 scaling", r)
		}
		g1, g2 := wl(high[len(high)-1]), wl(low[0])
		hw, lw := g1+(g2-g1)/3, g1+2*(g2-g1)/3
		b = hw / (lw - hw)
		a = b * lw
	}
	if !(a > 0) || !(b > 0) || math.IsInf(a, 0) || math.IsInf(b, 0) {
		return nil, fmt.Errorf("cannot interpret the divisors %v as llama3 scaling", r)
	}
	// Scale (orig, low, high) = (a, b, b+1)·s so that orig is an integer
	// near the one for low_freq_factor = 1.
	orig := math.Max(1, math.Round(a/b))
	s := orig / a
	sc := &RopeScaling{Type: "llama3", Factor: F, LowFreqFactor: b * s, HighFreqFactor: (b + 1) * s, OrigMaxPosition: int(orig)}
	if orig > math.MaxInt32 {
		return nil, fmt.Errorf("cannot interpret the divisors %v as llama3 scaling", r)
	}
	for i, v := range Llama3Factors(theta, headDim, sc) {
		if !near(float64(v), float64(r[i])) {
			return nil, fmt.Errorf("divisor %d is %v; the llama3 scaling that fits the others (factor %g, low %g, high %g, original context %d) gives %v",
				i, r[i], sc.Factor, sc.LowFreqFactor, sc.HighFreqFactor, sc.OrigMaxPosition, v)
		}
	}
	return sc, nil
}

// ggufMatDType maps a kernels dtype to the GGML tensor type.
func ggufMatDType(d kernels.DType) checkpoint.GGMLType {
	switch d {
	case kernels.F16:
		return checkpoint.GGMLF16
	case kernels.BF16:
		return checkpoint.GGMLBF16
	case kernels.Q8_0:
		return checkpoint.GGMLQ8_0
	case kernels.Q4_0:
		return checkpoint.GGMLQ4_0
	}
	return checkpoint.GGMLF32
}
