package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"dejavu"
	"dejavu/eval"
	"dejavu/sparsity"
)

// defaultCorpus is the text the demo records activations on.
const defaultCorpus = "../shared/data/text/corpus-sample"

// defaultEvalText is the text of the demo's final perplexity comparison.
const defaultEvalText = "../shared/data/text/wikitext-2-raw/wiki.test.raw"

// The demo's selection (see docs/sparsity.md): MLP neurons above per-layer
// logit thresholds calibrated on 99% recall of the active ones (fewer
// neurons than top-k budgets of the same recall, same quality), heads by
// budgets of 99.9% recall of the top-half heads; a mass target (e.g.
// 0.995) switches the MLP to top-k budgets of that activation-mass recall.
const (
	demoMass     = 0
	demoHeadMass = 0
)

var demoPrompts = []string{
	"Once upon a time",
	"The history of the city begins",
	"He opened the door and saw",
	"In the morning the soldiers",
}

func newDemo() *cobra.Command {
	var (
		mf       modelFlags
		text     []string
		tokens   int
		rank     int
		epochs   int
		n        int
		dir      string
		keep     bool
		mass     float64
		headMass float64
		evalText string
		evalToks int
	)
	c := &cobra.Command{
		Use:   "demo",
		Short: "Collect, train and compare dense with sparse generation end to end",
		Long: `The whole DejaVu pipeline on one model (default: the test-bed): record
activations on a sample of text, train predictors with fast settings into a
temporary directory (never the model directory), then generate densely and
sparsely for a few prompts and print ms/token, the densities actually used and
the top-1 agreement with dense (teacher-forced on the dense greedy
continuation); finally the decode-mode perplexity of the first --eval-tokens
tokens of WikiText-2, dense and sparse, with the top-1 agreement at every
position.

Selections are per layer, calibrated on the held-out part of the recorded
text: by default MLP neurons whose predicted logit exceeds a threshold that
keeps 99% recall of the active ones, and the fewest heads reaching 99.9%
recall of the top-half heads; with --mass M the MLP takes the fewest
neurons whose activation-mass recall reaches M (--head-mass for heads); see
docs/sparsity.md for the measured trade-off.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, mpath, err := mf.load()
			if err != nil {
				return err
			}
			defer m.Close()
			stderr, stdout := cmd.ErrOrStderr(), cmd.OutOrStdout()
			if dir == "" {
				if dir, err = os.MkdirTemp("", "dejavu-demo-"); err != nil {
					return err
				}
				if !keep {
					defer os.RemoveAll(dir)
				}
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			fmt.Fprintf(stderr, "demo: working in %s\n", dir)
			data := filepath.Join(dir, "activations")
			t0 := time.Now()
			if err := runCollect(m, text, tokens, 0, 256, data, false, stderr); err != nil {
				return err
			}
			tc := time.Now()
			pred := filepath.Join(dir, sparsity.DefaultFileName)
			p, err := runTrain(m, data, pred, sparsity.TrainOptions{Rank: rank, Epochs: epochs, Mass: mass, HeadMass: headMass}, false, stdout, stderr)
			if err != nil {
				return err
			}
			os.RemoveAll(data) // the recordings are large; the predictors stay
			mlpSel := eval.SweepSetting{Threshold: "auto"}
			if mass > 0 { // the mass-calibrated top-k budgets
				if err := p.SetSelection(sparsity.Selection{Budgets: true}); err != nil {
					return err
				}
				mlpSel = eval.SweepSetting{}
			}
			tt := time.Now()
			p.SetPool(m.Pool)
			if err := applyPredictorDType(p, defaultPredictorDType, false); err != nil { // as generate does
				return err
			}
			fmt.Fprintf(stderr, "demo: collect %.0fs, train %.0fs; generating…\n", tc.Sub(t0).Seconds(), tt.Sub(tc).Seconds())
			if err := demoCompare(m, p, n, stdout); err != nil {
				return err
			}
			if evalToks <= 0 {
				return nil
			}
			ids, err := evalTokens(m, evalText, evalToks)
			if err != nil {
				return err
			}
			sw, err := runEvalSweep(m, mpath, pred, p, []string{evalText}, ids, []eval.SweepSetting{mlpSel}, []eval.SweepSetting{{}},
				eval.PerplexityOptions{Ctx: min(512, len(ids)), MaxTokens: evalToks})
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(stdout, sweepHeader+strings.Join(sweepRows(sw), "\n")+"\n")
			return err
		},
	}
	mf.register(c)
	f := c.Flags()
	f.StringSliceVar(&text, "text", []string{defaultCorpus}, "text to record activations on")
	f.IntVar(&tokens, "tokens", 24000, "tokens to record")
	f.IntVar(&rank, "rank", 0, "MLP predictor rank (0: auto, under 10% of the layer's bytes)")
	f.Float64Var(&mass, "mass", demoMass, "MLP top-k budgets per layer reaching this activation-mass recall (0: thresholds at 99% recall of active neurons)")
	f.Float64Var(&headMass, "head-mass", demoHeadMass, "per-layer head budget: head-norm-mass recall to reach (0: 99.9% recall of the top-half heads)")
	f.StringVar(&evalText, "eval-text", defaultEvalText, "text for the final perplexity comparison")
	f.IntVar(&evalToks, "eval-tokens", 1024, "tokens of --eval-text to compare (0: skip)")
	f.IntVar(&epochs, "epochs", 4, "training epochs")
	f.IntVarP(&n, "n", "n", 48, "tokens generated per prompt")
	f.StringVar(&dir, "dir", "", "working directory (default: a temporary one, removed afterwards)")
	f.BoolVar(&keep, "keep", false, "keep the temporary directory (predictors and all)")
	return c
}

// demoCompare generates densely and sparsely for the demo prompts and prints
// the comparison table.
func demoCompare(m *dejavu.Model, p *sparsity.Predictors, n int, w io.Writer) error {
	m.PrepareSparse()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "prompt\tdense ms/tok\tsparse ms/tok\tmlp density\thead density\ttop-1 agree\t")
	var agree, steps int
	var dms, sms, mlp, heads float64
	for _, prompt := range demoPrompts {
		ids, err := m.Tok.Encode(prompt)
		if err != nil {
			return err
		}
		ctx := len(ids) + n
		dense, err := timeDecode(m, ids, n, ctx, nil)
		if err != nil {
			return err
		}
		sparse, err := timeDecode(m, ids, n, ctx, p)
		if err != nil {
			return err
		}
		a, err := sparsity.TopOneAgreement(m.Model, m.Pool, p, ids, n)
		if err != nil {
			return err
		}
		d := sparse.Density
		fmt.Fprintf(tw, "%q\t%.2f\t%.2f\t%.3f\t%.3f\t%.1f%% (%d/%d)\t\n", prompt, msPerToken(dense), msPerToken(sparse),
			d.MLP(), d.Heads(), 100*a.Rate(), a.Matches, a.Steps)
		agree += a.Matches
		steps += a.Steps
		dms += msPerToken(dense)
		sms += msPerToken(sparse)
		mlp += d.MLP()
		heads += d.Heads()
	}
	k := float64(len(demoPrompts))
	fmt.Fprintf(tw, "mean\t%.2f\t%.2f\t%.3f\t%.3f\t%.1f%% (%d/%d)\t\n", dms/k, sms/k, mlp/k, heads/k, 100*float64(agree)/float64(max(1, steps)), agree, steps)
	tw.Flush()
	fmt.Fprintln(w, "(sparse ms/token includes the predictors; on a model this small their cost and the per-layer fixed costs eat most of the saving: see docs/benchmarks.md for larger shapes)")
	return nil
}

// evalTokens tokenizes the beginning of a text file as one document (with
// the tokenizer's BOS, as 'eval ppl' does): at most n tokens.
func evalTokens(m *dejavu.Model, path string, n int) ([]int, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, int64(n)*8+4096))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	ids, err := eval.Documents(m.Tok, string(b))
	if err != nil {
		return nil, err
	}
	return ids[:min(n, len(ids))], nil
}

func timeDecode(m *dejavu.Model, ids []int, n, ctx int, p *sparsity.Predictors) (*dejavu.Result, error) {
	o := dejavu.GenerateOptions{MaxTokens: n, Context: ctx}
	if p != nil {
		o.Selector = p
	}
	return m.GenerateIDs(context.Background(), ids, o)
}

func msPerToken(r *dejavu.Result) float64 {
	if len(r.OutputIDs) < 2 {
		return 0
	}
	return r.GenTime.Seconds() * 1000 / float64(len(r.OutputIDs)-1)
}
