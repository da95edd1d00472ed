package tokenizer

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

var sampleTexts = []string{
	"Hello world",
	"Once upon a time, there was a little girl named Lily. She loved to play outside in the park.",
	"I'm sure it's what they've said; we'll see, wouldn't you?",
	"tabs\tand\nnewlines\n\n  indented\r\nline",
	"Ünïcödé: café, naïve, Straße, Ελληνικά, русский",
	"中文字符和日本語のテキスト",
	"Emoji: 😀🎉👍🏽 and 🇫🇷 flags",
	"3.14159, 1,000,000 and 2026-11-27.",
	"  two leading spaces, trailing   ",
	"<s> is text here",
	"",
}

// TestLlama2CMatchesSentencePiece checks llama2.c's tokenizer.bin against
// the sentencepiece tokenizer.model of the same Llama 2 vocabulary.
func TestLlama2CMatchesSentencePiece(t *testing.T) {
	bin := dataPath(t, "tokenizers/llama2/tokenizer.bin")
	c, err := LoadLlama2C(bin, 32000)
	if err != nil {
		t.Fatal(err)
	}
	sp := loadFixtureTokenizer(t, "tokenizers/llama2/tokenizer.model")
	if c.VocabSize() != 32000 || c.BOS() != 1 || c.EOS() != 2 {
		t.Fatalf("vocab %d bos %d eos %d", c.VocabSize(), c.BOS(), c.EOS())
	}
	for _, s := range sampleTexts {
		want, _ := sp.EncodeNoSpecial(s)
		got, _ := c.EncodeNoSpecial(s)
		if !sameIDs(got, want) {
			t.Errorf("%q: llama2.c %v, sentencepiece %v", s, got, want)
		}
		withBOS, _ := c.Encode(s)
		if len(withBOS) == 0 || withBOS[0] != 1 || !sameIDs(withBOS[1:], want) {
			t.Errorf("%q: Encode = %v", s, withBOS)
		}
		d1, err := c.Decode(withBOS)
		if err != nil {
			t.Fatal(err)
		}
		d2, _ := sp.Decode(withBOS)
		if d1 != d2 || d1 != s {
			t.Errorf("%q: llama2.c decode %q, sentencepiece decode %q", s, d1, d2)
		}
		checkStream(t, c, withBOS)
	}
	// llama2.c strips the space of the token after BOS, also mid-sequence.
	ids, _ := c.EncodeNoSpecial("Hello world")
	mid := append(append(append([]int(nil), ids...), 1), ids...)
	if d, _ := c.Decode(mid); d != "Hello worldHello world" {
		t.Errorf("decode %v = %q", mid, d)
	}
	if b := c.TokenBytes(13); string(b) != "\n" {
		t.Errorf("TokenBytes(<0x0A>) = %q", b)
	}
}

// TestTok512 loads the stories260K tokenizers (llama2.c and
// sentencepiece forms).
func TestTok512(t *testing.T) {
	c, err := LoadLlama2C(dataPath(t, "models/stories260K/tok512.bin"), 512)
	if err != nil {
		t.Fatal(err)
	}
	if c.VocabSize() != 512 {
		t.Fatalf("vocab %d", c.VocabSize())
	}
	if c0, err := LoadLlama2C(dataPath(t, "models/stories260K/tok512.bin"), 0); err != nil || c0.VocabSize() != 512 {
		t.Fatalf("vocab size from the file: %v", err)
	}
	sp := loadFixtureTokenizer(t, "models/stories260K/tok512.model")
	if sp.VocabSize() != 512 || sp.BOS() != 1 || sp.EOS() != 2 {
		t.Fatalf("tok512.model: vocab %d bos %d eos %d", sp.VocabSize(), sp.BOS(), sp.EOS())
	}
	// tok512.model has remove_extra_whitespaces, which llama2.c does not
	// do; on text without extra spaces both agree.
	for _, s := range []string{"Once upon a time, there was a little girl named Lily.", "She loved to play outside in the park.", "Tom had a big red ball! 日本"} {
		a, _ := c.Encode(s)
		b, _ := sp.Encode(s)
		if !sameIDs(a, b) {
			t.Errorf("%q: tok512.bin %v, tok512.model %v", s, a, b)
		}
		d, _ := c.Decode(a)
		if d != s {
			t.Errorf("decode %v = %q, want %q", a, d, s)
		}
	}
}

