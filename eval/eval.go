// Package eval measures the quality of a model: perplexity over a token
// stream and zero-shot multiple-choice accuracy on the standard tasks, with
// the conventions of llama.cpp's llama-perplexity and of
// lm-evaluation-harness.
//
// The id-level entry points (Perplexity, LogLikelihood, Scorer) work on any
// Session, so that dense and sparse forward passes are measured by the same
// code; the text-level ones (Documents, RunTask) add tokenization and the
// task files. Log-softmax is computed in float64 from the float32 logits.
package eval

import (
	"math"
	"runtime"
	"sync"
)

// Session is the part of a model sequence that evaluation uses;
// *model.Session implements it. Forward appends ids to the KV cache and
// returns next-token logits: with all set, len(ids) rows of vocabulary
// logits (a slice the caller may keep), otherwise the last row only (which
// the next call may overwrite).
type Session interface {
	Forward(ids []int, all bool) ([]float32, error)
	// Truncate drops the cached tokens from position n on.
	Truncate(n int)
	// Reset empties the cache.
	Reset()
	// Pos is the number of cached tokens.
	Pos() int
	// MaxCtx is the cache capacity in tokens.
	MaxCtx() int
}

// tokenScore is the log-probability of one token and whether it is the
// argmax (the first maximal logit, as torch.argmax picks) of its row.
type tokenScore struct {
	logp   float64
	argmax bool
}

// logSumExp returns log Σ exp(row) in float64 and the row's argmax (the
// first maximal logit).
func logSumExp(row []float32) (lse float64, arg int) {
	mx := row[0]
	for i, v := range row {
		if v > mx {
			mx, arg = v, i
		}
	}
	m := float64(mx)
	var sum float64
	for _, v := range row {
		sum += math.Exp(float64(v) - m)
	}
	return m + math.Log(sum), arg
}

// scoreRow computes log softmax(row)[tok] in float64.
func scoreRow(row []float32, tok int) tokenScore {
	lse, arg := logSumExp(row)
	return tokenScore{logp: float64(row[tok]) - lse, argmax: arg == tok}
}

// scoreRows scores targets[i] against row i of logits (len(targets) rows of
// vocab values), in parallel over the rows when there are many.
func scoreRows(logits []float32, targets []int, vocab int) []tokenScore {
	out := make([]tokenScore, len(targets))
	n := len(targets)
	workers := min(runtime.GOMAXPROCS(0), n/16)
	if workers <= 1 {
		for i, t := range targets {
			out[i] = scoreRow(logits[i*vocab:(i+1)*vocab], t)
		}
		return out
	}
	var wg sync.WaitGroup
	per := (n + workers - 1) / workers
	for lo := 0; lo < n; lo += per {
		hi := min(lo+per, n)
		wg.Go(func() {
			for i := lo; i < hi; i++ {
				out[i] = scoreRow(logits[i*vocab:(i+1)*vocab], targets[i])
			}
		})
	}
	wg.Wait()
	return out
}
