package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"dejavu"
	"dejavu/generate"
)

// maxStops is how many stop strings a request may give (OpenAI's limit).
const maxStops = 4

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// commonRequest holds the fields completions and chat completions share.
type commonRequest struct {
	Model            *string         `json:"model"`
	MaxTokens        *int            `json:"max_tokens"`
	Temperature      *float64        `json:"temperature"`
	TopP             *float64        `json:"top_p"`
	TopK             *int            `json:"top_k"` // an extension, as in vLLM and llama.cpp
	Seed             *int64          `json:"seed"`
	Stop             json.RawMessage `json:"stop"`
	N                *int            `json:"n"`
	Stream           *bool           `json:"stream"`
	StreamOptions    *streamOptions  `json:"stream_options"`
	Logprobs         json.RawMessage `json:"logprobs"`
	PresencePenalty  *float64        `json:"presence_penalty"`
	FrequencyPenalty *float64        `json:"frequency_penalty"`
}

type completionRequest struct {
	commonRequest
	Prompt json.RawMessage `json:"prompt"`
	Echo   *bool           `json:"echo"`
	Suffix *string         `json:"suffix"`
	BestOf *int            `json:"best_of"`
}

type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
	Name    string          `json:"name"`
}

type chatRequest struct {
	commonRequest
	Messages            []chatMessage   `json:"messages"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Tools               json.RawMessage `json:"tools"`
	ResponseFormat      *struct {
		Type string `json:"type"`
	} `json:"response_format"`
}

// job is a validated request, ready to generate.
type job struct {
	id, object   string
	chat         bool
	ids          []int
	maxTokens    int
	sampling     generate.Options
	stops        []string
	stream       bool
	includeUsage bool
	start        time.Time
}

// usage is OpenAI's token accounting.
type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// common validates the fields both endpoints share. maxTokens is the
// request's max_tokens (or max_completion_tokens), nil if absent.
func (s *Server) common(c *commonRequest, j *job, maxTokens *int) error {
	if c.Model == nil || *c.Model == "" {
		return invalid("model", "missing_required_parameter", "you must provide a model parameter (this server serves %q)", s.id)
	}
	if *c.Model != s.id {
		return s.unknownModel(*c.Model)
	}
	if c.N != nil && *c.N != 1 {
		return invalid("n", "invalid_value", "n must be 1 (got %d): this server makes one choice per request", *c.N)
	}
	if len(c.Logprobs) > 0 && string(c.Logprobs) != "null" && string(c.Logprobs) != "false" && string(c.Logprobs) != "0" {
		return invalid("logprobs", "unsupported_parameter", "logprobs are not supported")
	}
	if c.PresencePenalty != nil && *c.PresencePenalty != 0 {
		return invalid("presence_penalty", "unsupported_parameter", "presence_penalty is not supported (only 0)")
	}
	if c.FrequencyPenalty != nil && *c.FrequencyPenalty != 0 {
		return invalid("frequency_penalty", "unsupported_parameter", "frequency_penalty is not supported (only 0)")
	}
	j.sampling = generate.Options{Temperature: 1, TopP: 1}
	if t := c.Temperature; t != nil {
		if math.IsNaN(*t) || *t < 0 || *t > 2 {
			return invalid("temperature", "invalid_value", "temperature must be between 0 and 2, got %v", *t)
		}
		j.sampling.Temperature = *t
	}
	if p := c.TopP; p != nil {
		if math.IsNaN(*p) || *p < 0 || *p > 1 {
			return invalid("top_p", "invalid_value", "top_p must be between 0 and 1, got %v", *p)
		}
		j.sampling.TopP = *p
		if *p == 0 { // the smallest set with probability ≥ 0 is the most likely token
			j.sampling.Temperature = 0
		}
	}
	if k := c.TopK; k != nil {
		if *k < 0 {
			return invalid("top_k", "invalid_value", "top_k must be ≥ 0 (0: all tokens), got %d", *k)
		}
		j.sampling.TopK = *k
	}
	if c.Seed != nil {
		j.sampling.Seed = uint64(*c.Seed)
	} else {
		j.sampling.Seed = rand.Uint64()
	}
	stops, err := parseStop(c.Stop)
	if err != nil {
		return err
	}
	j.stops = stops
	if maxTokens != nil {
		if *maxTokens < 1 || *maxTokens > s.ctxMax {
			return invalid("max_tokens", "invalid_value", "max_tokens must be between 1 and the context size %d, got %d", s.ctxMax, *maxTokens)
		}
		j.maxTokens = *maxTokens
	}
	j.stream = c.Stream != nil && *c.Stream
	if c.StreamOptions != nil {
		if !j.stream {
			return invalid("stream_options", "invalid_value", "stream_options is only allowed with stream: true")
		}
		j.includeUsage = c.StreamOptions.IncludeUsage
	}
	return nil
}

// parseStop reads stop: null, a string or a list of at most 4 strings.
// Empty strings are dropped.
func parseStop(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var list []*string
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		list = []*string{&one}
	} else if err := json.Unmarshal(raw, &list); err != nil {
		return nil, invalid("stop", "invalid_type", "stop must be a string or a list of strings")
	}
	if len(list) > maxStops {
		return nil, invalid("stop", "invalid_value", "stop may hold at most %d strings, got %d", maxStops, len(list))
	}
	var out []string
	for _, s := range list {
		if s == nil {
			return nil, invalid("stop", "invalid_type", "stop must be a string or a list of strings (found null in the list)")
		}
		if *s != "" {
			out = append(out, *s)
		}
	}
	return out, nil
}

// fit checks that the prompt fits the context and settles max_tokens:
// absent, it is def (0: all the room left), clipped to the room left.
func (s *Server) fit(j *job, param string, def int) error {
	n := len(j.ids)
	if n == 0 {
		return invalid(param, "invalid_value", "the prompt is empty (this tokenizer adds no special token): give some text")
	}
	room := s.ctxMax - n
	if room < 1 {
		return invalid(param, "context_length_exceeded",
			"this model's maximum context length is %d tokens, but the prompt has %d tokens (room must remain for at least one generated token)", s.ctxMax, n)
	}
	switch {
	case j.maxTokens > room:
		return invalid("max_tokens", "context_length_exceeded",
			"this model's maximum context length is %d tokens, but %d tokens were requested (%d in the prompt, %d for the completion): lower max_tokens or shorten the prompt",
			s.ctxMax, n+j.maxTokens, n, j.maxTokens)
	case j.maxTokens == 0 && (def <= 0 || def > room):
		j.maxTokens = room
	case j.maxTokens == 0:
		j.maxTokens = def
	}
	return nil
}

// promptIDs tokenizes a completion prompt: a string, a list of token ids,
// or a list holding one of these (one prompt per request).
func (s *Server) promptIDs(raw json.RawMessage) ([]int, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, invalid("prompt", "missing_required_parameter", "you must provide a prompt")
	}
	var text string
	if json.Unmarshal(raw, &text) == nil {
		return s.encode(text, "prompt", true)
	}
	var ids []int
	if json.Unmarshal(raw, &ids) == nil {
		return s.checkIDs(ids)
	}
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) != nil {
		return nil, invalid("prompt", "invalid_type", "prompt must be a string, a list of token ids, or a list holding one of these")
	}
	if len(list) != 1 {
		return nil, invalid("prompt", "invalid_value", "give one prompt per request (got %d)", len(list))
	}
	if json.Unmarshal(list[0], &text) == nil {
		return s.encode(text, "prompt", true)
	}
	if json.Unmarshal(list[0], &ids) == nil {
		return s.checkIDs(ids)
	}
	return nil, invalid("prompt", "invalid_type", "prompt must be a string, a list of token ids, or a list holding one of these")
}

func (s *Server) checkIDs(ids []int) ([]int, error) {
	for i, id := range ids {
		if id < 0 || id >= s.m.Cfg.Vocab {
			return nil, invalid("prompt", "invalid_value", "token id %d at index %d is outside the vocabulary [0, %d)", id, i, s.m.Cfg.Vocab)
		}
	}
	return ids, nil
}

func (s *Server) encode(text, param string, special bool) ([]int, error) {
	var ids []int
	var err error
	if special {
		ids, err = s.m.Tok.Encode(text)
	} else {
		ids, err = s.m.Tok.EncodeNoSpecial(text)
	}
	if err != nil {
		return nil, invalid(param, "invalid_value", "tokenizing the prompt: %v", err)
	}
	return ids, nil
}

func (s *Server) handleCompletions(w http.ResponseWriter, r *http.Request) {
	j := &job{id: newID("cmpl-"), object: "text_completion", start: time.Now()}
	info := infoFrom(r.Context())
	info.id = j.id
	var req completionRequest
	err := s.readJSON(w, r, &req)
	if err == nil {
		info.model = deref(req.Model)
		err = s.completionJob(&req, j)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	info.stream = j.stream
	s.serve(w, r, j)
}

func (s *Server) completionJob(req *completionRequest, j *job) error {
	if err := s.common(&req.commonRequest, j, req.MaxTokens); err != nil {
		return err
	}
	if req.Echo != nil && *req.Echo {
		return invalid("echo", "unsupported_parameter", "echo is not supported")
	}
	if req.Suffix != nil && *req.Suffix != "" {
		return invalid("suffix", "unsupported_parameter", "suffix is not supported")
	}
	if req.BestOf != nil && *req.BestOf != 1 {
		return invalid("best_of", "invalid_value", "best_of must be 1")
	}
	ids, err := s.promptIDs(req.Prompt)
	if err != nil {
		return err
	}
	j.ids = ids
	return s.fit(j, "prompt", 16) // OpenAI's default max_tokens for completions
}

func (s *Server) handleChat(w http.ResponseWriter, r *http.Request) {
	j := &job{id: newID("chatcmpl-"), object: "chat.completion", chat: true, start: time.Now()}
	info := infoFrom(r.Context())
	info.id = j.id
	var req chatRequest
	err := s.readJSON(w, r, &req)
	if err == nil {
		info.model = deref(req.Model)
		err = s.chatJob(&req, j)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	info.stream = j.stream
	s.serve(w, r, j)
}

func (s *Server) chatJob(req *chatRequest, j *job) error {
	mt := req.MaxTokens
	if req.MaxCompletionTokens != nil {
		if mt != nil && *mt != *req.MaxCompletionTokens {
			return invalid("max_completion_tokens", "invalid_value", "max_tokens and max_completion_tokens differ: give one")
		}
		mt = req.MaxCompletionTokens
	}
	if err := s.common(&req.commonRequest, j, mt); err != nil {
		return err
	}
	if len(req.Tools) > 0 && string(req.Tools) != "null" && string(req.Tools) != "[]" {
		return invalid("tools", "unsupported_parameter", "tools are not supported")
	}
	if rf := req.ResponseFormat; rf != nil && rf.Type != "" && rf.Type != "text" {
		return invalid("response_format", "unsupported_parameter", "response_format %q is not supported (only text)", rf.Type)
	}
	msgs, err := chatMessages(req.Messages)
	if err != nil {
		return err
	}
	if s.chat != nil {
		text, err := s.chat.Render(msgs, true)
		if err != nil {
			return invalid("messages", "invalid_value", "%v", err)
		}
		if j.ids, err = s.encode(text, "messages", false); err != nil {
			return err
		}
	} else if j.ids, err = s.encode(FallbackPrompt(msgs), "messages", true); err != nil {
		return err
	}
	return s.fit(j, "messages", 0) // OpenAI's default: as many tokens as fit
}

// chatMessages checks the messages and reads their content: a string, or
// a list of parts of which only {"type":"text","text":...} is supported
// (joined with newlines). "developer" is taken as "system".
func chatMessages(in []chatMessage) ([]Message, error) {
	if len(in) == 0 {
		return nil, invalid("messages", "invalid_value", "messages must hold at least one message")
	}
	out := make([]Message, len(in))
	for i, m := range in {
		p := fmt.Sprintf("messages[%d]", i)
		switch m.Role {
		case "system", "user", "assistant", "tool":
		case "developer":
			m.Role = "system"
		case "":
			return nil, invalid(p+".role", "missing_required_parameter", "%s has no role", p)
		default:
			return nil, invalid(p+".role", "invalid_value", "%s.role %q is not one of system, developer, user, assistant, tool", p, m.Role)
		}
		var content string
		if len(m.Content) > 0 && string(m.Content) != "null" {
			if err := json.Unmarshal(m.Content, &content); err != nil {
				var parts []struct {
					Type string  `json:"type"`
					Text *string `json:"text"`
				}
				if json.Unmarshal(m.Content, &parts) != nil {
					return nil, invalid(p+".content", "invalid_type", "%s.content must be a string or a list of text parts", p)
				}
				var texts []string
				for k, part := range parts {
					if part.Type != "text" || part.Text == nil {
						return nil, invalid(fmt.Sprintf("%s.content[%d]", p, k), "unsupported_parameter",
							"%s.content[%d]: only text parts are supported (got type %q)", p, k, part.Type)
					}
					texts = append(texts, *part.Text)
				}
				content = strings.Join(texts, "\n")
			}
		} else if m.Role != "assistant" {
			return nil, invalid(p+".content", "missing_required_parameter", "%s has no content", p)
		}
		out[i] = Message{Role: m.Role, Content: content, Name: m.Name}
	}
	return out, nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// errStopString ends a generation that produced a stop string.
var errStopString = errors.New("stop string")

// serve waits for a generation slot and answers j, streamed or not.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, j *job) {
	ctx := r.Context()
	info := infoFrom(ctx)
	release, err := s.admit(ctx)
	info.queued = time.Since(j.start)
	if err != nil {
		if errors.Is(err, errBusy) {
			s.writeError(w, r, &APIError{Status: http.StatusTooManyRequests, Type: typeRateLimit, Code: strPtr("server_busy"),
				Message: fmt.Sprintf("the server is busy (%d generations running and %d waiting): retry later", s.cfg.Parallel, s.cfg.Queue)})
		} else {
			info.canceled = true
		}
		return
	}
	defer release()
	if !s.gens.add() {
		s.writeError(w, r, &APIError{Status: http.StatusServiceUnavailable, Type: typeUnavailable, Message: "the server is stopping"})
		return
	}
	defer s.gens.done()
	if j.stream {
		s.serveStream(w, r, j)
		return
	}
	var text strings.Builder
	out, err := s.run(ctx, j, func(t string) error {
		text.WriteString(t)
		return nil
	})
	if err != nil {
		if ctx.Err() != nil {
			info.canceled = true
			return
		}
		s.writeError(w, r, err)
		return
	}
	choice := map[string]any{"index": 0, "logprobs": nil, "finish_reason": out.finish}
	if j.chat {
		choice["message"] = map[string]any{"role": "assistant", "content": text.String()}
	} else {
		choice["text"] = text.String()
	}
	s.writeJSON(w, http.StatusOK, map[string]any{
		"id": j.id, "object": j.object, "created": j.start.Unix(), "model": s.id,
		"choices": []any{choice}, "usage": out.usage,
	})
}

// outcome is how a generation ended.
type outcome struct {
	finish string // "stop" (EOS or a stop string) or "length"
	usage  usage
}

// run generates j, passing the text to emit in pieces (valid UTF-8, stop
// strings cut off) and records the metrics.
func (s *Server) run(ctx context.Context, j *job, emit func(string) error) (outcome, error) {
	info := infoFrom(ctx)
	st := &stopper{stops: j.stops, emit: emit}
	t0 := time.Now()
	var sel dejavu.Selector
	if s.cfg.NewSelector != nil {
		sel = s.cfg.NewSelector()
	}
	res, err := s.m.GenerateIDs(ctx, j.ids, dejavu.GenerateOptions{
		MaxTokens: j.maxTokens,
		Sampling:  j.sampling,
		Context:   len(j.ids) + j.maxTokens,
		OnText:    func(t string) error { return st.write(validUTF8(t)) },
		Selector:  sel,
	})
	if res != nil && sel != nil && res.Density.Tokens > 0 {
		s.met.density.WithLabelValues("mlp").Set(res.Density.MLP())
		s.met.density.WithLabelValues("heads").Set(res.Density.Heads())
	}
	var out outcome
	if res != nil {
		n := len(res.OutputIDs)
		out.usage = usage{PromptTokens: len(res.PromptIDs), CompletionTokens: n, TotalTokens: len(res.PromptIDs) + n}
		s.met.promptTok.Add(float64(len(res.PromptIDs)))
		s.met.outTok.Add(float64(n))
		info.promptTok, info.outTok, info.haveTokens = out.usage.PromptTokens, n, true
		if n > 0 {
			info.ttft, info.haveTTFT = t0.Sub(j.start)+res.PromptTime, true
			s.met.ttft.Observe(info.ttft.Seconds())
			s.met.msPerToken.Observe(ms(time.Since(t0)-res.PromptTime) / float64(n))
		}
	}
	switch {
	case errors.Is(err, errStopString):
		out.finish = "stop"
	case err != nil:
		return out, err
	case res.Stop == "eos":
		out.finish = "stop"
	default: // "length", or "context" (the room left was max_tokens)
		out.finish = "length"
	}
	if err == nil {
		if err := st.flush(); err != nil {
			return out, err
		}
	}
	info.finish = out.finish
	return out, nil
}
