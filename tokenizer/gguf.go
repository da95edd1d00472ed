package tokenizer

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"
	"strings"

	"dejavu/checkpoint"
)

// GGUF tokenizers: llama.cpp stores the vocabulary in the metadata of a
// GGUF model. Two kinds are supported:
//
//   - tokenizer.ggml.model "llama": SentencePiece BPE (tokens, scores,
//     token_type), encoded like a sentencepiece model with the identity
//     normalizer, byte fallback, the dummy prefix unless
//     tokenizer.ggml.add_space_prefix is false, and no removal of extra
//     whitespace (llama.cpp's behaviour) unless
//     dejavu.tokenizer.remove_extra_whitespaces is true. add_bos_token
//     defaults to true.
//   - tokenizer.ggml.model "gpt2" with tokenizer.ggml.pre "gpt-2":
//     byte-level BPE with the GPT-2 pre-tokenizer regex (tokens, merges,
//     token_type); CONTROL tokens are special added tokens and
//     USER_DEFINED ones plain added tokens, matched in the raw text first
//     as Hugging Face does. add_bos_token defaults to false. Other
//     pre-tokenizers (llama-bpe, qwen2, ...) use regexes this package does
//     not implement and are refused.
//
// The BOS and EOS ids are tokenizer.ggml.bos_token_id / eos_token_id.

// GGUF metadata keys of the tokenizer.
const (
	ggufTokModel     = "tokenizer.ggml.model"
	ggufTokPre       = "tokenizer.ggml.pre"
	ggufTokTokens    = "tokenizer.ggml.tokens"
	ggufTokScores    = "tokenizer.ggml.scores"
	ggufTokTypes     = "tokenizer.ggml.token_type"
	ggufTokMerges    = "tokenizer.ggml.merges"
	ggufTokBOS       = "tokenizer.ggml.bos_token_id"
	ggufTokEOS       = "tokenizer.ggml.eos_token_id"
	ggufTokUNK       = "tokenizer.ggml.unknown_token_id"
	ggufTokAddBOS    = "tokenizer.ggml.add_bos_token"
	ggufTokAddEOS    = "tokenizer.ggml.add_eos_token"
	ggufTokAddSpace  = "tokenizer.ggml.add_space_prefix"
	ggufTokRemoveWS  = "dejavu.tokenizer.remove_extra_whitespaces"
	ggufPreGPT2      = "gpt-2"
	ggufTypeNormal   = 1
	ggufTypeControl  = 3
	ggufTypeUserDef  = 4
	ggufTypeUnused   = 5
	ggufMaxTokenSize = 1 << 16
)

// LoadGGUF loads the tokenizer stored in the metadata of the GGUF file at
// path (see FromGGUF).
func LoadGGUF(path string) (Tokenizer, error) {
	g, err := checkpoint.ReadGGUF(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	return FromGGUF(g)
}

// FromGGUF builds the tokenizer described by the tokenizer.ggml.* metadata
// of g: SentencePiece ("llama") or byte-level BPE ("gpt2" with the gpt-2
// pre-tokenizer).
func FromGGUF(g *checkpoint.GGUF) (Tokenizer, error) {
	t, err := fromGGUF(g)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", g.Path, err)
	}
	return t, nil
}

