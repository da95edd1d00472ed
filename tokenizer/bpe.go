package tokenizer

import (
	"fmt"
	"sync"
	"unicode/utf8"
)

// mergeRule is the rank of a merge and the id of the token it makes.
type mergeRule struct {
	rank  int32
	newID int32
}

func pairKey(a, b int) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// bpeModel is the model.type "BPE" of HF tokenizers: merges applied by rank.
type bpeModel struct {
	vocab        map[string]int
	merges       map[uint64]mergeRule
	unkID        int // -1 if none
	fuseUnk      bool
	byteFallback bool
	ignoreMerges bool
	byteIDs      [256]int // ids of the "<0xXX>" tokens, -1 if missing
	// byteLevel: words arrive as raw bytes and start as the ids of the
	// byte-level characters (byteLevelIDs); else they start as characters.
	byteLevel    bool
	byteLevelIDs [256]int

	cache wordCache
}

const (
	wordCacheMax     = 20000 // entries; the cache is emptied when full
	wordCacheWordMax = 64    // longer words are not cached
)

// wordCache maps words to their ids, bounded, safe for concurrent use.
type wordCache struct {
	mu sync.Mutex
	m  map[string][]int
}

func (c *wordCache) get(w string) ([]int, bool) {
	if len(w) > wordCacheWordMax {
		return nil, false
	}
	c.mu.Lock()
	ids, ok := c.m[w]
	c.mu.Unlock()
	return ids, ok
}

func (c *wordCache) put(w string, ids []int) {
	if len(w) > wordCacheWordMax {
		return
	}
	ids = append([]int(nil), ids...)
	c.mu.Lock()
	if c.m == nil || len(c.m) >= wordCacheMax {
		c.m = make(map[string][]int)
	}
	c.m[w] = ids
	c.mu.Unlock()
}

func newBPEModel(vocab map[string]int) *bpeModel {
	m := &bpeModel{vocab: vocab, unkID: -1, merges: map[uint64]mergeRule{}}
	for b := 0; b < 256; b++ {
		m.byteIDs[b] = -1
		if id, ok := vocab[fmt.Sprintf("<0x%02X>", b)]; ok {
			m.byteIDs[b] = id
		}
		m.byteLevelIDs[b] = -1
		if id, ok := vocab[string(byteToRune[b])]; ok {
			m.byteLevelIDs[b] = id
		}
	}
	return m
}

// addMerge registers merge number rank "a b"; where says where it was read.
func (m *bpeModel) addMerge(a, b string, rank int, where string) error {
	ia, ok1 := m.vocab[a]
	ib, ok2 := m.vocab[b]
	nid, ok3 := m.vocab[a+b]
	switch {
	case !ok1:
		return fmt.Errorf("tokenizer: %s: merge %d (%q %q): %q is not in the vocabulary", where, rank, a, b, a)
	case !ok2:
		return fmt.Errorf("tokenizer: %s: merge %d (%q %q): %q is not in the vocabulary", where, rank, a, b, b)
	case !ok3:
		return fmt.Errorf("tokenizer: %s: merge %d (%q %q): %q is not in the vocabulary", where, rank, a, b, a+b)
	}
	k := pairKey(ia, ib)
	if _, dup := m.merges[k]; !dup { // the first (lowest rank) wins, as in HF
		m.merges[k] = mergeRule{rank: int32(rank), newID: int32(nid)}
	}
	return nil
}

// encodeWord appends the ids of one pre-tokenized word to out.
func (m *bpeModel) encodeWord(word string, out []int) []int {
	if word == "" {
		return out
	}
	if ids, ok := m.cache.get(word); ok {
		return append(out, ids...)
	}
	start := len(out)
	out = m.encodeWordNoCache(word, out)
	m.cache.put(word, out[start:])
	return out
}

func (m *bpeModel) encodeWordNoCache(word string, out []int) []int {
	if m.ignoreMerges {
		key := word
		if m.byteLevel {
			key = byteLevelString(word)
		}
		if id, ok := m.vocab[key]; ok {
			return append(out, id)
		}
	}
	var syms []int
	if m.byteLevel {
		syms = make([]int, 0, len(word))
		for i := 0; i < len(word); i++ {
			if id := m.byteLevelIDs[word[i]]; id >= 0 {
				syms = append(syms, id)
			} else if m.unkID >= 0 {
				syms = append(syms, m.unkID)
			}
		}
	} else {
		syms = m.initialSymbols(word)
	}
	return append(out, mergeByRank(syms, m.merges)...)
}

