package eval

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"dejavu/kernels"
	"dejavu/model"
	"dejavu/sparsity"
)

// SweepSetting is one MLP or head selection of a sweep: a uniform density
// (the same fraction in every layer), a per-layer activation-mass budget
// (sparsity.Selection's MLPMass / HeadMass), for heads the oracle's
// per-layer counts (model.Session.SetOracleHeads: the heads of largest
// output norm, known only after computing them all; a bound, not a way to
// run), or, all zero, the predictors' calibrated per-layer budgets ("cal";
// not the library's default selection, the calibrated thresholds, which
// is Threshold "auto").
type SweepSetting struct {
	Density   float64 // in (0, 1]; 0: not a uniform density
	Mass      float64 // in (0, 1]; 0: not a mass budget
	Threshold string  // MLP: a logit threshold spec (sparsity.Selection.SetMLPThreshold); "": none
	Oracle    []int   // heads per layer chosen by the oracle; nil: none
}

// String names the setting: "density D", "mass M", "threshold T",
// "oracle K0:K1:…" or "cal".
func (s SweepSetting) String() string {
	switch {
	case s.Threshold != "":
		return "threshold " + s.Threshold
	case s.Oracle != nil:
		k := make([]string, len(s.Oracle))
		for i, v := range s.Oracle {
			k[i] = strconv.Itoa(v)
		}
		return "oracle " + strings.Join(k, ":")
	case s.Density != 0:
		return "density " + strconv.FormatFloat(s.Density, 'g', -1, 64)
	case s.Mass != 0:
		return "mass " + strconv.FormatFloat(s.Mass, 'g', -1, 64)
	}
	return "cal"
}

// ParseSweepSettings reads lists of densities and of mass targets (each
// value a number in (0, 1] or "cal"; a density of 0 also means "cal") into
// settings, densities first. what names the flags in errors ("mlp" for
// --mlp-density and --mlp-mass).
func ParseSweepSettings(what string, densities, masses []string) ([]SweepSetting, error) {
	var out []SweepSetting
	for _, list := range []struct {
		kind string
		vals []string
	}{{"density", densities}, {"mass", masses}} {
		for _, v := range list.vals {
			v = strings.TrimSpace(v)
			if v == "" {
				continue
			}
			if v == "cal" {
				out = append(out, SweepSetting{})
				continue
			}
			x, err := strconv.ParseFloat(v, 64)
			if err != nil || x < 0 || x > 1 || x == 0 && list.kind == "mass" {
				return nil, fmt.Errorf("--%s-%s: %q is not a number in (0, 1] or cal", what, list.kind, v)
			}
			if list.kind == "density" {
				out = append(out, SweepSetting{Density: x})
			} else {
				out = append(out, SweepSetting{Mass: x})
			}
		}
	}
	return out, nil
}

// ParseOracleHeads reads --head-oracle values into oracle head settings for
// a model of the given layers and heads: a fraction F in (0, 1] spreads
// round(F·layers·heads) heads over the layers as evenly as possible (the
// earlier layers get the extra ones), and a colon-separated list gives each
// layer's count.
func ParseOracleHeads(vals []string, layers, heads int) ([]SweepSetting, error) {
	var out []SweepSetting
	for _, v := range vals {
		v = strings.TrimSpace(v)
		if v == "" {
			continue
		}
		var k []int
		if strings.Contains(v, ":") {
			for _, f := range strings.Split(v, ":") {
				n, err := strconv.Atoi(f)
				if err != nil || n < 1 || n > heads {
					return nil, fmt.Errorf("--head-oracle %q: %q is not a head count in [1, %d]", v, f, heads)
				}
				k = append(k, n)
			}
			if len(k) != layers {
				return nil, fmt.Errorf("--head-oracle %q: %d counts for %d layers", v, len(k), layers)
			}
		} else {
			x, err := strconv.ParseFloat(v, 64)
			if err != nil || !(x > 0 && x <= 1) {
				return nil, fmt.Errorf("--head-oracle %q: not a fraction in (0, 1] or a list K0:K1:… of heads per layer", v)
			}
			total := max(layers, int(x*float64(layers*heads)+0.5))
			k = make([]int, layers)
			for l := range k {
				k[l] = total / layers
				if l < total%layers {
					k[l]++
				}
			}
		}
		out = append(out, SweepSetting{Oracle: k})
	}
	return out, nil
}

