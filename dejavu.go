// Package dejavu is the library's front door: load a model with its
// tokenizer and generate text, in pure Go without cgo.
//
//	m, err := dejavu.Load("path/to/model", dejavu.Options{})
//	defer m.Close()
//	res, err := m.Generate(ctx, "Once upon a time", dejavu.GenerateOptions{MaxTokens: 32})
package dejavu

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"dejavu/cuda"
	"dejavu/generate"
	"dejavu/kernels"
	"dejavu/model"
	"dejavu/sparsity"
	"dejavu/tokenizer"
)

// Selector chooses the neurons and heads of sparse decode steps; trained
// predictors (LoadPredictors) are one.
type Selector = model.Selector

// Options configure Load.
type Options struct {
	// Threads is the number of worker threads (≤ 0: one per CPU).
	Threads int
	// Tokenizer names the tokenizer of a llama2.c checkpoint (a tokenizer.bin);
	// empty means tokenizer.bin beside the checkpoint. Model directories
	// carry their own tokenizer files.
	Tokenizer string
	// Device is where sequences run: "cpu" (the default when empty),
	// "cuda" (GPU 0) or "cuda:N". On a GPU the weights are uploaded once as
	// f16; the CUDA driver and cuBLAS are loaded at run time.
	Device string
}

// Sequence is one sequence's KV cache and forward pass, on the CPU
// (*model.Session) or on a GPU (*cuda.Session): Forward appends ids and
// returns next-token logits (all rows, or the last one).
type Sequence interface {
	Forward(ids []int, all bool) ([]float32, error)
	Truncate(n int)
	Reset()
	Pos() int
	MaxCtx() int
	// Density is what the sparse decode steps computed so far.
	Density() model.Density
}

var (
	_ Sequence = (*model.Session)(nil)
	_ Sequence = (*cuda.Session)(nil)
)

// ParseDevice reads a device name: "" or "cpu" (ordinal -1), "cuda" or
// "cuda:N" (GPU ordinal N, default 0).
func ParseDevice(name string) (ordinal int, err error) {
	switch {
	case name == "" || name == "cpu":
		return -1, nil
	case name == "cuda":
		return 0, nil
	case strings.HasPrefix(name, "cuda:"):
		n, err := strconv.Atoi(name[len("cuda:"):])
		if err == nil && n >= 0 {
			return n, nil
		}
	}
	return 0, fmt.Errorf("dejavu: unknown device %q (want cpu, cuda or cuda:N)", name)
}

// Model is a loaded model with its tokenizer and worker pool.
type Model struct {
	*model.Model
	Tok  tokenizer.Tokenizer
	Pool *kernels.Pool
	// Path is what Load opened.
	Path string
	// GPU holds the weights on the GPU when Options.Device names one (nil
	// on the CPU); the host weights stay mapped for the tokenizer-side and
	// CPU-only tools.
	GPU *cuda.Model

	sparseOnce sync.Once
}

// Load opens a model directory (Hugging Face), a GGUF file (.gguf, with its
// tokenizer from the metadata) or a llama2.c .bin file.
func Load(path string, o Options) (*Model, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("dejavu: model: %w", err)
	}
	m, err := model.Load(path)
	if err != nil {
		return nil, err
	}
	var tok tokenizer.Tokenizer
	if fi.IsDir() {
		tok, err = tokenizer.Load(path)
	} else if strings.HasSuffix(strings.ToLower(path), ".gguf") {
		tok, err = tokenizer.LoadGGUF(path) // the vocabulary is in the metadata
	} else {
		tp := o.Tokenizer
		if tp == "" {
			tp = filepath.Join(filepath.Dir(path), "tokenizer.bin")
			if _, serr := os.Stat(tp); serr != nil {
				m.Close()
				return nil, fmt.Errorf("dejavu: %s is a llama2.c checkpoint: name its tokenizer.bin with --tokenizer", path)
			}
		}
		tok, err = tokenizer.LoadLlama2C(tp, m.Cfg.Vocab)
	}
	if err != nil {
		m.Close()
		return nil, err
	}
	if tok.VocabSize() > m.Cfg.Vocab {
		m.Close()
		return nil, fmt.Errorf("dejavu: tokenizer has %d tokens but the model's vocabulary is %d", tok.VocabSize(), m.Cfg.Vocab)
	}
	dm := &Model{Model: m, Tok: tok, Path: path}
	ordinal, err := ParseDevice(o.Device)
	if err == nil && ordinal >= 0 {
		dm.GPU, err = UploadCUDA(m, ordinal)
	}
	if err != nil {
		m.Close()
		return nil, err
	}
	dm.Pool = kernels.NewPool(o.Threads)
	return dm, nil
}

