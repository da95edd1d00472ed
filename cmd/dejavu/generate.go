package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"dejavu"
	"dejavu/generate"
	"dejavu/kernels"
	"dejavu/model"
	"dejavu/sparsity"
)

func newGenerate() *cobra.Command {
	var (
		mf       modelFlags
		prompt   string
		n, ctxN  int
		sampling generate.Options
		asJSON   bool
		sp       sparseFlags
		dtype    string
	)
	c := &cobra.Command{
		Use:   "generate",
		Short: "Continue a prompt, streaming the text to stdout",
		Long: `Continue a prompt. The prompt is echoed, then the generated text is streamed
to stdout as it is produced; speeds go to stderr. With --json, one JSON object
{"prompt_ids":[...],"output_ids":[...],"text":"...","stop":"..."} is printed
instead, where output_ids and text are the generated part only.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, _, err := mf.load()
			if err != nil {
				return err
			}
			defer m.Close()
			if cmd.Flags().Changed("dtype") {
				dt, ok := model.ParseDType(dtype)
				if !ok {
					return fmt.Errorf("--dtype %q: want f32, f16, bf16, q8_0 or q4_0", dtype)
				}
				if err := m.Quantize(dt); err != nil {
					return err
				}
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			out := bufio.NewWriter(cmd.OutOrStdout())
			defer out.Flush()
			o := dejavu.GenerateOptions{MaxTokens: n, Sampling: sampling, Context: ctxN}
			if o.Selector, err = sp.selector(cmd, m); err != nil {
				return err
			}
			if !asJSON {
				fmt.Fprint(out, prompt)
				out.Flush()
				o.OnText = func(t string) error {
					out.WriteString(t)
					return out.Flush()
				}
			}
			res, err := m.Generate(ctx, prompt, o)
			if err != nil {
				return err
			}
			if asJSON {
				err = json.NewEncoder(out).Encode(struct {
					PromptIDs   []int   `json:"prompt_ids"`
					OutputIDs   []int   `json:"output_ids"`
					Text        string  `json:"text"`
					Stop        string  `json:"stop"`
					MLPDensity  float64 `json:"mlp_density"`
					HeadDensity float64 `json:"head_density"`
					KVDensity   float64 `json:"kv_density"`
				}{res.PromptIDs, orEmpty(res.OutputIDs), res.Text, res.Stop, res.Density.MLP(), res.Density.Heads(), res.Density.KV()})
			} else {
				fmt.Fprintln(out)
			}
			if ferr := out.Flush(); err == nil {
				err = ferr
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "prompt: %d tokens, %.1f tokens/s; generated: %d tokens, %.1f tokens/s (stop: %s)\n",
				len(res.PromptIDs), rate(len(res.PromptIDs), res.PromptTime.Seconds()),
				len(res.OutputIDs), rate(len(res.OutputIDs), res.GenTime.Seconds()), res.Stop)
			if o.Selector != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "sparse decoding: mlp density %.3f, head density %.3f, k/v density %.3f over %d steps\n",
					res.Density.MLP(), res.Density.Heads(), res.Density.KV(), res.Density.Tokens)
			}
			return err
		},
	}
	mf.register(c)
	mf.registerDevice(c)
	f := c.Flags()
	f.StringVarP(&prompt, "prompt", "p", "", "the text to continue")
	f.StringVar(&dtype, "dtype", "", "convert the weights at load: f32, f16, bf16, q8_0 or q4_0 (default: as stored)")
	f.IntVarP(&n, "n", "n", 64, "tokens to generate at most")
	f.IntVar(&ctxN, "ctx", 0, "context size in tokens (0: the model's maximum)")
	f.Float64Var(&sampling.Temperature, "temperature", 0.8, "sampling temperature (0: greedy)")
	f.IntVar(&sampling.TopK, "top-k", 40, "sample from the K most likely tokens (0: all)")
	f.Float64Var(&sampling.TopP, "top-p", 0.95, "sample from the smallest set with this total probability (1: all)")
	f.Uint64Var(&sampling.Seed, "seed", 0, "random seed")
	f.BoolVar(&asJSON, "json", false, "print one JSON object with the ids and text")
	sp.register(c)
	return c
}

// sparseFlags select sparse decoding with trained predictors.
type sparseFlags struct {
	sparse                  bool
	predictors              string
	mlpDensity, headDensity float64
	mlpThreshold            string
	mlpBudgets              bool
	predictorDType          string
}

func (f *sparseFlags) register(c *cobra.Command) {
	fl := c.Flags()
	fl.BoolVar(&f.sparse, "sparse", false, "decode sparsely with trained DejaVu predictors (see 'dejavu collect' and 'dejavu train')")
	fl.StringVar(&f.predictors, "predictors", "", "predictors file (default <model dir>/"+sparsity.DefaultFileName+"; implies --sparse)")
	fl.Float64Var(&f.mlpDensity, "mlp-density", 0, "select the top fraction D of MLP neurons in every layer (default: the neurons above the calibrated per-layer thresholds)")
	fl.BoolVar(&f.mlpBudgets, "mlp-budgets", false, "select each layer's calibrated top-k budget of MLP neurons instead of thresholding")
	fl.StringVar(&f.mlpThreshold, "mlp-threshold", "", "select MLP neurons whose predicted logit exceeds T; 'auto' for the calibrated per-layer thresholds, 'auto-D' / 'auto+D' for those lowered / raised by D (lower: more neurons)")
	fl.Float64Var(&f.headDensity, "head-density", 0, "select the top fraction H of attention heads (default: the calibrated per-layer budgets)")
	registerPredictorDType(fl, &f.predictorDType)
}

// defaultPredictorDType is how commands store MLP predictors unless told:
// 8-bit, which measured the same as f16 over the whole WikiText-2 test set
// on both test-beds and reads half the bytes (docs/sparsity.md, "8-bit
// predictors").
const defaultPredictorDType = "q8_0"

// registerPredictorDType adds --predictor-dtype to a command that loads
// predictors.
func registerPredictorDType(fl *pflag.FlagSet, dt *string) {
	fl.StringVar(dt, "predictor-dtype", defaultPredictorDType, "storage of the MLP predictors' weights: q8_0 (8-bit blocks: half the bytes a step reads for them, same perplexity and agreement on the test-beds) or f16 (as trained)")
}

// applyPredictorDType stores p's MLP predictors as dt ("f16": unchanged).
// Predictors that cannot be stored in 8 bits (a hidden size that is not a
// multiple of 32) stay f16 unless q8_0 was asked for explicitly.
func applyPredictorDType(p *sparsity.Predictors, dt string, explicit bool) error {
	switch dt {
	case "f16":
		return nil
	case "", "q8_0":
		if err := p.Quantize(kernels.Q8_0); err != nil && explicit {
			return err
		}
		return nil
	}
	return fmt.Errorf("--predictor-dtype %q: want f16 or q8_0", dt)
}

// selector loads the predictors when sparse decoding is asked for (nil otherwise).
func (f *sparseFlags) selector(cmd *cobra.Command, m *dejavu.Model) (model.Selector, error) {
	fl := cmd.Flags()
	if !f.sparse && f.predictors == "" {
		for _, n := range []string{"mlp-density", "mlp-threshold", "mlp-budgets", "head-density", "predictor-dtype"} {
			if fl.Changed(n) {
				return nil, fmt.Errorf("--%s applies to sparse decoding: add --sparse", n)
			}
		}
		return nil, nil
	}
	p, err := m.LoadPredictors(f.predictors)
	if err != nil {
		return nil, err
	}
	if err := applyPredictorDType(p, f.predictorDType, fl.Changed("predictor-dtype")); err != nil {
		return nil, err
	}
	sel := sparsity.Selection{MLPDensity: f.mlpDensity, HeadDensity: f.headDensity, Budgets: f.mlpBudgets}
	if f.mlpThreshold != "" {
		if err := sel.SetMLPThreshold(f.mlpThreshold); err != nil {
			return nil, fmt.Errorf("--mlp-threshold: %w", err)
		}
	}
	if err := p.SetSelection(sel); err != nil {
		return nil, err
	}
	return p, nil
}

func rate(n int, sec float64) float64 {
	if sec <= 0 {
		return 0
	}
	return float64(n) / sec
}

func orEmpty(x []int) []int {
	if x == nil {
		return []int{}
	}
	return x
}
