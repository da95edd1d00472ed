package kernels

import (
	"time"
)

type readTask struct {
	buf  []uint64
	sums []uint64
}

func (t *readTask) Run(worker, start, end int) {
	var s0, s1, s2, s3 uint64
	b := t.buf[start:end]
	for i := 0; i+4 <= len(b); i += 4 {
		s0 += b[i]
		s1 += b[i+1]
		s2 += b[i+2]
		s3 += b[i+3]
	}
	t.sums[worker] += s0 + s1 + s2 + s3
}

// ReadBandwidth measures the machine's memory read bandwidth in bytes per
// second: the pool's workers each sum their part of a buffer of size bytes
// (far larger than the caches). It returns the median of reps passes.
func ReadBandwidth(pool *Pool, size int64, reps int) float64 {
	n := int(size / 8)
	buf := make([]uint64, n)
	for i := range buf {
		buf[i] = uint64(i) // touch every page so no pass measures page faults
	}
	t := &readTask{buf: buf, sums: make([]uint64, pool.Threads())}
	rates := make([]float64, 0, reps)
	pool.Parallel(n, 4096, t) // warm-up
	for r := 0; r < max(reps, 1); r++ {
		t0 := time.Now()
		pool.Parallel(n, 4096, t)
		rates = append(rates, float64(n*8)/time.Since(t0).Seconds())
	}
	return Median(rates)
}

// Median is the middle value (mean of the two middle values for even
// lengths); it sorts a copy.
func Median(x []float64) float64 {
	return Percentile(x, 50)
}

// Percentile is the p-th percentile by linear interpolation between order
// statistics; it sorts a copy.
func Percentile(x []float64, p float64) float64 {
	if len(x) == 0 {
		return 0
	}
	s := append([]float64(nil), x...)
	for i := 1; i < len(s); i++ { // insertion sort: the inputs are small
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	pos := p / 100 * float64(len(s)-1)
	lo := int(pos)
	if lo+1 >= len(s) {
		return s[len(s)-1]
	}
	f := pos - float64(lo)
	return s[lo]*(1-f) + s[lo+1]*f
}
