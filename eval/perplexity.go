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
// run from an empty cache of s (which is left holding the last window); its
// logits are produced in one Forward of the scored part after a Forward of
// the unscored prefix, and the last token of a window, which predicts
// nothing, is never fed.
func Perplexity(s Session, ids []int, o PerplexityOptions) (Result, error) {
	p := o.Protocol
	if p == "" {
		p = Windows
	}
	ctx := o.Ctx
	if _, err := ParseProtocol(string(p)); err != nil {
		return Result{}, err
	}
	if ctx > s.MaxCtx() {
		return Result{}, fmt.Errorf("eval: perplexity context of %d tokens exceeds the model's context of %d tokens", ctx, s.MaxCtx())
	}
	first := 0 // index within a window of the first logits row that is scored
	switch p {
	case Windows:
		if ctx < 2 {
			return Result{}, fmt.Errorf("eval: perplexity context must be at least 2 tokens, got %d", ctx)
		}
		if len(ids) < ctx {
			return Result{}, fmt.Errorf("eval: %d tokens are fewer than one window of %d tokens (the windows protocol needs at least ctx tokens)", len(ids), ctx)
		}
	case LlamaCpp:
		if ctx < 3 {
			return Result{}, fmt.Errorf("eval: llama.cpp perplexity context must be at least 3 tokens, got %d", ctx)
		}
		if len(ids) < 2*ctx {
			return Result{}, fmt.Errorf("eval: %d tokens are too few: llama.cpp's perplexity protocol needs at least 2×ctx = %d tokens", len(ids), 2*ctx)
		}
		first = ctx / 2
	}
	n := len(ids) / ctx
	res := Result{Protocol: p, Ctx: ctx, Windows: n}
	var sum, sum2 float64
	win := make([]int, ctx)
	for w := 0; w < n; w++ {
		copy(win, ids[w*ctx:(w+1)*ctx])
		if p == LlamaCpp && o.BOS >= 0 {
			win[0] = o.BOS
		}
		s.Reset()
		if first > 0 {
			if _, err := s.Forward(win[:first], false); err != nil {
				return Result{}, fmt.Errorf("eval: window %d: %w", w, err)
			}
		}
		logits, err := s.Forward(win[first:ctx-1], true)
		if err != nil {
			return Result{}, fmt.Errorf("eval: window %d: %w", w, err)
		}
		targets := win[first+1 : ctx]
		vocab := len(logits) / len(targets)
		for _, sc := range scoreRows(logits, targets, vocab) {
			sum -= sc.logp
			sum2 += sc.logp * sc.logp
		}
		res.Tokens += len(targets)
		if o.Progress != nil {
			o.Progress(w+1, n)
		}
	}
	res.NLL, res.Perplexity, res.StdErr = stats(sum, sum2, res.Tokens)
	return res, nil
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
