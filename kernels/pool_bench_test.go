package kernels

import "testing"

type nopTask struct{ sink []int }

func (t *nopTask) Run(w, start, end int) { t.sink[w*16] += end - start }

// BenchmarkParallelForkJoin is the overhead of one Parallel call that does
// almost nothing: the price of splitting a small product across cores.
func BenchmarkParallelForkJoin(b *testing.B) {
	p := NewPool(2)
	defer p.Close()
	t := &nopTask{sink: make([]int, 2*16)}
	for b.Loop() {
		p.Parallel(1024, 8, t)
	}
}
