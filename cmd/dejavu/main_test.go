package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"dejavu/internal/fixture"
)

const shared = "../../../shared/data"

// run executes the CLI in-process and returns stdout.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func needShared(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(shared); err != nil {
		t.Skip("../shared/data is not present")
	}
}

func readRef(t *testing.T, path string) ([]int, []float32) {
	t.Helper()
	ids, logits, err := fixture.Logits(path)
	if err != nil {
		t.Fatal(err)
	}
	return ids, logits
}

func joinIDs(ids []int) string {
	s := make([]string, len(ids))
	for i, v := range ids {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}

// checkLogitsJSON compares the command's output with transformers' logits:
// max |ours - theirs| ≤ 1e-4 × max |theirs| in every row.
func checkLogitsJSON(t *testing.T, what, out string, want []float32) {
	t.Helper()
	var got struct{ Logits [][]float32 }
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%s: output is not JSON: %v", what, err)
	}
	if len(got.Logits) == 0 {
		t.Fatalf("%s: no rows", what)
	}
	V := len(got.Logits[0])
	if len(got.Logits)*V != len(want) {
		t.Fatalf("%s: %d rows of %d, want %d values", what, len(got.Logits), V, len(want))
	}
	flat := make([]float32, 0, len(want))
	for _, row := range got.Logits {
		flat = append(flat, row...)
	}
	if r, d, ref := fixture.RowError(flat, want, V, 1e-4); r >= 0 {
		t.Errorf("%s row %d: max|diff| %.3g > 1e-4 × %.3g", what, r, d, ref)
	}
}

func TestLogitsCommand(t *testing.T) {
	for _, name := range []string{"opt-projinout", "llama3-rope", "qwen2-bias"} {
		ids, want := readRef(t, filepath.Join("..", "..", "testdata", "logits", name+".safetensors"))
		dir := filepath.Join("..", "..", "testdata", "models", name)
		for _, mode := range [][]string{nil, {"--decode"}} {
			out, err := run(t, append([]string{"logits", "--model", dir, "--ids", joinIDs(ids)}, mode...)...)
			if err != nil {
				t.Fatalf("%s %v: %v", name, mode, err)
			}
			checkLogitsJSON(t, name+strings.Join(mode, ""), out, want)
		}
	}
}

func TestTestbedLogitsCommand(t *testing.T) {
	needShared(t)
	for _, name := range []string{"testbed-opt-relu", "testbed-llama-relu"} {
		ids, want := readRef(t, filepath.Join("..", "..", "testdata", "testbed", name+".logits.safetensors"))
		for _, mode := range [][]string{nil, {"--decode"}} {
			out, err := run(t, append([]string{"logits", "--model", filepath.Join(shared, "models", name), "--ids", joinIDs(ids)}, mode...)...)
			if err != nil {
				t.Fatal(err)
			}
			checkLogitsJSON(t, name+strings.Join(mode, ""), out, want)
		}
	}
}

func TestCommandErrors(t *testing.T) {
	tiny := filepath.Join("..", "..", "testdata", "models", "opt-preln")
	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, "config.json"), []byte(`{"architectures":["GPTNeoXForCausalLM"]}`), 0o644)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"logits", "--model", tiny, "--ids", "1,999"}, "outside the vocabulary"},
		{[]string{"logits", "--model", tiny, "--ids", "1,x"}, "not an integer"},
		{[]string{"logits", "--model", filepath.Join(bad, "missing"), "--ids", "1"}, "no such file"},
		{[]string{"logits", "--model", bad, "--ids", "1"}, "GPTNeoXForCausalLM"},
		{[]string{"logits", "--model", tiny, "--ids", strings.Repeat("1,", 64) + "1"}, "exceed the context"},
	}
	for _, c := range cases {
		_, err := run(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want one mentioning %q", c.args, err, c.want)
		}
	}
}

func TestGenerateJSONGreedy(t *testing.T) {
	needShared(t)
	var ref struct {
		Runs []struct {
			Prompt    string `json:"prompt"`
			PromptIDs []int  `json:"prompt_ids"`
			OutputIDs []int  `json:"output_ids"`
			Text      string `json:"text"`
		} `json:"runs"`
	}
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "testbed", "testbed-llama-relu.json"))
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(b, &ref)
	r := ref.Runs[0]
	out, err := run(t, "generate", "--model", filepath.Join(shared, "models", "testbed-llama-relu"),
		"--prompt", r.Prompt, "-n", strconv.Itoa(len(r.OutputIDs)), "--temperature", "0", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		PromptIDs []int  `json:"prompt_ids"`
		OutputIDs []int  `json:"output_ids"`
		Text      string `json:"text"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	if !slices.Equal(got.PromptIDs, r.PromptIDs) || !slices.Equal(got.OutputIDs, r.OutputIDs) || got.Text != r.Text {
		t.Errorf("generate --json = %+v\ntransformers: %+v", got, r)
	}
	// Streaming output: the prompt, then the same text.
	out, err = run(t, "generate", "--model", filepath.Join(shared, "models", "testbed-llama-relu"),
		"--prompt", r.Prompt, "-n", strconv.Itoa(len(r.OutputIDs)), "--temperature", "0")
	if err != nil {
		t.Fatal(err)
	}
	if out != r.Prompt+r.Text+"\n" {
		t.Errorf("streamed %q, want %q", out, r.Prompt+r.Text+"\n")
	}
}

func TestTokenizeCommand(t *testing.T) {
	needShared(t)
	dir := filepath.Join(shared, "models", "testbed-opt-relu")
	out, err := run(t, "tokenize", "--model", dir, "--text", "Hello world")
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ IDs []int }
	if err := json.Unmarshal([]byte(out), &got); err != nil || len(got.IDs) == 0 || got.IDs[0] != 2 {
		t.Fatalf("tokenize = %q (%v): want ids starting with OPT's </s> = 2", out, err)
	}
	out, err = run(t, "tokenize", "--model", dir, "--decode", "--text", joinIDs(got.IDs[1:]))
	if err != nil || out != "Hello world" {
		t.Fatalf("tokenize --decode = %q, %v", out, err)
	}
	if _, err := run(t, "tokenize", "--model", dir, "--decode", "--text", "1,99999"); err == nil {
		t.Error("decode of an id outside the vocabulary: no error")
	}
}
