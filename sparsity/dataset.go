package sparsity

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"time"

	"dejavu/checkpoint"
	"dejavu/kernels"
	"dejavu/model"
)

// DatasetFormat names the layout of a recorded-activations directory.
const DatasetFormat = "dejavu-activations/1"

// ManifestName is the file of a dataset directory written last: a directory
// without it (an interrupted collect) is never accepted.
const ManifestName = "manifest.json"

// Manifest describes a recorded-activations directory. For every layer l it
// holds, over Tokens rows (one per recorded token):
//   - l%02d.attn.f16: Tokens×Hidden, the residual stream entering attention;
//   - l%02d.mlp.f16: Tokens×Hidden, the residual stream entering the MLP;
//   - l%02d.act.bits: Tokens×ceil(FFN/8) bytes, bit j (LSB first) set when
//     neuron j's activation is > 0;
//   - l%02d.heads.f16: Tokens×Heads, the L2 norm of each head's output;
//
// all little-endian IEEE half floats, row-major.
type Manifest struct {
	Format      string    `json:"format"`
	Fingerprint string    `json:"fingerprint"`
	Model       string    `json:"model"`
	Layers      int       `json:"layers"`
	Hidden      int       `json:"hidden"`
	FFN         int       `json:"ffn"`
	Heads       int       `json:"heads"`
	Tokens      int       `json:"tokens"`
	Windows     int       `json:"windows"`
	Window      int       `json:"window"`
	Sources     []string  `json:"sources,omitempty"`
	Created     time.Time `json:"created"`
	Parts       []Part    `json:"parts"`
}

