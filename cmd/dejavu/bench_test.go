package main

import (
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"

	"dejavu/cuda"
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
	r := parseBench(t, out)
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

// TestBenchPredictorFlags: the predictor flags that make no sense, on the
// CPU or with --device cuda, are refused with a clear error before any
// model is loaded or GPU opened (these run without a GPU).
func TestBenchPredictorFlags(t *testing.T) {
	dir := tinyModelDir(t)
	base := []string{"bench", "--gen", "2", "--prompt-len", "2"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--device", "cuda", "--synthetic", "opt-125m", "--predictors", "x.safetensors", "--random-predictors", "--mlp-density", "0.5"}, "not both"},
		{[]string{"--device", "cuda", "--model", dir, "--predictors", "x.safetensors", "--random-predictors"}, "not both"},
		{[]string{"--device", "cuda", "--model", dir, "--predictors", "x.safetensors", "--head-density", "0.5"}, "drop --mlp-density and --head-density"},
		{[]string{"--device", "cuda", "--synthetic", "opt-125m", "--predictors", "x.safetensors"}, "needs --model"},
		{[]string{"--device", "cuda", "--synthetic", "opt-125m", "--random-predictors"}, "needs --mlp-density or --head-density below 1"},
		{[]string{"--device", "cuda", "--synthetic", "opt-125m", "--random-predictors", "--mlp-density", "0.1", "--async"}, "drop --async"},
		{[]string{"--device", "cuda", "--synthetic", "opt-125m", "--random-predictors", "--mlp-density", "0.1", "--async=shared"}, "drop --async"},
		{[]string{"--device", "cuda", "--synthetic", "opt-125m", "--random-predictors", "--mlp-density", "0.1", "--mlp-select", "topk8"}, "want threshold or topk"},
		{[]string{"--device", "cuda", "--synthetic", "opt-125m", "--mlp-density", "0.1", "--mlp-select", "topk"}, "--mlp-select is for --random-predictors"},
		{[]string{"--model", dir, "--random-predictors", "--mlp-density", "0.1", "--mlp-select", "all"}, "want threshold or topk"},
		{[]string{"--model", dir, "--predictors", "x.safetensors", "--mlp-select", "threshold"}, "--mlp-select is for --random-predictors"},
	} {
		_, err := run(t, append(slices.Clone(base), tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("bench %v: error %v, want one with %q", tc.args, err, tc.want)
		}
	}
}

// TestBenchRandomThresholds: --mlp-select threshold selects the MLP by the
// thresholds calibrated to --mlp-density (about that density), topk (the
// CPU's default) exactly the budget.
func TestBenchRandomThresholds(t *testing.T) {
	dir := tinyModelDir(t)
	for _, sel := range []string{"threshold", "topk"} {
		out, err := run(t, "bench", "--model", dir, "--threads", "2", "--random-predictors", "--mlp-density", "0.5",
			"--head-density", "0.5", "--mlp-select", sel, "--prompt-len", "4", "--gen", "16", "--json")
		if err != nil {
			t.Fatal(err)
		}
		r := parseBench(t, out)
		if math.Abs(r.MLP-0.5) > 0.15 || r.Pred <= 0 {
			t.Errorf("--mlp-select %s: %+v, want an MLP density near 0.5", sel, r)
		}
	}
}

// TestBenchCUDAPredictors: on a GPU (skipped without one), random
// predictors of a synthetic shape decode sparse at about the asked
// densities, by thresholds and by top-k.
func TestBenchCUDAPredictors(t *testing.T) {
	if err := cuda.Available(); err != nil {
		t.Skip(err.Error())
	}
	for _, sel := range []string{"threshold", "topk"} {
		out, err := run(t, "bench", "--device", "cuda", "--synthetic", "opt-125m", "--random-predictors", "--mlp-density", "0.1",
			"--head-density", "0.5", "--mlp-select", sel, "--prompt-len", "4", "--gen", "8", "--json")
		if err != nil {
			t.Fatal(err)
		}
		r := parseBench(t, out)
		if math.Abs(r.MLP-0.1) > 0.03 || math.Abs(r.Heads-0.5) > 0.05 || r.Pred <= 0 || r.Bytes <= r.Pred {
			t.Errorf("--mlp-select %s: %+v", sel, r)
		}
	}
}

// benchOut is the part of `dejavu bench --json` the tests read.
type benchOut struct {
	MLP   float64 `json:"mlp_density"`
	Heads float64 `json:"head_density"`
	Pred  int64   `json:"predictor_bytes"`
	Bytes int64   `json:"weight_bytes_per_token"`
}

func parseBench(t *testing.T, out string) benchOut {
	t.Helper()
	var r benchOut
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return r
}