// UploadCUDA opens GPU ordinal and uploads m's weights to it. Close the
// result, then its Device.
func UploadCUDA(m *model.Model, ordinal int) (*cuda.Model, error) {
	dev, err := cuda.Open(ordinal)
	if err != nil {
		return nil, fmt.Errorf("dejavu: device cuda:%d: %w", ordinal, err)
	}
	g, err := dev.Upload(m)
	if err != nil {
		dev.Close()
		return nil, fmt.Errorf("dejavu: uploading %s to %s: %w", m.Source, dev, err)
	}
	return g, nil
}

// DefaultPredictorsPath is where `dejavu train` puts the predictors of the
// model at modelPath by default: beside the model.
func DefaultPredictorsPath(modelPath string) string {
	dir := modelPath
	if fi, err := os.Stat(modelPath); err == nil && !fi.IsDir() {
		dir = filepath.Dir(modelPath)
	}
	return filepath.Join(dir, sparsity.DefaultFileName)
}

// LoadPredictors loads trained sparsity predictors for m (path "": the
// default file beside the model), running on m's pool. Use the result as
// GenerateOptions.Selector (one generation at a time; Clone for more).
func (m *Model) LoadPredictors(path string) (*sparsity.Predictors, error) {
	if path == "" {
		path = DefaultPredictorsPath(m.Path)
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("no sparsity predictors at %s: make them with `dejavu collect --model %s --text TEXT --out DATA` then `dejavu train --model %s --data DATA` (or name a file with --predictors)", path, m.Path, m.Path)
		}
	}
	p, err := sparsity.Load(path, m.Model)
	if err != nil {
		return nil, err
	}
	p.SetPool(m.Pool)
	return p, nil
}

// Close releases the weights (on the GPU too) and the worker pool.
func (m *Model) Close() error {
	m.Pool.Close()
	if m.GPU != nil {
		dev := m.GPU.Device()
		m.GPU.Close()
		dev.Close()
	}
	return m.Model.Close()
}

// Device names where sequences run: "cpu", or the GPU.
func (m *Model) Device() string {
	if m.GPU != nil {
		return m.GPU.Device().String()
	}
	return "cpu"
}

// NewSession starts a CPU sequence with room for ctx tokens (≤ 0: the
// model's maximum).
func (m *Model) NewSession(ctx int) *model.Session { return m.Model.NewSession(m.Pool, ctx) }

// NewSequence starts a sequence on the model's device with room for ctx
// tokens (≤ 0: the model's maximum). Close it (CloseSequence) to release
// GPU memory.
func (m *Model) NewSequence(ctx int) (Sequence, error) {
	if m.GPU != nil {
		return m.GPU.NewSession(ctx)
	}
	return m.NewSession(ctx), nil
}

// CloseSequence releases what s holds on its device (nothing on the CPU).
func CloseSequence(s Sequence) {
	if c, ok := s.(interface{ Close() error }); ok {
		c.Close()
	}
}

// SetSparse makes the decode steps of s sparse with sel (nil: dense). On
// the CPU any Selector works; on a GPU sel must be trained predictors
// (*sparsity.Predictors), which then run on the GPU.
func (m *Model) SetSparse(s Sequence, sel Selector) error {
	switch s := s.(type) {
	case *model.Session:
		if sel != nil {
			m.sparseOnce.Do(m.PrepareSparse)
		}
		s.SetSelector(sel)
		return nil
	case *cuda.Session:
		if sel == nil {
			return s.SetPredictors(nil)
		}
		p, ok := sel.(*sparsity.Predictors)
		if !ok {
			return fmt.Errorf("dejavu: on %s sparse decoding runs trained predictors (a %T selects on the CPU only)", m.Device(), sel)
		}
		return s.SetPredictors(p)
	}
	return fmt.Errorf("dejavu: unknown sequence type %T", s)
}

