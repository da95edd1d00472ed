package tokenizer

import (
	"fmt"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"
)

// SentencePiece piece types (ModelProto.SentencePiece.Type).
const (
	pieceNormal      = 1
	pieceUnknown     = 2
	pieceControl     = 3
	pieceUserDefined = 4
	pieceByte        = 6
	pieceUnused      = 5
)

// SentencePiece model types (TrainerSpec.ModelType).
const (
	spmUnigram = 1
	spmBPE     = 2
)

const spaceSymbol = "\u2581" // ▁

type spmPiece struct {
	piece string
	score float32
	typ   int
}

// spmTokenizer is a sentencepiece BPE model read from a ModelProto, with the
// Hugging Face LlamaTokenizer conventions for special tokens.
type spmTokenizer struct {
	file     string
	pieces   []spmPiece
	normal   map[string]int // NORMAL, USER_DEFINED and UNUSED pieces
	reserved map[string]int // the others
	byteIDs  [256]int
	unkID    int
	userDefs map[byte][]string // user-defined pieces by first byte, longest first
	// wordSplit: no mergeable piece has a ▁ after another character, so
	// the text can be cut into words before each such ▁.
	wordSplit bool
	hasUnused bool
	cache     wordCache

	modelType      int
	byteFallback   bool
	wsSuffix       bool
	addDummyPrefix bool
	removeExtraWS  bool
	escapeWS       bool

	bos, eos       int
	addBOS, addEOS bool
	tokBytes       [][]byte
}

func loadSPMFile(path string, cfg *tokenizerConfig) (*spmTokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	t, err := parseSPM(data, path)
	if err != nil {
		return nil, err
	}
	t.addBOS, t.addEOS = true, false // LlamaTokenizer's defaults
	if cfg != nil {
		if cfg.addBOS != nil {
			t.addBOS = *cfg.addBOS
		}
		if cfg.addEOS != nil {
			t.addEOS = *cfg.addEOS
		}
		if cfg.bosToken != nil {
			t.bos = t.pieceID(*cfg.bosToken)
		}
		if cfg.eosToken != nil {
			t.eos = t.pieceID(*cfg.eosToken)
		}
	}
	if t.addBOS && t.bos < 0 {
		t.addBOS = false
	}
	if t.addEOS && t.eos < 0 {
		t.addEOS = false
	}
	return t, nil
}

// pieceID is sentencepiece's PieceToId, -1 instead of unk for a missing piece.
func (t *spmTokenizer) pieceID(s string) int {
	if id, ok := t.normal[s]; ok {
		return id
	}
	if id, ok := t.reserved[s]; ok {
		return id
	}
	return -1
}

