package kernels

import (
	"sync/atomic"
	"testing"
	"time"
)

// rowsTask counts the rows its parts ran.
type rowsTask struct{ rows atomic.Int64 }

func (t *rowsTask) Run(_, start, end int) { t.rows.Add(int64(end - start)) }

// TestPoolParallelWaitsForAllParts: Parallel returns only after every part
// of its own call ran, even when a worker of the previous call is delayed
// between counting itself done and signalling (the caller may by then be
// asleep in the next call, waiting for that same worker).
func TestPoolParallelWaitsForAllParts(t *testing.T) {
	p := NewPool(4)
	defer p.Close()
	// Every 32nd worker completion pauses after counting itself done and
	// again after its signal: a worker of one call then lags into the next.
	var calls atomic.Int32
	var lag [4]atomic.Bool
	testHookWorkerDone = func(w, stage int) {
		switch {
		case stage == 0 && calls.Add(1)%32 == 0:
			lag[w].Store(true)
			time.Sleep(10 * time.Millisecond)
		case stage == 1 && lag[w].CompareAndSwap(true, false):
			time.Sleep(10 * time.Millisecond)
		}
	}
	defer func() { testHookWorkerDone = nil }()
	var task rowsTask
	for i := 0; i < 1000; i++ {
		p.Parallel(64, 1, &task)
		if rows := task.rows.Swap(0); rows != 64 {
			t.Fatalf("call %d: %d of 64 rows done when Parallel returned (a part ran late, or twice)", i, rows)
		}
	}
}
