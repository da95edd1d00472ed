package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"dejavu/analyze"
)

func newAnalyze() *cobra.Command {
	var o analyze.Options
	c := &cobra.Command{
		Use:   "analyze [--data DATA] [--predictors FILE] [--sweep SWEEP.json] [--bench BENCH.json...] --out DIR",
		Short: "Plot contextual sparsity, predictor quality, density vs perplexity and latency (PNG and SVG)",
		Long: `Draw plots (PNG and SVG, with gonum/plot) into --out from whatever inputs are given:

  --data        a 'dejavu collect' directory: the true contextual sparsity per
                layer (fraction of MLP neurons active per token; fraction of
                heads covering --head-mass of the head-output-norm mass), also
                written as sparsity.json                    → sparsity.png/.svg
  --predictors  a 'dejavu train' file: validation recall and predicted density
                per layer, from its metadata                → predictors.png/.svg
  --sweep       a 'dejavu eval sweep' result: perplexity, top-1 agreement and KL
                against the MLP density computed → sweep.png/.svg, sweep-agreement.png/.svg
  --bench       'dejavu bench --json' outputs (repeatable; one or more objects
                per file): decode latency against density   → latency.png/.svg`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Out == "" {
				return fmt.Errorf("--out is required (the directory for the plots)")
			}
			rep, err := analyze.Run(o)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if len(rep.Sparsity) > 0 {
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
				fmt.Fprintf(tw, "layer\tMLP active (mean)\tp10\tp90\tunion\theads for %.0f%% mass\tp10\tp90\t\n", 100*rep.HeadMass)
				for _, l := range rep.Sparsity {
					fmt.Fprintf(tw, "%d\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t\n", l.Layer, l.MLPDensity, l.MLPP10, l.MLPP90, l.MLPUnion, l.HeadDensity, l.HeadP10, l.HeadP90)
				}
				tw.Flush()
			}
			for _, f := range rep.Files {
				fmt.Fprintln(w, "wrote", f)
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&o.Data, "data", "", "activations directory from 'dejavu collect'")
	f.Float64Var(&o.HeadMass, "head-mass", 0.9, "fraction of the head-output-norm mass the counted heads cover")
	f.IntVar(&o.MaxTokens, "max-tokens", 0, "read only the first N tokens of --data (0: all)")
	f.StringVar(&o.Predictors, "predictors", "", "predictors file from 'dejavu train'")
	f.StringVar(&o.Sweep, "sweep", "", "result of 'dejavu eval sweep --out'")
	f.StringSliceVar(&o.Bench, "bench", nil, "outputs of 'dejavu bench --json' (repeatable)")
	f.StringVarP(&o.Out, "out", "o", "", "output directory")
	return c
}
