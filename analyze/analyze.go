// Package analyze measures and plots DejaVu's contextual sparsity: the true
// per-layer sparsity of a model's recorded activations, how well trained
// predictors recall it, the density-vs-quality curve of an evaluation
// sweep, and decode latency against density from benchmarks. Plots are
// drawn with gonum/plot and written as PNG and SVG.
package analyze

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gonum.org/v1/plot"

	"dejavu/bench"
	"dejavu/checkpoint"
	"dejavu/eval"
	"dejavu/sparsity"
)

// LayerSparsity is the true contextual sparsity of one layer, over the
// recorded tokens.
type LayerSparsity struct {
	Layer int `json:"layer"`
	// MLPDensity is the mean fraction of MLP neurons active (> 0) per
	// token; MLPP10 and MLPP90 are its 10th and 90th percentiles over
	// tokens, and MLPUnion the fraction of neurons active on any token.
	MLPDensity float64 `json:"mlp_density"`
	MLPP10     float64 `json:"mlp_p10"`
	MLPP90     float64 `json:"mlp_p90"`
	MLPUnion   float64 `json:"mlp_union"`
	// HeadDensity is the mean fraction of heads needed, per token, to cover
	// the HeadMass fraction of the sum of the heads' output norms (largest
	// norms first); HeadP10 and HeadP90 are its percentiles.
	HeadDensity float64 `json:"head_density"`
	HeadP10     float64 `json:"head_p10"`
	HeadP90     float64 `json:"head_p90"`
}

// TrueSparsity measures every layer of the dataset: MLP sparsity from the
// activation bits, head sparsity as the fraction of heads covering
// headMass (in (0, 1], e.g. 0.9) of the head-norm mass. maxTokens > 0
// reads only the first tokens.
func TrueSparsity(ds *sparsity.Dataset, headMass float64, maxTokens int) ([]LayerSparsity, error) {
	if headMass <= 0 || headMass > 1 {
		return nil, fmt.Errorf("analyze: head mass %v outside (0, 1]", headMass)
	}
	T := ds.Tokens
	if maxTokens > 0 {
		T = min(T, maxTokens)
	}
	if T == 0 {
		return nil, errors.New("analyze: the dataset holds no tokens")
	}
	F, H := ds.FFN, ds.Heads
	stride := (F + 7) / 8
	out := make([]LayerSparsity, ds.Layers)
	mlp := make([]float64, T)
	heads := make([]float64, T)
	norms := make([]float32, H)
	union := make([]byte, stride)
	for l := range out {
		ld, err := ds.Layer(l, false, false, true, true)
		if err != nil {
			return nil, err
		}
		clear(union)
		for t := 0; t < T; t++ {
			n := 0
			row := ld.Act[t*stride : (t+1)*stride]
			for i, b := range row {
				n += bits.OnesCount8(b)
				union[i] |= b
			}
			mlp[t] = float64(n) / float64(F)
			copy(norms, ld.HeadNorm[t*H:(t+1)*H])
			heads[t] = float64(headsCovering(norms, headMass)) / float64(H)
		}
		u := 0
		for _, b := range union {
			u += bits.OnesCount8(b)
		}
		ls := LayerSparsity{Layer: l, MLPUnion: float64(u) / float64(F)}
		ls.MLPDensity, ls.MLPP10, ls.MLPP90 = summary(mlp)
		ls.HeadDensity, ls.HeadP10, ls.HeadP90 = summary(heads)
		out[l] = ls
	}
	return out, nil
}

// headsCovering is the fewest heads whose norms (largest first) sum to at
// least mass of the total; it sorts norms. All heads when the total is 0.
func headsCovering(norms []float32, mass float64) int {
	slices.SortFunc(norms, func(a, b float32) int {
		switch {
		case a > b:
			return -1
		case a < b:
			return 1
		}
		return 0
	})
	var total float64
	for _, v := range norms {
		total += float64(max(v, 0))
	}
	if total == 0 {
		return len(norms)
	}
	var acc float64
	for i, v := range norms {
		acc += float64(max(v, 0))
		if acc >= mass*total*(1-1e-12) {
			return i + 1
		}
	}
	return len(norms)
}

// summary is the mean and the 10th and 90th percentiles (nearest rank) of
// x, which it sorts.
func summary(x []float64) (mean, p10, p90 float64) {
	var s float64
	for _, v := range x {
		s += v
	}
	slices.Sort(x)
	n := len(x)
	rank := func(q float64) float64 { return x[min(n-1, max(0, int(q*float64(n)+0.5)-1))] }
	return s / float64(n), rank(0.1), rank(0.9)
}

// ReadPredictorsInfo reads the training description (per-layer recall and
// budgets) from a predictors file's metadata, without the model.
func ReadPredictorsInfo(path string) (*sparsity.Info, error) {
	st, err := checkpoint.OpenSafetensors(path)
	if err != nil {
		return nil, fmt.Errorf("analyze: predictors %s: %w", path, err)
	}
	defer st.Close()
	meta := st.Metadata()
	if meta["format"] != sparsity.PredictorsFormat {
		return nil, fmt.Errorf("analyze: %s is not a predictors file (format %q, want %q)", path, meta["format"], sparsity.PredictorsFormat)
	}
	var info sparsity.Info
	if err := json.Unmarshal([]byte(meta["info"]), &info); err != nil {
		return nil, fmt.Errorf("analyze: %s: bad info metadata: %w", path, err)
	}
	if len(info.Stats) == 0 {
		return nil, fmt.Errorf("analyze: %s: no per-layer statistics", path)
	}
	return &info, nil
}

