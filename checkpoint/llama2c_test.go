package checkpoint

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unsafe"
)

// llama2CFloats is the number of float32 weights a legacy llama2.c file with
// header h holds, computed independently of the parser.
func llama2CFloats(h [7]int32) int {
	dim, hidden, L, nh, nkv, vocab, seq := int(h[0]), int(h[1]), int(h[2]), int(h[3]), int(h[4]), int(h[5]), int(h[6])
	hs := dim / nh
	n := 0
	if vocab < 0 {
		vocab = -vocab
		n += vocab * dim // wcls
	}
	n += vocab * dim            // token_embedding_table
	n += L * dim * 2            // rms_att, rms_ffn
	n += L * dim * dim * 2      // wq, wo
	n += L * dim * nkv * hs * 2 // wk, wv
	n += L * dim * hidden * 3   // w1, w2, w3
	n += dim                    // rms_final
	n += seq * hs / 2 * 2       // freq_cis_real, freq_cis_imag
	return n
}

// makeLlama2C returns a llama2.c file with header h whose k-th weight is k.
func makeLlama2C(h [7]int32) []byte {
	b := make([]byte, 0, 28+4*llama2CFloats(h))
	for _, v := range h {
		b = binary.LittleEndian.AppendUint32(b, uint32(v))
	}
	for k := 0; k < llama2CFloats(h); k++ {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(k)))
	}
	return b
}

