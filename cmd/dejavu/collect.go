package main

import (
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"dejavu"
	"dejavu/sparsity"
)

func newCollect() *cobra.Command {
	var (
		mf      modelFlags
		texts   []string
		tokens  int
		window  int
		perFile int
		out     string
		quiet   bool
	)
	c := &cobra.Command{
		Use:   "collect --text PATH... --out DATA",
		Short: "Record a dense model's activations on text (to train sparsity predictors)",
		Long: `Run the dense model over text files (or directories of .txt/.raw files) in
prompt windows of --window tokens, each starting with BOS, and record per layer
the residual stream entering attention and MLP (f16), the MLP activation
pattern (act > 0, packed bits) and each head's output norm (f16) into the
directory --out. Tokens are spread over the files (at most --per-file from
each; 0: tokens / files, at least 512). The directory appears atomically with
a manifest (model fingerprint, counts, SHA-256 of every part) written last, so
an interrupted run is never accepted by 'dejavu train'.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(texts) == 0 {
				return fmt.Errorf("--text is required (files or directories of text)")
			}
			if out == "" {
				return fmt.Errorf("--out is required (the directory to write)")
			}
			m, _, err := mf.load()
			if err != nil {
				return err
			}
			defer m.Close()
			return runCollect(m, texts, tokens, perFile, window, out, quiet, cmd.ErrOrStderr())
		},
	}
	mf.register(c)
	f := c.Flags()
	f.StringSliceVar(&texts, "text", nil, "text files or directories (repeatable, comma-separated)")
	f.IntVar(&tokens, "tokens", 100000, "tokens to record at most")
	f.IntVar(&window, "window", 256, "tokens per dense prompt pass, BOS included")
	f.IntVar(&perFile, "per-file", 0, "tokens to take from each file at most (0: spread --tokens over the files)")
	f.StringVarP(&out, "out", "o", "", "output directory")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	return c
}

// textFiles expands files and directories (their .txt, .raw and .text files,
// recursively, in name order).
func textFiles(paths []string) ([]string, error) {
	var files []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("--text: %w", err)
		}
		if !fi.IsDir() {
			files = append(files, p)
			continue
		}
		var found []string
		err = filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			ext := strings.ToLower(filepath.Ext(q))
			if d.Type().IsRegular() && (ext == ".txt" || ext == ".raw" || ext == ".text") {
				found = append(found, q)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("--text: %w", err)
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("--text: %s holds no .txt, .raw or .text files", p)
		}
		slices.Sort(found)
		files = append(files, found...)
	}
	return files, nil
}

// readDocs tokenizes the beginning of each file: up to perFile tokens each,
// tokens in all.
func readDocs(m *dejavu.Model, files []string, tokens, perFile int) ([][]int, int, error) {
	if perFile <= 0 {
		perFile = max(512, int(math.Ceil(float64(tokens)/float64(len(files)))))
	}
	var docs [][]int
	total := 0
	for _, f := range files {
		if total >= tokens {
			break
		}
		want := min(perFile, tokens-total)
		fh, err := os.Open(f)
		if err != nil {
			return nil, 0, err
		}
		b, err := io.ReadAll(io.LimitReader(fh, int64(want)*8+1024)) // ~4 bytes/token: ample
		fh.Close()
		if err != nil {
			return nil, 0, fmt.Errorf("reading %s: %w", f, err)
		}
		if i := strings.LastIndexByte(string(b), '\n'); i > 0 && len(b) == want*8+1024 {
			b = b[:i]
		}
		ids, err := m.Tok.Encode(string(b))
		if err != nil {
			return nil, 0, fmt.Errorf("tokenizing %s: %w", f, err)
		}
		ids = ids[:min(len(ids), want)]
		if len(ids) < 2 {
			continue
		}
		docs = append(docs, ids)
		total += len(ids)
	}
	return docs, total, nil
}

func runCollect(m *dejavu.Model, texts []string, tokens, perFile, window int, out string, quiet bool, stderr io.Writer) error {
	files, err := textFiles(texts)
	if err != nil {
		return err
	}
	docs, total, err := readDocs(m, files, tokens, perFile)
	if err != nil {
		return err
	}
	if total == 0 {
		return fmt.Errorf("no text in %s", strings.Join(texts, ", "))
	}
	fmt.Fprintf(stderr, "collect: %d tokens from %d of %d files, windows of %d tokens → %s\n", total, len(docs), len(files), window, out)
	bar := progressBar(!quiet, stderr, total, "recording", "tokens")
	bos := m.Tok.BOS()
	t0 := time.Now()
	man, err := sparsity.Collect(m.Model, m.Pool, docs, out, sparsity.CollectOptions{Window: window, BOS: bos, Sources: texts,
		Progress: func(n int) {
			if bar != nil {
				bar.Set(n)
			}
		}})
	if bar != nil {
		bar.Finish()
	}
	if err != nil {
		return err
	}
	var bytes int64
	for _, p := range man.Parts {
		bytes += p.Bytes
	}
	fmt.Fprintf(stderr, "collect: recorded %d tokens (%d windows) × %d layers, %.1f MB, in %.1fs\n",
		man.Tokens, man.Windows, man.Layers, float64(bytes)/1e6, time.Since(t0).Seconds())
	return nil
}

// progressBar is a progress bar on w (nil when off).
func progressBar(on bool, w io.Writer, total int, desc, unit string) *progressbar.ProgressBar {
	if !on {
		return nil
	}
	return progressbar.NewOptions(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionSetItsString(unit),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
	)
}
