package tokenizer

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"strings"
)

// llama2cTokenizer is the tokenizer of Karpathy's llama2.c: tokenizer.bin
// holds, after an int32 max_token_length, for each token a float32 score,
// an int32 length and the bytes (little-endian). Pieces have spaces where
// sentencepiece has ▁; BOS (1) and EOS (2) are stored as "\n<s>\n" and
// "\n</s>\n"; bytes are "<0xXX>" pieces at ids 3..258.
type llama2cTokenizer struct {
	file     string
	pieces   []string
	scores   []float32
	lookup   map[string]int // the lowest id of each piece string
	tokBytes [][]byte
	special  []bool
	isByte   []bool
	maxLen   int
	// wordSplit: no piece has a space after another character, so the
	// text can be cut into words before each such space.
	wordSplit bool
	cache     wordCache
}

// llama2.c's ids.
const (
	llama2cUnk = 0
	llama2cBOS = 1
	llama2cEOS = 2
)

// LoadLlama2C loads a llama2.c tokenizer.bin with vocabSize tokens (the
// model's vocab_size; 0 reads every token in the file). BOS is 1, EOS 2;
// Encode adds BOS as llama2.c's run does.
func LoadLlama2C(path string, vocabSize int) (Tokenizer, error) {
	return NewLlama2C(path, vocabSize)
}

// NewLlama2C is LoadLlama2C returning the concrete type's interface; it
// exists under the name llama2.c uses (build_tokenizer).
func NewLlama2C(path string, vocabSize int) (Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	return parseLlama2C(data, path, vocabSize)
}

func parseLlama2C(data []byte, path string, vocabSize int) (*llama2cTokenizer, error) {
	if vocabSize == 0 {
		// Count the tokens up to the end of the file.
		for off := 4; off+8 <= len(data) && vocabSize < maxVocabID; vocabSize++ {
			n := int(int32(binary.LittleEndian.Uint32(data[off+4:])))
			if n < 0 || n > len(data)-off-8 {
				break
			}
			off += 8 + n
		}
	}
	if vocabSize <= 0 || vocabSize > maxVocabID {
		return nil, fmt.Errorf("tokenizer: %s: vocab size %d out of range", path, vocabSize)
	}
	if len(data) < 4 {
		return nil, fmt.Errorf("tokenizer: %s: truncated header (max_token_length)", path)
	}
	t := &llama2cTokenizer{file: path, maxLen: int(int32(binary.LittleEndian.Uint32(data)))}
	t.pieces = make([]string, vocabSize)
	t.scores = make([]float32, vocabSize)
	t.lookup = make(map[string]int, vocabSize)
	t.tokBytes = make([][]byte, vocabSize)
	t.special = make([]bool, vocabSize)
	t.isByte = make([]bool, vocabSize)
	off := 4
	for i := 0; i < vocabSize; i++ {
		if len(data)-off < 8 {
			return nil, fmt.Errorf("tokenizer: %s: truncated at token %d of %d (byte %d)", path, i, vocabSize, off)
		}
		score := math.Float32frombits(binary.LittleEndian.Uint32(data[off:]))
		n := int(int32(binary.LittleEndian.Uint32(data[off+4:])))
		off += 8
		if n < 0 || n > len(data)-off {
			return nil, fmt.Errorf("tokenizer: %s: token %d: bad length %d at byte %d", path, i, n, off-4)
		}
		s := string(data[off : off+n])
		off += n
		t.pieces[i], t.scores[i] = s, score
		if _, dup := t.lookup[s]; !dup {
			t.lookup[s] = i
		}
		switch {
		case i == llama2cBOS || i == llama2cEOS:
			// llama2.c never prints them; sentencepiece decodes them as "".
			t.special[i] = true
			t.tokBytes[i] = []byte{}
		case i == llama2cUnk:
			t.special[i] = true
			t.tokBytes[i] = []byte(s)
		default:
			if b, ok := isByteToken(s); ok {
				t.isByte[i] = true
				t.tokBytes[i] = []byte{b}
			} else {
				t.tokBytes[i] = []byte(s)
			}
		}
	}
	t.wordSplit = true
	for _, p := range t.pieces {
		if strings.Contains(strings.TrimLeft(p, " "), " ") {
			t.wordSplit = false
			break
		}
	}
	if vocabSize <= llama2cEOS {
		return nil, fmt.Errorf("tokenizer: %s: vocab size %d has no BOS/EOS", path, vocabSize)
	}
	return t, nil
}

// VocabSize implements Tokenizer.
func (t *llama2cTokenizer) VocabSize() int { return len(t.pieces) }

// BOS implements Tokenizer.
func (t *llama2cTokenizer) BOS() int { return llama2cBOS }

// EOS implements Tokenizer.
func (t *llama2cTokenizer) EOS() int { return llama2cEOS }