func TestStories260K(t *testing.T) {
	path := filepath.Join(sharedModels, "stories260K", "stories260K.bin")
	fi, err := os.Stat(path)
	if err != nil {
		t.Skipf("stories260K not available: %v", err)
	}
	cfg, s, err := OpenLlama2C(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := Llama2CConfig{Dim: 64, HiddenDim: 172, NLayers: 5, NHeads: 8, NKVHeads: 4, VocabSize: 512, SeqLen: 512, SharedClassifier: true}
	if *cfg != want {
		t.Errorf("config %+v, want %+v", *cfg, want)
	}
	h := [7]int32{64, 172, 5, 8, 4, 512, 512}
	if size := int64(28 + 4*llama2CFloats(h)); fi.Size() != size {
		t.Errorf("file is %d bytes, config implies %d", fi.Size(), size)
	}
	if s.Len() != 1+9*5+2 {
		t.Errorf("%d tensors: %v", s.Len(), s.Names())
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	emb, _ := s.Tensor("model.embed_tokens.weight")
	if !reflect.DeepEqual(emb.Shape, []int{512, 64}) || emb.DType != F32 || string(emb.Data[:8]) != string(raw[28:36]) {
		t.Errorf("embedding %v %v", emb.Shape, emb.DType)
	}
	head, _ := s.Tensor("lm_head.weight")
	if unsafe.SliceData(head.Data) != unsafe.SliceData(emb.Data) || len(head.Data) != len(emb.Data) {
		t.Errorf("lm_head does not alias the embedding")
	}
	// wk of layer 1 starts after emb, rms_att, wq and layer 0's wk.
	off := 28 + 4*(512*64+5*64+5*64*64+64*32)
	k1, _ := s.Tensor("model.layers.1.self_attn.k_proj.weight")
	if !reflect.DeepEqual(k1.Shape, []int{32, 64}) || string(k1.Data[:16]) != string(raw[off:off+16]) {
		t.Errorf("layer 1 k_proj shape %v or offset wrong", k1.Shape)
	}
	norm, _ := s.Tensor("model.norm.weight")
	v, ok := norm.Float32View()
	if !ok || len(v) != 64 {
		t.Fatalf("Float32View: %v", ok)
	}
	for _, x := range v {
		if x <= 0 || x > 100 || math.IsNaN(float64(x)) {
			t.Fatalf("implausible final norm weight %g", x)
		}
	}
}

func TestLlama2CSynthetic(t *testing.T) {
	for _, shared := range []bool{true, false} {
		t.Run(fmt.Sprint("shared=", shared), func(t *testing.T) {
			const dim, hidden, L, nh, nkv, vocab, seq = 8, 12, 2, 4, 2, 10, 6
			h := [7]int32{dim, hidden, L, nh, nkv, vocab, seq}
			if !shared {
				h[5] = -vocab
			}
			path := filepath.Join(t.TempDir(), "m.bin")
			if err := os.WriteFile(path, makeLlama2C(h), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, s, err := OpenLlama2C(path)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if cfg.VocabSize != vocab || cfg.SharedClassifier != shared || cfg.HeadSize() != 2 || cfg.KVDim() != 4 {
				t.Errorf("config %+v", *cfg)
			}
			// Expected first element (= flat index) and shape of each tensor.
			hs, kv := dim/nh, nkv*dim/nh
			type exp struct {
				first int
				shape []int
			}
			want := map[string]exp{}
			k := 0
			add := func(name string, shape ...int) {
				want[name] = exp{k, shape}
				n := 1
				for _, d := range shape {
					n *= d
				}
				k += n
			}
			add("model.embed_tokens.weight", vocab, dim)
			perLayer := func(name string, shape ...int) {
				for l := 0; l < L; l++ {
					add(fmt.Sprintf("model.layers.%d.%s.weight", l, name), shape...)
				}
			}
			perLayer("input_layernorm", dim)
			perLayer("self_attn.q_proj", dim, dim)
			perLayer("self_attn.k_proj", kv, dim)
			perLayer("self_attn.v_proj", kv, dim)
			perLayer("self_attn.o_proj", dim, dim)
			perLayer("post_attention_layernorm", dim)
			perLayer("mlp.gate_proj", hidden, dim)
			perLayer("mlp.down_proj", dim, hidden)
			perLayer("mlp.up_proj", hidden, dim)
			add("model.norm.weight", dim)
			k += seq * hs // freq_cis
			if shared {
				want["lm_head.weight"] = want["model.embed_tokens.weight"]
			} else {
				add("lm_head.weight", vocab, dim)
			}
			if s.Len() != len(want) {
				t.Errorf("tensors %v", s.Names())
			}
			for name, w := range want {
				tt, ok := s.Tensor(name)
				if !ok {
					t.Errorf("missing %q", name)
					continue
				}
				if !reflect.DeepEqual(tt.Shape, w.shape) || tt.DType != F32 || tt.File != path {
					t.Errorf("%q: %v %v %s, want %v", name, tt.Shape, tt.DType, tt.File, w.shape)
				}
				dst := make([]float32, tt.NumElements())
				if err := tt.ToFloat32(dst); err != nil {
					t.Fatal(err)
				}
				if dst[0] != float32(w.first) || dst[len(dst)-1] != float32(w.first+len(dst)-1) {
					t.Errorf("%q: elements %g..%g, want %d..", name, dst[0], dst[len(dst)-1], w.first)
				}
			}
		})
	}
}

func TestLlama2CCorrupt(t *testing.T) {
	good := [7]int32{8, 12, 2, 4, 2, 10, 6}
	with := func(i int, v int32) [7]int32 { h := good; h[i] = v; return h }
	header := func(h [7]int32) []byte {
		var b []byte
		for _, v := range h {
			b = binary.LittleEndian.AppendUint32(b, uint32(v))
		}
		return b
	}
	valid := makeLlama2C(good)
	n := len(valid)
	cases := []struct {
		name string
		data []byte
		want []string
	}{
		{"empty", nil, []string{"0 bytes", "header"}},
		{"short header", valid[:20], []string{"20 bytes", "28-byte header"}},
		{"zero dim", header(with(0, 0)), []string{"dim = 0", "positive"}},
		{"negative hidden", header(with(1, -5)), []string{"hidden_dim = -5"}},
		{"zero layers", header(with(2, 0)), []string{"n_layers = 0"}},
		{"zero heads", header(with(3, 0)), []string{"n_heads = 0"}},
		{"zero kv heads", header(with(4, 0)), []string{"n_kv_heads = 0"}},
		{"zero vocab", header(with(5, 0)), []string{"vocab_size = 0"}},
		{"zero seq", header(with(6, 0)), []string{"seq_len = 0"}},
		{"min vocab", header(with(5, math.MinInt32)), []string{"vocab_size"}},
		{"heads not dividing dim", header(with(3, 3)), []string{"n_heads = 3 does not divide dim = 8"}},
		{"kv not dividing heads", header(with(4, 3)), []string{"n_kv_heads = 3 does not divide n_heads = 4"}},
		{"kv more than heads", header(with(4, 8)), []string{"n_kv_heads = 8 does not divide n_heads = 4"}},
		{"truncated", valid[:n-4], []string{fmt.Sprintf("is %d bytes", n-4), fmt.Sprintf("implies %d", n), "4 bytes missing"}},
		{"header only", valid[:28], []string{"is 28 bytes", fmt.Sprintf("implies %d", n)}},
		{"extra", append(append([]byte(nil), valid...), 0, 0, 0, 0), []string{"4 extra bytes"}},
		{"untied but shared", makeLlama2C(with(5, -10))[:n], []string{"bytes missing", "shared classifier: vocab_size should be positive"}},
		{"shared but untied", append(header(good), makeLlama2C(with(5, -10))[28:]...), []string{"extra bytes", "untied classifier: vocab_size should be negative"}},
		{"huge", header([7]int32{math.MaxInt32, math.MaxInt32, math.MaxInt32, 1, 1, math.MaxInt32, math.MaxInt32}), []string{"too large"}},
		{"versioned", append(binary.LittleEndian.AppendUint32(nil, llama2CMagic), header(good)...), []string{"version 8", "ak42"}},
	}
	dir := t.TempDir()
	for i, c := range cases {
		path := filepath.Join(dir, fmt.Sprintf("bad%d.bin", i))
		if err := os.WriteFile(path, c.data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, s, err := OpenLlama2C(path)
		if err == nil {
			s.Close()
			t.Errorf("%s: opened", c.name)
			continue
		}
		for _, w := range append(c.want, path) {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", c.name, err, w)
			}
		}
	}
	if _, _, err := OpenLlama2C(filepath.Join(dir, "missing.bin")); err == nil {
		t.Errorf("missing file opened")
	}
}