// parseSPM parses a serialized sentencepiece ModelProto.
func parseSPM(data []byte, file string) (*spmTokenizer, error) {
	t := &spmTokenizer{file: file, unkID: -1, normal: map[string]int{}, reserved: map[string]int{},
		modelType: spmUnigram, addDummyPrefix: true, removeExtraWS: true, escapeWS: true}
	bosPiece, eosPiece, unkPiece := "<s>", "</s>", "<unk>"
	unkSurface := " \u2047 " // sentencepiece's kDefaultUnknownSymbol
	normName := ""
	var charsmap []byte
	bad := func(what string, err error) error {
		return fmt.Errorf("tokenizer: %s: ModelProto %s: %v", file, what, err)
	}
	r := &pbReader{b: data}
	for !r.done() {
		num, wt, err := r.key()
		if err != nil {
			return nil, bad(fmt.Sprintf("at byte %d", r.pos), err)
		}
		switch num {
		case 1: // pieces
			idx := len(t.pieces)
			if err := wantType(num, wt, 2); err != nil {
				return nil, bad(fmt.Sprintf("pieces[%d]", idx), err)
			}
			b, err := r.bytes()
			if err != nil {
				return nil, bad(fmt.Sprintf("pieces[%d]", idx), err)
			}
			p, err := parsePiece(b)
			if err != nil {
				return nil, bad(fmt.Sprintf("pieces[%d]", idx), err)
			}
			t.pieces = append(t.pieces, p)
		case 2, 3: // trainer_spec, normalizer_spec
			name := map[int]string{2: "trainer_spec", 3: "normalizer_spec"}[num]
			if err := wantType(num, wt, 2); err != nil {
				return nil, bad(name, err)
			}
			b, err := r.bytes()
			if err != nil {
				return nil, bad(name, err)
			}
			sub := &pbReader{b: b}
			for !sub.done() {
				fn, fwt, err := sub.key()
				if err != nil {
					return nil, bad(name, err)
				}
				var v uint64
				var s []byte
				switch fwt {
				case 0:
					v, err = sub.varint()
				case 2:
					s, err = sub.bytes()
				default:
					err = sub.skip(fwt)
				}
				if err != nil {
					return nil, bad(fmt.Sprintf("%s field %d", name, fn), err)
				}
				if num == 2 {
					switch {
					case fn == 3 && fwt == 0:
						t.modelType = int(v)
					case fn == 24 && fwt == 0:
						t.wsSuffix = v != 0
					case fn == 35 && fwt == 0:
						t.byteFallback = v != 0
					case fn == 45 && fwt == 2:
						unkPiece = string(s)
					case fn == 46 && fwt == 2:
						bosPiece = string(s)
					case fn == 47 && fwt == 2:
						eosPiece = string(s)
					case fn == 44 && fwt == 2:
						unkSurface = string(s)
					}
				} else {
					switch {
					case fn == 1 && fwt == 2:
						normName = string(s)
					case fn == 2 && fwt == 2:
						charsmap = s
					case fn == 3 && fwt == 0:
						t.addDummyPrefix = v != 0
					case fn == 4 && fwt == 0:
						t.removeExtraWS = v != 0
					case fn == 5 && fwt == 0:
						t.escapeWS = v != 0
					}
				}
			}
		default:
			if err := r.skip(wt); err != nil {
				return nil, bad(fmt.Sprintf("field %d", num), err)
			}
		}
	}
	if len(t.pieces) == 0 {
		return nil, fmt.Errorf("tokenizer: %s: ModelProto has no pieces (not a sentencepiece model?)", file)
	}
	if t.modelType != spmBPE {
		return nil, fmt.Errorf("tokenizer: %s: trainer_spec.model_type %d is not supported (only BPE = 2)", file, t.modelType)
	}
	if len(charsmap) > 0 && normName != "identity" {
		return nil, fmt.Errorf("tokenizer: %s: normalizer_spec %q with a precompiled_charsmap is not supported (only identity)", file, normName)
	}
	for i := range t.byteIDs {
		t.byteIDs[i] = -1
	}
	t.userDefs = map[byte][]string{}
	for i, p := range t.pieces {
		switch p.typ {
		case pieceNormal, pieceUserDefined, pieceUnused:
			t.hasUnused = t.hasUnused || p.typ == pieceUnused
			if _, dup := t.normal[p.piece]; dup {
				return nil, fmt.Errorf("tokenizer: %s: pieces[%d]: %q is already defined", file, i, p.piece)
			}
			t.normal[p.piece] = i
			if p.typ == pieceUserDefined && p.piece != "" {
				t.userDefs[p.piece[0]] = append(t.userDefs[p.piece[0]], p.piece)
			}
		case pieceUnknown, pieceControl, pieceByte:
			if _, dup := t.reserved[p.piece]; dup {
				return nil, fmt.Errorf("tokenizer: %s: pieces[%d]: %q is already defined", file, i, p.piece)
			}
			t.reserved[p.piece] = i
			if p.typ == pieceUnknown {
				t.unkID = i
			}
			if p.typ == pieceByte {
				b, ok := isByteToken(p.piece)
				if !ok {
					return nil, fmt.Errorf("tokenizer: %s: pieces[%d]: byte piece %q is not of the form <0xXX>", file, i, p.piece)
				}
				t.byteIDs[b] = i
			}
		default:
			return nil, fmt.Errorf("tokenizer: %s: pieces[%d]: unknown type %d", file, i, p.typ)
		}
	}
	if t.unkID < 0 {
		return nil, fmt.Errorf("tokenizer: %s: no piece of type UNKNOWN", file)
	}
	if id, ok := t.reserved[unkPiece]; !ok || id != t.unkID {
		// sentencepiece requires the unk piece to be the UNKNOWN one.
		return nil, fmt.Errorf("tokenizer: %s: trainer_spec.unk_piece %q is not the UNKNOWN piece", file, unkPiece)
	}
	for _, l := range t.userDefs {
		sort.SliceStable(l, func(i, j int) bool { return len(l[i]) > len(l[j]) })
	}
	t.wordSplit = true
	for p := range t.normal {
		if strings.Contains(strings.TrimLeft(p, spaceSymbol), spaceSymbol) {
			t.wordSplit = false // a ▁ after another character
			break
		}
	}
	t.bos, t.eos = t.controlID(bosPiece), t.controlID(eosPiece)
	t.tokBytes = make([][]byte, len(t.pieces))
	for i, p := range t.pieces {
		switch p.typ {
		case pieceByte:
			b, _ := isByteToken(p.piece)
			t.tokBytes[i] = []byte{b}
		case pieceControl:
			t.tokBytes[i] = []byte{}
		case pieceUnknown:
			t.tokBytes[i] = []byte(unkSurface)
		default:
			t.tokBytes[i] = []byte(strings.ReplaceAll(p.piece, spaceSymbol, " "))
		}
	}
	return t, nil
}

