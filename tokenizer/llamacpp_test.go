package tokenizer

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// sharedData is the project's read-only data directory, relative to this
// package's directory.
const sharedData = "../../shared/data"

// dataPath returns a path under shared/data, skipping the test if it is
// missing.
func dataPath(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join(sharedData, rel)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("shared data %s not available: %v", p, err)
	}
	return p
}

// readLlamaCppVectors reads llama.cpp's test-tokenizer-0 files: inputs
// separated by "\n__ggml_vocab_test__\n", one line of ids per input.
func readLlamaCppVectors(t *testing.T, base string) ([]string, [][]int) {
	t.Helper()
	inp, err := os.ReadFile(base + ".inp")
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.ReadFile(base + ".out")
	if err != nil {
		t.Fatal(err)
	}
	// As llama.cpp's read_tests: split on the separator; the file ends with
	// one, which gives no extra case.
	const sep = "\n__ggml_vocab_test__\n"
	var texts []string
	s := string(inp)
	for pos := 0; pos < len(s); {
		next := strings.Index(s[pos:], sep)
		if next < 0 {
			texts = append(texts, s[pos:])
			break
		}
		texts = append(texts, s[pos:pos+next])
		pos += next + len(sep)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(texts) {
		t.Fatalf("%s: %d inputs but %d output lines", base, len(texts), len(lines))
	}
	ids := make([][]int, len(lines))
	for i, l := range lines {
		for _, f := range strings.Fields(l) {
			v, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf("%s.out line %d: %v", base, i+1, err)
			}
			ids[i] = append(ids[i], v)
		}
	}
	return texts, ids
}

func checkVectors(t *testing.T, tok Tokenizer, base string) {
	texts, want := readLlamaCppVectors(t, base)
	for i, text := range texts {
		got, err := tok.EncodeNoSpecial(text)
		if err != nil {
			t.Fatalf("case %d %q: %v", i, text, err)
		}
		if len(got) == 0 && len(want[i]) == 0 {
			continue
		}
		if !reflect.DeepEqual(got, want[i]) {
			t.Errorf("case %d %q:\n got %v\nwant %v", i, text, got, want[i])
		}
	}
	if len(texts) < 40 {
		t.Errorf("only %d cases read from %s", len(texts), base)
	}
}

// TestLlamaCppGPT2 checks the GPT-2 byte-level BPE (vocab.json +
// merges.txt) against llama.cpp's test vectors (tokenized without BOS).
// All cases pass.
func TestLlamaCppGPT2(t *testing.T) {
	dir := dataPath(t, "tokenizers/gpt2")
	tok, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	checkVectors(t, tok, filepath.Join(dir, "ggml-vocab-gpt-2.gguf"))
}

// TestLlamaCppLlamaSPM checks the Llama 2 sentencepiece model against
// llama.cpp's test vectors: llama.cpp tokenizes without BOS and adds the
// dummy-prefix space exactly like sentencepiece (so " " is "▁▁" = 259 and
// "" is no token). All cases pass.
func TestLlamaCppLlamaSPM(t *testing.T) {
	dir := dataPath(t, "tokenizers/llama2")
	tok, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	checkVectors(t, tok, filepath.Join(dir, "ggml-vocab-llama-spm.gguf"))
}