// mustLoad loads a tokenizer for the tests once per path.
var loaded sync.Map

func mustLoad(t testing.TB, rel string) Tokenizer {
	t.Helper()
	if v, ok := loaded.Load(rel); ok {
		return v.(Tokenizer)
	}
	p := dataPath(t, rel)
	var tok Tokenizer
	var err error
	switch {
	case strings.HasSuffix(p, ".bin"):
		tok, err = LoadLlama2C(p, 32000)
	case strings.HasSuffix(p, ".model"):
		tok, err = LoadSentencePiece(p)
	default:
		tok, err = Load(p)
	}
	if err != nil {
		t.Fatal(err)
	}
	loaded.Store(rel, tok)
	return tok
}

// TestStreamSplitCharacters feeds ids one at a time: characters split
// across byte-fallback and byte-level tokens are held back until complete.
func TestStreamSplitCharacters(t *testing.T) {
	text := "A 😀 then 中文 and é — 👍🏽!"
	for _, rel := range []string{"tokenizers/llama2/tokenizer.model", "tokenizers/llama2/tokenizer.bin", "tokenizers/gpt2", "models/testbed-opt-relu", "tokenizers/gptj-6B"} {
		t.Run(rel, func(t *testing.T) {
			tok := mustLoad(t, rel)
			ids, err := tok.Encode(text)
			if err != nil {
				t.Fatal(err)
			}
			s := NewStream(tok)
			var parts []string
			for _, id := range ids {
				p := s.Add(id)
				if !utf8.ValidString(p) {
					t.Errorf("Add(%d) returned invalid UTF-8 %q", id, p)
				}
				parts = append(parts, p)
			}
			parts = append(parts, s.Flush())
			want, _ := tok.Decode(ids)
			if got := strings.Join(parts, ""); got != want {
				t.Errorf("stream %q, Decode %q", got, want)
			}
			if !strings.HasSuffix(want, text) {
				t.Errorf("Decode(Encode(%q)) = %q", text, want)
			}
			empty := 0
			for _, p := range parts {
				if p == "" {
					empty++
				}
			}
			if empty == 0 {
				t.Errorf("no token was held back: %q", parts)
			}
		})
	}
	// Invalid bytes are passed through, as Decode does.
	tok := mustLoad(t, "tokenizers/llama2/tokenizer.model")
	s := NewStream(tok)
	got := s.Add(tok.(*spmTokenizer).byteIDs[0xF0]) + s.Add(tok.(*spmTokenizer).byteIDs['A'])
	if got != "\xF0A" {
		t.Errorf("stream of <0xF0> <0x41> = %q", got)
	}
	if s.Add(-1) != "" || s.Err() == nil {
		t.Errorf("out-of-range id: no error")
	}
}

// TestSpecialTokens checks the BOS/EOS conventions of each format.
func TestSpecialTokens(t *testing.T) {
	for _, c := range []struct {
		rel      string
		bos, eos int
		empty    []int // Encode("")
	}{
		{"models/testbed-opt-relu", 2, 2, []int{2}},
		{"models/testbed-llama-relu", 0, 2, []int{0}},
		{"tokenizers/gptj-6B", 50256, 50256, nil},
		{"tokenizers/gpt2", 50256, 50256, nil},
		{"tokenizers/llama2/tokenizer.model", 1, 2, []int{1}},
	} {
		tok := mustLoad(t, c.rel)
		got, _ := tok.Encode("")
		if tok.BOS() != c.bos || tok.EOS() != c.eos || !sameIDs(got, c.empty) {
			t.Errorf("%s: BOS %d EOS %d Encode(\"\") %v; want %d %d %v", c.rel, tok.BOS(), tok.EOS(), got, c.bos, c.eos, c.empty)
		}
	}
	gptj := mustLoad(t, "tokenizers/gptj-6B")
	if gptj.VocabSize() != 50400 {
		t.Errorf("gptj-6B vocab %d, want 50400", gptj.VocabSize())
	}
	ids, _ := gptj.EncodeNoSpecial("a<|extratoken_7|>b <|endoftext|>")
	if want := []int{64, 50263, 65, 220, 50256}; !reflect.DeepEqual(ids, want) {
		t.Errorf("gptj added tokens: %v, want %v", ids, want)
	}
	if d, _ := gptj.Decode(ids); d != "a<|extratoken_7|>b <|endoftext|>" {
		t.Errorf("gptj decode %q", d)
	}
	if _, err := gptj.Decode([]int{50400}); err == nil {
		t.Errorf("no error for id 50400")
	}
	sp := mustLoad(t, "tokenizers/llama2/tokenizer.model")
	if d, _ := sp.Decode([]int{0, 1, 2}); d != " \u2047 " {
		t.Errorf("spm decode of <unk><s></s> = %q", d)
	}
}

