package main

import (
	"bytes"
	"encoding/json"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"dejavu/cuda"
	"dejavu/eval"
	"dejavu/kernels"
	"dejavu/model"
	"dejavu/sparsity"
)

// tinyModelDir makes a model directory of the tiny opt-preln fixture (256
// ids) with a byte-level tokenizer.json of 256 tokens, one per byte.
func tinyModelDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join("..", "..", "testdata", "models", "opt-preln")
	for _, f := range []string{"config.json", "model.safetensors"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	// GPT-2's bytes_to_unicode.
	vocab := map[string]int{}
	n := 0
	for b := 0; b < 256; b++ {
		r := rune(b)
		if !(b >= '!' && b <= '~' || b >= 0xA1 && b <= 0xAC || b >= 0xAE && b <= 0xFF) {
			r = rune(256 + n)
			n++
		}
		vocab[string(r)] = b
	}
	doc := map[string]any{
		"pre_tokenizer": map[string]any{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
		"decoder":       map[string]any{"type": "ByteLevel"},
		"model":         map[string]any{"type": "BPE", "vocab": vocab, "merges": []any{}},
	}
	b, _ := json.Marshal(doc)
	os.WriteFile(filepath.Join(dir, "tokenizer.json"), b, 0o644)
	return dir
}

// tinyPredictorsFile trains predictors for the model in dir.
func tinyPredictorsFile(t *testing.T, dir string) (pred, data string) {
	t.Helper()
	m, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	pool := kernels.NewPool(2)
	defer pool.Close()
	rng := rand.New(rand.NewPCG(1, 1))
	docs := make([][]int, 10)
	for i := range docs {
		for j := 0; j < 90; j++ {
			docs[i] = append(docs[i], 3+rng.IntN(m.Cfg.Vocab-3))
		}
	}
	data = filepath.Join(t.TempDir(), "act")
	if _, err := sparsity.Collect(m, pool, docs, data, sparsity.CollectOptions{Window: 32, BOS: m.Cfg.BOS}); err != nil {
		t.Fatal(err)
	}
	ds, err := sparsity.OpenDataset(data)
	if err != nil {
		t.Fatal(err)
	}
	p, err := sparsity.Train(m, pool, ds, sparsity.TrainOptions{Rank: 8, Epochs: 2, Batch: 64})
	if err != nil {
		t.Fatal(err)
	}
	pred = filepath.Join(t.TempDir(), "pred.safetensors")
	if err := p.Save(pred); err != nil {
		t.Fatal(err)
	}
	return pred, data
}

func decodeJSON(t *testing.T, what, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("%s: %v in %q", what, err, s)
	}
}

