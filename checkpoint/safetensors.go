package checkpoint

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"

	"dejavu/internal/atomicfile"
)

const (
	// maxHeaderSize bounds the safetensors JSON header, as HF's library does.
	maxHeaderSize = 100_000_000
	metadataKey   = "__metadata__"
	indexFileName = "model.safetensors.index.json"
)

// OpenSafetensors opens a Hugging Face safetensors checkpoint. path is a
// .safetensors file or a directory holding model.safetensors.index.json
// (a sharded checkpoint: its weight_map maps tensor names to shard files),
// or else model.safetensors, or else exactly one *.safetensors file.
//
// Every header is validated: known dtypes, non-negative shapes, data_offsets
// inside the data buffer whose length matches shape and dtype, no two
// tensors overlapping (gaps and trailing bytes are tolerated), no duplicate
// names within or across shards, and every tensor the index lists present
// in its shard. Tensors in a shard that the index does not list are kept.
func OpenSafetensors(path string) (*Store, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	if !fi.IsDir() {
		return openSafetensorsFiles([]string{path}, nil, "")
	}
	index := filepath.Join(path, indexFileName)
	if _, err := os.Stat(index); err == nil {
		return openSharded(path, index)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	single := filepath.Join(path, "model.safetensors")
	if _, err := os.Stat(single); err == nil {
		return openSafetensorsFiles([]string{single}, nil, "")
	}
	matches, err := filepath.Glob(filepath.Join(path, "*.safetensors"))
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %s: %w", path, err)
	}
	switch len(matches) {
	case 1:
		return openSafetensorsFiles(matches, nil, "")
	case 0:
		return nil, fmt.Errorf("checkpoint: %s: no %s, model.safetensors or other *.safetensors file", path, indexFileName)
	default:
		for i, m := range matches {
			matches[i] = filepath.Base(m)
		}
		return nil, fmt.Errorf("checkpoint: %s: no %s and %d *.safetensors files (%s); expected exactly one",
			path, indexFileName, len(matches), strings.Join(matches, ", "))
	}
}

// openSharded opens the shards named by the index file.
func openSharded(dir, index string) (*Store, error) {
	raw, err := os.ReadFile(index)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	top, err := decodeObject(raw)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %s: invalid JSON: %w", index, err)
	}
	var wm json.RawMessage
	for _, kv := range top {
		if kv.key == "weight_map" {
			wm = kv.val
		}
	}
	if wm == nil {
		return nil, fmt.Errorf("checkpoint: %s: no \"weight_map\" object", index)
	}
	entries, err := decodeObject(wm)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %s: weight_map: %w", index, err)
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("checkpoint: %s: weight_map is empty", index)
	}
	want := map[string][]string{} // shard file -> tensor names
	for _, kv := range entries {
		var file string
		if err := json.Unmarshal(kv.val, &file); err != nil {
			return nil, fmt.Errorf("checkpoint: %s: weight_map[%q]: expected a file name string, got %s", index, kv.key, truncate(kv.val))
		}
		if file == "" || !filepath.IsLocal(file) {
			return nil, fmt.Errorf("checkpoint: %s: weight_map[%q]: shard %q is not a file name inside %s", index, kv.key, file, dir)
		}
		want[file] = append(want[file], kv.key)
	}
	files := make([]string, 0, len(want))
	for f := range want {
		files = append(files, f)
	}
	sort.Strings(files)
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = filepath.Join(dir, f)
	}
	return openSafetensorsFiles(paths, func(i int, tensors map[string]Tensor) error {
		for _, name := range want[files[i]] {
			if _, ok := tensors[name]; !ok {
				return fmt.Errorf("checkpoint: %s: tensor %q, which %s maps to this shard, is not in it", paths[i], name, indexFileName)
			}
		}
		return nil
	}, index)
}

// openSafetensorsFiles maps and parses each file, calls check (if not nil)
// on each file's tensors and merges them, rejecting duplicate names.
func openSafetensorsFiles(paths []string, check func(i int, tensors map[string]Tensor) error, index string) (_ *Store, err error) {
	var maps []*mapping
	defer func() {
		if err != nil {
			for _, m := range maps {
				m.close()
			}
		}
	}()
	all := map[string]Tensor{}
	meta := map[string]string{}
	for i, p := range paths {
		m, err := mapFile(p)
		if err != nil {
			if index != "" && errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("checkpoint: %s names shard %s, which is missing: %w", index, filepath.Base(p), err)
			}
			return nil, err
		}
		maps = append(maps, m)
		tensors, md, err := parseSafetensors(p, m.data)
		if err != nil {
			return nil, err
		}
		if check != nil {
			if err := check(i, tensors); err != nil {
				return nil, err
			}
		}
		for name, t := range tensors {
			if prev, ok := all[name]; ok {
				return nil, fmt.Errorf("checkpoint: tensor %q is in two shards: %s and %s", name, prev.File, t.File)
			}
			all[name] = t
		}
		for k, v := range md {
			if _, ok := meta[k]; !ok {
				meta[k] = v
			}
		}
	}
	return newStore(maps, all, meta), nil
}

