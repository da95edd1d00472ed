package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"dejavu/bench"
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
		predPath  string
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
			if synthetic != "" {
				dt, ok := map[string]kernels.DType{"f32": kernels.F32, "f16": kernels.F16, "bf16": kernels.BF16}[dtype]
				if !ok {
					return fmt.Errorf("--dtype %q: want f32, f16 or bf16", dtype)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "building synthetic %s (%s)…\n", synthetic, dtype)
				m, err = model.Synthetic(synthetic, dt, 1)
			} else {
				if cmd.Flags().Changed("dtype") {
					return fmt.Errorf("--dtype applies to --synthetic models; a checkpoint runs in its stored dtype")
				}
				var path string
				if path, err = mf.path(); err == nil {
					m, err = model.Load(path)
				}
			}
			if err != nil {
				return err
			}
			defer m.Close()
			pool := kernels.NewPool(mf.threads)
			defer pool.Close()
			if predPath != "" {
				if cmd.Flags().Changed("mlp-density") || cmd.Flags().Changed("head-density") {
					return fmt.Errorf("--predictors selects the rows itself: drop --mlp-density and --head-density")
				}
				p, err := sparsity.Load(predPath, m)
				if err != nil {
					return err
				}
				p.SetPool(pool)
				o.Selector = p // its cost is part of each decode step
			}
			o.Progress = cmd.ErrOrStderr()
			r, err := bench.Run(m, pool, o)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(r)
			}
			r.WriteTable(cmd.OutOrStdout())
			return nil
		},
	}
	mf.register(c)
	f := c.Flags()
	f.StringVar(&synthetic, "synthetic", "", "random weights with the shapes of this model")
	f.StringVar(&dtype, "dtype", "f16", "weight type of a synthetic model: f32, f16 or bf16")
	f.IntVar(&o.PromptLen, "prompt-len", 128, "tokens in the timed prompt pass")
	f.IntVar(&o.Gen, "gen", 64, "timed decode steps")
	f.Float64Var(&o.MLPDensity, "mlp-density", 1, "sparse decode: fraction of MLP neurons computed, chosen at random (1: dense)")
	f.Float64Var(&o.HeadDensity, "head-density", 1, "sparse decode: fraction of attention heads computed, chosen at random (1: dense)")
	f.StringVar(&predPath, "predictors", "", "sparse decode with trained predictors (from 'dejavu train'), their cost included")
	f.BoolVar(&asJSON, "json", false, "print one JSON object")
	return c
}
