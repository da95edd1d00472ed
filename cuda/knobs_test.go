package cuda

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"dejavu/model"
)

// TestSparseKnobs times dense and random sparse decode (10% MLP / 50%
// heads, prompt 16; best median of two 64-step runs) under the v12 tuning
// knobs, in one process: before (no chained norms, accum_rows without
// batched rows, grid rounded up), each change, the default, and a few
// grid sizes, with the baseline repeated at the end (DEJAVU_CUDA_SCALING
// names the shapes). docs/gpu.md, v12.
func TestSparseKnobs(t *testing.T) {
	names := os.Getenv("DEJAVU_CUDA_SCALING")
	if names == "" {
		t.Skip("cuda: DEJAVU_CUDA_SCALING is not set")
	}
	d := gpu(t)
	for _, name := range strings.Split(names, ",") {
		c, err := model.SyntheticConfig(name)
		if err != nil {
			t.Fatal(err)
		}
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
		off := func() { d.chain, d.accBatch, d.accFloor = false, false, false }
		on := func() { d.chain, d.accBatch, d.accFloor = true, true, true }
		knobs := []knob{
			{"before (no chain, batch, floor)", off, on},
			{"chain + batch, no floor", func() { d.accFloor = false }, on},
			{"after (chain + batch + floor)", func() {}, func() {}},
			{"after, accum 3·SMs", func() { d.accumMul = 3 }, func() { d.accumMul = 0 }},
			{"after, accum 5·SMs", func() { d.accumMul = 5 }, func() { d.accumMul = 0 }},
			{"after, up 2 warps/row", func() { d.upWPR = 2 }, func() { d.upWPR = 0 }},
			{"before again", off, on},
			{"after again", func() {}, func() {}},
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
				fmt.Printf("%s %s step (chain), kernels timed one by one:\n%s", name, mode, prof)
			}
		}
		thr := synthThreshold(c.Hidden, 256, 1.2816)
		if err := s.setSyntheticPredictorsThr(256, 64, 0.1, 0.5, thr); err != nil {
			t.Fatal(err)
		}
		for _, k := range []knob{
			{"predicted thr, norms as kernels", func() {}, func() {}},
			{"predicted thr, chained (double-buffered)", func() { d.chainStd = true }, func() { d.chainStd = false }},
			{"predicted thr, norms as kernels again", func() {}, func() {}},
			{"predicted thr, chained again", func() { d.chainStd = true }, func() { d.chainStd = false }},
		} {
			k.set()
			v := run(k.what)
			k.reset()
			fmt.Printf("%-9s KNOB SUMMARY %-40s %.3f: %.2f× dense\n", name, k.what, v, res["dense after (chain + batch + floor)"]/v)
		}
		for _, k := range knobs {
			fmt.Printf("%-9s KNOB SUMMARY %-28s dense %.3f sparse %.3f: %.2f×\n", name, k.what, res["dense "+k.what], res["sparse "+k.what],
				res["dense "+k.what]/res["sparse "+k.what])
		}
		s.Close()
		g.Close()
	}
}
