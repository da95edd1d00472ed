package kernels

import (
	"math/rand/v2"
	"slices"
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

// sumRowsSlots reads the selected rows' lines with k slots in lock step,
// slot s starting at line start[s] of the concatenated row stream.
func sumRowsSlots(m Mat, sel []int32, k int, stagger bool) uint64 {
	w := unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(m.u16))), len(m.u16)/4)
	rw := m.Cols / 4
	L := rw / 8
	n := len(sel)
	T := n * L
	var start [17]int
	for s := 0; s < k; s++ {
		start[s] = s * (n / k) * L
		if stagger {
			start[s] += s * L / k
		}
	}
	start[k] = T
	var pos, rrem, idx, rem [16]int
	steps := T
	for s := 0; s < k; s++ {
		g := start[s]
		idx[s] = g / L
		pos[s] = int(sel[idx[s]])*rw + (g%L)*8
		rrem[s] = L - g%L
		rem[s] = start[s+1] - g
		steps = min(steps, rem[s])
	}
	var sum uint64
	line := func(s int) {
		p := w[pos[s] : pos[s]+8]
		sum += p[0] + p[1] + p[2] + p[3] + p[4] + p[5] + p[6] + p[7]
		pos[s] += 8
		rrem[s]--
		if rrem[s] == 0 {
			idx[s]++
			if idx[s] < n {
				pos[s] = int(sel[idx[s]]) * rw
			}
			rrem[s] = L
		}
	}
	for i := 0; i < steps; i++ {
		for s := 0; s < k; s++ {
			line(s)
		}
	}
	for s := 0; s < k; s++ {
		for j := steps; j < rem[s]; j++ {
			line(s)
		}
	}
	return sum
}

// BenchmarkSparseStaggerRead (experimental): sixteen (eight) row streams
// summed in lock step ("lock", every stream starts a new row at the same
// step, as the kernels do) against the same streams staggered by a
// sixteenth of a row each ("stag", so that row starts spread over the
// pass), in Go, on heap and huge pages; the f16 kernels for reference.
func BenchmarkSparseStaggerRead(b *testing.B) {
	sb := getSparseBench(F16, 2048)
	huge := sb.hugeCopy()
	t := &readTask{sums: make([]uint64, 1)}
	type op struct {
		name    string
		mats    []Mat
		k       int
		stagger bool
	}
	ops := []op{{"read", sb.mats, 0, false},
		{"lock8", sb.mats, 8, false}, {"stag8", sb.mats, 8, true},
		{"lock16", sb.mats, 16, false}, {"stag16", sb.mats, 16, true},
		{"lock16h", huge, 16, false}, {"stag16h", huge, 16, true},
		{"gather16h", huge, 16, false}, {"accum16h", huge, 16, false},
	}
	rates := make([][]float64, len(ops))
	for i := 0; b.Loop(); i++ {
		for j, o := range ops {
			k := i*len(ops) + j
			m, sel := o.mats[k%sparseBenchMats], sb.sels[k%len(sb.sels)]
			sel = sel[:len(sel)&^15]
			bytes := int64(len(sel) * 4096)
			t0 := time.Now()
			switch {
			case o.k == 0:
				t.buf = unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(m.u16))), len(m.u16)/4)
				t.Run(0, 0, len(t.buf))
				bytes = m.Bytes()
			case o.name == "gather16h":
				m.gatherRows(sb.y, sb.x, sel)
			case o.name == "accum16h":
				m.accumRows(sb.y, sel, sb.a[:len(sel)])
			default:
				sinkU64 += sumRowsSlots(m, sel, o.k, o.stagger)
			}
			rates[j] = append(rates[j], float64(bytes)/time.Since(t0).Seconds()/1e9)
		}
	}
	for j, o := range ops {
		b.ReportMetric(Median(rates[j]), o.name+"-GB/s")
	}
}

