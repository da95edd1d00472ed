package analyze

import (
	"bytes"
	"cmp"
	"fmt"
	"image/color"
	"math"
	"path/filepath"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"dejavu/bench"
	"dejavu/eval"
	"dejavu/sparsity"
)

// Figure size and PNG resolution.
const (
	figW = 7 * vg.Inch
	figH = 4.5 * vg.Inch
	dpi  = 110
)

// newPlot is a plot with the common styling: title, axis labels, grid.
func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = font.Length(13)
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.X.Label.TextStyle.Font.Size = font.Length(11)
	p.Y.Label.TextStyle.Font.Size = font.Length(11)
	p.Legend.TextStyle.Font.Size = font.Length(10)
	p.Add(plotter.NewGrid())
	return p
}

// xyErr is points with asymmetric vertical error bars.
type xyErr struct {
	plotter.XYs
	lo, hi []float64
}

func (e xyErr) YError(i int) (float64, float64) { return e.lo[i], e.hi[i] }

// series adds a line with points in style i, named in the legend, and
// returns its line so callers can restyle it.
func series(p *plot.Plot, i int, name string, xys plotter.XYs) (*plotter.Line, *plotter.Scatter) {
	l, s, err := plotter.NewLinePoints(xys)
	if err != nil {
		panic(err) // only for NaN or Inf points, which callers filter
	}
	l.Color = plotutil.Color(i)
	l.Dashes = plotutil.Dashes(i)
	l.Width = vg.Points(1.5)
	s.Color = plotutil.Color(i)
	s.Shape = plotutil.Shape(i)
	s.Radius = vg.Points(3)
	p.Add(l, s)
	if name != "" {
		p.Legend.Add(name, l, s)
	}
	return l, s
}

// points adds unconnected, larger points in style i (filled glyph).
func points(p *plot.Plot, i int, name string, xys plotter.XYs) {
	s, err := plotter.NewScatter(xys)
	if err != nil {
		panic(err)
	}
	s.Color = plotutil.Color(i)
	s.Shape = draw.PyramidGlyph{}
	s.Radius = vg.Points(5)
	p.Add(s)
	if name != "" {
		p.Legend.Add(name, s)
	}
}

// errorBars adds vertical error bars in style i.
func errorBars(p *plot.Plot, i int, e xyErr) {
	b, err := plotter.NewYErrorBars(e)
	if err != nil {
		panic(err)
	}
	b.Color = plotutil.Color(i)
	b.Width = vg.Points(1)
	p.Add(b)
}

// hline adds a horizontal dashed reference line at y across [x0, x1].
func hline(p *plot.Plot, name string, y, x0, x1 float64) {
	l, err := plotter.NewLine(plotter.XYs{{X: x0, Y: y}, {X: x1, Y: y}})
	if err != nil {
		panic(err)
	}
	l.Color = color.Gray{Y: 60}
	l.Dashes = []vg.Length{vg.Points(6), vg.Points(4)}
	l.Width = vg.Points(1.2)
	p.Add(l)
	p.Legend.Add(name, l)
}

// layerTicks labels every layer on the x axis.
type layerTicks struct{}

func (layerTicks) Ticks(min, max float64) []plot.Tick {
	var t []plot.Tick
	for v := math.Ceil(min); v <= max; v++ {
		t = append(t, plot.Tick{Value: v, Label: fmt.Sprintf("%.0f", v)})
	}
	return t
}

// Save writes p as base.png and base.svg in dir and returns their paths.
// Files are written atomically.
func Save(p *plot.Plot, dir, base string) ([]string, error) {
	var png bytes.Buffer
	c := vgimg.NewWith(vgimg.UseWH(figW, figH), vgimg.UseDPI(dpi))
	p.Draw(draw.New(c))
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(&png); err != nil {
		return nil, err
	}
	var svg bytes.Buffer
	sc := vgsvg.New(figW, figH)
	p.Draw(draw.New(sc))
	if _, err := sc.WriteTo(&svg); err != nil {
		return nil, err
	}
	var out []string
	for _, f := range []struct {
		ext string
		b   []byte
	}{{".png", png.Bytes()}, {".svg", svg.Bytes()}} {
		path := filepath.Join(dir, base+f.ext)
		if err := eval.WriteFileAtomic(path, f.b); err != nil {
			return nil, err
		}
		out = append(out, path)
	}
	return out, nil
}

