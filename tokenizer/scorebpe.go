package tokenizer

// mergeByScore runs BPE by piece score, as sentencepiece's bpe::Model and
// llama2.c do: repeatedly merge the adjacent pair whose concatenation is a
// piece with the highest score, the leftmost pair on ties.
//
// The symbols are the spans [bounds[i], bounds[i+1]) of arena; a merged
// symbol is the span covering both, so the piece of any symbol is a
// substring of arena. frozen (may be nil) marks symbols that never merge.
// score reports whether a string is a mergeable piece and its score.
// onCandidate (may be nil) is called for every candidate pair.
// It returns the bounds of the resulting symbols.
func mergeByScore(arena string, bounds []int, frozen []bool, score func(string) (float32, bool), onCandidate func(left, right string)) []int {
	n := len(bounds) - 1
	if n < 2 {
		return bounds
	}
	type sym struct {
		start, end int
		prev, next int
		alive      bool
	}
	syms := make([]sym, n)
	for i := range syms {
		syms[i] = sym{start: bounds[i], end: bounds[i+1], prev: i - 1, next: i + 1, alive: true}
	}
	syms[n-1].next = -1
	h := scoreHeap{}
	add := func(l, r int) {
		if l < 0 || r < 0 || (frozen != nil && (frozen[l] || frozen[r])) {
			return
		}
		piece := arena[syms[l].start:syms[r].end]
		s, ok := score(piece)
		if !ok {
			return
		}
		h.push(scoreItem{score: s, left: int32(l), right: int32(r), size: int32(len(piece))})
		if onCandidate != nil {
			onCandidate(arena[syms[l].start:syms[l].end], arena[syms[r].start:syms[r].end])
		}
	}
	for i := 0; i+1 < n; i++ {
		add(i, i+1)
	}
	for len(h) > 0 {
		top := h.pop()
		l, r := int(top.left), int(top.right)
		if !syms[l].alive || !syms[r].alive || (syms[l].end-syms[l].start)+(syms[r].end-syms[r].start) != int(top.size) {
			continue // stale
		}
		syms[l].end = syms[r].end
		syms[r].alive = false
		syms[l].next = syms[r].next
		if nn := syms[r].next; nn >= 0 {
			syms[nn].prev = l
		}
		add(syms[l].prev, l)
		add(l, syms[l].next)
	}
	out := make([]int, 0, n+1)
	for i := 0; i >= 0; i = syms[i].next {
		out = append(out, syms[i].start)
	}
	return append(out, bounds[n])
}

type scoreItem struct {
	score             float32
	left, right, size int32
}

// better orders the agenda like sentencepiece: higher score first, then
// the leftmost pair.
func (a scoreItem) better(b scoreItem) bool {
	return a.score > b.score || (a.score == b.score && a.left < b.left)
}

type scoreHeap []scoreItem

func (h *scoreHeap) push(x scoreItem) {
	*h = append(*h, x)
	s := *h
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !s[i].better(s[p]) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *scoreHeap) pop() scoreItem {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	i := 0
	for {
		l := 2*i + 1
		if l >= len(s) {
			break
		}
		m := l
		if r := l + 1; r < len(s) && s[r].better(s[l]) {
			m = r
		}
		if !s[m].better(s[i]) {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}
