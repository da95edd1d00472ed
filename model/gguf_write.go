package model

import (
	"encoding/binary"
	"fmt"
	"math"

	"dejavu/checkpoint"
	"dejavu/kernels"
)

// GGUFWriteOptions configure WriteGGUF.
type GGUFWriteOptions struct {
	// DType is the element type of the matrices (token embedding,
	// attention and MLP projections, output head): F32, F16, BF16, or
	// Q8_0 / Q4_0 quantized row by row as llama.cpp's reference
	// quantizers do (kernels.QuantizeQ8_0, QuantizeQ4_0); norms, biases
	// and rope_freqs are always F32, as llama.cpp's converter writes them.
	DType kernels.DType
	// Name is general.name.
	Name string
	// Extra metadata appended after the model's (e.g. the tokenizer's, from
	// tokenizer.GGUFMetadata).
	Extra []checkpoint.GGUFKV
}

// GGUFArch is the GGUF architecture m is written as: "llama" for the
// Llama family (Llama, Mistral, llama2.c), "qwen2" for Qwen2.
func GGUFArch(c Config) (string, error) {
	switch {
	case c.Family != Llama:
		return "", fmt.Errorf("model: %s models cannot be written as GGUF yet (only the Llama family)", c.Arch)
	case c.Arch == "Qwen2ForCausalLM" || c.Arch == "gguf:qwen2":
		return "qwen2", nil
	}
	return "llama", nil
}

// WriteGGUF writes m as a GGUF v3 file that llama.cpp can load, with the
// metadata keys and tensor names of llama.cpp's convert_hf_to_gguf.py: for
// "llama", q/k rows (and biases) in Meta's interleaved RoPE layout, llama3
// RoPE scaling as a rope_freqs.weight tensor, no output.weight when the
// head is tied. A non-SiLU activation (which llama.cpp's llama
// architecture cannot express) is recorded under GGUFActKey for this
// engine. The file is written atomically.
func WriteGGUF(path string, m *Model, o GGUFWriteOptions) error {
	kvs, tensors, err := ggufContents(m, o)
	if err != nil {
		return err
	}
	if err := checkpoint.WriteGGUF(path, kvs, tensors); err != nil {
		return fmt.Errorf("model: %w", err)
	}
	return nil
}

