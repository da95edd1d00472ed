// Package model defines the supported decoder-only architectures (OPT and the
// Llama family: Llama, Mistral, Qwen2; llama2.c checkpoints), loads their
// weights, and runs the forward pass with a KV cache.
package model

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"dejavu/kernels"
)

// Family is an architecture family: it decides the block layout.
type Family uint8

// Families.
const (
	OPT   Family = iota // learned positions, LayerNorm, ReLU MLP, biases
	Llama               // RoPE, RMSNorm, gated MLP, grouped-query attention
)

func (f Family) String() string {
	if f == OPT {
		return "opt"
	}
	return "llama"
}

// RopeScaling is the rotary-embedding frequency scaling (rope_type llama3 or linear).
type RopeScaling struct {
	Type            string  // "llama3" or "linear"
	Factor          float64 // frequency divisor
	LowFreqFactor   float64 // llama3
	HighFreqFactor  float64 // llama3
	OrigMaxPosition int     // llama3: original_max_position_embeddings
}

// Config is everything the forward pass needs to know about a model.
type Config struct {
	Arch       string // e.g. "OPTForCausalLM"
	Family     Family
	Vocab      int
	Hidden     int
	Layers     int
	Heads      int
	KVHeads    int
	HeadDim    int
	FFN        int
	MaxPos     int
	NormEps    float32
	Act        kernels.Act
	ActName    string
	TiedHead   bool
	BOS, EOS   int // -1 when unknown
	DType      string
	ProjDim    int  // OPT word_embed_proj_dim (== Hidden when there is no project_in/out)
	PreLN      bool // OPT do_layer_norm_before
	FinalNorm  bool // OPT: a final layer norm exists
	RopeTheta  float64
	RopeScale  *RopeScaling
	Interleave bool // rotary pairs are interleaved (llama2.c / Meta layout)
	QKVBias    bool // biases on q, k, v (Qwen2, Llama attention_bias)
	OBias      bool // bias on the attention output (OPT, Llama attention_bias)
	MLPBias    bool
	Window     int // sliding-window attention span, 0 = none
}

// rawConfig is config.json as Hugging Face writes it, old and new styles.
type rawConfig struct {
	Architectures []string `json:"architectures"`
	ModelType     string   `json:"model_type"`
	VocabSize     int      `json:"vocab_size"`
	HiddenSize    int      `json:"hidden_size"`
	Layers        int      `json:"num_hidden_layers"`
	Heads         int      `json:"num_attention_heads"`
	KVHeads       *int     `json:"num_key_value_heads"`
	HeadDim       *int     `json:"head_dim"`
	Intermediate  int      `json:"intermediate_size"`
	FFNDim        int      `json:"ffn_dim"`
	MaxPos        int      `json:"max_position_embeddings"`
	RMSNormEps    *float64 `json:"rms_norm_eps"`
	HiddenAct     string   `json:"hidden_act"`
	ActFunction   string   `json:"activation_function"`
	Tie           *bool    `json:"tie_word_embeddings"`
	BOS           any      `json:"bos_token_id"`
	EOS           any      `json:"eos_token_id"`
	DType         string   `json:"dtype"`
	TorchDType    string   `json:"torch_dtype"`
	// OPT
	WordEmbedProjDim  int   `json:"word_embed_proj_dim"`
	DoLayerNormBefore *bool `json:"do_layer_norm_before"`
	RemoveFinalLN     bool  `json:"_remove_final_layer_norm"`
	EnableBias        *bool `json:"enable_bias"`
	LayerNormAffine   *bool `json:"layer_norm_elementwise_affine"`
	// Llama family
	RopeTheta        *float64        `json:"rope_theta"`
	RopeScaling      json.RawMessage `json:"rope_scaling"`
	RopeParameters   json.RawMessage `json:"rope_parameters"`
	AttentionBias    bool            `json:"attention_bias"`
	MLPBias          bool            `json:"mlp_bias"`
	SlidingWindow    *int            `json:"sliding_window"`
	UseSlidingWindow *bool           `json:"use_sliding_window"`
}

// LoadConfig reads dir/config.json.
func LoadConfig(dir string) (Config, error) {
	path := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("model: reading config: %w", err)
	}
	c, err := ParseConfig(b)
	if err != nil {
		return Config{}, fmt.Errorf("model: %s: %w", path, err)
	}
	return c, nil
}