func (t *spmTokenizer) controlID(piece string) int {
	if id, ok := t.reserved[piece]; ok && t.pieces[id].typ == pieceControl {
		return id
	}
	return -1
}

func parsePiece(b []byte) (spmPiece, error) {
	p := spmPiece{typ: pieceNormal}
	r := &pbReader{b: b}
	for !r.done() {
		num, wt, err := r.key()
		if err != nil {
			return p, err
		}
		switch {
		case num == 1 && wt == 2:
			s, err := r.bytes()
			if err != nil {
				return p, fmt.Errorf("piece: %w", err)
			}
			p.piece = string(s)
		case num == 2 && wt == 5:
			v, err := r.fixed32()
			if err != nil {
				return p, fmt.Errorf("score: %w", err)
			}
			p.score = math.Float32frombits(v)
		case num == 3 && wt == 0:
			v, err := r.varint()
			if err != nil {
				return p, fmt.Errorf("type: %w", err)
			}
			p.typ = int(int32(v))
		default:
			if err := r.skip(wt); err != nil {
				return p, fmt.Errorf("field %d: %w", num, err)
			}
		}
	}
	return p, nil
}

// VocabSize implements Tokenizer.
func (t *spmTokenizer) VocabSize() int { return len(t.pieces) }

// BOS implements Tokenizer.
func (t *spmTokenizer) BOS() int { return t.bos }

// EOS implements Tokenizer.
func (t *spmTokenizer) EOS() int { return t.eos }

// TokenBytes implements Tokenizer.
func (t *spmTokenizer) TokenBytes(id int) []byte {
	if id < 0 || id >= len(t.tokBytes) {
		return nil
	}
	return t.tokBytes[id]
}

// Encode implements Tokenizer.
func (t *spmTokenizer) Encode(text string) ([]int, error) {
	var out []int
	if t.addBOS {
		out = append(out, t.bos)
	}
	out = t.encode(text, out)
	if t.addEOS {
		out = append(out, t.eos)
	}
	return out, nil
}

// EncodeNoSpecial implements Tokenizer.
func (t *spmTokenizer) EncodeNoSpecial(text string) ([]int, error) {
	return t.encode(text, nil), nil
}

// encode is sentencepiece's Encode: the text of special tokens such as
// "<s>" is not recognized in the input (it is tokenized as text).
func (t *spmTokenizer) encode(text string, out []int) []int {
	return t.encodeChunk(text, out)
}

// normalize is sentencepiece's Normalizer::Normalize for the identity
// normalizer: optional removal of extra spaces, the dummy prefix and the
// escaping of spaces as ▁. Invalid UTF-8 is kept as it is (sentencepiece
// would make each invalid byte U+FFFD) so that it goes to byte fallback.
func (t *spmTokenizer) normalize(s string) string {
	if t.removeExtraWS {
		s = strings.TrimLeft(s, " ")
	}
	if s == "" {
		return ""
	}
	space := " "
	if t.escapeWS {
		space = spaceSymbol
	}
	var b strings.Builder
	b.Grow(len(s) + 3*strings.Count(s, " ") + 3)
	if t.addDummyPrefix && !t.wsSuffix {
		b.WriteString(space)
	}
	prevSpace := t.removeExtraWS
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' {
			if prevSpace && t.removeExtraWS {
				continue
			}
			b.WriteString(space)
			prevSpace = true
			continue
		}
		b.WriteByte(s[i])
		prevSpace = false
	}
	if t.addDummyPrefix && t.wsSuffix {
		b.WriteString(space)
	}
	out := b.String()
	if t.removeExtraWS {
		for strings.HasSuffix(out, space) {
			out = out[:len(out)-len(space)]
		}
	}
	return out
}

func (t *spmTokenizer) encodeChunk(text string, out []int) []int {
	norm := t.normalize(text)
	prevUnk := false
	if !t.wordSplit {
		return t.encodeWord(norm, out, &prevUnk)
	}
	// Cut before each ▁ that follows another character: no piece spans
	// such a place, so the words can be merged one by one.
	start := 0
	for i := 1; i < len(norm); i++ {
		if norm[i] == spaceSymbol[0] && strings.HasPrefix(norm[i:], spaceSymbol) && !strings.HasSuffix(norm[:i], spaceSymbol) {
			out = t.encodeWord(norm[start:i], out, &prevUnk)
			start = i
		}
	}
	return t.encodeWord(norm[start:], out, &prevUnk)
}

