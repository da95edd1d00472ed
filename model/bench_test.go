package model

import (
	"os"
	"path/filepath"
	"testing"

	"dejavu/kernels"
)

// benchModel is the real test-bed when present, else a tiny fixture.
func benchModel(b testing.TB) *Model {
	path := filepath.Join("..", "..", "shared", "data", "models", "testbed-opt-relu")
	if _, err := os.Stat(path); err != nil {
		path = filepath.Join("..", "testdata", "models", "llama-silu")
	}
	m, err := Load(path)
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// BenchmarkDecodeStep is one token through the KV cache (run with -benchmem:
// steady-state decode allocates nothing).
func BenchmarkDecodeStep(b *testing.B) {
	m := benchModel(b)
	defer m.Close()
	pool := kernels.NewPool(0)
	defer pool.Close()
	s := m.NewSession(pool, 0)
	b.ReportAllocs()
	b.SetBytes(m.WeightBytes())
	for i := 0; b.Loop(); i++ {
		if s.Pos() == s.MaxCtx() || s.Pos() >= 256 {
			s.Reset()
		}
		if _, err := s.Forward([]int{i % m.Cfg.Vocab}, false); err != nil {
			b.Fatal(err)
		}
	}
}

func TestDecodeDoesNotAllocate(t *testing.T) {
	m := benchModel(t)
	defer m.Close()
	pool := kernels.NewPool(2)
	defer pool.Close()
	s := m.NewSession(pool, 64)
	if _, err := s.Forward([]int{1, 2, 3}, false); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(20, func() {
		if _, err := s.Forward([]int{5}, false); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("a decode step allocates %.1f times", allocs)
	}
}
