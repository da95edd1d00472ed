package checkpoint

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Llama2CConfig is the header of a llama2.c checkpoint. VocabSize is
// positive; SharedClassifier reports whether the file's vocab_size was
// positive (the classifier is the token embedding).
type Llama2CConfig struct {
	Dim, HiddenDim, NLayers, NHeads, NKVHeads, VocabSize, SeqLen int
	SharedClassifier                                             bool
}

// HeadSize is Dim / NHeads.
func (c *Llama2CConfig) HeadSize() int { return c.Dim / c.NHeads }

// KVDim is NKVHeads * HeadSize.
func (c *Llama2CConfig) KVDim() int { return c.NKVHeads * c.HeadSize() }

const (
	llama2CHeaderSize = 7 * 4
	llama2CMagic      = 0x616b3432 // "ak42", versioned llama2.c exports
)

// OpenLlama2C opens a legacy (version 0) llama2.c checkpoint: a header of 7
// int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size — negative
// for an untied classifier — and seq_len) followed by float32 weights. The
// file size must be exactly what the header implies.
//
// The weights are exposed, without copying, as F32 tensors with Hugging Face
// Llama names: model.embed_tokens.weight [vocab, dim];
// model.layers.{i}.input_layernorm.weight [dim];
// model.layers.{i}.self_attn.{q,k,v,o}_proj.weight ([dim, dim],
// [kv_dim, dim], [kv_dim, dim], [dim, dim]);
// model.layers.{i}.post_attention_layernorm.weight [dim];
// model.layers.{i}.mlp.{gate,down,up}_proj.weight (w1 [hidden, dim],
// w2 [dim, hidden], w3 [hidden, dim]); model.norm.weight [dim]; and
// lm_head.weight [vocab, dim] (the embedding when shared). The freq_cis
// tables are not exposed.
//
// Unlike HF checkpoints, whose q/k rows are permuted for "rotate half"
// rotary embeddings, llama2.c keeps Meta's original layout: the model must
// apply interleaved (GPT-J style) RoPE, rotating pairs (2i, 2i+1) of each
// head, for this checkpoint.
func OpenLlama2C(path string) (*Llama2CConfig, *Store, error) {
	m, err := mapFile(path)
	if err != nil {
		return nil, nil, err
	}
	cfg, tensors, err := parseLlama2C(path, m.data)
	if err != nil {
		m.close()
		return nil, nil, err
	}
	return cfg, newStore([]*mapping{m}, tensors, nil), nil
}

