package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"dejavu"
	"dejavu/sparsity"
)

const defaultEvalText = "../shared/data/text/wikitext-2-raw/wiki.test.raw"

func newSweep() *cobra.Command {
	var (
		mf                         modelFlags
		predictors, text           string
		tokens, window             int
		mlpMass, headMass, mlpDens []string
		headDens                   []string
	)
	c := &cobra.Command{
		Use:   "sweep [--predictors FILE] [--mlp-mass M,...] [--head-mass H,...]",
		Short: "Measure sparse perplexity and top-1 agreement over a grid of budgets",
		Long: `Decode the first --tokens tokens of --text in windows of --window tokens
(BOS, then every token alone: decode mode, where sparsity applies), densely and
with the predictors under every combination of one MLP setting and one head
setting, and print for each: the densities actually computed, the perplexity
and its rise over dense, and the top-1 agreement with the dense argmax at every
position (teacher-forced on the text).

MLP settings: --mlp-mass M (per-layer budgets reaching activation-mass recall
M on the training validation split), --mlp-density D (top D·FFN in every
layer), or "cal" (the file's calibrated budgets). Head settings likewise:
--head-mass, --head-density (1 = all heads), "cal".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, _, err := mf.load()
			if err != nil {
				return err
			}
			defer m.Close()
			p, err := m.LoadPredictors(predictors)
			if err != nil {
				return err
			}
			ids, err := evalTokens(m, text, tokens)
			if err != nil {
				return err
			}
			mlps, err := sweepSettings(mlpMass, mlpDens, "mlp")
			if err != nil {
				return err
			}
			heads, err := sweepSettings(headMass, headDens, "head")
			if err != nil {
				return err
			}
			return runSweep(m, p, ids, window, mlps, heads, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	mf.register(c)
	f := c.Flags()
	f.StringVar(&predictors, "predictors", "", "predictors file (default <model dir>/"+sparsity.DefaultFileName+")")
	f.StringVar(&text, "text", defaultEvalText, "evaluation text")
	f.IntVar(&tokens, "tokens", 4000, "tokens of --text to evaluate")
	f.IntVar(&window, "window", 512, "tokens per window, BOS included")
	f.StringSliceVar(&mlpMass, "mlp-mass", nil, "MLP activation-mass recall targets (comma-separated; 'cal': calibrated budgets)")
	f.StringSliceVar(&mlpDens, "mlp-density", nil, "uniform MLP densities (comma-separated)")
	f.StringSliceVar(&headMass, "head-mass", nil, "head-norm-mass recall targets (comma-separated; 'cal': calibrated budgets)")
	f.StringSliceVar(&headDens, "head-density", nil, "uniform head densities (comma-separated; 1: all heads)")
	return c
}

// sweepSetting is one MLP or head selection of a sweep.
type sweepSetting struct {
	name        string
	mass, dense float64 // at most one set; both 0: calibrated
}

func sweepSettings(mass, dens []string, what string) ([]sweepSetting, error) {
	var out []sweepSetting
	for _, list := range []struct {
		vals []string
		kind string
	}{{mass, "mass"}, {dens, "density"}} {
		for _, s := range list.vals {
			if s == "cal" {
				out = append(out, sweepSetting{name: "cal"})
				continue
			}
			v, err := strconv.ParseFloat(s, 64)
			if err != nil || v <= 0 || v > 1 {
				return nil, fmt.Errorf("--%s-%s %q: want a number in (0, 1] or cal", what, list.kind, s)
			}
			st := sweepSetting{name: list.kind + " " + s}
			if list.kind == "mass" {
				st.mass = v
			} else {
				st.dense = v
			}
			out = append(out, st)
		}
	}
	if len(out) == 0 {
		out = append(out, sweepSetting{name: "cal"})
	}
	return out, nil
}

// evalTokens tokenizes the beginning of a text file: n tokens (without BOS).
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
	ids, err := m.Tok.Encode(string(b))
	if err != nil {
		return nil, err
	}
	if bos := m.Tok.BOS(); len(ids) > 0 && bos >= 0 && ids[0] == bos {
		ids = ids[1:]
	}
	return ids[:min(n, len(ids))], nil
}

func runSweep(m *dejavu.Model, p *sparsity.Predictors, ids []int, window int, mlps, heads []sweepSetting, w, stderr io.Writer) error {
	m.PrepareSparse()
	t0 := time.Now()
	ref, err := sparsity.NewReference(m.Model, m.Pool, ids, window, m.Tok.BOS())
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "sweep: %d positions, dense perplexity %.4f (%.1fs)\n", ref.Tokens(), ref.PPL(), time.Since(t0).Seconds())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "mlp\theads\tmlp density\thead density\tppl dense\tppl sparse\trise %\ttop-1 agree\tmlp budgets\thead budgets\t")
	for _, ms := range mlps {
		for _, hs := range heads {
			sel := sparsity.Selection{MLPMass: ms.mass, MLPDensity: ms.dense, HeadMass: hs.mass, HeadDensity: hs.dense}
			if err := p.SetSelection(sel); err != nil {
				return err
			}
			e, err := ref.Evaluate(m.Model, m.Pool, p)
			if err != nil {
				return err
			}
			mb, hb := p.Budgets()
			fmt.Fprintf(tw, "%s\t%s\t%.3f\t%.3f\t%.4f\t%.4f\t%+.2f\t%.4f\t%s\t%s\t\n", ms.name, hs.name, e.Density.MLP(), e.Density.Heads(),
				e.PPLDense, e.PPLSparse, 100*e.PPLRise(), e.Agreement, joinInts(mb), joinInts(hb))
			tw.Flush()
		}
	}
	return p.SetSelection(sparsity.Selection{})
}

func joinInts(x []int) string {
	s := make([]string, len(x))
	for i, v := range x {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}
