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
	// state is the number of workers still running the current call, plus
	// waitBit once the caller sleeps on done. One atomic word, so the worker
	// that brings the count to zero knows in the same operation whether the
	// caller of this call sleeps: a worker of an earlier call can never wake
	// the caller of a later one.
	state atomic.Int32
	done  chan struct{} // signalled by the last worker when the caller sleeps
}

const waitBit = 1 << 30

// testHookWorkerDone, when set (tests only), runs after a worker counted
// itself done (stage 0) and after it signalled (stage 1), to widen the
// windows in which a signal could wake the caller of another call.
var testHookWorkerDone func(worker, stage int)

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
		last := p.state.Add(-1) == waitBit
		if testHookWorkerDone != nil {
			testHookWorkerDone(w, 0)
		}
		if last {
			p.done <- struct{}{}
		}
		if testHookWorkerDone != nil {
			testHookWorkerDone(w, 1)
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
	p.state.Store(int32(parts - 1))
	for w := 1; w < parts; w++ {
		s := blocks * w / parts * grain
		e := min(blocks*(w+1)/parts*grain, n)
		p.work[w] <- job{t, s, e}
	}
	t.Run(0, 0, min(blocks/parts*grain, n))
	for i := 0; i < spinPolls; i++ {
		if p.state.Load() == 0 {
			return
		}
		if i%64 == 63 {
			runtime.Gosched()
		}
	}
	// Sleep until the last worker signals: set the bit and learn, in the
	// same operation, whether any worker is still running (then the last
	// one's decrement sees the bit and signals).
	if p.state.Add(waitBit) == waitBit {
		return // all were done already; nobody signals
	}
	<-p.done
}

// Close stops the workers. The pool must not be used afterwards.
func (p *Pool) Close() {
	for _, ch := range p.work[1:] {
		close(ch)
	}
}
