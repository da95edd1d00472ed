package sparsity

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"dejavu/kernels"
	"dejavu/model"
)

var _ model.Selector = (*Predictors)(nil)

// PredictorsFormat names the predictors file layout.
const PredictorsFormat = "dejavu-predictors/1"

// DefaultFileName is the predictors file `dejavu train` writes beside a model.
const DefaultFileName = "dejavu-predictors.safetensors"

// LayerStats is what training measured for one layer on the validation split.
type LayerStats struct {
	Layer int `json:"layer"`
	// MLP predictor (d→Rank→FFN, linear low-rank).
	Rank           int     `json:"rank"`
	PredictorBytes int64   `json:"predictor_bytes"` // both predictors of the layer as stored
	LayerBytes     int64   `json:"layer_bytes"`     // the layer's weight matrices
	BestEpoch      int     `json:"best_epoch"`
	Budget         int     `json:"budget"`       // neurons selected (top-k)
	Recall         float64 `json:"recall"`       // of active neurons, at Budget
	Precision      float64 `json:"precision"`    // at Budget
	TrueDensity    float64 `json:"true_density"` // active neurons / FFN
	PredDensity    float64 `json:"pred_density"` // Budget / FFN
	Threshold      float32 `json:"threshold"`    // logit reaching the recall target
	ThreshDensity  float64 `json:"threshold_density"`
	// Lookahead head predictor: this layer's attention input → heads of
	// layer+1 (absent on the last layer).
	HeadBudget  int     `json:"head_budget,omitempty"`
	HeadRecall  float64 `json:"head_recall,omitempty"` // of the important heads, at HeadBudget
	HeadDensity float64 `json:"head_density,omitempty"`
	// Quality curves on validation, for budgets 8(i+1) neurons / i+1 heads:
	// mean activation-mass recall (see neuronMass), mean per-token neuron
	// recall, and mean head-norm-mass recall of the lookahead.
	MassRecall    float64   `json:"mass_recall,omitempty"` // at Budget
	HeadMass      float64   `json:"head_mass,omitempty"`   // at HeadBudget
	MassCurve     []float32 `json:"mass_curve,omitempty"`
	RecallCurve   []float32 `json:"recall_curve,omitempty"`
	HeadMassCurve []float32 `json:"head_mass_curve,omitempty"`
}

// Info is the predictors file's description (its "info" metadata).
type Info struct {
	Model  string `json:"model"`
	Layers int    `json:"layers"`
	Hidden int    `json:"hidden"`
	FFN    int    `json:"ffn"`
	Heads  int    `json:"heads"`
	Norm   string `json:"input_norm"` // "layernorm" or "rms" (no affine)
	// MLPInput is what the MLP predictors read: MLPInputBlock ("", files
	// before it existed) or MLPInputLayer.
	MLPInput    string       `json:"mlp_input,omitempty"`
	Kind        string       `json:"kind"` // "linear-lowrank"
	Tokens      int          `json:"train_tokens"`
	ValTokens   int          `json:"val_tokens"`
	Recall      float64      `json:"recall_target"`
	HeadFrac    float64      `json:"head_label_fraction"`
	HeadRecallT float64      `json:"head_recall_target"`
	Stats       []LayerStats `json:"stats"`
}

// What an MLP predictor reads (Info.MLPInput, TrainOptions.MLPInput).
const (
	// MLPInputBlock: the hidden state entering the MLP block, after the
	// attention (the prediction waits for the attention).
	MLPInputBlock = "block"
	// MLPInputLayer: the hidden state entering the layer, as DejaVu's
	// reference code feeds its MLP predictors (the residual before the
	// attention): the prediction can run beside the attention.
	MLPInputLayer = "layer"
)

// lowRank is z = B·(A·x̂) + bias: A is Rank×In, B is Out×Rank.
type lowRank struct {
	A, B kernels.Mat
	Bias []float32
}

// Selection overrides how Predictors turn logits into a selection. With no
// MLP option set, each layer selects the neurons whose logit exceeds its
// calibrated threshold (lowered by ThresholdShift): the count adapts to
// the token, and on both test-beds that reaches the same perplexity and
// agreement with fewer neurons than the calibrated top-k budgets
// (docs/sparsity.md). Heads are always a top-k.
type Selection struct {
	// MLPDensity in (0, 1] selects the top round(D·FFN) neurons (a
	// multiple of 8) in every layer.
	MLPDensity float64
	// MLPThreshold, when set, selects neurons whose logit exceeds it.
	MLPThreshold *float64
	// Thresholds selects with each layer's calibrated logit threshold (the
	// default), lowered by ThresholdShift (positive: more neurons, higher
	// recall).
	Thresholds     bool
	ThresholdShift float64
	// Budgets selects each layer's calibrated top-k budget of neurons (the
	// fewest reaching the training recall target on validation).
	Budgets bool
	// HeadDensity in (0, 1] selects the top round(H·Heads) heads (at least
	// one) instead of the calibrated head budgets.
	HeadDensity float64
	// MLPMass in (0, 1] gives each layer the smallest budget whose
	// activation-mass recall on validation reaches it (per-layer budgets:
	// easy layers get fewer neurons).
	MLPMass float64
	// HeadMass in (0, 1] gives each layer the smallest head budget whose
	// head-norm-mass recall on validation reaches it.
	HeadMass float64
	// MLPBudgets and HeadBudgets, when set, are explicit per-layer budgets
	// (Layers and Layers−1 entries; HeadBudgets[l] is for layer l+1).
	MLPBudgets, HeadBudgets []int
}