func ggufContents(m *Model, o GGUFWriteOptions) ([]checkpoint.GGUFKV, []checkpoint.GGUFWriteTensor, error) {
	c := m.Cfg
	arch, err := GGUFArch(c)
	if err != nil {
		return nil, nil, err
	}
	if c.Window > 0 && c.Window < c.MaxPos {
		return nil, nil, fmt.Errorf("model: sliding-window attention (%d of %d positions) cannot be written as GGUF %s", c.Window, c.MaxPos, arch)
	}
	u32 := func(v int) checkpoint.GGUFValue { return checkpoint.GGUFUint32Value(uint32(v)) }
	f32 := func(v float64) checkpoint.GGUFValue { return checkpoint.GGUFFloat32Value(float32(v)) }
	fileType, ok := map[kernels.DType]int{kernels.F32: 0, kernels.F16: 1, kernels.BF16: 32, kernels.Q8_0: 7, kernels.Q4_0: 2}[o.DType]
	if !ok {
		return nil, nil, fmt.Errorf("model: GGUF matrices cannot be written as %v (want f32, f16, bf16, q8_0 or q4_0)", o.DType)
	}
	if q := o.DType; q == kernels.Q8_0 || q == kernels.Q4_0 {
		for _, w := range []kernels.Mat{m.Embed, m.Layers[0].Q.W, m.Layers[0].O.W, m.Layers[0].Down.W} {
			if w.Cols%32 != 0 {
				return nil, nil, fmt.Errorf("model: %v needs rows of a multiple of 32 weights; a %d×%d matrix has %d", q, w.Rows, w.Cols, w.Cols)
			}
		}
	}
	name := o.Name
	if name == "" {
		name = "model"
	}
	p := arch + "."
	kvs := []checkpoint.GGUFKV{
		{Key: "general.architecture", Value: checkpoint.GGUFStringValue(arch)},
		{Key: "general.type", Value: checkpoint.GGUFStringValue("model")},
		{Key: "general.name", Value: checkpoint.GGUFStringValue(name)},
		{Key: p + "vocab_size", Value: u32(c.Vocab)},
		{Key: p + "context_length", Value: u32(c.MaxPos)},
		{Key: p + "embedding_length", Value: u32(c.Hidden)},
		{Key: p + "block_count", Value: u32(c.Layers)},
		{Key: p + "feed_forward_length", Value: u32(c.FFN)},
		{Key: p + "attention.head_count", Value: u32(c.Heads)},
		{Key: p + "attention.head_count_kv", Value: u32(c.KVHeads)},
		{Key: p + "rope.freq_base", Value: f32(c.RopeTheta)},
		{Key: p + "attention.layer_norm_rms_epsilon", Value: f32(float64(c.NormEps))},
		{Key: p + "attention.key_length", Value: u32(c.HeadDim)},
		{Key: p + "attention.value_length", Value: u32(c.HeadDim)},
		{Key: p + "rope.dimension_count", Value: u32(c.HeadDim)},
		{Key: "general.file_type", Value: u32(fileType)},
	}
	var ropeFreqs []float32
	if sc := c.RopeScale; sc != nil {
		switch sc.Type {
		case "linear":
			kvs = append(kvs, checkpoint.GGUFKV{Key: p + "rope.scaling.type", Value: checkpoint.GGUFStringValue("linear")},
				checkpoint.GGUFKV{Key: p + "rope.scaling.factor", Value: f32(sc.Factor)})
		case "llama3":
			ropeFreqs = Llama3Factors(c.RopeTheta, c.HeadDim, sc)
		default:
			return nil, nil, fmt.Errorf("model: rope scaling %q cannot be written as GGUF", sc.Type)
		}
	}
	if c.Act != kernels.SiLU {
		kvs = append(kvs, checkpoint.GGUFKV{Key: GGUFActKey, Value: checkpoint.GGUFStringValue(c.ActName)})
	}
	kvs = append(kvs, checkpoint.GGUFKV{Key: "general.quantization_version", Value: u32(2)})
	kvs = append(kvs, o.Extra...)

	typ := ggufMatDType(o.DType)
	var ts []checkpoint.GGUFWriteTensor
	ts = append(ts, matTensor("token_embd.weight", m.Embed, typ, nil))
	if ropeFreqs != nil {
		ts = append(ts, vecTensor("rope_freqs.weight", ropeFreqs, nil))
	}
	// q/k rows: llama wants the interleaved layout, qwen2 the half-split one.
	var qPerm, kPerm func(int) int
	if want := arch == "llama"; want != c.Interleave {
		qPerm = ropePerm(c.HeadDim, want)
		kPerm = qPerm
	}
	for i := range m.Layers {
		l := &m.Layers[i]
		b := fmt.Sprintf("blk.%d.", i)
		ts = append(ts, vecTensor(b+"attn_norm.weight", l.AttnNormW, nil))
		ts = appendLinear(ts, b+"attn_q", &l.Q, typ, qPerm)
		ts = appendLinear(ts, b+"attn_k", &l.K, typ, kPerm)
		ts = appendLinear(ts, b+"attn_v", &l.V, typ, nil)
		ts = appendLinear(ts, b+"attn_output", &l.O, typ, nil)
		ts = append(ts, vecTensor(b+"ffn_norm.weight", l.MLPNormW, nil))
		ts = appendLinear(ts, b+"ffn_gate", &l.Gate, typ, nil)
		ts = appendLinear(ts, b+"ffn_up", &l.Up, typ, nil)
		ts = appendLinear(ts, b+"ffn_down", &l.Down, typ, nil)
	}
	ts = append(ts, vecTensor("output_norm.weight", m.NormW, nil))
	if !c.TiedHead {
		ts = append(ts, matTensor("output.weight", m.Head, typ, nil))
	}
	return kvs, ts, nil
}

