package cuda

import (
	"fmt"
	"sort"
	"time"
)

// CopyBandwidth measures the device's memory bandwidth with device-to-device
// copies of a buffer of the given size (≤ 0: 1 GiB), counting bytes read
// plus bytes written, in GB/s (1e9 bytes per second): the median of 20
// timed copies after 3 warm-ups, timed with CUDA events.
func (d *Device) CopyBandwidth(bytes int64) (float64, error) {
	if bytes <= 0 {
		bytes = 1 << 30
	}
	var gbs float64
	err := d.do(func() error {
		src, err := d.alloc(bytes, "bandwidth source")
		if err != nil {
			return err
		}
		defer free(src)
		dst, err := d.alloc(bytes, "bandwidth destination")
		if err != nil {
			return err
		}
		defer free(dst)
		if err := check("cuMemsetD32Async", drv.cuMemsetD32Async(src, 0x3c003c00, uint64(bytes/4), d.stream)); err != nil {
			return err
		}
		var e0, e1 uintptr
		if err := check("cuEventCreate", drv.cuEventCreate(&e0, 0)); err != nil {
			return err
		}
		defer drv.cuEventDestroy(e0)
		if err := check("cuEventCreate", drv.cuEventCreate(&e1, 0)); err != nil {
			return err
		}
		defer drv.cuEventDestroy(e1)
		var ms []float64
		for i := 0; i < 23; i++ {
			drv.cuEventRecord(e0, d.stream)
			if err := check("cuMemcpyDtoDAsync", drv.cuMemcpyDtoDAsync(dst, src, uint64(bytes), d.stream)); err != nil {
				return err
			}
			drv.cuEventRecord(e1, d.stream)
			if err := check("cuEventSynchronize", drv.cuEventSynchronize(e1)); err != nil {
				return err
			}
			var t float32
			if err := check("cuEventElapsedTime", drv.cuEventElapsedTime(&t, e0, e1)); err != nil {
				return err
			}
			if i >= 3 {
				ms = append(ms, float64(t))
			}
		}
		sort.Float64s(ms)
		gbs = 2 * float64(bytes) / (ms[len(ms)/2] * 1e-3) / 1e9
		return nil
	})
	return gbs, err
}

// DecodeTiming is the result of TimeDecode.
type DecodeTiming struct {
	Tokens          int     // timed decode steps
	MedianMs, P90Ms float64 // per token, host wall clock around Forward (logits copied back included)
}

// TimeDecode times decode steps: it resets the session, runs a prompt of
// promptLen tokens, warms up with 3 steps, then times tokens steps one by
// one (each Forward waits for its logits) and resets the session again.
func TimeDecode(s *Session, promptLen, tokens int) (DecodeTiming, error) {
	V := s.m.Cfg.Vocab
	if promptLen < 1 || tokens < 1 || promptLen+tokens+3 > s.maxCtx {
		return DecodeTiming{}, fmt.Errorf("cuda: timing %d tokens after a prompt of %d: needs 1 ≤ both and a context of %d (have %d)",
			tokens, promptLen, promptLen+tokens+3, s.maxCtx)
	}
	s.Reset()
	defer s.Reset()
	ids := make([]int, promptLen)
	for i := range ids {
		ids[i] = (i*7919 + 13) % V
	}
	if _, err := s.Forward(ids, false); err != nil {
		return DecodeTiming{}, err
	}
	id := 1
	var ms []float64
	for i := 0; i < tokens+3; i++ {
		t0 := time.Now()
		if _, err := s.Forward([]int{id}, false); err != nil {
			return DecodeTiming{}, err
		}
		if i >= 3 {
			ms = append(ms, float64(time.Since(t0).Nanoseconds())/1e6)
		}
		id = (id*31 + 7) % V
	}
	sort.Float64s(ms)
	return DecodeTiming{Tokens: tokens, MedianMs: ms[len(ms)/2], P90Ms: ms[len(ms)*9/10]}, nil
}

