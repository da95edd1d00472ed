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
// (sparsity.Selection's MLPMass / HeadMass), or, both zero, the
// predictors' calibrated per-layer budgets.
type SweepSetting struct {
	Density float64 // in (0, 1]; 0: not a uniform density
	Mass    float64 // in (0, 1]; 0: not a mass budget
}

// String names the setting: "density D", "mass M" or "cal".
func (s SweepSetting) String() string {
	switch {
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

// RunSweep compares dense decoding of ids with sparse decoding through pred
// under every combination of one head setting and one MLP setting (heads
// outer), the dense reference computed once (CompareMany). Sparse sessions
// use masked batches (model.Session.SetSparseBatches) unless o.Decode
// feeds every token on its own. m must have been prepared with PrepareSparse.
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
			sel := sparsity.Selection{MLPDensity: d.Density, MLPMass: d.Mass, HeadDensity: h.Density, HeadMass: h.Mass}
			if err := q.SetSelection(sel); err != nil {
				return nil, fmt.Errorf("eval: sweep: mlp %s, heads %s: %w", d, h, err)
			}
			mb, hb := q.Budgets()
			s := m.NewSession(pool, o.Ctx)
			s.SetSelector(q)
			s.SetSparseBatches(!o.Decode)
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