func fromGGUF(g *checkpoint.GGUF) (Tokenizer, error) {
	kind, ok, err := g.String(ggufTokModel)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("no tokenizer in the metadata (%s is missing)", ggufTokModel)
	}
	tokens, ok, err := g.Strings(ggufTokTokens)
	if err != nil {
		return nil, err
	}
	if !ok || len(tokens) == 0 {
		return nil, fmt.Errorf("%s is missing or empty", ggufTokTokens)
	}
	if len(tokens) > maxVocabID {
		return nil, fmt.Errorf("%s has %d tokens, more than %d", ggufTokTokens, len(tokens), maxVocabID)
	}
	types := make([]int, len(tokens))
	for i := range types {
		types[i] = ggufTypeNormal
	}
	if tt, ok, err := g.Ints(ggufTokTypes); err != nil {
		return nil, err
	} else if ok {
		if len(tt) != len(tokens) {
			return nil, fmt.Errorf("%s has %d entries for %d tokens", ggufTokTypes, len(tt), len(tokens))
		}
		types = tt
	}
	id := func(key string) (int, bool, error) {
		n, ok, err := g.Int(key, math.MaxInt32)
		if err == nil && ok && n >= len(tokens) {
			err = fmt.Errorf("%s = %d is not below the %d tokens", key, n, len(tokens))
		}
		return n, ok, err
	}
	bos, hasBOS, err := id(ggufTokBOS)
	if err != nil {
		return nil, err
	}
	eos, hasEOS, err := id(ggufTokEOS)
	if err != nil {
		return nil, err
	}
	if !hasBOS {
		bos = -1
	}
	if !hasEOS {
		eos = -1
	}
	flag := func(key string, def bool) (bool, error) {
		b, ok, err := g.Bool(key)
		if !ok {
			return def, err
		}
		return b, err
	}
	switch kind {
	case "llama":
		addBOS, err := flag(ggufTokAddBOS, true)
		if err != nil {
			return nil, err
		}
		addEOS, err := flag(ggufTokAddEOS, false)
		if err != nil {
			return nil, err
		}
		space, err := flag(ggufTokAddSpace, true)
		if err != nil {
			return nil, err
		}
		removeWS, err := flag(ggufTokRemoveWS, false)
		if err != nil {
			return nil, err
		}
		scores, ok, err := g.Float32s(ggufTokScores)
		if err != nil {
			return nil, err
		}
		if !ok {
			scores = make([]float32, len(tokens))
		} else if len(scores) != len(tokens) {
			return nil, fmt.Errorf("%s has %d entries for %d tokens", ggufTokScores, len(scores), len(tokens))
		}
		unk, hasUNK, err := id(ggufTokUNK)
		if err != nil {
			return nil, err
		}
		if !hasUNK {
			unk = -1
			for i, ty := range types {
				if ty == pieceUnknown {
					unk = i
					break
				}
			}
			if unk < 0 {
				return nil, fmt.Errorf("no unknown token (%s, or a token of type UNKNOWN)", ggufTokUNK)
			}
		}
		t, err := spmFromPieces(g.Path, tokens, scores, types, unk, bos, eos, space, removeWS)
		if err != nil {
			return nil, err
		}
		t.bos, t.eos = bos, eos
		t.addBOS, t.addEOS = addBOS && bos >= 0, addEOS && eos >= 0
		return t, nil
	case "gpt2":
		pre, _, err := g.String(ggufTokPre)
		if err != nil {
			return nil, err
		}
		if pre != ggufPreGPT2 {
			return nil, fmt.Errorf("%s %q is not supported (only %q, the GPT-2 regex)", ggufTokPre, pre, ggufPreGPT2)
		}
		merges, _, err := g.Strings(ggufTokMerges)
		if err != nil {
			return nil, err
		}
		addBOS, err := flag(ggufTokAddBOS, false)
		if err != nil {
			return nil, err
		}
		addEOS, err := flag(ggufTokAddEOS, false)
		if err != nil {
			return nil, err
		}
		return gpt2FromGGUF(g.Path, tokens, types, merges, bos, eos, addBOS, addEOS)
	}
	return nil, fmt.Errorf("%s %q is not supported (want llama or gpt2)", ggufTokModel, kind)
}

// gpt2FromGGUF builds a byte-level BPE tokenizer from GGUF vocabulary data.
func gpt2FromGGUF(file string, tokens []string, types []int, merges []string, bos, eos int, addBOS, addEOS bool) (*hfTokenizer, error) {
	vocab := make(map[string]int, len(tokens))
	var added []addedToken
	for i, tok := range tokens {
		if len(tok) > ggufMaxTokenSize {
			return nil, fmt.Errorf("%s[%d] is %d bytes long", ggufTokTokens, i, len(tok))
		}
		if _, dup := vocab[tok]; !dup {
			vocab[tok] = i
		}
		if types[i] == ggufTypeControl || types[i] == ggufTypeUserDef {
			added = append(added, addedToken{id: i, content: tok, special: types[i] == ggufTypeControl})
		}
	}
	t := &hfTokenizer{file: file, model: newBPEModel(vocab)}
	t.model.byteLevel = true
	for i, m := range merges {
		parts := strings.Split(m, " ")
		if len(parts) != 2 {
			return nil, fmt.Errorf("%s[%d]: want \"a b\", got %q", ggufTokMerges, i, m)
		}
		if err := t.model.addMerge(parts[0], parts[1], i, file+": "+ggufTokMerges); err != nil {
			return nil, err
		}
	}
	t.pretok = []preStep{{kind: "ByteLevel", useRegex: true}}
	t.dec = []decStep{{kind: "ByteLevel"}}
	if err := t.finish(added, nil); err != nil {
		return nil, err
	}
	t.bos, t.eos = bos, eos
	t.prefix, t.suffix = nil, nil
	if addBOS && bos >= 0 {
		t.prefix = []int{bos}
	}
	if addEOS && eos >= 0 {
		t.suffix = []int{eos}
	}
	return t, nil
}