// PlotTrueSparsity plots the measured per-layer sparsity: the fraction of
// MLP neurons active per token and the fraction of heads covering headMass
// of the head-norm mass (means with 10th–90th percentile bars).
func PlotTrueSparsity(ls []LayerSparsity, headMass float64, tokens int, modelName string) *plot.Plot {
	p := newPlot(fmt.Sprintf("True contextual sparsity per layer: %s, %d tokens", modelName, tokens),
		"layer", "fraction of the layer needed per token")
	mlp := xyErr{}
	heads := xyErr{}
	union := plotter.XYs{}
	for _, l := range ls {
		x := float64(l.Layer)
		mlp.XYs = append(mlp.XYs, plotter.XY{X: x, Y: l.MLPDensity})
		mlp.lo = append(mlp.lo, l.MLPDensity-l.MLPP10)
		mlp.hi = append(mlp.hi, l.MLPP90-l.MLPDensity)
		heads.XYs = append(heads.XYs, plotter.XY{X: x, Y: l.HeadDensity})
		heads.lo = append(heads.lo, l.HeadDensity-l.HeadP10)
		heads.hi = append(heads.hi, l.HeadP90-l.HeadDensity)
		union = append(union, plotter.XY{X: x, Y: l.MLPUnion})
	}
	series(p, 0, "MLP neurons active (ReLU > 0), mean; bars p10–p90", mlp.XYs)
	errorBars(p, 0, mlp)
	series(p, 1, fmt.Sprintf("heads covering %.0f%% of head-output-norm mass, mean; bars p10–p90", 100*headMass), heads.XYs)
	errorBars(p, 1, heads)
	series(p, 2, "MLP neurons active on any token (union)", union)
	p.Y.Min, p.Y.Max = 0, 1.3
	p.Y.Tick.Marker = fracTicks{}
	p.X.Tick.Marker = layerTicks{}
	p.Legend.Top = true
	p.Legend.Left = true
	return p
}

// PlotPredictors plots, per layer, what training measured on the
// validation split: the MLP predictor's recall of active neurons at its
// budget, its budget as a fraction of the neurons (predicted density)
// beside the true density, and the head predictor's recall and budget (the
// lookahead from layer l-1 chooses the heads of layer l).
func PlotPredictors(info *sparsity.Info) *plot.Plot {
	p := newPlot(fmt.Sprintf("Predictors: recall and predicted density per layer (%s)", filepath.Base(info.Model)),
		"layer", "fraction")
	var recall, pred, truth, hRecall, hDens plotter.XYs
	for _, s := range info.Stats {
		x := float64(s.Layer)
		recall = append(recall, plotter.XY{X: x, Y: s.Recall})
		pred = append(pred, plotter.XY{X: x, Y: s.PredDensity})
		truth = append(truth, plotter.XY{X: x, Y: s.TrueDensity})
		if s.HeadBudget > 0 {
			hRecall = append(hRecall, plotter.XY{X: x + 1, Y: s.HeadRecall})
			hDens = append(hDens, plotter.XY{X: x + 1, Y: s.HeadDensity})
		}
	}
	series(p, 0, fmt.Sprintf("MLP recall of active neurons at budget (target %.3g)", info.Recall), recall)
	series(p, 1, "MLP predicted density (budget / neurons)", pred)
	series(p, 2, "MLP true density (active / neurons)", truth)
	if len(hRecall) > 0 {
		series(p, 3, fmt.Sprintf("head recall of top-%.0f%% heads at budget", 100*info.HeadFrac), hRecall)
		series(p, 4, "head predicted density (budget / heads)", hDens)
	}
	p.Y.Min, p.Y.Max = 0, 1.45
	p.Y.Tick.Marker = fracTicks{}
	p.X.Tick.Marker = layerTicks{}
	p.Legend.Top = true
	p.Legend.Left = true
	return p
}

// headKey is a sweep's head setting: a uniform density, a mass target, or
// both 0 for the calibrated budgets.
type headKey struct{ density, mass float64 }

// headLabel names a sweep series by its requested head setting.
func headLabel(req headKey, pts []eval.SweepPoint) string {
	var s float64
	for _, q := range pts {
		s += q.HeadDensity
	}
	got := s / float64(len(pts))
	switch {
	case req.density != 0:
		return fmt.Sprintf("heads %.2g (computed %.2f)", req.density, got)
	case req.mass != 0:
		return fmt.Sprintf("head mass %.3g (computed %.2f)", req.mass, got)
	}
	return fmt.Sprintf("calibrated heads (%.2f)", got)
}

// budgetPoint reports whether q's MLP selection is per-layer budgets
// (calibrated, or by activation mass) rather than a uniform density.
func budgetPoint(q eval.SweepPoint) bool { return q.RequestedMLPDensity == 0 }

