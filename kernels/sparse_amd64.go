package kernels

import "unsafe"

// Assembly kernels in sparse_amd64.s. Each gather* sets y[k] = dot(row
// rows[k], x) and each accum* adds Σ_k a[k]·(row rows[k]) to y[:cols], for
// k < n, where row i starts at w + i·stride bytes. n is a positive multiple
// of 4 (four rows per pass; 8 and 16 for the gather8*, accum8*, gather16*
// and accum16* kernels, which prefetch nothing); pfd is how many list
// entries ahead the rows to prefetch are; every index must be a valid row.
// The AVX2 kernels need cols to be a positive multiple of 8, the sixteen-
// row ones of 32, the other AVX-512 ones any cols > 0.

//go:noescape
func gatherF32AVX512(w unsafe.Pointer, stride int, x, y *float32, rows *int32, n, pfd, cols int)

//go:noescape
func gatherF16AVX512(w unsafe.Pointer, stride int, x, y *float32, rows *int32, n, pfd, cols int)

//go:noescape
func gatherBF16AVX512(w unsafe.Pointer, stride int, x, y *float32, rows *int32, n, pfd, cols int)

//go:noescape
func accumF32AVX512(w unsafe.Pointer, stride int, y, a *float32, rows *int32, n, pfd, cols int)

//go:noescape
func accumF16AVX512(w unsafe.Pointer, stride int, y, a *float32, rows *int32, n, pfd, cols int)

//go:noescape
func accumBF16AVX512(w unsafe.Pointer, stride int, y, a *float32, rows *int32, n, pfd, cols int)

//go:noescape
func gatherF32AVX2(w unsafe.Pointer, stride int, x, y *float32, rows *int32, n, pfd, cols int)

//go:noescape
func gatherF16AVX2(w unsafe.Pointer, stride int, x, y *float32, rows *int32, n, pfd, cols int)

//go:noescape
func gatherBF16AVX2(w unsafe.Pointer, stride int, x, y *float32, rows *int32, n, pfd, cols int)

//go:noescape
func accumF32AVX2(w unsafe.Pointer, stride int, y, a *float32, rows *int32, n, pfd, cols int)

//go:noescape
func accumF16AVX2(w unsafe.Pointer, stride int, y, a *float32, rows *int32, n, pfd, cols int)

//go:noescape
func accumBF16AVX2(w unsafe.Pointer, stride int, y, a *float32, rows *int32, n, pfd, cols int)

// archSparseCols is how many of cols leading columns the sparse kernels of
// set id handle for dtype dt; Go does the rest. The Q8_0 kernels take
// whole rows (cols is then a multiple of 32).
func archSparseCols(id int, dt DType, cols int) int {
	if id == idAVX512 || dt == Q8_0 {
		return cols
	}
	return cols &^ 7
}

// archGather runs the gather kernel of set id for dtype dt (see above).
func archGather(id int, dt DType, w unsafe.Pointer, stride int, x, y *float32, rows *int32, n, pfd, cols int) {
	if dt == Q8_0 {
		archGatherQ8(id, w, stride, x, y, rows, n, pfd, cols)
		return
	}
	if id == idAVX512 {
		if n16 := n &^ 15; n16 > 0 && sparseRows >= 16 && cols%32 == 0 {
			switch dt {
			case F32:
				gather16F32AVX512(w, stride, x, y, rows, n16, 0, cols)
			case F16:
				gather16F16AVX512(w, stride, x, y, rows, n16, 0, cols)
			default:
				gather16BF16AVX512(w, stride, x, y, rows, n16, 0, cols)
			}
			if n16 == n {
				return
			}
			y, rows, n = (*float32)(unsafe.Add(unsafe.Pointer(y), 4*n16)), (*int32)(unsafe.Add(unsafe.Pointer(rows), 4*n16)), n-n16
		}
		if n8 := n &^ 7; n8 > 0 && sparseRows >= 8 {
			switch dt {
			case F32:
				gather8F32AVX512(w, stride, x, y, rows, n8, 0, cols)
			case F16:
				gather8F16AVX512(w, stride, x, y, rows, n8, 0, cols)
			default:
				gather8BF16AVX512(w, stride, x, y, rows, n8, 0, cols)
			}
			if n8 == n {
				return
			}
			y, rows, n = (*float32)(unsafe.Add(unsafe.Pointer(y), 4*n8)), (*int32)(unsafe.Add(unsafe.Pointer(rows), 4*n8)), n-n8
		}
		switch dt {
		case F32:
			gatherF32AVX512(w, stride, x, y, rows, n, pfd, cols)
		case F16:
			gatherF16AVX512(w, stride, x, y, rows, n, pfd, cols)
		default:
			gatherBF16AVX512(w, stride, x, y, rows, n, pfd, cols)
		}
		return
	}
	switch dt {
	case F32:
		gatherF32AVX2(w, stride, x, y, rows, n, pfd, cols)
	case F16:
		gatherF16AVX2(w, stride, x, y, rows, n, pfd, cols)
	default:
		gatherBF16AVX2(w, stride, x, y, rows, n, pfd, cols)
	}
}

