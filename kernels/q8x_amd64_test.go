package kernels

import (
	"math/rand/v2"
	"testing"
)

// TestQ8QuantizeXMatchesGo: the assembly quantization of x gives quantizeX's
// bytes exactly (zero blocks, tiny and huge magnitudes, ties).
func TestQ8QuantizeXMatchesGo(t *testing.T) {
	r := rand.New(rand.NewPCG(37, 38))
	for _, name := range kernelNames() {
		id := 0
		for _, k := range archKernels {
			if k.name == name {
				id = k.id
			}
		}
		if id == 0 {
			continue
		}
		for _, cols := range []int{32, 64, 96, 2048} {
			for rep := range 20 {
				x := randVec(r, cols, 0)
				for i := range x {
					switch rep % 5 {
					case 1:
						x[i] *= 1e-30
					case 2:
						x[i] *= 1e30
					case 3:
						x[i] = float32(r.IntN(255)-127) / 2 // ties after scaling
					}
				}
				if rep%4 == 0 {
					clear(x[:Q8Block]) // a zero block
				}
				want := make([]byte, cols/Q8Block*q8xBlockBytes)
				quantizeX(want, x)
				var got q8xBuf
				archQuantizeX(id, &got[0], &x[0], cols)
				if string(got[:len(want)]) != string(want) {
					for i := range want {
						if got[i] != want[i] {
							t.Fatalf("%s cols %d rep %d: byte %d = %d, want %d", name, cols, rep, i, got[i], want[i])
						}
					}
				}
			}
		}
	}
}

// BenchmarkQ8QuantizeX is the per-product cost of quantizing x (2048
// values) in Go and with the assembly of each kernel set.
func BenchmarkQ8QuantizeX(b *testing.B) {
	x := randVec(rand.New(rand.NewPCG(4, 4)), 2048, 0)
	var buf q8xBuf
	b.Run("go", func(b *testing.B) {
		for b.Loop() {
			quantizeX(buf[:2048/Q8Block*q8xBlockBytes], x)
		}
	})
	for _, k := range archKernels {
		b.Run(k.name, func(b *testing.B) {
			for b.Loop() {
				archQuantizeX(k.id, &buf[0], &x[0], len(x))
			}
		})
	}
}
