package eval

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// CompareResult compares a test session (e.g. sparse) with a reference
// session (dense) on the same tokens: per scored position, the KL
// divergence KL(P_ref ‖ P_test) of the next-token distributions (nats) and
// whether both pick the same argmax, and each session's perplexity.
type CompareResult struct {
	// Ref and Test are the perplexities of the two sessions.
	Ref  Result `json:"dense"`
	Test Result `json:"sparse"`
	// KLMean, KLP99 and KLMax summarize KL(P_ref ‖ P_test) over the scored
	// positions, in nats (P99: the 99th percentile, nearest rank).
	KLMean float64 `json:"kl_mean"`
	KLP99  float64 `json:"kl_p99"`
	KLMax  float64 `json:"kl_max"`
	// Top1Agreement is the fraction of scored positions where both
	// sessions' argmax (first maximal logit) is the same token.
	Top1Agreement float64 `json:"top1_agreement"`
	// Tokens is the number of scored positions.
	Tokens int `json:"tokens"`
}

// Compare scores ids on ref and test with the windows of o (see
// Perplexity; o.Decode applies to both sessions) and compares their
// next-token distributions position by position.
func Compare(ref, test Session, ids []int, o PerplexityOptions) (CompareResult, error) {
	rs, err := CompareMany(ref, []Session{test}, ids, o)
	if err != nil {
		return CompareResult{}, err
	}
	return rs[0], nil
}

// CompareMany is Compare of several test sessions against one reference,
// which runs once: each window is run on ref, its log-probabilities kept,
// then on every test session in turn. Progress counts windows.
func CompareMany(ref Session, tests []Session, ids []int, o PerplexityOptions) ([]CompareResult, error) {
	if len(tests) == 0 {
		return nil, errors.New("eval: compare: no test sessions")
	}
	w, err := planWindows(ref, ids, o)
	if err != nil {
		return nil, err
	}
	for _, t := range tests {
		if t.MaxCtx() < w.ctx {
			return nil, fmt.Errorf("eval: compare: a test session holds %d tokens, fewer than the window of %d", t.MaxCtx(), w.ctx)
		}
	}
	type acc struct {
		sum, sum2 float64
		kl        []float64
		agree     int
	}
	var refAcc acc
	accs := make([]acc, len(tests))
	win := make([]int, w.ctx)
	rows := w.ctx - 1 - w.first
	var logp []float64 // rows × vocab log-probabilities of ref
	var refArg []int
	vocab := 0
	run := func(s Session, fn func(j int, row []float32)) error {
		if o.Decode {
			return decodeWindow(s, win, w.first, fn)
		}
		return promptWindow(s, win, w.first, func(logits []float32) {
			v := len(logits) / rows
			for j := 0; j < rows; j++ {
				fn(j, logits[j*v:(j+1)*v])
			}
		})
	}
	for i := 0; i < w.n; i++ {
		w.window(ids, i, win)
		targets := win[w.first+1:]
		err := run(ref, func(j int, row []float32) {
			if logp == nil {
				vocab = len(row)
				logp = make([]float64, rows*vocab)
				refArg = make([]int, rows)
			}
			refArg[j] = logSoftmax(logp[j*vocab:(j+1)*vocab], row)
			lp := logp[j*vocab+targets[j]]
			refAcc.sum -= lp
			refAcc.sum2 += lp * lp
		})
		if err != nil {
			return nil, fmt.Errorf("eval: compare: window %d (reference): %w", i, err)
		}
		for k, t := range tests {
			a := &accs[k]
			err := run(t, func(j int, row []float32) {
				if len(row) != vocab {
					return
				}
				p := logp[j*vocab : (j+1)*vocab]
				kl, arg, lq := klRow(p, row, targets[j])
				a.kl = append(a.kl, kl)
				if arg == refArg[j] {
					a.agree++
				}
				a.sum -= lq
				a.sum2 += lq * lq
			})
			if err != nil {
				return nil, fmt.Errorf("eval: compare: window %d (test %d): %w", i, k, err)
			}
		}
		if o.Progress != nil {
			o.Progress(i+1, w.n)
		}
	}
	n := w.n * rows
	refRes := Result{Protocol: w.p, Ctx: w.ctx, Windows: w.n, Tokens: n}
	refRes.NLL, refRes.Perplexity, refRes.StdErr = stats(refAcc.sum, refAcc.sum2, n)
	out := make([]CompareResult, len(tests))
	for k := range tests {
		a := &accs[k]
		if len(a.kl) != n {
			return nil, fmt.Errorf("eval: compare: test %d has another vocabulary size than the reference", k)
		}
		r := CompareResult{Ref: refRes, Tokens: n, Test: Result{Protocol: w.p, Ctx: w.ctx, Windows: w.n, Tokens: n}}
		r.Test.NLL, r.Test.Perplexity, r.Test.StdErr = stats(a.sum, a.sum2, n)
		var s float64
		for _, v := range a.kl {
			s += v
		}
		r.KLMean = s / float64(n)
		slices.Sort(a.kl)
		r.KLP99 = a.kl[max(0, int(math.Ceil(0.99*float64(n)))-1)]
		r.KLMax = a.kl[n-1]
		r.Top1Agreement = float64(a.agree) / float64(n)
		out[k] = r
	}
	return out, nil
}

// logSoftmax writes log softmax(row) into dst in float64 and returns the
// argmax (first maximal logit).
func logSoftmax(dst []float64, row []float32) int {
	lse, arg := logSumExp(row)
	for i, v := range row {
		dst[i] = float64(v) - lse
	}
	return arg
}

// klRow returns KL(P ‖ Q) for the reference log-probabilities p and the
// test logits row, the row's argmax and log Q(target).
func klRow(p []float64, row []float32, target int) (kl float64, arg int, lq float64) {
	lse, arg := logSumExp(row)
	for i, v := range row {
		if lp := p[i]; lp > -745 { // exp underflows to 0 below: no mass
			kl += math.Exp(lp) * (lp - (float64(v) - lse))
		}
	}
	return max(kl, 0), arg, float64(row[target]) - lse
}
