package bench

import (
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	"dejavu/generate"
	"dejavu/kernels"
	"dejavu/model"
)

// TestPairedSparseSpeed times dense and sparse decode steps of one synthetic
// model alternately, token by token, in one process, so that both see the
// same machine (on a shared machine, separate runs minutes apart do not).
// It is a measurement, not a check; run it with
//
//	DEJAVU_PAIRED=opt-1.3b [DEJAVU_PAIRED_DTYPE=f16] [DEJAVU_PAIRED_THREADS=1]
//	[DEJAVU_PAIRED_GEN=64] [DEJAVU_PAIRED_PROMPT=16] [DEJAVU_PAIRED_PROF=cpu.out]
//	go test ./bench -run Paired -v
//
// (random selection at --mlp-density 0.1 --head-density 0.5, as bench).
// DEJAVU_PAIRED_PROF writes a CPU profile of gen further sparse steps.
func TestPairedSparseSpeed(t *testing.T) {
	name := os.Getenv("DEJAVU_PAIRED")
	if name == "" {
		t.Skip("set DEJAVU_PAIRED=<synthetic model name> to run")
	}
	env := func(k string, def int) int {
		if v, err := strconv.Atoi(os.Getenv(k)); err == nil {
			return v
		}
		return def
	}
	dtype := kernels.F16
	if v := os.Getenv("DEJAVU_PAIRED_DTYPE"); v != "" {
		dts := map[string]kernels.DType{"f32": kernels.F32, "f16": kernels.F16, "bf16": kernels.BF16, "q8_0": kernels.Q8_0}
		var ok bool
		if dtype, ok = dts[v]; !ok {
			t.Fatalf("unknown dtype %q", v)
		}
	}
	threads, gen, prompt := env("DEJAVU_PAIRED_THREADS", 1), env("DEJAVU_PAIRED_GEN", 64), env("DEJAVU_PAIRED_PROMPT", 16)
	m, err := model.Synthetic(name, dtype, 1)
	if err != nil {
		t.Fatal(err)
	}
	m.PrepareSparse()
	pool := kernels.NewPool(threads)
	defer pool.Close()
	read := kernels.ReadBandwidth(pool, 1<<30, 5) / 1e9
	sel := NewRandomSelector(m.Cfg, 0.1, 0.5, 1)
	rng := rand.New(rand.NewPCG(1, 2))
	ids := make([]int, prompt)
	for i := range ids {
		ids[i] = rng.IntN(m.Cfg.Vocab)
	}
	sess := [2]*model.Session{m.NewSession(pool, prompt+gen), m.NewSession(pool, prompt+2*gen)}
	var logits [2][]float32
	for k, s := range sess {
		if logits[k], err = s.Forward(ids, false); err != nil {
			t.Fatal(err)
		}
	}
	sess[1].SetSelector(sel)
	ms := [2][]float64{}
	ratios := []float64{}
	for i := 0; i < gen; i++ {
		var step [2]float64
		for j := range 2 {
			k := (i + j) % 2 // alternate which goes first
			id := generate.Argmax(logits[k])
			t0 := time.Now()
			if logits[k], err = sess[k].Forward([]int{id}, false); err != nil {
				t.Fatal(err)
			}
			step[k] = float64(time.Since(t0).Nanoseconds()) / 1e6
			ms[k] = append(ms[k], step[k])
		}
		ratios = append(ratios, step[0]/step[1])
	}
	if p := os.Getenv("DEJAVU_PAIRED_PROF"); p != "" { // gen more sparse steps, profiled
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			t.Fatal(err)
		}
		for range gen {
			if logits[1], err = sess[1].Forward([]int{generate.Argmax(logits[1])}, false); err != nil {
				t.Fatal(err)
			}
		}
		pprof.StopCPUProfile()
	}
	d := sess[1].Density()
	dense, sparse := kernels.Median(ms[0]), kernels.Median(ms[1])
	sb := touchedBytes(m, d.MLP(), d.Heads(), d.KV())
	t.Logf("%s %v, %d threads, %d steps each, read %.1f GB/s", name, dtype, threads, gen, read)
	t.Logf("dense  %.2f ms/token (p90 %.2f), %.0f MB/token, %.2f of read", dense, kernels.Percentile(ms[0], 90),
		float64(m.WeightBytes())/1e6, float64(m.WeightBytes())/dense/1e6/read)
	t.Logf("sparse %.2f ms/token (p90 %.2f), %.0f MB/token, %.2f of read (mlp %.3f, heads %.3f)", sparse,
		kernels.Percentile(ms[1], 90), float64(sb)/1e6, float64(sb)/sparse/1e6/read, d.MLP(), d.Heads())
	t.Logf("speed-up: %.3fx (ratio of medians), %.3fx (median of per-step ratios)", dense/sparse, kernels.Median(ratios))
}
