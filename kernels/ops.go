package kernels

import "math"

// RMSNorm writes x / sqrt(mean(x²) + eps) * w into dst.
func RMSNorm(dst, x, w []float32, eps float32) {
	var ss float64
	for _, v := range x {
		ss += float64(v) * float64(v)
	}
	inv := float32(1 / math.Sqrt(ss/float64(len(x))+float64(eps)))
	for i, v := range x {
		dst[i] = v * inv * w[i]
	}
}

// LayerNorm writes (x - mean) / sqrt(var + eps) * w + b into dst; b may be nil.
func LayerNorm(dst, x, w, b []float32, eps float32) {
	var mean float64
	for _, v := range x {
		mean += float64(v)
	}
	mean /= float64(len(x))
	var vr float64
	for _, v := range x {
		d := float64(v) - mean
		vr += d * d
	}
	inv := 1 / math.Sqrt(vr/float64(len(x))+float64(eps))
	for i, v := range x {
		o := float32((float64(v) - mean) * inv)
		o *= w[i]
		if b != nil {
			o += b[i]
		}
		dst[i] = o
	}
}

// Softmax replaces x by its softmax.
func Softmax(x []float32) {
	if len(x) == 0 {
		return
	}
	m := x[0]
	for _, v := range x[1:] {
		m = max(m, v)
	}
	var s float32
	for i, v := range x {
		e := float32(math.Exp(float64(v - m)))
		x[i] = e
		s += e
	}
	inv := 1 / s
	for i := range x {
		x[i] *= inv
	}
}

// Add sets dst[i] += x[i].
func Add(dst, x []float32) {
	x = x[:len(dst)]
	for i := range dst {
		dst[i] += x[i]
	}
}

// Act is an elementwise activation function.
type Act uint8

// Activations supported by the MLPs.
const (
	ReLU     Act = iota
	SiLU         // x·σ(x)
	GELU         // exact, with erf
	GELUTanh     // the tanh approximation
)

// Apply replaces x by act(x).
func (a Act) Apply(x []float32) {
	switch a {
	case ReLU:
		for i, v := range x {
			if v < 0 {
				x[i] = 0
			}
		}
	case SiLU:
		for i, v := range x {
			x[i] = v / (1 + float32(math.Exp(-float64(v))))
		}
	case GELU:
		for i, v := range x {
			x[i] = float32(0.5 * float64(v) * (1 + math.Erf(float64(v)/math.Sqrt2)))
		}
	case GELUTanh:
		const c = 0.7978845608028654 // sqrt(2/π)
		for i, v := range x {
			f := float64(v)
			x[i] = float32(0.5 * f * (1 + math.Tanh(c*(f+0.044715*f*f*f))))
		}
	}
}

// GatedAct sets gate[i] = act(gate[i]) * up[i].
func (a Act) GatedAct(gate, up []float32) {
	a.Apply(gate)
	up = up[:len(gate)]
	for i := range gate {
		gate[i] *= up[i]
	}
}

// RoPE rotates one head vector x (len = 2·len(cos)) in place by the angles
// whose cosines and sines are given. Half-split pairs (x[i], x[i+d/2]) as in
// Hugging Face Llama, or interleaved pairs (x[2i], x[2i+1]) as in Meta's and
// llama2.c's layout.
func RoPE(x, cos, sin []float32, interleaved bool) {
	h := len(cos)
	if interleaved {
		for i := 0; i < h; i++ {
			a, b := x[2*i], x[2*i+1]
			x[2*i] = a*cos[i] - b*sin[i]
			x[2*i+1] = a*sin[i] + b*cos[i]
		}
		return
	}
	for i := 0; i < h; i++ {
		a, b := x[i], x[i+h]
		x[i] = a*cos[i] - b*sin[i]
		x[i+h] = b*cos[i] + a*sin[i]
	}
}