// TokenBytes implements Tokenizer.
func (t *llama2cTokenizer) TokenBytes(id int) []byte {
	if id < 0 || id >= len(t.tokBytes) {
		return nil
	}
	return t.tokBytes[id]
}

// Encode implements Tokenizer: llama2.c's encode(text, bos=1, eos=0).
func (t *llama2cTokenizer) Encode(text string) ([]int, error) {
	return t.encode(text, []int{llama2cBOS}), nil
}

// EncodeNoSpecial implements Tokenizer.
func (t *llama2cTokenizer) EncodeNoSpecial(text string) ([]int, error) {
	return t.encode(text, nil), nil
}

// encode is llama2.c's encode: a dummy-prefix " " token when the text is
// not empty, one token per UTF-8 character (a lead byte and up to 3
// continuation bytes) or byte-fallback tokens (byte + 3), then merges of
// the best-scoring pair while any pair scores above -1e10. The merge order
// is the same as llama2.c's quadratic loop (best score, leftmost on ties),
// found with a heap. Unlike C, a NUL byte does not end the text.
func (t *llama2cTokenizer) encode(text string, out []int) []int {
	if text == "" {
		return out
	}
	prefix := true
	if !t.wordSplit {
		return t.encodeWord(text, prefix, out)
	}
	// Cut before each space that follows another character: no piece spans
	// such a place, so the words can be merged one by one.
	start := 0
	for i := 1; i < len(text); i++ {
		if text[i] == ' ' && text[i-1] != ' ' {
			out = t.encodeWord(text[start:i], prefix, out)
			prefix = false
			start = i
		}
	}
	return t.encodeWord(text[start:], prefix, out)
}

// encodeWord encodes a word, or the whole text, after the dummy-prefix
// token when prefix is set.
func (t *llama2cTokenizer) encodeWord(text string, prefix bool, out []int) []int {
	if prefix {
		return t.encodeWordNoCache(text, prefix, out)
	}
	if ids, ok := t.cache.get(text); ok {
		return append(out, ids...)
	}
	start := len(out)
	out = t.encodeWordNoCache(text, prefix, out)
	t.cache.put(text, out[start:])
	return out
}

func (t *llama2cTokenizer) encodeWordNoCache(text string, prefix bool, out []int) []int {
	var arena strings.Builder
	var bounds []int
	addTok := func(id int) {
		bounds = append(bounds, arena.Len())
		arena.WriteString(t.pieces[id])
	}
	if id, ok := t.lookup[" "]; ok && prefix {
		addTok(id)
	}
	for i := 0; i < len(text); {
		j := i + 1
		for j < len(text) && text[j]&0xC0 == 0x80 && j-i < 4 {
			j++
		}
		if id, ok := t.lookup[text[i:j]]; ok {
			addTok(id)
		} else {
			for k := i; k < j; k++ {
				if id := int(text[k]) + 3; id < len(t.pieces) {
					addTok(id)
				}
			}
		}
		i = j
	}
	a := arena.String()
	if len(bounds) == 0 {
		return out
	}
	bounds = append(bounds, len(a))
	score := func(s string) (float32, bool) {
		id, ok := t.lookup[s]
		if !ok || !(t.scores[id] > float32(-1e10)) {
			return 0, false
		}
		return t.scores[id], true
	}
	res := mergeByScore(a, bounds, nil, score, nil)
	for i := 0; i+1 < len(res); i++ {
		out = append(out, t.lookup[a[res[i]:res[i+1]]])
	}
	return out
}

// Decode implements Tokenizer. BOS and EOS give no text (as in
// sentencepiece; llama2.c never prints them), <unk> gives "<unk>",
// "<0xXX>" tokens give their byte. As in llama2.c the leading
// space of a token right after BOS is dropped, and so is the one of the
// first token when the sequence does not start with BOS (as sentencepiece
// does), so that Decode(EncodeNoSpecial(s)) == s.
func (t *llama2cTokenizer) Decode(ids []int) (string, error) {
	st := t.newDecodeState()
	var b []byte
	for _, id := range ids {
		p, err := st.next(id)
		if err != nil {
			return "", err
		}
		b = append(b, p...)
	}
	return string(b), nil
}

type llama2cDecodeState struct {
	t     *llama2cTokenizer
	i     int
	strip bool // the next text token is the first one or follows BOS
}

func (t *llama2cTokenizer) newDecodeState() decodeState {
	return &llama2cDecodeState{t: t, strip: true}
}

func (s *llama2cDecodeState) next(id int) ([]byte, error) {
	t := s.t
	if id < 0 || id >= len(t.pieces) {
		return nil, errRange(s.i, id, len(t.pieces))
	}
	s.i++
	if t.special[id] {
		if id == llama2cBOS {
			s.strip = true
		}
		return t.tokBytes[id], nil
	}
	b := t.tokBytes[id]
	if !t.isByte[id] && s.strip && len(b) > 0 && b[0] == ' ' {
		b = b[1:]
	}
	s.strip = false
	return b, nil
}
