package kernels

import "unsafe"

// Lane order for the sparse kernels. The AVX-512 gather and accumulate
// kernels take 16 listed rows per pass and read them side by side. Taken
// in list order, a pass is 16 neighbouring selected rows, so each row is a
// stream of its own length only: on short rows (1 KiB: the test-beds'
// hidden size 512) the hardware prefetchers never follow them, and the
// kernels read 10 GB/s where the dense GEMV, whose passes take the next
// row of eight long lanes, reads 23-25. Reordering the list so that pass p
// takes entry p of each of 16 lanes (lane l: a run of consecutive entries
// of the sorted list) makes each of the pass's rows continue an ascending
// walk through memory, as in the dense GEMV: one thread, f16, 1 KiB rows,
// gather 12.7 → 16.8 GB/s at 48% of the rows, 12.3 → 14.6 at 25%, 16.7 →
// 19.0 at 10%; 4 KiB rows at 10%: 21.8 → 22.5 (docs/kernels-sparse.md).
// Lists are laned in blocks of at most laneBlock entries, so the buffers
// live on the stack.

const (
	lanes     = 16
	laneBlock = 1024 // entries laned together: lanes of up to 64 rows
)

// toLanes writes src[:n] (n ≤ laneBlock) into dst in lane order: pass p of
// 16 entries takes src[l·L+p] for lanes l < 16, L = n/16; the n%16 entries
// after the lanes keep their order at the end. fromLanes undoes it.
func toLanes[T int32 | float32](dst, src []T, n int) {
	L := n / lanes
	for p := 0; p < L; p++ {
		for l := 0; l < lanes; l++ {
			dst[p*lanes+l] = src[l*L+p]
		}
	}
	copy(dst[L*lanes:n], src[L*lanes:n])
}

// fromLanes writes src[:n], in lane order, into dst in list order.
func fromLanes[T int32 | float32](dst, src []T, n int) {
	L := n / lanes
	for p := 0; p < L; p++ {
		for l := 0; l < lanes; l++ {
			dst[l*L+p] = src[p*lanes+l]
		}
	}
	copy(dst[L*lanes:n], src[L*lanes:n])
}

// gatherLaned is archGather over rows[:n] (n a multiple of 4) in lane order,
// y in list order.
func gatherLaned(id int, dt DType, w unsafe.Pointer, stride int, x *float32, y []float32, rows []int32, pfd, cols int) {
	var perm [laneBlock]int32
	var yp [laneBlock]float32
	for len(rows) > 0 {
		n := min(len(rows), laneBlock)
		if n < 2*lanes {
			archGather(id, dt, w, stride, x, unsafe.SliceData(y), unsafe.SliceData(rows), n, pfd, cols)
			return
		}
		toLanes(perm[:], rows, n)
		archGather(id, dt, w, stride, x, &yp[0], &perm[0], n, pfd, cols)
		fromLanes(y, yp[:], n)
		rows, y = rows[n:], y[n:]
	}
}

// accumLaned is archAccum over rows[:n] (n a multiple of 4) in lane order.
func accumLaned(id int, dt DType, w unsafe.Pointer, stride int, y *float32, a []float32, rows []int32, pfd, cols int) {
	var perm [laneBlock]int32
	var ap [laneBlock]float32
	for len(rows) > 0 {
		n := min(len(rows), laneBlock)
		if n < 2*lanes {
			archAccum(id, dt, w, stride, y, unsafe.SliceData(a), unsafe.SliceData(rows), n, pfd, cols)
			return
		}
		toLanes(perm[:], rows, n)
		toLanes(ap[:], a, n)
		archAccum(id, dt, w, stride, y, &ap[0], &perm[0], n, pfd, cols)
		rows, a = rows[n:], a[n:]
	}
}
