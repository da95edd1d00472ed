package model

import (
	"path/filepath"
	"testing"

	"dejavu/kernels"
)

// TestDeferredKVEqualsEager: sparse decoding that computes K and V only for
// the selected heads (catching skipped heads up later) gives the logits of
// sparse decoding that computes every head's K and V each step, through
// decode steps, a dense multi-token pass between them (which must catch
// every head up first), and a truncation that rewinds past skipped entries.
func TestDeferredKVEqualsEager(t *testing.T) {
	pool := kernels.NewPool(2)
	defer pool.Close()
	for _, name := range tinyModels {
		m, err := Load(filepath.Join("..", "testdata", "models", name))
		if err != nil {
			t.Fatal(err)
		}
		m.PrepareSparse()
		c := m.Cfg
		run := func(eager bool) ([]float32, Density) {
			s := m.NewSession(pool, 0)
			s.eagerKV = eager
			s.SetSelector(newRandomSelector(c, 0.5, 0.25)) // long runs of skipped heads
			var out []float32
			fwd := func(ids ...int) {
				row, err := s.Forward(ids, false)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, row...)
			}
			fwd(1, 2, 3, 4, 5) // dense prompt
			for i := range 20 {
				fwd((7*i + 11) % c.Vocab)
			}
			fwd(9, 8, 7) // dense again: skipped heads caught up first
			for i := range 10 {
				fwd((5*i + 3) % c.Vocab)
			}
			s.Truncate(s.Pos() - 12) // back into the sparse steps
			for i := range 8 {
				fwd((3*i + 2) % c.Vocab)
			}
			return out, s.Density()
		}
		want, _ := run(true)
		got, d := run(false)
		checkRows(t, name+" deferred vs eager K/V", got, want, c.Vocab, 1e-4)
		if d.KV() >= 1 && c.KVHeads == c.Heads {
			t.Errorf("%s: key/value density %.2f: no head was deferred", name, d.KV())
		}
	}
}
