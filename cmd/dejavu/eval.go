package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"dejavu"
	"dejavu/eval"
	"dejavu/model"
	"dejavu/sparsity"
)

// defaultTaskDir holds the zero-shot task files.
const defaultTaskDir = "../shared/data/tasks"

// newEval is `dejavu eval` with its subcommands.
func newEval() *cobra.Command {
	c := &cobra.Command{
		Use:   "eval",
		Short: "Measure quality: perplexity (ppl), zero-shot tasks, dense vs sparse (compare, sweep)",
		Long: `Measure quality. ppl and tasks evaluate one configuration, dense or, with
--sparse, decoding sparsely with trained DejaVu predictors; compare measures
how far sparse next-token distributions are from dense on the same tokens; sweep
runs compare at several densities for 'dejavu analyze'.

Only decode steps (one token per forward pass) skip work in this engine.
Sparse evaluation by default runs batched passes that apply the predictors'
selection by masking (model.Session.SetSparseBatches): every position, scored
or not, keeps only the heads and neurons selected for it, which is what the
sparse decode path computes up to float rounding, at prompt-pass speed.
--decode instead feeds every token on its own through the sparse kernels
themselves (slower: bound such runs with --max-tokens).

Every command can write its JSON result to a file (--out, atomically) and
append Markdown table rows to a file (--md).`,
	}
	c.AddCommand(newEvalPPL(), newEvalTasks(), newEvalCompare(), newEvalSweep())
	return c
}

// newBar is a progress bar on stderr (or nothing when off).
func newBar(on bool, total int, desc, unit string) *progressbar.ProgressBar {
	return progressBar(on, os.Stderr, total, desc, unit)
}

// windowBar is a Progress function for eval's window loops.
func windowBar(on bool, desc string) func(done, total int) {
	var bar *progressbar.ProgressBar
	return func(done, total int) {
		if bar == nil {
			bar = newBar(on, total, desc, "windows")
		}
		if bar != nil {
			bar.Set(done)
		}
	}
}

// reportFlags are the output options every eval command shares.
type reportFlags struct {
	asJSON bool
	out    string
	md     string
}

func (f *reportFlags) register(c *cobra.Command) {
	fl := c.Flags()
	fl.BoolVar(&f.asJSON, "json", false, "print the JSON result on stdout instead of text")
	fl.StringVar(&f.out, "out", "", "also write the JSON result to this file (atomically)")
	fl.StringVar(&f.md, "md", "", "append the result as Markdown table rows to this file (a header first when the file is new or empty)")
}

// emit writes the JSON result where asked, the Markdown rows to --md, and
// otherwise calls text for the human-readable output.
func (f *reportFlags) emit(w io.Writer, v any, header string, rows []string, text func(io.Writer) error) error {
	if f.out != "" {
		if err := eval.WriteJSON(f.out, v); err != nil {
			return err
		}
	}
	if f.md != "" {
		if err := appendMarkdown(f.md, header, rows); err != nil {
			return err
		}
	}
	if f.asJSON {
		return json.NewEncoder(w).Encode(v)
	}
	return text(w)
}

// appendMarkdown appends rows to the Markdown file path, preceded by header
// (which includes its separator line) when the file is new or empty.
func appendMarkdown(path, header string, rows []string) error {
	fh, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fi, err := fh.Stat()
	var b strings.Builder
	if err == nil && fi.Size() == 0 {
		b.WriteString(header)
	}
	for _, r := range rows {
		b.WriteString(r + "\n")
	}
	if err == nil {
		_, err = fh.WriteString(b.String())
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("--md %s: %w", path, err)
	}
	return nil
}

// mdTable is a Markdown header with its separator line.
func mdTable(cols ...string) string {
	seps := make([]string, len(cols))
	for i := range seps {
		seps[i] = "---"
		if i > 0 {
			seps[i] = "---:"
		}
	}
	return "| " + strings.Join(cols, " | ") + " |\n|" + strings.Join(seps, "|") + "|\n"
}

func mdRow(cells ...string) string { return "| " + strings.Join(cells, " | ") + " |" }

