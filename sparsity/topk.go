package sparsity

import "math"

// topK appends to dst, in increasing order, the indices of the k largest
// values of z (ties broken by lower index), using scratch (len ≥ len(z)).
// It allocates nothing beyond dst's capacity.
func topK(z []float32, k int, scratch []float32, dst []int32) []int32 {
	n := len(z)
	if k >= n {
		for i := range z {
			dst = append(dst, int32(i))
		}
		return dst
	}
	if k <= 0 {
		return dst
	}
	a := scratch[:n]
	copy(a, z)
	for i, v := range a {
		if v != v { // NaN ranks last
			a[i] = -inf32
		}
	}
	t := kthLargest(a, k)
	gt := 0
	for _, v := range z {
		if v > t { // NaN compares false
			gt++
		}
	}
	ties := k - gt
	for i, v := range z {
		if v != v {
			v = -inf32
		}
		if v > t {
			dst = append(dst, int32(i))
		} else if ties > 0 && v == t {
			dst = append(dst, int32(i))
			ties--
		}
	}
	return dst
}

var inf32 = float32(math.Inf(1))

// kthLargest returns the k-th largest value of a (1 ≤ k ≤ len(a)),
// reordering a (quickselect, descending).
func kthLargest(a []float32, k int) float32 {
	target := k - 1
	lo, hi := 0, len(a)-1
	for lo < hi {
		m := lo + (hi-lo)/2
		// median of three as pivot
		x, y, z := a[lo], a[m], a[hi]
		p := y
		if (x >= y) != (x >= z) {
			p = x
		} else if (z >= x) != (z >= y) {
			p = z
		}
		i, j := lo, hi
		for i <= j {
			for a[i] > p {
				i++
			}
			for a[j] < p {
				j--
			}
			if i <= j {
				a[i], a[j] = a[j], a[i]
				i++
				j--
			}
		}
		switch {
		case target <= j:
			hi = j
		case target >= i:
			lo = i
		default:
			return a[target]
		}
	}
	return a[target]
}
