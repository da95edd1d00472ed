package analyze

import (
	"bytes"
	"encoding/json"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"dejavu/bench"
	"dejavu/eval"
	"dejavu/kernels"
	"dejavu/model"
	"dejavu/sparsity"
)

func TestHeadsCovering(t *testing.T) {
	for _, c := range []struct {
		norms []float32
		mass  float64
		want  int
	}{
		{[]float32{1, 1, 1, 1}, 0.9, 4},
		{[]float32{1, 1, 1, 1}, 0.5, 2},
		{[]float32{0, 10, 0, 0}, 0.9, 1},
		{[]float32{1, 8, 1, 0}, 0.9, 2},
		{[]float32{0, 0, 0}, 0.9, 3},
		{[]float32{3, 1}, 1, 2},
	} {
		if got := headsCovering(append([]float32{}, c.norms...), c.mass); got != c.want {
			t.Errorf("headsCovering(%v, %v) = %d, want %d", c.norms, c.mass, got, c.want)
		}
	}
	mean, p10, p90 := summary([]float64{5, 1, 2, 3, 4, 6, 7, 8, 9, 10})
	if mean != 5.5 || p10 != 1 || p90 != 9 {
		t.Errorf("summary: %v %v %v", mean, p10, p90)
	}
}

// TestRunWritesPlots collects activations of a tiny model, trains
// predictors, fakes a sweep and bench results, and checks that every plot
// is written and decodes.
func TestRunWritesPlots(t *testing.T) {
	m, err := model.Load(filepath.Join("..", "testdata", "models", "opt-preln"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	pool := kernels.NewPool(2)
	defer pool.Close()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	docs := make([][]int, 8)
	for i := range docs {
		for j := 0; j < 60; j++ {
			docs[i] = append(docs[i], 3+rng.IntN(m.Cfg.Vocab-3))
		}
	}
	data := filepath.Join(dir, "act")
	if _, err := sparsity.Collect(m, pool, docs, data, sparsity.CollectOptions{Window: 32, BOS: m.Cfg.BOS}); err != nil {
		t.Fatal(err)
	}
	ds, err := sparsity.OpenDataset(data)
	if err != nil {
		t.Fatal(err)
	}
	p, err := sparsity.Train(m, pool, ds, sparsity.TrainOptions{Rank: 8, Epochs: 1, Batch: 64})
	if err != nil {
		t.Fatal(err)
	}
	pred := filepath.Join(dir, "pred.safetensors")
	if err := p.Save(pred); err != nil {
		t.Fatal(err)
	}
	sw := eval.Sweep{Model: "tiny", Files: []string{"x.txt"}, Tokens: 100, Dense: eval.Result{Perplexity: 20}}
	for _, h := range []eval.SweepSetting{{}, {Density: 0.5}, {Mass: 0.9}} {
		for _, d := range []eval.SweepSetting{{Density: 0.1}, {Density: 0.3}, {Density: 1}, {Mass: 0.99}, {}} {
			x := max(d.Density, 0.2)
			sw.Points = append(sw.Points, eval.SweepPoint{RequestedMLPDensity: d.Density, RequestedMLPMass: d.Mass,
				RequestedHeadDensity: h.Density, RequestedHeadMass: h.Mass, MLPDensity: x,
				HeadDensity: 0.6, Perplexity: 20 / x, KLMean: 1 - x, Top1Agreement: x})
		}
	}
	swPath := filepath.Join(dir, "sweep.json")
	if err := eval.WriteJSON(swPath, sw); err != nil {
		t.Fatal(err)
	}
	var bb bytes.Buffer
	enc := json.NewEncoder(&bb)
	for _, d := range []float64{0.1, 0.5, 1} {
		enc.Encode(bench.Result{Model: "tiny", DType: "f32", Threads: 2, MLPDensity: d, HeadDensity: 1, DecodeMsMedian: 1 + d, DecodeMsP90: 1.2 + d})
	}
	benchPath := filepath.Join(dir, "bench.json")
	os.WriteFile(benchPath, bb.Bytes(), 0o644)

	out := filepath.Join(dir, "plots")
	if d := os.Getenv("DEJAVU_ANALYZE_OUT"); d != "" { // to look at the plots
		out = d
	}
	rep, err := Run(Options{Data: data, Predictors: pred, Sweep: swPath, Bench: []string{benchPath}, Out: out})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Sparsity) != m.Cfg.Layers {
		t.Fatalf("%d layers measured, want %d", len(rep.Sparsity), m.Cfg.Layers)
	}
	for _, l := range rep.Sparsity {
		if l.MLPDensity <= 0 || l.MLPDensity > 1 || l.MLPP10 > l.MLPDensity || l.MLPP90 < l.MLPDensity ||
			l.HeadDensity <= 0 || l.HeadDensity > 1 || l.MLPUnion < l.MLPDensity {
			t.Errorf("layer %d: implausible %+v", l.Layer, l)
		}
	}
	for _, base := range []string{"sparsity", "predictors", "sweep", "sweep-agreement", "latency"} {
		b, err := os.ReadFile(filepath.Join(out, base+".png"))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s.png: %v", base, err)
		}
		if r := img.Bounds(); r.Dx() < 400 || r.Dy() < 300 {
			t.Errorf("%s.png is %v", base, r)
		}
		s, err := os.ReadFile(filepath.Join(out, base+".svg"))
		if err != nil || !strings.Contains(string(s), "<svg") {
			t.Errorf("%s.svg: %v", base, err)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "sparsity.json")); err != nil {
		t.Error(err)
	}
	if _, err := Run(Options{Out: out}); err == nil {
		t.Error("Run with no inputs succeeded")
	}
	if _, err := ReadBench(swPath); err == nil {
		t.Error("ReadBench accepted a sweep file")
	}
}