// evalRun is the JSON result of one configuration of `eval ppl` or `eval
// tasks`.
type evalRun struct {
	Model      string `json:"model"`
	Mode       string `json:"mode"` // "dense" or "sparse"
	Predictors string `json:"predictors,omitempty"`
	// MLPDensity and HeadDensity are what the sparse decode steps computed
	// (1 for dense).
	MLPDensity  float64 `json:"mlp_density"`
	HeadDensity float64 `json:"head_density"`
	// KVDensity is the fraction of key/value heads whose K and V weights
	// the sparse steps read (skipped heads are caught up later).
	KVDensity float64 `json:"kv_density"`
	// SparseSteps is the number of sparse decode steps.
	SparseSteps int `json:"sparse_steps"`
	// DecodeMode: every token fed on its own (--decode); otherwise sparse
	// runs use masked batches (SparseBatches).
	DecodeMode    bool `json:"decode_mode"`
	SparseBatches bool `json:"sparse_batches"`

	// Perplexity (eval ppl, or eval tasks --ppl-text).
	Perplexity *float64      `json:"perplexity,omitempty"`
	StdErr     *float64      `json:"stderr,omitempty"`
	Tokens     int           `json:"tokens,omitempty"`
	Protocol   eval.Protocol `json:"protocol,omitempty"`
	Ctx        int           `json:"ctx,omitempty"`
	Files      []string      `json:"files,omitempty"`
	MaxTokens  int           `json:"max_tokens,omitempty"`

	// Tasks (eval tasks).
	Limit int                        `json:"limit,omitempty"`
	Tasks map[string]eval.TaskResult `json:"tasks,omitempty"`

	Seconds float64 `json:"seconds"`
}

func (r *evalRun) density(d model.Density) {
	r.MLPDensity, r.HeadDensity, r.KVDensity, r.SparseSteps = d.MLP(), d.Heads(), d.KV(), d.Tokens
}

func (r *evalRun) setDensity(s dejavu.Sequence, sparse bool) {
	r.density(s.Density())
	r.Mode = "dense"
	if sparse {
		r.Mode = "sparse"
	}
}

func (r *evalRun) setPPL(res eval.Result, files []string, maxTokens int) {
	r.Perplexity, r.StdErr = &res.Perplexity, &res.StdErr
	r.Tokens, r.Protocol, r.Ctx, r.Files, r.MaxTokens = res.Tokens, res.Protocol, res.Ctx, files, maxTokens
}

// evalConfig is how the dense and sparse runs of a command are set up.
type evalConfig struct {
	m        *dejavu.Model
	path     string
	sel      model.Selector // nil: dense
	predPath string
	decode   bool // sparse runs feed one token at a time instead of masked batches
}

// session starts a sequence of ctx tokens on the model's device, sparse
// when asked: on the CPU with masked batches or (decode) token by token,
// on a GPU token by token only, with trained predictors running there
// (masked batches have no GPU kernels).
func (c *evalConfig) session(ctx int, sparse bool) (dejavu.Sequence, error) {
	if !sparse {
		return c.m.NewSequence(ctx)
	}
	if c.m.GPU != nil {
		if !c.decode {
			return nil, fmt.Errorf("sparse evaluation on %s runs token by token: add --decode (masked batches run on the CPU only)", c.m.Device())
		}
		s, err := c.m.NewSequence(ctx)
		if err != nil {
			return nil, err
		}
		if err := c.m.SetSparse(s, c.sel); err != nil {
			dejavu.CloseSequence(s)
			return nil, err
		}
		return s, nil
	}
	s := c.m.NewSession(ctx)
	c.m.Model.PrepareSparse()
	s.SetSelector(c.sel)
	s.SetSparseBatches(!c.decode)
	return s, nil
}

// run is the result skeleton of one configuration.
func (c *evalConfig) run(sparse bool) evalRun {
	r := evalRun{Model: c.path, DecodeMode: c.decode, SparseBatches: sparse && !c.decode}
	if sparse {
		r.Predictors = c.predPath
	}
	return r
}

// sparseMethod names how sparse runs were computed.
func sparseMethod(decode bool) string {
	if decode {
		return "decode mode"
	}
	return "masked batches"
}

// decodeFlag registers --decode on an eval command.
func decodeFlag(f *pflag.FlagSet, p *bool) {
	f.BoolVar(p, "decode", false, "feed tokens one at a time (sparse runs then use the sparse kernels instead of masked batches; slower)")
}

// modes are the configurations to run: dense, sparse, or both.
func (c *evalConfig) modes(both bool) []bool {
	switch {
	case both:
		return []bool{false, true}
	case c.sel != nil:
		return []bool{true}
	}
	return []bool{false}
}

// loadEval loads the model and, when sparse decoding is asked for (or
// both is set), the predictors.
func loadEval(cmd *cobra.Command, mf *modelFlags, sp *sparseFlags, both bool) (*evalConfig, error) {
	m, path, err := mf.load()
	if err != nil {
		return nil, err
	}
	if both {
		sp.sparse = true
	}
	sel, err := sp.selector(cmd, m)
	if err != nil {
		m.Close()
		return nil, err
	}
	pp := sp.predictors
	if sel != nil && pp == "" {
		pp = dejavu.DefaultPredictorsPath(path)
	}
	return &evalConfig{m: m, path: path, sel: sel, predPath: pp}, nil
}