// ReadBench reads the results of `dejavu bench --json` from path: one or
// more JSON objects (one per line or concatenated) or a JSON array of them.
func ReadBench(path string) ([]bench.Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dec := json.NewDecoder(f)
	var out []bench.Result
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("analyze: %s: %w", path, err)
		}
		if len(raw) > 0 && raw[0] == '[' {
			var rs []bench.Result
			if err := json.Unmarshal(raw, &rs); err != nil {
				return nil, fmt.Errorf("analyze: %s: %w", path, err)
			}
			out = append(out, rs...)
			continue
		}
		var r bench.Result
		if err := json.Unmarshal(raw, &r); err != nil {
			return nil, fmt.Errorf("analyze: %s: %w", path, err)
		}
		out = append(out, r)
	}
	for _, r := range out {
		if r.DecodeMsMedian <= 0 {
			return nil, fmt.Errorf("analyze: %s: a result without decode_ms_median: not `dejavu bench --json` output", path)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("analyze: %s holds no benchmark results", path)
	}
	return out, nil
}

// Options select what Run plots; each input that is set gives its plots.
type Options struct {
	// Data is a `dejavu collect` directory: true sparsity per layer.
	Data string
	// HeadMass is the head-norm mass the counted heads must cover (0: 0.9).
	HeadMass float64
	// MaxTokens > 0 reads only the first tokens of Data.
	MaxTokens int
	// Predictors is a `dejavu train` file: recall and density per layer.
	Predictors string
	// Sweep is a `dejavu eval sweep` result: density vs perplexity.
	Sweep string
	// Bench are `dejavu bench --json` outputs: latency vs density.
	Bench []string
	// Out is the directory the plots go to (created if missing).
	Out string
}

// Report is what Run measured and wrote.
type Report struct {
	Sparsity []LayerSparsity `json:"sparsity,omitempty"`
	Tokens   int             `json:"tokens,omitempty"`
	HeadMass float64         `json:"head_mass,omitempty"`
	Files    []string        `json:"files"`
}

// Run draws the plots of every input set in o into o.Out: sparsity.{png,svg}
// (Data), predictors.{png,svg} (Predictors), sweep.{png,svg} and
// sweep-agreement.{png,svg} (Sweep), latency.{png,svg} (Bench), plus
// sparsity.json with the measured per-layer numbers.
func Run(o Options) (*Report, error) {
	if o.Out == "" {
		return nil, errors.New("analyze: no output directory")
	}
	if o.Data == "" && o.Predictors == "" && o.Sweep == "" && len(o.Bench) == 0 {
		return nil, errors.New("analyze: nothing to plot: give a dataset, predictors, a sweep or bench results")
	}
	if o.HeadMass == 0 {
		o.HeadMass = 0.9
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, err
	}
	rep := &Report{}
	save := func(pl *plot.Plot, base string) error {
		files, err := Save(pl, o.Out, base)
		rep.Files = append(rep.Files, files...)
		return err
	}
	if o.Data != "" {
		ds, err := sparsity.OpenDataset(o.Data)
		if err != nil {
			return nil, err
		}
		ls, err := TrueSparsity(ds, o.HeadMass, o.MaxTokens)
		if err != nil {
			return nil, err
		}
		rep.Sparsity, rep.HeadMass = ls, o.HeadMass
		rep.Tokens = ds.Tokens
		if o.MaxTokens > 0 {
			rep.Tokens = min(rep.Tokens, o.MaxTokens)
		}
		if err := save(PlotTrueSparsity(ls, o.HeadMass, rep.Tokens, filepath.Base(ds.Model)), "sparsity"); err != nil {
			return nil, err
		}
		path := filepath.Join(o.Out, "sparsity.json")
		if err := eval.WriteJSON(path, rep.Sparsity); err != nil {
			return nil, err
		}
		rep.Files = append(rep.Files, path)
	}
	if o.Predictors != "" {
		info, err := ReadPredictorsInfo(o.Predictors)
		if err != nil {
			return nil, err
		}
		if err := save(PlotPredictors(info), "predictors"); err != nil {
			return nil, err
		}
	}
	if o.Sweep != "" {
		sw, err := eval.ReadSweep(o.Sweep)
		if err != nil {
			return nil, err
		}
		if err := save(PlotSweep(sw), "sweep"); err != nil {
			return nil, err
		}
		if err := save(PlotSweepAgreement(sw), "sweep-agreement"); err != nil {
			return nil, err
		}
	}
	if len(o.Bench) > 0 {
		var sets []LatencySet
		for _, f := range o.Bench {
			r, err := ReadBench(f)
			if err != nil {
				return nil, err
			}
			sets = append(sets, LatencySet{Name: strings.TrimSuffix(filepath.Base(f), filepath.Ext(f)), Results: r})
		}
		if err := save(PlotLatency(sets), "latency"); err != nil {
			return nil, err
		}
	}
	return rep, nil
}
