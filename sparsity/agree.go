package sparsity

import (
	"fmt"

	"dejavu/generate"
	"dejavu/kernels"
	"dejavu/model"
)

// Agreement is a teacher-forced comparison of sparse with dense decoding.
type Agreement struct {
	Dense   []int         // the dense greedy continuation
	Steps   int           // sparse decode steps compared
	Matches int           // steps whose sparse argmax equals the dense token
	Density model.Density // what the sparse steps computed
}

// Rate is Matches/Steps (1 when nothing was compared).
func (a Agreement) Rate() float64 {
	if a.Steps == 0 {
		return 1
	}
	return float64(a.Matches) / float64(a.Steps)
}

// TopOneAgreement runs the dense greedy continuation of prompt for n tokens,
// then feeds the same tokens to a sparse session (dense prompt pass, decode
// steps through sel) and counts the steps whose argmax is the dense token.
// m must have been prepared with PrepareSparse.
func TopOneAgreement(m *model.Model, pool *kernels.Pool, sel model.Selector, prompt []int, n int) (Agreement, error) {
	var a Agreement
	if len(prompt)+n > m.Cfg.MaxPos {
		return a, fmt.Errorf("sparsity: %d prompt + %d tokens exceed the model's %d positions", len(prompt), n, m.Cfg.MaxPos)
	}
	s := m.NewSession(pool, len(prompt)+n)
	logits, err := s.Forward(prompt, false)
	if err != nil {
		return a, err
	}
	for i := 0; i < n; i++ {
		id := generate.Argmax(logits)
		a.Dense = append(a.Dense, id)
		if i+1 < n {
			if logits, err = s.Forward([]int{id}, false); err != nil {
				return a, err
			}
		}
	}
	sp := m.NewSession(pool, len(prompt)+n)
	if _, err := sp.Forward(prompt, false); err != nil {
		return a, err
	}
	sp.SetSelector(sel)
	for i := 0; i+1 < n; i++ {
		logits, err := sp.Forward([]int{a.Dense[i]}, false)
		if err != nil {
			return a, err
		}
		a.Steps++
		if generate.Argmax(logits) == a.Dense[i+1] {
			a.Matches++
		}
	}
	a.Density = sp.Density()
	return a, nil
}
