package kernels

import "unsafe"

// Q6_K, Q5_K, Q5_0 and Q5_1 assembly kernels in qk_amd64.s (AVX2; Q6_K
// and Q5_K four rows per pass, rows j + t·q for q ≈ n/4, the others one),
// with the arguments of the Q4 kernels (q4_amd64.go); n > 0 and cols a
// positive multiple of the block (256 for the k-quants, 32 for
// Q5_0/Q5_1).

//go:noescape
func dotQ6KAVX2(w unsafe.Pointer, stride int, xq *int8, dx, sx, y *float32, rows *int32, n, cols int)

//go:noescape
func dotQ5KAVX2(w unsafe.Pointer, stride int, xq *int8, dx, sx, y *float32, rows *int32, n, cols int)

//go:noescape
func dotQ51AVX2(w unsafe.Pointer, stride int, xq *int8, dx, sx, y *float32, rows *int32, n, cols int)

//go:noescape
func dotQ50AVX2(w unsafe.Pointer, stride int, xq *int8, dx, sx, y *float32, rows *int32, n, cols int)

//go:noescape
func dequantQ6KAVX2(w *byte, dst *float32, blocks int)

//go:noescape
func dequantQ5KAVX2(w *byte, dst *float32, blocks int)

// q4HasAsm reports whether archDotRowsQ4 has a kernel for dt (the other
// types of the Q4 paths run their Go reference).
func q4HasAsm(dt DType) bool {
	switch dt {
	case Q4_0, Q4_K, Q6_K, Q5_K, Q5_0, Q5_1:
		return true
	}
	return false
}

// Q4_K kernels taking four rows per pass (qk_amd64.s; the VNNI one needs
// AVX512-VNNI with AVX512VL), with the arguments and conventions of the
// Q4_0 kernels (q4_amd64.s). They replaced one-row kernels (decode of a
// Q4_K_M file 0.85× → 0.96-0.99× llama.cpp, docs/benchmarks.md).

//go:noescape
func dotQ4KR4VNNI(w unsafe.Pointer, stride int, xq *int8, dx, sx, y *float32, rows *int32, n, cols int)

//go:noescape
func dotQ4KR4AVX2(w unsafe.Pointer, stride int, xq *int8, dx, sx, y *float32, rows *int32, n, cols int)
