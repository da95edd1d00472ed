package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"dejavu/tokenizer"
)

func newTokenize() *cobra.Command {
	var (
		mf             modelFlags
		text, textFile string
		decode         bool
	)
	c := &cobra.Command{
		Use:   "tokenize",
		Short: "Encode text to token ids (JSON), or decode ids to text",
		Long: `Print {"ids":[...]} for the text, with the special tokens the model's
tokenizer adds by default (e.g. a BOS). With --decode the input is a list of
ids (2,15,99 or [2,15,99]) and the decoded text is printed as is. Only the
tokenizer files of --model are read.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in := text
			if textFile != "" {
				b, err := os.ReadFile(textFile)
				if err != nil {
					return err
				}
				in = string(b)
			} else if !cmd.Flags().Changed("text") {
				return fmt.Errorf("give --text or --text-file")
			}
			tok, err := loadTokenizer(&mf)
			if err != nil {
				return err
			}
			if decode {
				ids, err := parseIDs(in)
				if err != nil {
					return err
				}
				s, err := tok.Decode(ids)
				if err != nil {
					return err
				}
				_, err = io.WriteString(cmd.OutOrStdout(), s)
				return err
			}
			ids, err := tok.Encode(in)
			if err != nil {
				return err
			}
			return json.NewEncoder(cmd.OutOrStdout()).Encode(struct {
				IDs []int `json:"ids"`
			}{orEmpty(ids)})
		},
	}
	mf.register(c)
	c.Flags().StringVar(&text, "text", "", "the text (or ids with --decode)")
	c.Flags().StringVar(&textFile, "text-file", "", "read the text (or ids) from this file")
	c.Flags().BoolVar(&decode, "decode", false, "decode ids to text")
	return c
}

// loadTokenizer reads the tokenizer of a model directory, or the --tokenizer
// file of a llama2.c checkpoint, without loading weights.
func loadTokenizer(mf *modelFlags) (tokenizer.Tokenizer, error) {
	if mf.tokenizer != "" {
		return tokenizer.LoadLlama2C(mf.tokenizer, 0)
	}
	path, err := mf.path()
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		if strings.HasSuffix(strings.ToLower(path), ".gguf") {
			return tokenizer.LoadGGUF(path)
		}
		return nil, fmt.Errorf("%s is a llama2.c checkpoint: name its tokenizer.bin with --tokenizer", path)
	}
	return tokenizer.Load(path)
}