// archAccum runs the accumulate kernel of set id for dtype dt (see above).
func archAccum(id int, dt DType, w unsafe.Pointer, stride int, y, a *float32, rows *int32, n, pfd, cols int) {
	if dt == Q8_0 {
		archAccumQ8(id, w, stride, y, a, rows, n, pfd, cols)
		return
	}
	if id == idAVX512 {
		if n16 := n &^ 15; n16 > 0 && sparseRows >= 16 && cols%32 == 0 {
			switch dt {
			case F32:
				accum16F32AVX512(w, stride, y, a, rows, n16, 0, cols)
			case F16:
				accum16F16AVX512(w, stride, y, a, rows, n16, 0, cols)
			default:
				accum16BF16AVX512(w, stride, y, a, rows, n16, 0, cols)
			}
			if n16 == n {
				return
			}
			a, rows, n = (*float32)(unsafe.Add(unsafe.Pointer(a), 4*n16)), (*int32)(unsafe.Add(unsafe.Pointer(rows), 4*n16)), n-n16
		}
		if n8 := n &^ 7; n8 > 0 && sparseRows >= 8 {
			switch dt {
			case F32:
				accum8F32AVX512(w, stride, y, a, rows, n8, 0, cols)
			case F16:
				accum8F16AVX512(w, stride, y, a, rows, n8, 0, cols)
			default:
				accum8BF16AVX512(w, stride, y, a, rows, n8, 0, cols)
			}
			if n8 == n {
				return
			}
			a, rows, n = (*float32)(unsafe.Add(unsafe.Pointer(a), 4*n8)), (*int32)(unsafe.Add(unsafe.Pointer(rows), 4*n8)), n-n8
		}
		switch dt {
		case F32:
			accumF32AVX512(w, stride, y, a, rows, n, pfd, cols)
		case F16:
			accumF16AVX512(w, stride, y, a, rows, n, pfd, cols)
		default:
			accumBF16AVX512(w, stride, y, a, rows, n, pfd, cols)
		}
		return
	}
	switch dt {
	case F32:
		accumF32AVX2(w, stride, y, a, rows, n, pfd, cols)
	case F16:
		accumF16AVX2(w, stride, y, a, rows, n, pfd, cols)
	default:
		accumBF16AVX2(w, stride, y, a, rows, n, pfd, cols)
	}
}

// The eight-rows-per-pass AVX-512 kernels (n a positive multiple of 8; pfd
// is ignored: they prefetch nothing).

//go:noescape
func gather8F32AVX512(w unsafe.Pointer, stride int, x, y *float32, rows *int32, n, pfd, cols int)

//go:noescape
func gather8F16AVX512(w unsafe.Pointer, stride int, x, y *float32, rows *int32, n, pfd, cols int)

//go:noescape
func gather8BF16AVX512(w unsafe.Pointer, stride int, x, y *float32, rows *int32, n, pfd, cols int)

//go:noescape
func accum8F32AVX512(w unsafe.Pointer, stride int, y, a *float32, rows *int32, n, pfd, cols int)

//go:noescape
func accum8F16AVX512(w unsafe.Pointer, stride int, y, a *float32, rows *int32, n, pfd, cols int)

//go:noescape
func accum8BF16AVX512(w unsafe.Pointer, stride int, y, a *float32, rows *int32, n, pfd, cols int)

// The sixteen-rows-per-pass AVX-512 kernels (n a positive multiple of 16,
// cols a positive multiple of 32; pfd is ignored).

//go:noescape
func gather16F32AVX512(w unsafe.Pointer, stride int, x, y *float32, rows *int32, n, pfd, cols int)

//go:noescape
func gather16F16AVX512(w unsafe.Pointer, stride int, x, y *float32, rows *int32, n, pfd, cols int)

//go:noescape
func gather16BF16AVX512(w unsafe.Pointer, stride int, x, y *float32, rows *int32, n, pfd, cols int)

//go:noescape
func accum16F32AVX512(w unsafe.Pointer, stride int, y, a *float32, rows *int32, n, pfd, cols int)

//go:noescape
func accum16F16AVX512(w unsafe.Pointer, stride int, y, a *float32, rows *int32, n, pfd, cols int)

//go:noescape
func accum16BF16AVX512(w unsafe.Pointer, stride int, y, a *float32, rows *int32, n, pfd, cols int)
