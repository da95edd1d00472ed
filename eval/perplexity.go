package eval

import (
	"fmt"
	"math"
)

// Protocol is how a token stream is cut into windows for perplexity.
type Protocol string

const (
	// Windows cuts the stream into non-overlapping windows of Ctx tokens (a
	// shorter last window is dropped), each evaluated from an empty cache,
	// and scores every position after the first: token i+1 is predicted from
	// the tokens ≤ i of its window, Ctx-1 predictions per window.
	Windows Protocol = "windows"
	// LlamaCpp is llama.cpp's llama-perplexity convention: the stream must
	// hold at least 2·Ctx tokens; it is cut into ⌊len/Ctx⌋ non-overlapping
	// windows of Ctx tokens, the first token of each window is replaced by
	// BOS when the tokenizer adds one, and only the second half is scored:
	// the predictions of tokens Ctx/2+1 … Ctx-1 of each window, Ctx-1-Ctx/2
	// per window.
	LlamaCpp Protocol = "llamacpp"
)

// ParseProtocol reads a protocol name ("windows" or "llamacpp").
func ParseProtocol(s string) (Protocol, error) {
	switch p := Protocol(s); p {
	case Windows, LlamaCpp:
		return p, nil
	}
	return "", fmt.Errorf("eval: unknown perplexity protocol %q (want %q or %q)", s, Windows, LlamaCpp)
}

// PerplexityOptions configure Perplexity.
type PerplexityOptions struct {
	// Ctx is the window length in tokens (≥ 2; ≥ 3 for LlamaCpp).
	Ctx int
	// Protocol is Windows (the default when empty) or LlamaCpp.
	Protocol Protocol
	// BOS is the id that LlamaCpp puts at the start of every window, or -1
	// when the tokenizer adds no BOS (then windows are scored as they are).
	// Windows ignores it.
	BOS int
	// Progress, if set, is called after each window with the number of
	// windows done and their total.
	Progress func(done, total int)
	// Decode feeds every token of a window in its own one-token Forward
	// (decode mode) instead of one batched prompt pass, so that a session
	// that sparsifies decode steps (model.Session.SetSelector) computes
	// every scored position sparsely. Dense sessions give the prompt-mode
	// result up to float rounding, more slowly.
	Decode bool
	// MaxTokens, when positive, evaluates only the first MaxTokens ids (the
	// windows are then cut from those; a shorter last window is dropped as
	// usual), to bound slow decode-mode runs.
	MaxTokens int
}

// Result is a perplexity measurement.
type Result struct {
	// Perplexity is exp of the mean per-token negative log-likelihood.
	Perplexity float64 `json:"perplexity"`
	// StdErr is the standard error of Perplexity as llama.cpp reports it:
	// ppl·sqrt(var(nll)/(n-1)) with var(nll) = mean(nll²) - mean(nll)²
	// (0 when fewer than two tokens are scored or the variance is not
	// positive).
	StdErr float64 `json:"stderr"`
	// NLL is the mean per-token negative log-likelihood in nats.
	NLL float64 `json:"nll"`
	// Tokens is the number of scored predictions.
	Tokens int `json:"tokens"`
	// Windows is the number of windows evaluated.
	Windows  int      `json:"windows"`
	Protocol Protocol `json:"protocol"`
	Ctx      int      `json:"ctx"`
}

// Perplexity evaluates ids with the windows of o.Protocol. Every window is
// run from an empty cache of s (which is left holding the last window). In
// prompt mode its logits are produced in one Forward of the scored part
// after a Forward of the unscored prefix; in decode mode (o.Decode) every
// token is its own Forward. The last token of a window, which predicts
// nothing, is never fed.
func Perplexity(s Session, ids []int, o PerplexityOptions) (Result, error) {
	w, err := planWindows(s, ids, o)
	if err != nil {
		return Result{}, err
	}
	res := Result{Protocol: w.p, Ctx: w.ctx, Windows: w.n}
	var sum, sum2 float64
	win := make([]int, w.ctx)
	for i := 0; i < w.n; i++ {
		w.window(ids, i, win)
		targets := win[w.first+1:]
		var err error
		if o.Decode {
			err = decodeWindow(s, win, w.first, func(j int, row []float32) {
				sc := scoreRow(row, targets[j])
				sum -= sc.logp
				sum2 += sc.logp * sc.logp
			})
		} else {
			err = promptWindow(s, win, w.first, func(logits []float32) {
				for _, sc := range scoreRows(logits, targets, len(logits)/len(targets)) {
					sum -= sc.logp
					sum2 += sc.logp * sc.logp
				}
			})
		}
		if err != nil {
			return Result{}, fmt.Errorf("eval: window %d: %w", i, err)
		}
		res.Tokens += len(targets)
		if o.Progress != nil {
			o.Progress(i+1, w.n)
		}
	}
	res.NLL, res.Perplexity, res.StdErr = stats(sum, sum2, res.Tokens)
	return res, nil
}

