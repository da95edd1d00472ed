package main

import (
	"encoding/json"
	"strings"
	"testing"

	"dejavu/kernels"
	"dejavu/model"
	"dejavu/sparsity"
)

// TestBenchRandomPredictors: sparse decode through random predictors of the
// trained size reports their bytes and the densities they select; the flag
// combinations that make no sense are refused.
func TestBenchRandomPredictors(t *testing.T) {
	dir := tinyModelDir(t)
	out, err := run(t, "bench", "--model", dir, "--threads", "2", "--random-predictors", "--mlp-density", "0.25",
		"--head-density", "0.5", "--prompt-len", "4", "--gen", "8", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		MLP   float64 `json:"mlp_density"`
		Heads float64 `json:"head_density"`
		Pred  int64   `json:"predictor_bytes"`
		Bytes int64   `json:"weight_bytes_per_token"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if r.MLP <= 0 || r.MLP >= 1 || r.Heads >= 1 || r.Pred <= 0 || r.Bytes <= r.Pred {
		t.Errorf("bench --random-predictors: %+v", r)
	}
	for _, args := range [][]string{
		{"--random-predictors"},
		{"--random-predictors", "--predictors", "x.safetensors", "--mlp-density", "0.5"},
	} {
		_, err := run(t, append([]string{"bench", "--model", dir, "--gen", "2", "--prompt-len", "2"}, args...)...)
		if err == nil || !strings.Contains(err.Error(), "predictors") {
			t.Errorf("bench %v: error %v, want one about the predictors", args, err)
		}
	}
}

// TestPredictorDType: f16 leaves the predictors as they are, q8_0 (the
// default) halves their bytes, anything else is refused.
func TestPredictorDType(t *testing.T) {
	m, err := model.Synthetic("opt-125m", kernels.F16, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	p, err := sparsity.RandomPredictors(m, 0.1, 0.5, 1)
	if err != nil {
		t.Fatal(err)
	}
	f16 := p.Bytes()
	if err := applyPredictorDType(p, "q4_0", true); err == nil || !strings.Contains(err.Error(), "want f16 or q8_0") {
		t.Errorf("q4_0: %v", err)
	}
	if err := applyPredictorDType(p, "f16", true); err != nil || p.Bytes() != f16 {
		t.Errorf("f16: %v, %d bytes of %d", err, p.Bytes(), f16)
	}
	if err := applyPredictorDType(p, defaultPredictorDType, false); err != nil || p.Bytes() > f16*6/10 {
		t.Errorf("default: %v, %d bytes of %d", err, p.Bytes(), f16)
	}
}
