package model

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"dejavu/checkpoint"
	"dejavu/kernels"
)

// logitsBoth runs ids through m as one prompt pass and one token at a time.
func logitsBoth(t *testing.T, m *Model, pool *kernels.Pool, ids []int) (prompt, decode []float32) {
	t.Helper()
	s := m.NewSession(pool, 0)
	prompt, err := s.Forward(ids, true)
	if err != nil {
		t.Fatal(err)
	}
	prompt = append([]float32(nil), prompt...)
	s.Reset()
	for _, id := range ids {
		row, err := s.Forward([]int{id}, false)
		if err != nil {
			t.Fatal(err)
		}
		decode = append(decode, row...)
	}
	return prompt, decode
}

func TestGGUFLogitsMatchSafetensors(t *testing.T) {
	pool := kernels.NewPool(2)
	defer pool.Close()
	cases := []struct {
		dir   string
		dtype kernels.DType
	}{
		{filepath.Join("..", "testdata", "models", "llama-silu"), kernels.F32},
		{filepath.Join("..", "testdata", "models", "llama3-rope"), kernels.F32},
		{filepath.Join("..", "testdata", "models", "llama3-rope"), kernels.F16}, // stored as f16: exact
		{filepath.Join("..", "testdata", "models", "qwen2-bias"), kernels.F32},
		{filepath.Join("..", "testdata", "models", "mistral-headdim"), kernels.F32},
		{filepath.Join("..", "testdata", "models", "llama-gelu"), kernels.F32},
		{filepath.Join("..", "..", "shared", "data", "models", "testbed-llama-relu"), kernels.F16},
	}
	for _, c := range cases {
		name := filepath.Base(c.dir) + "-" + c.dtype.String()
		if _, err := os.Stat(c.dir); err != nil {
			t.Logf("%s: skipped: %v", name, err)
			continue
		}
		ref, err := Load(c.dir)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), name+".gguf")
		if err := WriteGGUF(path, ref, GGUFWriteOptions{DType: c.dtype, Name: name}); err != nil {
			ref.Close()
			t.Fatalf("%s: %v", name, err)
		}
		m, err := Load(path)
		if err != nil {
			ref.Close()
			t.Fatalf("%s: %v", name, err)
		}
		wantArch := "gguf:llama"
		if strings.Contains(name, "qwen2") {
			wantArch = "gguf:qwen2"
		}
		if m.Cfg.Arch != wantArch || m.Cfg.Interleave != (wantArch == "gguf:llama") || m.Cfg.Vocab != ref.Cfg.Vocab ||
			m.Cfg.TiedHead != ref.Cfg.TiedHead || m.Cfg.ActName != ref.Cfg.ActName || (m.Cfg.RopeScale == nil) != (ref.Cfg.RopeScale == nil) {
			t.Errorf("%s: config %+v from %+v", name, m.Cfg, ref.Cfg)
		}
		ids := []int{1, 7, 42, 3, 99 % ref.Cfg.Vocab, 200 % ref.Cfg.Vocab, 5, 17}
		wantP, wantD := logitsBoth(t, ref, pool, ids)
		gotP, gotD := logitsBoth(t, m, pool, ids)
		checkRows(t, name+" prompt", gotP, wantP, ref.Cfg.Vocab, 1e-5)
		checkRows(t, name+" decode", gotD, wantD, ref.Cfg.Vocab, 1e-5)

		// The interleaved layout is what makes them equal: without it
		// (the q/k rows read as half-split) the logits differ.
		if m.Cfg.Interleave {
			m.Cfg.Interleave = false
			bad, _ := logitsBoth(t, m, pool, ids)
			if maxDiff(bad, wantP) < 1e-3*maxAbs(wantP) {
				t.Errorf("%s: logits do not depend on the RoPE layout", name)
			}
		}
		m.Close()
		ref.Close()
	}
}

func maxDiff(a, b []float32) float64 {
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}