// windowPlan is how Perplexity cuts a token stream.
type windowPlan struct {
	p     Protocol
	ctx   int // window length
	first int // index within a window of the first logits row that is scored
	n     int // windows
	bos   int // LlamaCpp's BOS, or -1
}

// planWindows validates o against s and ids (cut to o.MaxTokens).
func planWindows(s Session, ids []int, o PerplexityOptions) (windowPlan, error) {
	p := o.Protocol
	if p == "" {
		p = Windows
	}
	ctx := o.Ctx
	if _, err := ParseProtocol(string(p)); err != nil {
		return windowPlan{}, err
	}
	if o.MaxTokens > 0 && len(ids) > o.MaxTokens {
		ids = ids[:o.MaxTokens]
	}
	if ctx > s.MaxCtx() {
		return windowPlan{}, fmt.Errorf("eval: perplexity context of %d tokens exceeds the model's context of %d tokens", ctx, s.MaxCtx())
	}
	w := windowPlan{p: p, ctx: ctx, bos: -1}
	switch p {
	case Windows:
		if ctx < 2 {
			return windowPlan{}, fmt.Errorf("eval: perplexity context must be at least 2 tokens, got %d", ctx)
		}
		if len(ids) < ctx {
			return windowPlan{}, fmt.Errorf("eval: %d tokens are fewer than one window of %d tokens (the windows protocol needs at least ctx tokens)", len(ids), ctx)
		}
	case LlamaCpp:
		if ctx < 3 {
			return windowPlan{}, fmt.Errorf("eval: llama.cpp perplexity context must be at least 3 tokens, got %d", ctx)
		}
		if len(ids) < 2*ctx {
			return windowPlan{}, fmt.Errorf("eval: %d tokens are too few: llama.cpp's perplexity protocol needs at least 2×ctx = %d tokens", len(ids), 2*ctx)
		}
		w.first = ctx / 2
		w.bos = o.BOS
	}
	w.n = len(ids) / ctx
	return w, nil
}

// window copies window i of ids into win (len ctx), with LlamaCpp's BOS.
func (w windowPlan) window(ids []int, i int, win []int) {
	copy(win, ids[i*w.ctx:(i+1)*w.ctx])
	if w.bos >= 0 {
		win[0] = w.bos
	}
}

// promptWindow runs win from an empty cache of s in prompt mode: the
// unscored prefix win[:first], then win[first:len-1] in one Forward whose
// rows (predicting win[first+1:]) go to fn.
func promptWindow(s Session, win []int, first int, fn func(logits []float32)) error {
	s.Reset()
	if first > 0 {
		if _, err := s.Forward(win[:first], false); err != nil {
			return err
		}
	}
	logits, err := s.Forward(win[first:len(win)-1], true)
	if err != nil {
		return err
	}
	fn(logits)
	return nil
}

// decodeWindow runs win[:len-1] from an empty cache of s one token per
// Forward and calls fn(j, row) with the row predicting win[first+1+j]
// (valid until fn returns).
func decodeWindow(s Session, win []int, first int, fn func(j int, row []float32)) error {
	s.Reset()
	var one [1]int
	for i, t := range win[:len(win)-1] {
		one[0] = t
		row, err := s.Forward(one[:], false)
		if err != nil {
			return err
		}
		if i >= first {
			fn(i-first, row)
		}
	}
	return nil
}

// stats turns the sums of per-token NLL and NLL² over n tokens into the
// mean NLL, the perplexity and llama.cpp's standard error of it.
func stats(sum, sum2 float64, n int) (nll, ppl, stderr float64) {
	nll = sum / float64(n)
	ppl = math.Exp(nll)
	v := sum2/float64(n) - nll*nll
	if v > 0 && n > 1 {
		stderr = math.Sqrt(v/float64(n-1)) * ppl
	}
	return nll, ppl, stderr
}
