// Package tokenizer implements the text tokenizers of the inference engine,
// exact with Hugging Face `tokenizers` and with `sentencepiece`.
//
// Formats (Load picks one from a model directory):
//
//   - Hugging Face tokenizer.json with a BPE model: byte-level BPE (GPT-2,
//     GPT-J, OPT, the test-bed models: ByteLevel pre-tokenizer with the
//     GPT-2 regex, written by hand since Go's regexp has no lookahead) and
//     the Llama kind (byte_fallback, Prepend/Replace normalizers or the
//     Metaspace pre-tokenizer, Replace/ByteFallback/Fuse/Strip decoders).
//     Added tokens, special or not, are found in the raw text first (the
//     leftmost-longest match, with their lstrip/rstrip/single_word options)
//     and never split. The post_processor (TemplateProcessing, Roberta,
//     Bert, ByteLevel, Sequence) decides the BOS/EOS that Encode adds,
//     unless tokenizer_config.json sets add_bos_token/add_eos_token, which
//     rebuild it as transformers does. Unsupported components (WordPiece
//     and Unigram models, regex Replace patterns, Split with another regex,
//     NFD/NFKC/NFKD normalizers, ...) give an error at load; the NFC
//     normalizer is taken as the identity (exact for text already in NFC).
//   - GPT-2 style vocab.json + merges.txt: byte-level BPE, "<|endoftext|>"
//     as the special token, no BOS added.
//   - sentencepiece tokenizer.model (the ModelProto is parsed by hand): BPE
//     models with the identity normalizer, as Llama's. Encoding is
//     sentencepiece's (score-ordered merges, ▁ for spaces, dummy prefix,
//     optional removal of extra spaces, byte fallback); Encode adds BOS as
//     transformers' LlamaTokenizer does unless tokenizer_config.json has
//     add_bos_token false. As in sentencepiece, "<s>" in the input is text,
//     and Decode gives no text for control tokens (LlamaTokenizer would
//     match "<s>" in the input and show it when decoding).
//   - llama2.c tokenizer.bin (LoadLlama2C), with llama2.c's encoder.
//
// Decoded text is raw bytes in a Go string: where Hugging Face or
// sentencepiece would put U+FFFD for an invalid UTF-8 sequence (only
// possible when the ids cut a character), Decode keeps the bytes. So
// Decode(EncodeNoSpecial(s)) == s for any bytes s with byte-level BPE, and
// Stream can join the bytes of a character split across tokens. Use
// strings.ToValidUTF8 to get the lossy text. Invalid UTF-8 in the input of
// a sentencepiece model goes to the byte-fallback pieces byte by byte
// (sentencepiece would encode U+FFFD for each invalid byte).
//
// Known divergence: transformers 5 builds its LlamaTokenizer from a
// tokenizer.model as a tokenizers Metaspace pipeline (prepend_scheme
// "first"), which does not add the dummy ▁ to text that already starts with
// a space: " Hello" would give [1, 15043] there, where sentencepiece,
// llama.cpp and this package give [1, 29871, 15043] for the tokenizer.model
// (a tokenizer.json with such a Metaspace pre-tokenizer is followed as it
// is).
//
// All tokenizers are safe for concurrent use. Nothing panics on bad input:
// malformed files give errors naming the file, the field and the token
// index, and any byte string can be encoded.
package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Tokenizer converts between text and token ids.
type Tokenizer interface {
	// Encode tokenizes text and adds the special tokens (BOS, ...) exactly as
	// Hugging Face adds them by default (tokenizer(text)["input_ids"]).
	// Encode("") therefore returns just those special tokens.
	Encode(text string) ([]int, error)
	// EncodeNoSpecial tokenizes text without adding BOS/EOS.
	EncodeNoSpecial(text string) ([]int, error)
	// Decode turns ids back into text like HF decode(ids) with
	// skip_special_tokens=False: special tokens appear as their text. It
	// returns an error naming the index of an id out of range.
	Decode(ids []int) (string, error)
	// VocabSize is the number of ids (the largest id + 1, added tokens
	// included), as HF len(tokenizer).
	VocabSize() int
	// BOS is the beginning-of-sequence id (HF bos_token_id), or -1 if none.
	// Whether Encode adds it depends on the tokenizer (OPT and Llama do,
	// GPT-2 and GPT-J do not); Encode("") shows what is added.
	BOS() int
	// EOS is the end-of-sequence id (HF eos_token_id), or -1 if none.
	EOS() int
	// TokenBytes is the raw bytes that token id contributes when decoded in
	// the middle of a sequence (after the byte-level, ▁ and byte-fallback
	// mappings; a special token gives its text). It is nil for an id out of
	// range. The caller must not modify the result.
	TokenBytes(id int) []byte
}

// decodeState decodes ids one at a time; the concatenation of the results
// is what Decode returns for the whole sequence.
type decodeState interface {
	next(id int) ([]byte, error)
}

// incremental is implemented by the tokenizers whose decoding depends on
// the position in the sequence (leading-space stripping and the like).
type incremental interface {
	newDecodeState() decodeState
}

