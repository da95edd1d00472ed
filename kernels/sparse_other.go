//go:build !amd64

package kernels

import "unsafe"

// archSparseCols is 0: without assembly kernels Go does every column.
func archSparseCols(int, DType, int) int { return 0 }

func archGather(int, DType, unsafe.Pointer, int, *float32, *float32, *int32, int, int, int) {
	panic("kernels: no assembly kernels on this architecture")
}

func archAccum(int, DType, unsafe.Pointer, int, *float32, *float32, *int32, int, int, int) {
	panic("kernels: no assembly kernels on this architecture")
}

func archDequantQ8(int, unsafe.Pointer, *float32, int) {
	panic("kernels: no assembly kernels on this architecture")
}