// recordUnused returns the candidate hook that records how UNUSED pieces
// were made, for sentencepiece's resegmentation.
func (t *spmTokenizer) recordUnused(revMerge *map[string][2]string) func(l, r string) {
	return func(l, r string) {
		if id, ok := t.normal[l+r]; ok && t.pieces[id].typ == pieceUnused {
			if *revMerge == nil {
				*revMerge = map[string][2]string{}
			}
			(*revMerge)[l+r] = [2]string{l, r}
		}
	}
}

// encodeWord merges one word (or the whole normalized text) and appends
// its ids, with byte fallback for unknown pieces. Words whose ids have no
// unknown token (the ones that do not depend on *prevUnkp) are cached.
func (t *spmTokenizer) encodeWord(norm string, out []int, prevUnkp *bool) []int {
	if norm == "" {
		return out
	}
	if ids, ok := t.cache.get(norm); ok {
		*prevUnkp = false
		return append(out, ids...)
	}
	start, was := len(out), *prevUnkp
	out = t.encodeWordNoCache(norm, out, prevUnkp)
	if !was && !slices.Contains(out[start:], t.unkID) {
		t.cache.put(norm, out[start:])
	}
	return out
}

func (t *spmTokenizer) encodeWordNoCache(norm string, out []int, prevUnkp *bool) []int {
	bounds := make([]int, 0, len(norm)+1)
	frozen := make([]bool, 0, len(norm))
	for i := 0; i < len(norm); {
		bounds = append(bounds, i)
		if ud := t.userDefs[norm[i]]; ud != nil {
			matched := false
			for _, p := range ud {
				if strings.HasPrefix(norm[i:], p) {
					i += len(p)
					frozen = append(frozen, true)
					matched = true
					break
				}
			}
			if matched {
				continue
			}
		}
		r, size := utf8.DecodeRuneInString(norm[i:])
		i += size
		frozen = append(frozen, r == utf8.RuneError && size == 1)
	}
	bounds = append(bounds, len(norm))
	var revMerge map[string][2]string
	var onCand func(l, r string)
	if t.hasUnused {
		onCand = t.recordUnused(&revMerge)
	}
	score := func(s string) (float32, bool) {
		id, ok := t.normal[s]
		if !ok {
			return 0, false
		}
		return t.pieces[id].score, true
	}
	res := mergeByScore(norm, bounds, frozen, score, onCand)
	prevUnk := *prevUnkp
	var emit func(w string)
	emit = func(w string) {
		id := t.pieceID(w)
		if id >= 0 && t.pieces[id].typ == pieceUnused {
			if p, ok := revMerge[w]; ok {
				emit(p[0])
				emit(p[1])
				return
			}
		}
		if id < 0 {
			id = t.unkID
		}
		if id == t.unkID {
			if t.byteFallback {
				for k := 0; k < len(w); k++ {
					if b := t.byteIDs[w[k]]; b >= 0 {
						out = append(out, b)
					} else {
						out = append(out, t.unkID)
					}
				}
				prevUnk = false
				return
			}
			if prevUnk {
				return // sentencepiece fuses a run of unknown pieces
			}
			prevUnk = true
			out = append(out, id)
			return
		}
		prevUnk = false
		out = append(out, id)
	}
	for i := 0; i+1 < len(res); i++ {
		emit(norm[res[i]:res[i+1]])
	}
	*prevUnkp = prevUnk
	return out
}

// Decode implements Tokenizer like sentencepiece's DecodeIds: control
// tokens (<s>, </s>) give no text, <unk> gives " ⁇ ", the ▁ of the dummy
// prefix is dropped from the first piece of text. (transformers'
// LlamaTokenizer.decode would show "<s>" and "</s>".)
func (t *spmTokenizer) Decode(ids []int) (string, error) {
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

type spmDecodeState struct {
	t         *spmTokenizer
	i         int
	isBosWS   bool
	bosWSSeen bool
	text      bool
}

func (t *spmTokenizer) newDecodeState() decodeState {
	return &spmDecodeState{t: t, isBosWS: true}
}

func (s *spmDecodeState) next(id int) ([]byte, error) {
	t := s.t
	if id < 0 || id >= len(t.pieces) {
		return nil, errRange(s.i, id, len(t.pieces))
	}
	s.i++
	p := t.pieces[id]
	switch p.typ {
	case pieceControl:
		return nil, nil // invisible
	case pieceUnknown, pieceByte:
		s.text = true
		return t.tokBytes[id], nil
	}
	if s.bosWSSeen || s.text {
		s.isBosWS = false
	}
	b := t.tokBytes[id]
	s.bosWSSeen = false
	if s.isBosWS && (t.addDummyPrefix || t.removeExtraWS) && strings.HasPrefix(p.piece, spaceSymbol) {
		b = b[1:] // the ▁ became one space
		s.bosWSSeen = !t.removeExtraWS
	}
	if len(b) > 0 {
		s.text = true
	}
	return b, nil
}