// BenchmarkSparseOBlocks (experimental): the attention output projection's
// access pattern, 17 of 32 blocks of 64 contiguous rows of 2048×2048 f16
// matrices (24 in turn), through BlockMatVec (the dense eight-row GEMV, as
// Q is read), and the accumulation over the same rows with sixteen and
// eight rows per pass, on heap and huge pages, and a GEMV per head over a
// head-blocked copy (n×64 row-major blocks, "headgemv"); one thread.
func BenchmarkSparseOBlocks(b *testing.B) {
	defer func(n int) { sparseRows = n }(sparseRows)
	const n, bs, nb, sel, nm = 2048, 64, 32, 17, 24
	r := rand.New(rand.NewPCG(5, 6))
	var mats, hm []Mat
	for i := 0; i < nm; i++ {
		m, _ := offsetMat(r, F16, n, n, 0)
		mats = append(mats, m)
		buf := HugeBytes(n * n * 2)
		h, _ := NewMat(F16, n, n, buf)
		fillFast(h, r.Uint64())
		hm = append(hm, h)
	}
	pool := NewPool(1)
	defer pool.Close()
	e := NewExec(pool, n)
	x := randVec(r, n, 0)
	y := make([]float32, n)
	a := randVec(r, sel*bs, 0)
	// Head-blocked layout: per head a contiguous n×bs row-major block.
	var hb [][]Mat
	for i := 0; i < nm; i++ {
		buf := HugeBytes(n * n * 2)
		var heads []Mat
		for hh := 0; hh < nb; hh++ {
			m, _ := NewMat(F16, n, bs, buf[hh*n*bs*2:(hh+1)*n*bs*2])
			fillFast(m, r.Uint64())
			heads = append(heads, m)
		}
		hb = append(hb, heads)
	}
	yh := make([]float32, n)
	var sels [][]int32
	var rowss [][]int32
	for k := 0; k < 16; k++ {
		p := r.Perm(nb)[:sel]
		blocks := make([]int32, sel)
		for i := range blocks {
			blocks[i] = int32(p[i])
		}
		slices.Sort(blocks)
		rows := make([]int32, 0, sel*bs)
		for _, bl := range blocks {
			for j := 0; j < bs; j++ {
				rows = append(rows, bl*bs+int32(j))
			}
		}
		sels = append(sels, blocks)
		rowss = append(rowss, rows)
	}
	bytes := float64(sel * bs * n * 2)
	names := []string{"blockmatvec", "accum16", "accum8", "accum16h", "accum8h", "accum4h", "gather16h", "headgemv"}
	rates := make([][]float64, len(names))
	for i := 0; b.Loop(); i++ {
		for j, nm2 := range names {
			k := i*len(names) + j
			m := mats[k%nm]
			h := hm[k%nm]
			rows := rowss[k%16]
			t0 := time.Now()
			switch nm2 {
			case "blockmatvec":
				e.BlockMatVec(y, m, x, sels[k%16], bs)
			case "accum16":
				sparseRows = 16
				e.AccumRows(y, m, rows, a)
			case "accum8":
				sparseRows = 8
				e.AccumRows(y, m, rows, a)
			case "accum16h":
				sparseRows = 16
				e.AccumRows(y, h, rows, a)
			case "accum8h":
				sparseRows = 8
				e.AccumRows(y, h, rows, a)
			case "gather16h":
				sparseRows = 16
				e.GatherMatVec(y, h, x, rows)
			case "headgemv":
				for bi, bl := range sels[k%16] {
					e.MatVec(yh, hb[k%nm][bl], a[bi*bs:(bi+1)*bs])
					Add(y, yh)
				}
			case "accum4h":
				sparseRows = 4
				e.AccumRows(y, h, rows, a)
			case "gather4h":
				sparseRows = 4
				e.GatherMatVec(y, h, x, rows)
			}
			rates[j] = append(rates[j], bytes/time.Since(t0).Seconds()/1e9)
		}
	}
	for j, nm2 := range names {
		b.ReportMetric(Median(rates[j]), nm2+"-GB/s")
	}
}