// TestEvalSparseCommands runs eval ppl, compare, sweep and analyze on a
// tiny model with predictors trained here.
func TestEvalSparseCommands(t *testing.T) {
	dir := tinyModelDir(t)
	pred, data := tinyPredictorsFile(t, dir)
	tmp := t.TempDir()
	text := filepath.Join(tmp, "text.txt")
	os.WriteFile(text, []byte(strings.Repeat("The quick brown fox jumps over the lazy dog. ", 8)), 0o644)
	common := []string{"--model", dir, "--threads", "2", "--progress=false", "--ctx", "32"}

	type pplOut struct {
		Perplexity  float64 `json:"perplexity"`
		Tokens      int     `json:"tokens"`
		Mode        string  `json:"mode"`
		MLPDensity  float64 `json:"mlp_density"`
		HeadDensity float64 `json:"head_density"`
		DecodeMode  bool    `json:"decode_mode"`
		Batches     bool    `json:"sparse_batches"`
	}
	out, err := run(t, append([]string{"eval", "ppl", "--json", "--max-tokens", "100", text}, common...)...)
	if err != nil {
		t.Fatal(err)
	}
	var dense pplOut
	decodeJSON(t, "dense ppl", out, &dense)
	if dense.Mode != "dense" || dense.MLPDensity != 1 || dense.HeadDensity != 1 || dense.Tokens != 3*31 || dense.DecodeMode {
		t.Errorf("dense ppl: %+v", dense)
	}
	out, err = run(t, append([]string{"eval", "ppl", "--json", "--max-tokens", "100", "--predictors", pred,
		"--mlp-density", "0.25", "--head-density", "0.5", text}, common...)...)
	if err != nil {
		t.Fatal(err)
	}
	var sparse pplOut
	decodeJSON(t, "sparse ppl", out, &sparse)
	if sparse.Mode != "sparse" || sparse.MLPDensity >= 1 || sparse.HeadDensity >= 1 || sparse.DecodeMode || !sparse.Batches ||
		sparse.Tokens != dense.Tokens || sparse.Perplexity == dense.Perplexity {
		t.Errorf("sparse ppl: %+v (dense %+v)", sparse, dense)
	}
	// --decode runs the sparse kernels token by token: the same result up to rounding.
	out, err = run(t, append([]string{"eval", "ppl", "--json", "--max-tokens", "100", "--predictors", pred, "--decode",
		"--mlp-density", "0.25", "--head-density", "0.5", text}, common...)...)
	if err != nil {
		t.Fatal(err)
	}
	var dec pplOut
	decodeJSON(t, "sparse ppl --decode", out, &dec)
	if !dec.DecodeMode || dec.Batches || math.Abs(dec.Perplexity-sparse.Perplexity) > 1e-4*sparse.Perplexity ||
		dec.MLPDensity != sparse.MLPDensity || dec.HeadDensity != sparse.HeadDensity {
		t.Errorf("sparse ppl --decode: %+v, masked batches: %+v", dec, sparse)
	}
	// Without --sparse the selection flags are refused.
	if _, err := run(t, append([]string{"eval", "ppl", "--mlp-density", "0.5", text}, common...)...); err == nil {
		t.Error("--mlp-density without --sparse was accepted")
	}

	// --dense-and-sparse: one table, the JSON file and Markdown rows.
	md := filepath.Join(tmp, "results.md")
	js := filepath.Join(tmp, "both.json")
	for i := 0; i < 2; i++ {
		out, err = run(t, append([]string{"eval", "ppl", "--dense-and-sparse", "--predictors", pred, "--max-tokens", "100",
			"--md", md, "--out", js, text}, common...)...)
		if err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(out, "| dense |") || !strings.Contains(out, "| sparse |") || !strings.Contains(out, "perplexity") {
		t.Errorf("--dense-and-sparse table:\n%s", out)
	}
	mdb, _ := os.ReadFile(md)
	if lines := strings.Split(strings.TrimSpace(string(mdb)), "\n"); len(lines) != 6 || !strings.HasPrefix(lines[1], "|---") || strings.HasPrefix(lines[4], "|---") {
		t.Errorf("--md file after two runs:\n%s", mdb)
	}
	var both struct{ Dense, Sparse pplOut }
	jb, _ := os.ReadFile(js)
	decodeJSON(t, "--out", string(jb), &both)
	if both.Dense.Mode != "dense" || both.Sparse.Mode != "sparse" || both.Sparse.MLPDensity >= 1 {
		t.Errorf("--out: %+v", both)
	}

	// compare: sparse vs dense on the same tokens.
	out, err = run(t, append([]string{"eval", "compare", "--json", "--text", text, "--predictors", pred,
		"--mlp-density", "0.25", "--max-tokens", "100"}, common...)...)
	if err != nil {
		t.Fatal(err)
	}
	var cmp struct {
		Dense, Sparse           eval.Result
		KLMean                  float64 `json:"kl_mean"`
		KLP99                   float64 `json:"kl_p99"`
		Top1                    float64 `json:"top1_agreement"`
		MLPDensity, HeadDensity float64
		Tokens                  int
	}
	decodeJSON(t, "compare", out, &cmp)
	if cmp.KLMean <= 0 || cmp.KLP99 < cmp.KLMean || cmp.Top1 > 1 || cmp.MLPDensity >= 1 || cmp.Tokens != dense.Tokens ||
		relDiffCmd(cmp.Dense.Perplexity, dense.Perplexity) > 1e-4 {
		t.Errorf("compare: %+v (dense ppl %v)", cmp, dense.Perplexity)
	}

	// sweep, then analyze.
	sw := filepath.Join(tmp, "sweep.json")
	out, err = run(t, append([]string{"eval", "sweep", "--predictors", pred, "--mlp-density", "0.1,0.5,1", "--head-density", "0,1",
		"--max-tokens", "64", "--out", sw, text}, common...)...)
	if err != nil {
		t.Fatal(err)
	}
	s, err := eval.ReadSweep(sw)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Points) != 6 || s.Tokens != 62 || s.Dense.Perplexity <= 0 {
		t.Fatalf("sweep: %+v", s)
	}
	for _, p := range s.Points {
		if p.RequestedMLPDensity == 1 && p.RequestedHeadDensity == 1 && (p.MLPDensity != 1 || p.HeadDensity != 1 || p.KLMax > 1e-6 || p.Top1Agreement != 1) {
			t.Errorf("sweep point at density 1 is not dense: %+v", p)
		}
		if p.RequestedMLPDensity == 0.1 && p.MLPDensity >= 0.5 {
			t.Errorf("sweep point %+v", p)
		}
	}
	if !strings.Contains(out, "KL mean") {
		t.Errorf("sweep table:\n%s", out)
	}
	// Mass budgets and calibrated budgets: --mlp-mass alone replaces the
	// default densities.
	out, err = run(t, append([]string{"eval", "sweep", "--json", "--predictors", pred, "--mlp-mass", "0.9,cal", "--head-mass", "0.9",
		"--max-tokens", "64", text}, common...)...)
	if err != nil {
		t.Fatal(err)
	}
	var ms eval.Sweep
	decodeJSON(t, "mass sweep", out, &ms)
	if len(ms.Points) != 2 || ms.Points[0].MLPSetting != "mass 0.9" || ms.Points[1].MLPSetting != "cal" ||
		ms.Points[0].HeadSetting != "mass 0.9" || len(ms.Points[0].MLPBudgets) == 0 {
		t.Errorf("mass sweep: %+v", ms.Points)
	}
	if _, err := run(t, append([]string{"eval", "sweep", "--predictors", pred, "--mlp-mass", "0", text}, common...)...); err == nil {
		t.Error("--mlp-mass 0 was accepted")
	}
	plots := filepath.Join(tmp, "plots")
	out, err = run(t, "analyze", "--data", data, "--predictors", pred, "--sweep", sw, "--out", plots)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"sparsity.png", "predictors.png", "sweep.png", "sweep-agreement.png"} {
		b, err := os.ReadFile(filepath.Join(plots, f))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := png.Decode(bytes.NewReader(b)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// TestEvalTasksSparse scores a few COPA items densely and sparsely.
func TestEvalTasksSparse(t *testing.T) {
	needShared(t)
	dir := tinyModelDir(t)
	pred, _ := tinyPredictorsFile(t, dir)
	out, err := run(t, "eval", "tasks", "--model", dir, "--threads", "2", "--progress=false", "--task", "copa", "--limit", "4",
		"--dir", filepath.Join(shared, "tasks"), "--dense-and-sparse", "--predictors", pred, "--mlp-density", "0.25", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var both struct {
		Dense, Sparse struct {
			MLPDensity float64 `json:"mlp_density"`
			Tasks      map[string]eval.TaskResult
		}
	}
	decodeJSON(t, "tasks", out, &both)
	if both.Dense.MLPDensity != 1 || both.Sparse.MLPDensity >= 1 || both.Dense.Tasks["copa"].N != 4 || both.Sparse.Tasks["copa"].N != 4 {
		t.Errorf("tasks: %+v", both)
	}
}

func relDiffCmd(a, b float64) float64 {
	d := a - b
	if d < 0 {
		d = -d
	}
	return d / b
}

// TestEvalCUDASparse: on a GPU (skipped without one), sparse perplexity
// in decode mode with trained predictors running there equals the CPU's
// decode mode up to the GPU's f16 weights; without --decode it is refused
// (masked batches run on the CPU only).
func TestEvalCUDASparse(t *testing.T) {
	if err := cuda.Available(); err != nil {
		t.Skip(err.Error())
	}
	dir := tinyModelDir(t)
	pred, _ := tinyPredictorsFile(t, dir)
	text := filepath.Join(t.TempDir(), "text.txt")
	os.WriteFile(text, []byte(strings.Repeat("The quick brown fox jumps over the lazy dog. ", 8)), 0o644)
	args := []string{"eval", "ppl", "--json", "--max-tokens", "100", "--predictors", pred, "--predictor-dtype", "f16",
		"--model", dir, "--threads", "2", "--progress=false", "--ctx", "32", text}
	type pplOut struct {
		Perplexity float64 `json:"perplexity"`
		Mode       string  `json:"mode"`
		MLPDensity float64 `json:"mlp_density"`
		DecodeMode bool    `json:"decode_mode"`
	}
	var got [2]pplOut
	for i, dev := range []string{"cpu", "cuda"} {
		out, err := run(t, append(args, "--decode", "--device", dev)...)
		if err != nil {
			t.Fatalf("--device %s: %v", dev, err)
		}
		decodeJSON(t, "sparse ppl --decode --device "+dev, out, &got[i])
	}
	t.Logf("sparse decode-mode perplexity: CPU %+v, GPU %+v", got[0], got[1])
	if got[1].Mode != "sparse" || !got[1].DecodeMode || math.Abs(got[1].Perplexity-got[0].Perplexity) > 0.01*got[0].Perplexity ||
		math.Abs(got[1].MLPDensity-got[0].MLPDensity) > 0.02 {
		t.Errorf("GPU %+v, CPU %+v", got[1], got[0])
	}
	if _, err := run(t, append(args, "--device", "cuda")...); err == nil || !strings.Contains(err.Error(), "--decode") {
		t.Errorf("sparse eval on the GPU without --decode: %v", err)
	}
}
