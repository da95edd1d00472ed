// Command dejavu runs language models on the CPU: generate text, print
// logits, tokenize. See the README for the quick start.
package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"dejavu"
)

// defaultModel is used when --model is not given and it exists.
const defaultModel = "../shared/data/models/testbed-opt-relu"

func main() {
	if err := newRoot().Execute(); err != nil {
		msg := err.Error()
		if !strings.HasPrefix(msg, "dejavu: ") { // the library's errors name it already
			msg = "dejavu: " + msg
		}
		fmt.Fprintln(os.Stderr, msg)
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "dejavu",
		Short:         "A Go inference engine for language models with contextual sparsity",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newGenerate(), newLogits(), newTokenize(), newBench(), newEval(), newCollect(), newTrain(), newDemo(), newAnalyze(), newServe(), newConvert())
	return root
}

// modelFlags are the flags every model-loading command shares.
type modelFlags struct {
	model, tokenizer string
	threads          int
	device           string
}

// registerDevice adds --device to a command whose sequences can run on a GPU.
func (f *modelFlags) registerDevice(c *cobra.Command) {
	c.Flags().StringVar(&f.device, "device", "cpu", "where to run: cpu, cuda or cuda:N (NVIDIA GPU through the CUDA driver, loaded at run time)")
}

func (f *modelFlags) register(c *cobra.Command) {
	c.Flags().StringVarP(&f.model, "model", "m", "", "model directory (Hugging Face) or llama2.c .bin (default "+defaultModel+" when present)")
	c.Flags().StringVar(&f.tokenizer, "tokenizer", "", "tokenizer.bin of a llama2.c checkpoint")
	c.Flags().IntVarP(&f.threads, "threads", "t", 0, "worker threads (0: one per CPU)")
}

// load opens the model (and tokenizer) the flags name; it also returns the path.
func (f *modelFlags) load() (*dejavu.Model, string, error) {
	path, err := f.path()
	if err != nil {
		return nil, "", err
	}
	m, err := dejavu.Load(path, dejavu.Options{Threads: f.threads, Tokenizer: f.tokenizer, Device: f.device})
	return m, path, err
}

func (f *modelFlags) path() (string, error) {
	if f.model != "" {
		return f.model, nil
	}
	if _, err := os.Stat(defaultModel); err == nil {
		return defaultModel, nil
	}
	return "", fmt.Errorf("--model is required (the default %s is not present)", defaultModel)
}
