package tokenizer

import (
	"os"
	"testing"
)

// benchText is 64 KiB of WikiText-2.
func benchText(b *testing.B) string {
	data, err := os.ReadFile(dataPath(b, "text/wikitext-2-raw/wiki.test.raw"))
	if err != nil {
		b.Fatal(err)
	}
	return string(data[:64<<10])
}

func benchEncode(b *testing.B, rel string) {
	text := benchText(b)
	tok := mustLoad(b, rel)
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := tok.EncodeNoSpecial(text); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeGPT2(b *testing.B)     { benchEncode(b, "tokenizers/gpt2") }
func BenchmarkEncodeOPT(b *testing.B)      { benchEncode(b, "models/testbed-opt-relu") }
func BenchmarkEncodeLlamaSPM(b *testing.B) { benchEncode(b, "tokenizers/llama2/tokenizer.model") }
func BenchmarkEncodeLlama2C(b *testing.B)  { benchEncode(b, "tokenizers/llama2/tokenizer.bin") }

func BenchmarkDecodeGPT2(b *testing.B) {
	text := benchText(b)
	tok := mustLoad(b, "tokenizers/gpt2")
	ids, _ := tok.EncodeNoSpecial(text)
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := tok.Decode(ids); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLoadLlamaSPM(b *testing.B) {
	p := dataPath(b, "tokenizers/llama2/tokenizer.model")
	for i := 0; i < b.N; i++ {
		if _, err := LoadSentencePiece(p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLoadGPT2(b *testing.B) {
	p := dataPath(b, "tokenizers/gpt2")
	for i := 0; i < b.N; i++ {
		if _, err := Load(p); err != nil {
			b.Fatal(err)
		}
	}
}
