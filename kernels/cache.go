package kernels

// CacheMatMul computes key and value heads for a head-major KV cache whose
// entries may lag behind: for each selected block b of bs rows of w (one
// key/value head) and each input position j in [from[k], n), with b =
// blocks[k], it writes the block's rows times input j to
// y[(b·stride+j)·bs:][:bs] — position j of head b in a cache holding stride
// positions per head. w2 and y2 (the value projection and cache; an empty
// w2 skips them) get the same products in the same parallel call. x holds
// the inputs of positions x0…n-1, Cols floats each; every from[k] ≥ x0.
//
// Each chunk of a block's rows (cacheChunkBytes) is read from memory once and
// applied to all of that block's inputs while it stays in cache, so catching
// a head up over many positions costs its weights once. The rows use the
// dot kernels of MatVec; a value may differ from MatVec's in the last bits
// (rows grouped differently sum in a different order).
func (e *Exec) CacheMatMul(y []float32, w Mat, y2 []float32, w2 Mat, x []float32, x0, n, stride int, blocks, from []int32, bs int) {
	if bs <= 0 || len(blocks) == 0 || n <= 0 {
		return
	}
	if len(from) != len(blocks) {
		panic("kernels: CacheMatMul needs one start position per block")
	}
	for k, b := range blocks {
		if b < 0 || int(b+1)*bs > w.Rows || int(from[k]) < x0 || int(from[k]) > n {
			panic("kernels: CacheMatMul block or start position out of range")
		}
	}
	if n > stride || len(x) < (n-x0)*w.Cols || len(y) < w.Rows/bs*stride*bs {
		panic("kernels: CacheMatMul buffers too short")
	}
	t := &e.ct
	*t = cacheTask{y: y, w: w, y2: y2, w2: w2, x: x, x0: x0, n: n, stride: stride, blocks: blocks, from: from, bs: bs}
	rows := len(blocks) * bs
	if w2.Rows > 0 {
		if w2.Rows != w.Rows || w2.Cols != w.Cols || len(y2) < len(y) {
			panic("kernels: CacheMatMul's second matrix differs in shape")
		}
		rows *= 2
	}
	grain := max(1, sparsePartBytes/max(1, w.DType.RowBytes(w.Cols)))
	e.Pool.Parallel(rows, grain, t)
	*t = cacheTask{}
}

// cacheChunkBytes is how much of a block's rows CacheMatMul applies to all
// of its inputs before moving on (when a head has more than two): it stays
// in L2 meanwhile. 64 KiB and 256 KiB measured alike on opt-1.3b's rows
// (docs/kernels-sparse.md, session 5); 256 KiB is one whole head there.
const cacheChunkBytes = 256 << 10

// cacheTask runs CacheMatMul over a virtual list of rows: the selected
// blocks of w, then (with w2) the same blocks of w2.
type cacheTask struct {
	y, y2, x          []float32
	w, w2             Mat
	x0, n, stride, bs int
	blocks, from      []int32
}

func (t *cacheTask) Run(_, start, end int) {
	bs, half := t.bs, len(t.blocks)*t.bs
	c := t.w.Cols
	chunk := max(8, cacheChunkBytes/max(1, t.w.DType.RowBytes(c))&^7)
	for r := start; r < end; {
		w, y, v := t.w, t.y, r
		if v >= half {
			w, y, v = t.w2, t.y2, v-half
		}
		k := v / bs
		b := int(t.blocks[k])
		e := min(end-(r-v), (k+1)*bs) // end of this block's share, in v's terms
		// Rows [lo, hi) of w; an output slice shifted so that row i of
		// position j lands at (b·stride+j)·bs + i - b·bs.
		lo, hi := b*bs+v-k*bs, b*bs+e-k*bs
		step := chunk
		if t.n-int(t.from[k]) <= 2 {
			step = hi - lo // one pass over the weights serves all inputs
		}
		for s := lo; s < hi; s += step {
			se := min(s+step, hi)
			// Two positions per pass where a kernel takes two inputs.
			j := int(t.from[k])
			for ; j+1 < t.n; j += 2 {
				o0, o1 := (b*t.stride+j)*bs-b*bs, (b*t.stride+j+1)*bs-b*bs
				x0, x1 := t.x[(j-t.x0)*c:(j-t.x0+1)*c], t.x[(j+1-t.x0)*c:(j-t.x0+2)*c]
				if !w.archGemv2(y[o0:], y[o1:], x0, x1, s, se) {
					w.gemvRows(y[o0:], x0, s, se)
					w.gemvRows(y[o1:], x1, s, se)
				}
			}
			if j < t.n {
				off := (b*t.stride+j)*bs - b*bs
				w.gemvRows(y[off:], t.x[(j-t.x0)*c:(j-t.x0+1)*c], s, se)
			}
		}
		r += e - v
	}
}