// errRange reports an id out of range at index i of a sequence.
func errRange(i, id, n int) error {
	return fmt.Errorf("tokenizer: decode: id %d at index %d out of range [0,%d)", id, i, n)
}

// Load loads the tokenizer in dir. It looks, in this order, for a Hugging
// Face tokenizer.json, a sentencepiece tokenizer.model and a GPT-2 style
// vocab.json + merges.txt; tokenizer_config.json (and special_tokens_map.json)
// are read when present for the special tokens and add_bos_token /
// add_eos_token.
func Load(dir string) (Tokenizer, error) {
	cfg, err := readTokenizerConfig(dir)
	if err != nil {
		return nil, err
	}
	if p := filepath.Join(dir, "tokenizer.json"); fileExists(p) {
		return loadHFJSON(p, cfg)
	}
	if p := filepath.Join(dir, "tokenizer.model"); fileExists(p) {
		return loadSPMFile(p, cfg)
	}
	vp, mp := filepath.Join(dir, "vocab.json"), filepath.Join(dir, "merges.txt")
	if fileExists(vp) && fileExists(mp) {
		return loadVocabMerges(vp, mp, cfg)
	}
	return nil, fmt.Errorf("tokenizer: %s has no tokenizer.json, tokenizer.model or vocab.json+merges.txt", dir)
}

// LoadSentencePiece loads a sentencepiece model file (tokenizer.model or
// e.g. tok512.model) directly, with Llama's defaults: BOS added, no EOS.
func LoadSentencePiece(path string) (Tokenizer, error) {
	return loadSPMFile(path, nil)
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// tokenizerConfig is what we use of tokenizer_config.json and
// special_tokens_map.json.
type tokenizerConfig struct {
	file        string
	addBOS      *bool
	addEOS      *bool
	bosToken    *string
	eosToken    *string
	unkToken    *string
	padToken    *string
	cleanUp     bool
	addPrefixSp *bool
	added       []addedToken // added_tokens_decoder
}

// tokenText reads a special token given as a string or as an AddedToken
// object {"content": ...}; null gives nil.
func tokenText(raw json.RawMessage) (*string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return &s, nil
	}
	var o struct {
		Content *string `json:"content"`
	}
	if err := json.Unmarshal(raw, &o); err != nil {
		return nil, err
	}
	return o.Content, nil
}

func readTokenizerConfig(dir string) (*tokenizerConfig, error) {
	cfg := &tokenizerConfig{}
	for _, name := range []string{"special_tokens_map.json", "tokenizer_config.json"} {
		p := filepath.Join(dir, name)
		data, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("tokenizer: %w", err)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(data, &m); err != nil {
			return nil, fmt.Errorf("tokenizer: %s: %w", p, err)
		}
		if name == "tokenizer_config.json" {
			cfg.file = p
		}
		for key, dst := range map[string]**string{"bos_token": &cfg.bosToken, "eos_token": &cfg.eosToken, "unk_token": &cfg.unkToken, "pad_token": &cfg.padToken} {
			raw, ok := m[key]
			if !ok {
				continue
			}
			s, err := tokenText(raw)
			if err != nil {
				return nil, fmt.Errorf("tokenizer: %s: field %q: %w", p, key, err)
			}
			*dst = s
		}
		for key, dst := range map[string]**bool{"add_bos_token": &cfg.addBOS, "add_eos_token": &cfg.addEOS, "add_prefix_space": &cfg.addPrefixSp} {
			raw, ok := m[key]
			if !ok || string(raw) == "null" {
				continue
			}
			var b bool
			if err := json.Unmarshal(raw, &b); err != nil {
				return nil, fmt.Errorf("tokenizer: %s: field %q: %w", p, key, err)
			}
			*dst = &b
		}
		if raw, ok := m["clean_up_tokenization_spaces"]; ok && string(raw) != "null" {
			if err := json.Unmarshal(raw, &cfg.cleanUp); err != nil {
				return nil, fmt.Errorf("tokenizer: %s: field \"clean_up_tokenization_spaces\": %w", p, err)
			}
		}
		if raw, ok := m["added_tokens_decoder"]; ok && string(raw) != "null" {
			var dec map[string]jsonAddedToken
			if err := json.Unmarshal(raw, &dec); err != nil {
				return nil, fmt.Errorf("tokenizer: %s: field \"added_tokens_decoder\": %w", p, err)
			}
			for k, v := range dec {
				var id int
				if _, err := fmt.Sscanf(k, "%d", &id); err != nil || id < 0 {
					return nil, fmt.Errorf("tokenizer: %s: added_tokens_decoder: bad id %q", p, k)
				}
				v.ID = id
				cfg.added = append(cfg.added, v.toAdded())
			}
		}
	}
	return cfg, nil
}

// cleanUpTokenization is transformers' clean_up_tokenization.
func cleanUpTokenization(s string) string {
	// transformers applies the replacements one after another.
	for _, p := range [][2]string{{" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}} {
		s = strings.ReplaceAll(s, p[0], p[1])
	}
	return s
}