// sweepGroups splits the points by requested head setting, each sorted
// by computed MLP density.
func sweepGroups(sw *eval.Sweep) ([]headKey, map[headKey][]eval.SweepPoint) {
	g := map[headKey][]eval.SweepPoint{}
	var keys []headKey
	for _, q := range sw.Points {
		k := headKey{q.RequestedHeadDensity, q.RequestedHeadMass}
		if _, ok := g[k]; !ok {
			keys = append(keys, k)
		}
		g[k] = append(g[k], q)
	}
	for _, k := range keys {
		slices.SortFunc(g[k], func(a, b eval.SweepPoint) int { return cmp.Compare(a.MLPDensity, b.MLPDensity) })
	}
	return keys, g
}

// PlotSweep plots perplexity against the MLP density the sparse decode
// steps computed, one line per head-density setting, with the dense
// perplexity as a reference line. The perplexity axis is logarithmic when
// it spans more than a factor of 4.
func PlotSweep(sw *eval.Sweep) *plot.Plot {
	p := newPlot(fmt.Sprintf("Density vs perplexity: %s, %d tokens (%s)", filepath.Base(sw.Model), sw.Tokens, fileList(sw.Files)),
		"MLP density computed (fraction of neurons per decode step)", "perplexity (lower is better)")
	keys, g := sweepGroups(sw)
	lo, hi := sw.Dense.Perplexity, sw.Dense.Perplexity
	for i, k := range keys {
		var xys, cal plotter.XYs
		for _, q := range g[k] {
			if finite(q.Perplexity) {
				xy := plotter.XY{X: q.MLPDensity, Y: q.Perplexity}
				if budgetPoint(q) {
					cal = append(cal, xy)
				} else {
					xys = append(xys, xy)
				}
				lo, hi = min(lo, q.Perplexity), max(hi, q.Perplexity)
			}
		}
		if len(xys) > 0 {
			series(p, i, headLabel(k, g[k])+", uniform MLP density", xys)
		}
		if len(cal) > 0 {
			points(p, i, headLabel(k, g[k])+", per-layer MLP budgets (calibrated or mass)", cal)
		}
	}
	hline(p, fmt.Sprintf("dense (perplexity %.2f)", sw.Dense.Perplexity), sw.Dense.Perplexity, 0, 1)
	p.X.Min, p.X.Max = 0, 1.02
	if hi/lo > 2 {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = logTicks{}
		p.Y.Label.Text += ", log scale"
		p.Y.Min, p.Y.Max = lo*0.9, hi*math.Pow(hi/lo, 0.3) // headroom for the legend
	} else {
		p.Y.Min = lo * 0.95
		p.Y.Max = hi * 1.15
		p.Y.Tick.Marker = niceTicks{8}
	}
	p.X.Tick.Marker = fracTicks{}
	p.Legend.Top = true
	return p
}

// PlotSweepAgreement plots the top-1 agreement with dense and the mean KL
// divergence (scaled into [0, 1] by its maximum, named in the legend)
// against the computed MLP density.
func PlotSweepAgreement(sw *eval.Sweep) *plot.Plot {
	p := newPlot(fmt.Sprintf("Sparse vs dense next-token distributions: %s, %d tokens (▲: per-layer MLP budgets)", filepath.Base(sw.Model), sw.Tokens),
		"MLP density computed (fraction of neurons per decode step)", "top-1 agreement, exp(-mean KL) (fraction)")
	keys, g := sweepGroups(sw)
	for m, metric := range []struct {
		name string
		f    func(eval.SweepPoint) float64
	}{
		{"top-1 agreement", func(q eval.SweepPoint) float64 { return q.Top1Agreement }},
		{"exp(-mean KL(dense‖sparse))", func(q eval.SweepPoint) float64 { return math.Exp(-q.KLMean) }},
	} {
		for i, k := range keys {
			var xys, cal plotter.XYs
			for _, q := range g[k] {
				xy := plotter.XY{X: q.MLPDensity, Y: metric.f(q)}
				if budgetPoint(q) {
					cal = append(cal, xy)
				} else {
					xys = append(xys, xy)
				}
			}
			st := m*len(keys) + i
			if len(xys) > 0 {
				series(p, st, metric.name+", "+headLabel(k, g[k]), xys)
			}
			if len(cal) > 0 {
				points(p, st, "", cal)
			}
		}
	}
	p.X.Min, p.X.Max = 0, 1.02
	p.Y.Min, p.Y.Max = 0, 1.35
	p.Y.Tick.Marker = fracTicks{}
	p.X.Tick.Marker = fracTicks{}
	p.Legend.Top = true
	p.Legend.Left = true
	return p
}

