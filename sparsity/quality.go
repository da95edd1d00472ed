package sparsity

import (
	"math"
	"slices"

	"dejavu/kernels"
	"dejavu/model"
)

// Quality criteria for budgets. Recall of active neurons treats a neuron
// whose activation is barely positive like the largest one; what matters
// to the layer's output is each neuron's contribution |aᵢ|·‖W_down[:, i]‖.
// The activation-mass recall of a selection is the selected neurons'
// contribution over all neurons' (per token, then averaged); 1 − mass
// recall bounds the relative error of the MLP output against that total
// (triangle inequality). Heads are measured the same way with their output
// norms.

// neuronMass returns, for the given rows of X (standardized MLP inputs,
// Hidden per row), every neuron's contribution |aᵢ|·‖W_down[:, i]‖ (rows ×
// FFN), recomputed exactly from the model's weights; nil when the model
// applies its norm outside the block (post-LN OPT).
func neuronMass(m *model.Model, pool *kernels.Pool, l int, X []float32, rows []int) []float32 {
	c := m.Cfg
	L := &m.Layers[l]
	first := &L.Up
	if c.Family == model.Llama {
		first = &L.Gate
	}
	w, b, ok := exactLinear(m, l, first)
	if !ok {
		return nil
	}
	var wu, bu []float32
	if c.Family == model.Llama {
		wu, bu, _ = exactLinear(m, l, &L.Up)
	}
	d, F := c.Hidden, c.FFN
	colNorm := make([]float32, F)
	row := make([]float32, F)
	for r := 0; r < L.Down.W.Rows; r++ {
		L.Down.W.Row(r, row)
		for i, v := range row {
			colNorm[i] += v * v
		}
	}
	for i, v := range colNorm {
		colNorm[i] = sqrt32(v)
	}
	e := kernels.NewExec(pool, max(d, F))
	W := kernels.MatF32(F, d, w)
	var Wu kernels.Mat
	if wu != nil {
		Wu = kernels.MatF32(F, d, wu)
	}
	out := make([]float32, len(rows)*F)
	const chunk = 256
	xs := make([]float32, chunk*d)
	up := make([]float32, chunk*F)
	for s := 0; s < len(rows); s += chunk {
		n := min(chunk, len(rows)-s)
		for k, i := range rows[s : s+n] {
			copy(xs[k*d:(k+1)*d], X[i*d:(i+1)*d])
		}
		a := out[s*F : (s+n)*F]
		e.MatMul(a, W, xs[:n*d], n)
		for k := 0; k < n; k++ {
			kernels.Add(a[k*F:(k+1)*F], b)
		}
		if wu != nil {
			u := up[:n*F]
			e.MatMul(u, Wu, xs[:n*d], n)
			for k := 0; k < n; k++ {
				kernels.Add(u[k*F:(k+1)*F], bu)
			}
			c.Act.GatedAct(a, u)
		} else {
			c.Act.Apply(a)
		}
		for k := 0; k < n; k++ {
			for i, v := range a[k*F : (k+1)*F] {
				a[k*F+i] = abs32(v) * colNorm[i]
			}
		}
	}
	return out
}

func abs32(v float32) float32 { return math.Float32frombits(math.Float32bits(v) &^ (1 << 31)) }

// exactLinear returns the map from the standardized MLP input to the
// pre-activations of lin (an MLP input matrix of layer l), W' (rows×Hidden)
// and b', when the model applies its norm inside the block (pre-LN OPT,
// Llama); ok is false otherwise.
func exactLinear(m *model.Model, l int, lin *model.Linear) (w, b []float32, ok bool) {
	c := m.Cfg
	L := &m.Layers[l]
	if c.Family != model.Llama && !c.PreLN {
		return nil, nil, false
	}
	d, F := c.Hidden, lin.W.Rows
	w = make([]float32, F*d)
	b = make([]float32, F)
	for f := 0; f < F; f++ {
		row := w[f*d : (f+1)*d]
		lin.W.Row(f, row)
		var s float32
		for i := range row {
			if L.MLPNormB != nil {
				s += row[i] * L.MLPNormB[i]
			}
			if L.MLPNormW != nil {
				row[i] *= L.MLPNormW[i]
			}
		}
		if lin.B != nil {
			s += lin.B[f]
		}
		b[f] = s
	}
	return w, b, true
}

