package cuda

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"dejavu/kernels"
	"dejavu/model"
	"dejavu/sparsity"
)

// bf16Tol is the prompt contract of a bf16 model against f32 arithmetic
// on the same bf16 weights: the prompt rounds its activations to bf16 (8
// bits of mantissa) for cuBLAS. Decode keeps f32 activations:
// bf16DecodeTol.
const (
	bf16Tol       = 2e-2
	bf16DecodeTol = 1e-4
)

// TestBF16: a checkpoint with bf16 weights is stored as bf16 on the GPU
// (gemv/qkv_rope/accum_rows bf16 kernels, cuBLAS with bf16 inputs) and
// gives the logits of the CPU computing in f32 on the same (bf16-rounded)
// weights: prompt (all rows), token by token decode, and the sparse kernels
// at full density.
func TestBF16(t *testing.T) {
	d := gpu(t)
	pool := kernels.NewPool(2)
	defer pool.Close()
	for _, name := range []string{"opt-preln", "opt-postln", "opt-projinout", "llama-silu", "qwen2-bias", "mistral-headdim"} {
		m, err := model.Load(filepath.Join("..", "testdata", "models", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Quantize(kernels.BF16); err != nil {
			t.Fatal(err)
		}
		g, err := d.Upload(m)
		if err != nil {
			t.Fatal(err)
		}
		if !g.BF16() {
			t.Fatalf("%s: bf16 checkpoint not stored as bf16", name)
		}
		if err := m.Quantize(kernels.F32); err != nil { // the reference: f32 arithmetic on the bf16 weights
			t.Fatal(err)
		}
		V := m.Cfg.Vocab
		ids := make([]int, 24)
		for i := range ids {
			ids[i] = (i*37 + 5) % V
		}
		cs := m.NewSession(pool, 0)
		want, err := cs.Forward(ids, true)
		if err != nil {
			t.Fatal(err)
		}
		s, err := g.NewSession(0)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Forward(ids, true)
		if err != nil {
			t.Fatal(err)
		}
		ep := rowErr(got, want, V)
		s.Reset()
		dec := decodeRows(t, s, ids)
		ed := rowErr(dec, want, V)
		s.Reset()
		s.SetRandomSparse(1, 1, 1)
		es := rowErr(decodeRows(t, s, ids), dec, V)
		t.Logf("%-16s bf16 vs CPU f32 on the bf16 weights: rel.err prompt %.2e decode %.2e; sparse 100%% vs dense %.2e", name, ep, ed, es)
		if ep > bf16Tol || ed > bf16DecodeTol || es > 1e-5 {
			t.Errorf("%s: rel.err prompt %.3g (limit %g), decode %.3g (limit %g), sparse %.3g (limit 1e-5)", name, ep, bf16Tol, ed, bf16DecodeTol, es)
		}
		s.Close()
		g.Close()
		m.Close()
	}
}

// TestPredictorKey: clones of a predictor set (one per session) share a
// cache key; another set has another (no GPU needed).
func TestPredictorKey(t *testing.T) {
	m, err := model.Load(filepath.Join("..", "testdata", "models", "opt-preln"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	p, err := sparsity.RandomPredictors(m, 0.25, 0.5, 1)
	if err != nil {
		t.Fatal(err)
	}
	q, err := sparsity.RandomPredictors(m, 0.25, 0.5, 1)
	if err != nil {
		t.Fatal(err)
	}
	if keyOf(p) != keyOf(p.Clone()) {
		t.Error("a clone has another key")
	}
	if keyOf(p) == keyOf(q) {
		t.Error("two predictor sets share a key")
	}
}

// TestPredictorCache: predictors are uploaded once per model: sessions
// given the same set or its clones share the upload (and decode alike);
// another set is uploaded once more.
func TestPredictorCache(t *testing.T) {
	d := gpu(t)
	m, g := upload(t, d, filepath.Join("..", "testdata", "models", "opt-preln"))
	defer m.Close()
	defer g.Close()
	p, err := sparsity.RandomPredictors(m, 0.25, 0.5, 1)
	if err != nil {
		t.Fatal(err)
	}
	var rows [][]float32
	for i, q := range []*sparsity.Predictors{p, p.Clone(), p} {
		s, err := g.NewSession(0)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SetPredictors(q); err != nil {
			t.Fatal(err)
		}
		if g.predUp != 1 || len(g.preds) != 1 {
			t.Fatalf("session %d: %d uploads, %d cached sets; want 1, 1", i, g.predUp, len(g.preds))
		}
		var out []float32
		for _, id := range []int{3, 14, 15, 92, 65, 35} {
			r, err := s.Forward([]int{id}, false)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, r...)
		}
		rows = append(rows, out)
		s.Close() // the cached weights stay
	}
	for i := 1; i < len(rows); i++ {
		if e := rowErr(rows[i], rows[0], m.Cfg.Vocab); e > 1e-6 {
			t.Errorf("session %d: logits differ from session 0's by %.3g", i, e)
		}
	}
	q, err := sparsity.RandomPredictors(m, 0.25, 0.5, 2)
	if err != nil {
		t.Fatal(err)
	}
	s, err := g.NewSession(0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.SetPredictors(q); err != nil {
		t.Fatal(err)
	}
	if g.predUp != 2 || len(g.preds) != 2 {
		t.Errorf("another set: %d uploads, %d cached; want 2, 2", g.predUp, len(g.preds))
	}
}

// TestPredictedDecode measures, on the synthetic shapes named in
// DEJAVU_CUDA_SCALING, with f16 and bf16 weights in one process: dense,
// random sparse (10% MLP, 50% heads) and predicted sparse decode (r=256
// MLP predictors, r=64 head predictors, top-k 50% heads) with the MLP
// selection as top-k 10% or a threshold at about 10%, each before (v10:
// standardization in the A-GEMV's prologue, select_multi) and after
// (standardized inputs from the model's norm kernel, compare-and-compact
// in the B-GEMV for the threshold).
func TestPredictedDecode(t *testing.T) {
	d, shapes := synthShapes(t, "DEJAVU_CUDA_SCALING")
	defer func() {
		d.predStd, d.thrKernel, d.q8TPR, d.q8Warp, d.predMLP = true, false, [2]int{}, false, true
	}()
	bw, err := d.CopyBandwidth(0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("device %v: copy bandwidth %.0f GB/s\n", d, bw)
	for _, sh := range shapes {
		name, c := sh.name, sh.cfg
		for _, dt := range []kernels.DType{kernels.F16, kernels.BF16} {
			if dts := os.Getenv("DEJAVU_CUDA_PRED_DTYPES"); dts != "" && !slices.Contains(strings.Split(dts, ","), dt.String()) {
				continue
			}
			g, err := d.SyntheticDType(c, 1, dt)
			if err != nil {
				t.Fatal(err)
			}
			s, err := g.NewSession(512)
			if err != nil {
				t.Fatal(err)
			}
			floor := float64(g.WeightBytes()) / (bw * 1e9) * 1e3
			res := map[string]float64{}
			timeIt := func(key, what string, prompt int) {
				s.density = model.Density{}
				if err := s.dropGraphs(); err != nil {
					t.Fatal(err)
				}
				tm, err := TimeDecode(s, prompt, 64)
				if err != nil {
					t.Errorf("%s %v %s: %v", name, dt, what, err)
					return
				}
				dn := s.Density()
				fmt.Printf("%-9s %-4v prompt %3d  %-52s median %7.3f ms/token  p90 %7.3f  (density mlp %.4f heads %.4f)\n",
					name, dt, prompt, what, tm.MedianMs, tm.P90Ms, dn.MLP(), dn.Heads())
				res[fmt.Sprintf("%s %d", key, prompt)] = tm.MedianMs
			}
			for _, prompt := range []int{16, 128} {
				timeIt("dense", "dense", prompt)
			}
			s.SetRandomSparse(0.1, 0.5, 7)
			for _, prompt := range []int{16, 128} {
				timeIt("random", "random sparse 10%/50%", prompt)
			}
			thr := synthThreshold(c.Hidden, 256, 1.2816)
			variants := []struct {
				key, what      string
				thr            bool
				std, thrKernel bool
				q8             bool
				tpr            [2]int // gemv_q8's threads per row, first / second GEMV (0: default)
				qWarp          bool   // gemv_q8 quantizes x a warp a block
			}{
				{"topk-v10", "pred. top-k 10%, v10 (prologue, select_multi)", false, false, false, false, [2]int{}, false},
				{"topk-std", "pred. top-k 10%, standardized by the norm", false, true, false, false, [2]int{}, false},
				{"thr-kernel", "pred. threshold, prologue, select_multi pass", true, false, true, false, [2]int{}, false},
				{"thr-std-kernel", "pred. threshold, norm std, select_multi pass", true, true, true, false, [2]int{}, false},
				{"thr-compact", "pred. threshold, norm std, compact in B-GEMV", true, true, false, false, [2]int{}, false},
				{"thr-q8-prologue", "pred. threshold, q8_0 MLP predictors, prologue", true, false, false, true, [2]int{}, false},
				{"topk-q8", "pred. top-k 10%, q8_0 MLP predictors", false, true, false, true, [2]int{}, false},
				{"thr-q8-apart", "pred. threshold, q8_0, apart (v15)", true, true, false, true, [2]int{}, false},
				{"thr-q8", "pred. threshold, q8_0, pred_mlp (v16)", true, true, false, true, [2]int{}, false},
				{"thr-q8-warp", "pred. threshold, q8_0, x quantized a warp a block", true, true, false, true, [2]int{}, true},
				{"thr-q8-auto", "pred. threshold, q8_0, pred_mlp, automatic rank", true, true, false, true, [2]int{}, false},
				// The MLP predictors reading the layer's input (sparsity.MLPInputLayer):
				// predicted on the side stream beside the attention.
				{"thr-q8-layer", "pred. threshold, q8_0, from the layer input", true, true, false, true, [2]int{}, false},
				{"thr-q8-auto-layer", "pred. threshold, q8_0, automatic rank, from the layer input", true, true, false, true, [2]int{}, false},
			}
			var only []string // DEJAVU_CUDA_PRED_VARIANTS: these keys only (comma-separated)
			if v := os.Getenv("DEJAVU_CUDA_PRED_VARIANTS"); v != "" {
				only = strings.Split(v, ",")
			}
			// DEJAVU_CUDA_PRED_ROUNDS: the variants this many times over (prompt 16 only when more than one).
			rounds, _ := strconv.Atoi(os.Getenv("DEJAVU_CUDA_PRED_ROUNDS"))
			rounds = max(1, rounds)
			for round := range rounds {
				for _, v := range variants {
					if only != nil && !slices.Contains(only, v.key) {
						continue
					}
					d.predStd, d.thrKernel, d.q8TPR, d.q8Warp = v.std, v.thrKernel, v.tpr, v.qWarp
					d.predMLP = v.key != "thr-q8-apart"
					var err error
					if strings.HasPrefix(v.key, "thr-q8-auto") {
						err = s.setAutoRankPredictors(dt)
					} else if v.thr {
						err = s.setSyntheticPredictorsQ(256, 64, 0.1, 0.5, thr, v.q8)
					} else if v.q8 {
						err = s.setSyntheticPredictorsQ(256, 64, 0.1, 0.5, float32(math.NaN()), true)
					} else {
						err = s.setSyntheticPredictors(256, 64, 0.1, 0.5)
					}
					if err != nil {
						t.Fatal(err)
					}
					s.sparse.pred.layerIn = strings.HasSuffix(v.key, "-layer")
					prompts := []int{16, 128}
					if rounds > 1 {
						prompts = prompts[:1]
						fmt.Printf("round %d: ", round)
					}
					for _, prompt := range prompts {
						timeIt(v.key, v.what, prompt)
					}
					if !v.thr { // top-k: exactly k neurons
						kM := clampK(0.1, c.FFN)
						if gd := s.Density(); math.Abs(gd.MLP()-float64(kM)/float64(c.FFN)) > 1e-9 {
							t.Errorf("%s %s: MLP density %.6f, want %.6f", name, v.what, gd.MLP(), float64(kM)/float64(c.FFN))
						}
					}
					if dt == kernels.F16 && name == "opt-6.7b" && (v.key == "thr-q8-apart" || v.key == "thr-q8") {
						if prof, err := ProfileDecode(s); err == nil {
							fmt.Printf("%s %s, kernels timed one by one:\n%s", name, v.what, prof)
						}
					}
				}
			}
			d.predStd, d.thrKernel, d.q8TPR, d.q8Warp, d.predMLP = true, false, [2]int{}, false, true
			// DEJAVU_CUDA_PRED_DENSITIES ("0.1/0.5,0.22/1,…"): predicted
			// decode (q8_0, threshold) at other MLP / head densities.
			if dens := os.Getenv("DEJAVU_CUDA_PRED_DENSITIES"); dens != "" {
				for _, pair := range strings.Split(dens, ",") {
					var fm, fh float64
					if _, err := fmt.Sscanf(pair, "%g/%g", &fm, &fh); err != nil || fm <= 0 || fm >= 1 || fh <= 0 || fh > 1 {
						t.Fatalf("DEJAVU_CUDA_PRED_DENSITIES: %q is not mlp/heads with 0 < mlp < 1, 0 < heads ≤ 1", pair)
					}
					z := math.Sqrt2 * math.Erfinv(1-2*fm) // the upper-tail fraction fm of a normal
					if err := s.setSyntheticPredictorsQ(256, 64, fm, fh, synthThreshold(c.Hidden, 256, z), true); err != nil {
						t.Fatal(err)
					}
					for _, early := range []bool{false, true} { // the MLP predicted from its block's input / the layer's
						s.sparse.pred.layerIn = early
						key, what := "dens "+pair, ""
						if early {
							key, what = "dens-layer "+pair, ", from the layer input"
						}
						timeIt(key, fmt.Sprintf("pred. threshold q8_0 at %s (mlp/heads)%s", pair, what), 16)
						fmt.Printf("%-9s %-4v DENSITY %s%s: %.3f ms/token, %.2f× dense\n", name, dt, pair, what, res[key+" 16"], res["dense 16"]/res[key+" 16"])
					}
				}
			}
			for _, prompt := range []int{16, 128} {
				k := func(s string) float64 { return res[fmt.Sprintf("%s %d", s, prompt)] }
				fmt.Printf("%-9s %-4v prompt %3d SUMMARY dense %.3f (%.2f× floor %.3f); speed-up over dense: random %.2f×, top-k v10 %.2f× → std %.2f× → q8 %.2f×; threshold kernel %.2f× → std+kernel %.2f× → compact %.2f× → q8 %.2f× (q8 prologue %.2f×)\n",
					name, dt, prompt, k("dense"), k("dense")/floor, floor, k("dense")/k("random"), k("dense")/k("topk-v10"), k("dense")/k("topk-std"), k("dense")/k("topk-q8"),
					k("dense")/k("thr-kernel"), k("dense")/k("thr-std-kernel"), k("dense")/k("thr-compact"), k("dense")/k("thr-q8"), k("dense")/k("thr-q8-prologue"))
				fmt.Printf("%-9s %-4v prompt %3d TUNING q8_0 threshold ms/token: default %.3f, apart %.3f, x quantized a warp a block %.3f, standardized in the prologue %.3f\n",
					name, dt, prompt, k("thr-q8"), k("thr-q8-apart"), k("thr-q8-warp"), k("thr-q8-prologue"))
			}
			s.Close()
			g.Close()
		}
	}
}

// TestCLIPredictors (diagnostic): the predictors `dejavu bench
// --random-predictors` uploads (sparsity.RandomPredictorsForConfig:
// MLP rank from AutoRank, head predictors of rank Heads, q8_0 MLP
// matrices, calibrated thresholds, heads top-k) against the test's
// synthetic ones of the same MLP rank, on the shapes DEJAVU_CUDA_CLI_PRED
// names (f16): ms/token and the kernels timed one by one.
func TestCLIPredictors(t *testing.T) {
	d, shapes := synthShapes(t, "DEJAVU_CUDA_CLI_PRED")
	for _, sh := range shapes {
		name, c := sh.name, sh.cfg
		p, err := sparsity.RandomPredictorsForConfig(c, kernels.F16, name, 0.1, 0.5, 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.SetSelection(sparsity.Selection{HeadDensity: 0.5}); err != nil {
			t.Fatal(err)
		}
		if err := p.Quantize(kernels.Q8_0); err != nil {
			t.Fatal(err)
		}
		g, err := d.SyntheticDType(c, 1, kernels.F16)
		if err != nil {
			t.Fatal(err)
		}
		s, err := g.NewSession(512)
		if err != nil {
			t.Fatal(err)
		}
		rank := (p.Info.Stats[0].Rank + 31) &^ 31
		for _, v := range []string{"cli", "synthetic", "cli"} {
			if v == "cli" {
				err = s.SetPredictors(p)
			} else {
				err = s.setSyntheticPredictorsQ(rank, 64, 0.1, 0.5, synthThreshold(c.Hidden, rank, 1.2816), true)
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := s.dropGraphs(); err != nil {
				t.Fatal(err)
			}
			tm, err := TimeDecode(s, 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			dn := s.Density()
			fused := 0
			for li := range c.Layers {
				if s.canPredMLP(s.sparse.pred, li, g.layers[li].mlpW) {
					fused++
				}
			}
			fmt.Printf("%s %s predictors (MLP rank %d): median %.3f ms/token (density mlp %.4f heads %.4f), pred_mlp in %d of %d layers\n",
				name, v, rank, tm.MedianMs, dn.MLP(), dn.Heads(), fused, c.Layers)
			if prof, err := ProfileDecode(s); err == nil {
				fmt.Print(prof)
			}
		}
		s.Close()
		g.Close()
	}
}
