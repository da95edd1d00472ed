package checkpoint

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func sampleGGUF() ([]GGUFKV, []GGUFWriteTensor) {
	kvs := []GGUFKV{
		{"general.architecture", GGUFStringValue("llama")},
		{"general.name", GGUFStringValue("tiny")},
		{"llama.block_count", GGUFUint32Value(2)},
		{"llama.rope.freq_base", GGUFFloat32Value(10000)},
		{"tokenizer.ggml.add_bos_token", GGUFBoolValue(true)},
		{"tokenizer.ggml.tokens", GGUFStringsValue([]string{"a", "b", "<s>"})},
		{"tokenizer.ggml.scores", GGUFFloat32sValue([]float32{0, -1, -2})},
		{"tokenizer.ggml.token_type", GGUFInt32sValue([]int32{1, 1, 3})},
		{"x.u8", GGUFValue{Type: GGUFUint8, Value: uint8(7)}},
		{"x.i8", GGUFValue{Type: GGUFInt8, Value: int8(-7)}},
		{"x.u16", GGUFValue{Type: GGUFUint16, Value: uint16(700)}},
		{"x.i16", GGUFValue{Type: GGUFInt16, Value: int16(-700)}},
		{"x.i32", GGUFValue{Type: GGUFInt32, Value: int32(-70000)}},
		{"x.u64", GGUFValue{Type: GGUFUint64, Value: uint64(1 << 40)}},
		{"x.i64", GGUFValue{Type: GGUFInt64, Value: int64(-1 << 40)}},
		{"x.f64", GGUFValue{Type: GGUFFloat64, Value: 2.5}},
		{"x.bools", GGUFValue{Type: GGUFArray, Elem: GGUFBool, Value: []bool{true, false}}},
		{"x.u64s", GGUFValue{Type: GGUFArray, Elem: GGUFUint64, Value: []uint64{1, 2}}},
		{"x.nested", GGUFValue{Type: GGUFArray, Elem: GGUFArray, Value: []GGUFValue{
			GGUFInt32sValue([]int32{1, 2}), GGUFStringsValue([]string{"x"})}}},
	}
	f16 := make([]byte, 0, 2*6)
	for _, v := range []float32{1, -2, 0.5, 3, 4, 5} {
		f16 = binary.LittleEndian.AppendUint16(f16, F32ToF16(v))
	}
	tensors := []GGUFWriteTensor{
		{Name: "m.f32", Type: GGMLF32, Shape: []int{2, 3}, Data: f32Bytes(1, 2, 3, 4, 5, 6)},
		{Name: "m.f16", Type: GGMLF16, Shape: []int{3, 2}, Data: f16},
		{Name: "v.bf16", Type: GGMLBF16, Shape: []int{1}, Load: func() ([]byte, error) {
			return binary.LittleEndian.AppendUint16(nil, F32ToBF16(-1.5)), nil
		}},
	}
	return kvs, tensors
}