// coverTask accumulates, per worker, the share of each row's mass covered
// by the top-k logits for every budget k = step·(i+1).
type coverTask struct {
	zs, mass  []float32
	out, step int
	acc       [][]float64
	scratch   [][]float32
}

func (t *coverTask) Run(w, start, end int) {
	out := t.out
	s := t.scratch[w]
	acc := t.acc[w]
	for k := start; k < end; k++ {
		z := t.zs[k*out : (k+1)*out]
		ms := t.mass[k*out : (k+1)*out]
		var total float64
		for _, v := range ms {
			total += float64(v)
		}
		if total == 0 {
			for i := range acc {
				acc[i]++
			}
			continue
		}
		copy(s, z)
		slices.Sort(s)
		for f, v := range ms {
			if v == 0 {
				continue
			}
			rank := out - upperBound(s, z[f]) // larger logits: selected before f
			acc[rank/t.step] += float64(v) / total
		}
	}
}

// coverCurve returns, for budgets k = step·(i+1) (the last one all of
// out), the mean over the n rows of the share of each row's mass (n×out,
// ≥ 0) that the top-k logits zs (n×out) cover.
func coverCurve(pool *kernels.Pool, zs, mass []float32, n, out, step int) []float32 {
	nb := (out + step - 1) / step
	W := pool.Threads()
	t := &coverTask{zs: zs, mass: mass, out: out, step: step, acc: make([][]float64, W), scratch: make([][]float32, W)}
	for w := range W {
		t.acc[w] = make([]float64, nb)
		t.scratch[w] = make([]float32, out)
	}
	pool.Parallel(n, 16, t)
	curve := make([]float32, nb)
	var cum float64
	for i := range curve {
		for w := range W {
			cum += t.acc[w][i]
		}
		curve[i] = float32(min(1, cum/float64(max(1, n))))
	}
	curve[nb-1] = 1
	return curve
}

// budgetFor is the smallest budget step·(i+1) whose curve value reaches
// target (out when none does).
func budgetFor(curve []float32, target float64, step, out int) int {
	for i, v := range curve {
		if float64(v) >= target-1e-9 {
			return min(out, step*(i+1))
		}
	}
	return out
}

// predLogits computes the logits of lr for the given rows of X.
func predLogits(pool *kernels.Pool, lr *lowRank, X []float32, in int, rows []int) []float32 {
	r, out := lr.A.Rows, lr.B.Rows
	e := kernels.NewExec(pool, max(in, r, out))
	zs := make([]float32, len(rows)*out)
	const chunk = 256
	xs := make([]float32, chunk*in)
	h := make([]float32, chunk*r)
	for s := 0; s < len(rows); s += chunk {
		n := min(chunk, len(rows)-s)
		for k, i := range rows[s : s+n] {
			copy(xs[k*in:(k+1)*in], X[i*in:(i+1)*in])
		}
		e.MatMul(h[:n*r], lr.A, xs[:n*in], n)
		z := zs[s*out : (s+n)*out]
		e.MatMul(z, lr.B, h[:n*r], n)
		for k := 0; k < n; k++ {
			kernels.Add(z[k*out:(k+1)*out], lr.Bias)
		}
	}
	return zs
}

// gatherRows copies the given rows (of width w) of x.
func gatherRows(x []float32, w int, rows []int) []float32 {
	out := make([]float32, len(rows)*w)
	for k, i := range rows {
		copy(out[k*w:(k+1)*w], x[i*w:(i+1)*w])
	}
	return out
}
