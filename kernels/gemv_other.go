//go:build !amd64

package kernels

import "unsafe"

// archKernels is empty: on this architecture every product uses the pure-Go
// reference.
var archKernels []gemvKernels

func archGemv(int, DType, unsafe.Pointer, *float32, *float32, int, int) {
	panic("kernels: no assembly kernels on this architecture")
}

func archDot(int, *float32, *float32, int) float32 {
	panic("kernels: no assembly kernels on this architecture")
}