type keyVal struct {
	key string
	val json.RawMessage
}

// decodeObject decodes one JSON object (followed only by whitespace) into its
// members in order, rejecting duplicate keys.
func decodeObject(data []byte) ([]keyVal, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("expected a JSON object, found %v", tok)
	}
	var out []keyVal
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("expected an object key, found %v", tok)
		}
		if seen[key] {
			return nil, fmt.Errorf("duplicate key %q", key)
		}
		seen[key] = true
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return nil, fmt.Errorf("value of %q: %w", key, err)
		}
		out = append(out, keyVal{key, val})
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		if err == nil {
			err = errors.New("data after the JSON object")
		}
		return nil, err
	}
	return out, nil
}

type tensorInfo struct {
	DType       *string   `json:"dtype"`
	Shape       *[]int64  `json:"shape"`
	DataOffsets *[]uint64 `json:"data_offsets"`
}

// parseSafetensors parses and validates the safetensors file held in data;
// file names it in errors and in the tensors' File.
func parseSafetensors(file string, data []byte) (map[string]Tensor, map[string]string, error) {
	if len(data) < 8 {
		return nil, nil, fmt.Errorf("checkpoint: %s: file is %d bytes, too short for the 8-byte safetensors header length", file, len(data))
	}
	n := binary.LittleEndian.Uint64(data)
	if rest := uint64(len(data) - 8); n > rest {
		return nil, nil, fmt.Errorf("checkpoint: %s: header length %d is larger than the %d bytes that follow it (not a safetensors file?)", file, n, rest)
	}
	if n > maxHeaderSize {
		return nil, nil, fmt.Errorf("checkpoint: %s: header length %d exceeds the %d-byte limit", file, n, maxHeaderSize)
	}
	header := data[8 : 8+n]
	buf := data[8+n:]
	if len(header) == 0 || header[0] != '{' {
		return nil, nil, fmt.Errorf("checkpoint: %s: header does not start with '{' (not a safetensors file?)", file)
	}
	members, err := decodeObject(header)
	if err != nil {
		return nil, nil, fmt.Errorf("checkpoint: %s: invalid JSON header: %w", file, err)
	}
	tensors := make(map[string]Tensor, len(members))
	var meta map[string]string
	type span struct {
		name       string
		begin, end uint64
	}
	spans := make([]span, 0, len(members))
	for _, kv := range members {
		name := kv.key
		if name == metadataKey {
			if err := json.Unmarshal(kv.val, &meta); err != nil {
				return nil, nil, fmt.Errorf("checkpoint: %s: %s must map strings to strings: %w", file, metadataKey, err)
			}
			continue
		}
		if name == "" {
			return nil, nil, fmt.Errorf("checkpoint: %s: tensor with an empty name", file)
		}
		var info tensorInfo
		if err := json.Unmarshal(kv.val, &info); err != nil {
			return nil, nil, fmt.Errorf("checkpoint: %s: tensor %q: expected {dtype, shape, data_offsets}: %w", file, name, err)
		}
		if info.DType == nil || info.Shape == nil || info.DataOffsets == nil {
			return nil, nil, fmt.Errorf("checkpoint: %s: tensor %q: missing dtype, shape or data_offsets in %s", file, name, truncate(kv.val))
		}
		dt, ok := ParseDType(*info.DType)
		if !ok {
			return nil, nil, fmt.Errorf("checkpoint: %s: tensor %q: unknown dtype %q", file, name, *info.DType)
		}
		shape := make([]int, len(*info.Shape))
		for i, d := range *info.Shape {
			shape[i] = int(d)
			if d < 0 || int64(shape[i]) != d {
				return nil, nil, fmt.Errorf("checkpoint: %s: tensor %q: invalid shape %v (negative or too large)", file, name, *info.Shape)
			}
		}
		numel, ok := numElements(shape)
		if !ok {
			return nil, nil, fmt.Errorf("checkpoint: %s: tensor %q: invalid shape %v (negative or too large)", file, name, shape)
		}
		nbytes, ok := mulOK(numel, dt.Size())
		if !ok {
			return nil, nil, fmt.Errorf("checkpoint: %s: tensor %q: shape %v of %v is too large", file, name, shape, dt)
		}
		off := *info.DataOffsets
		if len(off) != 2 {
			return nil, nil, fmt.Errorf("checkpoint: %s: tensor %q: data_offsets has %d values, expected [begin, end]", file, name, len(off))
		}
		begin, end := off[0], off[1]
		if end < begin {
			return nil, nil, fmt.Errorf("checkpoint: %s: tensor %q: data_offsets [%d, %d] end before begin", file, name, begin, end)
		}
		if end > uint64(len(buf)) {
			return nil, nil, fmt.Errorf("checkpoint: %s: tensor %q: data_offsets [%d, %d] beyond the %d-byte data buffer", file, name, begin, end, len(buf))
		}
		if end-begin != uint64(nbytes) {
			return nil, nil, fmt.Errorf("checkpoint: %s: tensor %q: data_offsets [%d, %d] span %d bytes, expected %d (%d elements of shape %v × %d-byte %v)",
				file, name, begin, end, end-begin, nbytes, numel, shape, dt.Size(), dt)
		}
		tensors[name] = Tensor{
			Name:  name,
			DType: dt,
			Shape: shape,
			Data:  buf[begin:end:end],
			File:  file,
		}
		if end > begin {
			spans = append(spans, span{name, begin, end})
		}
	}
	sort.Slice(spans, func(i, j int) bool {
		if spans[i].begin != spans[j].begin {
			return spans[i].begin < spans[j].begin
		}
		return spans[i].name < spans[j].name
	})
	for i := 1; i < len(spans); i++ {
		a, b := spans[i-1], spans[i]
		if b.begin < a.end {
			return nil, nil, fmt.Errorf("checkpoint: %s: tensor %q data_offsets [%d, %d] overlap tensor %q [%d, %d]",
				file, b.name, b.begin, b.end, a.name, a.begin, a.end)
		}
	}
	return tensors, meta, nil
}

