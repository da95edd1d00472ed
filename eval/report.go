package eval

import (
	"encoding/json"
	"fmt"
	"os"

	"dejavu/internal/atomicfile"
)

// Sweep is what `dejavu eval sweep` writes: dense and sparse decoding of the
// same tokens at several selection densities.
type Sweep struct {
	Model      string   `json:"model"`
	Predictors string   `json:"predictors"`
	Files      []string `json:"files"`
	Protocol   Protocol `json:"protocol"`
	Ctx        int      `json:"ctx"`
	MaxTokens  int      `json:"max_tokens"`
	// Tokens is the number of scored positions of every point.
	Tokens int `json:"tokens"`
	// Dense is the dense decode-mode perplexity of the same tokens.
	Dense Result `json:"dense"`
	// Points are the sparse configurations, in the order run.
	Points []SweepPoint `json:"points"`
}

// SweepPoint is one sparse configuration of a Sweep.
type SweepPoint struct {
	// MLPSetting and HeadSetting name the selection asked for
	// (SweepSetting.String: "density D", "mass M" or "cal").
	MLPSetting  string `json:"mlp_setting,omitempty"`
	HeadSetting string `json:"head_setting,omitempty"`
	// RequestedMLPDensity and RequestedHeadDensity are the uniform
	// densities asked for (0: per-layer budgets, calibrated or by mass).
	RequestedMLPDensity  float64 `json:"requested_mlp_density"`
	RequestedHeadDensity float64 `json:"requested_head_density"`
	// RequestedMLPMass and RequestedHeadMass are the activation-mass recall
	// targets of per-layer budgets (0: none; both a density and a mass 0:
	// the predictors' calibrated budgets).
	RequestedMLPMass  float64 `json:"requested_mlp_mass,omitempty"`
	RequestedHeadMass float64 `json:"requested_head_mass,omitempty"`
	// MLPBudgets and HeadBudgets are the per-layer neuron and head counts
	// selected (sparsity.Predictors.Budgets).
	MLPBudgets  []int `json:"mlp_budgets,omitempty"`
	HeadBudgets []int `json:"head_budgets,omitempty"`
	// MLPDensity and HeadDensity are what the sparse decode steps computed
	// (model.Session.Density), predictor choices included.
	MLPDensity  float64 `json:"mlp_density"`
	HeadDensity float64 `json:"head_density"`
	Perplexity  float64 `json:"perplexity"`
	StdErr      float64 `json:"stderr"`
	// KL(P_dense ‖ P_sparse) in nats and top-1 agreement with dense.
	KLMean        float64 `json:"kl_mean"`
	KLP99         float64 `json:"kl_p99"`
	KLMax         float64 `json:"kl_max"`
	Top1Agreement float64 `json:"top1_agreement"`
	// Seconds is the sweep's wall time shared evenly among the dense run
	// and the points (they run interleaved, window by window).
	Seconds float64 `json:"seconds"`
}

// ReadSweep reads a Sweep written by `dejavu eval sweep`.
func ReadSweep(path string) (*Sweep, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s Sweep
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("eval: %s: not a sweep result: %w", path, err)
	}
	if len(s.Points) == 0 {
		return nil, fmt.Errorf("eval: %s: a sweep result without points", path)
	}
	return &s, nil
}

// WriteJSON writes v as indented JSON to path atomically: into a temporary
// file beside it, synced, then renamed over path, so a reader never sees a
// partial result.
func WriteJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(path, append(b, '\n'))
}

// WriteFileAtomic writes b to path through a synced temporary file in the
// same directory and a rename.
func WriteFileAtomic(path string, b []byte) error { return atomicfile.WriteBytes(path, b) }
