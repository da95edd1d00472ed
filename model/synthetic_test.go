package model

import (
	"math"
	"strings"
	"testing"

	"dejavu/kernels"
)

// TestSyntheticBytes checks the memory estimate that guards Synthetic
// against the bytes of a model it builds.
func TestSyntheticBytes(t *testing.T) {
	for _, dt := range []kernels.DType{kernels.F16, kernels.Q8_0} {
		m, err := Synthetic("opt-125m", dt, 1)
		if err != nil {
			t.Fatal(err)
		}
		got := syntheticBytes(m.Cfg, dt)
		want := m.WeightBytes() + m.Pos.Bytes()
		if math.Abs(float64(got-want)) > 0.01*float64(want) {
			t.Errorf("opt-125m %v: estimated %d bytes, built %d", dt, got, want)
		}
	}
}

func TestSyntheticMemoryRefused(t *testing.T) {
	c, err := SyntheticConfig("opt-30b")
	if err != nil {
		t.Fatal(err)
	}
	need := syntheticBytes(c, kernels.F16)
	if need < 59e9 || need > 61e9 {
		t.Fatalf("opt-30b f16: %d bytes, want about 60 GB", need)
	}
	err = checkSyntheticMemory("opt-30b", kernels.F16, need, func() (int64, bool) { return 8 << 30, true })
	if err == nil || !strings.Contains(err.Error(), "opt-30b") || !strings.Contains(err.Error(), "59.9 GB") {
		t.Errorf("8 GiB available: got %v, want a refusal naming the shape and its 59.9 GB", err)
	}
	if err := checkSyntheticMemory("opt-30b", kernels.F16, need, func() (int64, bool) { return 0, false }); err != nil {
		t.Errorf("unknown memory: %v, want no refusal", err)
	}
	if err := checkSyntheticMemory("opt-30b", kernels.F16, need, func() (int64, bool) { return 64e9, true }); err != nil {
		t.Errorf("64 GB available: %v", err)
	}
}
