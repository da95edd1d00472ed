package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
	"unsafe"
)

// The sparse benchmarks read 10% of the rows of 16384×2048 matrices (f16,
// bf16: 64 MiB each; f32: 8192×2048, 64 MiB), chosen at random and sorted
// as the model's selectors do. Each iteration takes the next of eight
// matrices (512 MiB in all) with a fresh selection, so the rows come from
// memory rather than from a 32 MiB L3 that kept them from the last call.
// MB/s counts the bytes of the selected rows only (bytes touched).

const (
	sparseBenchMats    = 8
	sparseBenchDensity = 0.1
)

type sparseBench struct {
	mats []Mat
	sels [][]int32 // sparseBenchMats×4 selections
	x, y []float32
	a    []float32
}

// fillFast fills m with finite values of magnitude 0.5-1 and random signs
// from a xorshift generator (random normals would take seconds at 512 MiB).
func fillFast(m Mat, seed uint64) {
	s := seed | 1
	next := func() uint64 {
		s ^= s << 13
		s ^= s >> 7
		s ^= s << 17
		return s
	}
	switch m.DType {
	case F32:
		for i := range m.f32 {
			m.f32[i] = float32(int64(next()>>40)-1<<23) / (1 << 23)
		}
	case F16:
		for i := range m.u16 {
			m.u16[i] = 0x3800 | uint16(next())&0x83ff
		}
	default:
		for i := range m.u16 {
			m.u16[i] = 0x3f00 | uint16(next())&0x807f
		}
	}
}

func newSparseBench(dt DType, cols int) *sparseBench {
	rows := (64 << 20) / (cols * dt.Size())
	r := rand.New(rand.NewPCG(21, 22))
	b := &sparseBench{x: randVec(r, cols, 0), y: make([]float32, max(rows, cols))}
	k := int(sparseBenchDensity * float64(rows))
	b.a = randVec(r, k, 0)
	for i := 0; i < sparseBenchMats; i++ {
		m := Mat{Rows: rows, Cols: cols, DType: dt}
		if dt == F32 {
			m.f32 = make([]float32, rows*cols)
		} else {
			m.u16 = make([]uint16, rows*cols)
		}
		fillFast(m, uint64(i+1)*0x9e3779b97f4a7c15)
		b.mats = append(b.mats, m)
	}
	for i := 0; i < 4*sparseBenchMats; i++ {
		b.sels = append(b.sels, randRows(r, rows, k))
	}
	return b
}

// touched is the bytes of the selected rows of one call.
func (b *sparseBench) touched() int64 {
	return int64(len(b.sels[0])) * int64(b.mats[0].Cols*b.mats[0].DType.Size())
}

var sparseBenches = map[[2]int]*sparseBench{}

// getSparseBench returns the matrices of cols columns (64 MiB each), made
// on first use.
func getSparseBench(dt DType, cols int) *sparseBench {
	key := [2]int{int(dt), cols}
	if sparseBenches[key] == nil {
		sparseBenches[key] = newSparseBench(dt, cols)
	}
	return sparseBenches[key]
}

// BenchmarkGatherRows is one single-threaded gather over 10% of the rows.
// "rowwise" is the previous kernel, one dotRow call per selected row.
func BenchmarkGatherRows(b *testing.B) {
	defer SetPureGo(false)
	for _, dt := range []DType{F32, F16, BF16} {
		sb := getSparseBench(dt, 2048)
		names := append(kernelNames(), "rowwise")
		for _, name := range names {
			b.Run(fmt.Sprintf("%v/%s", dt, name), func(b *testing.B) {
				if name == "rowwise" {
					useKernels(archKernels[0].name)
				} else {
					useKernels(name)
				}
				b.SetBytes(sb.touched())
				for i := 0; b.Loop(); i++ {
					m, sel := sb.mats[i%sparseBenchMats], sb.sels[i%len(sb.sels)]
					if name == "rowwise" {
						for k, r := range sel {
							sb.y[k] = m.dotRow(int(r), sb.x)
						}
						continue
					}
					m.gatherRows(sb.y, sb.x, sel)
				}
			})
		}
	}
}

