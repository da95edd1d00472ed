package kernels

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestLaneOrder: the lane order is a permutation of the list in which pass
// p takes the p-th entry of each of 16 runs, the remainder last, and
// fromLanes restores the list.
func TestLaneOrder(t *testing.T) {
	for _, n := range []int{32, 33, 47, 64, 100, laneBlock} {
		rows := make([]int32, n)
		for i := range rows {
			rows[i] = int32(3 * i)
		}
		perm := make([]int32, n)
		toLanes(perm, rows, n)
		L := n / lanes
		if perm[0] != rows[0] || perm[1] != rows[L] || perm[lanes] != rows[1] || perm[n-1] != rows[n-1] {
			t.Errorf("n %d: lane order starts %v", n, perm[:lanes+1])
		}
		s := slices.Clone(perm)
		slices.Sort(s)
		if !slices.Equal(s, rows) {
			t.Errorf("n %d: lane order is not a permutation", n)
		}
		back := make([]int32, n)
		if fromLanes(back, perm, n); !slices.Equal(back, rows) {
			t.Errorf("n %d: fromLanes does not restore the list", n)
		}
	}
}

// TestLanedLongLists: gathers and accumulates of lists longer than one lane
// block (and of lengths around the block and lane boundaries) equal the
// reference, on every kernel set (Q8_0, whose gathers quantize x, in
// TestQ8SparseMatchReference, up to 70 rows: laned too).
func TestLanedLongLists(t *testing.T) {
	forEachKernel(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(21, 22))
		const rowsN, cols = 3000, 64
		for _, dt := range []DType{F32, F16, BF16} {
			m, vals := offsetMat(r, dt, rowsN, cols, 0)
			x := randVec(r, cols, 0)
			for _, k := range []int{31, 32, 33, 36, 1023, 1024, 1028, 1060, 2049, 2999} {
				sel := randRows(r, rowsN, k)
				y := nanVec(k)
				m.gatherRows(y, x, sel)
				for i, row := range sel {
					if err := checkDot(y[i], vals[int(row)*cols:int(row+1)*cols], x); err != nil {
						t.Fatalf("%v gather of %d rows: y[%d] (row %d): %v", dt, k, i, row, err)
					}
				}
				a := randVec(r, k, 0)
				y0 := randVec(r, cols, 0)
				acc := slices.Clone(y0)
				m.accumRows(acc, sel, a)
				if err := checkAccum(acc, y0, vals, cols, sel, a); err != nil {
					t.Fatalf("%v accumulate of %d rows: %v", dt, k, err)
				}
			}
		}
	})
}