// ParseConfig interprets the bytes of a Hugging Face config.json.
func ParseConfig(b []byte) (Config, error) {
	var r rawConfig
	if err := json.Unmarshal(b, &r); err != nil {
		return Config{}, fmt.Errorf("invalid JSON: %w", err)
	}
	arch := ""
	if len(r.Architectures) > 0 {
		arch = r.Architectures[0]
	}
	c := Config{Arch: arch, Vocab: r.VocabSize, Hidden: r.HiddenSize, Layers: r.Layers, Heads: r.Heads,
		MaxPos: r.MaxPos, BOS: tokenID(r.BOS), EOS: tokenID(r.EOS), DType: r.DType}
	if c.DType == "" {
		c.DType = r.TorchDType
	}
	switch arch {
	case "OPTForCausalLM":
		c.Family = OPT
		c.KVHeads = c.Heads
		c.FFN = r.FFNDim
		c.NormEps = 1e-5
		c.ActName = r.ActFunction
		c.TiedHead = r.Tie == nil || *r.Tie
		c.ProjDim = r.WordEmbedProjDim
		if c.ProjDim == 0 {
			c.ProjDim = c.Hidden
		}
		c.PreLN = r.DoLayerNormBefore == nil || *r.DoLayerNormBefore
		c.FinalNorm = c.PreLN && !r.RemoveFinalLN
		bias := r.EnableBias == nil || *r.EnableBias
		c.QKVBias, c.OBias, c.MLPBias = bias, bias, bias
		if r.LayerNormAffine != nil && !*r.LayerNormAffine {
			return Config{}, fmt.Errorf("layer_norm_elementwise_affine=false is not supported")
		}
	case "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM":
		c.Family = Llama
		c.KVHeads = c.Heads
		if r.KVHeads != nil {
			c.KVHeads = *r.KVHeads
		}
		c.FFN = r.Intermediate
		c.NormEps = 1e-6
		if r.RMSNormEps != nil {
			c.NormEps = float32(*r.RMSNormEps)
		}
		c.ActName = r.HiddenAct
		c.TiedHead = r.Tie != nil && *r.Tie
		c.ProjDim = c.Hidden
		c.QKVBias, c.OBias, c.MLPBias = r.AttentionBias, r.AttentionBias, r.MLPBias
		if arch == "Qwen2ForCausalLM" {
			c.QKVBias, c.OBias = true, false
		}
		if err := c.parseRope(r); err != nil {
			return Config{}, err
		}
		if r.SlidingWindow != nil && *r.SlidingWindow > 0 &&
			(arch == "MistralForCausalLM" || (r.UseSlidingWindow != nil && *r.UseSlidingWindow)) {
			c.Window = *r.SlidingWindow
		}
	case "":
		return Config{}, fmt.Errorf("field architectures is missing")
	default:
		return Config{}, fmt.Errorf("architecture %q is not supported (want OPTForCausalLM, LlamaForCausalLM, MistralForCausalLM or Qwen2ForCausalLM)", arch)
	}
	if r.HeadDim != nil && *r.HeadDim > 0 {
		c.HeadDim = *r.HeadDim
	} else if c.Heads > 0 {
		c.HeadDim = c.Hidden / c.Heads
	}
	act, err := ParseAct(c.ActName)
	if err != nil {
		return Config{}, err
	}
	c.Act = act
	return c, c.Validate()
}

func (c *Config) parseRope(r rawConfig) error {
	c.RopeTheta = 10000
	if r.RopeTheta != nil {
		c.RopeTheta = *r.RopeTheta
	}
	raw := r.RopeScaling
	if len(r.RopeParameters) > 0 && string(r.RopeParameters) != "null" {
		raw = r.RopeParameters
	}
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var p struct {
		RopeType string   `json:"rope_type"`
		Type     string   `json:"type"` // older spelling
		Theta    *float64 `json:"rope_theta"`
		Factor   float64  `json:"factor"`
		Low      float64  `json:"low_freq_factor"`
		High     float64  `json:"high_freq_factor"`
		OrigMax  int      `json:"original_max_position_embeddings"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return fmt.Errorf("rope parameters: %w", err)
	}
	if p.Theta != nil {
		c.RopeTheta = *p.Theta
	}
	t := p.RopeType
	if t == "" {
		t = p.Type
	}
	switch t {
	case "", "default":
	case "linear":
		if p.Factor <= 0 {
			return fmt.Errorf("rope scaling linear: factor must be > 0, got %v", p.Factor)
		}
		c.RopeScale = &RopeScaling{Type: t, Factor: p.Factor}
	case "llama3":
		if p.Factor <= 0 || p.OrigMax <= 0 || p.High <= p.Low {
			return fmt.Errorf("rope scaling llama3: need factor > 0, original_max_position_embeddings > 0 and high_freq_factor > low_freq_factor")
		}
		c.RopeScale = &RopeScaling{Type: t, Factor: p.Factor, LowFreqFactor: p.Low, HighFreqFactor: p.High, OrigMaxPosition: p.OrigMax}
	default:
		return fmt.Errorf("rope type %q is not supported (want default, linear or llama3)", t)
	}
	return nil
}

// ParseAct maps a Hugging Face activation name to a kernel activation.
func ParseAct(name string) (kernels.Act, error) {
	switch name {
	case "relu":
		return kernels.ReLU, nil
	case "silu", "swish":
		return kernels.SiLU, nil
	case "gelu":
		return kernels.GELU, nil
	case "gelu_new", "gelu_pytorch_tanh", "gelu_fast":
		return kernels.GELUTanh, nil
	}
	return 0, fmt.Errorf("activation %q is not supported (want relu, silu, gelu or gelu_pytorch_tanh)", name)
}

// Validate checks that the dimensions are consistent.
func (c Config) Validate() error {
	pos := map[string]int{"vocab_size": c.Vocab, "hidden_size": c.Hidden, "num_hidden_layers": c.Layers,
		"num_attention_heads": c.Heads, "num_key_value_heads": c.KVHeads, "head_dim": c.HeadDim,
		"intermediate size": c.FFN, "max_position_embeddings": c.MaxPos}
	for _, k := range []string{"vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim", "intermediate size", "max_position_embeddings"} {
		if pos[k] <= 0 {
			return fmt.Errorf("%s must be > 0, got %d", k, pos[k])
		}
	}
	if c.Heads%c.KVHeads != 0 {
		return fmt.Errorf("num_attention_heads %d is not a multiple of num_key_value_heads %d", c.Heads, c.KVHeads)
	}
	if c.Family == Llama && c.HeadDim%2 != 0 {
		return fmt.Errorf("head_dim %d must be even for rotary embeddings", c.HeadDim)
	}
	if c.Family == OPT && c.Heads*c.HeadDim != c.Hidden {
		return fmt.Errorf("hidden_size %d is not num_attention_heads %d × head_dim %d", c.Hidden, c.Heads, c.HeadDim)
	}
	return nil
}

func tokenID(v any) int {
	switch t := v.(type) {
	case float64:
		return int(t)
	case []any:
		if len(t) > 0 {
			return tokenID(t[0])
		}
	}
	return -1
}