func maxAbs(a []float32) float64 {
	d := 0.0
	for _, v := range a {
		d = math.Max(d, math.Abs(float64(v)))
	}
	return d
}

func TestLlama3FromFactors(t *testing.T) {
	for _, sc := range []*RopeScaling{
		{Type: "llama3", Factor: 32, LowFreqFactor: 1, HighFreqFactor: 4, OrigMaxPosition: 8192},
		{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OrigMaxPosition: 8192},
		{Type: "llama3", Factor: 4, LowFreqFactor: 1, HighFreqFactor: 4, OrigMaxPosition: 16},
	} {
		for _, hd := range []int{16, 64, 128} {
			r := Llama3Factors(500000, hd, sc)
			got, err := llama3FromFactors(500000, hd, r)
			if err != nil {
				t.Fatalf("%+v head_dim %d: %v", *sc, hd, err)
			}
			for i, v := range Llama3Factors(500000, hd, got) {
				if math.Abs(float64(v-r[i])) > 1e-5*float64(r[i]) {
					t.Errorf("%+v head_dim %d: pair %d: %v, want %v (recovered %+v)", *sc, hd, i, v, r[i], *got)
				}
			}
		}
	}
	if sc, err := llama3FromFactors(10000, 8, []float32{1, 1, 1, 1}); sc != nil || err != nil {
		t.Errorf("all ones: %v %v", sc, err)
	}
	if sc, err := llama3FromFactors(10000, 8, []float32{2, 2, 2, 2}); err != nil || sc.Type != "linear" || sc.Factor != 2 {
		t.Errorf("all twos: %+v %v", sc, err)
	}
	if _, err := llama3FromFactors(10000, 8, []float32{1, 3, 1, 3}); err == nil {
		t.Errorf("accepted divisors that are not llama3 scaling")
	}
}

func TestGGUFModelErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, kvs []checkpoint.GGUFKV) string {
		p := filepath.Join(dir, name)
		emb := make([]byte, 4*8*4)
		err := checkpoint.WriteGGUF(p, kvs, []checkpoint.GGUFWriteTensor{{Name: "token_embd.weight", Type: checkpoint.GGMLF32, Shape: []int{8, 4}, Data: emb}})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	s := checkpoint.GGUFStringValue
	u := func(v uint32) checkpoint.GGUFValue { return checkpoint.GGUFUint32Value(v) }
	base := []checkpoint.GGUFKV{{Key: "general.architecture", Value: s("llama")}, {Key: "llama.embedding_length", Value: u(4)},
		{Key: "llama.block_count", Value: u(1)}, {Key: "llama.feed_forward_length", Value: u(8)},
		{Key: "llama.attention.head_count", Value: u(2)}, {Key: "llama.context_length", Value: u(16)}}
	cases := []struct {
		name, want string
		kvs        []checkpoint.GGUFKV
	}{
		{"arch.gguf", `GGUF architecture "gpt2" is not supported`, []checkpoint.GGUFKV{{Key: "general.architecture", Value: s("gpt2")}}},
		{"noarch.gguf", "general.architecture is missing", nil},
		{"missing.gguf", "llama.block_count is missing", append([]checkpoint.GGUFKV{base[0], base[1]}, base[3:]...)},
		{"wrongtype.gguf", `metadata "llama.block_count" is string`, append(append([]checkpoint.GGUFKV{}, base[:2]...), append([]checkpoint.GGUFKV{{Key: "llama.block_count", Value: s("one")}}, base[3:]...)...)},
		{"act.gguf", "activation \"swiglu2\" is not supported", append(append([]checkpoint.GGUFKV{}, base...), checkpoint.GGUFKV{Key: GGUFActKey, Value: s("swiglu2")})},
		{"tensors.gguf", `tensor "output_norm.weight" is missing`, base},
	}
	for _, c := range cases {
		p := write(c.name, c.kvs)
		_, err := Load(p)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error %v, want one naming the file and %q", c.name, err, c.want)
		}
	}
}
