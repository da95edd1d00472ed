package bench

import (
	"fmt"
	"time"

	"dejavu/cuda"
	"dejavu/model"
	"dejavu/sparsity"
)

// RunCUDA measures g on its GPU as Run does on the CPU: the GPU's memory
// bandwidth (device-to-device copies, bytes read plus written) in the same
// run, one prompt pass of PromptLen random tokens, then Gen decode steps,
// each timed on the host until its logits are back. MLPDensity or
// HeadDensity below 1 make the decode steps sparse with random selections
// on the GPU; a Selector, which must be *sparsity.Predictors, makes them
// sparse with its selections instead (cuda.Session.SetPredictors: the
// predictors run on the GPU inside each step, their bytes counted). The
// weight bytes per token count the f16 (or bf16) rows actually read.
func RunCUDA(g *cuda.Model, source string, o Options) (*Result, error) {
	start := time.Now()
	c := g.Cfg
	if o.PromptLen < 1 || o.Gen < 1 {
		return nil, fmt.Errorf("bench: prompt length and generated tokens must be ≥ 1")
	}
	if o.PromptLen+o.Gen > c.MaxPos {
		return nil, fmt.Errorf("bench: %d prompt + %d generated tokens exceed the model's %d positions", o.PromptLen, o.Gen, c.MaxPos)
	}
	var pred *sparsity.Predictors
	if o.Selector != nil {
		p, ok := o.Selector.(*sparsity.Predictors)
		if !ok {
			return nil, fmt.Errorf("bench: on the GPU sparse decoding takes predictors (*sparsity.Predictors), not a %T", o.Selector)
		}
		if orOne(o.MLPDensity) < 1 || orOne(o.HeadDensity) < 1 {
			return nil, fmt.Errorf("bench: choose predictors or random selections (MLP and head densities), not both")
		}
		pred = p
	}
	if o.Async || o.Lookahead != nil {
		return nil, fmt.Errorf("bench: on the GPU the head lookahead always runs beside the layer (a second stream): Async is for the CPU")
	}
	if o.BandwidthBytes == 0 {
		o.BandwidthBytes = 1 << 30
	}
	say := func(format string, a ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, format+"\n", a...)
		}
	}
	dt := "f16"
	if g.BF16() {
		dt = "bf16"
	}
	r := &Result{Model: source, DType: dt, Device: g.Device().String(), PromptLen: o.PromptLen, Gen: o.Gen,
		MLPDensity: 1, HeadDensity: 1, KVDensity: 1}
	say("measuring %s copy bandwidth (%d MiB)…", r.Device, o.BandwidthBytes>>20)
	bw, err := g.Device().CopyBandwidth(o.BandwidthBytes)
	if err != nil {
		return nil, err
	}
	r.MachineGBps = bw
	s, err := g.NewSession(o.PromptLen + o.Gen + 3)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	ids := promptIDs(o.PromptLen, c.Vocab)
	// A warm-up pass of the same prompt (module load, cuBLAS handles and the
	// kernels it picks for these shapes, first-touch), then the timed one.
	if _, err := s.Forward(ids, false); err != nil {
		return nil, err
	}
	s.Reset()
	logits, err := timePrompt(s, ids, r, say)
	if err != nil {
		return nil, err
	}
	if pred != nil {
		say("uploading the predictors (%.1f MB)…", float64(pred.Bytes())/1e6)
		if err := s.SetPredictors(pred); err != nil {
			return nil, err
		}
		r.PredictorBytes = pred.Bytes()
	} else if mlp, heads := orOne(o.MLPDensity), orOne(o.HeadDensity); mlp < 1 || heads < 1 {
		s.SetRandomSparse(mlp, heads, 1)
	}
	// The first 3 steps capture the CUDA graphs: untimed.
	if err := timeDecode(s, logits, o.Gen, 3, r, say); err != nil {
		return nil, err
	}
	d := s.Density()
	r.MLPDensity, r.HeadDensity, r.KVDensity = d.MLP(), d.Heads(), d.KV()
	r.BytesPerToken = int64(2*touchedWeights(c, r.MLPDensity, r.HeadDensity, r.KVDensity)) + r.PredictorBytes
	r.AchievedGBps = float64(r.BytesPerToken) / (r.DecodeMsMedian / 1000) / 1e9
	r.BandwidthFrac = r.AchievedGBps / r.MachineGBps
	r.PeakContextUsed = s.Pos()
	r.TotalWallS = time.Since(start).Seconds()
	return r, nil
}

// touchedWeights is the number of weights one decode step reads at the
// given densities (as touchedBytes, from the configuration alone): Q and
// the output projection at the head density, K and V at the key/value head
// density (sparse steps defer the heads they skip; docs/gpu.md, "Deferred
// K/V"), the MLP at the neuron density.
func touchedWeights(c model.Config, mlp, heads, kv float64) float64 {
	d, qd, kvd := float64(c.Hidden), float64(c.Heads*c.HeadDim), float64(c.KVHeads*c.HeadDim)
	n := float64(c.Vocab) * float64(c.ProjDim)
	if c.ProjDim != c.Hidden {
		n += d * float64(c.ProjDim)
	}
	mats := 2.0
	if c.Family == model.Llama {
		mats = 3
	}
	per := kv*2*kvd*d + heads*2*qd*d + mlp*mats*float64(c.FFN)*d
	return n + float64(c.Layers)*per
}
