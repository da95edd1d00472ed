package sparsity

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"dejavu/kernels"
	"dejavu/model"
	"dejavu/tokenizer"
)

const sharedData = "../../shared/data"

// TestTestbedAgreement trains predictors on a small sample of the test-bed's
// training text and checks, on held-out WikiText-2 passages, that sparse
// decoding at the calibrated thresholds agrees with dense on ≥ 90% of the
// teacher-forced top-1 tokens while really computing fewer neurons.
func TestTestbedAgreement(t *testing.T) {
	dir := filepath.Join(sharedData, "models", "testbed-opt-relu")
	if _, err := os.Stat(dir); err != nil {
		t.Skip("../shared/data is not present")
	}
	if testing.Short() {
		t.Skip("slow: -short")
	}
	m, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tok, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	pool := kernels.NewPool(0)
	defer pool.Close()

	// Training text: the first 400 tokens of ten corpus files.
	files, _ := filepath.Glob(filepath.Join(sharedData, "text", "corpus-sample", "*.txt"))
	if len(files) < 10 {
		t.Skip("corpus-sample is not present")
	}
	var docs [][]int
	for _, f := range files[:10] {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		ids, err := tok.Encode(string(b[:min(len(b), 4000)]))
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, ids[:min(len(ids), 400)])
	}
	tmp := t.TempDir()
	if _, err := Collect(m, pool, docs, filepath.Join(tmp, "act"), CollectOptions{Window: 256, BOS: tok.BOS()}); err != nil {
		t.Fatal(err)
	}
	ds, err := OpenDataset(filepath.Join(tmp, "act"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Train(m, pool, ds, TrainOptions{Rank: 32, Epochs: 3})
	if err != nil {
		t.Fatal(err)
	}
	p.SetPool(pool)
	m.PrepareSparse()

	// Held-out text: WikiText-2 test passages.
	raw, err := os.ReadFile(filepath.Join(sharedData, "text", "wikitext-2-raw", "wiki.test.raw"))
	if err != nil {
		t.Fatal(err)
	}
	var prompts [][]int
	for _, line := range strings.Split(string(raw), "\n") {
		if len(line) < 300 || strings.HasPrefix(strings.TrimSpace(line), "=") {
			continue
		}
		ids, err := tok.Encode(line)
		if err != nil {
			t.Fatal(err)
		}
		if prompts = append(prompts, ids[:24]); len(prompts) == 4 {
			break
		}
	}
	measure := func(what string) (rate, mlp, heads float64) {
		var agree, steps int
		for _, ids := range prompts {
			a, err := TopOneAgreement(m, pool, p, ids, 32)
			if err != nil {
				t.Fatal(err)
			}
			agree += a.Matches
			steps += a.Steps
			mlp += a.Density.MLP() / float64(len(prompts))
			heads += a.Density.Heads() / float64(len(prompts))
		}
		rate = float64(agree) / float64(steps)
		t.Logf("%s: top-1 agreement %.3f (%d/%d), MLP density %.3f, head density %.3f", what, rate, agree, steps, mlp, heads)
		return rate, mlp, heads
	}
	p.SetSelection(Selection{HeadDensity: 1})
	measure("MLP sparsity only")
	p.SetSelection(Selection{})
	rate, mlp, _ := measure("calibrated thresholds (the default)")
	n := 1
	if rate < 0.9 {
		t.Errorf("top-1 agreement with dense %.3f < 0.90", rate)
	}
	if mlp/float64(n) >= 0.9 {
		t.Errorf("MLP density %.3f: the predictors hardly sparsify", mlp/float64(n))
	}
}
