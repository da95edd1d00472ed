// Package bench measures decode and prompt speed of a model against the
// machine's measured memory bandwidth, the ceiling of batch-1 decoding.
package bench

import (
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"dejavu/generate"
	"dejavu/kernels"
	"dejavu/model"
)

// Options select what to measure.
type Options struct {
	PromptLen int // tokens in the timed prompt pass
	Gen       int // timed decode steps
	// MLPDensity and HeadDensity below 1 make decode sparse with randomly
	// chosen neurons and heads of that density (0 means 1: dense).
	MLPDensity, HeadDensity float64
	// Selector, if set, chooses the sparse rows instead (trained predictors).
	Selector model.Selector
	// Async runs the next layer's head prediction of sparse decode steps on
	// a goroutine of its own (model.Session.SetAsync) with Lookahead, or
	// with the decoding selector itself when Lookahead is nil.
	Async     bool
	Lookahead model.Selector
	// BandwidthBytes is the buffer size of the bandwidth measurement (0: 1 GiB).
	BandwidthBytes int64
	Progress       io.Writer // progress lines; nil for none
}

// Result is one benchmark run. Rates are medians over the decode steps.
type Result struct {
	Model   string `json:"model"`
	DType   string `json:"dtype"`
	Threads int    `json:"threads"`
	// Device is the GPU of a RunCUDA measurement (empty on the CPU, where
	// MachineGBps is the read bandwidth; on a GPU it is the copy bandwidth).
	Device         string  `json:"device,omitempty"`
	PromptLen      int     `json:"prompt_len"`
	Gen            int     `json:"gen"`
	PromptTokPerS  float64 `json:"prompt_tokens_per_s"`
	DecodeMsMedian float64 `json:"decode_ms_median"`
	DecodeMsP90    float64 `json:"decode_ms_p90"`
	DecodeTokPerS  float64 `json:"decode_tokens_per_s"`
	BytesPerToken  int64   `json:"weight_bytes_per_token"`
	// PredictorBytes are the selector's weights (read every decode step,
	// included in BytesPerToken).
	PredictorBytes int64   `json:"predictor_bytes,omitempty"`
	AchievedGBps   float64 `json:"achieved_gb_per_s"`
	MachineGBps    float64 `json:"machine_read_gb_per_s"`
	BandwidthFrac  float64 `json:"bandwidth_fraction"`
	MLPDensity     float64 `json:"mlp_density"`
	HeadDensity    float64 `json:"head_density"`
	// KVDensity is the fraction of key/value heads whose K and V weights
	// the decode steps read (heads skipped by a step are caught up later).
	KVDensity       float64 `json:"kv_density"`
	Async           bool    `json:"async_lookahead"`
	TotalWallS      float64 `json:"wall_s"`
	PeakContextUsed int     `json:"context_tokens"`
}

// Run measures m on pool: the machine's read bandwidth, one prompt pass of
// PromptLen random tokens, then Gen decode steps.
func Run(m *model.Model, pool *kernels.Pool, o Options) (*Result, error) {
	start := time.Now()
	if o.PromptLen < 1 || o.Gen < 1 {
		return nil, fmt.Errorf("bench: prompt length and generated tokens must be ≥ 1")
	}
	if o.PromptLen+o.Gen > m.Cfg.MaxPos {
		return nil, fmt.Errorf("bench: %d prompt + %d generated tokens exceed the model's %d positions", o.PromptLen, o.Gen, m.Cfg.MaxPos)
	}
	if o.BandwidthBytes == 0 {
		o.BandwidthBytes = 1 << 30
	}
	say := func(format string, a ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, format+"\n", a...)
		}
	}
	r := &Result{Model: m.Source, DType: m.Cfg.DType, Threads: pool.Threads(), PromptLen: o.PromptLen, Gen: o.Gen,
		BytesPerToken: m.WeightBytes(), MLPDensity: 1, HeadDensity: 1, KVDensity: 1}
	say("measuring read bandwidth (%d MiB, %d threads)…", o.BandwidthBytes>>20, pool.Threads())
	r.MachineGBps = kernels.ReadBandwidth(pool, o.BandwidthBytes, 5) / 1e9

	s := m.NewSession(pool, o.PromptLen+o.Gen)
	sel := o.Selector
	if sel == nil && (o.MLPDensity > 0 && o.MLPDensity < 1 || o.HeadDensity > 0 && o.HeadDensity < 1) {
		sel = NewRandomSelector(m.Cfg, orOne(o.MLPDensity), orOne(o.HeadDensity), 1)
	}
	if sel != nil {
		say("preparing neuron-major weights for sparse decoding…")
		m.PrepareSparse()
	}
	ids := promptIDs(o.PromptLen, m.Cfg.Vocab)
	logits, err := timePrompt(s, ids, r, say)
	if err != nil {
		return nil, err
	}
	s.SetSelector(sel) // the prompt pass above stays dense
	if sel != nil && o.Async {
		la := o.Lookahead
		if la == nil {
			la = sel
		}
		s.SetAsync(la)
		defer s.SetAsync(nil)
		r.Async = true
	}
	if err := timeDecode(s, logits, o.Gen, 0, r, say); err != nil {
		return nil, err
	}
	dens := s.Density()
	r.MLPDensity, r.HeadDensity, r.KVDensity = dens.MLP(), dens.Heads(), dens.KV()
	r.BytesPerToken = touchedBytes(m, r.MLPDensity, r.HeadDensity, r.KVDensity)
	if p, ok := o.Selector.(interface{ Bytes() int64 }); ok {
		r.PredictorBytes = p.Bytes()
		r.BytesPerToken += r.PredictorBytes
	}
	r.AchievedGBps = float64(r.BytesPerToken) / (r.DecodeMsMedian / 1000) / 1e9
	r.BandwidthFrac = r.AchievedGBps / r.MachineGBps
	r.PeakContextUsed = s.Pos()
	r.TotalWallS = time.Since(start).Seconds()
	return r, nil
}