// writeLlamaJSON converts the Llama 2 tokenizer.model into a Llama-style
// tokenizer.json the way transformers' LlamaConverter does (vocab, and
// merges from SentencePieceExtractor ordered by score) with the given
// normalizer / pre_tokenizer / decoder, and returns its directory.
func writeLlamaJSON(t *testing.T, sp *spmTokenizer, normalizer, pretok, decoder string) string {
	t.Helper()
	vocab := make(map[string]int, len(sp.pieces))
	for i, p := range sp.pieces {
		vocab[p.piece] = i
	}
	type merge struct {
		a, b   string
		score  float32
		ia, ib int
	}
	var merges []merge
	for _, p := range sp.pieces {
		if p.typ != pieceNormal {
			continue
		}
		var local []merge
		for k := 1; k < len(p.piece); k++ {
			if !utf8.RuneStart(p.piece[k]) {
				continue
			}
			l, r := p.piece[:k], p.piece[k:]
			il, ok1 := vocab[l]
			ir, ok2 := vocab[r]
			if ok1 && ok2 {
				local = append(local, merge{l, r, p.score, il, ir})
			}
		}
		sort.Slice(local, func(i, j int) bool {
			if local[i].ia != local[j].ia {
				return local[i].ia < local[j].ia
			}
			return local[i].ib < local[j].ib
		})
		merges = append(merges, local...)
	}
	sort.SliceStable(merges, func(i, j int) bool { return merges[i].score > merges[j].score })
	ms := make([][2]string, len(merges))
	for i, m := range merges {
		ms[i] = [2]string{m.a, m.b}
	}
	model := map[string]any{"type": "BPE", "dropout": nil, "unk_token": "<unk>", "continuing_subword_prefix": nil,
		"end_of_word_suffix": nil, "fuse_unk": true, "byte_fallback": true, "vocab": vocab, "merges": ms}
	doc := map[string]any{
		"version": "1.0",
		"added_tokens": []map[string]any{
			{"id": 0, "content": "<unk>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
			{"id": 1, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
			{"id": 2, "content": "</s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
		},
		"normalizer":    json.RawMessage(normalizer),
		"pre_tokenizer": json.RawMessage(pretok),
		"post_processor": json.RawMessage(`{"type":"TemplateProcessing","single":[{"SpecialToken":{"id":"<s>","type_id":0}},{"Sequence":{"id":"A","type_id":0}}],
			"pair":[],"special_tokens":{"<s>":{"id":"<s>","ids":[1],"tokens":["<s>"]}}}`),
		"decoder": json.RawMessage(decoder),
		"model":   model,
	}
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestLlamaTokenizerJSON checks the Llama kind of tokenizer.json (BPE with
// byte_fallback, Prepend/Replace normalizer or Metaspace pre-tokenizer,
// Replace/ByteFallback/Fuse/Strip decoder) built from the Llama 2
// tokenizer.model, against sentencepiece's ids (ref_cases.json).
func TestLlamaTokenizerJSON(t *testing.T) {
	sp := mustLoad(t, "tokenizers/llama2/tokenizer.model").(*spmTokenizer)
	rc := readRefCases(t)
	want := rc.SPM["llama2"].IDs
	decoder := `{"type":"Sequence","decoders":[{"type":"Replace","pattern":{"String":"▁"},"content":" "},
		{"type":"ByteFallback"},{"type":"Fuse"},{"type":"Strip","content":" ","start":1,"stop":0}]}`
	for _, v := range []struct{ name, norm, pre string }{
		{"legacy-normalizer", `{"type":"Sequence","normalizers":[{"type":"Prepend","prepend":"▁"},{"type":"Replace","pattern":{"String":" "},"content":"▁"}]}`, `null`},
		{"metaspace", `null`, `{"type":"Metaspace","replacement":"▁","prepend_scheme":"first","split":false}`},
	} {
		t.Run(v.name, func(t *testing.T) {
			tok, err := Load(writeLlamaJSON(t, sp, v.norm, v.pre, decoder))
			if err != nil {
				t.Fatal(err)
			}
			if tok.BOS() != 1 || tok.EOS() != 2 || tok.VocabSize() != 32000 {
				t.Fatalf("BOS %d EOS %d vocab %d", tok.BOS(), tok.EOS(), tok.VocabSize())
			}
			n := 0
			for i, text := range rc.Texts {
				if strings.HasPrefix(text, " ") || strings.Contains(text, "▁") {
					// Metaspace does not prepend ▁ to text starting with
					// one (so " x" differs from sentencepiece's "▁▁x").
					continue
				}
				n++
				got, _ := tok.Encode(text)
				if len(got) == 0 || got[0] != 1 || !sameIDs(got[1:], want[i]) {
					t.Errorf("case %d %q:\n got %v\nwant [1] + %v", i, text, got, want[i])
					continue
				}
				dec, _ := tok.Decode(got)
				if dec != "<s> "+text && !(text == "" && dec == "<s>") {
					t.Errorf("case %d: Decode = %q", i, dec)
				}
				noBOS, _ := tok.Decode(got[1:])
				if noBOS != text {
					t.Errorf("case %d: Decode without BOS = %q, want %q", i, noBOS, text)
				}
				checkStream(t, tok, got)
				checkStream(t, tok, got[1:])
			}
			if n < 100 {
				t.Errorf("only %d cases", n)
			}
			ids, _ := tok.Encode("Hello <s>.")
			if v.name == "legacy-normalizer" && !reflect.DeepEqual(ids, []int{1, 15043, 29871, 1, 869}) {
				// transformers' documented legacy example.
				t.Errorf("Hello <s>. = %v", ids)
			}
			if v.name == "metaspace" && !reflect.DeepEqual(ids, []int{1, 15043, 29871, 1, 29889}) {
				t.Errorf("Hello <s>. = %v", ids)
			}
		})
	}
}

// TestErrors checks that malformed files give errors, not panics.
func TestErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct{ name, json string }{
		{"bad-json", `{"model": `},
		{"no-model", `{"added_tokens": []}`},
		{"wordpiece", `{"model": {"type": "WordPiece", "vocab": {}}}`},
		{"bad-merge", `{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}}`},
		{"bad-merge-form", `{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a"]}}`},
		{"bad-id", `{"model": {"type": "BPE", "vocab": {"a": -4}, "merges": []}}`},
		{"bad-pretok", `{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "Punctuation"}}`},
		{"bad-template", `{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>"}}], "special_tokens": {}}}`},
	} {
		d := filepath.Join(dir, c.name)
		os.Mkdir(d, 0o755)
		os.WriteFile(filepath.Join(d, "tokenizer.json"), []byte(c.json), 0o644)
		if _, err := Load(d); err == nil {
			t.Errorf("%s: no error", c.name)
		} else if !strings.Contains(err.Error(), "tokenizer.json") {
			t.Errorf("%s: error does not name the file: %v", c.name, err)
		}
	}
	if _, err := Load(dir); err == nil {
		t.Errorf("empty dir: no error")
	}
	// Truncated sentencepiece model: every prefix fails or loads cleanly.
	model, err := os.ReadFile(dataPath(t, "models/stories260K/tok512.model"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1, 2, 5, 17, 100, len(model) / 2, len(model) - 1} {
		if _, err := parseSPM(model[:n], "tok512.model"); err == nil && n < len(model)-200 {
			t.Errorf("truncated to %d bytes: no error", n)
		}
	}
	for i := 0; i < len(model); i += 97 {
		bad := append([]byte(nil), model...)
		bad[i] ^= 0xFF
		parseSPM(bad, "corrupt.model") // must not panic
	}
	if _, err := LoadSentencePiece(write("garbage.model", "\x0a\xff\xff\xff\xff\x0f")); err == nil {
		t.Errorf("garbage model: no error")
	}
	// Truncated llama2.c tokenizer.bin.
	bin, err := os.ReadFile(dataPath(t, "models/stories260K/tok512.bin"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 3, 4, 10, len(bin) / 2, len(bin) - 1} {
		_, err := parseLlama2C(bin[:n], "tok512.bin", 512)
		if err == nil {
			t.Errorf("tokenizer.bin truncated to %d: no error", n)
		} else if !strings.Contains(err.Error(), "tok512.bin") {
			t.Errorf("error does not name the file: %v", err)
		}
	}
	neg := append([]byte(nil), bin...)
	binary.LittleEndian.PutUint32(neg[8:], uint32(math.MaxUint32)) // length -1 of token 0
	if _, err := parseLlama2C(neg, "neg.bin", 512); err == nil || !strings.Contains(err.Error(), "token 0") {
		t.Errorf("negative length: %v", err)
	}
	if _, err := LoadLlama2C(filepath.Join(dir, "missing.bin"), 512); err == nil {
		t.Errorf("missing file: no error")
	}
	// Decode errors name the index.
	tok := mustLoad(t, "tokenizers/llama2/tokenizer.model")
	if _, err := tok.Decode([]int{1, 2, 32000}); err == nil || !strings.Contains(err.Error(), "index 2") {
		t.Errorf("decode out of range: %v", err)
	}
	if b := tok.TokenBytes(-1); b != nil {
		t.Errorf("TokenBytes(-1) = %q", b)
	}
}

// roundTrip checks Decode(EncodeNoSpecial(s)) == s and the stream.
func roundTrip(t *testing.T, tok Tokenizer, s string) {
	ids, err := tok.EncodeNoSpecial(s)
	if err != nil {
		t.Fatal(err)
	}
	d, err := tok.Decode(ids)
	if err != nil {
		t.Fatal(err)
	}
	if d != s {
		t.Errorf("Decode(EncodeNoSpecial(%q)) = %q (ids %v)", s, d, ids)
	}
	checkStream(t, tok, ids)
}

// FuzzRoundTrip checks that decoding the encoding gives the text back:
// for any bytes with the byte-level BPE tokenizers and llama2.c's (which
// byte-falls back invalid UTF-8), for valid UTF-8 without U+2581 with the
// Llama sentencepiece model (no whitespace removal; ▁ in the input decodes
// as a space, as in sentencepiece). Random ids must decode without panic.
func FuzzRoundTrip(f *testing.F) {
	for _, s := range sampleTexts {
		f.Add(s)
	}
	for _, s := range []string{"\xff\xfe", "a\xe4\xb8", "\xe4\xb8\xad\xe4", "\x00", " ", "   ", "\n\n", "'s'll 've", "<|endoftext|>", "</s><s>",
		"\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "x\u0301\u200d", "ﬁ", "a\tb\u00a0c\u3000d", strings.Repeat("ab ", 200)} {
		f.Add(s)
	}
	byteLevel := []string{"tokenizers/gpt2", "models/testbed-opt-relu", "tokenizers/gptj-6B"}
	f.Fuzz(func(t *testing.T, s string) {
		for _, rel := range byteLevel {
			roundTrip(t, mustLoad(t, rel), s)
		}
		roundTrip(t, mustLoad(t, "tokenizers/llama2/tokenizer.bin"), s)
		if utf8.ValidString(s) && !strings.Contains(s, "▁") {
			roundTrip(t, mustLoad(t, "tokenizers/llama2/tokenizer.model"), s)
		}
		sp := mustLoad(t, "tokenizers/llama2/tokenizer.model")
		sp.EncodeNoSpecial(s) // must not panic on invalid UTF-8
		ids := make([]int, 0, len(s))
		for i := 0; i+1 < len(s); i += 2 {
			ids = append(ids, int(s[i])<<8|int(s[i+1]))
		}
		for _, rel := range append(byteLevel, "tokenizers/llama2/tokenizer.model", "tokenizers/llama2/tokenizer.bin", "models/testbed-llama-relu") {
			tok := mustLoad(t, rel)
			var in []int
			for _, id := range ids {
				if id < tok.VocabSize() {
					in = append(in, id)
				}
			}
			if _, err := tok.Decode(in); err != nil {
				t.Fatalf("%s: %v", rel, err)
			}
			checkStream(t, tok, in)
		}
	})
}

// TestConcurrentEncode encodes from several goroutines (run with -race).
func TestConcurrentEncode(t *testing.T) {
	for _, rel := range []string{"tokenizers/gpt2", "tokenizers/llama2/tokenizer.model", "tokenizers/llama2/tokenizer.bin"} {
		tok := mustLoad(t, rel)
		want := make([][]int, len(sampleTexts))
		for i, s := range sampleTexts {
			want[i], _ = tok.Encode(s)
		}
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for r := 0; r < 5; r++ {
					for i, s := range sampleTexts {
						got, _ := tok.Encode(s + " " + s)
						if again, _ := tok.Encode(s); !sameIDs(again, want[i]) {
							t.Errorf("%s: %q: %v != %v", rel, s, again, want[i])
						}
						_ = got
					}
				}
			}()
		}
		wg.Wait()
	}
}

// TestAddedTokenOptions checks lstrip, rstrip and single_word on a tiny
// byte-level tokenizer.json made here (no shared data needed).
func TestAddedTokenOptions(t *testing.T) {
	vocab := map[string]int{}
	for b := 0; b < 256; b++ {
		vocab[string(byteToRune[b])] = b
	}
	vocab["Ġb"] = 256
	vocab["ab"] = 257
	doc := map[string]any{
		"added_tokens": []map[string]any{
			{"id": 300, "content": "<mask>", "lstrip": true, "special": true, "normalized": false},
			{"id": 301, "content": "<r>", "rstrip": true, "special": true, "normalized": false},
			{"id": 302, "content": "<w>", "single_word": true, "special": false, "normalized": true},
			{"id": 303, "content": "<s>", "special": true, "normalized": false},
		},
		"pre_tokenizer":  map[string]any{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
		"post_processor": map[string]any{"type": "RobertaProcessing", "sep": []any{"<r>", 301}, "cls": []any{"<s>", 303}},
		"decoder":        map[string]any{"type": "ByteLevel"},
		"model": map[string]any{"type": "BPE", "vocab": vocab,
			"merges": []any{"Ġ b", []string{"a", "b"}}},
	}
	data, _ := json.Marshal(doc)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "tokenizer.json"), data, 0o644)
	tok, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	a, x, y, G := int('a'), int('x'), int('y'), vocab["Ġ"]
	for _, c := range []struct {
		text string
		want []int
	}{
		{"a <mask> b", []int{a, 300, 256}},          // lstrip eats the space before
		{"x<r>   y", []int{x, 301, y}},              // rstrip eats the spaces after
		{"a<w>b", []int{a, '<', 'w', '>', 'b'}},     // not a single word
		{"a <w> b", []int{a, G, 302, 256}},          // a single word
		{"ab<s>ab", []int{257, 303, 257}},           // never split, merges on both sides
		{"\xff\xfe <s>", []int{0xff, 0xfe, G, 303}}, // raw bytes
	} {
		got, _ := tok.EncodeNoSpecial(c.text)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: got %v, want %v", c.text, got, c.want)
		}
	}
	got, _ := tok.Encode("ab")
	if !reflect.DeepEqual(got, []int{303, 257, 301}) {
		t.Errorf("Roberta template: %v", got)
	}
	if tok.BOS() != 303 || tok.EOS() != 301 || tok.VocabSize() != 304 {
		t.Errorf("BOS %d EOS %d vocab %d", tok.BOS(), tok.EOS(), tok.VocabSize())
	}
	if d, _ := tok.Decode([]int{a, 300, 256, 302}); d != "a<mask> b<w>" {
		t.Errorf("decode %q", d)
	}
	if _, err := tok.Decode([]int{299}); err == nil {
		t.Errorf("decode of an id without token: no error")
	}
}
