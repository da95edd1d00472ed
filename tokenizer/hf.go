package tokenizer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxVocabID bounds the ids accepted from files, so that a corrupt file
// cannot make us allocate without limit.
const maxVocabID = 1 << 24

// hfTokenizer is the pipeline of HF tokenizers for a BPE model: added
// tokens, normalizers, pre-tokenizers, the BPE model, the post-processor
// and the decoders.
type hfTokenizer struct {
	file string

	model     *bpeModel
	idToTok   []string
	hasTok    []bool
	tokBytes  [][]byte
	special   []bool
	vocabSize int

	rawAdded  *addedMatcher // added tokens matched in the raw text
	normAdded *addedMatcher // added tokens matched after normalization

	normalizers []normStep
	pretok      []preStep

	prefix, suffix []int // post-processor for a single sequence

	decNull   bool
	dec       []decStep
	stripLeft int  // left strip of the fused text (Strip after Fuse)
	stripRune rune // its character
	cleanUp   bool

	bos, eos int
}

type normStep struct {
	kind        string // Prepend, Replace, Lowercase, Strip, NFC
	a, b        string
	left, right bool
}

type preStep struct {
	kind           string // ByteLevel, Metaspace, GPT2Split
	addPrefixSpace bool
	useRegex       bool
	repl           string
	prepend        string // Metaspace prepend_scheme: always, first, never
	split          bool
}

type decStep struct {
	kind       string // ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace
	a, b       string
	ch         rune
	start      int
	stop       int
	afterFuse  bool
	metaStrip  bool
	metaReplCh string
}

type hfJSONFile struct {
	AddedTokens   []jsonAddedToken `json:"added_tokens"`
	Normalizer    json.RawMessage  `json:"normalizer"`
	PreTokenizer  json.RawMessage  `json:"pre_tokenizer"`
	Model         json.RawMessage  `json:"model"`
	PostProcessor json.RawMessage  `json:"post_processor"`
	Decoder       json.RawMessage  `json:"decoder"`
}

type hfModelJSON struct {
	Type                    string            `json:"type"`
	Vocab                   map[string]int    `json:"vocab"`
	Merges                  []json.RawMessage `json:"merges"`
	UnkToken                *string           `json:"unk_token"`
	FuseUnk                 bool              `json:"fuse_unk"`
	ByteFallback            bool              `json:"byte_fallback"`
	IgnoreMerges            bool              `json:"ignore_merges"`
	ContinuingSubwordPrefix *string           `json:"continuing_subword_prefix"`
	EndOfWordSuffix         *string           `json:"end_of_word_suffix"`
}

func isNull(raw json.RawMessage) bool {
	return len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null"
}

// component reads the "type" of a tokenizer.json component.
func component(raw json.RawMessage) (string, map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return "", nil, err
	}
	var typ string
	if t, ok := m["type"]; ok {
		if err := json.Unmarshal(t, &typ); err != nil {
			return "", nil, fmt.Errorf("field \"type\": %w", err)
		}
	}
	return typ, m, nil
}

func getString(m map[string]json.RawMessage, key, def string) (string, error) {
	raw, ok := m[key]
	if !ok || isNull(raw) {
		return def, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("field %q: %w", key, err)
	}
	return s, nil
}