// spmFromPieces builds a sentencepiece BPE tokenizer from GGUF vocabulary
// data by encoding it as a ModelProto, so that parseSPM validates it.
func spmFromPieces(file string, tokens []string, scores []float32, types []int, unk, bos, eos int, addSpace, removeWS bool) (*spmTokenizer, error) {
	var proto []byte
	hasByte := false
	for i, tok := range tokens {
		if types[i] < 0 || types[i] > 127 {
			return nil, fmt.Errorf("%s[%d] = %d is not a token type", ggufTokTypes, i, types[i])
		}
		hasByte = hasByte || types[i] == pieceByte
		var p []byte
		p = pbBytes(p, 1, []byte(tok))
		p = binary.AppendUvarint(p, 2<<3|5)
		p = binary.LittleEndian.AppendUint32(p, math.Float32bits(scores[i]))
		p = pbVarint(p, 3, uint64(types[i]))
		proto = pbBytes(proto, 1, p)
	}
	var ts []byte
	ts = pbVarint(ts, 3, spmBPE)
	if hasByte {
		ts = pbVarint(ts, 35, 1)
	}
	ts = pbBytes(ts, 45, []byte(tokens[unk]))
	if bos >= 0 {
		ts = pbBytes(ts, 46, []byte(tokens[bos]))
	}
	if eos >= 0 {
		ts = pbBytes(ts, 47, []byte(tokens[eos]))
	}
	proto = pbBytes(proto, 2, ts)
	var ns []byte
	ns = pbBytes(ns, 1, []byte("identity"))
	ns = pbVarint(ns, 3, boolInt(addSpace))
	ns = pbVarint(ns, 4, boolInt(removeWS))
	ns = pbVarint(ns, 5, 1)
	proto = pbBytes(proto, 3, ns)
	t, err := parseSPM(proto, file)
	if err != nil {
		// parseSPM names the file and the piece; drop its ModelProto wording.
		return nil, fmt.Errorf("GGUF vocabulary: %w", err)
	}
	return t, nil
}

