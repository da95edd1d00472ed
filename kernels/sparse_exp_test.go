package kernels

import (
	"math/rand/v2"
	"testing"
	"time"
	"unsafe"
)

// sumRowsK sums the selected rows (as uint64 words) k rows at a time,
// interleaved word by word: the pure memory cost of a gather pattern.
func sumRowsK(m Mat, sel []int32, k int) uint64 {
	w := unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(m.u16))), len(m.u16)/4)
	rw := m.Cols / 4
	var s uint64
	n := len(sel) / k * k
	for p := 0; p < n; p += k {
		switch k {
		case 1:
			r := w[int(sel[p])*rw : int(sel[p]+1)*rw]
			for i := 0; i < rw; i += 4 {
				s += r[i] + r[i+1] + r[i+2] + r[i+3]
			}
		case 4:
			r0 := w[int(sel[p])*rw : int(sel[p]+1)*rw]
			r1 := w[int(sel[p+1])*rw : int(sel[p+1]+1)*rw][:len(r0)]
			r2 := w[int(sel[p+2])*rw : int(sel[p+2]+1)*rw][:len(r0)]
			r3 := w[int(sel[p+3])*rw : int(sel[p+3]+1)*rw][:len(r0)]
			for i := 0; i < len(r0); i += 2 {
				s += r0[i] + r1[i] + r2[i] + r3[i] + r0[i+1] + r1[i+1] + r2[i+1] + r3[i+1]
			}
		case 8:
			r0 := w[int(sel[p])*rw : int(sel[p]+1)*rw]
			r1 := w[int(sel[p+1])*rw : int(sel[p+1]+1)*rw][:len(r0)]
			r2 := w[int(sel[p+2])*rw : int(sel[p+2]+1)*rw][:len(r0)]
			r3 := w[int(sel[p+3])*rw : int(sel[p+3]+1)*rw][:len(r0)]
			r4 := w[int(sel[p+4])*rw : int(sel[p+4]+1)*rw][:len(r0)]
			r5 := w[int(sel[p+5])*rw : int(sel[p+5]+1)*rw][:len(r0)]
			r6 := w[int(sel[p+6])*rw : int(sel[p+6]+1)*rw][:len(r0)]
			r7 := w[int(sel[p+7])*rw : int(sel[p+7]+1)*rw][:len(r0)]
			for i := range r0 {
				s += r0[i] + r1[i] + r2[i] + r3[i] + r4[i] + r5[i] + r6[i] + r7[i]
			}
		}
	}
	return s
}

var sinkU64 uint64

// BenchmarkSparseReadRows (experimental): the read rate of the gather's
// access pattern itself (10% of 4 KiB rows, summed as integers, k rows
// interleaved), beside the sequential read and the f16 gather, on heap and
// huge-page matrices.
func BenchmarkSparseReadRows(b *testing.B) {
	sb := getSparseBench(F16, 2048)
	huge := sb.hugeCopy()
	for _, mem := range []string{"heap", "huge"} {
		mats := sb.mats
		if mem == "huge" {
			mats = huge
		}
		b.Run(mem, func(b *testing.B) {
			t := &readTask{sums: make([]uint64, 1)}
			names := []string{"read", "rows1", "rows4", "rows8", "gather"}
			rates := make([][]float64, len(names))
			for i := 0; b.Loop(); i++ {
				for j, name := range names {
					k := i*len(names) + j
					m, sel := mats[k%sparseBenchMats], sb.sels[k%len(sb.sels)]
					n := len(sel) &^ 7
					bytes := float64(n * 4096)
					t0 := time.Now()
					switch name {
					case "read":
						t.buf = unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(m.u16))), len(m.u16)/4)
						t.Run(0, 0, len(t.buf))
						bytes = float64(m.Bytes())
					case "rows1":
						sinkU64 += sumRowsK(m, sel[:n], 1)
					case "rows4":
						sinkU64 += sumRowsK(m, sel[:n], 4)
					case "rows8":
						sinkU64 += sumRowsK(m, sel[:n], 8)
					case "gather":
						m.gatherRows(sb.y, sb.x, sel[:n])
					}
					rates[j] = append(rates[j], bytes/time.Since(t0).Seconds()/1e9)
				}
			}
			for j, name := range names {
				b.ReportMetric(Median(rates[j]), name+"-GB/s")
			}
		})
	}
}

