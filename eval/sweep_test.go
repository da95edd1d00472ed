package eval

import (
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestParseSweepSettings(t *testing.T) {
	got, err := ParseSweepSettings("mlp", []string{"0.5", " cal", "0", ""}, []string{"0.99", "cal"})
	if err != nil {
		t.Fatal(err)
	}
	want := []SweepSetting{{Density: 0.5}, {}, {}, {Mass: 0.99}, {}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("settings %+v, want %+v", got, want)
	}
	names := []string{"density 0.5", "cal", "cal", "mass 0.99", "cal"}
	for i, s := range got {
		if s.String() != names[i] {
			t.Errorf("%+v: name %q, want %q", s, s.String(), names[i])
		}
	}
	for _, bad := range [][2][]string{{{"1.5"}, nil}, {{"x"}, nil}, {nil, {"0"}}, {nil, {"-0.1"}}} {
		if _, err := ParseSweepSettings("head", bad[0], bad[1]); err == nil {
			t.Errorf("densities %q, masses %q accepted", bad[0], bad[1])
		}
	}
}

func TestParseOracleHeads(t *testing.T) {
	got, err := ParseOracleHeads([]string{"0.6", " 1", "8:5:5:4"}, 4, 8)
	if err != nil {
		t.Fatal(err)
	}
	want := []SweepSetting{{Oracle: []int{5, 5, 5, 4}}, {Oracle: []int{8, 8, 8, 8}}, {Oracle: []int{8, 5, 5, 4}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("oracle settings %+v, want %+v", got, want)
	}
	if s := got[0].String(); s != "oracle 5:5:5:4" {
		t.Errorf("name %q", s)
	}
	for _, bad := range []string{"0", "1.2", "x", "8:5:5", "8:5:5:9", "8:5:0:4"} {
		if _, err := ParseOracleHeads([]string{bad}, 4, 8); err == nil {
			t.Errorf("--head-oracle %q accepted", bad)
		}
	}
}

// TestSweepOracleHeads: oracle head settings in a sweep compute exactly
// their budgets (all heads: the dense result), and are refused in decode
// mode; MLP threshold settings run too.
func TestSweepOracleHeads(t *testing.T) {
	f, _ := loadFixture(t, "opt-preln")
	m, pool := loadTinyModel(t, "opt-preln")
	pred := tinyPredictors(t, m, pool)
	c := m.Cfg
	heads, err := ParseOracleHeads([]string{"1", "0.5"}, c.Layers, c.Heads)
	if err != nil {
		t.Fatal(err)
	}
	o := PerplexityOptions{Ctx: f.Ctx, BOS: f.BOS, MaxTokens: f.Ctx + 5}
	sw, err := RunSweep(m, pool, pred, f.IDs, []SweepSetting{{Density: 1}}, heads, o)
	if err != nil {
		t.Fatal(err)
	}
	all, half := sw.Points[0], sw.Points[1]
	if all.HeadDensity != 1 || relDiff(all.Perplexity, sw.Dense.Perplexity) > 1e-4 || all.Top1Agreement < 0.99 {
		t.Errorf("oracle with every head: %+v (dense %v)", all, sw.Dense.Perplexity)
	}
	if half.HeadDensity != 0.5 || half.MLPDensity != 1 || half.KLMean <= 0 || !strings.HasPrefix(half.HeadSetting, "oracle ") {
		t.Errorf("oracle with half the heads: %+v", half)
	}
	o.Decode = true
	if _, err := RunSweep(m, pool, pred, f.IDs, []SweepSetting{{Density: 1}}, heads, o); err == nil {
		t.Error("oracle heads ran in decode mode")
	}
	// Threshold settings: far below the calibrated thresholds every neuron
	// is selected.
	o.Decode = false
	sw, err = RunSweep(m, pool, pred, f.IDs, []SweepSetting{{Threshold: "auto-1000"}, {Threshold: "auto"}}, heads[:1], o)
	if err != nil {
		t.Fatal(err)
	}
	if p := sw.Points[0]; p.MLPSetting != "threshold auto-1000" || p.MLPDensity != 1 || relDiff(p.Perplexity, sw.Dense.Perplexity) > 1e-4 {
		t.Errorf("threshold auto-1000: %+v", p)
	}
	if p := sw.Points[1]; p.MLPDensity >= 1 {
		t.Errorf("threshold auto: %+v", p)
	}
}

// TestRunSweep checks the decode-mode sweep: with every neuron and head
// selected it reproduces the dense perplexity and argmax; with a quarter of
// the neurons it reports that density and a different perplexity; mass
// targets and the calibrated budgets run as per-layer budgets, recorded
// with the point.
func TestRunSweep(t *testing.T) {
	f, _ := loadFixture(t, "opt-preln")
	m, pool := loadTinyModel(t, "opt-preln")
	pred := tinyPredictors(t, m, pool)
	mlps := []SweepSetting{{Density: 1}, {Density: 0.25}, {Mass: 0.9}, {Mass: 1}, {}}
	heads := []SweepSetting{{Density: 1}, {Mass: 0.9}}
	o := PerplexityOptions{Ctx: f.Ctx, BOS: f.BOS, MaxTokens: 2*f.Ctx + 5}
	sw, err := RunSweep(m, pool, pred, f.IDs, mlps, heads, o)
	if err != nil {
		t.Fatal(err)
	}
	dense, err := Perplexity(m.NewSession(pool, 0), f.IDs, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(sw.Points) != len(mlps)*len(heads) || sw.Tokens != dense.Tokens || sw.Ctx != f.Ctx || sw.Protocol != Windows ||
		relDiff(sw.Dense.Perplexity, dense.Perplexity) > 1e-4 {
		t.Fatalf("sweep %+v, dense %+v", sw, dense)
	}
	pt := func(h, d int) SweepPoint { return sw.Points[h*len(mlps)+d] }
	if p := pt(0, 0); p.MLPSetting != "density 1" || p.HeadSetting != "density 1" || p.MLPDensity != 1 || p.HeadDensity != 1 ||
		relDiff(p.Perplexity, sw.Dense.Perplexity) > 1e-4 || p.KLMax > 1e-6 || p.Top1Agreement < 0.99 {
		t.Errorf("all selected: %+v", p)
	}
	if p := pt(0, 1); p.MLPDensity != 0.25 || p.HeadDensity != 1 || p.Perplexity == sw.Dense.Perplexity || p.KLMean <= 0 {
		t.Errorf("quarter of the neurons: %+v", p)
	}
	for h := range heads {
		lo, hi, cal := pt(h, 2), pt(h, 3), pt(h, 4)
		if lo.RequestedMLPMass != 0.9 || lo.MLPSetting != "mass 0.9" || cal.MLPSetting != "cal" || cal.RequestedMLPMass != 0 {
			t.Errorf("settings not recorded: %+v / %+v", lo, cal)
		}
		for l := range lo.MLPBudgets {
			if lo.MLPBudgets[l] > hi.MLPBudgets[l] || hi.MLPBudgets[l] > m.Cfg.FFN {
				t.Errorf("mass budgets %v (0.9) vs %v (1)", lo.MLPBudgets, hi.MLPBudgets)
			}
		}
		if len(lo.MLPBudgets) != m.Cfg.Layers || lo.MLPDensity > hi.MLPDensity || math.IsNaN(lo.Perplexity) {
			t.Errorf("mass points %+v / %+v", lo, hi)
		}
	}
	// Head budgets: layers 1…, the lookahead from the layer before.
	if p := pt(1, 0); p.HeadSetting != "mass 0.9" || p.RequestedHeadMass != 0.9 || len(p.HeadBudgets) != m.Cfg.Layers-1 || p.HeadDensity > 1 {
		t.Errorf("head mass point %+v", p)
	}
	if _, err := RunSweep(m, pool, pred, f.IDs, nil, heads, o); err == nil {
		t.Error("a sweep without MLP settings ran")
	}
}
