package checkpoint

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const sharedModels = "../../shared/data/models"

func f32Bytes(v ...float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func u16Bytes(v ...uint16) []byte {
	b := make([]byte, 2*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint16(b[2*i:], x)
	}
	return b
}

// sampleTensors covers F32, F16, BF16, a scalar and an empty tensor.
func sampleTensors() []Tensor {
	return []Tensor{
		{Name: "w.f32", DType: F32, Shape: []int{2, 3}, Data: f32Bytes(1, 2, 3, -4, 0.5, 1e-3)},
		{Name: "b.f16", DType: F16, Shape: []int{4}, Data: u16Bytes(F32ToF16(1), F32ToF16(-2), 0x7bff, 0x0001)},
		{Name: "c.bf16", DType: BF16, Shape: []int{2, 2}, Data: u16Bytes(F32ToBF16(1), F32ToBF16(-2), F32ToBF16(3.5), 0x7f80)},
		{Name: "scalar", DType: F32, Shape: []int{}, Data: f32Bytes(7)},
		{Name: "empty", DType: I8, Shape: []int{0, 5}, Data: []byte{}},
		{Name: "ids", DType: I64, Shape: []int{2}, Data: make([]byte, 16)},
	}
}

func sameTensor(t *testing.T, got, want Tensor) {
	t.Helper()
	if got.Name != want.Name || got.DType != want.DType || !reflect.DeepEqual(got.Shape, want.Shape) || !bytes.Equal(got.Data, want.Data) {
		t.Errorf("tensor %q: got %v %v (%d bytes), want %v %v (%d bytes)",
			want.Name, got.DType, got.Shape, len(got.Data), want.DType, want.Shape, len(want.Data))
	}
}

func TestSafetensorsRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.safetensors")
	in := sampleTensors()
	meta := map[string]string{"format": "pt", "note": "ünïcode <&>"}
	if err := WriteSafetensors(path, in, meta); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(raw)
	if n%8 != 0 || raw[8+n-1] != '}' && raw[8+n-1] != ' ' {
		t.Errorf("header length %d not 8-aligned or badly padded", n)
	}
	if !bytes.HasPrefix(raw[8:], []byte(`{"__metadata__":{`)) {
		t.Errorf("header starts %q", raw[8:40])
	}
	// Tensors are packed in name order.
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(raw[8:8+n], &hdr); err != nil {
		t.Fatal(err)
	}
	var b struct {
		DataOffsets []int `json:"data_offsets"`
	}
	json.Unmarshal(hdr["b.f16"], &b)
	if !reflect.DeepEqual(b.DataOffsets, []int{0, 8}) {
		t.Errorf("b.f16 offsets %v, want [0 8] (first by name)", b.DataOffsets)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("temporary file left behind: %v", entries)
	}

	s, err := OpenSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	wantNames := []string{"b.f16", "c.bf16", "empty", "ids", "scalar", "w.f32"}
	if got := s.Names(); !reflect.DeepEqual(got, wantNames) {
		t.Errorf("Names = %v, want %v", got, wantNames)
	}
	for _, w := range in {
		got, ok := s.Tensor(w.Name)
		if !ok {
			t.Fatalf("missing %q", w.Name)
		}
		sameTensor(t, got, w)
		if got.File != path {
			t.Errorf("File = %q, want %q", got.File, path)
		}
	}
	if !reflect.DeepEqual(s.Metadata(), meta) {
		t.Errorf("Metadata = %v, want %v", s.Metadata(), meta)
	}
	w, _ := s.Tensor("w.f32")
	v, ok := w.Float32View()
	if !ok || !reflect.DeepEqual(v, []float32{1, 2, 3, -4, 0.5, 1e-3}) {
		t.Errorf("Float32View = %v, %v", v, ok)
	}
	f16, _ := s.Tensor("b.f16")
	dst := make([]float32, 4)
	if err := f16.ToFloat32(dst); err != nil || !reflect.DeepEqual(dst, []float32{1, -2, 65504, float32(math.Ldexp(1, -24))}) {
		t.Errorf("f16 decode = %v, %v", dst, err)
	}
	bf, _ := s.Tensor("c.bf16")
	dst = make([]float32, 4)
	if err := bf.ToFloat32(dst); err != nil || !reflect.DeepEqual(dst, []float32{1, -2, 3.5, float32(math.Inf(1))}) {
		t.Errorf("bf16 decode = %v, %v", dst, err)
	}
	// Shape is a copy.
	bf.Shape[0] = 99
	if again, _ := s.Tensor("c.bf16"); again.Shape[0] != 2 {
		t.Errorf("Tensor returned a shared Shape")
	}
	if _, ok := s.Tensor("nope"); ok {
		t.Errorf("found a missing tensor")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil || len(s.Names()) != 0 {
		t.Errorf("second Close: %v, names %v", err, s.Names())
	}

	// Overwrite in place, without metadata.
	if err := WriteSafetensors(path, in[:1], nil); err != nil {
		t.Fatal(err)
	}
	s2, err := OpenSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if s2.Len() != 1 || len(s2.Metadata()) != 0 {
		t.Errorf("rewritten: %v %v", s2.Names(), s2.Metadata())
	}
}

func TestWriteSafetensorsExactHeader(t *testing.T) {
	data, err := encodeSafetensors([]Tensor{{Name: "a", DType: F32, Shape: []int{1}, Data: f32Bytes(1)}}, map[string]string{"format": "pt"})
	if err != nil {
		t.Fatal(err)
	}
	h := `{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`
	for len(h)%8 != 0 {
		h += " "
	}
	want := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
	want = append(append(want, h...), f32Bytes(1)...)
	if !bytes.Equal(data, want) {
		t.Errorf("encoding\n%q\nwant\n%q", data, want)
	}
}

func TestWriteSafetensorsErrors(t *testing.T) {
	dir := t.TempDir()
	ok := Tensor{Name: "a", DType: F32, Shape: []int{1}, Data: f32Bytes(1)}
	for name, c := range map[string]struct {
		tensors []Tensor
		meta    map[string]string
		want    string
	}{
		"duplicate":  {[]Tensor{ok, ok}, nil, `two tensors named "a"`},
		"size":       {[]Tensor{{Name: "s", DType: F16, Shape: []int{3}, Data: make([]byte, 4)}}, nil, `"s"`},
		"dtype":      {[]Tensor{{Name: "d", Shape: []int{1}, Data: make([]byte, 4)}}, nil, "invalid dtype"},
		"negative":   {[]Tensor{{Name: "n", DType: U8, Shape: []int{-1}}}, nil, "invalid shape"},
		"empty name": {[]Tensor{{DType: U8, Shape: []int{0}}}, nil, "cannot write"},
		"metadata":   {[]Tensor{{Name: metadataKey, DType: U8, Shape: []int{0}}}, nil, "cannot write"},
		"bad utf8":   {[]Tensor{ok}, map[string]string{"k": "\xff"}, "UTF-8"},
	} {
		path := filepath.Join(dir, "x.safetensors")
		err := WriteSafetensors(path, c.tensors, c.meta)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to mention %q", name, err, c.want)
		}
		if _, err := os.Stat(path); err == nil {
			t.Errorf("%s: file written", name)
		}
	}
	if err := WriteSafetensors(filepath.Join(dir, "nodir", "x.safetensors"), []Tensor{ok}, nil); err == nil {
		t.Errorf("write into a missing directory succeeded")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("files left behind: %v", entries)
	}
}

