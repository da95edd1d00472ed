package kernels

import (
	"runtime"
	"sync"
)

// Task is work split by row ranges: Run computes rows [start, end) on the
// given worker (0 ≤ worker < Pool.Threads), so a task can keep per-worker
// scratch space.
type Task interface {
	Run(worker, start, end int)
}

type job struct {
	t          Task
	start, end int
}

// Pool is a persistent set of worker goroutines that split row ranges. One
// Parallel call runs at a time; concurrent callers take turns.
type Pool struct {
	threads int
	mu      sync.Mutex
	work    []chan job
	wg      sync.WaitGroup
}

// NewPool starts a pool of threads workers (the caller's goroutine counts as
// one); threads ≤ 0 means one per available CPU.
func NewPool(threads int) *Pool {
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	p := &Pool{threads: threads, work: make([]chan job, threads)}
	for w := 1; w < threads; w++ {
		ch := make(chan job, 1)
		p.work[w] = ch
		go func(w int) {
			for j := range ch {
				j.t.Run(w, j.start, j.end)
				p.wg.Done()
			}
		}(w)
	}
	return p
}

// Threads is the number of workers, the caller included.
func (p *Pool) Threads() int { return p.threads }

// Parallel runs t over [0, n), split into at most Threads contiguous ranges
// whose boundaries are multiples of grain, and returns when all are done.
func (p *Pool) Parallel(n, grain int, t Task) {
	if grain < 1 {
		grain = 1
	}
	blocks := (n + grain - 1) / grain
	parts := min(p.threads, blocks)
	if parts <= 1 {
		t.Run(0, 0, n)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.wg.Add(parts - 1)
	for w := 1; w < parts; w++ {
		s := blocks * w / parts * grain
		e := min(blocks*(w+1)/parts*grain, n)
		p.work[w] <- job{t, s, e}
	}
	t.Run(0, 0, min(blocks/parts*grain, n))
	p.wg.Wait()
}

// Close stops the workers. The pool must not be used afterwards.
func (p *Pool) Close() {
	for _, ch := range p.work[1:] {
		close(ch)
	}
}
