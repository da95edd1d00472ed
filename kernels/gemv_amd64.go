package kernels

import "unsafe"

// Assembly kernels in gemv_amd64.s. Each gemv* computes y[i] = dot(row i, x)
// for i < rows over rows×cols row-major weights at w (rows, cols > 0): the
// AVX-512 ones eight rows per pass (from eight lanes of consecutive rows),
// the AVX2 ones four adjacent rows per pass. Each dot* returns the inner
// product of n > 0 floats.

//go:noescape
func gemvF32AVX512(w, x, y *float32, rows, cols int)

//go:noescape
func gemvF16AVX512(w *uint16, x, y *float32, rows, cols int)

//go:noescape
func gemvBF16AVX512(w *uint16, x, y *float32, rows, cols int)

//go:noescape
func dotAVX512(a, b *float32, n int) float32

//go:noescape
func gemvF32AVX2(w, x, y *float32, rows, cols int)

//go:noescape
func gemvF16AVX2(w *uint16, x, y *float32, rows, cols int)

//go:noescape
func gemvBF16AVX2(w *uint16, x, y *float32, rows, cols int)

//go:noescape
func dotAVX2(a, b *float32, n int) float32

// cpuid executes CPUID with the given leaf and subleaf.
func cpuid(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)

// xgetbv reads extended control register 0 (the OS-enabled state).
func xgetbv() (eax, edx uint32)

// cpuFeatures reports which kernel sets the CPU and OS support.
func cpuFeatures() (avx2, avx512 bool) {
	maxLeaf, _, _, _ := cpuid(0, 0)
	if maxLeaf < 7 {
		return false, false
	}
	_, _, ecx1, _ := cpuid(1, 0)
	const (
		fma     = 1 << 12
		osxsave = 1 << 27
		avx     = 1 << 28
		f16c    = 1 << 29
	)
	if ecx1&(fma|osxsave|avx|f16c) != fma|osxsave|avx|f16c {
		return false, false
	}
	xcr0, _ := xgetbv()
	if xcr0&6 != 6 { // XMM and YMM state
		return false, false
	}
	_, ebx7, _, _ := cpuid(7, 0)
	avx2 = ebx7&(1<<5) != 0
	const avx512fbwvl = 1<<16 | 1<<30 | 1<<31 // F, BW, VL
	avx512 = avx2 && ebx7&avx512fbwvl == avx512fbwvl &&
		xcr0&0xe0 == 0xe0 // opmask, ZMM_Hi256, Hi16_ZMM state
	return avx2, avx512
}

// Kernel ids (see gemvKernels).
const (
	idAVX512 = 1 + iota
	idAVX2
)

// archKernels lists the kernel sets this CPU supports, best first.
var archKernels = func() []gemvKernels {
	var ks []gemvKernels
	avx2, avx512 := cpuFeatures()
	if avx512 {
		ks = append(ks, gemvKernels{idAVX512, "avx512"})
	}
	if avx2 {
		ks = append(ks, gemvKernels{idAVX2, "avx2"})
	}
	return ks
}()

func archGemv(id int, dt DType, w unsafe.Pointer, x, y *float32, rows, cols int) {
	if dt == Q8_0 {
		archGemvQ8(id, w, x, y, rows, cols)
		return
	}
	if id == idAVX512 {
		switch dt {
		case F32:
			gemvF32AVX512((*float32)(w), x, y, rows, cols)
		case F16:
			gemvF16AVX512((*uint16)(w), x, y, rows, cols)
		default:
			gemvBF16AVX512((*uint16)(w), x, y, rows, cols)
		}
		return
	}
	switch dt {
	case F32:
		gemvF32AVX2((*float32)(w), x, y, rows, cols)
	case F16:
		gemvF16AVX2((*uint16)(w), x, y, rows, cols)
	default:
		gemvBF16AVX2((*uint16)(w), x, y, rows, cols)
	}
}

func archDot(id int, a, b *float32, n int) float32 {
	if id == idAVX512 {
		return dotAVX512(a, b, n)
	}
	return dotAVX2(a, b, n)
}