// Predictors are trained DejaVu predictors for one model. They implement
// model.Selector without allocating; one value serves one session at a time
// (Clone gives another sharing the weights).
type Predictors struct {
	Info        Info
	Fingerprint string
	mlp, head   []lowRank // head has Layers-1 entries
	rms         bool
	mlpK, headK []int
	thr         []float32 // per layer, NaN: use mlpK
	exec        *kernels.Exec
	xn, h, z, s []float32
}

func (p *Predictors) maxCols() int {
	return max(p.Info.Hidden, p.Info.FFN, p.Info.Heads, maxRank(p.mlp), maxRank(p.head))
}

func maxRank(ps []lowRank) int {
	r := 0
	for _, x := range ps {
		r = max(r, x.A.Rows)
	}
	return r
}

func (p *Predictors) initScratch(pool *kernels.Pool) {
	if pool == nil {
		pool = kernels.NewPool(1) // no goroutines: runs on the caller
	}
	p.exec = kernels.NewExec(pool, p.maxCols())
	p.xn = make([]float32, p.Info.Hidden)
	p.h = make([]float32, max(maxRank(p.mlp), maxRank(p.head)))
	p.z = make([]float32, max(p.Info.FFN, p.Info.Heads))
	p.s = make([]float32, max(p.Info.FFN, p.Info.Heads))
}

// SetPool runs the predictors' products on pool (the model's pool, so they
// use all threads); by default they run on the calling goroutine.
func (p *Predictors) SetPool(pool *kernels.Pool) { p.exec = kernels.NewExec(pool, p.maxCols()) }

// Clone returns predictors sharing p's weights and settings with their own
// scratch, for another session.
func (p *Predictors) Clone() *Predictors {
	q := *p
	q.mlpK, q.headK, q.thr = slices.Clone(p.mlpK), slices.Clone(p.headK), slices.Clone(p.thr)
	q.initScratch(p.exec.Pool)
	return &q
}

// SetMLPThreshold sets the MLP selection of s from a threshold spec: a
// number T (neurons whose logit exceeds T in every layer), "auto" (each
// layer's calibrated threshold) or "auto-D" / "auto+D" (the calibrated
// thresholds lowered / raised by D logits: lower selects more neurons).
func (s *Selection) SetMLPThreshold(spec string) error {
	if rest, ok := strings.CutPrefix(spec, "auto"); ok {
		shift := 0.0
		if rest != "" {
			d, err := strconv.ParseFloat(rest, 64)
			if err != nil || rest[0] != '-' && rest[0] != '+' || math.IsNaN(d) || math.IsInf(d, 0) {
				return fmt.Errorf("sparsity: MLP threshold %q: want a number, auto, or auto-D / auto+D", spec)
			}
			shift = -d
		}
		s.Thresholds, s.ThresholdShift = true, shift
		return nil
	}
	t, err := strconv.ParseFloat(spec, 64)
	if err != nil || math.IsNaN(t) {
		return fmt.Errorf("sparsity: MLP threshold %q: want a number, auto, or auto-D / auto+D", spec)
	}
	s.MLPThreshold = &t
	return nil
}