// BenchmarkAccumRows is one single-threaded accumulation of 10% of the
// rows (the "go" kernel is the previous pure-Go AccumRows loop).
func BenchmarkAccumRows(b *testing.B) {
	defer SetPureGo(false)
	for _, dt := range []DType{F32, F16, BF16} {
		sb := getSparseBench(dt, 2048)
		for _, name := range kernelNames() {
			b.Run(fmt.Sprintf("%v/%s", dt, name), func(b *testing.B) {
				useKernels(name)
				b.SetBytes(sb.touched())
				for i := 0; b.Loop(); i++ {
					m, sel := sb.mats[i%sparseBenchMats], sb.sels[i%len(sb.sels)]
					m.accumRows(sb.y, sel, sb.a[:len(sel)])
				}
			})
		}
	}
}

// BenchmarkSparsePrefetch sweeps the prefetch distance of the four-row f16
// kernels (0: no software prefetch), interleaving the distances call by
// call, and reports the median GB/s over the bytes touched of each.
func BenchmarkSparsePrefetch(b *testing.B) {
	defer func(v, r, n int) { sparsePrefetchBytes, sparsePrefetchMaxRow, sparseRows = v, r, n }(sparsePrefetchBytes, sparsePrefetchMaxRow, sparseRows)
	sparsePrefetchMaxRow, sparseRows = 1<<30, 4 // the four-row kernels prefetch
	pfs := []int{0, 2 << 10, 4 << 10, 8 << 10, 16 << 10, 32 << 10}
	for _, c := range []struct {
		op   string
		cols int
	}{{"gather", 2048}, {"accum", 2048}, {"gather", 512}, {"accum", 512}} {
		op, sb := c.op, getSparseBench(F16, c.cols)
		b.Run(fmt.Sprintf("%s/%dcols", op, c.cols), func(b *testing.B) {
			rates := make([][]float64, len(pfs))
			for i := 0; b.Loop(); i++ {
				for j, pf := range pfs {
					sparsePrefetchBytes = pf
					k := i*len(pfs) + j
					m, sel := sb.mats[k%sparseBenchMats], sb.sels[k%len(sb.sels)]
					t0 := time.Now()
					if op == "gather" {
						m.gatherRows(sb.y, sb.x, sel)
					} else {
						m.accumRows(sb.y, sel, sb.a[:len(sel)])
					}
					rates[j] = append(rates[j], float64(sb.touched())/time.Since(t0).Seconds()/1e9)
				}
			}
			for j, pf := range pfs {
				b.ReportMetric(Median(rates[j]), fmt.Sprintf("pf%dK-GB/s", pf>>10))
			}
		})
	}
}

// BenchmarkSparseExec2 is Exec.GatherMatVec and Exec.AccumRows on a
// 2-thread pool (f16).
func BenchmarkSparseExec2(b *testing.B) {
	sb := getSparseBench(F16, 2048)
	pool := NewPool(2)
	defer pool.Close()
	e := NewExec(pool, 2048)
	b.Run("gather", func(b *testing.B) {
		b.SetBytes(sb.touched())
		for i := 0; b.Loop(); i++ {
			e.GatherMatVec(sb.y, sb.mats[i%sparseBenchMats], sb.x, sb.sels[i%len(sb.sels)])
		}
	})
	b.Run("accum", func(b *testing.B) {
		b.SetBytes(sb.touched())
		for i := 0; b.Loop(); i++ {
			sel := sb.sels[i%len(sb.sels)]
			e.AccumRows(sb.y, sb.mats[i%sparseBenchMats], sel, sb.a[:len(sel)])
		}
	})
}

// BenchmarkDenseRef is the single-threaded dense f16 GEMV over the same
// eight matrices (every row) and the machine's single-core read rate:
// the references for the sparse MB/s above.
func BenchmarkDenseRef(b *testing.B) {
	sb := getSparseBench(F16, 2048)
	b.Run("gemv-f16", func(b *testing.B) {
		b.SetBytes(sb.mats[0].Bytes())
		for i := 0; b.Loop(); i++ {
			m := sb.mats[i%sparseBenchMats]
			m.gemvRows(sb.y, sb.x, 0, m.Rows)
		}
	})
	b.Run("read-1core", func(b *testing.B) {
		buf := unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(sb.mats[0].u16))), len(sb.mats[0].u16)/4)
		t := &readTask{buf: buf, sums: make([]uint64, 1)}
		b.SetBytes(int64(len(buf) * 8))
		for i := 0; b.Loop(); i++ {
			m := sb.mats[i%sparseBenchMats]
			t.buf = unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(m.u16))), len(m.u16)/4)
			t.Run(0, 0, len(t.buf))
		}
	})
}

