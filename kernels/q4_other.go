//go:build !amd64

package kernels

import "unsafe"

func q4HasAsm(DType) bool { return false }

func archDotRowsQ4(int, DType, unsafe.Pointer, int, *q4X, *float32, *int32, int, int) {
	panic("kernels: no assembly kernels on this architecture")
}

func archQuantQ4X([]float32, *q4X) {
	panic("kernels: no assembly kernels on this architecture")
}

func archDequantQ4(DType, *byte, *float32, int) {
	panic("kernels: no assembly kernels on this architecture")
}