// initialSymbols splits a word into characters looked up in the
// vocabulary, with byte fallback and unknown-token fusing as in HF's
// BPE::merge_word.
func (m *bpeModel) initialSymbols(word string) []int {
	syms := make([]int, 0, len(word))
	pendingUnk := false
	for i := 0; i < len(word); {
		_, size := utf8.DecodeRuneInString(word[i:])
		ch := word[i : i+size]
		i += size
		if id, ok := m.vocab[ch]; ok {
			if pendingUnk {
				syms = append(syms, m.unkID)
				pendingUnk = false
			}
			syms = append(syms, id)
			continue
		}
		if m.byteFallback {
			all := true
			for k := 0; k < len(ch); k++ {
				if m.byteIDs[ch[k]] < 0 {
					all = false
					break
				}
			}
			if all {
				// HF does not flush a pending unknown token here.
				for k := 0; k < len(ch); k++ {
					syms = append(syms, m.byteIDs[ch[k]])
				}
				continue
			}
		}
		if m.unkID >= 0 {
			if pendingUnk && !m.fuseUnk {
				syms = append(syms, m.unkID)
			}
			pendingUnk = true
		}
	}
	if pendingUnk {
		syms = append(syms, m.unkID)
	}
	return syms
}

// mergeByRank applies the merges to syms like HF's Word::merge_all: a heap
// of candidate pairs ordered by (rank, position), merging the best first.
func mergeByRank(syms []int, merges map[uint64]mergeRule) []int {
	n := len(syms)
	if n < 2 {
		return syms
	}
	type node struct {
		id         int
		prev, next int
		alive      bool
	}
	nodes := make([]node, n)
	for i, id := range syms {
		nodes[i] = node{id: id, prev: i - 1, next: i + 1, alive: true}
	}
	nodes[n-1].next = -1
	h := rankHeap{}
	for i := 0; i+1 < n; i++ {
		if r, ok := merges[pairKey(syms[i], syms[i+1])]; ok {
			h.push(rankItem{rank: r.rank, pos: int32(i), newID: r.newID})
		}
	}
	for len(h) > 0 {
		top := h.pop()
		p := int(top.pos)
		if !nodes[p].alive || nodes[p].next < 0 {
			continue
		}
		q := nodes[p].next
		r, ok := merges[pairKey(nodes[p].id, nodes[q].id)]
		if !ok || r.newID != top.newID {
			continue // stale entry
		}
		nodes[p].id = int(r.newID)
		nodes[q].alive = false
		nodes[p].next = nodes[q].next
		if nn := nodes[q].next; nn >= 0 {
			nodes[nn].prev = p
		}
		if pp := nodes[p].prev; pp >= 0 {
			if r2, ok := merges[pairKey(nodes[pp].id, nodes[p].id)]; ok {
				h.push(rankItem{rank: r2.rank, pos: int32(pp), newID: r2.newID})
			}
		}
		if nn := nodes[p].next; nn >= 0 {
			if r2, ok := merges[pairKey(nodes[p].id, nodes[nn].id)]; ok {
				h.push(rankItem{rank: r2.rank, pos: int32(p), newID: r2.newID})
			}
		}
	}
	out := syms[:0]
	for i := 0; i >= 0; i = nodes[i].next {
		out = append(out, nodes[i].id)
	}
	return out
}

type rankItem struct {
	rank, pos, newID int32
}

func (a rankItem) less(b rankItem) bool {
	return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos)
}

// rankHeap is a binary min-heap of rankItem.
type rankHeap []rankItem

func (h *rankHeap) push(x rankItem) {
	*h = append(*h, x)
	s := *h
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !s[i].less(s[p]) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *rankHeap) pop() rankItem {
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
		if r := l + 1; r < len(s) && s[r].less(s[l]) {
			m = r
		}
		if !s[m].less(s[i]) {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}