// Part is one file of a dataset with its size and SHA-256.
type Part struct {
	Name   string `json:"name"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

func partNames(l int) [4]string {
	p := fmt.Sprintf("l%02d.", l)
	return [4]string{p + "attn.f16", p + "mlp.f16", p + "act.bits", p + "heads.f16"}
}

type partWriter struct {
	name string
	f    *os.File
	bw   *bufio.Writer
	h    hash.Hash
	n    int64
}

func (p *partWriter) Write(b []byte) (int, error) {
	p.h.Write(b)
	p.n += int64(len(b))
	return p.bw.Write(b)
}

// recorder writes what model.Session reports into the part files.
type recorder struct {
	c       model.Config
	parts   [][4]*partWriter
	skip    int // rows of each window not recorded (BOS)
	pos     int // window position of the current chunk
	rows    int
	err     error
	buf     []byte
	bitsBuf []byte
}

func (r *recorder) Layer(l, n int, attnIn, mlpIn, act, headNorm []float32) {
	if r.err != nil {
		return
	}
	c := r.c
	d, F, H := c.Hidden, c.FFN, c.Heads
	p := r.parts[l]
	for i := 0; i < n; i++ {
		if r.pos+i < r.skip {
			continue
		}
		r.write(p[0], attnIn[i*d:(i+1)*d])
		r.write(p[1], mlpIn[i*d:(i+1)*d])
		bits := r.bitsBuf
		clear(bits)
		for j, v := range act[i*F : (i+1)*F] {
			if v > 0 {
				bits[j>>3] |= 1 << (j & 7)
			}
		}
		if _, err := p[2].Write(bits); err != nil && r.err == nil {
			r.err = err
		}
		r.write(p[3], headNorm[i*H:(i+1)*H])
		if l == 0 {
			r.rows++
		}
	}
	if l == c.Layers-1 {
		r.pos += n
	}
}

func (r *recorder) write(p *partWriter, x []float32) {
	b := r.buf[:2*len(x)]
	for i, v := range x {
		v = max(-65504, min(65504, v)) // f16 range: saturate rather than overflow to ±Inf
		binary.LittleEndian.PutUint16(b[2*i:], checkpoint.F32ToF16(v))
	}
	if _, err := p.Write(b); err != nil && r.err == nil {
		r.err = err
	}
}

// CollectOptions configure Collect.
type CollectOptions struct {
	Window  int      // tokens per dense prompt pass (≤ 0: 256), BOS included
	BOS     int      // id put first in every window (< 0: none)
	Sources []string // recorded in the manifest
	// Progress, if set, is called after each window with the tokens
	// recorded so far.
	Progress func(tokens int)
}

// Collect runs the dense model over documents of token ids in windows
// (each window a fresh sequence starting with BOS when there is one) and
// records every layer's inputs, activation pattern and head norms of every
// token except the BOS into the directory out. The directory appears
// atomically: everything is written into a temporary directory beside it,
// the manifest last, then renamed. An existing out is replaced only when it
// is itself a dataset (has a manifest) or empty.
func Collect(m *model.Model, pool *kernels.Pool, docs [][]int, out string, o CollectOptions) (*Manifest, error) {
	c := m.Cfg
	if o.Window <= 0 {
		o.Window = 256
	}
	o.Window = min(o.Window, c.MaxPos)
	step := o.Window
	if o.BOS >= 0 {
		step-- // room for the BOS
	}
	if step < 1 {
		return nil, fmt.Errorf("sparsity: window of %d tokens is too small", o.Window)
	}
	total := 0
	for _, d := range docs {
		total += len(d)
	}
	if total == 0 {
		return nil, errors.New("sparsity: no tokens to record")
	}
	if err := checkReplaceable(out); err != nil {
		return nil, err
	}
	parent, base := filepath.Split(filepath.Clean(out))
	if parent == "" {
		parent = "."
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("sparsity: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+base+".tmp-")
	if err != nil {
		return nil, fmt.Errorf("sparsity: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	rec := &recorder{c: c, parts: make([][4]*partWriter, c.Layers),
		buf: make([]byte, 2*max(c.Hidden, c.Heads)), bitsBuf: make([]byte, (c.FFN+7)/8)}
	var all []*partWriter
	closeAll := func() {
		for _, p := range all {
			p.f.Close()
		}
	}
	for l := range rec.parts {
		for k, name := range partNames(l) {
			f, err := os.Create(filepath.Join(tmp, name))
			if err != nil {
				closeAll()
				return nil, fmt.Errorf("sparsity: %w", err)
			}
			p := &partWriter{name: name, f: f, bw: bufio.NewWriterSize(f, 256<<10), h: sha256.New()}
			rec.parts[l][k] = p
			all = append(all, p)
		}
	}
	s := m.NewSession(pool, o.Window)
	s.SetRecorder(rec)
	win := make([]int, 0, o.Window)
	windows := 0
	for _, doc := range docs {
		if len(doc) > 0 && o.BOS >= 0 && doc[0] == o.BOS {
			doc = doc[1:] // the tokenizer's BOS: every window gets its own
		}
		for start := 0; start < len(doc); start += step {
			win = win[:0]
			rec.skip = 0
			if o.BOS >= 0 {
				win = append(win, o.BOS)
				rec.skip = 1
			}
			win = append(win, doc[start:min(start+step, len(doc))]...)
			s.Reset()
			rec.pos = 0
			if _, err := s.Forward(win, false); err != nil {
				closeAll()
				return nil, fmt.Errorf("sparsity: window %d: %w", windows, err)
			}
			if rec.err != nil {
				closeAll()
				return nil, fmt.Errorf("sparsity: writing %s: %w", tmp, rec.err)
			}
			windows++
			if o.Progress != nil {
				o.Progress(rec.rows)
			}
		}
	}
	s.SetRecorder(nil)
	man := &Manifest{Format: DatasetFormat, Fingerprint: Fingerprint(m), Model: m.Source,
		Layers: c.Layers, Hidden: c.Hidden, FFN: c.FFN, Heads: c.Heads, Tokens: rec.rows,
		Windows: windows, Window: o.Window, Sources: o.Sources, Created: time.Now().UTC()}
	for _, p := range all {
		err := p.bw.Flush()
		if err == nil {
			err = p.f.Sync()
		}
		if cerr := p.f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("sparsity: writing %s: %w", p.name, err)
		}
		man.Parts = append(man.Parts, Part{Name: p.name, Bytes: p.n, SHA256: hex.EncodeToString(p.h.Sum(nil))})
	}
	js, err := json.MarshalIndent(man, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := writeFileSync(filepath.Join(tmp, ManifestName), append(js, '\n')); err != nil {
		return nil, err
	}
	if err := replaceDir(tmp, out); err != nil {
		return nil, err
	}
	ok = true
	return man, nil
}

// checkReplaceable refuses an existing out that is not a dataset.
func checkReplaceable(out string) error {
	fi, err := os.Stat(out)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sparsity: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("sparsity: %s exists and is not a directory", out)
	}
	if _, err := os.Stat(filepath.Join(out, ManifestName)); err == nil {
		return nil
	}
	ents, err := os.ReadDir(out)
	if err != nil {
		return fmt.Errorf("sparsity: %w", err)
	}
	if len(ents) > 0 {
		return fmt.Errorf("sparsity: %s exists and is not an activations directory (no %s): refusing to replace it", out, ManifestName)
	}
	return nil
}

// replaceDir renames tmp to out, replacing an existing out.
func replaceDir(tmp, out string) error {
	old := ""
	if _, err := os.Stat(out); err == nil {
		old = tmp + ".old"
		if err := os.Rename(out, old); err != nil {
			return fmt.Errorf("sparsity: %w", err)
		}
	}
	if err := os.Rename(tmp, out); err != nil {
		if old != "" {
			os.Rename(old, out)
		}
		return fmt.Errorf("sparsity: %w", err)
	}
	if old != "" {
		os.RemoveAll(old)
	}
	return nil
}

func writeFileSync(path string, b []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("sparsity: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sparsity: writing %s: %w", path, err)
	}
	return nil
}

// Dataset is an opened, verified recorded-activations directory.
type Dataset struct {
	Dir string
	Manifest
}

// OpenDataset reads dir's manifest and verifies every part's size and
// SHA-256, so that an interrupted or damaged collect is refused.
func OpenDataset(dir string) (*Dataset, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if errors.Is(err, os.ErrNotExist) {
		if _, serr := os.Stat(dir); serr != nil {
			return nil, fmt.Errorf("sparsity: activations directory %s: %w", dir, serr)
		}
		return nil, fmt.Errorf("sparsity: %s has no %s: not a finished `dejavu collect` output (interrupted?); run collect again", dir, ManifestName)
	}
	if err != nil {
		return nil, fmt.Errorf("sparsity: %w", err)
	}
	d := &Dataset{Dir: dir}
	if err := json.Unmarshal(b, &d.Manifest); err != nil {
		return nil, fmt.Errorf("sparsity: %s: %w", filepath.Join(dir, ManifestName), err)
	}
	if d.Format != DatasetFormat {
		return nil, fmt.Errorf("sparsity: %s: format %q, want %q", dir, d.Format, DatasetFormat)
	}
	want := map[string]int64{}
	for l := 0; l < d.Layers; l++ {
		pn := partNames(l)
		T := int64(d.Tokens)
		want[pn[0]] = T * int64(d.Hidden) * 2
		want[pn[1]] = T * int64(d.Hidden) * 2
		want[pn[2]] = T * int64((d.FFN+7)/8)
		want[pn[3]] = T * int64(d.Heads) * 2
	}
	seen := map[string]bool{}
	for _, p := range d.Parts {
		w, ok := want[p.Name]
		if !ok {
			return nil, fmt.Errorf("sparsity: %s: unexpected part %q in the manifest", dir, p.Name)
		}
		if p.Bytes != w {
			return nil, fmt.Errorf("sparsity: %s: part %s should hold %d bytes, manifest says %d", dir, p.Name, w, p.Bytes)
		}
		if err := verifyPart(filepath.Join(dir, p.Name), p); err != nil {
			return nil, err
		}
		seen[p.Name] = true
	}
	for name := range want {
		if !seen[name] {
			return nil, fmt.Errorf("sparsity: %s: part %s missing from the manifest", dir, name)
		}
	}
	return d, nil
}

func verifyPart(path string, p Part) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("sparsity: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return fmt.Errorf("sparsity: reading %s: %w", path, err)
	}
	if n != p.Bytes {
		return fmt.Errorf("sparsity: %s has %d bytes, the manifest says %d: damaged or truncated; collect again", path, n, p.Bytes)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != p.SHA256 {
		return fmt.Errorf("sparsity: %s: SHA-256 %s does not match the manifest's %s: damaged; collect again", path, got[:12], p.SHA256[:min(12, len(p.SHA256))])
	}
	return nil
}

// LayerData is one layer's recordings decoded to float32.
type LayerData struct {
	AttnIn, MLPIn []float32 // Tokens×Hidden
	Act           []byte    // Tokens×ceil(FFN/8) bit rows
	HeadNorm      []float32 // Tokens×Heads
}

// Layer reads layer l's recordings; parts not wanted are skipped.
func (d *Dataset) Layer(l int, attn, mlp, act, heads bool) (*LayerData, error) {
	if l < 0 || l >= d.Layers {
		return nil, fmt.Errorf("sparsity: layer %d outside [0, %d)", l, d.Layers)
	}
	pn := partNames(l)
	ld := &LayerData{}
	var err error
	readF16 := func(name string) []float32 {
		if err != nil {
			return nil
		}
		var b []byte
		if b, err = os.ReadFile(filepath.Join(d.Dir, name)); err != nil {
			return nil
		}
		out := make([]float32, len(b)/2)
		for i := range out {
			out[i] = checkpoint.F16ToF32(binary.LittleEndian.Uint16(b[2*i:]))
		}
		return out
	}
	if attn {
		ld.AttnIn = readF16(pn[0])
	}
	if mlp {
		ld.MLPIn = readF16(pn[1])
	}
	if act && err == nil {
		ld.Act, err = os.ReadFile(filepath.Join(d.Dir, pn[2]))
	}
	if heads {
		ld.HeadNorm = readF16(pn[3])
	}
	if err != nil {
		return nil, fmt.Errorf("sparsity: %w", err)
	}
	return ld, nil
}
