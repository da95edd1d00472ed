package kernels

//go:generate go run gemm_gen.go

// archGemmShape is the register blocking of kernel set id: mr weight rows
// per panel, at most nr inputs per microkernel call, and the row/column
// group of its packing kernel.
func archGemmShape(id int) (mr, nr, group int) {
	if id == idAVX512 {
		return gemmMR512, gemmNR512, 16
	}
	return gemmMR256, gemmNR256, 8
}

// fmaPeakRun runs the FMA-throughput loop of kernel set id for iters
// iterations and returns the f32 flops it did (0 if there is none).
func fmaPeakRun(id, iters int) int {
	switch id {
	case idAVX512:
		fmaPeakAVX512(iters)
		return iters * 24 * 16 * 2
	case idAVX2:
		fmaPeakAVX2(iters)
		return iters * 24 * 8 * 2
	}
	return 0
}
