package tokenizer

import (
	"sort"
	"unicode"
	"unicode/utf8"
)

// addedToken is an entry of tokenizer.json's added_tokens (or of
// tokenizer_config.json's added_tokens_decoder).
type addedToken struct {
	id         int
	content    string
	special    bool
	lstrip     bool
	rstrip     bool
	singleWord bool
	normalized bool
}

type jsonAddedToken struct {
	ID         int    `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	Lstrip     bool   `json:"lstrip"`
	Rstrip     bool   `json:"rstrip"`
	Normalized *bool  `json:"normalized"`
	Special    bool   `json:"special"`
}

func (j jsonAddedToken) toAdded() addedToken {
	norm := !j.Special // the default of tokenizers' AddedToken
	if j.Normalized != nil {
		norm = *j.Normalized
	}
	return addedToken{id: j.ID, content: j.Content, special: j.Special, lstrip: j.Lstrip, rstrip: j.Rstrip, singleWord: j.SingleWord, normalized: norm}
}

// addedMatcher finds added tokens in text with the leftmost-longest rule of
// the Aho-Corasick automaton that HF tokenizers uses.
type addedMatcher struct {
	byFirst map[byte][]*addedToken // longest first
}

func newAddedMatcher(toks []*addedToken) *addedMatcher {
	m := &addedMatcher{byFirst: map[byte][]*addedToken{}}
	for _, t := range toks {
		if t.content == "" {
			continue
		}
		m.byFirst[t.content[0]] = append(m.byFirst[t.content[0]], t)
	}
	for _, l := range m.byFirst {
		sort.SliceStable(l, func(i, j int) bool { return len(l[i].content) > len(l[j].content) })
	}
	return m
}

func (m *addedMatcher) empty() bool { return m == nil || len(m.byFirst) == 0 }

// segment is a piece of the input: an added token (tok != nil) or text.
type segment struct {
	text    string
	tok     *addedToken
	atStart bool // the text starts at offset 0 of the original input
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsNumber(r) || r == '_' }

// split cuts s at the added tokens, applying their single_word, lstrip and
// rstrip options like tokenizers' AddedVocabulary::find_matches.
func (m *addedMatcher) split(s string, atStart bool, out []segment) []segment {
	if m.empty() {
		return append(out, segment{text: s, atStart: atStart})
	}
	startOffset := 0
	i := 0
	for i < len(s) {
		cands := m.byFirst[s[i]]
		var hit *addedToken
		for _, t := range cands {
			if len(s)-i >= len(t.content) && s[i:i+len(t.content)] == t.content {
				hit = t
				break
			}
		}
		if hit == nil {
			i++
			continue
		}
		start, stop := i, i+len(hit.content)
		i = stop
		if hit.singleWord {
			startOK := start == 0
			if !startOK {
				r, _ := utf8.DecodeLastRuneInString(s[:start])
				startOK = !isWordRune(r)
			}
			stopOK := stop == len(s)
			if !stopOK {
				r, _ := utf8.DecodeRuneInString(s[stop:])
				stopOK = !isWordRune(r)
			}
			if !startOK || !stopOK {
				continue
			}
		}
		if hit.lstrip {
			ns := start
			for ns > 0 {
				r, size := utf8.DecodeLastRuneInString(s[:ns])
				if !unicode.IsSpace(r) {
					break
				}
				ns -= size
			}
			start = max(ns, startOffset)
		}
		if hit.rstrip {
			for stop < len(s) {
				r, size := utf8.DecodeRuneInString(s[stop:])
				if !unicode.IsSpace(r) {
					break
				}
				stop += size
			}
		}
		if startOffset < start {
			out = append(out, segment{text: s[startOffset:start], atStart: atStart && startOffset == 0})
		}
		out = append(out, segment{text: s[start:stop], tok: hit})
		startOffset = stop
		if i < stop {
			i = stop
		}
	}
	if startOffset < len(s) || len(s) == 0 {
		out = append(out, segment{text: s[startOffset:], atStart: atStart && startOffset == 0})
	}
	return out
}