// LatencySet is a named group of `dejavu bench` results, e.g. one file.
type LatencySet struct {
	Name    string
	Results []bench.Result
}

// PlotLatency plots decode latency (median ms/token, bars to the p90)
// against the MLP density of `dejavu bench` runs: one line per set, model,
// dtype and thread count.
func PlotLatency(sets []LatencySet) *plot.Plot {
	p := newPlot("Decode latency vs density", "MLP density (fraction of neurons per decode step)", "decode latency (ms/token, median; bar to p90)")
	type key struct {
		set, model, dtype string
		threads           int
	}
	g := map[key][]bench.Result{}
	var keys []key
	for _, s := range sets {
		for _, r := range s.Results {
			k := key{s.Name, filepath.Base(r.Model), r.DType, r.Threads}
			if _, ok := g[k]; !ok {
				keys = append(keys, k)
			}
			g[k] = append(g[k], r)
		}
	}
	yMax := 0.0
	for i, k := range keys {
		pts := g[k]
		slices.SortFunc(pts, func(a, b bench.Result) int { return cmp.Compare(a.MLPDensity, b.MLPDensity) })
		e := xyErr{}
		heads := map[float64]bool{}
		for _, r := range pts {
			e.XYs = append(e.XYs, plotter.XY{X: r.MLPDensity, Y: r.DecodeMsMedian})
			e.lo = append(e.lo, 0)
			e.hi = append(e.hi, max(0, r.DecodeMsP90-r.DecodeMsMedian))
			heads[math.Round(r.HeadDensity*100)/100] = true
			yMax = max(yMax, r.DecodeMsP90, r.DecodeMsMedian)
		}
		name := fmt.Sprintf("%s %s, %d threads", k.model, k.dtype, k.threads)
		if k.set != "" {
			name = k.set + ": " + name
		}
		if len(heads) == 1 {
			for h := range heads {
				name += fmt.Sprintf(", head density %.2g", h)
			}
		} else {
			name += ", head density varies"
		}
		series(p, i, name, e.XYs)
		errorBars(p, i, e)
	}
	p.X.Min, p.X.Max = 0, 1.02
	p.Y.Min, p.Y.Max = 0, yMax*1.3
	p.Y.Tick.Marker = niceTicks{8}
	p.X.Tick.Marker = fracTicks{}
	p.Legend.Top = true
	p.Legend.Left = true
	return p
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func fileList(files []string) string {
	b := make([]string, len(files))
	for i, f := range files {
		b[i] = filepath.Base(f)
	}
	return strings.Join(b, ", ")
}

// niceTicks labels about n evenly spaced ticks at 1, 2 or 5 × 10^k steps.
type niceTicks struct{ n int }

func (t niceTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(hi > lo) {
		return plot.DefaultTicks{}.Ticks(lo, hi)
	}
	raw := (hi - lo) / float64(max(t.n, 2))
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	prec := max(0, -int(math.Floor(math.Log10(step)+1e-9)))
	var out []plot.Tick
	for v := math.Ceil(lo/step-1e-9) * step; v <= hi+step*1e-9; v += step {
		if math.Abs(v) < step*1e-9 {
			v = 0 // not -0
		}
		out = append(out, plot.Tick{Value: v, Label: fmt.Sprintf("%.*f", prec, v)})
	}
	return out
}

// fracTicks labels 0 … 1 in steps of 0.1 only (room above for a legend).
type fracTicks struct{}

func (fracTicks) Ticks(lo, hi float64) []plot.Tick {
	var out []plot.Tick
	for i := 0; i <= 10; i++ {
		v := float64(i) / 10
		if v >= lo-1e-9 && v <= hi+1e-9 {
			out = append(out, plot.Tick{Value: v, Label: fmt.Sprintf("%.1f", v)})
		}
	}
	return out
}

// logTicks labels 1, 2, 5 × 10^k (or more or fewer multiples to keep
// between 4 and 12 labels) on a logarithmic axis.
type logTicks struct{}

func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	var out []plot.Tick
	for _, ms := range [][]float64{{1, 1.5, 2, 3, 4, 5, 6, 8}, {1, 2, 3, 5}, {1, 2, 5}, {1}} {
		out = out[:0]
		for k := math.Floor(math.Log10(lo)); k <= math.Ceil(math.Log10(hi)); k++ {
			for _, m := range ms {
				v := m * math.Pow(10, k)
				if v >= lo*(1-1e-9) && v <= hi*(1+1e-9) {
					out = append(out, plot.Tick{Value: v, Label: fmt.Sprintf("%g", v)})
				}
			}
		}
		if len(out) <= 12 {
			break
		}
	}
	return out
}
