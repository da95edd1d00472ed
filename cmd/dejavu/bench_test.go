package main

import (
	"encoding/json"
	"strings"
	"testing"
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
