package cuda

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"testing"

	"dejavu/kernels"
	"dejavu/model"
)

// TestAttnSplit: decode attention split over the positions (attn_split,
// merged by its last block or by attn_combine, several split counts) gives
// the logits of the one-block kernel, dense and with selected heads, on
// fixtures with grouped heads and a head_dim of 32.
func TestAttnSplit(t *testing.T) {
	d := gpu(t)
	defer func(m, sp int) { d.attnMode, d.splits = m, sp }(d.attnMode, d.splits)
	for _, name := range []string{"opt-preln", "llama-relu-sharded", "mistral-headdim"} {
		m, g := upload(t, d, "../testdata/models/"+name)
		s, err := g.NewSession(0)
		if err != nil {
			t.Fatal(err)
		}
		V := m.Cfg.Vocab
		ids := make([]int, 50)
		for i := range ids {
			ids[i] = (i*37 + 5) % V
		}
		run := func(mode, splits int, sparse bool) []float32 {
			d.attnMode, d.splits = mode, splits
			if err := s.dropGraphs(); err != nil {
				t.Fatal(err)
			}
			s.Reset()
			if sparse {
				s.SetRandomSparse(1, 0.5, 3)
			} else {
				s.SetRandomSparse(0, 0, 0)
			}
			if _, err := s.Forward(ids[:5], false); err != nil {
				t.Fatal(err)
			}
			var out []float32
			for _, id := range ids[5:] {
				row, err := s.Forward([]int{id}, false)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, row...)
			}
			return out
		}
		for _, sparse := range []bool{false, true} {
			want := run(attnLegacy, 0, sparse)
			for _, v := range []struct{ mode, splits int }{{attnSplit, 0}, {attnSplit, 1}, {attnSplit, 3}, {attnSplit, 7}, {attnSplitCombine, 0}, {attnSplitCombine, 5}} {
				got := run(v.mode, v.splits, sparse)
				e := rowErr(got, want, V)
				t.Logf("%-20s sparse=%-5v mode %d splits %d (%d): rel.err vs one block %.2e", name, sparse, v.mode, v.splits, s.splits(), e)
				if e > 1e-5 {
					t.Errorf("%s sparse=%v mode %d splits %d: rel.err %.3g", name, sparse, v.mode, v.splits, e)
				}
			}
		}
		s.Close()
		g.Close()
		m.Close()
	}
}

