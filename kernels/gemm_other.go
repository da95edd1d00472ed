//go:build !amd64

package kernels

import "unsafe"

func archGemmShape(int) (mr, nr, group int) {
	panic("kernels: no assembly kernels on this architecture")
}

func archGemmMicro(int, int, *float32, *float32, *float32, int, int, int) {
	panic("kernels: no assembly kernels on this architecture")
}

func archGemmPack(int, DType, unsafe.Pointer, int, *float32, int, int) {
	panic("kernels: no assembly kernels on this architecture")
}

func fmaPeakRun(int, int) int { return 0 }