func writeIndex(t *testing.T, dir string, weightMap map[string]string) {
	t.Helper()
	b, err := json.MarshalIndent(map[string]any{"metadata": map[string]any{"total_size": 1}, "weight_map": weightMap}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, indexFileName), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSafetensorsSharded(t *testing.T) {
	dir := t.TempDir()
	ts := sampleTensors()
	shard1, shard2 := "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
	if err := WriteSafetensors(filepath.Join(dir, shard1), ts[:3], map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	if err := WriteSafetensors(filepath.Join(dir, shard2), ts[3:], map[string]string{"format": "np", "x": "y"}); err != nil {
		t.Fatal(err)
	}
	wm := map[string]string{}
	for i, tt := range ts {
		wm[tt.Name] = shard1
		if i >= 3 {
			wm[tt.Name] = shard2
		}
	}
	writeIndex(t, dir, wm)
	s, err := OpenSafetensors(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Len() != len(ts) {
		t.Errorf("Names = %v", s.Names())
	}
	for _, w := range ts {
		got, ok := s.Tensor(w.Name)
		if !ok {
			t.Fatalf("missing %q", w.Name)
		}
		sameTensor(t, got, w)
		if filepath.Base(got.File) != wm[w.Name] {
			t.Errorf("%q from %s, want %s", w.Name, got.File, wm[w.Name])
		}
	}
	if want := map[string]string{"format": "pt", "x": "y"}; !reflect.DeepEqual(s.Metadata(), want) {
		t.Errorf("Metadata = %v, want %v", s.Metadata(), want)
	}
}

func TestSafetensorsDirectoryLookup(t *testing.T) {
	ts := sampleTensors()[:1]
	// model.safetensors wins over other files.
	dir := t.TempDir()
	WriteSafetensors(filepath.Join(dir, "model.safetensors"), ts, nil)
	WriteSafetensors(filepath.Join(dir, "other.safetensors"), sampleTensors()[1:2], nil)
	s, err := OpenSafetensors(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Tensor(ts[0].Name); !ok || s.Len() != 1 {
		t.Errorf("model.safetensors not chosen: %v", s.Names())
	}
	s.Close()
	// Exactly one other file.
	dir = t.TempDir()
	WriteSafetensors(filepath.Join(dir, "weights.safetensors"), ts, nil)
	s, err = OpenSafetensors(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Two files: ambiguous.
	WriteSafetensors(filepath.Join(dir, "more.safetensors"), ts, nil)
	if _, err := OpenSafetensors(dir); err == nil || !strings.Contains(err.Error(), "exactly one") {
		t.Errorf("ambiguous directory: %v", err)
	}
	// None.
	if _, err := OpenSafetensors(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no ") {
		t.Errorf("empty directory: %v", err)
	}
	if _, err := OpenSafetensors(filepath.Join(dir, "missing.safetensors")); err == nil {
		t.Errorf("missing file opened")
	}
}

// testbedShapes lists a few expected shapes per test-bed.
var testbedShapes = map[string]map[string][]int{
	"testbed-opt-relu": {
		"model.decoder.embed_tokens.weight":                {8192, 512},
		"model.decoder.embed_positions.weight":             {2050, 512},
		"model.decoder.layers.0.fc1.weight":                {2048, 512},
		"model.decoder.layers.7.fc2.weight":                {512, 2048},
		"model.decoder.layers.3.self_attn.q_proj.bias":     {512},
		"model.decoder.layers.3.self_attn.out_proj.weight": {512, 512},
		"model.decoder.final_layer_norm.weight":            {512},
	},
	"testbed-llama-relu": {
		"model.embed_tokens.weight":                      {8192, 512},
		"model.layers.0.self_attn.q_proj.weight":         {512, 512},
		"model.layers.0.self_attn.k_proj.weight":         {128, 512},
		"model.layers.7.self_attn.v_proj.weight":         {128, 512},
		"model.layers.7.mlp.gate_proj.weight":            {1408, 512},
		"model.layers.7.mlp.down_proj.weight":            {512, 1408},
		"model.layers.2.post_attention_layernorm.weight": {512},
		"model.norm.weight":                              {512},
		"lm_head.weight":                                 {8192, 512},
	},
}

func TestTestbeds(t *testing.T) {
	for name, shapes := range testbedShapes {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(sharedModels, name)
			raw, err := os.ReadFile(filepath.Join(dir, indexFileName))
			if err != nil {
				t.Skipf("test-bed not available: %v", err)
			}
			var index struct {
				Metadata struct {
					TotalSize int `json:"total_size"`
				} `json:"metadata"`
				WeightMap map[string]string `json:"weight_map"`
			}
			if err := json.Unmarshal(raw, &index); err != nil {
				t.Fatal(err)
			}
			s, err := OpenSafetensors(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if s.Len() != len(index.WeightMap) {
				t.Errorf("%d tensors, index lists %d", s.Len(), len(index.WeightMap))
			}
			total := 0
			for tn, file := range index.WeightMap {
				tt, ok := s.Tensor(tn)
				if !ok {
					t.Errorf("tensor %q missing", tn)
					continue
				}
				if tt.DType != F16 {
					t.Errorf("%q dtype %v, want F16", tn, tt.DType)
				}
				if filepath.Base(tt.File) != file {
					t.Errorf("%q from %s, index says %s", tn, tt.File, file)
				}
				total += len(tt.Data)
			}
			if total != index.Metadata.TotalSize {
				t.Errorf("total bytes %d, index metadata says %d", total, index.Metadata.TotalSize)
			}
			for tn, want := range shapes {
				tt, ok := s.Tensor(tn)
				if !ok || !reflect.DeepEqual(tt.Shape, want) {
					t.Errorf("%q: shape %v (present %v), want %v", tn, tt.Shape, ok, want)
				}
			}
			emb, _ := s.Tensor(s.Names()[0])
			dst := make([]float32, emb.NumElements())
			if err := emb.ToFloat32(dst); err != nil {
				t.Fatal(err)
			}
			nonzero := 0
			for _, v := range dst {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					t.Fatalf("%q has non-finite values", emb.Name)
				}
				if v != 0 {
					nonzero++
				}
			}
			if nonzero == 0 {
				t.Errorf("%q is all zeros", emb.Name)
			}
		})
	}
}

// rawST builds a safetensors file from a header string and a data buffer.
func rawST(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(b, header...), data...)
}

var corruptSafetensors = []struct {
	name   string
	file   []byte
	tensor string // the tensor the message must name, if any
	want   string
}{
	{"short", []byte{1, 2, 3}, "", "too short"},
	{"header too long", append(binary.LittleEndian.AppendUint64(nil, 1000), `{}`...), "", "header length 1000 is larger than the 2 bytes"},
	{"huge header length", append(binary.LittleEndian.AppendUint64(nil, math.MaxUint64), `{}`...), "", "larger than"},
	{"empty header", rawST(``, nil), "", "does not start with '{'"},
	{"not json", rawST(`{"a": nope}`, nil), "", "invalid JSON"},
	{"truncated json", rawST(`{"a": {"dtype": "F32"`, nil), "", "invalid JSON"},
	{"array", rawST(`[1,2]`, nil), "", "does not start with '{'"},
	{"trailing", rawST(`{} {}`, nil), "", "invalid JSON"},
	{"duplicate", rawST(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, []byte{1, 2}), "", `duplicate key "a"`},
	{"unknown dtype", rawST(`{"w":{"dtype":"F7","shape":[1],"data_offsets":[0,1]}}`, []byte{0}), "w", `unknown dtype "F7"`},
	{"missing offsets", rawST(`{"w":{"dtype":"F32","shape":[1]}}`, nil), "w", "missing"},
	{"null shape", rawST(`{"w":{"dtype":"F32","shape":null,"data_offsets":[0,4]}}`, make([]byte, 4)), "w", "missing"},
	{"not object", rawST(`{"w":[1,2]}`, nil), "w", "expected {dtype"},
	{"negative dim", rawST(`{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, make([]byte, 4)), "w", "invalid shape"},
	{"fractional dim", rawST(`{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}`, make([]byte, 4)), "w", "expected {dtype"},
	{"huge shape", rawST(`{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}`, make([]byte, 4)), "w", "invalid shape"},
	{"huge bytes", rawST(`{"w":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,4]}}`, make([]byte, 4)), "w", "too large"},
	{"one offset", rawST(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[4]}}`, make([]byte, 4)), "w", "data_offsets has 1 values"},
	{"negative offset", rawST(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}`, make([]byte, 4)), "w", "expected {dtype"},
	{"end before begin", rawST(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}`, make([]byte, 4)), "w", "end before begin"},
	{"out of range", rawST(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 4)), "w", "beyond the 4-byte data buffer"},
	{"huge offsets", rawST(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[18446744073709551612,18446744073709551615]}}`, make([]byte, 4)), "w", "beyond"},
	{"size mismatch", rawST(`{"w":{"dtype":"F16","shape":[3],"data_offsets":[0,8]}}`, make([]byte, 8)), "w", "span 8 bytes, expected 6"},
	{"overlap", rawST(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, make([]byte, 12)), "b", "overlap"},
	{"same range", rawST(`{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"I8","shape":[4],"data_offsets":[0,4]}}`, make([]byte, 4)), "a", "overlap"},
	{"metadata not strings", rawST(`{"__metadata__":{"n":1}}`, nil), "", "__metadata__"},
	{"empty name", rawST(`{"":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}`, nil), "", "empty name"},
}

func TestSafetensorsCorrupt(t *testing.T) {
	dir := t.TempDir()
	for i, c := range corruptSafetensors {
		path := filepath.Join(dir, "bad"+string(rune('a'+i))+".safetensors")
		if err := os.WriteFile(path, c.file, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := OpenSafetensors(path)
		if err == nil {
			s.Close()
			t.Errorf("%s: opened", c.name)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, path) || !strings.Contains(msg, c.want) || (c.tensor != "" && !strings.Contains(msg, `"`+c.tensor+`"`)) {
			t.Errorf("%s: error %q should name %s, tensor %q and say %q", c.name, msg, path, c.tensor, c.want)
		}
	}
}

func TestSafetensorsLenient(t *testing.T) {
	// Gaps, trailing bytes, empty tensors inside others' ranges and unknown
	// fields are tolerated; so is a header padded with spaces.
	file := rawST(`{"__metadata__":{"format":"pt"},"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2],"extra":1},"e":{"dtype":"F32","shape":[0,3],"data_offsets":[1,1]},"b":{"dtype":"U8","shape":[1],"data_offsets":[4,5]}}    `,
		[]byte{1, 2, 3, 4, 5, 6})
	ts, meta, err := parseSafetensors("x", file)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 3 || meta["format"] != "pt" || !bytes.Equal(ts["b"].Data, []byte{5}) || len(ts["e"].Data) != 0 {
		t.Errorf("got %v %v", ts, meta)
	}
}

