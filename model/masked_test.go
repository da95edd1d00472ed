package model

import (
	"path/filepath"
	"slices"
	"testing"

	"dejavu/kernels"
)

// TestSparseBatchesMatchDecode: a masked batched pass computes what the
// sparse decode path computes token by token (same selections, logits
// within float rounding), and differs from the dense pass.
func TestSparseBatchesMatchDecode(t *testing.T) {
	pool := kernels.NewPool(2)
	defer pool.Close()
	for _, name := range tinyModels {
		m, err := Load(filepath.Join("..", "testdata", "models", name))
		if err != nil {
			t.Fatal(err)
		}
		m.PrepareSparse()
		ids, dense := refLogits(t, filepath.Join("..", "testdata", "logits", name+".safetensors"))

		dec := m.NewSession(pool, 0)
		dec.SetSelector(newInputSelector(m.Cfg, 0.4, 0.5))
		want := decodeAll(t, dec, ids)

		bat := m.NewSession(pool, 0)
		bat.SetSelector(newInputSelector(m.Cfg, 0.4, 0.5))
		bat.SetSparseBatches(true)
		got, err := bat.Forward(ids, true)
		if err != nil {
			t.Fatal(err)
		}
		checkRows(t, name+" sparse batches vs decode", got, want, m.Cfg.Vocab, 1e-4)
		if dd, bd := dec.Density(), bat.Density(); dd != bd {
			t.Errorf("%s: density of batches %+v, of decode %+v", name, bd, dd)
		}
		if slices.Equal(got, dense) {
			t.Errorf("%s: masked batch equals the dense logits: no masking applied", name)
		}
		// Without a selector, sparse batches are dense.
		plain := m.NewSession(pool, 0)
		plain.SetSparseBatches(true)
		rows, err := plain.Forward(ids, true)
		if err != nil {
			t.Fatal(err)
		}
		checkRows(t, name+" sparse batches without selector", rows, dense, m.Cfg.Vocab, 1e-4)
		m.Close()
	}
}