// BenchmarkSparseBandwidth interleaves, call by call, the single-core read
// rate (summing a 64 MiB matrix), the dense f16 GEMV, and the f16 gather
// and accumulate over 10% of the rows (new matrix and rows each call), and
// reports the median GB/s of each and the sparse kernels' fraction of the
// read rate: on a shared, noisy machine only side-by-side numbers compare.
func BenchmarkSparseBandwidth(b *testing.B) {
	sb := getSparseBench(F16, 2048)
	t := &readTask{sums: make([]uint64, 1)}
	ops := []struct {
		name  string
		bytes int64
		run   func(m Mat, sel []int32)
	}{
		{"read", sb.mats[0].Bytes(), func(m Mat, _ []int32) {
			t.buf = unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(m.u16))), len(m.u16)/4)
			t.Run(0, 0, len(t.buf))
		}},
		{"gemv", sb.mats[0].Bytes(), func(m Mat, _ []int32) { m.gemvRows(sb.y, sb.x, 0, m.Rows) }},
		{"gather", sb.touched(), func(m Mat, sel []int32) { m.gatherRows(sb.y, sb.x, sel) }},
		{"accum", sb.touched(), func(m Mat, sel []int32) { m.accumRows(sb.y, sel, sb.a[:len(sel)]) }},
		{"rowwise", sb.touched(), func(m Mat, sel []int32) {
			for k, r := range sel {
				sb.y[k] = m.dotRow(int(r), sb.x)
			}
		}},
	}
	rates := make([][]float64, len(ops))
	for i := 0; b.Loop(); i++ {
		for j, op := range ops {
			k := i*len(ops) + j
			m, sel := sb.mats[k%sparseBenchMats], sb.sels[k%len(sb.sels)]
			t0 := time.Now()
			op.run(m, sel)
			rates[j] = append(rates[j], float64(op.bytes)/time.Since(t0).Seconds()/1e9)
		}
	}
	read := Median(rates[0])
	for j, op := range ops {
		b.ReportMetric(Median(rates[j]), op.name+"-GB/s")
		if j > 0 {
			b.ReportMetric(Median(rates[j])/read, op.name+"/read")
		}
	}
}

// hugeCopy returns copies of the bench's matrices in HugeBytes memory.
func (b *sparseBench) hugeCopy() []Mat {
	out := make([]Mat, len(b.mats))
	for i, m := range b.mats {
		buf := HugeBytes(int(m.Bytes()))
		copy(buf, unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(m.u16))), len(buf)))
		h, err := NewMat(m.DType, m.Rows, m.Cols, buf)
		if err != nil {
			panic(err)
		}
		out[i] = h
	}
	return out
}

// BenchmarkSparseHuge interleaves, call by call, the single-core read rate
// and the f16 gather and accumulate over 10% of the rows on the same
// matrices in ordinary (4 KiB-page) heap memory and in HugeBytes memory
// (2 MiB pages where THP allows), and reports the median GB/s of each.
func BenchmarkSparseHuge(b *testing.B) {
	for _, cols := range []int{2048, 512} {
		sb := getSparseBench(F16, cols)
		huge := sb.hugeCopy()
		b.Run(fmt.Sprintf("%dcols", cols), func(b *testing.B) {
			t := &readTask{sums: make([]uint64, 1)}
			read := func(m Mat, _ []int32) {
				t.buf = unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(m.u16))), len(m.u16)/4)
				t.Run(0, 0, len(t.buf))
			}
			gather := func(m Mat, sel []int32) { m.gatherRows(sb.y, sb.x, sel) }
			accum := func(m Mat, sel []int32) { m.accumRows(sb.y, sel, sb.a[:len(sel)]) }
			ops := []struct {
				name  string
				mats  []Mat
				bytes int64
				run   func(m Mat, sel []int32)
			}{
				{"read", sb.mats, sb.mats[0].Bytes(), read},
				{"gather", sb.mats, sb.touched(), gather},
				{"accum", sb.mats, sb.touched(), accum},
				{"read-huge", huge, sb.mats[0].Bytes(), read},
				{"gather-huge", huge, sb.touched(), gather},
				{"accum-huge", huge, sb.touched(), accum},
			}
			rates := make([][]float64, len(ops))
			for i := 0; b.Loop(); i++ {
				for j, op := range ops {
					k := i*len(ops) + j
					m, sel := op.mats[k%sparseBenchMats], sb.sels[k%len(sb.sels)]
					t0 := time.Now()
					op.run(m, sel)
					rates[j] = append(rates[j], float64(op.bytes)/time.Since(t0).Seconds()/1e9)
				}
			}
			for j, op := range ops {
				b.ReportMetric(Median(rates[j]), op.name+"-GB/s")
			}
		})
	}
}

