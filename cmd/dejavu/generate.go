package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"

	"github.com/spf13/cobra"

	"dejavu"
	"dejavu/generate"
)

func newGenerate() *cobra.Command {
	var (
		mf       modelFlags
		prompt   string
		n, ctxN  int
		sampling generate.Options
		asJSON   bool
	)
	c := &cobra.Command{
		Use:   "generate",
		Short: "Continue a prompt, streaming the text to stdout",
		Long: `Continue a prompt. The prompt is echoed, then the generated text is streamed
to stdout as it is produced; speeds go to stderr. With --json, one JSON object
{"prompt_ids":[...],"output_ids":[...],"text":"...","stop":"..."} is printed
instead, where output_ids and text are the generated part only.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := mf.path()
			if err != nil {
				return err
			}
			m, err := dejavu.Load(path, dejavu.Options{Threads: mf.threads, Tokenizer: mf.tokenizer})
			if err != nil {
				return err
			}
			defer m.Close()
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			out := bufio.NewWriter(cmd.OutOrStdout())
			defer out.Flush()
			o := dejavu.GenerateOptions{MaxTokens: n, Sampling: sampling, Context: ctxN}
			if !asJSON {
				fmt.Fprint(out, prompt)
				out.Flush()
				o.OnText = func(t string) error {
					out.WriteString(t)
					return out.Flush()
				}
			}
			res, err := m.Generate(ctx, prompt, o)
			if err != nil {
				return err
			}
			if asJSON {
				err = json.NewEncoder(out).Encode(struct {
					PromptIDs []int  `json:"prompt_ids"`
					OutputIDs []int  `json:"output_ids"`
					Text      string `json:"text"`
					Stop      string `json:"stop"`
				}{res.PromptIDs, orEmpty(res.OutputIDs), res.Text, res.Stop})
			} else {
				fmt.Fprintln(out)
			}
			if ferr := out.Flush(); err == nil {
				err = ferr
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "prompt: %d tokens, %.1f tokens/s; generated: %d tokens, %.1f tokens/s (stop: %s)\n",
				len(res.PromptIDs), rate(len(res.PromptIDs), res.PromptTime.Seconds()),
				len(res.OutputIDs), rate(len(res.OutputIDs), res.GenTime.Seconds()), res.Stop)
			return err
		},
	}
	mf.register(c)
	f := c.Flags()
	f.StringVarP(&prompt, "prompt", "p", "", "the text to continue")
	f.IntVarP(&n, "n", "n", 64, "tokens to generate at most")
	f.IntVar(&ctxN, "ctx", 0, "context size in tokens (0: the model's maximum)")
	f.Float64Var(&sampling.Temperature, "temperature", 0.8, "sampling temperature (0: greedy)")
	f.IntVar(&sampling.TopK, "top-k", 40, "sample from the K most likely tokens (0: all)")
	f.Float64Var(&sampling.TopP, "top-p", 0.95, "sample from the smallest set with this total probability (1: all)")
	f.Uint64Var(&sampling.Seed, "seed", 0, "random seed")
	f.BoolVar(&asJSON, "json", false, "print one JSON object with the ids and text")
	return c
}

func rate(n int, sec float64) float64 {
	if sec <= 0 {
		return 0
	}
	return float64(n) / sec
}

func orEmpty(x []int) []int {
	if x == nil {
		return []int{}
	}
	return x
}
