package eval

import (
	"errors"
	"fmt"
)

// LogLikelihood returns the summed log-probability (natural log) of cont
// given ctx, and whether every token of cont is the greedy (argmax) choice
// at its position, as lm-evaluation-harness's loglikelihood requests do. It
// starts from an empty cache of s. When ctx+cont do not fit the session,
// ctx loses tokens from its start (the harness's left truncation).
func LogLikelihood(s Session, ctx, cont []int) (ll float64, greedy bool, err error) {
	return NewScorer(s).LogLikelihood(ctx, cont)
}

// Scorer computes log-likelihoods of continuations on one session, reusing
// the KV cache of the longest prefix that a context shares with the tokens
// already cached: scoring several continuations of one context runs the
// context once (each continuation is then fed from the context's end, and
// the context's last logits row is kept), and contexts that share a start
// (the partial scoring of Winogrande) share its computation. A Scorer owns
// its session: nothing else may move it while the Scorer is in use.
type Scorer struct {
	// Decode feeds every token in its own one-token Forward (decode mode),
	// so that a session sparsifying decode steps computes every token,
	// context included, sparsely. Set it before the first LogLikelihood.
	Decode bool

	s      Session
	cached []int     // the tokens in s's cache, in order
	row    []float32 // next-token logits after cached[:rowLen]
	rowLen int       // -1 when row is not valid
}

// NewScorer makes a Scorer on s, emptying its cache.
func NewScorer(s Session) *Scorer {
	s.Reset()
	return &Scorer{s: s, rowLen: -1}
}

// reset empties the cache after an error left its contents unknown.
func (sc *Scorer) reset() {
	sc.s.Reset()
	sc.cached = sc.cached[:0]
	sc.rowLen = -1
}

// truncate drops cached tokens from position n on.
func (sc *Scorer) truncate(n int) {
	if n < len(sc.cached) {
		sc.s.Truncate(n)
		sc.cached = sc.cached[:n]
	}
	if sc.rowLen > n {
		sc.rowLen = -1
	}
}

// LogLikelihood is the package-level LogLikelihood with cache reuse: see
// Scorer.
func (sc *Scorer) LogLikelihood(ctx, cont []int) (ll float64, greedy bool, err error) {
	scores, err := sc.tokens(ctx, cont)
	if err != nil {
		return 0, false, err
	}
	greedy = true
	for _, t := range scores {
		ll += t.logp
		greedy = greedy && t.argmax
	}
	return ll, greedy, nil
}

// tokens scores each token of cont after ctx.
func (sc *Scorer) tokens(ctx, cont []int) ([]tokenScore, error) {
	if len(ctx) == 0 {
		return nil, errors.New("eval: empty context (give at least a BOS token)")
	}
	if len(cont) == 0 {
		return nil, errors.New("eval: empty continuation")
	}
	// Only ctx and cont[:len-1] are fed: the last token predicts nothing.
	if over := len(ctx) + len(cont) - 1 - sc.s.MaxCtx(); over > 0 {
		if over >= len(ctx) {
			return nil, fmt.Errorf("eval: a continuation of %d tokens does not fit the context of %d tokens", len(cont), sc.s.MaxCtx())
		}
		ctx = ctx[over:]
	}
	if sc.s.Pos() != len(sc.cached) { // someone else moved the session
		sc.reset()
	}
	p := commonPrefix(sc.cached, ctx)
	if p < len(ctx) || sc.rowLen != len(ctx) {
		p = min(p, len(ctx)-1) // the context's last row must be computed
		sc.truncate(p)
		row, err := sc.forward(ctx[p:])
		if err != nil {
			sc.reset()
			return nil, fmt.Errorf("eval: context: %w", err)
		}
		sc.cached = append(sc.cached, ctx[p:]...)
		sc.row = append(sc.row[:0], row...)
		sc.rowLen = len(ctx)
	}
	out := make([]tokenScore, 0, len(cont))
	out = append(out, scoreRow(sc.row, cont[0]))
	if len(cont) > 1 {
		sc.truncate(len(ctx))
		feed := cont[:len(cont)-1]
		logits, err := sc.forwardAll(feed)
		if err != nil {
			sc.reset()
			return nil, fmt.Errorf("eval: continuation: %w", err)
		}
		sc.cached = append(sc.cached, feed...)
		out = append(out, scoreRows(logits, cont[1:], len(sc.row))...)
	}
	return out, nil
}

func commonPrefix(a, b []int) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// forward feeds ids and returns the last row (overwritten by the next call).
func (sc *Scorer) forward(ids []int) ([]float32, error) {
	if !sc.Decode {
		return sc.s.Forward(ids, false)
	}
	var row []float32
	for i := range ids {
		var err error
		if row, err = sc.s.Forward(ids[i:i+1], false); err != nil {
			return nil, err
		}
	}
	return row, nil
}

// forwardAll feeds ids and returns all their rows in a new slice.
func (sc *Scorer) forwardAll(ids []int) ([]float32, error) {
	if !sc.Decode {
		return sc.s.Forward(ids, true)
	}
	var out []float32
	for i := range ids {
		row, err := sc.s.Forward(ids[i:i+1], false)
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = make([]float32, 0, len(ids)*len(row))
		}
		out = append(out, row...)
	}
	return out, nil
}