// profiler times every kernel launch of a region with CUDA events (kernels
// launched one by one, not from a graph), summed per kernel name.
type profiler struct {
	names  []string
	events []uintptr // pairs: before, after
	n      int
}

func newProfiler(size int) (*profiler, error) {
	p := &profiler{events: make([]uintptr, 2*size)}
	for i := range p.events {
		if err := check("cuEventCreate", drv.cuEventCreate(&p.events[i], 0)); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (p *profiler) begin(name string, stream uintptr) {
	if p.n < len(p.events)/2 {
		p.names = append(p.names, name)
		drv.cuEventRecord(p.events[2*p.n], stream)
	}
}

func (p *profiler) end(stream uintptr) {
	if p.n < len(p.events)/2 {
		drv.cuEventRecord(p.events[2*p.n+1], stream)
		p.n++
	}
}

// table waits for the events and lists the names by time: launches and
// milliseconds, and the total.
func (p *profiler) table() string {
	ms, cnt := p.totals()
	names := make([]string, 0, len(ms))
	total := 0.0
	for k, v := range ms {
		names = append(names, k)
		total += v
	}
	sort.Slice(names, func(i, j int) bool { return ms[names[i]] > ms[names[j]] })
	var out string
	for _, k := range names {
		out += fmt.Sprintf("  %-28s %4d launches %8.3f ms\n", k, cnt[k], ms[k])
	}
	return out + fmt.Sprintf("  %-28s %4d launches %8.3f ms\n", "total", p.n, total)
}

// ProfilePrompt runs ids as a prompt from position 0 with every kernel and
// GEMM timed separately, as ProfileDecode does for a decode step.
func ProfilePrompt(s *Session, ids []int) (string, error) {
	s.Reset()
	defer s.Reset()
	var p *profiler
	if err := s.d.do(func() error {
		var err error
		if p, err = newProfiler(16384); err == nil {
			s.d.prof = p
		}
		return err
	}); err != nil {
		return "", err
	}
	_, err := s.Forward(ids, false)
	var out string
	s.d.do(func() error {
		s.d.prof = nil
		if err == nil {
			out = p.table()
		}
		p.destroy()
		return nil
	})
	return out, err
}

// totals waits for the events and returns per-name milliseconds and counts.
func (p *profiler) totals() (map[string]float64, map[string]int) {
	ms, cnt := map[string]float64{}, map[string]int{}
	for i := 0; i < p.n; i++ {
		drv.cuEventSynchronize(p.events[2*i+1])
		var t float32
		drv.cuEventElapsedTime(&t, p.events[2*i], p.events[2*i+1])
		ms[p.names[i]] += float64(t)
		cnt[p.names[i]]++
	}
	return ms, cnt
}

func (p *profiler) destroy() {
	for _, e := range p.events {
		drv.cuEventDestroy(e)
	}
}

// ProfileDecode runs one decode step with every kernel timed separately
// (no graph) and returns a table of kernel name, launches and milliseconds
// (each kernel timed alone: launch gaps are not counted).
func ProfileDecode(s *Session) (string, error) {
	V := s.m.Cfg.Vocab
	s.Reset()
	defer s.Reset()
	if _, err := s.Forward([]int{1 % V, 2 % V, 3 % V, 4 % V}, false); err != nil {
		return "", err
	}
	var out string
	err := s.d.do(func() error {
		p, err := newProfiler(4096)
		if err != nil {
			return err
		}
		defer p.destroy()
		s.hostIO[0], s.hostIO[1] = int32(s.pos), 5%int32(V)
		if err := htod(s.d, s.io, s.hostIO[:2], "step ids"); err != nil {
			return err
		}
		if s.sparse != nil {
			if err := s.kvBegin(); err != nil {
				return err
			}
		}
		s.d.prof = p
		err = s.decodeKernels(s.sparse)
		s.d.prof = nil
		if err != nil {
			return err
		}
		if err := s.d.sync("profiled step"); err != nil {
			return err
		}
		out = p.table()
		return nil
	})
	return out, err
}