func encodeSample(t testing.TB) []byte {
	kvs, tensors := sampleGGUF()
	b, err := EncodeGGUF(kvs, tensors)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGGUFRoundTrip(t *testing.T) {
	kvs, tensors := sampleGGUF()
	path := filepath.Join(t.TempDir(), "x.gguf")
	if err := WriteGGUF(path, kvs, tensors); err != nil {
		t.Fatal(err)
	}
	g, st, err := OpenGGUF(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if g.Version != 3 || g.Alignment != 32 || g.DataOffset%32 != 0 {
		t.Errorf("version %d alignment %d data offset %d", g.Version, g.Alignment, g.DataOffset)
	}
	if len(g.KVs) != len(kvs) {
		t.Fatalf("%d kvs, want %d", len(g.KVs), len(kvs))
	}
	for i, kv := range kvs {
		if !reflect.DeepEqual(g.KVs[i], kv) {
			t.Errorf("kv %d: got %+v, want %+v", i, g.KVs[i], kv)
		}
	}
	if s, _, _ := g.String("general.name"); s != "tiny" {
		t.Errorf("general.name %q", s)
	}
	if n, ok, err := g.Int("llama.block_count", 100); n != 2 || !ok || err != nil {
		t.Errorf("block_count %d %v %v", n, ok, err)
	}
	if _, _, err := g.Int("general.name", 100); err == nil || !strings.Contains(err.Error(), "general.name") {
		t.Errorf("wrong-type error %v", err)
	}
	if ids, _, err := g.Ints("tokenizer.ggml.token_type"); err != nil || !reflect.DeepEqual(ids, []int{1, 1, 3}) {
		t.Errorf("token types %v %v", ids, err)
	}
	m, _ := st.Tensor("m.f32")
	if !reflect.DeepEqual(m.Shape, []int{2, 3}) || m.DType != F32 || m.Float32(4) != 5 {
		t.Errorf("m.f32: %v %v %v", m.Shape, m.DType, m.Float32(4))
	}
	info, _ := g.Tensor("m.f32")
	if !reflect.DeepEqual(info.Dims, []uint64{3, 2}) {
		t.Errorf("dims %v, want ne = [3 2]", info.Dims)
	}
	h, _ := st.Tensor("m.f16")
	if !reflect.DeepEqual(h.Shape, []int{3, 2}) || h.DType != F16 || h.Float32(1) != -2 {
		t.Errorf("m.f16: %v %v", h.Shape, h.DType)
	}
	bf, _ := st.Tensor("v.bf16")
	if bf.DType != BF16 || bf.Float32(0) != -1.5 {
		t.Errorf("v.bf16: %v %v", bf.DType, bf.Float32(0))
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
}

func TestGGUFQuantizedTensors(t *testing.T) {
	// One Q8_0 block, one Q4_0 block of 32 values, one Q4_K, one Q5_K, two
	// Q6_K, two Q5_0 and one Q5_1 block: opened as they are, ggml's blocks,
	// without decoding.
	q8 := binary.LittleEndian.AppendUint16(nil, F32ToF16(0.5))
	for j := 0; j < 32; j++ {
		q8 = append(q8, byte(int8(j-16)))
	}
	q4 := binary.LittleEndian.AppendUint16(nil, F32ToF16(2))
	for j := 0; j < 16; j++ {
		q4 = append(q4, byte(j|(15-j)<<4))
	}
	qk := make([]byte, 144)
	for i := range qk {
		qk[i] = byte(i * 7)
	}
	q5 := make([]byte, 176)
	for i := range q5 {
		q5[i] = byte(i * 5)
	}
	q6 := make([]byte, 2*210)
	for i := range q6 {
		q6[i] = byte(i * 3)
	}
	q50, q51 := make([]byte, 2*22), make([]byte, 24)
	for i := range q50 {
		q50[i] = byte(i * 11)
	}
	for i := range q51 {
		q51[i] = byte(i * 13)
	}
	path := filepath.Join(t.TempDir(), "q.gguf")
	err := WriteGGUF(path, nil, []GGUFWriteTensor{
		{Name: "q8", Type: GGMLQ8_0, Shape: []int{1, 32}, Data: q8},
		{Name: "q4", Type: GGMLQ4_0, Shape: []int{32}, Data: q4},
		{Name: "qk", Type: GGMLQ4_K, Shape: []int{1, 256}, Data: qk},
		{Name: "q5", Type: GGMLQ5_K, Shape: []int{1, 256}, Data: q5},
		{Name: "q6", Type: GGMLQ6_K, Shape: []int{2, 256}, Data: q6},
		{Name: "q50", Type: GGMLQ5_0, Shape: []int{2, 32}, Data: q50},
		{Name: "q51", Type: GGMLQ5_1, Shape: []int{32}, Data: q51},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, st, err := OpenGGUF(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for name, want := range map[string]struct {
		dt   DType
		data []byte
	}{"q8": {Q8_0, q8}, "q4": {Q4_0, q4}, "qk": {Q4_K, qk}, "q5": {Q5_K, q5}, "q6": {Q6_K, q6}, "q50": {Q5_0, q50}, "q51": {Q5_1, q51}} {
		tt, _ := st.Tensor(name)
		if tt.DType != want.dt || !bytes.Equal(tt.Data, want.data) {
			t.Errorf("%s: %v %x, want %v %x", name, tt.DType, tt.Data, want.dt, want.data)
		}
		if g, ok := GGMLTypeOf(tt.DType); !ok || g.String() != tt.DType.String() {
			t.Errorf("%s: GGMLTypeOf(%v) = %v, %v", name, tt.DType, g, ok)
		}
		if e, b, ok := tt.DType.BlockSize(); !ok || len(tt.Data) != tt.NumElements()/e*b {
			t.Errorf("%s: block size %d, %d, %v for %d bytes", name, e, b, ok, len(tt.Data))
		}
		if err := tt.ToFloat32(make([]float32, tt.NumElements())); err == nil {
			t.Errorf("%s: ToFloat32 of %v succeeded", name, tt.DType)
		}
	}
}

// rawGGUF builds a GGUF by hand: header fields then body.
func rawGGUF(version uint32, nTensors, nKV uint64, body ...[]byte) []byte {
	b := []byte("GGUF")
	b = binary.LittleEndian.AppendUint32(b, version)
	b = binary.LittleEndian.AppendUint64(b, nTensors)
	b = binary.LittleEndian.AppendUint64(b, nKV)
	for _, x := range body {
		b = append(b, x...)
	}
	return b
}

func ggufStr(s string) []byte {
	return append(binary.LittleEndian.AppendUint64(nil, uint64(len(s))), s...)
}

func ggufTensorInfo(name string, typ uint32, offset uint64, dims ...uint64) []byte {
	b := ggufStr(name)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(dims)))
	for _, d := range dims {
		b = binary.LittleEndian.AppendUint64(b, d)
	}
	b = binary.LittleEndian.AppendUint32(b, typ)
	return binary.LittleEndian.AppendUint64(b, offset)
}

// padTo pads b with zeros to a multiple of 32 bytes.
func padTo(b []byte) []byte { return append(b, make([]byte, (32-len(b)%32)%32)...) }

var corruptGGUF = func() []struct {
	name, want string
	file       []byte
} {
	valid := encodeSample(nil)
	u32 := func(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
	u64 := func(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }
	q3k := func() []byte {
		b := padTo(rawGGUF(3, 1, 0, ggufTensorInfo("blk.0.attn_q.weight", uint32(GGMLQ3_K), 0, 256, 1)))
		return append(b, make([]byte, 128)...)
	}()
	return []struct {
		name, want string
		file       []byte
	}{
		{"empty", "too short", nil},
		{"bad magic", "bad magic", append([]byte("GGUG"), valid[4:]...)},
		{"version 1", "version 1 is not supported", rawGGUF(1, 0, 0)},
		{"version 4", "version 4 is not supported", rawGGUF(4, 0, 0)},
		{"big endian", "big-endian", rawGGUF(0x03000000, 0, 0)},
		{"truncated header", "version", valid[:6]},
		{"truncated counts", "tensor count", valid[:12]},
		{"truncated metadata", "metadata", valid[:200]},
		{"truncated data", "past the end", valid[:len(valid)-40]},
		{"huge tensor count", "tensor count", rawGGUF(3, 1<<60, 0)},
		{"huge kv count", "metadata count", rawGGUF(3, 0, 1<<62)},
		{"huge string", "count", rawGGUF(3, 0, 1, u64(1<<50))},
		{"huge array", "array of uint32", rawGGUF(3, 0, 1, ggufStr("k"), u32(uint32(GGUFArray)), u32(uint32(GGUFUint32)), u64(1<<40))},
		{"unknown value type", "unknown value type 99", rawGGUF(3, 0, 1, ggufStr("k"), u32(99))},
		{"bad bool", "neither 0 nor 1", rawGGUF(3, 0, 1, ggufStr("k"), u32(uint32(GGUFBool)), []byte{2})},
		{"duplicate key", "appears twice", rawGGUF(3, 0, 2, ggufStr("k"), u32(uint32(GGUFUint8)), []byte{1}, ggufStr("k"), u32(uint32(GGUFUint8)), []byte{1})},
		{"bad alignment", "power of two", rawGGUF(3, 0, 1, ggufStr("general.alignment"), u32(uint32(GGUFUint32)), u32(24))},
		{"unknown tensor type", "unknown tensor type 77", padTo(rawGGUF(3, 1, 0, ggufTensorInfo("w", 77, 0, 4)))},
		{"too many dims", "5 dims", padTo(rawGGUF(3, 1, 0, ggufTensorInfo("w", 0, 0, 1, 1, 1, 1, 1)))},
		{"huge dims", "too large", padTo(rawGGUF(3, 1, 0, ggufTensorInfo("w", 0, 0, 1<<40, 1<<40)))},
		{"offset out of range", "past the end", append(padTo(rawGGUF(3, 1, 0, ggufTensorInfo("w", 0, 64, 4))), make([]byte, 16)...)},
		{"unaligned offset", "not a multiple of the alignment", append(padTo(rawGGUF(3, 1, 0, ggufTensorInfo("w", 0, 4, 1))), make([]byte, 16)...)},
		{"bad block", "block size", padTo(rawGGUF(3, 1, 0, ggufTensorInfo("w", uint32(GGMLQ8_0), 0, 31)))},
		{"overlap", "overlaps", append(padTo(rawGGUF(3, 2, 0, ggufTensorInfo("a", 0, 0, 16), ggufTensorInfo("b", 0, 32, 16))), make([]byte, 96)...)},
		{"duplicate tensor", "appears twice", append(padTo(rawGGUF(3, 2, 0, ggufTensorInfo("a", 0, 0, 1), ggufTensorInfo("a", 0, 32, 1))), make([]byte, 64)...)},
		{"quantized Q3_K", `tensor "blk.0.attn_q.weight" has type Q3_K, which is not supported`, q3k},
	}
}()

func TestGGUFMalformed(t *testing.T) {
	for _, c := range corruptGGUF {
		path := filepath.Join(t.TempDir(), "bad.gguf")
		if err := os.WriteFile(path, c.file, 0o644); err != nil {
			t.Fatal(err)
		}
		_, st, err := OpenGGUF(path)
		if err == nil {
			st.Close()
			t.Errorf("%s: no error", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %q does not name the file and %q", c.name, err, c.want)
		}
	}
}

func FuzzGGUFHeader(f *testing.F) {
	valid := encodeSample(f)
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	for _, c := range corruptGGUF {
		f.Add(c.file)
	}
	empty, _ := EncodeGGUF(nil, nil)
	f.Add(empty)
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := ParseGGUF("fuzz.gguf", data)
		if err != nil {
			return
		}
		if g.Version != 2 && g.Version != 3 || g.Alignment <= 0 || g.Alignment&(g.Alignment-1) != 0 {
			t.Fatalf("accepted version %d alignment %d", g.Version, g.Alignment)
		}
		tensors := make([]GGUFWriteTensor, 0, len(g.Tensors))
		for _, ti := range g.Tensors {
			begin := g.DataOffset + int64(ti.Offset)
			if begin < 0 || begin+int64(ti.Size) > int64(len(data)) {
				t.Fatalf("tensor %q outside the file", ti.Name)
			}
			tt, err := g.tensor(ti, data)
			if err != nil {
				continue // an unsupported quantized type
			}
			n, err := tt.check()
			if err != nil {
				t.Fatalf("accepted an inconsistent tensor: %v", err)
			}
			if tt.DType.IsFloat() {
				if err := tt.ToFloat32(make([]float32, n)); err != nil {
					t.Fatal(err)
				}
			}
			tensors = append(tensors, GGUFWriteTensor{Name: ti.Name, Type: ti.Type, Shape: ti.Shape(),
				Data: data[begin : begin+int64(ti.Size)]})
		}
		// Re-encoding and re-parsing keeps the metadata and the tensors.
		enc, err := EncodeGGUF(g.KVs, tensors)
		if err != nil {
			t.Fatalf("re-encoding: %v", err)
		}
		again, err := ParseGGUF("re.gguf", enc)
		if err != nil {
			t.Fatalf("re-parsing: %v", err)
		}
		if enc2, err := EncodeGGUF(again.KVs, tensors); err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("metadata changed in a round trip (%v)", err)
		}
		for i, tw := range tensors {
			ti := again.Tensors[i]
			b := enc[again.DataOffset+int64(ti.Offset):][:ti.Size]
			if ti.Name != tw.Name || ti.Type != tw.Type || !reflect.DeepEqual(ti.Shape(), tw.Shape) || !bytes.Equal(b, tw.Data) {
				t.Fatalf("tensor %q changed", tw.Name)
			}
		}
	})
}
