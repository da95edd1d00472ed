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
//
// It does not depend on the file the weights came from: the configuration
// enters as the block layout (Family, biases), not the architecture name,
// and the q/k rows of interleaved-RoPE models (GGUF "llama", llama2.c) are
// sampled in Hugging Face's half-split order. So an f16 GGUF written by
// `dejavu convert` from an f16 checkpoint has the checkpoint's
// fingerprint, and predictors trained on either serve both; a copy in
// another precision has other weights and another fingerprint.
func Fingerprint(m *model.Model) string {
	c := m.Cfg
	hdr := fmt.Sprintf("dejavu-fingerprint/2 %v vocab=%d d=%d L=%d H=%d KV=%d hd=%d ffn=%d act=%s preln=%v proj=%d qkvbias=%v\n",
		c.Family, c.Vocab, c.Hidden, c.Layers, c.Heads, c.KVHeads, c.HeadDim, c.FFN, c.ActName, c.PreLN, c.ProjDim, c.QKVBias)
	return fingerprint(m, hdr, true, c.Interleave)
}

// legacyFingerprint is the first version of Fingerprint (architecture name
// in the header, rows in storage order), still accepted when loading
// predictors and activations recorded with it.
func legacyFingerprint(m *model.Model) string {
	c := m.Cfg
	hdr := fmt.Sprintf("dejavu-fingerprint/1 %s %v vocab=%d d=%d L=%d H=%d KV=%d hd=%d ffn=%d act=%s preln=%v proj=%d\n",
		c.Arch, c.Family, c.Vocab, c.Hidden, c.Layers, c.Heads, c.KVHeads, c.HeadDim, c.FFN, c.ActName, c.PreLN, c.ProjDim)
	return fingerprint(m, hdr, false, false)
}

// fingerprintMatches reports whether fp (from a file) identifies m: equals
// current (Fingerprint(m), which the callers have at hand) or m's legacy
// fingerprint.
func fingerprintMatches(m *model.Model, current, fp string) bool {
	return fp == current || fp == legacyFingerprint(m)
}

// fingerprint hashes hdr and the sampled rows (first, middle, last and, if
// second, also the second: a q/k row that RoPE layouts order differently);
// halfSplit maps q/k rows from the interleaved RoPE layout to the
// half-split one.
func fingerprint(m *model.Model, hdr string, second, halfSplit bool) string {
	h := sha256.New()
	h.Write([]byte(hdr))
	var buf []float32
	var b4 [4]byte
	hd := m.Cfg.HeadDim
	sample := func(name string, w kernels.Mat, rope bool) {
		fmt.Fprintf(h, "%s %v %dx%d\n", name, w.DType, w.Rows, w.Cols)
		if w.Rows == 0 || w.Cols == 0 {
			return
		}
		if cap(buf) < w.Cols {
			buf = make([]float32, w.Cols)
		}
		row := buf[:w.Cols]
		rows := []int{0, w.Rows / 2, w.Rows - 1}
		if second {
			rows = append(rows, min(1, w.Rows-1))
		}
		for _, r := range rows {
			if rope && halfSplit && hd >= 2 {
				// Row j of a head in the half-split layout is pair j mod
				// hd/2, element j div hd/2: row 2(j mod hd/2) + j div hd/2
				// of the interleaved one.
				j, half := r%hd, hd/2
				r = r - j + (j%half)*2 + j/half
			}
			w.Row(r, row)
			for _, v := range row {
				binary.LittleEndian.PutUint32(b4[:], math.Float32bits(v))
				h.Write(b4[:])
			}
		}
	}
	sample("embed", m.Embed, false)
	for i := range m.Layers {
		l := &m.Layers[i]
		for _, x := range []struct {
			n    string
			w    kernels.Mat
			rope bool
		}{{"q", l.Q.W, true}, {"k", l.K.W, true}, {"v", l.V.W, false}, {"o", l.O.W, false}, {"gate", l.Gate.W, false}, {"up", l.Up.W, false}, {"down", l.Down.W, false}} {
			sample(fmt.Sprintf("layer%d.%s", i, x.n), x.w, x.rope)
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