// readTexts reads whole files.
func readTexts(files []string) ([]string, error) {
	texts := make([]string, len(files))
	for i, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		texts[i] = string(b)
	}
	return texts, nil
}

// pplInput tokenizes files for perplexity: the ids and the BOS of llama.cpp's protocol.
func pplInput(m *dejavu.Model, files []string) (ids []int, bos int, err error) {
	texts, err := readTexts(files)
	if err != nil {
		return nil, 0, err
	}
	if ids, err = eval.Documents(m.Tok, texts...); err != nil {
		return nil, 0, err
	}
	bos, err = eval.AddsBOS(m.Tok)
	return ids, bos, err
}

func fmtDensity(d float64) string { return strconv.FormatFloat(d, 'f', 3, 64) }

func newEvalPPL() *cobra.Command {
	var (
		mf        modelFlags
		sp        sparseFlags
		rf        reportFlags
		ctxN      int
		protocol  string
		maxTokens int
		decode    bool
		both      bool
		progress  bool
	)
	c := &cobra.Command{
		Use:   "ppl [flags] FILE...",
		Short: "Perplexity of text files, dense or sparse",
		Long: `Perplexity of text files. Each file is one document, tokenized on its own
with the tokenizer's default special tokens (BOS); the documents' ids are
concatenated (the first --max-tokens of them when set) and evaluated in windows
of --ctx tokens:

  windows   non-overlapping windows (a shorter last window is dropped), every
            position after the first of each window scored
  llamacpp  llama.cpp's llama-perplexity: at least 2×ctx tokens, the first token
            of each window replaced by BOS when the tokenizer adds BOS, only the
            second half of each window scored

With --sparse the predictors' selection is applied to every position (masked
batches; --decode feeds tokens one at a time through the sparse kernels
instead, and makes dense runs decode too). --dense-and-sparse runs both and
prints them as one Markdown table.

Prints the perplexity, its standard error (as llama.cpp computes it) and the
number of scored tokens; --json prints one JSON object (with the MLP and head
densities the sparse steps computed). Progress goes to stderr.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			p, err := eval.ParseProtocol(protocol)
			if err != nil {
				return fmt.Errorf("--protocol: %w", err)
			}
			if _, err := readTexts(files); err != nil {
				return err
			}
			ec, err := loadEval(cmd, &mf, &sp, both)
			if err != nil {
				return err
			}
			defer ec.m.Close()
			ec.decode = decode
			ids, bos, err := pplInput(ec.m, files)
			if err != nil {
				return err
			}
			var runs []evalRun
			for _, sparse := range ec.modes(both) {
				s, err := ec.session(ctxN, sparse)
				if err != nil {
					return err
				}
				defer dejavu.CloseSequence(s)
				name := "ppl"
				if sparse {
					name = "ppl sparse"
				}
				o := eval.PerplexityOptions{Ctx: ctxN, Protocol: p, BOS: bos, Decode: decode,
					MaxTokens: maxTokens, Progress: windowBar(progress, name)}
				t0 := time.Now()
				res, err := eval.Perplexity(s, ids, o)
				if err != nil {
					return err
				}
				el := time.Since(t0)
				r := ec.run(sparse)
				r.Seconds = el.Seconds()
				r.setDensity(s, sparse)
				r.setPPL(res, files, maxTokens)
				runs = append(runs, r)
				fmt.Fprintf(os.Stderr, "%s: %d tokens in %s, %.0f tokens/s\n", r.Mode, res.Windows*res.Ctx, el.Round(time.Millisecond),
					float64(res.Windows*res.Ctx)/el.Seconds())
			}
			return emitRuns(cmd.OutOrStdout(), &rf, runs, nil, func(w io.Writer) error {
				if len(runs) > 1 {
					return nil
				}
				r := runs[0]
				if _, err := fmt.Fprintf(w, "perplexity %.4f ± %.4f over %d tokens (%s, ctx %d)\n",
					*r.Perplexity, *r.StdErr, r.Tokens, r.Protocol, r.Ctx); err != nil {
					return err
				}
				if r.Mode == "sparse" {
					_, err = fmt.Fprintf(w, "sparse decoding: mlp density %.3f, head density %.3f over %d steps\n", r.MLPDensity, r.HeadDensity, r.SparseSteps)
				}
				return err
			})
		},
	}
	mf.register(c)
	mf.registerDevice(c)
	sp.register(c)
	rf.register(c)
	f := c.Flags()
	f.IntVar(&ctxN, "ctx", 512, "window length in tokens")
	f.StringVar(&protocol, "protocol", string(eval.Windows), "windows or llamacpp")
	f.IntVar(&maxTokens, "max-tokens", 0, "evaluate only the first N tokens (0: all); bounds slow sparse runs")
	decodeFlag(f, &decode)
	f.BoolVar(&both, "dense-and-sparse", false, "run dense and sparse (implies --sparse) and print one table")
	f.BoolVar(&progress, "progress", true, "show a progress bar on stderr")
	return c
}

// taskColumn names a task's column in the comparison table: acc_norm
// where the task reports it, else acc.
func taskColumn(t *eval.Task) string {
	if t.Norm {
		return t.Name + " (acc_norm)"
	}
	return t.Name + " (acc)"
}

func taskScore(t *eval.Task, r eval.TaskResult) float64 {
	if t.Norm && r.AccNorm != nil {
		return *r.AccNorm
	}
	return r.Acc
}

// emitRuns reports the runs of ppl or tasks: one run as its JSON object,
// dense and sparse as {"dense":…,"sparse":…} and, as text, a table of the
// DejaVu paper's Table 3 layout (rows dense and sparse, columns the tasks
// then perplexity); the --md rows have that layout too.
func emitRuns(w io.Writer, rf *reportFlags, runs []evalRun, tasks []*eval.Task, single func(io.Writer) error) error {
	cols := []string{"model", "mode", "MLP density", "head density"}
	for _, t := range tasks {
		cols = append(cols, taskColumn(t))
	}
	hasPPL := runs[0].Perplexity != nil
	if hasPPL {
		cols = append(cols, "perplexity")
	}
	var rows []string
	for _, r := range runs {
		cells := []string{filepath.Base(r.Model), r.Mode, fmtDensity(r.MLPDensity), fmtDensity(r.HeadDensity)}
		for _, t := range tasks {
			cells = append(cells, fmt.Sprintf("%.4f", taskScore(t, r.Tasks[t.Name])))
		}
		if hasPPL {
			cells = append(cells, fmt.Sprintf("%.3f", *r.Perplexity))
		}
		rows = append(rows, mdRow(cells...))
	}
	header := mdTable(cols...)
	var v any = runs[0]
	if len(runs) == 2 {
		v = struct {
			Dense  evalRun `json:"dense"`
			Sparse evalRun `json:"sparse"`
		}{runs[0], runs[1]}
	}
	return rf.emit(w, v, header, rows, func(w io.Writer) error {
		if len(runs) == 1 {
			return single(w)
		}
		_, err := fmt.Fprint(w, header+strings.Join(rows, "\n")+"\n")
		return err
	})
}

func newEvalTasks() *cobra.Command {
	var (
		mf        modelFlags
		sp        sparseFlags
		rf        reportFlags
		names     string
		dir       string
		limit     int
		ctxN      int
		pplFiles  []string
		pplCtx    int
		maxTokens int
		both      bool
		progress  bool
		decode    bool
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
items of each task. Tasks: ` + strings.Join(eval.TaskNames(), ", ") + `.

With --sparse the predictors' selection is applied to every position (masked
batches; --decode feeds tokens one at a time through the sparse kernels
instead). --ppl-text adds the perplexity of text files (windows of
--ppl-ctx, the first --max-tokens tokens) as a last column. --dense-and-sparse
runs both configurations and prints the DejaVu paper's Table 3 layout: rows
dense and sparse, columns the tasks (acc_norm where reported, else acc) and
perplexity.`,
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
			ec, err := loadEval(cmd, &mf, &sp, both)
			if err != nil {
				return err
			}
			defer ec.m.Close()
			ec.decode = decode
			var ids []int
			bos := -1
			if len(pplFiles) > 0 {
				if ids, bos, err = pplInput(ec.m, pplFiles); err != nil {
					return err
				}
			}
			var runs []evalRun
			for _, sparse := range ec.modes(both) {
				t0 := time.Now()
				s, err := ec.session(ctxN, sparse)
				if err != nil {
					return err
				}
				defer dejavu.CloseSequence(s)
				r := ec.run(sparse)
				r.Limit, r.Tasks = limit, map[string]eval.TaskResult{}
				for i, t := range list {
					ti := time.Now()
					bar := newBar(progress, len(items[i]), t.Name, "items")
					res, err := eval.RunTaskWith(s, ec.m.Tok, t, items[i], eval.TaskOptions{Decode: ec.decode, Progress: func() {
						if bar != nil {
							bar.Add(1)
						}
					}})
					if err != nil {
						return err
					}
					r.Tasks[t.Name] = res
					fmt.Fprintf(os.Stderr, "%s: %d items in %s\n", t.Name, res.N, time.Since(ti).Round(time.Millisecond))
				}
				if ids != nil {
					ps, err := ec.session(pplCtx, sparse)
					if err != nil {
						return err
					}
					defer dejavu.CloseSequence(ps)
					res, err := eval.Perplexity(ps, ids, eval.PerplexityOptions{Ctx: pplCtx, BOS: bos, Decode: ec.decode,
						MaxTokens: maxTokens, Progress: windowBar(progress, "ppl")})
					if err != nil {
						return err
					}
					r.setPPL(res, pplFiles, maxTokens)
					// Densities over both the task and the perplexity steps.
					d := s.Density()
					d.Add(ps.Density())
					r.density(d)
					r.Mode = map[bool]string{false: "dense", true: "sparse"}[sparse]
				} else {
					r.setDensity(s, sparse)
				}
				r.Seconds = time.Since(t0).Seconds()
				runs = append(runs, r)
			}
			return emitRuns(cmd.OutOrStdout(), &rf, runs, list, func(w io.Writer) error {
				r := runs[0]
				if err := writeTaskTable(w, list, r.Tasks); err != nil {
					return err
				}
				if r.Perplexity != nil {
					fmt.Fprintf(w, "perplexity %.4f ± %.4f over %d tokens\n", *r.Perplexity, *r.StdErr, r.Tokens)
				}
				if r.Mode == "sparse" {
					fmt.Fprintf(w, "sparse decoding: mlp density %.3f, head density %.3f over %d steps\n", r.MLPDensity, r.HeadDensity, r.SparseSteps)
				}
				return nil
			})
		},
	}
	mf.register(c)
	mf.registerDevice(c)
	sp.register(c)
	rf.register(c)
	f := c.Flags()
	f.StringVar(&names, "task", "", "comma-separated task names")
	f.StringVar(&dir, "dir", defaultTaskDir, "directory of the task files")
	f.IntVar(&limit, "limit", 0, "score only the first N items of each task (0: all)")
	f.IntVar(&ctxN, "ctx", 0, "KV-cache size in tokens; longer inputs lose context from the left (0: the model's maximum)")
	f.StringSliceVar(&pplFiles, "ppl-text", nil, "also measure the perplexity of these text files")
	f.IntVar(&pplCtx, "ppl-ctx", 512, "window length of --ppl-text")
	f.IntVar(&maxTokens, "max-tokens", 0, "score only the first N tokens of --ppl-text (0: all)")
	f.BoolVar(&both, "dense-and-sparse", false, "run dense and sparse (implies --sparse) and print one table")
	f.BoolVar(&progress, "progress", true, "show a progress bar on stderr")
	decodeFlag(f, &decode)
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