func TestShardedCorrupt(t *testing.T) {
	ts := sampleTensors()
	mk := func(t *testing.T) string {
		dir := t.TempDir()
		if err := WriteSafetensors(filepath.Join(dir, "s1.safetensors"), ts[:2], nil); err != nil {
			t.Fatal(err)
		}
		if err := WriteSafetensors(filepath.Join(dir, "s2.safetensors"), ts[2:], nil); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	full := func() map[string]string {
		wm := map[string]string{}
		for i, tt := range ts {
			wm[tt.Name] = "s1.safetensors"
			if i >= 2 {
				wm[tt.Name] = "s2.safetensors"
			}
		}
		return wm
	}
	check := func(t *testing.T, dir string, want ...string) {
		t.Helper()
		s, err := OpenSafetensors(dir)
		if err == nil {
			s.Close()
			t.Fatalf("opened")
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not mention %q", err, w)
			}
		}
	}
	t.Run("missing shard", func(t *testing.T) {
		dir := mk(t)
		wm := full()
		wm["extra"] = "s3.safetensors"
		writeIndex(t, dir, wm)
		check(t, dir, indexFileName, "s3.safetensors", "missing")
	})
	t.Run("tensor absent", func(t *testing.T) {
		dir := mk(t)
		wm := full()
		wm["ghost"] = "s2.safetensors"
		writeIndex(t, dir, wm)
		check(t, dir, "s2.safetensors", `"ghost"`, "is not in it")
	})
	t.Run("wrong shard", func(t *testing.T) {
		dir := mk(t)
		wm := full()
		wm[ts[0].Name] = "s2.safetensors"
		writeIndex(t, dir, wm)
		check(t, dir, "s2.safetensors", ts[0].Name)
	})
	t.Run("duplicate across shards", func(t *testing.T) {
		dir := mk(t)
		if err := WriteSafetensors(filepath.Join(dir, "s2.safetensors"), ts[1:], nil); err != nil {
			t.Fatal(err)
		}
		writeIndex(t, dir, full())
		check(t, dir, ts[1].Name, "two shards", "s1.safetensors", "s2.safetensors")
	})
	t.Run("corrupt shard", func(t *testing.T) {
		dir := mk(t)
		os.WriteFile(filepath.Join(dir, "s2.safetensors"), rawST(`{"w":{"dtype":"F7","shape":[1],"data_offsets":[0,1]}}`, []byte{0}), 0o644)
		writeIndex(t, dir, full())
		check(t, dir, "s2.safetensors", `"w"`, "F7")
	})
	t.Run("escaping path", func(t *testing.T) {
		dir := mk(t)
		wm := full()
		wm[ts[0].Name] = "../s1.safetensors"
		writeIndex(t, dir, wm)
		check(t, dir, indexFileName, "../s1.safetensors", ts[0].Name)
	})
	t.Run("invalid index", func(t *testing.T) {
		dir := mk(t)
		os.WriteFile(filepath.Join(dir, indexFileName), []byte(`{"weight_map": {`), 0o644)
		check(t, dir, indexFileName, "invalid JSON")
	})
	t.Run("no weight_map", func(t *testing.T) {
		dir := mk(t)
		os.WriteFile(filepath.Join(dir, indexFileName), []byte(`{"metadata": {}}`), 0o644)
		check(t, dir, indexFileName, "weight_map")
	})
	t.Run("duplicate in weight_map", func(t *testing.T) {
		dir := mk(t)
		os.WriteFile(filepath.Join(dir, indexFileName), []byte(`{"weight_map": {"a": "s1.safetensors", "a": "s2.safetensors"}}`), 0o644)
		check(t, dir, indexFileName, `duplicate key "a"`)
	})
	t.Run("non-string file", func(t *testing.T) {
		dir := mk(t)
		os.WriteFile(filepath.Join(dir, indexFileName), []byte(`{"weight_map": {"a": 3}}`), 0o644)
		check(t, dir, indexFileName, `"a"`, "file name")
	})
}
