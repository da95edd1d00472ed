package sparsity

import (
	"math"
	"math/rand/v2"
	"testing"

	"dejavu/kernels"
	"dejavu/model"
)

// TestQuantizePredictors: q8_0 MLP predictors (rank padded to a block)
// give logits within the 8-bit rounding of the f16 ones, select nearly the
// same neurons, read about half the bytes, and other types are refused.
func TestQuantizePredictors(t *testing.T) {
	m, err := model.Synthetic("opt-125m", kernels.F16, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	p, err := RandomPredictors(m, 0.1, 0.5, 1)
	if err != nil {
		t.Fatal(err)
	}
	q, err := RandomPredictors(m, 0.1, 0.5, 1)
	if err != nil {
		t.Fatal(err)
	}
	if r := q.mlp[0].A.Rows; r%kernels.Q8Block == 0 {
		t.Fatalf("rank %d is already whole blocks: the padding is not exercised", r)
	}
	if err := q.Quantize(kernels.F16); err == nil {
		t.Error("Quantize(F16) accepted")
	}
	if err := q.Quantize(kernels.Q8_0); err != nil {
		t.Fatal(err)
	}
	if q.mlp[0].A.DType != kernels.Q8_0 || q.mlp[0].A.Rows%kernels.Q8Block != 0 {
		t.Fatalf("A is %v with %d rows after Quantize", q.mlp[0].A.DType, q.mlp[0].A.Rows)
	}
	var mlpBytes, qBytes int64
	for l := range p.mlp {
		mlpBytes += p.mlp[l].A.Bytes() + p.mlp[l].B.Bytes()
		qBytes += q.mlp[l].A.Bytes() + q.mlp[l].B.Bytes()
	}
	if f := float64(qBytes) / float64(mlpBytes); f > 0.6 {
		t.Errorf("q8_0 predictors are %.2f of the f16 bytes, want about half", f)
	}
	c := m.Cfg
	r := rand.New(rand.NewPCG(3, 4))
	x := make([]float32, c.Hidden)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	var same, total int
	for l := range c.Layers {
		zp := append([]float32(nil), p.logits(&p.mlp[l], x)...)
		zq := q.logits(&q.mlp[l], x)
		var maxRef, maxDiff float64
		for i := range zp {
			maxRef = max(maxRef, math.Abs(float64(zp[i])))
			maxDiff = max(maxDiff, math.Abs(float64(zp[i]-zq[i])))
		}
		if maxDiff > 0.03*maxRef {
			t.Errorf("layer %d: q8_0 logits differ by %.3g (max |logit| %.3g)", l, maxDiff, maxRef)
		}
		sp := p.MLP(l, x, nil)
		sq := q.MLP(l, x, nil)
		in := map[int32]bool{}
		for _, i := range sp {
			in[i] = true
		}
		for _, i := range sq {
			if in[i] {
				same++
			}
		}
		total += len(sp)
	}
	if f := float64(same) / float64(total); f < 0.9 {
		t.Errorf("q8_0 predictors kept %.3f of the f16 selections, want ≥ 0.9", f)
	}
}