// compareRun is the JSON result of `eval compare`.
type compareRun struct {
	Model      string   `json:"model"`
	Predictors string   `json:"predictors"`
	Files      []string `json:"files"`
	MaxTokens  int      `json:"max_tokens"`
	eval.CompareResult
	MLPDensity  float64 `json:"mlp_density"`
	HeadDensity float64 `json:"head_density"`
	SparseSteps int     `json:"sparse_steps"`
	Seconds     float64 `json:"seconds"`
}

var compareHeader = mdTable("model", "MLP density", "head density", "dense ppl", "sparse ppl", "KL mean", "KL p99", "top-1 agreement", "tokens")

func compareRow(model string, mlp, heads, dense, sparse, klMean, klP99, agree float64, tokens int) string {
	return mdRow(filepath.Base(model), fmtDensity(mlp), fmtDensity(heads), fmt.Sprintf("%.3f", dense), fmt.Sprintf("%.3f", sparse),
		fmt.Sprintf("%.4f", klMean), fmt.Sprintf("%.4f", klP99), fmt.Sprintf("%.4f", agree), strconv.Itoa(tokens))
}

func newEvalCompare() *cobra.Command {
	var (
		mf        modelFlags
		sp        sparseFlags
		rf        reportFlags
		texts     []string
		ctxN      int
		protocol  string
		maxTokens int
		progress  bool
		decode    bool
	)
	c := &cobra.Command{
		Use:   "compare --text FILE... [--predictors F] [--mlp-density D] [--head-density H]",
		Short: "Dense vs sparse on the same tokens: KL divergence, top-1 agreement, perplexity",
		Long: `Feed the same tokens (windows of --ctx of the text files, as 'eval ppl' cuts
them, the first --max-tokens) to a dense and to a sparse session (masked
batches; --decode: one token at a time through the sparse kernels) and
compare their next-token distributions at every scored position:
KL(P_dense ‖ P_sparse) in nats (mean and 99th percentile), the rate at which both
pick the same argmax, the perplexity of each, and the densities the sparse steps
computed. Sparse decoding is implied (--sparse).`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			files := append(append([]string{}, texts...), args...)
			if len(files) == 0 {
				return fmt.Errorf("--text is required (text files)")
			}
			p, err := eval.ParseProtocol(protocol)
			if err != nil {
				return fmt.Errorf("--protocol: %w", err)
			}
			if _, err := readTexts(files); err != nil {
				return err
			}
			ec, err := loadEval(cmd, &mf, &sp, true)
			if err != nil {
				return err
			}
			defer ec.m.Close()
			ids, bos, err := pplInput(ec.m, files)
			if err != nil {
				return err
			}
			ec.decode = decode
			dense, err := ec.session(ctxN, false)
			if err != nil {
				return err
			}
			sparse, err := ec.session(ctxN, true)
			if err != nil {
				return err
			}
			t0 := time.Now()
			res, err := eval.Compare(dense, sparse, ids, eval.PerplexityOptions{Ctx: ctxN, Protocol: p, BOS: bos, Decode: decode,
				MaxTokens: maxTokens, Progress: windowBar(progress, "compare")})
			if err != nil {
				return err
			}
			d := sparse.Density()
			r := compareRun{Model: ec.path, Predictors: ec.predPath, Files: files, MaxTokens: maxTokens, CompareResult: res,
				MLPDensity: d.MLP(), HeadDensity: d.Heads(), SparseSteps: d.Tokens, Seconds: time.Since(t0).Seconds()}
			row := compareRow(r.Model, r.MLPDensity, r.HeadDensity, res.Ref.Perplexity, res.Test.Perplexity, res.KLMean, res.KLP99, res.Top1Agreement, res.Tokens)
			return rf.emit(cmd.OutOrStdout(), r, compareHeader, []string{row}, func(w io.Writer) error {
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintf(tw, "tokens\t%d (%s, ctx %d, %s)\n", res.Tokens, res.Ref.Protocol, res.Ref.Ctx, sparseMethod(decode))
				fmt.Fprintf(tw, "dense perplexity\t%.4f ± %.4f\n", res.Ref.Perplexity, res.Ref.StdErr)
				fmt.Fprintf(tw, "sparse perplexity\t%.4f ± %.4f\n", res.Test.Perplexity, res.Test.StdErr)
				fmt.Fprintf(tw, "KL(dense‖sparse)\tmean %.5f, p99 %.5f, max %.5f nats\n", res.KLMean, res.KLP99, res.KLMax)
				fmt.Fprintf(tw, "top-1 agreement\t%.4f\n", res.Top1Agreement)
				fmt.Fprintf(tw, "densities\tmlp %.3f, heads %.3f over %d sparse steps\n", r.MLPDensity, r.HeadDensity, r.SparseSteps)
				return tw.Flush()
			})
		},
	}
	mf.register(c)
	sp.register(c)
	rf.register(c)
	f := c.Flags()
	f.StringSliceVar(&texts, "text", nil, "text files (repeatable, comma-separated)")
	f.IntVar(&ctxN, "ctx", 512, "window length in tokens")
	f.StringVar(&protocol, "protocol", string(eval.Windows), "windows or llamacpp")
	f.IntVar(&maxTokens, "max-tokens", 0, "compare only the first N tokens (0: all)")
	f.BoolVar(&progress, "progress", true, "show a progress bar on stderr")
	decodeFlag(f, &decode)
	return c
}