// BenchmarkSparseMLPFused compares, on one thread, 10% of 8192 neurons
// of 2048-column f16 matrices (eight sets in turn, 1.5 GiB), the MLP
// product as the model did before (gather of the up rows in place on heap
// pages, "sepPH", or on huge pages, "sepHH", then the accumulation over a
// separate huge-page copy of downᵀ) with the fused passes over
// Interleave(up, downᵀ) (sixteen neurons gathered, then accumulated;
// "fusedH16" on huge pages, "fusedP16" on heap pages, "fusedH8r8" eight
// per pass through the eight-row kernels); GB/s over the bytes touched.
func BenchmarkSparseMLPFused(b *testing.B) {
	const H, N, nm = 2048, 8192, 8
	r := rand.New(rand.NewPCG(3, 4))
	mk := func(rows, cols int, huge bool) Mat {
		var buf []byte
		if huge {
			buf = HugeBytes(rows * cols * 2)
		} else {
			buf = make([]byte, rows*cols*2)
		}
		m, _ := NewMat(F16, rows, cols, buf)
		fillFast(m, r.Uint64())
		return m
	}
	var aH, bH, aP, il, ilP []Mat
	for i := 0; i < nm; i++ {
		aH = append(aH, mk(N, H, true))
		bH = append(bH, mk(N, H, true))
		aP = append(aP, mk(N, H, false))
		il = append(il, Interleave(aH[i], bH[i]))
		ilP = append(ilP, mk(N, 2*H, false))
	}
	sels := make([][]int32, 32)
	for i := range sels {
		sels[i] = randRows(r, N, 819)
	}
	x := randVec(r, H, 0)
	y := make([]float32, H)
	a := make([]float32, N)
	pool := NewPool(1)
	defer pool.Close()
	e := NewExec(pool, H)
	sep := func(A, B Mat, sel []int32) {
		A.gatherRows(a, x, sel)
		for k := range sel {
			a[k] = max(a[k], 0)
		}
		B.accumRows(y, sel, a)
	}
	fused := func(W Mat, sel []int32, P int) {
		w := W.rowPtr(0, W.Rows)
		stride := 4 * H
		w2 := unsafe.Add(w, 2*H)
		for p := 0; p < len(sel); p += P {
			e := min(p+P, len(sel))
			n := (e - p) &^ 3
			if n > 0 {
				archGather(kern.id, F16, w, stride, &x[0], &a[p], &sel[p], n, 0, H)
				for k := p; k < p+n; k++ {
					a[k] = max(a[k], 0)
				}
				archAccum(kern.id, F16, w2, stride, &y[0], &a[p], &sel[p], n, 0, H)
			}
		}
	}
	defer func(n int) { sparseRows = n }(sparseRows)
	names := []string{"sepPH", "sepHH", "fusedH16", "fusedP16", "fusedH8r8"}
	rates := make([][]float64, len(names))
	for i := 0; b.Loop(); i++ {
		for j, nm2 := range names {
			k := i*len(names) + j
			sel := sels[k%len(sels)]
			sel = sel[:len(sel)&^15]
			mi := k % nm
			sparseRows = 16
			if nm2[len(nm2)-2:] == "r8" {
				sparseRows = 8
			}
			t0 := time.Now()
			switch nm2 {
			case "fusedH8r8":
				fused(il[mi], sel, 8)
			case "sepHH":
				sep(aH[mi], bH[mi], sel)
			case "sepPH":
				sep(aP[mi], bH[mi], sel)
			case "fusedH16":
				e.SparseMLP(y, il[mi], 2, x, sel, a, nil, reluAct{})
			case "fusedP16":
				e.SparseMLP(y, ilP[mi], 2, x, sel, a, nil, reluAct{})
			}
			rates[j] = append(rates[j], float64(len(sel)*2*H*2)/time.Since(t0).Seconds()/1e9)
		}
	}
	for j, n := range names {
		b.ReportMetric(Median(rates[j]), n+"-GB/s")
	}
}
