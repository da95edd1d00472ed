package cuda

import (
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"testing"
	"unsafe"

	"dejavu/kernels"
)

// TestTimeline prints, for one replayed decode step of each synthetic
// shape in DEJAVU_CUDA_TIMELINE (dense, random 10%/50%, predicted with a
// threshold and q8_0 MLP predictors as in TestPredictedDecode), when each
// kernel's first block started and when its PDL wait ended, from the
// marks that PTX compiled with -DDEJAVU_TL records (cuda/kernels/dejavu.cu;
// DEJAVU_PTX must point at such PTX). The gaps between the wait ends of
// the main stream's kernels are the step's critical path, kernel by
// kernel.
func TestTimeline(t *testing.T) {
	d, shapes := synthShapes(t, "DEJAVU_CUDA_TIMELINE")
	var buf, cnt uint64
	err := d.do(func() error {
		var sz uint64
		n1, n2 := append([]byte("dejavu_tl"), 0), append([]byte("dejavu_tl_n"), 0)
		if r := drv.cuModuleGetGlobal(&buf, &sz, d.mod, &n1[0]); r != 0 {
			return fmt.Errorf("no dejavu_tl in the PTX (compile with -DDEJAVU_TL): %s", errName(drv, r))
		}
		return check("cuModuleGetGlobal", drv.cuModuleGetGlobal(&cnt, &sz, d.mod, &n2[0]))
	})
	if err != nil {
		t.Skip(err)
	}
	for _, sh := range shapes {
		name, c := sh.name, sh.cfg
		g, err := d.SyntheticDType(c, 1, kernels.F16)
		if err != nil {
			t.Fatal(err)
		}
		s, err := g.NewSession(256)
		if err != nil {
			t.Fatal(err)
		}
		thr := synthThreshold(c.Hidden, 256, 1.2816)
		modes := []string{"dense", "random", "predicted"}
		// e.g. dense,0.22/1: predicted at those MLP / head densities; auto:
		// MLP predictors of the automatic rank; -layer: of the layer input.
		if v := os.Getenv("DEJAVU_CUDA_TL_MODES"); v != "" {
			modes = strings.Split(v, ",")
		}
		for _, mode := range modes {
			var fm, fh float64
			switch _, perr := fmt.Sscanf(mode, "%g/%g", &fm, &fh); {
			case mode == "dense":
			case mode == "random":
				s.SetRandomSparse(0.1, 0.5, 7)
			case mode == "predicted", mode == "predicted-layer":
				if err := s.setSyntheticPredictorsQ(256, 64, 0.1, 0.5, thr, true); err != nil {
					t.Fatal(err)
				}
			case mode == "auto", mode == "auto-layer":
				if err := s.setAutoRankPredictors(kernels.F16); err != nil {
					t.Fatal(err)
				}
			case perr == nil && fm > 0 && fm < 1 && fh > 0 && fh <= 1:
				z := math.Sqrt2 * math.Erfinv(1-2*fm) // the upper-tail fraction fm of a normal
				if err := s.setSyntheticPredictorsQ(256, 64, fm, fh, synthThreshold(c.Hidden, 256, z), true); err != nil {
					t.Fatal(err)
				}
			default:
				t.Fatalf("DEJAVU_CUDA_TL_MODES: %q is not dense, random, predicted[-layer], auto[-layer] or mlp/heads densities", mode)
			}
			if s.sparse != nil && s.sparse.pred != nil { // "-layer": the MLP predicted from the layer input (v20)
				s.sparse.pred.layerIn = strings.HasSuffix(mode, "-layer")
			}
			if err := s.dropGraphs(); err != nil {
				t.Fatal(err)
			}
			tm, err := TimeDecode(s, 16, 8)
			if err != nil {
				t.Fatal(err)
			}
			ids := make([]int, 16)
			for i := range ids {
				ids[i] = (i*7919 + 13) % c.Vocab
			}
			if _, err := s.Forward(ids, false); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 3; i++ { // capture, then replays
				if _, err := s.Forward([]int{1 + i}, false); err != nil {
					t.Fatal(err)
				}
			}
			var recs []uint64
			err = d.do(func() error {
				if err := zero(d, cnt, 1, "timeline count"); err != nil {
					return err
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Forward([]int{9}, false); err != nil {
				t.Fatal(err)
			}
			err = d.do(func() error {
				var n [1]uint32
				if err := check("timeline count", drv.cuMemcpyDtoH(unsafe.Pointer(&n[0]), cnt, 4)); err != nil {
					return err
				}
				m := min(int(n[0]), 65536)
				if m == 0 {
					return nil
				}
				recs = make([]uint64, 2*m)
				return check("timeline", drv.cuMemcpyDtoH(unsafe.Pointer(&recs[0]), buf, uint64(16*m)))
			})
			if err != nil {
				t.Fatal(err)
			}
			s.Reset()
			type rec struct{ t, tag uint64 }
			rs := make([]rec, len(recs)/2)
			for i := range rs {
				rs[i] = rec{recs[2*i], recs[2*i+1]}
			}
			sort.Slice(rs, func(i, j int) bool { return rs[i].t < rs[j].t })
			fmt.Printf("TIMELINE %s %s: %d marks, step %.3f ms (median of 8: %.3f)\n", name, mode, len(rs),
				float64(rs[len(rs)-1].t-rs[0].t)/1e6, tm.MedianMs)
			t0 := rs[0].t
			for _, r := range rs {
				gx, gy, bx := r.tag&(1<<20-1), r.tag>>20&(1<<16-1), r.tag>>36&(1<<12-1)
				ev, last := r.tag>>48&15, r.tag>>52&1
				what := fmt.Sprintf("mark%d", ev)
				if ev < 2 {
					what = [2]string{"start", "go"}[ev]
				}
				fmt.Printf("TL %s %s %9.2f us %-5s %s grid %dx%d block %d\n", name, mode, float64(r.t-t0)/1e3, what,
					[2]string{"first", "last"}[last], gx, gy, bx)
			}
		}
		s.Close()
		g.Close()
	}
}
