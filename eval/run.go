package eval

import (
	"fmt"
	"math"
	"strings"
	"unicode"

	"dejavu/tokenizer"
)

// TaskResult is the score of one task.
type TaskResult struct {
	// N is the number of items scored.
	N int `json:"n"`
	// Acc is the accuracy (LAMBADA: the rate of greedy last words).
	Acc float64 `json:"acc"`
	// AccStderr is the standard error of Acc, sqrt(acc(1-acc)/(n-1)) (the
	// harness's sample standard error of the mean).
	AccStderr float64 `json:"acc_stderr"`
	// AccNorm is the length-normalized accuracy, for tasks with Norm.
	AccNorm       *float64 `json:"acc_norm,omitempty"`
	AccNormStderr *float64 `json:"acc_norm_stderr,omitempty"`
	// Perplexity is exp(-mean log-likelihood of the continuation), for
	// LastWord tasks (the harness's lambada perplexity: per item, not per
	// token).
	Perplexity *float64 `json:"perplexity,omitempty"`
}

// Encode tokenizes a (context, continuation) pair as lm-evaluation-harness
// does, but with the tokenizer's default special tokens (BOS): whitespace at
// the end of the context moves to the start of the continuation, the
// context is Encode(context), and the continuation is what
// Encode(context+continuation) holds after as many tokens as the context
// has. An empty context becomes the BOS token (EOS when there is none) and
// the continuation is then EncodeNoSpecial(continuation).
func Encode(tok tokenizer.Tokenizer, context, continuation string) (ctx, cont []int, err error) {
	trimmed := strings.TrimRightFunc(context, unicode.IsSpace)
	continuation = context[len(trimmed):] + continuation
	context = trimmed
	if context == "" {
		prefix := tok.BOS()
		if prefix < 0 {
			prefix = tok.EOS()
		}
		if prefix < 0 {
			return nil, nil, fmt.Errorf("eval: empty context and the tokenizer has neither BOS nor EOS")
		}
		cont, err = tok.EncodeNoSpecial(continuation)
		return []int{prefix}, cont, err
	}
	if ctx, err = tok.Encode(context); err != nil {
		return nil, nil, err
	}
	whole, err := tok.Encode(context + continuation)
	if err != nil {
		return nil, nil, err
	}
	if len(whole) <= len(ctx) {
		return nil, nil, fmt.Errorf("eval: continuation %q adds no tokens to its context", continuation)
	}
	return ctx, whole[len(ctx):], nil
}

// RunTask scores items of t on s (which it resets) with tok, calling
// progress, if set, after each item. Every choice is scored once with a
// Scorer, so the context of a multiple-choice item runs once for all its
// choices. Errors name the task's file and the item's line.
func RunTask(s Session, tok tokenizer.Tokenizer, t *Task, items []Item, progress func()) (TaskResult, error) {
	return RunTaskWith(s, tok, t, items, TaskOptions{Progress: progress})
}

// TaskOptions configure RunTaskWith.
type TaskOptions struct {
	// Decode scores in decode mode (see Scorer.Decode), for sparse sessions.
	Decode bool
	// Progress, if set, is called after each item.
	Progress func()
}

// RunTaskWith is RunTask with options.
func RunTaskWith(s Session, tok tokenizer.Tokenizer, t *Task, items []Item, o TaskOptions) (TaskResult, error) {
	progress := o.Progress
	sc := NewScorer(s)
	sc.Decode = o.Decode
	var correct, correctNorm int
	var llSum float64
	for _, it := range items {
		n := it.NumChoices()
		best, bestNorm := 0, 0
		var lls, norms []float64
		for i := 0; i < n; i++ {
			ctx, cont, err := Encode(tok, it.Context(i), it.Continuation(i))
			if err == nil {
				var ll float64
				var greedy bool
				ll, greedy, err = sc.LogLikelihood(ctx, cont)
				if err == nil {
					if t.Kind == LastWord {
						llSum += ll
						if greedy {
							correct++
						}
					}
					lls = append(lls, ll)
					nl := 1
					if i < len(it.NormLen) && it.NormLen[i] > 0 {
						nl = it.NormLen[i]
					}
					norms = append(norms, ll/float64(nl))
					if ll > lls[best] {
						best = i
					}
					if norms[i] > norms[bestNorm] {
						bestNorm = i
					}
				}
			}
			if err != nil {
				return TaskResult{}, fmt.Errorf("eval: %s:%d: choice %d: %w", t.File, it.Line, i, err)
			}
		}
		if t.Kind == MultipleChoice {
			if best == it.Gold {
				correct++
			}
			if bestNorm == it.Gold {
				correctNorm++
			}
		}
		if progress != nil {
			progress()
		}
	}
	r := TaskResult{N: len(items)}
	if r.N == 0 {
		return r, nil
	}
	r.Acc, r.AccStderr = rate(correct, r.N)
	if t.Norm {
		a, e := rate(correctNorm, r.N)
		r.AccNorm, r.AccNormStderr = &a, &e
	}
	if t.Kind == LastWord {
		p := math.Exp(-llSum / float64(r.N))
		r.Perplexity = &p
	}
	return r, nil
}

// rate is k/n with its standard error sqrt(p(1-p)/(n-1)).
func rate(k, n int) (p, stderr float64) {
	p = float64(k) / float64(n)
	if n > 1 {
		stderr = math.Sqrt(p * (1 - p) / float64(n-1))
	}
	return p, stderr
}

// Documents tokenizes each text on its own with the tokenizer's default
// special tokens and concatenates the ids, for Perplexity.
func Documents(tok tokenizer.Tokenizer, texts ...string) ([]int, error) {
	var ids []int
	for i, t := range texts {
		d, err := tok.Encode(t)
		if err != nil {
			return nil, fmt.Errorf("eval: document %d: %w", i, err)
		}
		ids = append(ids, d...)
	}
	return ids, nil
}

// AddsBOS reports whether tok puts its BOS token at the start of what it
// encodes (llama.cpp's add_bos), and returns that token (-1 when not).
func AddsBOS(tok tokenizer.Tokenizer) (int, error) {
	ids, err := tok.Encode("")
	if err != nil {
		return -1, err
	}
	if b := tok.BOS(); b >= 0 && len(ids) > 0 && ids[0] == b {
		return b, nil
	}
	return -1, nil
}
