package sparsity

import (
	"errors"
	"fmt"
	"math"

	"dejavu/kernels"
	"dejavu/model"
)

// Reference is the dense model's next-token log-likelihoods and argmax on a
// token stream cut into windows, computed once so that many sparse settings
// can be compared with it (see Evaluate).
type Reference struct {
	ids    []int
	window int
	bos    int
	// Per predicted position, in stream order.
	nll []float64 // dense −log p(next token)
	top []int32   // dense argmax
}

// NewReference cuts ids into windows of window tokens (BOS first when bos ≥
// 0, each window a fresh sequence) and records the dense model's
// next-token negative log-likelihood and argmax at every position of every
// window. The dense pass is batched (prompt mode); numerically it equals
// decoding token by token up to float rounding.
func NewReference(m *model.Model, pool *kernels.Pool, ids []int, window, bos int) (*Reference, error) {
	if window < 2 {
		return nil, fmt.Errorf("sparsity: evaluation window of %d tokens is too small", window)
	}
	window = min(window, m.Cfg.MaxPos)
	r := &Reference{ids: ids, window: window, bos: bos}
	s := m.NewSession(pool, window)
	V := m.Cfg.Vocab
	err := r.windows(func(win []int) error {
		s.Reset()
		logits, err := s.Forward(win, true)
		if err != nil {
			return err
		}
		for i := 0; i+1 < len(win); i++ {
			row := logits[i*V : (i+1)*V]
			r.nll = append(r.nll, nll(row, win[i+1]))
			r.top = append(r.top, int32(argmax(row)))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(r.nll) == 0 {
		return nil, errors.New("sparsity: no tokens to evaluate")
	}
	return r, nil
}

// windows calls f with each window of the stream (BOS prepended).
func (r *Reference) windows(f func(win []int) error) error {
	step := r.window
	if r.bos >= 0 {
		step--
	}
	win := make([]int, 0, r.window)
	for start := 0; start < len(r.ids); start += step {
		win = win[:0]
		if r.bos >= 0 {
			win = append(win, r.bos)
		}
		win = append(win, r.ids[start:min(start+step, len(r.ids))]...)
		if len(win) < 2 {
			continue
		}
		if err := f(win); err != nil {
			return err
		}
	}
	return nil
}

// Tokens is the number of predicted positions.
func (r *Reference) Tokens() int { return len(r.nll) }

// PPL is the dense perplexity.
func (r *Reference) PPL() float64 {
	var s float64
	for _, v := range r.nll {
		s += v
	}
	return math.Exp(s / float64(len(r.nll)))
}

// Evaluation compares sparse decoding with the dense reference.
type Evaluation struct {
	Tokens    int           // predicted positions
	PPLDense  float64       // dense perplexity
	PPLSparse float64       // perplexity decoding sparsely
	Agreement float64       // fraction of positions whose sparse argmax is the dense argmax
	Density   model.Density // what the sparse decode steps actually computed
}

// PPLRise is the relative perplexity increase of sparse over dense.
func (e Evaluation) PPLRise() float64 { return e.PPLSparse/e.PPLDense - 1 }

// Evaluate decodes every window of the reference's stream in decode mode:
// the first token (BOS) densely, then every following token alone through
// sel, teacher-forced on the text. It reports the sparse perplexity, the
// top-1 agreement with the dense argmax at each position and the density
// actually computed. m must have been prepared with PrepareSparse.
func (r *Reference) Evaluate(m *model.Model, pool *kernels.Pool, sel model.Selector) (Evaluation, error) {
	e := Evaluation{PPLDense: r.PPL()}
	s := m.NewSession(pool, r.window)
	var sum float64
	var match, k int
	err := r.windows(func(win []int) error {
		s.Reset()
		s.SetSelector(nil)
		logits, err := s.Forward(win[:1], false)
		if err != nil {
			return err
		}
		s.SetSelector(sel)
		for i := 0; i+1 < len(win); i++ {
			if i > 0 {
				if logits, err = s.Forward(win[i:i+1], false); err != nil {
					return err
				}
			}
			sum += nll(logits, win[i+1])
			if int32(argmax(logits)) == r.top[k] {
				match++
			}
			k++
		}
		return nil
	})
	if err != nil {
		return e, err
	}
	e.Tokens = k
	e.Density = s.Density() // cumulative over the windows (Reset keeps it)
	e.PPLSparse = math.Exp(sum / float64(k))
	e.Agreement = float64(match) / float64(k)
	return e, nil
}

// nll is −log softmax(logits)[target].
func nll(logits []float32, target int) float64 {
	mx := logits[0]
	for _, v := range logits {
		mx = max(mx, v)
	}
	var s float64
	for _, v := range logits {
		s += math.Exp(float64(v - mx))
	}
	return math.Log(s) - float64(logits[target]-mx)
}