func boolInt(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

func pbVarint(b []byte, field int, v uint64) []byte {
	b = binary.AppendUvarint(b, uint64(field)<<3)
	return binary.AppendUvarint(b, v)
}

func pbBytes(b []byte, field int, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(field)<<3|2)
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// GGUFMetadata returns the tokenizer.ggml.* metadata that describes tok the
// way llama.cpp's convert_hf_to_gguf.py writes it: a sentencepiece model as
// tokenizer.ggml.model "llama" (tokens, scores, token types), a byte-level
// BPE tokenizer with the GPT-2 pre-tokenizer as "gpt2" / "gpt-2" (tokens,
// token types, merges), with the BOS/EOS ids and whether Encode adds them.
// Other tokenizers give an error.
func GGUFMetadata(tok Tokenizer) ([]checkpoint.GGUFKV, error) {
	str := checkpoint.GGUFStringValue
	u32 := func(v int) checkpoint.GGUFValue { return checkpoint.GGUFUint32Value(uint32(v)) }
	var kvs []checkpoint.GGUFKV
	add := func(k string, v checkpoint.GGUFValue) { kvs = append(kvs, checkpoint.GGUFKV{Key: k, Value: v}) }
	ids := func(bos, eos, unk int, addBOS, addEOS bool) {
		if bos >= 0 {
			add(ggufTokBOS, u32(bos))
		}
		if eos >= 0 {
			add(ggufTokEOS, u32(eos))
		}
		if unk >= 0 {
			add(ggufTokUNK, u32(unk))
		}
		add(ggufTokAddBOS, checkpoint.GGUFBoolValue(addBOS))
		add(ggufTokAddEOS, checkpoint.GGUFBoolValue(addEOS))
	}
	switch t := tok.(type) {
	case *spmTokenizer:
		if t.wsSuffix || !t.escapeWS {
			return nil, fmt.Errorf("tokenizer: %s: sentencepiece options treat_whitespace_as_suffix / escape_whitespaces=false cannot be written as GGUF", t.file)
		}
		n := len(t.pieces)
		tokens, scores, types := make([]string, n), make([]float32, n), make([]int32, n)
		for i, p := range t.pieces {
			tokens[i], scores[i], types[i] = p.piece, p.score, int32(p.typ)
		}
		add(ggufTokModel, str("llama"))
		add(ggufTokPre, str("default"))
		add(ggufTokTokens, checkpoint.GGUFStringsValue(tokens))
		add(ggufTokScores, checkpoint.GGUFFloat32sValue(scores))
		add(ggufTokTypes, checkpoint.GGUFInt32sValue(types))
		ids(t.bos, t.eos, t.unkID, t.addBOS, t.addEOS)
		add(ggufTokAddSpace, checkpoint.GGUFBoolValue(t.addDummyPrefix))
		if t.removeExtraWS {
			add(ggufTokRemoveWS, checkpoint.GGUFBoolValue(true))
		}
		return kvs, nil
	case *hfTokenizer:
		if err := t.gpt2Compatible(); err != nil {
			return nil, fmt.Errorf("tokenizer: %s: cannot be written as a GGUF gpt2 tokenizer: %w", t.file, err)
		}
		n := t.vocabSize
		tokens, types := make([]string, n), make([]int32, n)
		addedIDs := map[int]bool{}
		for _, m := range []*addedMatcher{t.rawAdded, t.normAdded} {
			for _, l := range m.byFirst {
				for _, a := range l {
					addedIDs[a.id] = true
				}
			}
		}
		for id := 0; id < n; id++ {
			switch {
			case !t.hasTok[id]:
				tokens[id], types[id] = fmt.Sprintf("[PAD%d]", id), ggufTypeUnused
			case t.special[id]:
				tokens[id], types[id] = t.idToTok[id], ggufTypeControl
			case addedIDs[id]:
				tokens[id], types[id] = t.idToTok[id], ggufTypeUserDef
			default:
				tokens[id], types[id] = t.idToTok[id], ggufTypeNormal
			}
		}
		inv := make(map[int]string, len(t.model.vocab))
		for s, id := range t.model.vocab {
			inv[id] = s
		}
		type merge struct {
			rank int32
			a, b int
		}
		ms := make([]merge, 0, len(t.model.merges))
		for k, r := range t.model.merges {
			ms = append(ms, merge{r.rank, int(k >> 32), int(uint32(k))})
		}
		sort.Slice(ms, func(i, j int) bool { return ms[i].rank < ms[j].rank })
		merges := make([]string, len(ms))
		for i, m := range ms {
			merges[i] = inv[m.a] + " " + inv[m.b]
		}
		add(ggufTokModel, str("gpt2"))
		add(ggufTokPre, str(ggufPreGPT2))
		add(ggufTokTokens, checkpoint.GGUFStringsValue(tokens))
		add(ggufTokTypes, checkpoint.GGUFInt32sValue(types))
		add(ggufTokMerges, checkpoint.GGUFStringsValue(merges))
		unk := -1
		if t.model.unkID >= 0 {
			unk = t.model.unkID
		}
		ids(t.bos, t.eos, unk, len(t.prefix) == 1, len(t.suffix) == 1)
		return kvs, nil
	}
	return nil, fmt.Errorf("tokenizer: a %T cannot be written as GGUF metadata", tok)
}

// gpt2Compatible checks that t is byte-level BPE with the GPT-2 regex, as
// llama.cpp's "gpt2" vocabulary with the "gpt-2" pre-tokenizer encodes.
func (t *hfTokenizer) gpt2Compatible() error {
	if !t.model.byteLevel || t.model.byteFallback || t.model.ignoreMerges {
		return fmt.Errorf("not plain byte-level BPE (byte_fallback or ignore_merges set)")
	}
	if len(t.normalizers) > 0 {
		return fmt.Errorf("has a normalizer")
	}
	gpt2 := false
	switch len(t.pretok) {
	case 1:
		p := t.pretok[0]
		gpt2 = p.kind == "ByteLevel" && p.useRegex && !p.addPrefixSpace
	case 2:
		p, q := t.pretok[0], t.pretok[1]
		gpt2 = p.kind == "GPT2Split" && q.kind == "ByteLevel" && !q.useRegex && !q.addPrefixSpace
	}
	if !gpt2 {
		return fmt.Errorf("the pre-tokenizer is not GPT-2's ByteLevel regex without a prefix space")
	}
	if t.decNull || len(t.dec) != 1 || t.dec[0].kind != "ByteLevel" {
		return fmt.Errorf("the decoder is not ByteLevel")
	}
	if len(t.prefix) > 1 || (len(t.prefix) == 1 && t.prefix[0] != t.bos) || len(t.suffix) > 1 || (len(t.suffix) == 1 && t.suffix[0] != t.eos) {
		return fmt.Errorf("the post-processor adds %v … %v, not just BOS/EOS", t.prefix, t.suffix)
	}
	return nil
}
