package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// byteToRune is GPT-2's bytes_to_unicode table: printable bytes stand for
// themselves, the others are moved to U+0100 and up, so that every byte is
// a visible character (space is 'Ġ' U+0120, newline 'Ċ' U+010A).
var byteToRune [256]rune

// runeToByte inverts byteToRune.
var runeToByte map[rune]byte

func init() {
	n := 0
	runeToByte = make(map[rune]byte, 256)
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			byteToRune[b] = rune(b)
		} else {
			byteToRune[b] = rune(256 + n)
			n++
		}
		runeToByte[byteToRune[b]] = byte(b)
	}
}

// byteLevelString maps raw bytes to the byte-level alphabet.
func byteLevelString(s string) string {
	buf := make([]byte, 0, 2*len(s))
	for i := 0; i < len(s); i++ {
		buf = utf8.AppendRune(buf, byteToRune[s[i]])
	}
	return string(buf)
}

// byteLevelDecode maps a token of the byte-level alphabet back to bytes,
// like the ByteLevel decoder of HF tokenizers: a token with a character
// outside the alphabet (an added token such as "<|endoftext|>" is inside it;
// one with a space is not) is kept as it is.
func byteLevelDecode(tok string) []byte {
	out := make([]byte, 0, len(tok))
	for _, r := range tok {
		b, ok := runeToByte[r]
		if !ok {
			return []byte(tok)
		}
		out = append(out, b)
	}
	return out
}

// Character classes of the GPT-2 pre-tokenizer regex.
const (
	clsSpace  = iota // \s
	clsLetter        // \p{L}
	clsNumber        // \p{N}
	clsOther         // [^\s\p{L}\p{N}], invalid UTF-8 bytes included
)

// runeAt decodes the character at s[i:]; an invalid byte is one character
// of class clsOther.
func runeAt(s string, i int) (rune, int, int) {
	r, size := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && size <= 1 {
		return r, 1, clsOther
	}
	return r, size, runeClass(r)
}

func runeClass(r rune) int {
	switch {
	case r < utf8.RuneSelf:
		switch {
		case r == ' ' || (r >= '\t' && r <= '\r'):
			return clsSpace
		case (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z'):
			return clsLetter
		case r >= '0' && r <= '9':
			return clsNumber
		}
		return clsOther
	case unicode.IsSpace(r):
		return clsSpace
	case unicode.IsLetter(r):
		return clsLetter
	case unicode.IsNumber(r):
		return clsNumber
	}
	return clsOther
}

// gpt2Contractions are the first alternatives of the GPT-2 regex, in order.
var gpt2Contractions = []string{"s", "t", "re", "ve", "m", "ll", "d"}

// splitGPT2 splits s like the GPT-2 pre-tokenizer regex
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// calling emit for each piece in order. The regex needs a lookahead, which
// Go's regexp lacks, so it is written out by hand.
func splitGPT2(s string, emit func(string)) {
	i := 0
	for i < len(s) {
		// 's 't 're 've 'm 'll 'd
		if s[i] == '\'' {
			matched := false
			for _, c := range gpt2Contractions {
				if len(s)-i-1 >= len(c) && s[i+1:i+1+len(c)] == c {
					emit(s[i : i+1+len(c)])
					i += 1 + len(c)
					matched = true
					break
				}
			}
			if matched {
				continue
			}
		}
		_, size, cls := runeAt(s, i)
		start := i
		j := i
		if s[i] == ' ' && i+1 < len(s) {
			if _, _, c2 := runeAt(s, i+1); c2 != clsSpace {
				// ' ?' followed by a letter, number or other run.
				j = i + 1
				cls = c2
				_, size, _ = runeAt(s, j)
			}
		}
		if cls != clsSpace {
			j += size
			for j < len(s) {
				_, sz, c := runeAt(s, j)
				if c != cls {
					break
				}
				j += sz
			}
			emit(s[start:j])
			i = j
			continue
		}
		// A whitespace run: \s+(?!\S) takes all of it at the end of the
		// text and all but its last character before a non-space; a single
		// whitespace character before a non-space is taken by \s+.
		j = i + size
		last := i
		for j < len(s) {
			_, sz, c := runeAt(s, j)
			if c != clsSpace {
				break
			}
			last = j
			j += sz
		}
		if j < len(s) && last > i {
			j = last
		}
		emit(s[i:j])
		i = j
	}
}
