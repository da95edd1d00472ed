package cuda

import (
	"fmt"
	"testing"
)

// TestSparseKnobs times dense and random sparse decode (10% MLP / 50%
// heads, prompt 16; best median of two 64-step runs) under the tuning
// knobs, in one process: accum_rows without batched rows and with the grid
// rounded up (v11), nothing loaded before the PDL waits (v17), each of
// v18's early loads alone, the defaults and the up GEMV at two warps a
// row, with v17 and the defaults repeated at the end; then predicted
// decoding (random predictors with thresholds), v17 and the defaults
// alternated (DEJAVU_CUDA_SCALING names the shapes). docs/gpu.md, v12, v17
// and v18.
func TestSparseKnobs(t *testing.T) {
	d, shapes := synthShapes(t, "DEJAVU_CUDA_SCALING")
	for _, sh := range shapes {
		name, c := sh.name, sh.cfg
		g, err := d.Synthetic(c, 1)
		if err != nil {
			t.Fatal(err)
		}
		s, err := g.NewSession(512)
		if err != nil {
			t.Fatal(err)
		}
		run := func(what string) float64 {
			if err := s.dropGraphs(); err != nil {
				t.Fatal(err)
			}
			best := 1e9
			for r := 0; r < 2; r++ {
				tm, err := TimeDecode(s, 16, 64)
				if err != nil {
					t.Fatal(err)
				}
				best = min(best, tm.MedianMs)
			}
			fmt.Printf("%-9s KNOB %-36s median %7.3f ms/token\n", name, what, best)
			return best
		}
		type knob struct {
			what       string
			set, reset func()
		}
		def := func() {
			d.chain, d.accBatch, d.accFloor, d.accumMul, d.upWPR, d.accEarly, d.kvHeads, d.joinAt = false, true, true, 0, 0, true, true, 0
		}
		v17 := func() { d.accEarly, d.kvHeads = false, false }
		knobs := []knob{
			{"v11 (no batch, no floor)", func() { v17(); d.accBatch, d.accFloor = false, false }, def},
			{"v17 (nothing before the PDL waits)", v17, def},
			{"v18 accum_rows' rows early only", func() { d.kvHeads = false }, def},
			{"v18 qkv_defer's heads early only", func() { d.accEarly = false }, def},
			{"defaults (v18)", func() {}, func() {}},
			{"defaults, up 2 warps/row", func() { d.upWPR = 2 }, def},
			{"v17 again", v17, def},
			{"defaults again", func() {}, func() {}},
		}
		res := map[string]float64{}
		for _, mode := range []string{"dense", "sparse"} {
			if mode == "sparse" {
				s.SetRandomSparse(0.1, 0.5, 7)
			}
			for _, k := range knobs {
				k.set()
				res[mode+" "+k.what] = run(mode + " " + k.what)
				k.reset()
			}
			if prof, err := ProfileDecode(s); err == nil {
				fmt.Printf("%s %s step, kernels timed one by one:\n%s", name, mode, prof)
			}
		}
		thr := synthThreshold(c.Hidden, 256, 1.2816)
		if err := s.setSyntheticPredictorsThr(256, 64, 0.1, 0.5, thr); err != nil {
			t.Fatal(err)
		}
		// joinAt counts decodeKernels' steps of a layer: 5 is the MLP
		// predictor's, 7 the down projection's.
		for _, k := range []knob{
			{"predicted thr, v17", v17, def},
			{"predicted thr, defaults (v18)", func() {}, func() {}},
			{"predicted thr, join before the down projection", func() { d.joinAt = 7 }, def},
			{"predicted thr, join before the MLP", func() { d.joinAt = 5 }, def},
			{"predicted thr, v17 again", v17, def},
			{"predicted thr, defaults again", func() {}, func() {}},
			{"predicted thr, join before the down projection again", func() { d.joinAt = 7 }, def},
		} {
			k.set()
			v := run(k.what)
			k.reset()
			fmt.Printf("%-9s KNOB SUMMARY %-40s %.3f: %.2f× dense\n", name, k.what, v, res["dense defaults (v18)"]/v)
		}
		for _, k := range knobs {
			fmt.Printf("%-9s KNOB SUMMARY %-28s dense %.3f sparse %.3f: %.2f×\n", name, k.what, res["dense "+k.what], res["sparse "+k.what],
				res["dense "+k.what]/res["sparse "+k.what])
		}
		s.Close()
		g.Close()
	}
}
