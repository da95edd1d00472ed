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
		mf         modelFlags
		synthetic  string
		dtype      string
		o          bench.Options
		asJSON     bool
		predPath   string
		randomPred bool
		async      string
		predDType  string
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
			if gpu, err := dejavu.ParseDevice(mf.device); err != nil {
				return err
			} else if gpu >= 0 {
				if predPath != "" || randomPred || async != "off" {
					return fmt.Errorf("--device %s: sparse decoding on the GPU uses random selections (--mlp-density, --head-density)", mf.device)
				}
				o.Progress = cmd.ErrOrStderr()
				r, err := benchCUDA(gpu, synthetic, &mf, dtype, cmd.Flags().Changed("dtype"), o)
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
			var p *sparsity.Predictors
			switch {
			case predPath != "" && randomPred:
				return fmt.Errorf("choose --predictors or --random-predictors, not both")
			case predPath != "":
				if cmd.Flags().Changed("mlp-density") || cmd.Flags().Changed("head-density") {
					return fmt.Errorf("--predictors selects the rows itself: drop --mlp-density and --head-density")
				}
				if p, err = sparsity.Load(predPath, m); err != nil {
					return err
				}
			case randomPred:
				if o.MLPDensity >= 1 && o.HeadDensity >= 1 {
					return fmt.Errorf("--random-predictors needs --mlp-density or --head-density below 1 (their budgets)")
				}
				if p, err = sparsity.RandomPredictors(m, o.MLPDensity, o.HeadDensity, 1); err != nil {
					return err
				}
				o.MLPDensity, o.HeadDensity = 1, 1 // the predictors select, not random rows
			}
			if p != nil {
				p.SetPool(pool)
				if err := applyPredictorDType(p, predDType, cmd.Flags().Changed("predictor-dtype")); err != nil {
					return err
				}
				o.Selector = p // its cost is part of each decode step
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
			o.Progress = cmd.ErrOrStderr()
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
	f.StringVar(&predPath, "predictors", "", "sparse decode with trained predictors (from 'dejavu train'), their cost included")
	registerPredictorDType(f, &predDType)
	f.BoolVar(&randomPred, "random-predictors", false, "sparse decode through predictors of the trained size with random weights, selecting --mlp-density and --head-density (their cost included; for --synthetic shapes)")
	f.StringVar(&async, "async", "off", "asynchronous head lookahead with --predictors: off, shared (the predictors themselves, overlapping attention) or clone (a copy on its own thread, overlapping attention and MLP; --async alone)")
	f.Lookup("async").NoOptDefVal = "clone"
	f.BoolVar(&asJSON, "json", false, "print one JSON object")
	return c
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
func benchCUDA(ordinal int, synthetic string, mf *modelFlags, dtype string, dtypeSet bool, o bench.Options) (*bench.Result, error) {
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
	g, err := dejavu.UploadCUDA(m, ordinal)
	if err != nil {
		return nil, err
	}
	defer g.Device().Close()
	defer g.Close()
	return bench.RunCUDA(g, path, o)
}
