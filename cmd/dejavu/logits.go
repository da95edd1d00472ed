package main

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"dejavu"
	"dejavu/kernels"
)

func newLogits() *cobra.Command {
	var (
		mf     modelFlags
		idsArg string
		decode bool
		dtype  string
	)
	c := &cobra.Command{
		Use:   "logits",
		Short: "Print the float32 next-token logits of every input position as JSON",
		Long: `Print {"logits":[[...],...]}: one row of vocabulary logits per input id.
Without --decode all ids go through one batched prompt pass; with --decode
they go through one at a time via the KV cache.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ids, err := parseIDs(idsArg)
			if err != nil {
				return fmt.Errorf("--ids: %w", err)
			}
			path, err := mf.path()
			if err != nil {
				return err
			}
			m, err := loadAs(path, dtype, cmd.Flags().Changed("dtype"))
			if err != nil {
				return err
			}
			defer m.Close()
			pool := kernels.NewPool(mf.threads)
			defer pool.Close()
			var s dejavu.Sequence = m.NewSession(pool, 0)
			if n, err := dejavu.ParseDevice(mf.device); err != nil {
				return err
			} else if n >= 0 {
				g, err := dejavu.UploadCUDA(m, n)
				if err != nil {
					return err
				}
				defer g.Device().Close()
				defer g.Close()
				gs, err := g.NewSession(0)
				if err != nil {
					return err
				}
				defer gs.Close()
				s = gs
			}
			var rows []float32
			if decode {
				for _, id := range ids {
					row, err := s.Forward([]int{id}, false)
					if err != nil {
						return err
					}
					rows = append(rows, row...)
				}
			} else if rows, err = s.Forward(ids, true); err != nil {
				return err
			}
			return writeLogits(cmd.OutOrStdout(), rows, m.Cfg.Vocab)
		},
	}
	mf.register(c)
	mf.registerDevice(c)
	c.Flags().StringVar(&idsArg, "ids", "", "comma-separated token ids, e.g. 2,15,99")
	c.Flags().BoolVar(&decode, "decode", false, "feed the ids one at a time through the KV cache")
	c.Flags().StringVar(&dtype, "dtype", "", "convert the weights at load: f32, f16, bf16, q8_0 or q4_0 (default: as stored)")
	c.MarkFlagRequired("ids")
	return c
}

func writeLogits(f io.Writer, rows []float32, vocab int) error {
	w := bufio.NewWriterSize(f, 1<<16)
	w.WriteString(`{"logits":[`)
	buf := make([]byte, 0, 32)
	for r := 0; r < len(rows)/vocab; r++ {
		if r > 0 {
			w.WriteByte(',')
		}
		w.WriteByte('[')
		for j, v := range rows[r*vocab : (r+1)*vocab] {
			if j > 0 {
				w.WriteByte(',')
			}
			buf = strconv.AppendFloat(buf[:0], float64(v), 'g', -1, 32)
			w.Write(buf)
		}
		w.WriteByte(']')
	}
	w.WriteString("]}\n")
	return w.Flush()
}

// parseIDs reads "2,15,99" or "[2, 15, 99]".
func parseIDs(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("no ids given")
	}
	var ids []int
	for i, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("item %d (%q) is not an integer", i, f)
		}
		ids = append(ids, v)
	}
	return ids, nil
}
