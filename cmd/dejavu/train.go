package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"dejavu"
	"dejavu/sparsity"
)

func newTrain() *cobra.Command {
	var (
		mf    modelFlags
		data  string
		rank  string
		out   string
		o     sparsity.TrainOptions
		quiet bool
	)
	c := &cobra.Command{
		Use:   "train --data DATA [--rank R|auto] [--out FILE]",
		Short: "Train DejaVu sparsity predictors from recorded activations",
		Long: `Train, per layer, a linear low-rank MLP-neuron predictor (d→r→FFN, as in
DejaVu; PowerInfer's ReLU variant is not used) and a lookahead head predictor
(attention input of layer l → the important heads of layer l+1: the top
--head-frac by output norm) from the activations 'dejavu collect' recorded.
Weighted binary cross-entropy, AdamW, the last 10% of the tokens for
validation; the epoch needing the fewest neurons for --recall is kept, and a
per-layer budget (top-k, multiples of 8) and logit threshold are calibrated.
--rank auto keeps each layer's predictors under 10% of its weight bytes.
--mlp-input layer trains the MLP predictors on the hidden state entering the
layer (as DejaVu's reference code does) instead of the one entering the MLP
block: the prediction no longer waits for the attention, so the GPU runs it
beside the attention.

The predictors go to --out, by default <model dir>/` + sparsity.DefaultFileName + `
(or ./` + sparsity.DefaultFileName + ` when the model directory is read-only).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if data == "" {
				return fmt.Errorf("--data is required (a directory written by 'dejavu collect')")
			}
			if rank != "auto" {
				r, err := strconv.Atoi(rank)
				if err != nil || r < 1 {
					return fmt.Errorf("--rank %q: want a positive integer or auto", rank)
				}
				o.Rank = r
			}
			m, path, err := mf.load()
			if err != nil {
				return err
			}
			defer m.Close()
			stderr := cmd.ErrOrStderr()
			if out == "" {
				out = defaultPredictorsOut(path, stderr)
			}
			_, err = runTrain(m, data, out, o, quiet, cmd.OutOrStdout(), stderr)
			return err
		},
	}
	mf.register(c)
	f := c.Flags()
	f.StringVar(&data, "data", "", "activations directory from 'dejavu collect'")
	f.StringVar(&rank, "rank", "auto", "MLP predictor rank, or auto")
	f.StringVarP(&out, "out", "o", "", "predictors file (default <model dir>/"+sparsity.DefaultFileName+")")
	f.IntVar(&o.Epochs, "epochs", 6, "training epochs (stops early after 2 without improvement)")
	f.IntVar(&o.Batch, "batch", 256, "tokens per optimizer step")
	f.Float64Var(&o.LR, "lr", 3e-3, "AdamW learning rate")
	f.Float64Var(&o.Recall, "recall", 0.99, "target recall of active neurons on validation")
	f.Float64Var(&o.HeadFrac, "head-frac", 0.5, "fraction of heads labelled important per token")
	f.Float64Var(&o.HeadRecall, "head-recall", 0.999, "target recall of important heads on validation")
	f.Float64Var(&o.Mass, "mass", 0, "per-layer MLP budget: smallest reaching this activation-mass recall on validation (0: use --recall)")
	f.Float64Var(&o.HeadMass, "head-mass", 0, "per-layer head budget: smallest reaching this head-norm-mass recall on validation (0: use --head-recall)")
	f.Float64Var(&o.HeadLabelMass, "head-label-mass", 0, "label as important the fewest heads covering this fraction of the head-norm mass (0: the top --head-frac)")
	f.StringVar(&o.MLPInput, "mlp-input", sparsity.MLPInputBlock, "what the MLP predictors read: block (the MLP block's input) or layer (the layer's input: predicted beside the attention)")
	f.IntVar(&o.MaxTokens, "max-tokens", 0, "use at most this many recorded tokens (0: all)")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	return c
}

// defaultPredictorsOut is <model dir>/dejavu-predictors.safetensors when that
// directory is writable, else the file in the current directory (said on w).
func defaultPredictorsOut(modelPath string, w io.Writer) string {
	dir := modelPath
	if fi, err := os.Stat(modelPath); err == nil && !fi.IsDir() {
		dir = filepath.Dir(modelPath)
	}
	if f, err := os.CreateTemp(dir, ".dejavu-write-test-*"); err == nil {
		f.Close()
		os.Remove(f.Name())
		return filepath.Join(dir, sparsity.DefaultFileName)
	}
	fmt.Fprintf(w, "train: %s is not writable; writing ./%s instead (use --out to choose)\n", dir, sparsity.DefaultFileName)
	return sparsity.DefaultFileName
}

func runTrain(m *dejavu.Model, data, out string, o sparsity.TrainOptions, quiet bool, stdout, stderr io.Writer) (*sparsity.Predictors, error) {
	ds, err := sparsity.OpenDataset(data)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(stderr, "train: %d tokens × %d layers from %s; MLP predictors of %s\n", ds.Tokens, ds.Layers, data, sparsity.MLPInputText(o.MLPInput))
	epochs := o.Epochs
	if epochs <= 0 {
		epochs = 6
	}
	total := (2*ds.Layers - 1) * epochs
	bar := progressBar(!quiet, stderr, total, "training", "epochs")
	done := 0
	o.Progress = func(l int, what string, e, n int) {
		done++
		if bar != nil {
			bar.Describe(fmt.Sprintf("layer %d %s", l, what))
			bar.Set(done)
		}
	}
	t0 := time.Now()
	p, err := sparsity.Train(m.Model, m.Pool, ds, o)
	if bar != nil {
		bar.Finish()
	}
	if err != nil {
		return nil, err
	}
	if err := p.Save(out); err != nil {
		return nil, err
	}
	writeStats(stdout, p)
	fmt.Fprintf(stderr, "train: %.1fs; wrote %s (%.1f KB)\n", time.Since(t0).Seconds(), out, float64(p.Bytes())/1e3)
	return p, nil
}

// writeStats prints the per-layer validation table.
func writeStats(w io.Writer, p *sparsity.Predictors) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "layer\trank\tpred KB\t% layer\tepoch\ttrue dens\tbudget\tpred dens\trecall\tprecision\tthr dens\theads k\thead recall\t")
	var sumT, sumP float64
	for _, s := range p.Info.Stats {
		hk, hr := "-", "-"
		if s.HeadBudget > 0 {
			hk = fmt.Sprintf("%d/%d", s.HeadBudget, p.Info.Heads)
			hr = fmt.Sprintf("%.3f", s.HeadRecall)
		}
		fmt.Fprintf(tw, "%d\t%d\t%.0f\t%.1f\t%d\t%.3f\t%d\t%.3f\t%.4f\t%.3f\t%.3f\t%s\t%s\t\n", s.Layer, s.Rank,
			float64(s.PredictorBytes)/1e3, 100*float64(s.PredictorBytes)/float64(s.LayerBytes), s.BestEpoch,
			s.TrueDensity, s.Budget, s.PredDensity, s.Recall, s.Precision, s.ThreshDensity, hk, hr)
		sumT += s.TrueDensity
		sumP += s.PredDensity
	}
	n := float64(len(p.Info.Stats))
	fmt.Fprintf(tw, "mean\t\t\t\t\t%.3f\t\t%.3f\t\t\t\t\t\t\n", sumT/n, sumP/n)
	tw.Flush()
}