// RunSweep compares dense decoding of ids with sparse decoding through pred
// under every combination of one head setting and one MLP setting (heads
// outer), the dense reference computed once (CompareMany). Sparse sessions
// use masked batches (model.Session.SetSparseBatches) unless o.Decode
// feeds every token on its own (oracle head settings need masked batches).
// m must have been prepared with PrepareSparse.
// The result has every field but Model, Predictors and Files.
func RunSweep(m *model.Model, pool *kernels.Pool, pred *sparsity.Predictors, ids []int, mlps, heads []SweepSetting, o PerplexityOptions) (*Sweep, error) {
	if len(mlps) == 0 || len(heads) == 0 {
		return nil, fmt.Errorf("eval: sweep: no MLP or no head settings")
	}
	var tests []Session
	var sessions []*model.Session
	var points []SweepPoint
	for _, h := range heads {
		for _, d := range mlps {
			q := pred.Clone()
			sel := sparsity.Selection{MLPDensity: d.Density, MLPMass: d.Mass, HeadDensity: h.Density, HeadMass: h.Mass,
				Budgets: d.Density == 0 && d.Mass == 0 && d.Threshold == ""}
			if d.Threshold != "" {
				if err := sel.SetMLPThreshold(d.Threshold); err != nil {
					return nil, fmt.Errorf("eval: sweep: %w", err)
				}
			}
			if h.Oracle != nil {
				if o.Decode {
					return nil, fmt.Errorf("eval: sweep: oracle head settings need masked batches, not --decode")
				}
				sel.HeadDensity, sel.HeadMass = 1, 0
			}
			if err := q.SetSelection(sel); err != nil {
				return nil, fmt.Errorf("eval: sweep: mlp %s, heads %s: %w", d, h, err)
			}
			mb, hb := q.Budgets()
			if h.Oracle != nil {
				hb = h.Oracle
			}
			s := m.NewSession(pool, o.Ctx)
			s.SetSelector(q)
			s.SetSparseBatches(!o.Decode)
			if h.Oracle != nil {
				if err := s.SetOracleHeads(h.Oracle); err != nil {
					return nil, fmt.Errorf("eval: sweep: %w", err)
				}
			}
			tests = append(tests, s)
			sessions = append(sessions, s)
			points = append(points, SweepPoint{MLPSetting: d.String(), HeadSetting: h.String(),
				RequestedMLPDensity: d.Density, RequestedHeadDensity: h.Density, RequestedMLPMass: d.Mass, RequestedHeadMass: h.Mass,
				MLPBudgets: mb, HeadBudgets: hb})
		}
	}
	t0 := time.Now()
	rs, err := CompareMany(m.NewSession(pool, o.Ctx), tests, ids, o)
	if err != nil {
		return nil, err
	}
	el := time.Since(t0).Seconds() / float64(len(tests)+1)
	sw := &Sweep{Protocol: rs[0].Ref.Protocol, Ctx: rs[0].Ref.Ctx, MaxTokens: o.MaxTokens, Tokens: rs[0].Tokens, Dense: rs[0].Ref}
	for i, r := range rs {
		d := sessions[i].Density()
		pt := &points[i]
		pt.MLPDensity, pt.HeadDensity = d.MLP(), d.Heads()
		pt.Perplexity, pt.StdErr = r.Test.Perplexity, r.Test.StdErr
		pt.KLMean, pt.KLP99, pt.KLMax, pt.Top1Agreement = r.KLMean, r.KLP99, r.KLMax, r.Top1Agreement
		pt.Seconds = el
	}
	sw.Points = points
	return sw, nil
}
