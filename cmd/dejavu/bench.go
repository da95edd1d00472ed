package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"dejavu"
	"dejavu/bench"
	"dejavu/cuda"
	"dejavu/kernels"
	"dejavu/model"
	"dejavu/sparsity"
)

func newBench() *cobra.Command {
	var (
		mf        modelFlags
		synthetic string
		dtype     string
		o         bench.Options
		asJSON    bool
		bp        benchPreds
		async     string
	)
	c := &cobra.Command{
		Use:   "bench",
		Short: "Measure prompt and decode speed against the machine's memory bandwidth",
		Long: `Measure a model (--model) or random weights with the exact shapes of a real
model (--synthetic ` + strings.Join(model.SyntheticNames(), ", ") + `):
prompt tokens/s, decode ms/token (median, p90), weight bytes read per token,
achieved GB/s, and the machine's read bandwidth measured in the same run.
Progress goes to stderr; --json prints one object.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var (
				m   *model.Model
				err error
			)
			dt, ok := model.ParseDType(dtype)
			if !ok {
				return fmt.Errorf("--dtype %q: want f32, f16, bf16, q8_0 or q4_0", dtype)
			}
			gpu, err := dejavu.ParseDevice(mf.device)
			if err != nil {
				return err
			}
			bp.dtypeSet = cmd.Flags().Changed("predictor-dtype")
			if err := bp.check(cmd, o, gpu >= 0, synthetic, async); err != nil {
				return err
			}
			o.Progress = cmd.ErrOrStderr()
			if gpu >= 0 {
				r, err := benchCUDA(gpu, synthetic, &mf, dtype, cmd.Flags().Changed("dtype"), o, &bp)
				if err != nil {
					return err
				}
				return writeBench(cmd.OutOrStdout(), r, asJSON)
			}
			if synthetic != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "building synthetic %s (%s)…\n", synthetic, dtype)
				m, err = model.Synthetic(synthetic, dt, 1)
			} else {
				var path string
				if path, err = mf.path(); err == nil {
					m, err = loadAs(path, dtype, cmd.Flags().Changed("dtype"))
				}
			}
			if err != nil {
				return err
			}
			defer m.Close()
			pool := kernels.NewPool(mf.threads)
			defer pool.Close()
			p, err := bp.load(m, m.Cfg, dt, m.Source, &o, false)
			if err != nil {
				return err
			}
			if p != nil {
				p.SetPool(pool)
				switch async {
				case "", "off":
				case "shared":
					o.Async = true
				case "clone":
					la := p.Clone() // own scratch, on the lookahead goroutine alone
					la.SetPool(kernels.NewPool(1))
					o.Async, o.Lookahead = true, la
				default:
					return fmt.Errorf("--async %q: want off, shared or clone", async)
				}
			} else if async != "" && async != "off" {
				return fmt.Errorf("--async needs --predictors or --random-predictors")
			}
			r, err := bench.Run(m, pool, o)
			if err != nil {
				return err
			}
			return writeBench(cmd.OutOrStdout(), r, asJSON)
		},
	}
	mf.register(c)
	mf.registerDevice(c)
	f := c.Flags()
	f.StringVar(&synthetic, "synthetic", "", "random weights with the shapes of this model")
	f.StringVar(&dtype, "dtype", "f16", "weight type: f32, f16, bf16 or q8_0 for a synthetic model; a checkpoint is converted at load when given (also q4_0)")
	f.IntVar(&o.PromptLen, "prompt-len", 128, "tokens in the timed prompt pass")
	f.IntVar(&o.Gen, "gen", 64, "timed decode steps")
	f.Float64Var(&o.MLPDensity, "mlp-density", 1, "sparse decode: fraction of MLP neurons computed, chosen at random (1: dense)")
	f.Float64Var(&o.HeadDensity, "head-density", 1, "sparse decode: fraction of attention heads computed, chosen at random (1: dense)")
	f.StringVar(&bp.path, "predictors", "", "sparse decode with trained predictors (from 'dejavu train'), their cost included; they select by their calibrated thresholds (with --device cuda: for --model only)")
	registerPredictorDType(f, &bp.dtype)
	f.BoolVar(&bp.random, "random-predictors", false, "sparse decode through predictors of the trained size with random weights, selecting --mlp-density and --head-density (their cost included; for --synthetic shapes)")
	f.StringVar(&bp.mlpSelect, "mlp-select", "", "how --random-predictors select MLP neurons: threshold (per-layer logit thresholds calibrated to select about --mlp-density, as trained predictors select by default; on the GPU the predictor, selection and up GEMV run as one kernel) or topk (exactly --mlp-density of each layer's neurons; on the GPU a selection kernel); heads are always the top --head-density (default: threshold with --device cuda, topk on the CPU)")
	f.StringVar(&bp.mlpInput, "mlp-input", sparsity.MLPInputBlock, "what --random-predictors' MLP predictors stand for reading: block (the MLP block's input) or layer (the layer's input, as 'dejavu train --mlp-input layer': on the GPU predicted beside the attention)")
	f.StringVar(&async, "async", "off", "asynchronous head lookahead with --predictors: off, shared (the predictors themselves, overlapping attention) or clone (a copy on its own thread, overlapping attention and MLP; --async alone); CPU only (the GPU always runs the lookahead on a second stream)")
	f.Lookup("async").NoOptDefVal = "clone"
	f.BoolVar(&asJSON, "json", false, "print one JSON object")
	return c
}

// benchPreds are bench's predictor flags.
type benchPreds struct {
	path      string // --predictors
	random    bool   // --random-predictors
	dtype     string // --predictor-dtype
	dtypeSet  bool
	mlpSelect string // --mlp-select: "" (by device), "threshold" or "topk"
	mlpInput  string // --mlp-input (random predictors)
}

// check refuses the predictor flag combinations that make no sense, before
// anything is loaded.
func (b *benchPreds) check(cmd *cobra.Command, o bench.Options, gpu bool, synthetic, async string) error {
	fl := cmd.Flags()
	dev := fl.Lookup("device").Value.String()
	switch {
	case b.path != "" && b.random:
		return fmt.Errorf("choose --predictors or --random-predictors, not both")
	case b.path != "" && (fl.Changed("mlp-density") || fl.Changed("head-density")):
		return fmt.Errorf("--predictors selects the rows itself: drop --mlp-density and --head-density")
	case b.random && o.MLPDensity >= 1 && o.HeadDensity >= 1:
		return fmt.Errorf("--random-predictors needs --mlp-density or --head-density below 1 (their budgets)")
	}
	switch b.mlpSelect {
	case "", "threshold", "topk":
	default:
		return fmt.Errorf("--mlp-select %q: want threshold or topk", b.mlpSelect)
	}
	if fl.Changed("mlp-select") && !b.random {
		return fmt.Errorf("--mlp-select is for --random-predictors (trained predictors select by their calibrated thresholds)")
	}
	if fl.Changed("mlp-input") && !b.random {
		return fmt.Errorf("--mlp-input is for --random-predictors (trained predictors read what they were trained on: 'dejavu train --mlp-input')")
	}
	if !gpu {
		return nil
	}
	if async != "" && async != "off" {
		return fmt.Errorf("--device %s runs the head lookahead beside each layer on a second stream itself: drop --async", dev)
	}
	if b.path != "" && synthetic != "" {
		return fmt.Errorf("--device %s: --predictors needs --model (trained predictors are checked against the model's weights); --synthetic shapes take --random-predictors", dev)
	}
	return nil
}

// load returns the predictors the flags ask for, nil for none: trained
// ones for m, or random ones of the trained size for m — or, when m is nil
// (a model built on the GPU), for the shapes of c with weights of type dt.
// Random predictors select the MLP by --mlp-select and the top
// --head-density heads. The MLP predictors are stored as
// --predictor-dtype. The predictors become o's selector, in place of
// random selections.
func (b *benchPreds) load(m *model.Model, c model.Config, dt kernels.DType, source string, o *bench.Options, gpu bool) (*sparsity.Predictors, error) {
	var (
		p   *sparsity.Predictors
		err error
		how = "their calibrated thresholds"
	)
	switch {
	case b.path != "":
		if p, err = sparsity.Load(b.path, m); err != nil {
			return nil, err
		}
	case b.random:
		if m != nil {
			p, err = sparsity.RandomPredictors(m, o.MLPDensity, o.HeadDensity, 1)
		} else {
			p, err = sparsity.RandomPredictorsForConfig(c, dt, source, o.MLPDensity, o.HeadDensity, 1)
		}
		if err != nil {
			return nil, err
		}
		if err := p.SetRandomMLPInput(b.mlpInput); err != nil {
			return nil, fmt.Errorf("--mlp-input: %w", err)
		}
		how = fmt.Sprintf("top-k (density %g)", o.MLPDensity)
		if b.mlpSelect == "threshold" || b.mlpSelect == "" && gpu {
			// the stats' thresholds, calibrated to the density, and head budgets
			if err := p.SetSelection(sparsity.Selection{HeadDensity: o.HeadDensity}); err != nil {
				return nil, err
			}
			how = fmt.Sprintf("thresholds calibrated to density %g", o.MLPDensity)
		}
		o.MLPDensity, o.HeadDensity = 1, 1 // the predictors select, not random rows
	default:
		return nil, nil
	}
	if err := applyPredictorDType(p, b.dtype, b.dtypeSet); err != nil {
		return nil, err
	}
	if o.Progress != nil {
		lo, hi := p.Info.Stats[0].Rank, p.Info.Stats[0].Rank
		for _, st := range p.Info.Stats {
			lo, hi = min(lo, st.Rank), max(hi, st.Rank)
		}
		fmt.Fprintf(o.Progress, "predictors: MLP rank %d", lo)
		if hi != lo {
			fmt.Fprintf(o.Progress, "–%d", hi)
		}
		fmt.Fprintf(o.Progress, ", %s (MLP %v), %.1f MB; MLP predicted from %s, selected by %s\n", p.Info.Model, p.MLPPredictor(0).A.DType,
			float64(p.Bytes())/1e6, sparsity.MLPInputText(p.Info.MLPInput), how)
	}
	o.Selector = p // its cost is part of each decode step
	return p, nil
}

// loadAs loads the model at path and, when convert is set, converts its
// weight matrices to the named dtype (Model.Quantize; on the heap).
func loadAs(path, dtype string, convert bool) (*model.Model, error) {
	m, err := model.Load(path)
	if err != nil || !convert {
		return m, err
	}
	dt, ok := model.ParseDType(dtype)
	if !ok {
		m.Close()
		return nil, fmt.Errorf("--dtype %q: want f32, f16, bf16, q8_0 or q4_0", dtype)
	}
	if err := m.Quantize(dt); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

func writeBench(w io.Writer, r *bench.Result, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(r)
	}
	r.WriteTable(w)
	return nil
}

// benchCUDA runs bench.RunCUDA on GPU ordinal: a synthetic shape built on
// the GPU itself (f16, or bf16 with --dtype bf16), or the model of mf
// uploaded (f16; bf16 when its weights are bf16).
//
// With predictors (bp), they run on the GPU: trained ones for --model, or
// random ones of the trained size, for a synthetic shape those of its
// configuration (no host weights).
func benchCUDA(ordinal int, synthetic string, mf *modelFlags, dtype string, dtypeSet bool, o bench.Options, bp *benchPreds) (*bench.Result, error) {
	if dtypeSet && dtype != "f16" && (dtype != "bf16" || synthetic == "") {
		return nil, fmt.Errorf("--device cuda runs f16 weights, or bf16 for bf16 checkpoints and --synthetic shapes (drop --dtype %s)", dtype)
	}
	if synthetic != "" {
		dt := kernels.F16
		if dtype == "bf16" {
			dt = kernels.BF16
		}
		cfg, err := model.SyntheticConfig(synthetic)
		if err != nil {
			return nil, err
		}
		if _, err := bp.load(nil, cfg, dt, "synthetic "+synthetic, &o, true); err != nil {
			return nil, err
		}
		dev, err := cuda.Open(ordinal)
		if err != nil {
			return nil, err
		}
		defer dev.Close()
		fmt.Fprintf(o.Progress, "building synthetic %s (%v) on %s…\n", synthetic, dt, dev)
		g, err := dev.SyntheticDType(cfg, 1, dt)
		if err != nil {
			return nil, err
		}
		defer g.Close()
		return bench.RunCUDA(g, "synthetic "+synthetic, o)
	}
	path, err := mf.path()
	if err != nil {
		return nil, err
	}
	m, err := model.Load(path)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	if _, err := bp.load(m, m.Cfg, 0, path, &o, true); err != nil {
		return nil, err
	}
	g, err := dejavu.UploadCUDA(m, ordinal)
	if err != nil {
		return nil, err
	}
	defer g.Device().Close()
	defer g.Close()
	return bench.RunCUDA(g, path, o)
}
