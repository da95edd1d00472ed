package kernels

import "unsafe"

// GEMV kernels: y[i] = dot(W[i,:], x) over a block of rows.
//
// The pure-Go reference is Mat.dotRowGo row by row. Architecture files may
// provide faster kernels (gemv_amd64.go: AVX-512 and AVX2+FMA+F16C
// assembly) in archKernels, best first; the first is used by default.

// gemvKernels names one implementation of the products: id 0 is the pure-Go
// reference; the architecture file numbers its own kernels and runs them
// with archGemv and archDot. archGemv(id, dt, w, x, y, rows, cols) computes
// y[i] = dot(row i of the rows×cols matrix of dtype dt at w, x) for i < rows,
// with rows, cols > 0 and every pointer covering its extent; archDot(id, a,
// b, n) returns the inner product of n > 0 floats. (Direct calls, rather
// than function values, let pointers to the stack stay there.)
type gemvKernels struct {
	id   int
	name string
}

// kern is the active implementation. The architecture file defines
// archKernels, the fast kernels this CPU supports, best first.
var kern = bestKernels()

func bestKernels() gemvKernels {
	if len(archKernels) == 0 {
		return gemvKernels{}
	}
	return archKernels[0]
}

// SetPureGo switches every product to the plain Go reference (on) or back to
// the fastest kernels this CPU supports (off). It is meant for tests and
// benchmarks and must not be called while products are running.
func SetPureGo(on bool) {
	if on {
		kern = gemvKernels{}
	} else {
		kern = bestKernels()
	}
}

// KernelName names the active product kernels ("go" for the reference).
func KernelName() string {
	if kern.name == "" {
		return "go"
	}
	return kern.name
}

// useKernels selects kernels by name ("go" or one of archKernels) and
// reports whether they exist on this CPU (tests, benchmarks).
func useKernels(name string) bool {
	if name == "go" {
		kern = gemvKernels{}
		return true
	}
	for _, k := range archKernels {
		if k.name == name {
			kern = k
			return true
		}
	}
	return false
}

// kernelNames lists "go" and every fast kernel set this CPU supports.
func kernelNames() []string {
	names := []string{"go"}
	for _, k := range archKernels {
		names = append(names, k.name)
	}
	return names
}

// Dot is the inner product of a and b[:len(a)].
func Dot(a, b []float32) float32 {
	b = b[:len(a)]
	if kern.id == 0 || len(a) == 0 {
		return dotGo(a, b)
	}
	return archDot(kern.id, unsafe.SliceData(a), unsafe.SliceData(b), len(a))
}

// dotRow returns row i of m dotted with x.
func (m Mat) dotRow(i int, x []float32) float32 {
	c := m.Cols
	if kern.id == 0 || c == 0 {
		return m.dotRowGo(i, x)
	}
	var y float32
	archGemv(kern.id, m.DType, m.rowPtr(i, i+1), unsafe.SliceData(x[:c]), &y, 1, c)
	return y
}

// gemvRows sets y[i] = dot(row i of m, x) for start ≤ i < end; it writes no
// other element of y.
func (m Mat) gemvRows(y, x []float32, start, end int) {
	c := m.Cols
	y = y[start:end]
	x = x[:c]
	if len(y) == 0 {
		return
	}
	if c == 0 {
		clear(y)
		return
	}
	if m.DType.isQ4() { // q4.go
		m.gemvRowsQ4(y, x, start)
		return
	}
	if kern.id == 0 {
		for i := range y {
			y[i] = m.dotRowGo(start+i, x)
		}
		return
	}
	archGemv(kern.id, m.DType, m.rowPtr(start, end), unsafe.SliceData(x), unsafe.SliceData(y), len(y), c)
}

// rowPtr returns the address of row start after checking that rows
// [start, end) exist (end > start, Cols > 0).
func (m Mat) rowPtr(start, end int) unsafe.Pointer {
	c := m.Cols
	switch m.DType {
	case F32:
		return unsafe.Pointer(unsafe.SliceData(m.f32[start*c : end*c]))
	case Q8_0:
		return m.q8Ptr(start, end)
	case Q4_0, Q4_K, Q5_K, Q6_K, Q5_0, Q5_1:
		return m.q4Ptr(start, end)
	}
	return unsafe.Pointer(unsafe.SliceData(m.u16[start*c : end*c]))
}

// gemmBlockBytes is how much of the weights a prompt product applies to all
// its inputs before moving on, so that the block stays in L2 meanwhile.
const gemmBlockBytes = 64 << 10

// gemmRows sets y[b*Rows+i] = dot(row i of m, x[b*Cols:]) for b < n and
// start ≤ i < end, a block of rows at a time, using the fast row-block
// kernels; it reports false (doing nothing) when only pure Go is active.
func (m Mat) gemmRows(y, x []float32, n, start, end int) bool {
	if kern.id == 0 {
		return false
	}
	c, r := m.Cols, m.Rows
	blk := max(8, gemmBlockBytes/max(1, m.DType.RowBytes(c))) &^ 7
	for s := start; s < end; s += blk {
		e := min(s+blk, end)
		for b := range n {
			m.gemvRows(y[b*r:(b+1)*r], x[b*c:(b+1)*c], s, e)
		}
	}
	return true
}
