package server

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestChatTemplates renders typical Hugging Face chat templates and compares
// with what jinja2 renders under transformers' settings
// (testdata/chat_templates.json, made by testdata/gen_chat_templates.py).
func TestChatTemplates(t *testing.T) {
	b, err := os.ReadFile("testdata/chat_templates.json")
	if err != nil {
		t.Fatal(err)
	}
	var fx struct {
		Templates map[string]string `json:"templates"`
		Cases     map[string][]struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"cases"`
		Renders []struct {
			Template            string  `json:"template"`
			Case                string  `json:"case"`
			AddGenerationPrompt bool    `json:"add_generation_prompt"`
			Output              *string `json:"output"`
			Error               string  `json:"error"`
		} `json:"renders"`
	}
	if err := json.Unmarshal(b, &fx); err != nil {
		t.Fatal(err)
	}
	tpls := map[string]*ChatTemplate{}
	for name, src := range fx.Templates {
		ct, err := NewChatTemplate(src, "<s>", "</s>")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		tpls[name] = ct
	}
	for _, r := range fx.Renders {
		var msgs []Message
		for _, m := range fx.Cases[r.Case] {
			msgs = append(msgs, Message{Role: m.Role, Content: m.Content})
		}
		got, err := tpls[r.Template].Render(msgs, r.AddGenerationPrompt)
		name := r.Template + "/" + r.Case
		if r.AddGenerationPrompt {
			name += "/gen"
		}
		if r.Output == nil {
			if err == nil || !errors.Is(err, errTemplate) || !strings.Contains(err.Error(), r.Error) {
				t.Errorf("%s: want error %q, got %q, %v", name, r.Error, got, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
		} else if got != *r.Output {
			t.Errorf("%s:\n got %q\nwant %q", name, got, *r.Output)
		}
	}
}

func TestChatTemplateConcurrent(t *testing.T) {
	ct, err := NewChatTemplate("{{ bos_token }}{% for m in messages %}{{ m.role }}={{ m.content }};{% endfor %}", "<s>", "")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 50 {
				got, err := ct.Render([]Message{{Role: "user", Content: strings.Repeat("x", i)}}, true)
				if want := "<s>user=" + strings.Repeat("x", i) + ";"; err != nil || got != want {
					t.Errorf("got %q, %v; want %q", got, err, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestLoadChatTemplate(t *testing.T) {
	dir := t.TempDir()
	if ct, err := LoadChatTemplate(dir); ct != nil || err != nil {
		t.Fatalf("empty dir: %v, %v", ct, err)
	}
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	msgs := []Message{{Role: "user", Content: "hi"}}
	// A string template with AddedToken-style special tokens.
	write("tokenizer_config.json", `{"bos_token":{"content":"<s>"},"eos_token":"</s>","chat_template":"{{ bos_token }}{{ messages[0].content }}{{ eos_token }}"}`)
	ct, err := LoadChatTemplate(dir)
	if err != nil || ct == nil {
		t.Fatalf("string template: %v, %v", ct, err)
	}
	if got, _ := ct.Render(msgs, true); got != "<s>hi</s>" {
		t.Errorf("string template: %q", got)
	}
	// A list of named templates: "default" is used.
	write("tokenizer_config.json", `{"chat_template":[{"name":"tool_use","template":"T"},{"name":"default","template":"D{{ messages|length }}"}]}`)
	if ct, err = LoadChatTemplate(dir); err != nil || ct == nil {
		t.Fatalf("named templates: %v, %v", ct, err)
	}
	if got, _ := ct.Render(msgs, true); got != "D1" {
		t.Errorf("named templates: %q", got)
	}
	// chat_template.jinja wins.
	write("chat_template.jinja", "J{% if add_generation_prompt %}>{% endif %}")
	if ct, err = LoadChatTemplate(dir); err != nil || ct == nil {
		t.Fatalf("jinja file: %v, %v", ct, err)
	}
	if got, _ := ct.Render(msgs, true); got != "J>" {
		t.Errorf("jinja file: %q", got)
	}
	// A broken template is an error at load time.
	write("chat_template.jinja", "{% for %}")
	if _, err = LoadChatTemplate(dir); err == nil {
		t.Errorf("broken template loaded")
	}
}

func TestFallbackPrompt(t *testing.T) {
	got := FallbackPrompt([]Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "Hi"}})
	if want := "system: Be brief.\nuser: Hi\nassistant:"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