func truncate(b []byte) string {
	const max = 80
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}

// WriteSafetensors writes tensors (sorted by name, packed without gaps) and
// the optional string metadata to a safetensors file at path. The JSON header
// is padded with spaces to a multiple of 8 bytes, as HF's library does. The
// file is written atomically: to a temporary file in the same directory,
// synced, then renamed over path. Tensor.File is ignored.
func WriteSafetensors(path string, tensors []Tensor, metadata map[string]string) error {
	sorted, header, err := encodeHeader(tensors, metadata)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(path, func(w io.Writer) error { return writeBody(w, sorted, header) }); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// encodeSafetensors returns the safetensors encoding of tensors and metadata.
func encodeSafetensors(tensors []Tensor, metadata map[string]string) ([]byte, error) {
	sorted, header, err := encodeHeader(tensors, metadata)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := writeBody(&b, sorted, header); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// encodeHeader validates the tensors and returns them sorted by name with
// the padded JSON header.
func encodeHeader(tensors []Tensor, metadata map[string]string) ([]Tensor, []byte, error) {
	sorted := append([]Tensor(nil), tensors...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for i, t := range sorted {
		if t.Name == "" || t.Name == metadataKey || !utf8.ValidString(t.Name) {
			return nil, nil, fmt.Errorf("checkpoint: cannot write a tensor named %q", t.Name)
		}
		if i > 0 && sorted[i-1].Name == t.Name {
			return nil, nil, fmt.Errorf("checkpoint: two tensors named %q", t.Name)
		}
		if _, err := t.check(); err != nil {
			return nil, nil, err
		}
	}
	var h bytes.Buffer
	h.WriteByte('{')
	first := true
	for k, v := range metadata {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, nil, fmt.Errorf("checkpoint: metadata %q: %q is not valid UTF-8", k, v)
		}
	}
	if len(metadata) > 0 {
		m, err := json.Marshal(metadata) // keys sorted
		if err != nil {
			return nil, nil, fmt.Errorf("checkpoint: metadata: %w", err)
		}
		h.WriteString(`"` + metadataKey + `":`)
		h.Write(m)
		first = false
	}
	var off uint64
	for _, t := range sorted {
		if !first {
			h.WriteByte(',')
		}
		first = false
		name, _ := json.Marshal(t.Name)
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		sh, _ := json.Marshal(shape)
		end := off + uint64(len(t.Data))
		fmt.Fprintf(&h, `%s:{"dtype":"%s","shape":%s,"data_offsets":[%d,%d]}`, name, t.DType, sh, off, end)
		off = end
	}
	h.WriteByte('}')
	for h.Len()%8 != 0 {
		h.WriteByte(' ')
	}
	return sorted, h.Bytes(), nil
}

func writeBody(w io.Writer, sorted []Tensor, header []byte) error {
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(header)))
	if _, err := w.Write(n[:]); err != nil {
		return err
	}
	if _, err := w.Write(header); err != nil {
		return err
	}
	for _, t := range sorted {
		if _, err := w.Write(t.Data); err != nil {
			return err
		}
	}
	return nil
}