// GenerateOptions configure Generate.
type GenerateOptions struct {
	MaxTokens int // tokens to generate at most (≤ 0: until EOS or the context is full)
	Sampling  generate.Options
	Context   int // KV-cache size in tokens (≤ 0: the model's maximum)
	// OnText, if set, receives generated text as it becomes complete UTF-8;
	// returning an error stops generation with that error.
	OnText func(text string) error
	// Selector, if set, makes decode steps sparse (DejaVu): it picks the MLP
	// neurons and attention heads each token computes, e.g. predictors from
	// LoadPredictors. The prompt pass stays dense.
	Selector model.Selector
}

// Result is a finished generation.
type Result struct {
	PromptIDs []int
	OutputIDs []int // generated ids, including a final EOS when one was generated
	Text      string
	// Stop is "eos", "length" (MaxTokens reached) or "context" (the cache is full).
	Stop       string
	PromptTime time.Duration
	GenTime    time.Duration // from the first generated token's forward step to the last
	// Density is what the sparse decode steps computed (MLP() and Heads()
	// are 1 for dense generation).
	Density model.Density
}

// Generate encodes prompt with the tokenizer's default special tokens and continues it.
func (m *Model) Generate(ctx context.Context, prompt string, o GenerateOptions) (*Result, error) {
	ids, err := m.Tok.Encode(prompt)
	if err != nil {
		return nil, err
	}
	return m.GenerateIDs(ctx, ids, o)
}

// GenerateIDs continues a sequence of token ids.
func (m *Model) GenerateIDs(ctx context.Context, ids []int, o GenerateOptions) (*Result, error) {
	if err := o.Sampling.Validate(); err != nil {
		return nil, fmt.Errorf("dejavu: %w", err)
	}
	if len(ids) == 0 {
		return nil, errors.New("dejavu: empty prompt (the tokenizer adds no BOS token: give some text)")
	}
	s, err := m.NewSequence(o.Context)
	if err != nil {
		return nil, err
	}
	defer CloseSequence(s)
	if len(ids) >= s.MaxCtx() {
		return nil, fmt.Errorf("dejavu: prompt of %d tokens does not fit the context of %d tokens (room must remain for one generated token)", len(ids), s.MaxCtx())
	}
	res := &Result{PromptIDs: ids, Stop: "length"}
	sampler := generate.NewSampler(m.Cfg.Vocab, o.Sampling)
	stream := tokenizer.NewStream(m.Tok)
	for _, id := range ids {
		stream.Add(id) // the prompt decides position rules (e.g. a leading space after BOS)
	}
	stream.Flush()
	t0 := time.Now()
	logits, err := s.Forward(ids, false)
	if err != nil {
		return nil, err
	}
	res.PromptTime = time.Since(t0)
	if o.Selector != nil {
		if err := m.SetSparse(s, o.Selector); err != nil {
			return nil, err
		}
		defer func() { res.Density = s.Density() }()
	}
	t1 := time.Now()
	var text []byte
	emit := func(t string) error {
		text = append(text, t...)
		if o.OnText != nil && t != "" {
			return o.OnText(t)
		}
		return nil
	}
	eos := m.Tok.EOS()
	if eos < 0 {
		eos = m.Cfg.EOS
	}
	for n := 0; o.MaxTokens <= 0 || n < o.MaxTokens; n++ {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		id := sampler.Sample(logits)
		res.OutputIDs = append(res.OutputIDs, id)
		if id == eos {
			res.Stop = "eos"
			break
		}
		if err := emit(stream.Add(id)); err != nil {
			return res, err
		}
		if s.Pos() >= s.MaxCtx() {
			res.Stop = "context"
			break
		}
		if o.MaxTokens > 0 && n+1 == o.MaxTokens {
			break // no forward step for a token nobody will sample
		}
		if logits, err = s.Forward([]int{id}, false); err != nil {
			return res, err
		}
	}
	if err := emit(stream.Flush()); err != nil {
		return res, err
	}
	res.GenTime = time.Since(t1)
	res.Text = string(text)
	return res, nil
}
