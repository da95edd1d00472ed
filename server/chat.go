package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nikolalohinski/gonja/v2"
	"github.com/nikolalohinski/gonja/v2/builtins"
	"github.com/nikolalohinski/gonja/v2/config"
	"github.com/nikolalohinski/gonja/v2/exec"
	"github.com/nikolalohinski/gonja/v2/loaders"
)

func init() {
	// gonja logs through logrus at debug level by default; the server logs
	// with slog and wants none of it.
	gonja.SetLoggerOutput(io.Discard)
}

// Message is one chat message as given to the chat template: Role is
// "system", "user", "assistant" or "tool"; Content is its text.
type Message struct {
	Role    string
	Content string
	Name    string // optional participant name
}

// ChatTemplate renders a conversation into a prompt with a Hugging Face
// chat template (a Jinja template, run by gonja with transformers' settings:
// trim_blocks and lstrip_blocks on; the variables messages,
// add_generation_prompt, bos_token and eos_token; the functions
// raise_exception and strftime_now). It is safe for concurrent use.
type ChatTemplate struct {
	src      string
	tpl      *exec.Template
	bos, eos string
	mu       sync.Mutex
}

// errTemplate marks an error raised while rendering (raise_exception or a
// template that fails on the given messages): the request is at fault.
var errTemplate = errors.New("chat template")

// raiseException is the raise_exception(message) function that Hugging Face
// gives chat templates.
func raiseException(msg string) (string, error) {
	return "", fmt.Errorf("%w: %s", errTemplate, msg)
}

// strftimeNow is transformers' strftime_now(format) for templates that print
// today's date; it understands the common strftime directives.
func strftimeNow(format string) string {
	r := strings.NewReplacer("%Y", "2006", "%m", "01", "%d", "02", "%H", "15", "%M", "04",
		"%S", "05", "%b", "Jan", "%B", "January", "%a", "Mon", "%A", "Monday", "%y", "06", "%%", "%")
	return time.Now().Format(r.Replace(format))
}

// NewChatTemplate compiles a Jinja chat template; bos and eos are the texts
// of the bos_token and eos_token variables.
func NewChatTemplate(src, bos, eos string) (*ChatTemplate, error) {
	cfg := config.New()
	cfg.TrimBlocks = true
	cfg.LeftStripBlocks = true
	loader, err := loaders.NewMemoryLoader(map[string]string{"/chat_template": src})
	if err != nil {
		return nil, err
	}
	env := &exec.Environment{
		Context: exec.EmptyContext().
			Update(builtins.GlobalFunctions).
			Update(builtins.GlobalVariables).
			Update(exec.NewContext(map[string]any{
				"raise_exception": raiseException,
				"strftime_now":    strftimeNow,
			})),
		Filters:           builtins.Filters,
		Tests:             builtins.Tests,
		ControlStructures: builtins.ControlStructures,
		Methods:           builtins.Methods,
	}
	tpl, err := exec.NewTemplate("/chat_template", cfg, loader, env)
	if err != nil {
		return nil, fmt.Errorf("server: chat template: %w", err)
	}
	return &ChatTemplate{src: src, tpl: tpl, bos: bos, eos: eos}, nil
}

// Render renders msgs, ending with the assistant's turn opener when
// addGenerationPrompt is set. An error raised by the template
// (raise_exception) is returned as is.
func (c *ChatTemplate) Render(msgs []Message, addGenerationPrompt bool) (out string, err error) {
	list := make([]any, len(msgs))
	for i, m := range msgs {
		d := map[string]any{"role": m.Role, "content": m.Content}
		if m.Name != "" {
			d["name"] = m.Name
		}
		list[i] = d
	}
	ctx := exec.NewContext(map[string]any{
		"messages":              list,
		"add_generation_prompt": addGenerationPrompt,
		"bos_token":             c.bos,
		"eos_token":             c.eos,
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	defer func() {
		if r := recover(); r != nil { // a template engine bug must not take the server down
			out, err = "", fmt.Errorf("%w: rendering failed: %v", errTemplate, r)
		}
	}()
	out, err = c.tpl.ExecuteToString(ctx)
	if err != nil {
		msg := err.Error()
		// Report raise_exception's message without the engine's wrapping.
		if i := strings.Index(msg, errTemplate.Error()+": "); i >= 0 {
			msg = msg[i+len(errTemplate.Error())+2:]
		}
		return "", fmt.Errorf("%w: %s", errTemplate, msg)
	}
	return out, nil
}

// Source is the template text.
func (c *ChatTemplate) Source() string { return c.src }

// FallbackPrompt is the plain chat format used when the model has no chat
// template: one "role: content" line per message, then "assistant:" for the
// model to continue. It is tokenized with the tokenizer's default special
// tokens (BOS for OPT and Llama), like a completion prompt.
func FallbackPrompt(msgs []Message) string {
	var b strings.Builder
	for _, m := range msgs {
		b.WriteString(m.Role)
		b.WriteString(": ")
		b.WriteString(m.Content)
		b.WriteByte('\n')
	}
	b.WriteString("assistant:")
	return b.String()
}

// LoadChatTemplate reads the chat template of a Hugging Face model
// directory: chat_template.jinja when present, else the chat_template of
// tokenizer_config.json (a string, or a list of {name, template} from which
// "default" is taken). It returns nil and no error when there is none (or
// when dir is not a directory, as for a llama2.c checkpoint).
func LoadChatTemplate(dir string) (*ChatTemplate, error) {
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, nil
	}
	var tc struct {
		ChatTemplate json.RawMessage `json:"chat_template"`
		BOS          json.RawMessage `json:"bos_token"`
		EOS          json.RawMessage `json:"eos_token"`
	}
	cfgPath := filepath.Join(dir, "tokenizer_config.json")
	if b, err := os.ReadFile(cfgPath); err == nil {
		if err := json.Unmarshal(b, &tc); err != nil {
			return nil, fmt.Errorf("server: %s: %w", cfgPath, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("server: %w", err)
	}
	src := ""
	if b, err := os.ReadFile(filepath.Join(dir, "chat_template.jinja")); err == nil {
		src = string(b)
	} else if len(tc.ChatTemplate) > 0 && string(tc.ChatTemplate) != "null" {
		if err := json.Unmarshal(tc.ChatTemplate, &src); err != nil {
			var named []struct {
				Name     string `json:"name"`
				Template string `json:"template"`
			}
			if err2 := json.Unmarshal(tc.ChatTemplate, &named); err2 != nil {
				return nil, fmt.Errorf("server: %s: chat_template is neither a string nor a list of {name, template}", cfgPath)
			}
			for _, n := range named {
				if n.Name == "default" {
					src = n.Template
				}
			}
			if src == "" && len(named) > 0 {
				src = named[0].Template
			}
		}
	}
	if src == "" {
		return nil, nil
	}
	return NewChatTemplate(src, tokenText(tc.BOS), tokenText(tc.EOS))
}

// tokenText reads a special token of tokenizer_config.json given as a
// string or as an AddedToken object {"content": ...}.
func tokenText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var o struct {
		Content string `json:"content"`
	}
	if json.Unmarshal(raw, &o) == nil {
		return o.Content
	}
	return ""
}
