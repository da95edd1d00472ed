package main

import (
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"testing"
)

func TestConvertGGUF(t *testing.T) {
	src := filepath.Join("..", "..", "testdata", "models", "llama-silu")
	out := filepath.Join(t.TempDir(), "m.gguf")
	if _, err := run(t, "convert", "--model", src, "--out", out, "--type", "f32"); err == nil || !strings.Contains(err.Error(), "--no-tokenizer") {
		t.Fatalf("a model without tokenizer files: error %v", err)
	}
	if _, err := run(t, "convert", "--model", src, "--out", out, "--type", "f32", "--no-tokenizer"); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "convert", "--model", src, "--out", out, "--type", "q4"); err == nil {
		t.Errorf("--type q4 accepted")
	}
	logits := func(path string) [][]float32 {
		s, err := run(t, "logits", "--model", path, "--ids", "1,5,9,200", "--threads", "2")
		if err != nil {
			t.Fatal(err)
		}
		var r struct{ Logits [][]float32 }
		if err := json.Unmarshal([]byte(s), &r); err != nil {
			t.Fatal(err)
		}
		return r.Logits
	}
	want, got := logits(src), logits(out)
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d", len(got), len(want))
	}
	for i := range want {
		for j := range want[i] {
			if math.Abs(float64(got[i][j]-want[i][j])) > 1e-4 {
				t.Fatalf("logit [%d][%d] = %v, want %v", i, j, got[i][j], want[i][j])
			}
		}
	}
}

// TestConvertQuantizedGGUF writes Q8_0 and Q4_0 files and reads their
// logits back: those of the source quantized at load with the same
// quantizer (--dtype).
func TestConvertQuantizedGGUF(t *testing.T) {
	src := filepath.Join("..", "..", "testdata", "models", "llama-silu")
	logits := func(args ...string) [][]float32 {
		s, err := run(t, append([]string{"logits", "--ids", "1,5,9,200", "--threads", "2"}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		var r struct{ Logits [][]float32 }
		if err := json.Unmarshal([]byte(s), &r); err != nil {
			t.Fatal(err)
		}
		return r.Logits
	}
	for _, typ := range []string{"q8_0", "q4_0"} {
		out := filepath.Join(t.TempDir(), typ+".gguf")
		if _, err := run(t, "convert", "--model", src, "--out", out, "--type", typ, "--no-tokenizer"); err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		// The GGUF's q/k rows are in the interleaved RoPE layout, so the
		// f32 sums differ in order; the 8-bit quantization of x in the
		// products can turn such rounding into a step of x (up to half a
		// step), hence 2e-3 of the row's largest logit.
		want, got := logits("--model", src, "--dtype", typ), logits("--model", out)
		for i := range want {
			var m float64
			for _, v := range want[i] {
				m = math.Max(m, math.Abs(float64(v)))
			}
			for j := range want[i] {
				if math.Abs(float64(got[i][j]-want[i][j])) > 2e-3*m {
					t.Fatalf("%s: logit [%d][%d] = %v, want %v", typ, i, j, got[i][j], want[i][j])
				}
			}
		}
	}
}