// BenchmarkSparseEight interleaves the f16 gather and accumulate (10% of
// 4 KiB rows) with four, eight and sixteen rows per pass, on heap and huge-page
// matrices, with the single-core read of the heap matrices for reference.
func BenchmarkSparseEight(b *testing.B) {
	defer func(n int) { sparseRows = n }(sparseRows)
	sb := getSparseBench(F16, 2048)
	huge := sb.hugeCopy()
	t := &readTask{sums: make([]uint64, 1)}
	type op struct {
		name string
		mats []Mat
		rows int
		run  func(m Mat, sel []int32)
	}
	gather := func(m Mat, sel []int32) { m.gatherRows(sb.y, sb.x, sel) }
	accum := func(m Mat, sel []int32) { m.accumRows(sb.y, sel, sb.a[:len(sel)]) }
	ops := []op{
		{"read", sb.mats, 4, nil},
		{"gather4", sb.mats, 4, gather}, {"gather8", sb.mats, 8, gather}, {"gather16", sb.mats, 16, gather},
		{"accum4", sb.mats, 4, accum}, {"accum8", sb.mats, 8, accum}, {"accum16", sb.mats, 16, accum},
		{"gather8-huge", huge, 8, gather}, {"gather16-huge", huge, 16, gather},
		{"accum8-huge", huge, 8, accum}, {"accum16-huge", huge, 16, accum},
	}
	rates := make([][]float64, len(ops))
	for i := 0; b.Loop(); i++ {
		for j, o := range ops {
			k := i*len(ops) + j
			m, sel := o.mats[k%sparseBenchMats], sb.sels[k%len(sb.sels)]
			sparseRows = o.rows
			bytes := sb.touched()
			t0 := time.Now()
			if o.run == nil {
				t.buf = unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(m.u16))), len(m.u16)/4)
				t.Run(0, 0, len(t.buf))
				bytes = m.Bytes()
			} else {
				o.run(m, sel)
			}
			rates[j] = append(rates[j], float64(bytes)/time.Since(t0).Seconds()/1e9)
		}
	}
	for j, o := range ops {
		b.ReportMetric(Median(rates[j]), o.name+"-GB/s")
	}
}

// BenchmarkSparseShortRows compares, on 1 KiB rows (f16, 512 columns, 10%
// of the rows), the four-row kernels with software prefetch (the rule for
// rows under 2 KiB) against eight and sixteen rows per pass without.
func BenchmarkSparseShortRows(b *testing.B) {
	defer func(n, mr int) { sparseRows, sparsePrefetchMaxRow = n, mr }(sparseRows, sparsePrefetchMaxRow)
	sb := getSparseBench(F16, 512)
	type op struct {
		name   string
		rows   int
		maxRow int
		gather bool
	}
	ops := []op{{"gather4pf", 4, 2 << 10, true}, {"gather8", 8, 0, true}, {"gather16", 16, 0, true},
		{"accum4pf", 4, 2 << 10, false}, {"accum8", 8, 0, false}, {"accum16", 16, 0, false}}
	rates := make([][]float64, len(ops))
	for i := 0; b.Loop(); i++ {
		for j, o := range ops {
			k := i*len(ops) + j
			m, sel := sb.mats[k%sparseBenchMats], sb.sels[k%len(sb.sels)]
			sparseRows, sparsePrefetchMaxRow = o.rows, o.maxRow
			t0 := time.Now()
			if o.gather {
				m.gatherRows(sb.y, sb.x, sel)
			} else {
				m.accumRows(sb.y, sel, sb.a[:len(sel)])
			}
			rates[j] = append(rates[j], float64(sb.touched())/time.Since(t0).Seconds()/1e9)
		}
	}
	for j, o := range ops {
		b.ReportMetric(Median(rates[j]), o.name+"-GB/s")
	}
}

// BenchmarkSparseBlocks (experimental) compares, for the selected heads'
// Q rows (17 of 32 blocks of 64 rows of 2048×2048 f16 matrices, eight of
// them in turn), BlockMatVec (the dense eight-lane GEMV inside each block)
// with GatherMatVec over the same rows listed one by one (sixteen rows per
// pass), one thread.
func BenchmarkSparseBlocks(b *testing.B) {
	const n, bs, nb, sel = 2048, 64, 32, 17
	r := rand.New(rand.NewPCG(5, 6))
	mats := make([]Mat, 8)
	for i := range mats {
		mats[i], _ = offsetMat(r, F16, n, n, 0)
	}
	pool := NewPool(1)
	defer pool.Close()
	e := NewExec(pool, n)
	x := randVec(r, n, 0)
	y := make([]float32, n)
	blocks := make([]int32, sel)
	rows := make([]int32, 0, sel*bs)
	for i := range blocks {
		blocks[i] = int32(i * nb / sel)
		for j := 0; j < bs; j++ {
			rows = append(rows, blocks[i]*bs+int32(j))
		}
	}
	bytes := float64(len(rows) * n * 2)
	var tb, tg time.Duration
	for i := 0; b.Loop(); i++ {
		t0 := time.Now()
		e.BlockMatVec(y, mats[(2*i)%8], x, blocks, bs)
		t1 := time.Now()
		e.GatherMatVec(y, mats[(2*i+1)%8], x, rows)
		tg += time.Since(t1)
		tb += t1.Sub(t0)
	}
	b.ReportMetric(float64(b.N)*bytes/tb.Seconds()/1e9, "blockmatvec-GB/s")
	b.ReportMetric(float64(b.N)*bytes/tg.Seconds()/1e9, "gather-GB/s")
}