// sweepSettingsFlags reads one component's (mlp or head) settings of `eval
// sweep`: the --X-density and --X-mass lists, def when neither is given.
func sweepSettingsFlags(cmd *cobra.Command, what string, dens, mass, def []string) ([]eval.SweepSetting, error) {
	fl := cmd.Flags()
	if !fl.Changed(what+"-density") && !fl.Changed(what+"-mass") {
		dens = def
	}
	out, err := eval.ParseSweepSettings(what, dens, mass)
	if err == nil && len(out) == 0 {
		err = fmt.Errorf("--%s-density / --%s-mass: no settings", what, what)
	}
	return out, err
}

var sweepHeader = mdTable("model", "MLP setting", "head setting", "MLP density", "head density", "dense ppl", "sparse ppl", "rise %",
	"KL mean", "KL p99", "top-1 agreement", "tokens", "MLP budgets", "head budgets")

// sweepRows are the Markdown rows of a sweep, one per point.
func sweepRows(sw *eval.Sweep) []string {
	rows := make([]string, len(sw.Points))
	for i, p := range sw.Points {
		rows[i] = mdRow(filepath.Base(sw.Model), p.MLPSetting, p.HeadSetting, fmtDensity(p.MLPDensity), fmtDensity(p.HeadDensity),
			fmt.Sprintf("%.3f", sw.Dense.Perplexity), fmt.Sprintf("%.3f", p.Perplexity), fmt.Sprintf("%+.2f", 100*(p.Perplexity/sw.Dense.Perplexity-1)),
			fmt.Sprintf("%.4f", p.KLMean), fmt.Sprintf("%.4f", p.KLP99), fmt.Sprintf("%.4f", p.Top1Agreement), strconv.Itoa(sw.Tokens),
			joinInts(p.MLPBudgets), joinInts(p.HeadBudgets))
	}
	return rows
}

