package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"dejavu/checkpoint"
	"dejavu/kernels"
	"dejavu/model"
	"dejavu/tokenizer"
)

func newConvert() *cobra.Command {
	var (
		modelPath, out, typ, synthetic string
		noTokenizer                    bool
		seed                           uint64
	)
	c := &cobra.Command{
		Use:   "convert",
		Short: "Write a model as a GGUF file (llama.cpp's format)",
		Long: `Convert a Llama-family model (a Hugging Face directory: Llama, Mistral,
Qwen2; or a llama2.c .bin) to a GGUF v3 file with the metadata keys and tensor
names of llama.cpp's convert_hf_to_gguf.py, q/k rows permuted to the
interleaved RoPE layout of its "llama" architecture, and the tokenizer
(sentencepiece as "llama", byte-level BPE with the GPT-2 regex as "gpt2" /
"gpt-2"). --synthetic writes random weights with the shapes of a real model
(` + strings.Join(model.SyntheticNames(), ", ") + `; the Llama ones) and a
placeholder sentencepiece vocabulary, for speed comparisons. The file is
written atomically.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return fmt.Errorf("--out is required")
			}
			dt, ok := map[string]kernels.DType{"f32": kernels.F32, "f16": kernels.F16, "bf16": kernels.BF16, "q8_0": kernels.Q8_0, "q4_0": kernels.Q4_0}[typ]
			if !ok {
				return fmt.Errorf("--type %q: want f32, f16, bf16, q8_0 or q4_0", typ)
			}
			stderr := cmd.ErrOrStderr()
			var (
				m     *model.Model
				extra []checkpoint.GGUFKV
				name  string
				err   error
			)
			switch {
			case synthetic != "" && modelPath != "":
				return fmt.Errorf("give --model or --synthetic, not both")
			case synthetic != "":
				fmt.Fprintf(stderr, "building synthetic %s (%s)…\n", synthetic, typ)
				sdt := dt
				if sdt == kernels.Q4_0 { // written from f16 weights
					sdt = kernels.F16
				}
				if m, err = model.Synthetic(synthetic, sdt, seed); err != nil {
					return err
				}
				if _, err := model.GGUFArch(m.Cfg); err != nil {
					return fmt.Errorf("--synthetic %s: %w", synthetic, err)
				}
				name = "synthetic " + synthetic
				extra = placeholderVocab(m.Cfg.Vocab)
			case modelPath == "":
				return fmt.Errorf("--model or --synthetic is required")
			default:
				if m, err = model.Load(modelPath); err != nil {
					return err
				}
				name = filepath.Base(filepath.Clean(modelPath))
				if !noTokenizer {
					if extra, err = tokenizerKVs(modelPath); err != nil {
						m.Close()
						return fmt.Errorf("%w (--no-tokenizer writes the model without one)", err)
					}
				}
			}
			defer m.Close()
			if m.Cfg.Act != kernels.SiLU {
				fmt.Fprintf(stderr, "note: activation %s is recorded as %s, which llama.cpp ignores (it would run SiLU)\n", m.Cfg.ActName, model.GGUFActKey)
			}
			if err := model.WriteGGUF(out, m, model.GGUFWriteOptions{DType: dt, Name: name, Extra: extra}); err != nil {
				return err
			}
			if fi, err := os.Stat(out); err == nil {
				fmt.Fprintf(stderr, "wrote %s (%.1f MB, %s)\n", out, float64(fi.Size())/1e6, typ)
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVarP(&modelPath, "model", "m", "", "Hugging Face model directory (or llama2.c .bin) to convert")
	f.StringVarP(&out, "out", "o", "", "the GGUF file to write")
	f.StringVar(&typ, "type", "f16", "element type of the weight matrices: f32, f16, bf16, or q8_0 / q4_0 quantized as llama.cpp's reference quantizers do (norms stay f32)")
	f.StringVar(&synthetic, "synthetic", "", "write random weights with the shapes of this model instead")
	f.Uint64Var(&seed, "seed", 1, "random seed of --synthetic weights")
	f.BoolVar(&noTokenizer, "no-tokenizer", false, "write no tokenizer metadata")
	return c
}

// tokenizerKVs is the GGUF tokenizer metadata of a model directory (none
// for a llama2.c file), with tokenizer_config.json's chat template.
func tokenizerKVs(path string) ([]checkpoint.GGUFKV, error) {
	if fi, err := os.Stat(path); err != nil || !fi.IsDir() {
		return nil, nil
	}
	tok, err := tokenizer.Load(path)
	if err != nil {
		return nil, err
	}
	kvs, err := tokenizer.GGUFMetadata(tok)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(path, "tokenizer_config.json"))
	if errors.Is(err, os.ErrNotExist) {
		return kvs, nil
	} else if err != nil {
		return nil, err
	}
	var cfg struct {
		ChatTemplate any `json:"chat_template"`
	}
	if json.Unmarshal(b, &cfg) == nil {
		if s, ok := cfg.ChatTemplate.(string); ok && s != "" {
			kvs = append(kvs, checkpoint.GGUFKV{Key: "tokenizer.chat_template", Value: checkpoint.GGUFStringValue(s)})
		}
	}
	return kvs, nil
}

// placeholderVocab is a sentencepiece vocabulary of n tokens for synthetic
// models: <unk>, <s>, </s>, the 256 byte tokens, then "▁t{i}" pieces.
func placeholderVocab(n int) []checkpoint.GGUFKV {
	tokens, scores, types := make([]string, n), make([]float32, n), make([]int32, n)
	for i := range tokens {
		switch {
		case i < 3:
			tokens[i], types[i] = []string{"<unk>", "<s>", "</s>"}[i], []int32{2, 3, 3}[i]
		case i < 3+256:
			tokens[i], types[i] = fmt.Sprintf("<0x%02X>", i-3), 6
		default:
			tokens[i], types[i], scores[i] = fmt.Sprintf("\u2581t%d", i), 1, -float32(i)
		}
	}
	u32 := checkpoint.GGUFUint32Value
	return []checkpoint.GGUFKV{
		{Key: "tokenizer.ggml.model", Value: checkpoint.GGUFStringValue("llama")},
		{Key: "tokenizer.ggml.pre", Value: checkpoint.GGUFStringValue("default")},
		{Key: "tokenizer.ggml.tokens", Value: checkpoint.GGUFStringsValue(tokens)},
		{Key: "tokenizer.ggml.scores", Value: checkpoint.GGUFFloat32sValue(scores)},
		{Key: "tokenizer.ggml.token_type", Value: checkpoint.GGUFInt32sValue(types)},
		{Key: "tokenizer.ggml.bos_token_id", Value: u32(1)},
		{Key: "tokenizer.ggml.eos_token_id", Value: u32(2)},
		{Key: "tokenizer.ggml.unknown_token_id", Value: u32(0)},
		{Key: "tokenizer.ggml.add_bos_token", Value: checkpoint.GGUFBoolValue(true)},
		{Key: "tokenizer.ggml.add_eos_token", Value: checkpoint.GGUFBoolValue(false)},
	}
}
