package model

import (
	"fmt"

	"dejavu/kernels"
)

// Quantize converts the model's weight matrices to dtype (kernels.Q8_0, or
// F32/F16/BF16 to decode or re-round them), on the heap: the matrices of
// every layer (Q, K, V, O, Gate, Up, Down), the OPT projections, the token
// embedding and the output head. The head is quantized as well: it is the
// largest single matrix a decode step reads (a tenth of OPT-1.3B's bytes)
// and, when tied, the same matrix as the embedding; llama.cpp's Q8_0 files
// quantize it too. Norms, biases and OPT's learned positions (one row read
// per token) stay as they are. A matrix whose columns are not a multiple
// of 32 cannot be Q8_0 and keeps its dtype.
//
// The checkpoint stays mapped (Close still releases it); the converted
// matrices replace the mapped ones. If PrepareSparse ran before, its
// neuron-major copies are rebuilt from the converted matrices (for Q8_0,
// by kernels.Mat.Transpose: a second rounding). Cfg.DType becomes the
// name of dtype.
func (m *Model) Quantize(dtype kernels.DType) error {
	do := func(w *kernels.Mat) error {
		if w.Rows == 0 || w.DType == dtype {
			return nil
		}
		if (dtype == kernels.Q8_0 || dtype == kernels.Q4_0) && w.Cols%kernels.Q8Block != 0 {
			return nil
		}
		q, err := w.Quantize(dtype)
		if err != nil {
			return err
		}
		*w = q
		return nil
	}
	tied := m.Cfg.TiedHead // Head is Embed: convert it once
	mats := []*kernels.Mat{&m.Embed}
	if !tied {
		mats = append(mats, &m.Head)
	}
	for _, p := range []*Linear{m.ProjIn, m.ProjOut} {
		if p != nil {
			mats = append(mats, &p.W)
		}
	}
	for i := range m.Layers {
		l := &m.Layers[i]
		for _, p := range []*Linear{&l.Q, &l.K, &l.V, &l.O, &l.Gate, &l.Up, &l.Down} {
			mats = append(mats, &p.W)
		}
	}
	for _, w := range mats {
		if err := do(w); err != nil {
			return fmt.Errorf("model: quantize to %v: %w", dtype, err)
		}
	}
	if tied {
		m.Head = m.Embed
	}
	m.Cfg.DType = dtype.String()
	if m.sparse != nil {
		m.sparse = nil
		m.PrepareSparse()
	}
	return nil
}

// ParseDType maps a weight type name (f32, f16, bf16, q8_0, q4_0) to its
// kernels.DType.
func ParseDType(s string) (kernels.DType, bool) {
	dt, ok := map[string]kernels.DType{"f32": kernels.F32, "f16": kernels.F16, "bf16": kernels.BF16, "q8_0": kernels.Q8_0, "q4_0": kernels.Q4_0}[s]
	return dt, ok
}
