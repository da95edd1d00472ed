package cuda

import (
	"fmt"
	"unsafe"
)

// cuBLAS, loaded at run time like the driver. It binds to the current
// context, the device's primary context, which the worker thread holds.
type blasAPI struct {
	cublasCreate    func(h *uintptr) int32
	cublasDestroy   func(h uintptr) int32
	cublasSetStream func(h uintptr, s uintptr) int32
	cublasGemmEx    func(h uintptr, ta, tb int32, m, n, k int32, alpha unsafe.Pointer, A uint64, atype int32, lda int32,
		B uint64, btype int32, ldb int32, beta unsafe.Pointer, C uint64, ctype int32, ldc int32, compute int32, algo int32) int32
}

// cuBLAS and CUDA data-type constants.
const (
	blasOpN      = 0
	blasOpT      = 1
	cudaR32F     = 0
	cudaR16F     = 2
	cudaR16BF    = 14
	blasCompute  = 68 // CUBLAS_COMPUTE_32F
	blasAlgoDflt = -1 // CUBLAS_GEMM_DEFAULT
)

// blasDirs are searched after the loader's own paths: the CUDA toolkit and
// the pip wheels of nvidia-cublas (PyTorch installs them).
var blasDirs = []string{
	"/usr/local/cuda/lib64", "/usr/local/cuda/targets/*/lib", "/usr/local/cuda-*/lib64",
	"/usr/lib/x86_64-linux-gnu", "/usr/lib64",
	"/opt/*/.venv/lib/python3*/site-packages/nvidia/cublas/lib",
	"/opt/*/.venv/lib/python3*/site-packages/nvidia/cu1*/lib",
	"/usr/local/lib/python3*/dist-packages/nvidia/cublas/lib",
	"/usr/local/lib/python3*/dist-packages/nvidia/cu1*/lib",
	"/usr/lib/python3*/site-packages/nvidia/cublas/lib",
}

func loadBlas() (*blasAPI, error) {
	lib, err := dlopenFirst("DEJAVU_CUBLAS", []string{"libcublas.so.13", "libcublas.so.12", "libcublas.so"}, blasDirs)
	if err != nil {
		return nil, fmt.Errorf("cuda: loading cuBLAS: %w", err)
	}
	b := &blasAPI{}
	err = register(lib, []struct {
		fn   any
		name string
	}{
		{&b.cublasCreate, "cublasCreate_v2"}, {&b.cublasDestroy, "cublasDestroy_v2"},
		{&b.cublasSetStream, "cublasSetStream_v2"}, {&b.cublasGemmEx, "cublasGemmEx"},
	})
	if err != nil {
		return nil, fmt.Errorf("cuda: libcublas: %w", err)
	}
	return b, nil
}

func checkBlas(call string, r int32) error {
	if r == 0 {
		return nil
	}
	names := map[int32]string{1: "NOT_INITIALIZED", 3: "ALLOC_FAILED", 7: "INVALID_VALUE", 8: "ARCH_MISMATCH",
		11: "MAPPING_ERROR", 13: "EXECUTION_FAILED", 14: "INTERNAL_ERROR", 15: "NOT_SUPPORTED", 16: "LICENSE_ERROR"}
	return &Error{Call: call, Code: r, Msg: fmt.Sprintf("CUBLAS_STATUS_%s (%d)", names[r], r)}
}

// gemm computes, for n row-major activations X (n × k, f16), Y = X·Wᵀ
// (n × m, f32) where W is m × k row-major f16 (transW) — or Y = X·W where
// W is k × m (the transposed, neuron-major matrices) — adding beta·Y. With
// bf, W and X are bf16 instead.
func (d *Device) gemm(y uint64, w uint64, x uint64, n, m, k int, transW bool, beta float32, bf bool) error {
	dt := int32(cudaR16F)
	if bf {
		dt = cudaR16BF
	}
	alpha := float32(1)
	ta, lda := int32(blasOpT), int32(k)
	if !transW {
		ta, lda = blasOpN, int32(m)
	}
	if d.prof != nil {
		d.prof.begin(fmt.Sprintf("gemm %d×%d", m, k), d.stream)
		defer d.prof.end(d.stream)
	}
	r := blas.cublasGemmEx(d.blas, ta, blasOpN, int32(m), int32(n), int32(k), unsafe.Pointer(&alpha), w, dt, lda,
		x, dt, int32(k), unsafe.Pointer(&beta), y, cudaR32F, int32(m), blasCompute, blasAlgoDflt)
	return checkBlas(fmt.Sprintf("cublasGemmEx %d×%d×%d", m, n, k), r)
}
