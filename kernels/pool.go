package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
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

// spinPolls is how many times an idle worker, and a caller waiting for its
// workers, poll before blocking. Decode issues dozens of small parallel
// products per token, microseconds apart: a blocked goroutine costs a
// futex wake-up (tens of µs) on each, so both sides spin briefly first.
const spinPolls = 20000

// Pool is a persistent set of worker goroutines that split row ranges. One
// Parallel call runs at a time; concurrent callers take turns.
type Pool struct {
	threads int
	mu      sync.Mutex
	work    []chan job
	pending atomic.Int32  // workers still running the current call
	done    chan struct{} // signalled by the last worker when the caller sleeps
	waiting atomic.Bool   // the caller is (about to be) blocked on done
}

// NewPool starts a pool of threads workers (the caller's goroutine counts as
// one); threads ≤ 0 means one per available CPU.
func NewPool(threads int) *Pool {
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	p := &Pool{threads: threads, work: make([]chan job, threads), done: make(chan struct{}, 1)}
	for w := 1; w < threads; w++ {
		ch := make(chan job, 1)
		p.work[w] = ch
		go p.worker(w, ch)
	}
	return p
}

func (p *Pool) worker(w int, ch chan job) {
	for {
		var (
			j  job
			ok bool
		)
		got := false
		for i := 0; i < spinPolls && !got; i++ {
			select {
			case j, ok = <-ch:
				got = true
			default:
				if i%64 == 63 {
					runtime.Gosched() // stay polite on a busy machine
				}
			}
		}
		if !got {
			j, ok = <-ch
		}
		if !ok {
			return
		}
		j.t.Run(w, j.start, j.end)
		if p.pending.Add(-1) == 0 && p.waiting.CompareAndSwap(true, false) {
			p.done <- struct{}{}
		}
	}
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
	p.pending.Store(int32(parts - 1))
	for w := 1; w < parts; w++ {
		s := blocks * w / parts * grain
		e := min(blocks*(w+1)/parts*grain, n)
		p.work[w] <- job{t, s, e}
	}
	t.Run(0, 0, min(blocks/parts*grain, n))
	for i := 0; i < spinPolls; i++ {
		if p.pending.Load() == 0 {
			return
		}
		if i%64 == 63 {
			runtime.Gosched()
		}
	}
	// Sleep until the last worker signals. Announce it first, then re-check:
	// either the last worker sees waiting and signals, or we see pending 0.
	p.waiting.Store(true)
	if p.pending.Load() == 0 {
		if !p.waiting.CompareAndSwap(true, false) {
			<-p.done // the last worker took the flag: consume its signal
		}
		return
	}
	<-p.done
}

// Close stops the workers. The pool must not be used afterwards.
func (p *Pool) Close() {
	for _, ch := range p.work[1:] {
		close(ch)
	}
}