// parseLlama2C validates the llama2.c checkpoint in data and slices it into
// tensors; file names it in errors and in the tensors' File.
func parseLlama2C(file string, data []byte) (*Llama2CConfig, map[string]Tensor, error) {
	if len(data) < llama2CHeaderSize {
		return nil, nil, fmt.Errorf("checkpoint: %s: llama2.c file is %d bytes, shorter than its %d-byte header", file, len(data), llama2CHeaderSize)
	}
	var h [7]int32
	for i := range h {
		h[i] = int32(binary.LittleEndian.Uint32(data[4*i:]))
	}
	if uint32(h[0]) == llama2CMagic {
		return nil, nil, fmt.Errorf("checkpoint: %s: llama2.c export version %d (magic \"ak42\") is not supported; only the legacy version 0 format is", file, h[1])
	}
	vocab := int64(h[5])
	cfg := &Llama2CConfig{
		Dim: int(h[0]), HiddenDim: int(h[1]), NLayers: int(h[2]), NHeads: int(h[3]),
		NKVHeads: int(h[4]), SeqLen: int(h[6]), SharedClassifier: vocab > 0,
	}
	if vocab < 0 {
		vocab = -vocab
	}
	if vocab > math.MaxInt32 {
		return nil, nil, fmt.Errorf("checkpoint: %s: llama2.c header: vocab_size %d out of range", file, h[5])
	}
	cfg.VocabSize = int(vocab)
	for _, f := range []struct {
		name string
		v    int
	}{{"dim", cfg.Dim}, {"hidden_dim", cfg.HiddenDim}, {"n_layers", cfg.NLayers}, {"n_heads", cfg.NHeads},
		{"n_kv_heads", cfg.NKVHeads}, {"vocab_size", cfg.VocabSize}, {"seq_len", cfg.SeqLen}} {
		if f.v <= 0 {
			return nil, nil, fmt.Errorf("checkpoint: %s: llama2.c header: %s = %d, expected a positive value (header %v)", file, f.name, f.v, h)
		}
	}
	if cfg.Dim%cfg.NHeads != 0 {
		return nil, nil, fmt.Errorf("checkpoint: %s: llama2.c header: n_heads = %d does not divide dim = %d", file, cfg.NHeads, cfg.Dim)
	}
	if cfg.NHeads%cfg.NKVHeads != 0 {
		return nil, nil, fmt.Errorf("checkpoint: %s: llama2.c header: n_kv_heads = %d does not divide n_heads = %d", file, cfg.NKVHeads, cfg.NHeads)
	}

	hs := cfg.HeadSize()
	kvDim := cfg.KVDim()
	freq, ok := mulOK(cfg.SeqLen, hs)
	if !ok {
		return nil, nil, fmt.Errorf("checkpoint: %s: llama2.c header %v implies a file too large to address", file, h)
	}
	L, D, H, V := cfg.NLayers, cfg.Dim, cfg.HiddenDim, cfg.VocabSize
	// Sizes in float32 elements; each fits in int64 (a product of at most
	// three int32 values), but sums and byte counts are checked on int.
	type part struct {
		name  string
		layer bool // one tensor per layer
		shape []int
	}
	parts := []part{
		{"model.embed_tokens.weight", false, []int{V, D}},
		{"input_layernorm", true, []int{D}},
		{"self_attn.q_proj", true, []int{D, D}},
		{"self_attn.k_proj", true, []int{kvDim, D}},
		{"self_attn.v_proj", true, []int{kvDim, D}},
		{"self_attn.o_proj", true, []int{D, D}},
		{"post_attention_layernorm", true, []int{D}},
		{"mlp.gate_proj", true, []int{H, D}},
		{"mlp.down_proj", true, []int{D, H}},
		{"mlp.up_proj", true, []int{H, D}},
		{"model.norm.weight", false, []int{D}},
		{"freq_cis_real", false, []int{freq / 2}},
		{"freq_cis_imag", false, []int{freq / 2}},
	}
	if !cfg.SharedClassifier {
		parts = append(parts, part{"lm_head.weight", false, []int{V, D}})
	}
	total := llama2CHeaderSize
	sizes := make([]int, len(parts))
	for i, p := range parts {
		n, ok := numElements(p.shape)
		if ok && p.layer {
			n, ok = mulOK(n, L)
		}
		if ok {
			n, ok = mulOK(n, 4)
		}
		if ok && total > math.MaxInt-n {
			ok = false
		}
		if !ok {
			return nil, nil, fmt.Errorf("checkpoint: %s: llama2.c header %v implies a file too large to address", file, h)
		}
		sizes[i] = n
		total += n
	}
	if total != len(data) {
		msg := fmt.Sprintf("checkpoint: %s: llama2.c file is %d bytes, header (dim %d, hidden_dim %d, n_layers %d, n_heads %d, n_kv_heads %d, vocab_size %d, seq_len %d) implies %d",
			file, len(data), h[0], h[1], h[2], h[3], h[4], h[5], h[6], total)
		if len(data) < total {
			msg += fmt.Sprintf(" (%d bytes missing)", total-len(data))
		} else {
			msg += fmt.Sprintf(" (%d extra bytes)", len(data)-total)
		}
		cls := 4 * V * D
		if cfg.SharedClassifier && len(data) == total+cls {
			msg += "; the size fits an untied classifier: vocab_size should be negative"
		} else if !cfg.SharedClassifier && len(data) == total-cls {
			msg += "; the size fits a shared classifier: vocab_size should be positive"
		}
		return nil, nil, fmt.Errorf("%s", msg)
	}

	tensors := make(map[string]Tensor, 2+9*L+2)
	add := func(name string, shape []int, b []byte) {
		tensors[name] = Tensor{Name: name, DType: F32, Shape: shape, Data: b, File: file}
	}
	off := llama2CHeaderSize
	for i, p := range parts {
		b := data[off : off+sizes[i] : off+sizes[i]]
		off += sizes[i]
		switch {
		case p.layer:
			per := sizes[i] / L
			for l := 0; l < L; l++ {
				name := fmt.Sprintf("model.layers.%d.%s.weight", l, p.name)
				add(name, append([]int(nil), p.shape...), b[l*per:(l+1)*per:(l+1)*per])
			}
		case p.name == "freq_cis_real" || p.name == "freq_cis_imag":
			// Not exposed: the model computes RoPE itself.
		default:
			add(p.name, p.shape, b)
		}
	}
	if cfg.SharedClassifier {
		emb := tensors["model.embed_tokens.weight"]
		add("lm_head.weight", []int{V, D}, emb.Data)
	}
	return cfg, tensors, nil
}
