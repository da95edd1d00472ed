// Package sparsity implements DejaVu's contextual-sparsity predictors:
// recording a dense model's activations on text (Collect, Dataset), training
// per-layer low-rank predictors of the active MLP neurons and of the
// important attention heads of the next layer (Train), and loading them as
// a model.Selector for sparse decoding (Load, Predictors).
package sparsity

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"

	"dejavu/kernels"
	"dejavu/model"
)

// Fingerprint identifies a model's weights: SHA-256 over its configuration,
// the shapes and types of its matrices and a sample of rows of every layer
// matrix (first, middle, last) and of the embedding. Predictors and
// recorded activations carry it so they are never used with another model.
func Fingerprint(m *model.Model) string {
	h := sha256.New()
	c := m.Cfg
	fmt.Fprintf(h, "dejavu-fingerprint/1 %s %v vocab=%d d=%d L=%d H=%d KV=%d hd=%d ffn=%d act=%s preln=%v proj=%d\n",
		c.Arch, c.Family, c.Vocab, c.Hidden, c.Layers, c.Heads, c.KVHeads, c.HeadDim, c.FFN, c.ActName, c.PreLN, c.ProjDim)
	var buf []float32
	var b4 [4]byte
	sample := func(name string, w kernels.Mat) {
		fmt.Fprintf(h, "%s %v %dx%d\n", name, w.DType, w.Rows, w.Cols)
		if w.Rows == 0 || w.Cols == 0 {
			return
		}
		if cap(buf) < w.Cols {
			buf = make([]float32, w.Cols)
		}
		row := buf[:w.Cols]
		for _, r := range []int{0, w.Rows / 2, w.Rows - 1} {
			w.Row(r, row)
			for _, v := range row {
				binary.LittleEndian.PutUint32(b4[:], math.Float32bits(v))
				h.Write(b4[:])
			}
		}
	}
	sample("embed", m.Embed)
	for i := range m.Layers {
		l := &m.Layers[i]
		for _, x := range []struct {
			n string
			w kernels.Mat
		}{{"q", l.Q.W}, {"k", l.K.W}, {"v", l.V.W}, {"o", l.O.W}, {"gate", l.Gate.W}, {"up", l.Up.W}, {"down", l.Down.W}} {
			sample(fmt.Sprintf("layer%d.%s", i, x.n), x.w)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// standardize writes x normalised without affine parameters into dst: mean
// 0 and variance 1 for LayerNorm models (OPT), unit RMS for RMSNorm models.
// Predictors see the residual stream through it, whatever its scale.
func standardize(dst, x []float32, rms bool) {
	n := float32(len(x))
	var mean float32
	if !rms {
		for _, v := range x {
			mean += v
		}
		mean /= n
	}
	var ss float32
	for _, v := range x {
		d := v - mean
		ss += d * d
	}
	inv := float32(1 / math.Sqrt(float64(ss/n)+1e-5))
	for i, v := range x {
		dst[i] = (v - mean) * inv
	}
}