// SetSelection applies s; the zero Selection restores the defaults (the
// calibrated per-layer thresholds and head budgets).
func (p *Predictors) SetSelection(s Selection) error {
	F, H := p.Info.FFN, p.Info.Heads
	n := 0
	if s.MLPDensity != 0 {
		n++
	}
	if s.MLPThreshold != nil {
		n++
	}
	if s.MLPMass != 0 {
		n++
	}
	if s.MLPBudgets != nil {
		n++
	}
	if s.Thresholds {
		n++
	}
	if s.Budgets {
		n++
	}
	if n > 1 {
		return errors.New("sparsity: choose one of an MLP density, an MLP threshold, an MLP mass, explicit budgets, the calibrated budgets and the calibrated thresholds")
	}
	if n == 0 {
		s.Thresholds = true
	}
	if s.HeadDensity != 0 && (s.HeadMass != 0 || s.HeadBudgets != nil) || s.HeadMass != 0 && s.HeadBudgets != nil {
		return errors.New("sparsity: choose one of a head density, a head mass and explicit head budgets")
	}
	for _, v := range []float64{s.MLPDensity, s.HeadDensity, s.MLPMass, s.HeadMass} {
		if v < 0 || v > 1 {
			return fmt.Errorf("sparsity: densities and masses must lie in (0, 1], got %v", v)
		}
	}
	if s.MLPBudgets != nil && len(s.MLPBudgets) != len(p.mlpK) || s.HeadBudgets != nil && len(s.HeadBudgets) != len(p.headK) {
		return fmt.Errorf("sparsity: %d MLP and %d head budgets, want %d and %d", len(s.MLPBudgets), len(s.HeadBudgets), len(p.mlpK), len(p.headK))
	}
	for l, st := range p.Info.Stats {
		if s.MLPMass > 0 && len(st.MassCurve) == 0 || s.HeadMass > 0 && l < len(p.headK) && len(st.HeadMassCurve) == 0 {
			return errors.New("sparsity: these predictors have no quality curves (trained by an older version): train them again")
		}
	}
	for l, st := range p.Info.Stats {
		p.mlpK[l] = st.Budget
		p.thr[l] = float32(math.NaN())
		switch {
		case s.MLPDensity > 0:
			p.mlpK[l] = min(F, max(8, int(math.Round(s.MLPDensity*float64(F)/8))*8))
		case s.MLPThreshold != nil:
			p.thr[l] = float32(*s.MLPThreshold)
		case s.Thresholds:
			p.thr[l] = st.Threshold - float32(s.ThresholdShift)
		case s.MLPMass > 0:
			p.mlpK[l] = budgetFor(st.MassCurve, s.MLPMass, 8, F)
		case s.MLPBudgets != nil:
			p.mlpK[l] = min(F, max(0, s.MLPBudgets[l]))
		}
		if l < len(p.headK) {
			p.headK[l] = st.HeadBudget
			switch {
			case s.HeadDensity > 0:
				p.headK[l] = min(H, max(1, int(math.Round(s.HeadDensity*float64(H)))))
			case s.HeadMass > 0:
				p.headK[l] = budgetFor(st.HeadMassCurve, s.HeadMass, 1, H)
			case s.HeadBudgets != nil:
				p.headK[l] = min(H, max(1, s.HeadBudgets[l]))
			}
		}
	}
	return nil
}

// Budgets returns the neurons selected per layer under top-k selection and
// the heads per layer chosen by the lookahead (for layers 1..L-1).
func (p *Predictors) Budgets() (mlp, heads []int) {
	return slices.Clone(p.mlpK), slices.Clone(p.headK)
}

// Bytes is the predictors' weight size.
func (p *Predictors) Bytes() int64 {
	var n int64
	for _, ps := range [][]lowRank{p.mlp, p.head} {
		for _, x := range ps {
			n += x.A.Bytes() + x.B.Bytes() + 4*int64(len(x.Bias))
		}
	}
	return n
}

func (p *Predictors) logits(lr *lowRank, x []float32) []float32 {
	standardize(p.xn, x, p.rms)
	h := p.h[:lr.A.Rows]
	z := p.z[:lr.B.Rows]
	p.exec.MatVec(h, lr.A, p.xn)
	p.exec.MatVec(z, lr.B, h)
	kernels.Add(z, lr.Bias)
	return z
}

// MLPFromLayerInput implements model.LayerInputMLP: true when the MLP
// predictors read the hidden state entering the layer.
func (p *Predictors) MLPFromLayerInput() bool { return p.Info.MLPInput == MLPInputLayer }

// checkMLPInput refuses an MLP predictor input other than MLPInputBlock,
// MLPInputLayer or "" (the block's, as files from before it existed).
func checkMLPInput(in string) error {
	switch in {
	case "", MLPInputBlock, MLPInputLayer:
		return nil
	}
	return fmt.Errorf("unknown MLP predictor input %q (want %q or %q)", in, MLPInputBlock, MLPInputLayer)
}

// MLPInputText says in words what MLP predictors of input in (an
// Info.MLPInput or TrainOptions.MLPInput; "" is MLPInputBlock) read.
func MLPInputText(in string) string {
	if in == MLPInputLayer {
		return "the layer's input"
	}
	return "the MLP block's input"
}

// mlpInput is Info.MLPInput with files from before it existed named.
func (p *Predictors) mlpInput() string {
	if p.Info.MLPInput == "" {
		return MLPInputBlock
	}
	return p.Info.MLPInput
}

// MLP implements model.Selector: the neurons of layer l predicted active.
func (p *Predictors) MLP(l int, x []float32, dst []int32) []int32 {
	z := p.logits(&p.mlp[l], x)
	if t := p.thr[l]; t == t { // not NaN: threshold
		for i, v := range z {
			if v > t {
				dst = append(dst, int32(i))
			}
		}
		return dst
	}
	return topK(z, p.mlpK[l], p.s, dst)
}

// Heads implements model.Selector: the heads of layer l+1 predicted
// important from layer l's attention input (every head, without running
// the predictor, when its budget is all of them).
func (p *Predictors) Heads(l int, x []float32, dst []int32) []int32 {
	if l >= len(p.head) || p.headK[l] >= p.Info.Heads {
		for h := 0; h < p.Info.Heads; h++ {
			dst = append(dst, int32(h))
		}
		return dst
	}
	z := p.logits(&p.head[l], x)
	return topK(z, p.headK[l], p.s, dst)
}
