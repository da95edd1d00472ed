package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"dejavu"
	"dejavu/eval"
)

// defaultTaskDir holds the zero-shot task files.
const defaultTaskDir = "../shared/data/tasks"

// newEval is `dejavu eval` with its subcommands ppl and tasks.
func newEval() *cobra.Command {
	c := &cobra.Command{
		Use:   "eval",
		Short: "Measure quality: perplexity (ppl) and zero-shot task accuracy (tasks)",
	}
	c.AddCommand(newEvalPPL(), newEvalTasks())
	return c
}

// newBar is a progress bar on stderr (or nothing when off).
func newBar(on bool, total int, desc, unit string) *progressbar.ProgressBar {
	if !on {
		return nil
	}
	return progressbar.NewOptions(total,
		progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionSetItsString(unit),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(os.Stderr) }),
	)
}

func newEvalPPL() *cobra.Command {
	var (
		mf       modelFlags
		ctxN     int
		protocol string
		asJSON   bool
		progress bool
	)
	c := &cobra.Command{
		Use:   "ppl [flags] FILE...",
		Short: "Perplexity of text files",
		Long: `Perplexity of text files. Each file is one document, tokenized on its own
with the tokenizer's default special tokens (BOS); the documents' ids are
concatenated and evaluated in windows of --ctx tokens:

  windows   non-overlapping windows (a shorter last window is dropped), every
            position after the first of each window scored
  llamacpp  llama.cpp's llama-perplexity: at least 2×ctx tokens, the first token
            of each window replaced by BOS when the tokenizer adds BOS, only the
            second half of each window scored

Prints the perplexity, its standard error (as llama.cpp computes it) and the
number of scored tokens; --json prints one object. Progress goes to stderr.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			p, err := eval.ParseProtocol(protocol)
			if err != nil {
				return fmt.Errorf("--protocol: %w", err)
			}
			texts := make([]string, len(files))
			for i, f := range files {
				b, err := os.ReadFile(f)
				if err != nil {
					return err
				}
				texts[i] = string(b)
			}
			path, err := mf.path()
			if err != nil {
				return err
			}
			m, err := dejavu.Load(path, dejavu.Options{Threads: mf.threads, Tokenizer: mf.tokenizer})
			if err != nil {
				return err
			}
			defer m.Close()
			ids, err := eval.Documents(m.Tok, texts...)
			if err != nil {
				return err
			}
			bos, err := eval.AddsBOS(m.Tok)
			if err != nil {
				return err
			}
			s := m.NewSession(ctxN)
			var bar *progressbar.ProgressBar
			o := eval.PerplexityOptions{Ctx: ctxN, Protocol: p, BOS: bos, Progress: func(done, total int) {
				if bar == nil {
					bar = newBar(progress, total, "ppl", "windows")
				}
				if bar != nil {
					bar.Set(done)
				}
			}}
			t0 := time.Now()
			res, err := eval.Perplexity(s, ids, o)
			if err != nil {
				return err
			}
			el := time.Since(t0)
			out := cmd.OutOrStdout()
			if asJSON {
				return json.NewEncoder(out).Encode(struct {
					Perplexity  float64       `json:"perplexity"`
					StdErr      float64       `json:"stderr"`
					Tokens      int           `json:"tokens"`
					Protocol    eval.Protocol `json:"protocol"`
					Ctx         int           `json:"ctx"`
					MLPDensity  float64       `json:"mlp_density"`
					HeadDensity float64       `json:"head_density"`
				}{res.Perplexity, res.StdErr, res.Tokens, res.Protocol, res.Ctx, 1, 1})
			}
			fmt.Fprintf(out, "perplexity %.4f ± %.4f over %d tokens (%s, ctx %d, %d windows)\n",
				res.Perplexity, res.StdErr, res.Tokens, res.Protocol, res.Ctx, res.Windows)
			fmt.Fprintf(os.Stderr, "%d tokens in %s, %.0f tokens/s\n", len(ids), el.Round(time.Millisecond),
				float64(res.Windows*res.Ctx)/el.Seconds())
			return nil
		},
	}
	mf.register(c)
	c.Flags().IntVar(&ctxN, "ctx", 512, "window length in tokens")
	c.Flags().StringVar(&protocol, "protocol", string(eval.Windows), "windows or llamacpp")
	c.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	c.Flags().BoolVar(&progress, "progress", true, "show a progress bar on stderr")
	return c
}

func newEvalTasks() *cobra.Command {
	var (
		mf       modelFlags
		names    string
		dir      string
		limit    int
		ctxN     int
		asJSON   bool
		progress bool
	)
	c := &cobra.Command{
		Use:   "tasks --task NAME[,NAME...]",
		Short: "Zero-shot multiple-choice accuracy, as lm-evaluation-harness scores it",
		Long: `Zero-shot accuracy on the task files of --dir (MosaicML jsonl, llama.cpp's
HellaSwag, SuperGLUE RTE). Each choice is scored by the log-likelihood of its
continuation given its context, with the tokenizer's default special tokens;
acc picks the highest log-likelihood, acc_norm (piqa, arc_easy, arc_challenge,
openbook_qa, hellaswag) the highest per character of the choice. lambada_openai
reports greedy last-word accuracy and perplexity. --limit takes the first N
items of each task. Tasks: ` + strings.Join(eval.TaskNames(), ", ") + `.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var list []*eval.Task
			for _, n := range strings.Split(names, ",") {
				t, err := eval.LookupTask(strings.TrimSpace(n))
				if err != nil {
					return fmt.Errorf("--task: %w", err)
				}
				list = append(list, t)
			}
			items := make([][]eval.Item, len(list))
			for i, t := range list {
				var err error
				if items[i], err = t.Load(dir, limit); err != nil {
					return err
				}
			}
			path, err := mf.path()
			if err != nil {
				return err
			}
			m, err := dejavu.Load(path, dejavu.Options{Threads: mf.threads, Tokenizer: mf.tokenizer})
			if err != nil {
				return err
			}
			defer m.Close()
			s := m.NewSession(ctxN)
			results := make(map[string]eval.TaskResult, len(list))
			for i, t := range list {
				t0 := time.Now()
				bar := newBar(progress, len(items[i]), t.Name, "items")
				r, err := eval.RunTask(s, m.Tok, t, items[i], func() {
					if bar != nil {
						bar.Add(1)
					}
				})
				if err != nil {
					return err
				}
				results[t.Name] = r
				fmt.Fprintf(os.Stderr, "%s: %d items in %s\n", t.Name, r.N, time.Since(t0).Round(time.Millisecond))
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return json.NewEncoder(out).Encode(struct {
					Model       string                     `json:"model"`
					Limit       int                        `json:"limit"`
					MLPDensity  float64                    `json:"mlp_density"`
					HeadDensity float64                    `json:"head_density"`
					Tasks       map[string]eval.TaskResult `json:"tasks"`
				}{path, limit, 1, 1, results})
			}
			return writeTaskTable(out, list, results)
		},
	}
	mf.register(c)
	c.Flags().StringVar(&names, "task", "", "comma-separated task names")
	c.Flags().StringVar(&dir, "dir", defaultTaskDir, "directory of the task files")
	c.Flags().IntVar(&limit, "limit", 0, "score only the first N items of each task (0: all)")
	c.Flags().IntVar(&ctxN, "ctx", 0, "KV-cache size in tokens; longer inputs lose context from the left (0: the model's maximum)")
	c.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	c.Flags().BoolVar(&progress, "progress", true, "show a progress bar on stderr")
	c.MarkFlagRequired("task")
	return c
}

func writeTaskTable(w io.Writer, list []*eval.Task, results map[string]eval.TaskResult) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "task\tn\tacc\tacc_norm\tperplexity")
	for _, t := range list {
		r := results[t.Name]
		norm, ppl := "-", "-"
		if r.AccNorm != nil {
			norm = fmt.Sprintf("%.4f ± %.4f", *r.AccNorm, *r.AccNormStderr)
		}
		if r.Perplexity != nil {
			ppl = fmt.Sprintf("%.4f", *r.Perplexity)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.4f ± %.4f\t%s\t%s\n", t.Name, r.N, r.Acc, r.AccStderr, norm, ppl)
	}
	return tw.Flush()
}
