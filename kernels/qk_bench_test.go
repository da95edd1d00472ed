package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"unsafe"

	"dejavu/internal/half"
)

// benchQKMat is a rows×cols matrix of dt (Q4_K, Q5_K or Q6_K) from random
// bytes with moderate f16 scales, without randQK's decoded copies (which
// would take 12 bytes per weight at the sizes below).
func benchQKMat(r *rand.Rand, dt DType, rows, cols int) Mat {
	data := make([]byte, rows*dt.RowBytes(cols))
	for i := 0; i < len(data); i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < len(data); j++ {
			data[i+j] = byte(v >> (8 * j))
		}
	}
	bb := dt.q4BlockBytes()
	h := half.F32ToF16(0.01)
	for b := 0; b < len(data)/bb; b++ {
		blk := data[b*bb : (b+1)*bb]
		if dt == Q6_K {
			blk[bb-2], blk[bb-1] = byte(h), byte(h>>8)
		} else {
			blk[0], blk[1], blk[2], blk[3] = byte(h), byte(h>>8), byte(h), byte(h>>8)
		}
	}
	m, err := NewMat(dt, rows, cols, data)
	if err != nil {
		panic(err)
	}
	return m
}

// BenchmarkQKGEMVSize is single-threaded GEMV over rows×cols weights of
// the k-quants of a Q4_K_M file: 512×2048 (in L2), 16384×2048 (as
// BenchmarkQKGEMV), 65536×2048 (Q6_K 108 MiB, Q4_K 74 MiB: from memory, as
// in decode) and 16384×8192 (rows as long as ffn_down's), per kernel set
// with assembly.
func BenchmarkQKGEMVSize(b *testing.B) {
	defer SetPureGo(false)
	r := rand.New(rand.NewPCG(5, 5))
	for _, dt := range []DType{Q6_K, Q4_K, Q5_K} {
		for _, sh := range [][2]int{{512, 2048}, {16384, 2048}, {65536, 2048}, {16384, 8192}} {
			rows, cols := sh[0], sh[1]
			m := benchQKMat(r, dt, rows, cols)
			x := randVec(r, cols, 0)
			y := make([]float32, rows)
			for _, name := range kernelNames() {
				if name == "go" {
					continue
				}
				b.Run(fmt.Sprintf("%v/%dx%d/%s", dt, rows, cols, name), func(b *testing.B) {
					useKernels(name)
					b.SetBytes(m.Bytes())
					for b.Loop() {
						m.gemvRows(y, x, 0, rows)
					}
				})
			}
		}
	}
}

// BenchmarkQKKernels compares the Q6_K, Q5_K and Q4_K dot kernels called
// directly, single-threaded, x quantized per call as in gemvRowsQ4: Q4_K
// (dotQ4KR4VNNI, dotQ4KR4AVX2), and the Q6_K and Q5_K kernels (dotQ6KAVX2,
// dotQ5KAVX2: AVX2, both sets).
func BenchmarkQKKernels(b *testing.B) {
	type kernel func(w unsafe.Pointer, stride int, xq *int8, dx, sx, y *float32, rows *int32, n, cols int)
	if len(archKernels) == 0 {
		b.Skip("no assembly kernels on this CPU")
	}
	r := rand.New(rand.NewPCG(6, 6))
	for _, dt := range []DType{Q6_K, Q5_K, Q4_K} {
		for _, sh := range [][2]int{{512, 2048}, {16384, 2048}, {65536, 2048}, {16384, 8192}} {
			rows, cols := sh[0], sh[1]
			m := benchQKMat(r, dt, rows, cols)
			x := randVec(r, cols, 0)
			y := make([]float32, rows)
			ks := []struct {
				name string
				fn   kernel
				ok   bool
			}{{"avx2", dotQ6KAVX2, true}}
			if dt == Q5_K {
				ks[0].fn = dotQ5KAVX2
			}
			if dt == Q4_K {
				ks = []struct {
					name string
					fn   kernel
					ok   bool
				}{{"r4vnni", dotQ4KR4VNNI, q4VNNI}, {"r4avx2", dotQ4KR4AVX2, true}}
			}
			for _, k := range ks {
				if !k.ok {
					continue
				}
				b.Run(fmt.Sprintf("%v/%dx%d/%s", dt, rows, cols, k.name), func(b *testing.B) {
					b.SetBytes(m.Bytes())
					for b.Loop() {
						qx := quantizeQ4X(x)
						k.fn(m.q4Ptr(0, rows), dt.RowBytes(cols), &qx.q[0], &qx.d[0], &qx.s[0], &y[0], nil, rows, cols)
						q4XPool.Put(qx)
					}
				})
			}
		}
	}
}

// BenchmarkQKDecodeShapes is single-threaded GEMV over the Q6_K and Q4_K
// matrices of a llama-3.2-1b Q4_K_M decode step, from memory as there:
// the 128256×2048 Q6_K head (215 MB), eight 2048×8192 Q6_K ffn_down
// matrices in turn (110 MB) and eight 8192×2048 Q4_K ffn_gate/up ones
// (75 MB); MB/s per matrix.
func BenchmarkQKDecodeShapes(b *testing.B) {
	defer SetPureGo(false)
	r := rand.New(rand.NewPCG(7, 7))
	for _, c := range []struct {
		name             string
		dt               DType
		rows, cols, mats int
	}{{"head", Q6_K, 128256, 2048, 1}, {"down", Q6_K, 2048, 8192, 8}, {"up", Q4_K, 8192, 2048, 8}} {
		ms := make([]Mat, c.mats)
		for i := range ms {
			ms[i] = benchQKMat(r, c.dt, c.rows, c.cols)
		}
		x := randVec(r, c.cols, 0)
		y := make([]float32, c.rows)
		for _, name := range kernelNames() {
			if name == "go" {
				continue
			}
			b.Run(fmt.Sprintf("%s/%v/%s", c.name, c.dt, name), func(b *testing.B) {
				useKernels(name)
				b.SetBytes(ms[0].Bytes())
				i := 0
				for b.Loop() {
					ms[i%len(ms)].gemvRows(y, x, 0, c.rows)
					i++
				}
			})
		}
	}
}
