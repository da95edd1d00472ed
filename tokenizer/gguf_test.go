package tokenizer

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"dejavu/checkpoint"
)

var ggufTexts = []string{"", "Hello world", "Once upon a time, there was a little girl named Lily.",
	"  leading and  double  spaces ", "tabs\tand\nnewlines\n\n", "numbers 12345 and 3.14", "ünïcödé ✓ 日本語 🙂",
	"it's they're we'll", "<s> special </s> inside"}

// ggufRoundTrip writes tok's GGUF metadata to a file and loads it back.
func ggufRoundTrip(t *testing.T, tok Tokenizer) Tokenizer {
	t.Helper()
	kvs, err := GGUFMetadata(tok)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tok.gguf")
	if err := checkpoint.WriteGGUF(path, kvs, nil); err != nil {
		t.Fatal(err)
	}
	g, err := LoadGGUF(path)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func compareTokenizers(t *testing.T, name string, want, got Tokenizer) {
	t.Helper()
	if got.VocabSize() != want.VocabSize() || got.BOS() != want.BOS() || got.EOS() != want.EOS() {
		t.Errorf("%s: vocab %d bos %d eos %d, want %d %d %d", name, got.VocabSize(), got.BOS(), got.EOS(), want.VocabSize(), want.BOS(), want.EOS())
	}
	for _, s := range ggufTexts {
		w, _ := want.Encode(s)
		g, _ := got.Encode(s)
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s: Encode(%q) = %v, want %v", name, s, g, w)
		}
		w, _ = want.EncodeNoSpecial(s)
		g, _ = got.EncodeNoSpecial(s)
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s: EncodeNoSpecial(%q) = %v, want %v", name, s, g, w)
		}
		ws, _ := want.Decode(w)
		gs, err := got.Decode(w)
		if err != nil || gs != ws {
			t.Errorf("%s: Decode(%v) = %q, %v; want %q", name, w, gs, err, ws)
		}
	}
}

func TestGGUFByteLevelBPE(t *testing.T) {
	dir := filepath.Join("..", "..", "shared", "data", "models", "testbed-llama-relu")
	if _, err := os.Stat(dir); err != nil {
		t.Skip(err)
	}
	hf, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	compareTokenizers(t, "testbed-llama-relu", hf, ggufRoundTrip(t, hf))
}

func TestGGUFSentencePiece(t *testing.T) {
	path := filepath.Join("..", "..", "shared", "data", "models", "stories260K", "tok512.model")
	if _, err := os.Stat(path); err != nil {
		t.Skip(err)
	}
	spm, err := LoadSentencePiece(path)
	if err != nil {
		t.Fatal(err)
	}
	compareTokenizers(t, "tok512", spm, ggufRoundTrip(t, spm))
}

func TestGGUFTokenizerErrors(t *testing.T) {
	s := checkpoint.GGUFStringValue
	toks := checkpoint.GGUFStringsValue([]string{"a", "b", "ab"})
	cases := []struct {
		want string
		kvs  []checkpoint.GGUFKV
	}{
		{"tokenizer.ggml.model is missing", nil},
		{`tokenizer.ggml.model "bert" is not supported`, []checkpoint.GGUFKV{{Key: ggufTokModel, Value: s("bert")}, {Key: ggufTokTokens, Value: toks}}},
		{"tokenizer.ggml.tokens is missing", []checkpoint.GGUFKV{{Key: ggufTokModel, Value: s("gpt2")}}},
		{`tokenizer.ggml.pre "llama-bpe" is not supported`, []checkpoint.GGUFKV{{Key: ggufTokModel, Value: s("gpt2")}, {Key: ggufTokPre, Value: s("llama-bpe")}, {Key: ggufTokTokens, Value: toks}}},
		{`"c" is not in the vocabulary`, []checkpoint.GGUFKV{{Key: ggufTokModel, Value: s("gpt2")}, {Key: ggufTokPre, Value: s("gpt-2")}, {Key: ggufTokTokens, Value: toks}, {Key: ggufTokMerges, Value: checkpoint.GGUFStringsValue([]string{"a c"})}}},
		{"bos_token_id = 7 is not below the 3 tokens", []checkpoint.GGUFKV{{Key: ggufTokModel, Value: s("gpt2")}, {Key: ggufTokTokens, Value: toks}, {Key: ggufTokBOS, Value: checkpoint.GGUFUint32Value(7)}}},
		{"no unknown token", []checkpoint.GGUFKV{{Key: ggufTokModel, Value: s("llama")}, {Key: ggufTokTokens, Value: toks}}},
		{"token_type has 1 entries for 3 tokens", []checkpoint.GGUFKV{{Key: ggufTokModel, Value: s("llama")}, {Key: ggufTokTokens, Value: toks}, {Key: ggufTokTypes, Value: checkpoint.GGUFInt32sValue([]int32{1})}}},
	}
	for i, c := range cases {
		path := filepath.Join(t.TempDir(), "t.gguf")
		if err := checkpoint.WriteGGUF(path, c.kvs, nil); err != nil {
			t.Fatal(err)
		}
		_, err := LoadGGUF(path)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("case %d: error %v, want one naming the file and %q", i, err, c.want)
		}
	}
}