func getBool(m map[string]json.RawMessage, key string, def bool) (bool, error) {
	raw, ok := m[key]
	if !ok || isNull(raw) {
		return def, nil
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err != nil {
		return false, fmt.Errorf("field %q: %w", key, err)
	}
	return b, nil
}

func getInt(m map[string]json.RawMessage, key string, def int) (int, error) {
	raw, ok := m[key]
	if !ok || isNull(raw) {
		return def, nil
	}
	var v int
	if err := json.Unmarshal(raw, &v); err != nil {
		return 0, fmt.Errorf("field %q: %w", key, err)
	}
	return v, nil
}

// stringPattern reads a Replace pattern {"String": "..."}; regex patterns
// are not supported.
func stringPattern(m map[string]json.RawMessage) (string, error) {
	var p struct {
		String *string `json:"String"`
		Regex  *string `json:"Regex"`
	}
	raw, ok := m["pattern"]
	if !ok {
		return "", fmt.Errorf("missing field \"pattern\"")
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return "", fmt.Errorf("field \"pattern\": %w", err)
	}
	if p.String == nil {
		return "", fmt.Errorf("field \"pattern\": only String patterns are supported")
	}
	return *p.String, nil
}

// gpt2Pattern is the GPT-2 pre-tokenizer regex, the only one of a Split
// pre-tokenizer that is supported.
const gpt2Pattern = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`

func parseNormalizer(raw json.RawMessage, out []normStep) ([]normStep, error) {
	if isNull(raw) {
		return out, nil
	}
	typ, m, err := component(raw)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "Sequence":
		var subs []json.RawMessage
		if err := json.Unmarshal(m["normalizers"], &subs); err != nil {
			return nil, fmt.Errorf("Sequence: field \"normalizers\": %w", err)
		}
		for i, s := range subs {
			if out, err = parseNormalizer(s, out); err != nil {
				return nil, fmt.Errorf("Sequence[%d]: %w", i, err)
			}
		}
		return out, nil
	case "Prepend":
		p, err := getString(m, "prepend", "")
		if err != nil {
			return nil, fmt.Errorf("Prepend: %w", err)
		}
		return append(out, normStep{kind: typ, a: p}), nil
	case "Replace":
		p, err := stringPattern(m)
		if err != nil {
			return nil, fmt.Errorf("Replace: %w", err)
		}
		c, err := getString(m, "content", "")
		if err != nil {
			return nil, fmt.Errorf("Replace: %w", err)
		}
		return append(out, normStep{kind: typ, a: p, b: c}), nil
	case "Lowercase":
		return append(out, normStep{kind: typ}), nil
	case "Strip":
		l, err1 := getBool(m, "strip_left", true)
		r, err2 := getBool(m, "strip_right", true)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("Strip: bad strip_left/strip_right")
		}
		return append(out, normStep{kind: typ, left: l, right: r}), nil
	case "NFC":
		// Treated as the identity: text already in NFC (almost all text)
		// is unchanged by it. See the package documentation.
		return out, nil
	}
	return nil, fmt.Errorf("unsupported normalizer type %q", typ)
}

func parsePreTokenizer(raw json.RawMessage, out []preStep) ([]preStep, error) {
	if isNull(raw) {
		return out, nil
	}
	typ, m, err := component(raw)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "Sequence":
		var subs []json.RawMessage
		if err := json.Unmarshal(m["pretokenizers"], &subs); err != nil {
			return nil, fmt.Errorf("Sequence: field \"pretokenizers\": %w", err)
		}
		for i, s := range subs {
			if out, err = parsePreTokenizer(s, out); err != nil {
				return nil, fmt.Errorf("Sequence[%d]: %w", i, err)
			}
		}
		return out, nil
	case "ByteLevel":
		aps, err := getBool(m, "add_prefix_space", true)
		if err != nil {
			return nil, fmt.Errorf("ByteLevel: %w", err)
		}
		ur, err := getBool(m, "use_regex", true)
		if err != nil {
			return nil, fmt.Errorf("ByteLevel: %w", err)
		}
		return append(out, preStep{kind: typ, addPrefixSpace: aps, useRegex: ur}), nil
	case "Metaspace":
		st, err := metaspaceConfig(m)
		if err != nil {
			return nil, fmt.Errorf("Metaspace: %w", err)
		}
		return append(out, st), nil
	case "Split":
		var p struct {
			String *string `json:"String"`
			Regex  *string `json:"Regex"`
		}
		if err := json.Unmarshal(m["pattern"], &p); err != nil {
			return nil, fmt.Errorf("Split: field \"pattern\": %w", err)
		}
		beh, _ := getString(m, "behavior", "")
		inv, _ := getBool(m, "invert", false)
		if p.Regex != nil && *p.Regex == gpt2Pattern && beh == "Isolated" && !inv {
			return append(out, preStep{kind: "GPT2Split"}), nil
		}
		return nil, fmt.Errorf("Split: only the GPT-2 regex with behavior Isolated is supported")
	}
	return nil, fmt.Errorf("unsupported pre_tokenizer type %q", typ)
}

func metaspaceConfig(m map[string]json.RawMessage) (preStep, error) {
	repl, err := getString(m, "replacement", "▁")
	if err != nil {
		return preStep{}, err
	}
	if utf8.RuneCountInString(repl) != 1 {
		return preStep{}, fmt.Errorf("field \"replacement\": want one character, got %q", repl)
	}
	scheme, err := getString(m, "prepend_scheme", "")
	if err != nil {
		return preStep{}, err
	}
	if scheme == "" {
		aps, err := getBool(m, "add_prefix_space", true)
		if err != nil {
			return preStep{}, err
		}
		scheme = "never"
		if aps {
			scheme = "always"
		}
	}
	switch scheme {
	case "always", "first", "never":
	default:
		return preStep{}, fmt.Errorf("field \"prepend_scheme\": unknown value %q", scheme)
	}
	split, err := getBool(m, "split", true)
	if err != nil {
		return preStep{}, err
	}
	return preStep{kind: "Metaspace", repl: repl, prepend: scheme, split: split}, nil
}

func parseDecoder(raw json.RawMessage, out []decStep) ([]decStep, error) {
	if isNull(raw) {
		return out, nil
	}
	typ, m, err := component(raw)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "Sequence":
		var subs []json.RawMessage
		if err := json.Unmarshal(m["decoders"], &subs); err != nil {
			return nil, fmt.Errorf("Sequence: field \"decoders\": %w", err)
		}
		for i, s := range subs {
			if out, err = parseDecoder(s, out); err != nil {
				return nil, fmt.Errorf("Sequence[%d]: %w", i, err)
			}
		}
		return out, nil
	case "ByteLevel", "ByteFallback", "Fuse":
		return append(out, decStep{kind: typ}), nil
	case "Replace":
		p, err := stringPattern(m)
		if err != nil {
			return nil, fmt.Errorf("Replace: %w", err)
		}
		c, err := getString(m, "content", "")
		if err != nil {
			return nil, fmt.Errorf("Replace: %w", err)
		}
		return append(out, decStep{kind: typ, a: p, b: c}), nil
	case "Strip":
		c, err := getString(m, "content", " ")
		if err != nil {
			return nil, fmt.Errorf("Strip: %w", err)
		}
		if utf8.RuneCountInString(c) != 1 {
			return nil, fmt.Errorf("Strip: field \"content\": want one character, got %q", c)
		}
		start, err1 := getInt(m, "start", 0)
		stop, err2 := getInt(m, "stop", 0)
		if err1 != nil || err2 != nil || start < 0 || stop < 0 {
			return nil, fmt.Errorf("Strip: bad start/stop")
		}
		r, _ := utf8.DecodeRuneInString(c)
		return append(out, decStep{kind: typ, ch: r, start: start, stop: stop}), nil
	case "Metaspace":
		st, err := metaspaceConfig(m)
		if err != nil {
			return nil, fmt.Errorf("Metaspace: %w", err)
		}
		return append(out, decStep{kind: typ, metaReplCh: st.repl, metaStrip: st.prepend != "never"}), nil
	}
	return nil, fmt.Errorf("unsupported decoder type %q", typ)
}

// parsePostProcessor returns the ids a post-processor puts before and after
// a single sequence.
func parsePostProcessor(raw json.RawMessage) (prefix, suffix []int, err error) {
	if isNull(raw) {
		return nil, nil, nil
	}
	typ, m, err := component(raw)
	if err != nil {
		return nil, nil, err
	}
	switch typ {
	case "ByteLevel":
		return nil, nil, nil
	case "Sequence":
		var subs []json.RawMessage
		if err := json.Unmarshal(m["processors"], &subs); err != nil {
			return nil, nil, fmt.Errorf("Sequence: field \"processors\": %w", err)
		}
		for i, s := range subs {
			p, q, err := parsePostProcessor(s)
			if err != nil {
				return nil, nil, fmt.Errorf("Sequence[%d]: %w", i, err)
			}
			prefix = append(p, prefix...)
			suffix = append(suffix, q...)
		}
		return prefix, suffix, nil
	case "RobertaProcessing", "BertProcessing":
		var cls, sep [2]json.RawMessage
		if err := json.Unmarshal(m["cls"], &cls); err != nil {
			return nil, nil, fmt.Errorf("%s: field \"cls\": %w", typ, err)
		}
		if err := json.Unmarshal(m["sep"], &sep); err != nil {
			return nil, nil, fmt.Errorf("%s: field \"sep\": %w", typ, err)
		}
		var c, s int
		if err := json.Unmarshal(cls[1], &c); err != nil {
			return nil, nil, fmt.Errorf("%s: field \"cls\": %w", typ, err)
		}
		if err := json.Unmarshal(sep[1], &s); err != nil {
			return nil, nil, fmt.Errorf("%s: field \"sep\": %w", typ, err)
		}
		return []int{c}, []int{s}, nil
	case "TemplateProcessing":
		var single []map[string]struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(m["single"], &single); err != nil {
			return nil, nil, fmt.Errorf("TemplateProcessing: field \"single\": %w", err)
		}
		var specials map[string]struct {
			IDs []int `json:"ids"`
		}
		if raw, ok := m["special_tokens"]; ok && !isNull(raw) {
			if err := json.Unmarshal(raw, &specials); err != nil {
				return nil, nil, fmt.Errorf("TemplateProcessing: field \"special_tokens\": %w", err)
			}
		}
		seenA := false
		for i, item := range single {
			if _, ok := item["Sequence"]; ok {
				seenA = true
				continue
			}
			st, ok := item["SpecialToken"]
			if !ok {
				return nil, nil, fmt.Errorf("TemplateProcessing: single[%d]: want Sequence or SpecialToken", i)
			}
			sp, ok := specials[st.ID]
			if !ok {
				return nil, nil, fmt.Errorf("TemplateProcessing: single[%d]: special token %q not in special_tokens", i, st.ID)
			}
			if seenA {
				suffix = append(suffix, sp.IDs...)
			} else {
				prefix = append(prefix, sp.IDs...)
			}
		}
		return prefix, suffix, nil
	}
	return nil, nil, fmt.Errorf("unsupported post_processor type %q", typ)
}

// loadHFJSON loads a Hugging Face tokenizer.json.
func loadHFJSON(path string, cfg *tokenizerConfig) (*hfTokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	var f hfJSONFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", path, err)
	}
	if isNull(f.Model) {
		return nil, fmt.Errorf("tokenizer: %s: missing field \"model\"", path)
	}
	var mj hfModelJSON
	if err := json.Unmarshal(f.Model, &mj); err != nil {
		return nil, fmt.Errorf("tokenizer: %s: field \"model\": %w", path, err)
	}
	if mj.Type == "" && mj.Merges != nil {
		mj.Type = "BPE"
	}
	if mj.Type != "BPE" {
		return nil, fmt.Errorf("tokenizer: %s: model.type %q is not supported (only BPE)", path, mj.Type)
	}
	if (mj.ContinuingSubwordPrefix != nil && *mj.ContinuingSubwordPrefix != "") || (mj.EndOfWordSuffix != nil && *mj.EndOfWordSuffix != "") {
		return nil, fmt.Errorf("tokenizer: %s: model: continuing_subword_prefix / end_of_word_suffix are not supported", path)
	}
	for tok, id := range mj.Vocab {
		if id < 0 || id >= maxVocabID {
			return nil, fmt.Errorf("tokenizer: %s: model.vocab: token %q has id %d out of range", path, tok, id)
		}
	}
	t := &hfTokenizer{file: path, model: newBPEModel(mj.Vocab)}
	m := t.model
	m.fuseUnk, m.byteFallback, m.ignoreMerges = mj.FuseUnk, mj.ByteFallback, mj.IgnoreMerges
	if mj.UnkToken != nil {
		id, ok := mj.Vocab[*mj.UnkToken]
		if !ok {
			return nil, fmt.Errorf("tokenizer: %s: model.unk_token %q is not in the vocabulary", path, *mj.UnkToken)
		}
		m.unkID = id
	}
	for i, raw := range mj.Merges {
		a, b, err := parseMerge(raw)
		if err != nil {
			return nil, fmt.Errorf("tokenizer: %s: model.merges[%d]: %w", path, i, err)
		}
		if err := m.addMerge(a, b, i, path+": model.merges"); err != nil {
			return nil, err
		}
	}
	added := make([]addedToken, len(f.AddedTokens))
	for i, a := range f.AddedTokens {
		if a.ID < 0 || a.ID >= maxVocabID {
			return nil, fmt.Errorf("tokenizer: %s: added_tokens[%d]: id %d out of range", path, i, a.ID)
		}
		added[i] = a.toAdded()
	}
	if t.normalizers, err = parseNormalizer(f.Normalizer, nil); err != nil {
		return nil, fmt.Errorf("tokenizer: %s: normalizer: %w", path, err)
	}
	if t.pretok, err = parsePreTokenizer(f.PreTokenizer, nil); err != nil {
		return nil, fmt.Errorf("tokenizer: %s: pre_tokenizer: %w", path, err)
	}
	if t.prefix, t.suffix, err = parsePostProcessor(f.PostProcessor); err != nil {
		return nil, fmt.Errorf("tokenizer: %s: post_processor: %w", path, err)
	}
	if isNull(f.Decoder) {
		t.decNull = true
	} else if t.dec, err = parseDecoder(f.Decoder, nil); err != nil {
		return nil, fmt.Errorf("tokenizer: %s: decoder: %w", path, err)
	}
	for _, p := range t.pretok {
		if p.kind == "ByteLevel" {
			m.byteLevel = true
		}
	}
	if err := t.finish(added, cfg); err != nil {
		return nil, err
	}
	return t, nil
}

func parseMerge(raw json.RawMessage) (string, string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		parts := strings.Split(s, " ")
		if len(parts) != 2 {
			return "", "", fmt.Errorf("want \"a b\", got %q", s)
		}
		return parts[0], parts[1], nil
	}
	var l []string
	if err := json.Unmarshal(raw, &l); err != nil || len(l) != 2 {
		return "", "", fmt.Errorf("want a string \"a b\" or a list of 2 strings, got %s", raw)
	}
	return l[0], l[1], nil
}

// loadVocabMerges loads a GPT-2 style vocab.json + merges.txt: byte-level
// BPE with the GPT-2 regex, "<|endoftext|>" as the special token, no BOS.
func loadVocabMerges(vocabPath, mergesPath string, cfg *tokenizerConfig) (*hfTokenizer, error) {
	data, err := os.ReadFile(vocabPath)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	var vocab map[string]int
	if err := json.Unmarshal(data, &vocab); err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", vocabPath, err)
	}
	for tok, id := range vocab {
		if id < 0 || id >= maxVocabID {
			return nil, fmt.Errorf("tokenizer: %s: token %q has id %d out of range", vocabPath, tok, id)
		}
	}
	t := &hfTokenizer{file: vocabPath, model: newBPEModel(vocab)}
	t.model.byteLevel = true
	mf, err := os.Open(mergesPath)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	defer mf.Close()
	sc := bufio.NewScanner(mf)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	line, rank := 0, 0
	for sc.Scan() {
		line++
		s := strings.TrimRight(sc.Text(), "\r")
		if s == "" || (line == 1 && strings.HasPrefix(s, "#version")) {
			continue
		}
		parts := strings.Split(s, " ")
		if len(parts) != 2 {
			return nil, fmt.Errorf("tokenizer: %s:%d: want \"a b\", got %q", mergesPath, line, s)
		}
		if err := t.model.addMerge(parts[0], parts[1], rank, fmt.Sprintf("%s:%d", mergesPath, line)); err != nil {
			return nil, err
		}
		rank++
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", mergesPath, err)
	}
	aps := false
	if cfg != nil && cfg.addPrefixSp != nil {
		aps = *cfg.addPrefixSp
	}
	t.pretok = []preStep{{kind: "ByteLevel", addPrefixSpace: aps, useRegex: true}}
	t.dec = []decStep{{kind: "ByteLevel"}}
	var added []addedToken
	names := map[string]bool{}
	if cfg != nil {
		for _, p := range []*string{cfg.bosToken, cfg.eosToken, cfg.unkToken, cfg.padToken} {
			if p != nil {
				names[*p] = true
			}
		}
		added = append(added, cfg.added...)
	}
	if len(names) == 0 {
		names["<|endoftext|>"] = true // GPT2Tokenizer's default bos/eos/unk
	}
	for n := range names {
		if id, ok := vocab[n]; ok {
			added = append(added, addedToken{id: id, content: n, special: true})
		}
	}
	if cfg == nil {
		cfg = &tokenizerConfig{}
	}
	if cfg.bosToken == nil && cfg.eosToken == nil {
		s := "<|endoftext|>"
		cfg.bosToken, cfg.eosToken = &s, &s
	}
	if err := t.finish(added, cfg); err != nil {
		return nil, err
	}
	return t, nil
}

// finish builds the id tables, the added-token matchers, the special ids and
// the decoding tables.
func (t *hfTokenizer) finish(added []addedToken, cfg *tokenizerConfig) error {
	n := 0
	for _, id := range t.model.vocab {
		n = max(n, id+1)
	}
	for _, a := range added {
		n = max(n, a.id+1)
	}
	t.vocabSize = n
	t.idToTok = make([]string, n)
	t.hasTok = make([]bool, n)
	t.special = make([]bool, n)
	for tok, id := range t.model.vocab {
		t.idToTok[id] = tok
		t.hasTok[id] = true
	}
	var raw, norm []*addedToken
	byContent := map[string]int{}
	for i := range added {
		a := &added[i]
		t.idToTok[a.id] = a.content
		t.hasTok[a.id] = true
		t.special[a.id] = a.special
		byContent[a.content] = a.id
		if a.normalized {
			norm = append(norm, a)
		} else {
			raw = append(raw, a)
		}
	}
	t.rawAdded = newAddedMatcher(raw)
	t.normAdded = newAddedMatcher(norm)

	// Decoding: a Strip after a Fuse (or ByteLevel, which fuses) applies to
	// the whole text; find it for the incremental decoder.
	fused := false
	for i := range t.dec {
		d := &t.dec[i]
		switch d.kind {
		case "Fuse", "ByteLevel":
			fused = true
		case "Strip":
			d.afterFuse = fused
			if fused && t.stripLeft == 0 {
				t.stripLeft, t.stripRune = d.start, d.ch
			}
		}
	}
	t.tokBytes = make([][]byte, n)
	for id := 0; id < n; id++ {
		if t.hasTok[id] {
			t.tokBytes[id] = []byte(t.pieceString(1, t.idToTok[id]))
		}
	}

	lookup := func(s *string) int {
		if s == nil {
			return -1
		}
		if id, ok := byContent[*s]; ok {
			return id
		}
		if id, ok := t.model.vocab[*s]; ok {
			return id
		}
		return -1
	}
	t.bos, t.eos = -1, -1
	if cfg != nil {
		t.bos, t.eos = lookup(cfg.bosToken), lookup(cfg.eosToken)
		t.cleanUp = cfg.cleanUp
		if cfg.addBOS != nil || cfg.addEOS != nil {
			// transformers rebuilds the post-processor from these flags.
			t.prefix, t.suffix = nil, nil
			if cfg.addBOS != nil && *cfg.addBOS && t.bos >= 0 {
				t.prefix = []int{t.bos}
			}
			if cfg.addEOS != nil && *cfg.addEOS && t.eos >= 0 {
				t.suffix = []int{t.eos}
			}
		}
	}
	if t.bos < 0 && len(t.prefix) > 0 {
		t.bos = t.prefix[0]
	}
	if t.eos < 0 {
		if len(t.suffix) > 0 {
			t.eos = t.suffix[len(t.suffix)-1]
		} else {
			for _, name := range []string{"</s>", "<|endoftext|>", "<|end_of_text|>", "<eos>"} {
				if id, ok := byContent[name]; ok && t.special[id] {
					t.eos = id
					break
				}
			}
		}
	}
	for _, id := range append(append([]int(nil), t.prefix...), t.suffix...) {
		if id < 0 || id >= n || !t.hasTok[id] {
			return fmt.Errorf("tokenizer: %s: post_processor: special id %d is not in the vocabulary", t.file, id)
		}
	}
	return nil
}

// VocabSize implements Tokenizer.
func (t *hfTokenizer) VocabSize() int { return t.vocabSize }

// BOS implements Tokenizer.
func (t *hfTokenizer) BOS() int { return t.bos }

// EOS implements Tokenizer.
func (t *hfTokenizer) EOS() int { return t.eos }

// TokenBytes implements Tokenizer.
func (t *hfTokenizer) TokenBytes(id int) []byte {
	if id < 0 || id >= len(t.tokBytes) {
		return nil
	}
	return t.tokBytes[id]
}

// Encode implements Tokenizer.
func (t *hfTokenizer) Encode(text string) ([]int, error) {
	out := append([]int(nil), t.prefix...)
	out = t.encode(text, out)
	return append(out, t.suffix...), nil
}

// EncodeNoSpecial implements Tokenizer.
func (t *hfTokenizer) EncodeNoSpecial(text string) ([]int, error) {
	return t.encode(text, nil), nil
}

func (t *hfTokenizer) normalize(s string) string {
	for _, n := range t.normalizers {
		switch n.kind {
		case "Prepend":
			if s != "" {
				s = n.a + s
			}
		case "Replace":
			if n.a != "" {
				s = strings.ReplaceAll(s, n.a, n.b)
			}
		case "Lowercase":
			s = strings.ToLower(s)
		case "Strip":
			if n.left {
				s = strings.TrimLeftFunc(s, unicode.IsSpace)
			}
			if n.right {
				s = strings.TrimRightFunc(s, unicode.IsSpace)
			}
		}
	}
	return s
}

func (t *hfTokenizer) encode(text string, out []int) []int {
	segs := t.rawAdded.split(text, true, nil)
	for _, sg := range segs {
		if sg.tok != nil {
			out = append(out, sg.tok.id)
			continue
		}
		norm := t.normalize(sg.text)
		for _, sub := range t.normAdded.split(norm, sg.atStart, nil) {
			if sub.tok != nil {
				out = append(out, sub.tok.id)
				continue
			}
			out = t.encodeText(sub.text, sub.atStart, out)
		}
	}
	return out
}

// encodeText pre-tokenizes a normalized piece of text and encodes its words.
func (t *hfTokenizer) encodeText(s string, atStart bool, out []int) []int {
	if s == "" {
		return out
	}
	words := []string{s}
	for _, p := range t.pretok {
		var next []string
		for wi, w := range words {
			switch p.kind {
			case "ByteLevel":
				if p.addPrefixSpace && !strings.HasPrefix(w, " ") && w != "" {
					w = " " + w
				}
				if p.useRegex {
					splitGPT2(w, func(x string) { next = append(next, x) })
				} else {
					next = append(next, w)
				}
			case "GPT2Split":
				splitGPT2(w, func(x string) { next = append(next, x) })
			case "Metaspace":
				w = strings.ReplaceAll(w, " ", p.repl)
				if w != "" && !strings.HasPrefix(w, p.repl) && (p.prepend == "always" || (p.prepend == "first" && atStart && wi == 0)) {
					w = p.repl + w
				}
				if !p.split {
					next = append(next, w)
					continue
				}
				start := 0
				for i := 1; i < len(w); i++ {
					if strings.HasPrefix(w[i:], p.repl) {
						next = append(next, w[start:i])
						start = i
						i += len(p.repl) - 1
					}
				}
				next = append(next, w[start:])
			}
		}
		words = next
	}
	for _, w := range words {
		out = t.model.encodeWord(w, out)
	}
	return out
}

// Decode implements Tokenizer.
func (t *hfTokenizer) Decode(ids []int) (string, error) {
	toks := make([]string, len(ids))
	for i, id := range ids {
		if id < 0 || id >= t.vocabSize {
			return "", errRange(i, id, t.vocabSize)
		}
		if !t.hasTok[id] {
			return "", fmt.Errorf("tokenizer: decode: id %d at index %d has no token", id, i)
		}
		toks[i] = t.idToTok[id]
	}
	var s string
	if t.decNull {
		s = strings.Join(toks, " ")
	} else {
		s = strings.Join(t.applyDecoders(toks), "")
	}
	if t.cleanUp {
		s = cleanUpTokenization(s)
	}
	return s, nil
}

func isByteToken(tok string) (byte, bool) {
	if len(tok) != 6 || !strings.HasPrefix(tok, "<0x") || tok[5] != '>' {
		return 0, false
	}
	v, err := strconv.ParseUint(tok[3:5], 16, 8)
	if err != nil {
		return 0, false
	}
	return byte(v), true
}

func stripRune(s string, ch rune, start, stop int) string {
	for k := 0; k < start; k++ {
		r, size := utf8.DecodeRuneInString(s)
		if size == 0 || r != ch {
			break
		}
		s = s[size:]
	}
	for k := 0; k < stop; k++ {
		r, size := utf8.DecodeLastRuneInString(s)
		if size == 0 || r != ch {
			break
		}
		s = s[:len(s)-size]
	}
	return s
}

// applyDecoders runs the decoder chain over the whole token list, as HF
// does, but keeps raw bytes where HF would make U+FFFD.
func (t *hfTokenizer) applyDecoders(toks []string) []string {
	for _, d := range t.dec {
		switch d.kind {
		case "ByteLevel":
			var buf []byte
			for _, tok := range toks {
				buf = append(buf, byteLevelDecode(tok)...)
			}
			toks = []string{string(buf)}
		case "Replace":
			for i := range toks {
				toks[i] = strings.ReplaceAll(toks[i], d.a, d.b)
			}
		case "ByteFallback":
			var out []string
			var pend []byte
			for _, tok := range toks {
				if b, ok := isByteToken(tok); ok {
					pend = append(pend, b)
					continue
				}
				if len(pend) > 0 {
					out = append(out, string(pend))
					pend = nil
				}
				out = append(out, tok)
			}
			if len(pend) > 0 {
				out = append(out, string(pend))
			}
			toks = out
		case "Fuse":
			toks = []string{strings.Join(toks, "")}
		case "Strip":
			for i := range toks {
				toks[i] = stripRune(toks[i], d.ch, d.start, d.stop)
			}
		case "Metaspace":
			for i := range toks {
				if i == 0 && d.metaStrip {
					toks[i] = strings.ReplaceAll(toks[i], d.metaReplCh, "")
				} else {
					toks[i] = strings.ReplaceAll(toks[i], d.metaReplCh, " ")
				}
			}
		}
	}
	return toks
}

// pieceString is the text of token tok at index i of a sequence when
// decoding one token at a time: the decoder chain applied to the token
// alone, without the steps that act on the whole fused text.
func (t *hfTokenizer) pieceString(i int, tok string) string {
	if t.decNull {
		if i > 0 {
			return " " + tok
		}
		return tok
	}
	for _, d := range t.dec {
		switch d.kind {
		case "ByteLevel":
			tok = string(byteLevelDecode(tok))
		case "Replace":
			tok = strings.ReplaceAll(tok, d.a, d.b)
		case "ByteFallback":
			if b, ok := isByteToken(tok); ok {
				tok = string([]byte{b})
			}
		case "Strip":
			if !d.afterFuse {
				tok = stripRune(tok, d.ch, d.start, d.stop)
			}
		case "Metaspace":
			if i == 0 && d.metaStrip {
				tok = strings.ReplaceAll(tok, d.metaReplCh, "")
			} else {
				tok = strings.ReplaceAll(tok, d.metaReplCh, " ")
			}
		}
	}
	return tok
}

type hfDecodeState struct {
	t         *hfTokenizer
	i         int
	stripLeft int
	emitted   bool
}

func (t *hfTokenizer) newDecodeState() decodeState {
	return &hfDecodeState{t: t, stripLeft: t.stripLeft}
}

func (s *hfDecodeState) next(id int) ([]byte, error) {
	t := s.t
	if id < 0 || id >= t.vocabSize {
		return nil, errRange(s.i, id, t.vocabSize)
	}
	if !t.hasTok[id] {
		return nil, fmt.Errorf("tokenizer: decode: id %d at index %d has no token", id, s.i)
	}
	var b []byte
	if s.i == 0 || t.decNull {
		b = []byte(t.pieceString(s.i, t.idToTok[id]))
	} else {
		b = t.tokBytes[id]
	}
	s.i++
	for s.stripLeft > 0 && !s.emitted && len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r != t.stripRune {
			break
		}
		b = b[size:]
		s.stripLeft--
	}
	if len(b) > 0 {
		s.emitted = true
	}
	return b, nil
}