// TestAttnPrompt: prompt attention in tiles of queries (attn_prompt_tc on
// the tensor cores, the default, and attn_prompt in f32) gives the logits
// of one block a query (attention), on the fixtures (GQA, head dimensions
// 16 and 32, a prompt after a prompt), with a sliding window imposed, and
// on an opt-125m shape over 600 positions in two batches (many tiles, a
// batch starting at 7 and at 519).
func TestAttnPrompt(t *testing.T) {
	d := gpu(t)
	defer func(v int) { d.attnPrompt = v }(d.attnPrompt)
	check := func(name string, g *Model, ids []int, split int) {
		t.Helper()
		V := g.Cfg.Vocab
		s, err := g.NewSession(0)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		run := func(mode int) []float32 {
			d.attnPrompt = mode
			s.Reset()
			if _, err := s.Forward(ids[:split], false); err != nil {
				t.Fatal(err)
			}
			got, err := s.Forward(ids[split:], len(ids) <= 64)
			if err != nil {
				t.Fatal(err)
			}
			return slices.Clone(got)
		}
		want := run(apBlock)
		for _, mode := range []int{apTiles, apTC} {
			e := rowErr(run(mode), want, V)
			k, _, _, _ := d.promptKernel(g.Cfg.HeadDim)
			t.Logf("%-28s %d + %d tokens: rel.err %s vs a block a query %.2e", name, split, len(ids)-split, k, e)
			// f32 tiles: the attention outputs differ in rounding (attnPromptCase: ~1e-7), then rounded to 16
			// bits for the GEMMs after them; tensor cores: queries, keys, probabilities and values in f16 too
			// (~1e-3 of an output), which a bf16 model's rounding of the activations after it amplifies.
			tol := map[int]float64{apTiles: 5e-3, apTC: fixtureTol}[mode]
			if mode == apTC && g.BF16() {
				tol = bf16Tol
			}
			if e > tol {
				t.Errorf("%s: %s's logits differ from attention's by %.3g", name, k, e)
			}
		}
	}
	for _, c := range []struct{ H, KVH, hd, n, p0, window int }{
		{8, 2, 64, 300, 37, 0}, {8, 2, 64, 300, 37, 50}, {4, 4, 128, 70, 0, 0}, {6, 3, 32, 33, 500, 7}, {2, 1, 256, 17, 3, 0},
		{4, 2, 80, 45, 10, 0}, {3, 3, 20, 40, 5, 3}, {4, 2, 16, 130, 0, 0}, {2, 2, 128, 200, 300, 20},
	} {
		attnPromptCase(t, d, c.H, c.KVH, c.hd, c.n, c.p0, c.window)
	}
	for _, name := range []string{"opt-preln", "llama-relu-sharded", "mistral-headdim"} {
		m, g := upload(t, d, "../testdata/models/"+name)
		ids := make([]int, 60)
		for i := range ids {
			ids[i] = (i*37 + 5) % m.Cfg.Vocab
		}
		check(name, g, ids, 7)
		g.Cfg.Window = 9
		check(name+" window 9", g, ids, 7)
		g.Close()
		m.Close()
	}
	c, err := model.SyntheticConfig("opt-125m")
	if err != nil {
		t.Fatal(err)
	}
	g, err := d.Synthetic(c, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	ids := make([]int, 607)
	for i := range ids {
		ids[i] = (i*7919 + 13) % c.Vocab
	}
	check("opt-125m", g, ids, 7)
	g.Cfg.Window = 100
	check("opt-125m window 100", g, ids, 7)
}

// attnPromptCase runs attn_prompt, attn_prompt_tc (where the head
// dimension allows it) and attention on the same random queries and cache
// (H heads over KVH key/value heads of hd, n queries from position p0,
// window) and compares their outputs.
func attnPromptCase(t *testing.T, d *Device, H, KVH, hd, n, p0, window int) {
	t.Helper()
	const maxCtx = 600
	ld := (H + 2*KVH) * hd
	r := rand.New(rand.NewPCG(uint64(n), uint64(hd)))
	rnd := func(k int) []float32 {
		v := make([]float32, k)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		return v
	}
	qkv, kc, vc := rnd(n*ld), rnd(KVH*maxCtx*hd), rnd(KVH*maxCtx*hd)
	tc := hd%16 == 0 && hd <= aptD
	want, got, gotTC := make([]float32, n*H*hd), make([]float32, n*H*hd), make([]float32, n*H*hd)
	scale := float32(1 / math.Sqrt(float64(hd)))
	err := d.do(func() error {
		var ps [7]uint64
		for i, k := range []int{len(qkv), len(kc), len(vc), 1, len(want), len(got), len(gotTC)} {
			p, err := d.alloc(int64(4*k), "attention test")
			if err != nil {
				return err
			}
			defer free(p)
			ps[i] = p
		}
		for i, v := range [][]float32{qkv, kc, vc} {
			if err := htod(d, ps[i], v, "attention test"); err != nil {
				return err
			}
		}
		if err := htod(d, ps[3], []int32{int32(p0)}, "position"); err != nil {
			return err
		}
		if err := d.launch("attention", [3]int{n, H, 1}, [3]int{128, 1, 1}, 4*(5*hd+33+maxCtx), ps[0], ld, ps[1], ps[2], ps[4], H*hd,
			H, KVH, hd, maxCtx, window, scale, ps[3], uint64(0), uint64(0)); err != nil {
			return err
		}
		if err := d.launch("attn_prompt", [3]int{blocks(n, apQ), H, 1}, [3]int{128, 1, 1}, attnPromptSmem(hd),
			ps[0], ld, ps[1], ps[2], ps[5], H*hd, H, KVH, hd, maxCtx, window, scale, ps[3], n); err != nil {
			return err
		}
		if tc {
			if err := d.launch("attn_prompt_tc", [3]int{blocks(n, aptQ), H, 1}, [3]int{256, 1, 1}, attnPromptTCSmem(hd),
				ps[0], ld, ps[1], ps[2], ps[6], H*hd, H, KVH, hd, maxCtx, window, scale, ps[3], n); err != nil {
				return err
			}
			if err := dtoh(d, gotTC, ps[6], "attn_prompt_tc"); err != nil {
				return err
			}
		}
		if err := dtoh(d, want, ps[4], "attention"); err != nil {
			return err
		}
		return dtoh(d, got, ps[5], "attn_prompt")
	})
	if err != nil {
		t.Fatal(err)
	}
	diff := func(got []float32) (worst, top float64) {
		for i := range want {
			worst = max(worst, math.Abs(float64(got[i]-want[i])))
			top = max(top, math.Abs(float64(want[i])))
		}
		return worst, top
	}
	worst, top := diff(got)
	t.Logf("attn_prompt    H %d KVH %d hd %3d, %3d queries from %3d, window %2d: max |Δ| %.2e of max %.2f", H, KVH, hd, n, p0, window, worst, top)
	if worst > 1e-5*max(1, top) {
		t.Errorf("attn_prompt H %d KVH %d hd %d n %d p0 %d window %d: outputs differ from attention's by %.3g", H, KVH, hd, n, p0, window, worst)
	}
	if !tc {
		return
	}
	// f16 operands: queries and keys rounded to 2⁻¹¹ of their size move a
	// score by ~1e-3·‖q‖‖k‖·scale, probabilities and values add as much.
	worst, top = diff(gotTC)
	t.Logf("attn_prompt_tc H %d KVH %d hd %3d, %3d queries from %3d, window %2d: max |Δ| %.2e of max %.2f", H, KVH, hd, n, p0, window, worst, top)
	if worst > 1e-2*max(1, top) {
		t.Errorf("attn_prompt_tc H %d KVH %d hd %d n %d p0 %d window %d: outputs differ from attention's by %.3g", H, KVH, hd, n, p0, window, worst)
	}
}

// selectCase runs one selection kernel on z and checks it against the
// host: top-k takes exactly min(k, n) indices, none below an unselected
// one; a threshold takes exactly those above it.
func selectCase(t *testing.T, d *Device, z []float32, k int, thr float32, useThr bool, kernel string) {
	t.Helper()
	n := len(z)
	var got []int32
	var cnt [1]int32
	err := d.do(func() error {
		zp, err := d.alloc(int64(4*n), "z")
		if err != nil {
			return err
		}
		defer free(zp)
		op, err := d.alloc(int64(4*n), "out")
		if err != nil {
			return err
		}
		defer free(op)
		cp, err := d.alloc(4, "count")
		if err != nil {
			return err
		}
		defer free(cp)
		ws, err := d.alloc(4*selectWords, "ws")
		if err != nil {
			return err
		}
		defer free(ws)
		if err := zero(d, ws, selectWords, "ws"); err != nil {
			return err
		}
		if err := htod(d, zp, z, "z"); err != nil {
			return err
		}
		ut := 0
		if useThr {
			ut = 1
		}
		for rep := 0; rep < 3; rep++ { // the workspace must be left zeroed
			switch kernel {
			case "select_multi":
				g := d.selectGrid(n)
				err = d.launch(kernel, [3]int{g, 1, 1}, [3]int{512, 1, 1}, 4*blocks(n, g), zp, n, k, thr, ut, op, cp, ws)
			case "select_fast":
				g := d.selectGrid(n)
				err = d.launch(kernel, [3]int{g, 1, 1}, [3]int{512, 1, 1}, 4*n, zp, n, k, thr, ut, op, cp, ws)
			case "select_small":
				err = d.launch(kernel, [3]int{1, 1, 1}, [3]int{blocks(n, 32) * 32, 1, 1}, 4*n, zp, n, k, thr, ut, op, cp)
			}
			if err != nil {
				return err
			}
		}
		if err := dtoh(d, cnt[:], cp, "count"); err != nil {
			return err
		}
		if cnt[0] <= 0 || int(cnt[0]) > n {
			return nil
		}
		got = make([]int32, cnt[0])
		return dtoh(d, got, op, "out")
	})
	if err != nil {
		t.Fatal(err)
	}
	c := int(cnt[0])
	what := fmt.Sprintf("%s n=%d k=%d thr=%v(%v)", kernel, n, k, thr, useThr)
	if c < 0 || c > n {
		t.Fatalf("%s: count %d", what, c)
	}
	taken := make([]bool, n)
	for _, i := range got {
		if i < 0 || int(i) >= n || taken[i] {
			t.Fatalf("%s: bad or repeated index %d", what, i)
		}
		taken[i] = true
	}
	if useThr {
		for i, v := range z {
			if (v > thr) != taken[i] {
				t.Fatalf("%s: index %d (%v) taken=%v", what, i, v, taken[i])
			}
		}
		return
	}
	if want := max(0, min(k, n)); c != want {
		t.Fatalf("%s: count %d, want %d", what, c, want)
	}
	minIn, maxOut := float32(math.Inf(1)), float32(math.Inf(-1))
	for i, v := range z {
		if taken[i] {
			minIn = min(minIn, v)
		} else {
			maxOut = max(maxOut, v)
		}
	}
	if c > 0 && c < n && minIn < maxOut {
		t.Fatalf("%s: a taken value %v is below an untaken %v", what, minIn, maxOut)
	}
}

// TestSelect checks select_multi, select_fast and select_small against the host on
// random logits (with and without many ties, negative values), every k
// from 0 to past n, and thresholds.
func TestSelect(t *testing.T) {
	d := gpu(t)
	rng := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{1, 7, 32, 40, 100, 1000, 1025, 1500, 5000, 16384, 20480, 50000} {
		for _, ties := range []bool{false, true} {
			z := make([]float32, n)
			for i := range z {
				v := rng.NormFloat64() * 2
				if ties {
					v = math.Round(v*4) / 4
				}
				z[i] = float32(v)
			}
			ks := []int{0, 1, n / 10, n / 2, n - 1, n, n + 3}
			kernels := []string{"select_multi", "select_fast"}
			if n <= 1024 {
				kernels = append(kernels, "select_small")
			}
			for _, kern := range kernels {
				for _, k := range ks {
					selectCase(t, d, z, k, 0, false, kern)
				}
				selectCase(t, d, z, 0, 0.5, true, kern)
				selectCase(t, d, z, 0, -1.25, true, kern)
			}
		}
	}
}

// timeKernel is the mean time of one launch of f (after warm-up), from
// events around 200 launches in a captured graph.
func timeKernel(d *Device, f func() error) (float64, error) {
	var us float64
	err := d.do(func() error {
		for i := 0; i < 3; i++ {
			if err := f(); err != nil {
				return err
			}
		}
		if err := check("cuStreamBeginCapture", drv.cuStreamBeginCapture(d.stream, 1)); err != nil {
			return err
		}
		var ferr error
		for i := 0; i < 200 && ferr == nil; i++ {
			ferr = f()
		}
		var graph, exec uintptr
		if err := check("cuStreamEndCapture", drv.cuStreamEndCapture(d.stream, &graph)); err != nil {
			return err
		}
		defer drv.cuGraphDestroy(graph)
		if ferr != nil {
			return ferr
		}
		if err := check("cuGraphInstantiate", drv.cuGraphInstantiateWithFlags(&exec, graph, 0)); err != nil {
			return err
		}
		defer drv.cuGraphExecDestroy(exec)
		var e0, e1 uintptr
		drv.cuEventCreate(&e0, 0)
		drv.cuEventCreate(&e1, 0)
		defer drv.cuEventDestroy(e0)
		defer drv.cuEventDestroy(e1)
		drv.cuGraphLaunch(exec, d.stream)
		var ms []float64
		for r := 0; r < 5; r++ {
			drv.cuEventRecord(e0, d.stream)
			drv.cuGraphLaunch(exec, d.stream)
			drv.cuEventRecord(e1, d.stream)
			if err := check("cuEventSynchronize", drv.cuEventSynchronize(e1)); err != nil {
				return err
			}
			var t float32
			drv.cuEventElapsedTime(&t, e0, e1)
			ms = append(ms, float64(t))
		}
		sort.Float64s(ms)
		us = ms[len(ms)/2] * 1e3 / 200
		return nil
	})
	return us, err
}

// TestSelectSpeed times the selection kernels alone (200 launches in a
// graph, with PDL when on) on n logits, k = n/10: DEJAVU_CUDA_SCALING set.
func TestSelectSpeed(t *testing.T) {
	if os.Getenv("DEJAVU_CUDA_SCALING") == "" {
		t.Skip("cuda: DEJAVU_CUDA_SCALING is not set")
	}
	d := gpu(t)
	rng := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{32, 40, 16384, 20480} {
		z := make([]float32, n)
		for i := range z {
			z[i] = float32(rng.NormFloat64())
		}
		var zp, op, cp, ws uint64
		err := d.do(func() error {
			var err error
			for _, b := range []struct {
				p *uint64
				n int
			}{{&zp, n}, {&op, n}, {&cp, 1}, {&ws, selectWords}} {
				if *b.p, err = d.alloc(int64(4*b.n), "select"); err != nil {
					return err
				}
			}
			if err := zero(d, ws, selectWords, "ws"); err != nil {
				return err
			}
			return htod(d, zp, z, "z")
		})
		if err != nil {
			t.Fatal(err)
		}
		k := max(1, n/10)
		old, err := timeKernel(d, func() error {
			smem, keys := 4*n, 1
			return d.launch("select_rows", [3]int{1, 1, 1}, [3]int{min(1024, blocks(n, 32)*32), 1, 1}, smem, zp, n, k, float32(0), 0, op, cp, keys)
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, sg := range []int{0, 16} {
			if n <= 1024 && sg > 0 {
				break
			}
			d.selG = sg
			nw, err := timeKernel(d, func() error {
				if n <= 1024 {
					return d.launch("select_small", [3]int{1, 1, 1}, [3]int{blocks(n, 32) * 32, 1, 1}, 4*n, zp, n, k, float32(0), 0, op, cp)
				}
				g := d.selectGrid(n)
				return d.launch("select_multi", [3]int{g, 1, 1}, [3]int{512, 1, 1}, 4*blocks(n, g), zp, n, k, float32(0), 0, op, cp, ws)
			})
			if err != nil {
				t.Fatal(err)
			}
			fmt.Printf("select n=%-6d k=%-5d one block (select_rows) %6.2f µs, new (%s, %d blocks) %6.2f µs\n", n, k, old,
				map[bool]string{true: "select_small", false: "select_multi"}[n <= 1024], d.selectGrid(n), nw)
			if n > 1024 {
				fast, err := timeKernel(d, func() error {
					g := d.selectGrid(n)
					return d.launch("select_fast", [3]int{g, 1, 1}, [3]int{512, 1, 1}, 4*n, zp, n, k, float32(0), 0, op, cp, ws)
				})
				if err != nil {
					t.Fatal(err)
				}
				fmt.Printf("select n=%-6d k=%-5d select_fast, %d blocks %6.2f µs\n", n, k, d.selectGrid(n), fast)
			}
			d.selG = 0
		}
		d.do(func() error {
			for _, p := range []uint64{zp, op, cp, ws} {
				free(p)
			}
			return nil
		})
	}
}

// TestDecodeScaling measures decode ms/token against the context (prompt
// 16 and 128 tokens) for the attention variants, dense, random sparse and
// with synthetic predictors (old and new selection), on the shapes named in
// DEJAVU_CUDA_SCALING (e.g. opt-6.7b,opt-13b), all in one process, and
// checks that the split attention's logits match the one-block kernel's
// after a 128-token prompt.
func TestDecodeScaling(t *testing.T) {
	d, shapes := synthShapes(t, "DEJAVU_CUDA_SCALING")
	defer func(m, sp int, so, ah bool) {
		d.attnMode, d.splits, d.selOld, d.ahead, d.selFast, d.predNorm = m, sp, so, ah, false, false
	}(d.attnMode, d.splits, d.selOld, d.ahead)
	modes := map[int]string{attnLegacy: "one block", attnSplit: "split", attnSplitCombine: "split+combine"}
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
		set := func(mode, splits int) {
			d.attnMode, d.splits = mode, splits
			if err := s.dropGraphs(); err != nil {
				t.Error(err)
			}
		}
		timeIt := func(what string, prompt int) float64 {
			tm, err := TimeDecode(s, prompt, 64)
			if err != nil { // go on with the other variants
				t.Errorf("%s %s prompt %d: %v", name, what, prompt, err)
				return math.NaN()
			}
			fmt.Printf("%-9s prompt %3d  %-44s median %7.3f ms/token  p90 %7.3f\n", name, prompt, what, tm.MedianMs, tm.P90Ms)
			return tm.MedianMs
		}
		// Exactness at a long context: the same step's logits, one block vs split.
		V := c.Vocab
		ids := make([]int, 128)
		for i := range ids {
			ids[i] = (i*7919 + 13) % V
		}
		logitsAfter := func(mode int) []float32 {
			set(mode, 0)
			s.Reset()
			if _, err := s.Forward(ids, false); err != nil {
				t.Fatal(err)
			}
			var out []float32
			for _, id := range []int{5, 9, 11} {
				row, err := s.Forward([]int{id}, false)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, row...)
			}
			return out
		}
		want := logitsAfter(attnLegacy)
		for _, mode := range []int{attnSplit, attnSplitCombine} {
			e := rowErr(logitsAfter(mode), want, V)
			fmt.Printf("%-9s prompt 128: %s logits vs one block: rel.err %.2e\n", name, modes[mode], e)
			if e > 1e-4 {
				t.Errorf("%s: %s logits differ from the one-block kernel's: %.3g", name, modes[mode], e)
			}
		}
		res := map[string]float64{}
		for _, prompt := range []int{16, 128} {
			for _, mode := range []int{attnLegacy, attnSplit, attnSplitCombine} {
				if mode == attnSplitCombine && prompt == 16 {
					continue
				}
				set(mode, 0)
				res[fmt.Sprintf("dense %d %d", prompt, mode)] = timeIt(fmt.Sprintf("dense, %s (splits %d)", modes[mode], s.splits()), prompt)
			}
		}
		for _, sp := range []int{16, 32} {
			set(attnSplit, sp)
			timeIt(fmt.Sprintf("dense, split, %d splits", sp), 128)
		}
		s.SetRandomSparse(0.1, 0.5, 7)
		for _, prompt := range []int{16, 128} {
			for _, mode := range []int{attnLegacy, attnSplit} {
				set(mode, 0)
				res[fmt.Sprintf("random %d %d", prompt, mode)] = timeIt("random sparse 10%/50%, "+modes[mode], prompt)
			}
		}
		if err := s.setSyntheticPredictors(256, 64, 0.1, 0.5); err != nil {
			t.Fatal(err)
		}
		for _, prompt := range []int{16, 128} {
			for _, v := range []struct {
				old, ahead, multi, norm bool
				mode                    int
			}{{true, false, false, false, attnLegacy}, {false, true, true, false, attnSplit}, {false, true, false, true, attnSplit},
				{false, false, false, false, attnSplit}, {false, true, false, false, attnSplit}} {
				d.selOld, d.ahead, d.selFast, d.predNorm = v.old, v.ahead, !v.multi, v.norm
				set(v.mode, 0)
				what := "predicted r=256, old select, "
				if !v.old {
					what = fmt.Sprintf("pred. %s, norm kernel %v, lookahead %v, ", map[bool]string{true: "select_multi", false: "select_fast"}[v.multi], v.norm, v.ahead)
				}
				s.density = model.Density{}
				res[fmt.Sprintf("pred %d %v %v %d", prompt, v.old, v.ahead, v.mode)] = timeIt(what+modes[v.mode], prompt)
				// Every step selected exactly the top-k neurons and heads.
				kM, kH := clampK(0.1, c.FFN), clampK(0.5, c.Heads)
				wantH := float64(c.Heads+(c.Layers-1)*kH) / float64(c.Heads*c.Layers)
				if gd := s.Density(); math.Abs(gd.MLP()-float64(kM)/float64(c.FFN)) > 1e-9 || math.Abs(gd.Heads()-wantH) > 1e-9 {
					t.Errorf("%s %s: densities %.6f / %.6f, want %.6f / %.6f", name, what, gd.MLP(), gd.Heads(), float64(kM)/float64(c.FFN), wantH)
				}
			}
		}
		d.selOld, d.ahead, d.selFast, d.predNorm = false, true, false, false
		set(attnSplit, 0)
		if prof, err := ProfileDecode(s); err == nil {
			fmt.Printf("%s predicted sparse decode step (new), kernels timed one by one:\n%s", name, prof)
		}
		for _, prompt := range []int{16, 128} {
			dOld, dNew := res[fmt.Sprintf("dense %d %d", prompt, attnLegacy)], res[fmt.Sprintf("dense %d %d", prompt, attnSplit)]
			fmt.Printf("%-9s prompt %3d SUMMARY dense %.3f → %.3f; random sparse %.3f → %.3f (%.2f× → %.2f×); predicted %.3f → %.3f (%.2f× → %.2f×)\n",
				name, prompt, dOld, dNew,
				res[fmt.Sprintf("random %d %d", prompt, attnLegacy)], res[fmt.Sprintf("random %d %d", prompt, attnSplit)],
				dOld/res[fmt.Sprintf("random %d %d", prompt, attnLegacy)], dNew/res[fmt.Sprintf("random %d %d", prompt, attnSplit)],
				res[fmt.Sprintf("pred %d true false %d", prompt, attnLegacy)], res[fmt.Sprintf("pred %d false true %d", prompt, attnSplit)],
				dOld/res[fmt.Sprintf("pred %d true false %d", prompt, attnLegacy)], dNew/res[fmt.Sprintf("pred %d false true %d", prompt, attnSplit)])
		}
		s.Close()
		g.Close()
	}
}

// TestPromptProfile (diagnostic): where a long prompt's time goes, every
// kernel and GEMM timed alone (ProfilePrompt), with the prompt attention
// on the tensor cores and in f32 tiles. DEJAVU_CUDA_PROMPT_PROFILE names
// the shapes (e.g. opt-6.7b), DEJAVU_CUDA_PROMPT_LEN the tokens (2000).
func TestPromptProfile(t *testing.T) {
	d, shapes := synthShapes(t, "DEJAVU_CUDA_PROMPT_PROFILE")
	n := 2000
	if v, err := strconv.Atoi(os.Getenv("DEJAVU_CUDA_PROMPT_LEN")); err == nil && v > 1 {
		n = v
	}
	defer func(v int) { d.attnPrompt = v }(d.attnPrompt)
	for _, sh := range shapes {
		g, err := d.Synthetic(sh.cfg, 1)
		if err != nil {
			t.Fatal(err)
		}
		s, err := g.NewSession(n)
		if err != nil {
			t.Fatal(err)
		}
		ids := make([]int, n)
		for i := range ids {
			ids[i] = (i*7919 + 13) % sh.cfg.Vocab
		}
		for _, mode := range []int{apTC, apTiles} {
			d.attnPrompt = mode
			k, _, _, _ := d.promptKernel(sh.cfg.HeadDim)
			if _, err := s.Forward(ids, false); err != nil { // warm-up (cuBLAS's kernels for these shapes)
				t.Fatal(err)
			}
			prof, err := ProfilePrompt(s, ids)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s, %d-token prompt, %s:\n%s", sh.name, n, k, prof)
		}
		s.Close()
		g.Close()
	}
}

// TestRopeInterleave: rope_store's interleaved pairs (GGUF and llama2.c
// checkpoints) give the CPU's logits, prompt and decode, on two llama
// fixtures run as if their checkpoints were interleaved (which changes
// their logits: the flag is not ignored).
func TestRopeInterleave(t *testing.T) {
	d := gpu(t)
	pool := kernels.NewPool(2)
	defer pool.Close()
	for _, name := range []string{"llama-silu", "mistral-headdim"} {
		m, g := upload(t, d, "../testdata/models/"+name)
		V := m.Cfg.Vocab
		ids := make([]int, 20)
		for i := range ids {
			ids[i] = (i*37 + 5) % V
		}
		cpu := func() []float32 {
			got, err := m.NewSession(pool, 0).Forward(ids, true)
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
		split := cpu()
		m.Cfg.Interleave, g.Cfg.Interleave = true, true
		want := cpu()
		s, err := g.NewSession(0)
		if err != nil {
			t.Fatal(err)
		}
		prompt, err := s.Forward(ids, true)
		if err != nil {
			t.Fatal(err)
		}
		prompt = slices.Clone(prompt)
		s.Reset()
		ep, ed, eFlag := rowErr(prompt, want, V), rowErr(decodeRows(t, s, ids), want, V), rowErr(split, want, V)
		t.Logf("%-16s interleaved rope, GPU vs CPU: rel.err prompt %.2e decode %.2e (half-split vs interleaved on the CPU %.2e)", name, ep, ed, eFlag)
		if ep > fixtureTol || ed > fixtureTol || eFlag < 2*fixtureTol {
			t.Errorf("%s: rel.err prompt %.3g decode %.3g (limit %g); the layouts differ by %.3g", name, ep, ed, fixtureTol, eFlag)
		}
		s.Close()
		g.Close()
		m.Close()
	}
}