func orOne(d float64) float64 {
	if d <= 0 || d > 1 {
		return 1
	}
	return d
}

// touchedBytes is the weight bytes one decode step reads at the given
// densities: Q and the output projection scale with the heads computed, K
// and V with the key/value heads read, the MLP matrices with the neurons;
// the LM head and projections are read whole.
func touchedBytes(m *model.Model, mlp, heads, kv float64) int64 {
	n := float64(m.Head.Bytes())
	for _, p := range []*model.Linear{m.ProjIn, m.ProjOut} {
		if p != nil {
			n += float64(p.W.Bytes())
		}
	}
	for i := range m.Layers {
		l := &m.Layers[i]
		n += kv*float64(l.K.W.Bytes()+l.V.W.Bytes()) +
			heads*float64(l.Q.W.Bytes()+l.O.W.Bytes()) +
			mlp*float64(l.Gate.W.Bytes()+l.Up.W.Bytes()+l.Down.W.Bytes())
	}
	return int64(n)
}

// WriteTable prints the result for a person.
func (r *Result) WriteTable(w io.Writer) {
	if r.Device != "" {
		fmt.Fprintf(w, "model            %s (%s, %s)\n", r.Model, r.DType, r.Device)
	} else {
		fmt.Fprintf(w, "model            %s (%s, %d threads)\n", r.Model, r.DType, r.Threads)
	}
	fmt.Fprintf(w, "prompt           %d tokens at %.1f tokens/s\n", r.PromptLen, r.PromptTokPerS)
	fmt.Fprintf(w, "decode           %.2f ms/token median, %.2f p90, %.2f tokens/s (%d tokens)\n", r.DecodeMsMedian, r.DecodeMsP90, r.DecodeTokPerS, r.Gen)
	fmt.Fprintf(w, "weights/token    %.1f MB\n", float64(r.BytesPerToken)/1e6)
	if r.PredictorBytes > 0 {
		fmt.Fprintf(w, "  predictors     %.1f MB of it\n", float64(r.PredictorBytes)/1e6)
	}
	kind := "read"
	if r.Device != "" {
		kind = "copy"
	}
	fmt.Fprintf(w, "bandwidth        %.1f GB/s achieved, %.1f GB/s measured %s = %.0f%%\n", r.AchievedGBps, r.MachineGBps, kind, 100*r.BandwidthFrac)
	fmt.Fprintf(w, "density          mlp %.2f, heads %.2f, k/v %.2f\n", r.MLPDensity, r.HeadDensity, r.KVDensity)
	if r.Async {
		fmt.Fprintf(w, "lookahead        asynchronous\n")
	}
}

// forwarder is a sequence on any device.
type forwarder interface {
	Forward(ids []int, all bool) ([]float32, error)
}

// promptIDs are n random token ids (the same ones in every run).
func promptIDs(n, vocab int) []int {
	rng := rand.New(rand.NewPCG(1, 2))
	ids := make([]int, n)
	for i := range ids {
		ids[i] = rng.IntN(vocab)
	}
	return ids
}

// timePrompt runs the prompt pass of ids on s, recording its speed in r,
// and returns the last position's logits.
func timePrompt(s forwarder, ids []int, r *Result, say func(string, ...any)) ([]float32, error) {
	say("prompt pass of %d tokens…", len(ids))
	t0 := time.Now()
	logits, err := s.Forward(ids, false)
	if err != nil {
		return nil, err
	}
	r.PromptTokPerS = float64(len(ids)) / time.Since(t0).Seconds()
	return logits, nil
}

// timeDecode feeds the greedy choice of logits back into s for warm
// untimed steps, then n timed ones (each until its logits are back), and
// records the median and p90 in r.
func timeDecode(s forwarder, logits []float32, n, warm int, r *Result, say func(string, ...any)) error {
	say("decoding %d tokens…", n)
	ms := make([]float64, 0, n)
	for i := 0; i < warm+n; i++ {
		id := generate.Argmax(logits)
		t := time.Now()
		var err error
		if logits, err = s.Forward([]int{id}, false); err != nil {
			return err
		}
		if i < warm {
			continue
		}
		ms = append(ms, float64(time.Since(t).Nanoseconds())/1e6)
		if len(ms)%16 == 0 {
			say("  %d/%d tokens, %.2f ms/token so far", len(ms), n, kernels.Median(ms))
		}
	}
	r.DecodeMsMedian = kernels.Median(ms)
	r.DecodeMsP90 = kernels.Percentile(ms, 90)
	r.DecodeTokPerS = 1000 / r.DecodeMsMedian
	return nil
}