// ropePerm maps a row of a q or k projection in the target layout to its
// row in the source layout, head by head: toInterleaved turns Hugging
// Face's half-split layout (pair i at rows i and i+hd/2) into Meta's
// interleaved one (rows 2i and 2i+1); otherwise the reverse.
func ropePerm(headDim int, toInterleaved bool) func(int) int {
	half := headDim / 2
	return func(r int) int {
		h, j := r/headDim*headDim, r%headDim
		if toInterleaved {
			return h + (j%2)*half + j/2
		}
		return h + (j%half)*2 + j/half
	}
}

func appendLinear(ts []checkpoint.GGUFWriteTensor, name string, l *Linear, typ checkpoint.GGMLType, perm func(int) int) []checkpoint.GGUFWriteTensor {
	ts = append(ts, matTensor(name+".weight", l.W, typ, perm))
	if l.B != nil {
		ts = append(ts, vecTensor(name+".bias", l.B, perm))
	}
	return ts
}

// matTensor writes w as typ (F32, F16, BF16, Q8_0 or Q4_0), row r taken
// from row perm(r) when perm is set. The bytes are made when the writer
// asks.
func matTensor(name string, w kernels.Mat, typ checkpoint.GGMLType, perm func(int) int) checkpoint.GGUFWriteTensor {
	return checkpoint.GGUFWriteTensor{Name: name, Type: typ, Shape: []int{w.Rows, w.Cols}, Load: func() ([]byte, error) {
		rb := w.Cols * 4
		switch typ {
		case checkpoint.GGMLF16, checkpoint.GGMLBF16:
			rb = w.Cols * 2
		case checkpoint.GGMLQ8_0:
			rb = kernels.Q8_0.RowBytes(w.Cols)
		case checkpoint.GGMLQ4_0:
			rb = kernels.Q4_0.RowBytes(w.Cols)
		}
		out := make([]byte, w.Rows*rb)
		row := make([]float32, w.Cols)
		for r := 0; r < w.Rows; r++ {
			src := r
			if perm != nil {
				src = perm(r)
			}
			w.Row(src, row)
			if err := encodeRow(out[r*rb:(r+1)*rb], row, typ); err != nil {
				return nil, fmt.Errorf("tensor %q: %w", name, err)
			}
		}
		return out, nil
	}}
}

func encodeRow(dst []byte, row []float32, typ checkpoint.GGMLType) error {
	le := binary.LittleEndian
	switch typ {
	case checkpoint.GGMLQ8_0, checkpoint.GGMLQ4_0:
		dt := kernels.Q8_0
		if typ == checkpoint.GGMLQ4_0 {
			dt = kernels.Q4_0
		}
		q, err := kernels.QuantizeRow(dt, row)
		if err != nil {
			return err
		}
		copy(dst, q)
	case checkpoint.GGMLF32:
		for i, v := range row {
			le.PutUint32(dst[4*i:], math.Float32bits(v))
		}
	case checkpoint.GGMLF16:
		for i, v := range row {
			le.PutUint16(dst[2*i:], checkpoint.F32ToF16(v))
		}
	default:
		for i, v := range row {
			le.PutUint16(dst[2*i:], checkpoint.F32ToBF16(v))
		}
	}
	return nil
}

// vecTensor writes v as F32, element r taken from perm(r) when perm is set.
func vecTensor(name string, v []float32, perm func(int) int) checkpoint.GGUFWriteTensor {
	b := make([]byte, 4*len(v))
	for i := range v {
		src := i
		if perm != nil {
			src = perm(i)
		}
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v[src]))
	}
	return checkpoint.GGUFWriteTensor{Name: name, Type: checkpoint.GGMLF32, Shape: []int{len(v)}, Data: b}
}
