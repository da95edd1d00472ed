package dejavu

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"dejavu/cuda"
	"dejavu/generate"
)

const shared = "../shared/data"

func needShared(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(shared); err != nil {
		t.Skip("../shared/data is not present")
	}
}

// TestTestbedGreedyMatchesTransformers replays transformers' greedy
// generations (testdata/testbed/*.json, float32) on the real test-bed models.
func TestTestbedGreedyMatchesTransformers(t *testing.T) {
	needShared(t)
	for _, name := range []string{"testbed-opt-relu", "testbed-llama-relu"} {
		var ref struct {
			MaxNewTokens int `json:"max_new_tokens"`
			Runs         []struct {
				Prompt    string `json:"prompt"`
				PromptIDs []int  `json:"prompt_ids"`
				OutputIDs []int  `json:"output_ids"`
				Text      string `json:"text"`
			} `json:"runs"`
		}
		b, err := os.ReadFile(filepath.Join("testdata", "testbed", name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &ref); err != nil {
			t.Fatal(err)
		}
		m, err := Load(filepath.Join(shared, "models", name), Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range ref.Runs {
			res, err := m.Generate(context.Background(), r.Prompt, GenerateOptions{MaxTokens: ref.MaxNewTokens})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(res.PromptIDs, r.PromptIDs) {
				t.Errorf("%s %q: prompt ids %v, transformers %v", name, r.Prompt, res.PromptIDs, r.PromptIDs)
			}
			if !slices.Equal(res.OutputIDs, r.OutputIDs) {
				t.Errorf("%s %q: greedy ids\n%v\ntransformers\n%v", name, r.Prompt, res.OutputIDs, r.OutputIDs)
			}
			if res.Text != r.Text {
				t.Errorf("%s %q: text %q, transformers %q", name, r.Prompt, res.Text, r.Text)
			}
		}
		m.Close()
	}
}

// TestStories260K checks the documented greedy opening of llama2.c's model.
func TestStories260K(t *testing.T) {
	needShared(t)
	dir := filepath.Join(shared, "models", "stories260K")
	m, err := Load(filepath.Join(dir, "stories260K.bin"), Options{Tokenizer: filepath.Join(dir, "tok512.bin")})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	res, err := m.Generate(context.Background(), "", GenerateOptions{MaxTokens: 40, Sampling: generate.Options{}})
	if err != nil {
		t.Fatal(err)
	}
	const want = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park."
	if !strings.HasPrefix(res.Text, want) {
		t.Fatalf("stories260K greedy: %q, want it to begin %q", res.Text, want)
	}
}

func TestGenerateStreamsAndStops(t *testing.T) {
	needShared(t)
	m, err := Load(filepath.Join(shared, "models", "testbed-opt-relu"), Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var streamed strings.Builder
	o := GenerateOptions{MaxTokens: 20, Sampling: generate.Options{Temperature: 0.9, TopK: 50, TopP: 0.95, Seed: 3},
		OnText: func(s string) error { streamed.WriteString(s); return nil }}
	a, err := m.Generate(context.Background(), "The river", o)
	if err != nil {
		t.Fatal(err)
	}
	if streamed.String() != a.Text {
		t.Errorf("streamed %q, result text %q", streamed.String(), a.Text)
	}
	o.OnText = nil
	b, err := m.Generate(context.Background(), "The river", o)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.OutputIDs, b.OutputIDs) || len(a.OutputIDs) != 20 {
		t.Errorf("same seed: %v then %v (want 20 equal ids)", a.OutputIDs, b.OutputIDs)
	}
	// A context that is too small for the prompt is an error, not a truncation.
	if _, err := m.Generate(context.Background(), "The river flows to the sea", GenerateOptions{Context: 3}); err == nil {
		t.Error("prompt longer than the context: no error")
	}
	// Generation stops when the cache is full.
	c, err := m.Generate(context.Background(), "The river", GenerateOptions{Context: 8, MaxTokens: 100})
	if err != nil {
		t.Fatal(err)
	}
	if c.Stop != "context" && c.Stop != "eos" {
		t.Errorf("stop %q, want context", c.Stop)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Generate(ctx, "The river", GenerateOptions{MaxTokens: 5}); err == nil {
		t.Error("cancelled context: no error")
	}
}

func TestParseDevice(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int
		ok   bool
	}{{"", -1, true}, {"cpu", -1, true}, {"cuda", 0, true}, {"cuda:3", 3, true}, {"cuda:-1", 0, false}, {"gpu", 0, false}, {"cuda:x", 0, false}} {
		got, err := ParseDevice(c.in)
		if (err == nil) != c.ok || c.ok && got != c.want {
			t.Errorf("ParseDevice(%q) = %d, %v; want %d (ok %v)", c.in, got, err, c.want, c.ok)
		}
	}
}

// TestDeviceCUDAWithoutGPU: where no CUDA driver is present, asking for the
// GPU fails at Load with an error that says why, and nothing else breaks.
func TestDeviceCUDAWithoutGPU(t *testing.T) {
	if err := cuda.Available(); err == nil {
		t.Skip("a CUDA GPU is present: the cuda package's tests cover it")
	}
	dir := filepath.Join(shared, "models", "testbed-opt-relu")
	if _, err := os.Stat(dir); err != nil {
		t.Skip("../shared/data is not present")
	}
	if _, err := Load(dir, Options{Device: "cuda"}); err == nil || !strings.Contains(err.Error(), "cuda") {
		t.Fatalf("Load with Device cuda and no GPU: %v, want an error naming cuda", err)
	}
}
