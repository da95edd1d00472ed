package tokenizer

import "unicode/utf8"

// Stream turns generated ids into text incrementally, holding back the
// bytes of a UTF-8 character split across tokens (byte-level BPE and
// byte-fallback tokens can cut a character) until the character is
// complete.
//
// The concatenation of everything Add and Flush return equals
// Decode(ids), with the same position-dependent rules (SentencePiece drops
// the leading space of the first piece of text; a tokenizer.json Strip
// decoder strips the start of the text), with these exceptions:
// transformers' clean_up_tokenization_spaces (only applied by Decode, and
// only when tokenizer_config.json asks for it) and a tokenizer.json decoder
// that strips the end of the text (no known tokenizer has one) are not
// applied. Bytes that can never be part of a valid character are passed
// through as they are, as Decode does.
//
// A Stream is not safe for concurrent use.
type Stream struct {
	t       Tokenizer
	st      decodeState
	pending []byte
	n       int
	err     error
}

// NewStream returns a Stream decoding the ids of t from the start of a
// sequence.
func NewStream(t Tokenizer) *Stream {
	s := &Stream{t: t}
	s.Reset()
	return s
}

// Reset starts a new sequence, dropping any held-back bytes.
func (s *Stream) Reset() {
	s.pending = s.pending[:0]
	s.n = 0
	s.err = nil
	s.st = nil
	if inc, ok := s.t.(incremental); ok {
		s.st = inc.newDecodeState()
	}
}

// Add decodes one more id and returns the text that is now complete (often
// "" while a character is incomplete). An id out of range adds nothing;
// Err reports it.
func (s *Stream) Add(id int) string {
	var b []byte
	if s.st != nil {
		var err error
		b, err = s.st.next(id)
		if err != nil {
			if s.err == nil {
				s.err = err
			}
			return ""
		}
	} else {
		if id < 0 || id >= s.t.VocabSize() {
			if s.err == nil {
				s.err = errRange(s.n, id, s.t.VocabSize())
			}
			return ""
		}
		b = s.t.TokenBytes(id)
	}
	s.n++
	s.pending = append(s.pending, b...)
	cut := completePrefix(s.pending)
	if cut == 0 {
		return ""
	}
	out := string(s.pending[:cut])
	s.pending = append(s.pending[:0], s.pending[cut:]...)
	return out
}

// Flush returns the held-back bytes, complete or not.
func (s *Stream) Flush() string {
	out := string(s.pending)
	s.pending = s.pending[:0]
	return out
}

// Err returns the first error met by Add (an id out of range), or nil.
func (s *Stream) Err() error { return s.err }

// completePrefix returns the length of the longest prefix of b that does
// not end inside a UTF-8 character that more bytes could complete.
func completePrefix(b []byte) int {
	n := len(b)
	// A character is at most 4 bytes: look for its start among the last 3.
	for k := 1; k <= 3 && k <= n; k++ {
		c := b[n-k]
		if c < 0x80 {
			return n // ASCII: everything after it is complete or invalid
		}
		if c >= 0xC0 {
			need := 0
			switch {
			case c >= 0xF0 && c <= 0xF4:
				need = 4
			case c >= 0xE0:
				need = 3
			case c >= 0xC2:
				need = 2
			}
			if need > k && validPrefix(b[n-k:]) {
				return n - k
			}
			return n
		}
	}
	return n
}

// validPrefix reports whether b (shorter than its lead byte announces) can
// still become a valid UTF-8 character.
func validPrefix(b []byte) bool {
	var buf [4]byte
	copy(buf[:], b)
	// Complete with the smallest continuation byte allowed and check.
	for _, fill := range []byte{0x80, 0x90, 0xA0, 0xBF} {
		for i := len(b); i < 4; i++ {
			buf[i] = fill
		}
		if r, size := utf8.DecodeRune(buf[:]); r != utf8.RuneError && size > len(b) {
			return true
		}
	}
	return false
}
