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