func joinInts(x []int) string {
	s := make([]string, len(x))
	for i, v := range x {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}

// runEvalSweep runs eval.RunSweep on ids and fills in the sweep's origin.
func runEvalSweep(m *dejavu.Model, path, predPath string, pred *sparsity.Predictors, files []string, ids []int,
	mlps, heads []eval.SweepSetting, o eval.PerplexityOptions) (*eval.Sweep, error) {
	m.Model.PrepareSparse()
	n := len(ids)
	if o.MaxTokens > 0 {
		n = min(n, o.MaxTokens)
	}
	fmt.Fprintf(os.Stderr, "sweep: dense and %d sparse configurations on %d tokens\n", len(mlps)*len(heads), n)
	sw, err := eval.RunSweep(m.Model, m.Pool, pred, ids, mlps, heads, o)
	if err != nil {
		return nil, err
	}
	sw.Model, sw.Predictors, sw.Files = path, predPath, files
	return sw, nil
}

func newEvalSweep() *cobra.Command {
	var (
		mf                 modelFlags
		rf                 reportFlags
		predictors         string
		predDType          string
		mlpDens, mlpMass   []string
		mlpThr             []string
		headDens, headMass []string
		headOracle         []string
		texts              []string
		ctxN               int
		protocol           string
		maxTokens          int
		progress           bool
		decode             bool
	)
	c := &cobra.Command{
		Use:   "sweep --predictors F [--mlp-density D,...] [--mlp-mass M,...] [--mlp-threshold auto[-D],...] [--head-density H,...] [--head-mass M,...] [--head-oracle F,...] --max-tokens N --out SWEEP.json FILE...",
		Short: "Perplexity, KL and top-1 agreement of sparse decoding over a grid of densities and budgets",
		Long: `Run 'eval compare' for every combination of one MLP setting and one head
setting on the same tokens (windows of --ctx of the text files, as 'eval ppl'
cuts them, the first --max-tokens), the dense reference computed once; sparse
sessions use masked batches (--decode: every token on its own through the
sparse kernels).

MLP settings: --mlp-density D (the top D·FFN neurons in every layer),
--mlp-mass M (per-layer budgets reaching activation-mass recall M on the
training validation split), --mlp-threshold (neurons whose predicted logit
exceeds the calibrated per-layer thresholds, "auto", shifted by D logits,
"auto-D", or a fixed T: the count varies per token), or "cal" in the
density or mass list (the predictors' calibrated per-layer budgets; a
density of 0 means the same). Head settings likewise:
--head-density (1: all heads), --head-mass, "cal". Without any MLP flag the
densities 0.05,0.1,0.2,0.3,0.5,1 are swept; without any head flag, "cal".
--head-oracle adds head settings that no predictor can reach: each token
keeps the heads of largest output norm, chosen after computing them all (a
fraction of all heads, or K0:K1:... heads per layer): how sparse the
model's attention is, the bound for any head predictor.

For each combination: the densities the sparse steps actually computed, both
perplexities and the rise, KL(P_dense ‖ P_sparse) (mean, p99), top-1
agreement with the dense argmax, and the per-layer budgets. Writes a JSON
document (--out; its schema is eval.Sweep) that 'dejavu analyze --sweep'
plots, and prints a Markdown table (also appended to --md).`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			files := append(append([]string{}, texts...), args...)
			if len(files) == 0 {
				return fmt.Errorf("give text files (arguments or --text)")
			}
			p, err := eval.ParseProtocol(protocol)
			if err != nil {
				return fmt.Errorf("--protocol: %w", err)
			}
			def := []string{"0.05", "0.1", "0.2", "0.3", "0.5", "1"}
			if len(mlpThr) > 0 {
				def = nil
			}
			mlps, err := sweepSettingsFlags(cmd, "mlp", mlpDens, mlpMass, def)
			if len(mlpThr) > 0 && len(mlps) == 0 {
				err = nil
			}
			if err != nil {
				return err
			}
			for _, t := range mlpThr {
				var sel sparsity.Selection
				if err := sel.SetMLPThreshold(strings.TrimSpace(t)); err != nil {
					return fmt.Errorf("--mlp-threshold: %w", err)
				}
				mlps = append(mlps, eval.SweepSetting{Threshold: strings.TrimSpace(t)})
			}
			def = []string{"cal"}
			if len(headOracle) > 0 {
				def = nil
			}
			heads, err := sweepSettingsFlags(cmd, "head", headDens, headMass, def)
			if len(headOracle) > 0 && err != nil && len(heads) == 0 {
				err = nil
			}
			if err != nil {
				return err
			}
			if _, err := readTexts(files); err != nil {
				return err
			}
			m, path, err := mf.load()
			if err != nil {
				return err
			}
			defer m.Close()
			pred, err := m.LoadPredictors(predictors)
			if err != nil {
				return err
			}
			if err := applyPredictorDType(pred, predDType, cmd.Flags().Changed("predictor-dtype")); err != nil {
				return err
			}
			if predictors == "" {
				predictors = dejavu.DefaultPredictorsPath(path)
			}
			ids, bos, err := pplInput(m, files)
			if err != nil {
				return err
			}
			oracle, err := eval.ParseOracleHeads(headOracle, m.Model.Cfg.Layers, m.Model.Cfg.Heads)
			if err != nil {
				return err
			}
			heads = append(heads, oracle...)
			sw, err := runEvalSweep(m, path, predictors, pred, files, ids, mlps, heads, eval.PerplexityOptions{Ctx: ctxN, Protocol: p, BOS: bos,
				Decode: decode, MaxTokens: maxTokens, Progress: windowBar(progress, "sweep")})
			if err != nil {
				return err
			}
			rows := sweepRows(sw)
			return rf.emit(cmd.OutOrStdout(), sw, sweepHeader, rows, func(w io.Writer) error {
				_, err := fmt.Fprint(w, sweepHeader+strings.Join(rows, "\n")+"\n")
				return err
			})
		},
	}
	mf.register(c)
	rf.register(c)
	f := c.Flags()
	f.StringVar(&predictors, "predictors", "", "predictors file (default <model dir>/"+sparsity.DefaultFileName+")")
	registerPredictorDType(f, &predDType)
	f.StringSliceVar(&mlpDens, "mlp-density", nil, "uniform MLP densities, comma-separated (0 or cal: calibrated budgets; default 0.05,0.1,0.2,0.3,0.5,1 when no MLP flag is given)")
	f.StringSliceVar(&mlpThr, "mlp-threshold", nil, "MLP logit thresholds, comma-separated: T, auto (the calibrated per-layer thresholds) or auto-D / auto+D (lowered / raised by D)")
	f.StringSliceVar(&mlpMass, "mlp-mass", nil, "MLP activation-mass recall targets of per-layer budgets, comma-separated (cal: calibrated budgets)")
	f.StringSliceVar(&headDens, "head-density", nil, "uniform head densities, comma-separated (1: all heads; 0 or cal: calibrated budgets, the default when no head flag is given)")
	f.StringSliceVar(&headMass, "head-mass", nil, "head-norm-mass recall targets of per-layer budgets, comma-separated (cal: calibrated budgets)")
	f.StringSliceVar(&headOracle, "head-oracle", nil, "measure the oracle: keep each token's heads of largest output norm, known only after computing them all (an upper bound for any head predictor); a fraction of all heads spread over the layers, or K0:K1:… heads per layer; comma-separated")
	f.StringSliceVar(&texts, "text", nil, "text files (or give them as arguments)")
	f.IntVar(&ctxN, "ctx", 512, "window length in tokens")
	f.StringVar(&protocol, "protocol", string(eval.Windows), "windows or llamacpp")
	f.IntVar(&maxTokens, "max-tokens", 4096, "use only the first N tokens (0: all)")
	f.BoolVar(&progress, "progress", true, "show a progress bar on stderr")
	decodeFlag(f, &decode)
	return c
}
