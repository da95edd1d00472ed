package checkpoint

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"sort"
	"strings"
)

// GGUF is the header of a GGUF file (llama.cpp's format, versions 2 and 3):
// its metadata key-values in file order and its tensor infos. Every string
// is copied out of the file, so a GGUF stays valid after the Store that
// OpenGGUF returns with it is closed.
type GGUF struct {
	Path      string
	Version   uint32
	Alignment int // general.alignment, 32 by default
	KVs       []GGUFKV
	Tensors   []GGUFTensorInfo
	// DataOffset is the file offset of the tensor data section; tensor
	// offsets are relative to it.
	DataOffset int64

	index map[string]int // key -> index into KVs
}

// GGUFKV is one metadata key-value pair.
type GGUFKV struct {
	Key   string
	Value GGUFValue
}

// GGUFValueType is the type of a GGUF metadata value.
type GGUFValueType uint32

// GGUF metadata value types, numbered as in the file format.
const (
	GGUFUint8 GGUFValueType = iota
	GGUFInt8
	GGUFUint16
	GGUFInt16
	GGUFUint32
	GGUFInt32
	GGUFFloat32
	GGUFBool
	GGUFString
	GGUFArray
	GGUFUint64
	GGUFInt64
	GGUFFloat64
	numGGUFValueTypes
)

var ggufValueTypeNames = [numGGUFValueTypes]string{"uint8", "int8", "uint16", "int16", "uint32", "int32",
	"float32", "bool", "string", "array", "uint64", "int64", "float64"}

// String is the name of t ("uint32", "array", ...).
func (t GGUFValueType) String() string {
	if t < numGGUFValueTypes {
		return ggufValueTypeNames[t]
	}
	return fmt.Sprintf("GGUFValueType(%d)", uint32(t))
}

// size is the encoded size of a scalar of type t (0 for string and array).
func (t GGUFValueType) size() int {
	switch t {
	case GGUFUint8, GGUFInt8, GGUFBool:
		return 1
	case GGUFUint16, GGUFInt16:
		return 2
	case GGUFUint32, GGUFInt32, GGUFFloat32:
		return 4
	case GGUFUint64, GGUFInt64, GGUFFloat64:
		return 8
	}
	return 0
}

// GGUFValue is a metadata value. Value holds a Go value of the matching
// type: uint8, int8, uint16, int16, uint32, int32, float32, bool, string,
// uint64, int64 or float64; for an array (Type GGUFArray) a slice of the
// element type Elem ([]uint8 ... []string, []float64), or []GGUFValue for an
// array of arrays.
type GGUFValue struct {
	Type  GGUFValueType
	Elem  GGUFValueType // element type of an array
	Value any
}

// GGUFStringValue is a string metadata value (for WriteGGUF).
func GGUFStringValue(s string) GGUFValue { return GGUFValue{Type: GGUFString, Value: s} }

// GGUFUint32Value is a uint32 metadata value.
func GGUFUint32Value(v uint32) GGUFValue { return GGUFValue{Type: GGUFUint32, Value: v} }

// GGUFFloat32Value is a float32 metadata value.
func GGUFFloat32Value(v float32) GGUFValue { return GGUFValue{Type: GGUFFloat32, Value: v} }

// GGUFBoolValue is a bool metadata value.
func GGUFBoolValue(v bool) GGUFValue { return GGUFValue{Type: GGUFBool, Value: v} }

// GGUFStringsValue is an array-of-strings metadata value.
func GGUFStringsValue(v []string) GGUFValue {
	return GGUFValue{Type: GGUFArray, Elem: GGUFString, Value: v}
}

// GGUFFloat32sValue is an array-of-float32 metadata value.
func GGUFFloat32sValue(v []float32) GGUFValue {
	return GGUFValue{Type: GGUFArray, Elem: GGUFFloat32, Value: v}
}

// GGUFInt32sValue is an array-of-int32 metadata value.
func GGUFInt32sValue(v []int32) GGUFValue {
	return GGUFValue{Type: GGUFArray, Elem: GGUFInt32, Value: v}
}

// GGMLType is the element type of a GGUF tensor (ggml_type).
type GGMLType uint32

// Tensor types of ggml. F32, F16, BF16, the integer types and the block
// types Q8_0, Q4_0, Q5_0, Q5_1, Q4_K, Q5_K and Q6_K map to a DType; the other quantized types are
// recognised and reported as not supported.
const (
	GGMLF32     GGMLType = 0
	GGMLF16     GGMLType = 1
	GGMLQ4_0    GGMLType = 2
	GGMLQ4_1    GGMLType = 3
	GGMLQ5_0    GGMLType = 6
	GGMLQ5_1    GGMLType = 7
	GGMLQ8_0    GGMLType = 8
	GGMLQ8_1    GGMLType = 9
	GGMLQ2_K    GGMLType = 10
	GGMLQ3_K    GGMLType = 11
	GGMLQ4_K    GGMLType = 12
	GGMLQ5_K    GGMLType = 13
	GGMLQ6_K    GGMLType = 14
	GGMLQ8_K    GGMLType = 15
	GGMLIQ2_XXS GGMLType = 16
	GGMLIQ2_XS  GGMLType = 17
	GGMLIQ3_XXS GGMLType = 18
	GGMLIQ1_S   GGMLType = 19
	GGMLIQ4_NL  GGMLType = 20
	GGMLIQ3_S   GGMLType = 21
	GGMLIQ2_S   GGMLType = 22
	GGMLIQ4_XS  GGMLType = 23
	GGMLI8      GGMLType = 24
	GGMLI16     GGMLType = 25
	GGMLI32     GGMLType = 26
	GGMLI64     GGMLType = 27
	GGMLF64     GGMLType = 28
	GGMLIQ1_M   GGMLType = 29
	GGMLBF16    GGMLType = 30
	GGMLTQ1_0   GGMLType = 34
	GGMLTQ2_0   GGMLType = 35
	GGMLMXFP4   GGMLType = 39
)

// Quantized block types of GGUF tensors, loaded without decoding: Data
// holds ggml's blocks (row-major, a row is Shape[last]/Block blocks) and
// Size is 0, since an element has no byte size of its own; BlockSize gives
// the block's.
const (
	Q8_0 DType = 64 + iota
	Q4_0
	Q4_K
	Q5_K
	Q6_K
	Q5_0
	Q5_1
)

var blockDTypes = map[DType]struct {
	name         string
	elems, bytes int
	ggml         GGMLType
}{
	Q8_0: {"Q8_0", 32, 34, GGMLQ8_0},
	Q4_0: {"Q4_0", 32, 18, GGMLQ4_0},
	Q4_K: {"Q4_K", 256, 144, GGMLQ4_K},
	Q5_K: {"Q5_K", 256, 176, GGMLQ5_K},
	Q6_K: {"Q6_K", 256, 210, GGMLQ6_K},
	Q5_0: {"Q5_0", 32, 22, GGMLQ5_0},
	Q5_1: {"Q5_1", 32, 24, GGMLQ5_1},
}

// BlockSize is the number of elements and bytes of one block of a
// quantized block type; ok is false for other dtypes.
func (d DType) BlockSize() (elems, bytes int, ok bool) {
	b, ok := blockDTypes[d]
	return b.elems, b.bytes, ok
}

type ggmlTypeInfo struct {
	name      string
	block     int   // elements per block
	size      int   // bytes per block
	dtype     DType // the DType of the type, 0 for unsupported quantized types
	quantized bool
}

var ggmlTypes = map[GGMLType]ggmlTypeInfo{
	GGMLF32: {"F32", 1, 4, F32, false}, GGMLF16: {"F16", 1, 2, F16, false}, GGMLBF16: {"BF16", 1, 2, BF16, false},
	GGMLI8: {"I8", 1, 1, I8, false}, GGMLI16: {"I16", 1, 2, I16, false}, GGMLI32: {"I32", 1, 4, I32, false},
	GGMLI64: {"I64", 1, 8, I64, false}, GGMLF64: {"F64", 1, 8, F64, false},
	GGMLQ4_0: {"Q4_0", 32, 18, Q4_0, true}, GGMLQ4_1: {"Q4_1", 32, 20, 0, true},
	GGMLQ5_0: {"Q5_0", 32, 22, Q5_0, true}, GGMLQ5_1: {"Q5_1", 32, 24, Q5_1, true},
	GGMLQ8_0: {"Q8_0", 32, 34, Q8_0, true}, GGMLQ8_1: {"Q8_1", 32, 36, 0, true},
	GGMLQ2_K: {"Q2_K", 256, 84, 0, true}, GGMLQ3_K: {"Q3_K", 256, 110, 0, true},
	GGMLQ4_K: {"Q4_K", 256, 144, Q4_K, true}, GGMLQ5_K: {"Q5_K", 256, 176, Q5_K, true},
	GGMLQ6_K: {"Q6_K", 256, 210, Q6_K, true}, GGMLQ8_K: {"Q8_K", 256, 292, 0, true},
	GGMLIQ2_XXS: {"IQ2_XXS", 256, 66, 0, true}, GGMLIQ2_XS: {"IQ2_XS", 256, 74, 0, true},
	GGMLIQ3_XXS: {"IQ3_XXS", 256, 98, 0, true}, GGMLIQ1_S: {"IQ1_S", 256, 50, 0, true},
	GGMLIQ4_NL: {"IQ4_NL", 32, 18, 0, true}, GGMLIQ3_S: {"IQ3_S", 256, 110, 0, true},
	GGMLIQ2_S: {"IQ2_S", 256, 82, 0, true}, GGMLIQ4_XS: {"IQ4_XS", 256, 136, 0, true},
	GGMLIQ1_M: {"IQ1_M", 256, 56, 0, true}, GGMLTQ1_0: {"TQ1_0", 256, 54, 0, true},
	GGMLTQ2_0: {"TQ2_0", 256, 66, 0, true}, GGMLMXFP4: {"MXFP4", 32, 17, 0, true},
}

// String is ggml's name of t ("F16", "Q4_K", ...).
func (t GGMLType) String() string {
	if info, ok := ggmlTypes[t]; ok {
		return info.name
	}
	return fmt.Sprintf("GGMLType(%d)", uint32(t))
}

// GGMLTypeOf returns the GGML type of an F32, F16, BF16 or block DType.
func GGMLTypeOf(d DType) (GGMLType, bool) {
	if b, ok := blockDTypes[d]; ok {
		return b.ggml, true
	}
	switch d {
	case F32:
		return GGMLF32, true
	case F16:
		return GGMLF16, true
	case BF16:
		return GGMLBF16, true
	}
	return 0, false
}

// GGUFTensorInfo describes one tensor of a GGUF file.
type GGUFTensorInfo struct {
	Name string
	Type GGMLType
	// Dims are ggml's ne: fastest-varying first, so Dims[0] is the row
	// length. Shape gives the row-major shape.
	Dims   []uint64
	Offset uint64 // from GGUF.DataOffset
	Size   int    // bytes
}

// Shape is the row-major shape of the tensor (Dims reversed): a GGUF
// matrix with Dims [cols, rows] has Shape [rows, cols].
func (t GGUFTensorInfo) Shape() []int {
	s := make([]int, len(t.Dims))
	for i, d := range t.Dims {
		s[len(s)-1-i] = int(d)
	}
	return s
}

const (
	ggufMagic            = "GGUF"
	ggufDefaultAlignment = 32
	ggufMaxDims          = 4 // GGML_MAX_DIMS
	ggufMaxDepth         = 8 // nesting of arrays of arrays
	ggufMaxAlignment     = 1 << 30
	ggufMaxKeyLen        = 1 << 16
)

// ReadGGUF reads and validates the header of the GGUF file at path
// (metadata and tensor infos) without keeping the file open.
func ReadGGUF(path string) (*GGUF, error) {
	m, err := mapFile(path)
	if err != nil {
		return nil, err
	}
	defer m.close()
	return ParseGGUF(path, m.data)
}

// OpenGGUF opens the GGUF file at path: its header and a Store of its
// tensors, with row-major shapes (GGUF dims reversed) and ggml's names.
// Every tensor aliases the memory-mapped file: F32, F16, BF16 and integer
// tensors as elements, Q8_0, Q4_0, Q5_0, Q5_1, Q4_K, Q5_K and Q6_K tensors
// as ggml's blocks (DTypes of the same names; see BlockSize). Any other quantized type gives an
// error naming the type and the tensor.
func OpenGGUF(path string) (*GGUF, *Store, error) {
	m, err := mapFile(path)
	if err != nil {
		return nil, nil, err
	}
	g, err := ParseGGUF(path, m.data)
	if err != nil {
		m.close()
		return nil, nil, err
	}
	tensors := make(map[string]Tensor, len(g.Tensors))
	for _, ti := range g.Tensors {
		t, err := g.tensor(ti, m.data)
		if err != nil {
			m.close()
			return nil, nil, err
		}
		tensors[ti.Name] = t
	}
	meta := map[string]string{}
	for _, kv := range g.KVs {
		if s, ok := kv.Value.Value.(string); ok && kv.Value.Type == GGUFString {
			meta[kv.Key] = s
		}
	}
	return g, newStore([]*mapping{m}, tensors, meta), nil
}

// tensor makes the Tensor of ti over the file's bytes.
func (g *GGUF) tensor(ti GGUFTensorInfo, data []byte) (Tensor, error) {
	info := ggmlTypes[ti.Type] // validated by ParseGGUF
	begin := g.DataOffset + int64(ti.Offset)
	raw := data[begin : begin+int64(ti.Size) : begin+int64(ti.Size)]
	t := Tensor{Name: ti.Name, DType: info.dtype, Shape: ti.Shape(), Data: raw, File: g.Path}
	if info.dtype == 0 {
		return Tensor{}, fmt.Errorf("checkpoint: %s: tensor %q has type %v, which is not supported (supported: F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K; requantize with llama-quantize)", g.Path, ti.Name, ti.Type)
	}
	return t, nil
}

// ggufReader decodes little-endian GGUF fields with bounds checks.
type ggufReader struct {
	file string
	b    []byte
	pos  int
}

var errTruncated = errors.New("unexpected end of file")

func (r *ggufReader) need(n int) error {
	if n < 0 || n > len(r.b)-r.pos {
		return errTruncated
	}
	return nil
}

func (r *ggufReader) u32() (uint32, error) {
	if err := r.need(4); err != nil {
		return 0, err
	}
	v := binary.LittleEndian.Uint32(r.b[r.pos:])
	r.pos += 4
	return v, nil
}

func (r *ggufReader) u64() (uint64, error) {
	if err := r.need(8); err != nil {
		return 0, err
	}
	v := binary.LittleEndian.Uint64(r.b[r.pos:])
	r.pos += 8
	return v, nil
}

// count reads a u64 count of items of at least min bytes each, rejecting
// counts that the rest of the file cannot hold (so allocations stay bounded
// by the file size).
func (r *ggufReader) count(min int) (int, error) {
	n, err := r.u64()
	if err != nil {
		return 0, err
	}
	if rest := uint64(len(r.b) - r.pos); n > rest/uint64(min) {
		return 0, fmt.Errorf("count %d exceeds what the remaining %d bytes can hold", n, rest)
	}
	return int(n), nil
}

func (r *ggufReader) str() (string, error) {
	n, err := r.count(1)
	if err != nil {
		return "", err
	}
	s := string(r.b[r.pos : r.pos+n])
	r.pos += n
	return s, nil
}

// scalar reads a value of a scalar type t.
func (r *ggufReader) scalar(t GGUFValueType) (any, error) {
	if t == GGUFString {
		return r.str()
	}
	n := t.size()
	if n == 0 {
		return nil, fmt.Errorf("unknown value type %d", uint32(t))
	}
	if err := r.need(n); err != nil {
		return nil, err
	}
	b := r.b[r.pos : r.pos+n]
	r.pos += n
	switch t {
	case GGUFUint8:
		return b[0], nil
	case GGUFInt8:
		return int8(b[0]), nil
	case GGUFBool:
		if b[0] > 1 {
			return nil, fmt.Errorf("bool value %d is neither 0 nor 1", b[0])
		}
		return b[0] == 1, nil
	case GGUFUint16:
		return binary.LittleEndian.Uint16(b), nil
	case GGUFInt16:
		return int16(binary.LittleEndian.Uint16(b)), nil
	case GGUFUint32:
		return binary.LittleEndian.Uint32(b), nil
	case GGUFInt32:
		return int32(binary.LittleEndian.Uint32(b)), nil
	case GGUFFloat32:
		return math.Float32frombits(binary.LittleEndian.Uint32(b)), nil
	case GGUFUint64:
		return binary.LittleEndian.Uint64(b), nil
	case GGUFInt64:
		return int64(binary.LittleEndian.Uint64(b)), nil
	default: // GGUFFloat64
		return math.Float64frombits(binary.LittleEndian.Uint64(b)), nil
	}
}

// minSize is the fewest bytes a value of type t takes.
func (t GGUFValueType) minSize() int {
	switch t {
	case GGUFString:
		return 8
	case GGUFArray:
		return 12
	}
	return max(t.size(), 1)
}

// value reads a value of type t; depth bounds the nesting of arrays.
func (r *ggufReader) value(t GGUFValueType, depth int) (GGUFValue, error) {
	if t != GGUFArray {
		v, err := r.scalar(t)
		return GGUFValue{Type: t, Value: v}, err
	}
	if depth >= ggufMaxDepth {
		return GGUFValue{}, fmt.Errorf("arrays nested deeper than %d", ggufMaxDepth)
	}
	et32, err := r.u32()
	if err != nil {
		return GGUFValue{}, err
	}
	et := GGUFValueType(et32)
	if et >= numGGUFValueTypes {
		return GGUFValue{}, fmt.Errorf("array of unknown value type %d", et32)
	}
	n, err := r.count(et.minSize())
	if err != nil {
		return GGUFValue{}, fmt.Errorf("array of %v: %w", et, err)
	}
	out := GGUFValue{Type: GGUFArray, Elem: et}
	if et == GGUFArray {
		vs := make([]GGUFValue, n)
		for i := range vs {
			if vs[i], err = r.value(et, depth+1); err != nil {
				return GGUFValue{}, fmt.Errorf("element %d: %w", i, err)
			}
		}
		out.Value = vs
		return out, nil
	}
	if et == GGUFString {
		vs := make([]string, n)
		for i := range vs {
			if vs[i], err = r.str(); err != nil {
				return GGUFValue{}, fmt.Errorf("element %d: %w", i, err)
			}
		}
		out.Value = vs
		return out, nil
	}
	sz := et.size()
	b := r.b[r.pos : r.pos+n*sz] // count() checked the bytes are there
	r.pos += n * sz
	switch et {
	case GGUFUint8:
		out.Value = slices.Clone(b)
	case GGUFInt8:
		v := make([]int8, n)
		for i := range v {
			v[i] = int8(b[i])
		}
		out.Value = v
	case GGUFBool:
		v := make([]bool, n)
		for i := range v {
			if b[i] > 1 {
				return GGUFValue{}, fmt.Errorf("element %d: bool value %d is neither 0 nor 1", i, b[i])
			}
			v[i] = b[i] == 1
		}
		out.Value = v
	case GGUFUint16:
		v := make([]uint16, n)
		for i := range v {
			v[i] = binary.LittleEndian.Uint16(b[2*i:])
		}
		out.Value = v
	case GGUFInt16:
		v := make([]int16, n)
		for i := range v {
			v[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
		}
		out.Value = v
	case GGUFUint32:
		v := make([]uint32, n)
		for i := range v {
			v[i] = binary.LittleEndian.Uint32(b[4*i:])
		}
		out.Value = v
	case GGUFInt32:
		v := make([]int32, n)
		for i := range v {
			v[i] = int32(binary.LittleEndian.Uint32(b[4*i:]))
		}
		out.Value = v
	case GGUFFloat32:
		v := make([]float32, n)
		for i := range v {
			v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		out.Value = v
	case GGUFUint64:
		v := make([]uint64, n)
		for i := range v {
			v[i] = binary.LittleEndian.Uint64(b[8*i:])
		}
		out.Value = v
	case GGUFInt64:
		v := make([]int64, n)
		for i := range v {
			v[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
		}
		out.Value = v
	case GGUFFloat64:
		v := make([]float64, n)
		for i := range v {
			v[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
		}
		out.Value = v
	}
	return out, nil
}

// ParseGGUF parses and validates the GGUF file held in data; file names it
// in errors. It checks the magic and version (2 or 3, little-endian), every
// metadata value (known types, lengths within the file, no duplicate keys),
// general.alignment (a power of two), and every tensor info: a unique
// name, 1 to 4 dims whose product fits, a known type whose block size
// divides the row length, an offset that is a multiple of the alignment,
// data inside the file and not overlapping another tensor.
func ParseGGUF(file string, data []byte) (*GGUF, error) {
	g, err := parseGGUF(file, data)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %s: %w", file, err)
	}
	return g, nil
}

func parseGGUF(file string, data []byte) (*GGUF, error) {
	if len(data) < 4 || string(data[:4]) != ggufMagic {
		if len(data) < 4 {
			return nil, fmt.Errorf("file is %d bytes, too short for the GGUF magic", len(data))
		}
		return nil, fmt.Errorf("bad magic %q, want %q (not a GGUF file)", data[:4], ggufMagic)
	}
	r := &ggufReader{file: file, b: data, pos: 4}
	version, err := r.u32()
	if err != nil {
		return nil, fmt.Errorf("reading the version: %w", err)
	}
	switch {
	case version == 2 || version == 3:
	case version == 1:
		return nil, fmt.Errorf("GGUF version 1 is not supported (only versions 2 and 3)")
	case version&0xffff == 0 && bits.ReverseBytes32(version) <= 3:
		return nil, fmt.Errorf("big-endian GGUF (version %d byte-swapped) is not supported", bits.ReverseBytes32(version))
	default:
		return nil, fmt.Errorf("GGUF version %d is not supported (only versions 2 and 3)", version)
	}
	g := &GGUF{Path: file, Version: version, Alignment: ggufDefaultAlignment, index: map[string]int{}}
	nTensors, err := r.count(8 + 4 + 4 + 8) // name length, n_dims, type, offset
	if err != nil {
		return nil, fmt.Errorf("tensor count: %w", err)
	}
	nKV, err := r.count(8 + 4 + 1)
	if err != nil {
		return nil, fmt.Errorf("metadata count: %w", err)
	}
	g.KVs = make([]GGUFKV, 0, nKV)
	for i := 0; i < nKV; i++ {
		key, err := r.str()
		if err != nil {
			return nil, fmt.Errorf("metadata %d: key: %w", i, err)
		}
		if key == "" || len(key) > ggufMaxKeyLen {
			return nil, fmt.Errorf("metadata %d: key of %d bytes (want 1 to %d)", i, len(key), ggufMaxKeyLen)
		}
		if _, dup := g.index[key]; dup {
			return nil, fmt.Errorf("metadata key %q appears twice", key)
		}
		t, err := r.u32()
		if err != nil {
			return nil, fmt.Errorf("metadata %q: type: %w", key, err)
		}
		if GGUFValueType(t) >= numGGUFValueTypes {
			return nil, fmt.Errorf("metadata %q: unknown value type %d", key, t)
		}
		v, err := r.value(GGUFValueType(t), 0)
		if err != nil {
			return nil, fmt.Errorf("metadata %q (%v): %w", key, GGUFValueType(t), err)
		}
		g.index[key] = len(g.KVs)
		g.KVs = append(g.KVs, GGUFKV{Key: key, Value: v})
	}
	if v, ok := g.Get("general.alignment"); ok {
		a, ok := v.uint()
		if !ok || v.Type == GGUFArray || a == 0 || a&(a-1) != 0 || a > ggufMaxAlignment {
			return nil, fmt.Errorf("metadata %q: %v %v is not a power of two up to %d", "general.alignment", v.Type, v.Value, ggufMaxAlignment)
		}
		g.Alignment = int(a)
	}
	g.Tensors = make([]GGUFTensorInfo, 0, nTensors)
	names := make(map[string]bool, nTensors)
	for i := 0; i < nTensors; i++ {
		ti, err := r.tensorInfo()
		if err != nil {
			if ti.Name != "" {
				return nil, fmt.Errorf("tensor %d %q: %w", i, ti.Name, err)
			}
			return nil, fmt.Errorf("tensor info %d: %w", i, err)
		}
		if names[ti.Name] {
			return nil, fmt.Errorf("tensor %q appears twice", ti.Name)
		}
		names[ti.Name] = true
		g.Tensors = append(g.Tensors, ti)
	}
	g.DataOffset = int64(alignUp(r.pos, g.Alignment))
	avail := int64(len(data)) - g.DataOffset
	type span struct {
		name       string
		begin, end uint64
	}
	spans := make([]span, 0, len(g.Tensors))
	for _, ti := range g.Tensors {
		if ti.Offset%uint64(g.Alignment) != 0 {
			return nil, fmt.Errorf("tensor %q: offset %d is not a multiple of the alignment %d", ti.Name, ti.Offset, g.Alignment)
		}
		end := ti.Offset + uint64(ti.Size)
		if end < ti.Offset || avail < 0 || end > uint64(avail) {
			return nil, fmt.Errorf("tensor %q: data [%d, %d) past the end of the %d-byte data section (file truncated?)", ti.Name, ti.Offset, end, max(avail, 0))
		}
		if ti.Size > 0 {
			spans = append(spans, span{ti.Name, ti.Offset, end})
		}
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].begin < spans[j].begin })
	for i := 1; i < len(spans); i++ {
		if a, b := spans[i-1], spans[i]; b.begin < a.end {
			return nil, fmt.Errorf("tensor %q data [%d, %d) overlaps tensor %q [%d, %d)", b.name, b.begin, b.end, a.name, a.begin, a.end)
		}
	}
	return g, nil
}

func alignUp(n, a int) int { return (n + a - 1) / a * a }

// tensorInfo reads and checks one tensor info (its offset is checked by
// the caller).
func (r *ggufReader) tensorInfo() (GGUFTensorInfo, error) {
	var ti GGUFTensorInfo
	name, err := r.str()
	if err != nil {
		return ti, fmt.Errorf("name: %w", err)
	}
	if name == "" || len(name) > ggufMaxKeyLen {
		return ti, fmt.Errorf("name of %d bytes (want 1 to %d)", len(name), ggufMaxKeyLen)
	}
	ti.Name = name
	nd, err := r.u32()
	if err != nil {
		return ti, fmt.Errorf("n_dims: %w", err)
	}
	if nd < 1 || nd > ggufMaxDims {
		return ti, fmt.Errorf("%d dims (want 1 to %d)", nd, ggufMaxDims)
	}
	ti.Dims = make([]uint64, nd)
	n := 1
	for i := range ti.Dims {
		if ti.Dims[i], err = r.u64(); err != nil {
			return ti, fmt.Errorf("dims: %w", err)
		}
		ok := ti.Dims[i] <= uint64(math.MaxInt)
		if ok {
			n, ok = mulOK(n, int(ti.Dims[i]))
		}
		if !ok || n > math.MaxInt64/8 {
			return ti, fmt.Errorf("dims %v are too large", ti.Dims[:i+1])
		}
	}
	t, err := r.u32()
	if err != nil {
		return ti, fmt.Errorf("type: %w", err)
	}
	ti.Type = GGMLType(t)
	info, ok := ggmlTypes[ti.Type]
	if !ok {
		return ti, fmt.Errorf("unknown tensor type %d", t)
	}
	if ti.Dims[0]%uint64(info.block) != 0 {
		return ti, fmt.Errorf("row length %d is not a multiple of the %v block size %d", ti.Dims[0], ti.Type, info.block)
	}
	ti.Size = n / info.block * info.size
	if ti.Offset, err = r.u64(); err != nil {
		return ti, fmt.Errorf("offset: %w", err)
	}
	return ti, nil
}

// Get returns the metadata value of key.
func (g *GGUF) Get(key string) (GGUFValue, bool) {
	i, ok := g.index[key]
	if !ok {
		return GGUFValue{}, false
	}
	return g.KVs[i].Value, true
}

// uint returns a non-negative integer scalar.
func (v GGUFValue) uint() (uint64, bool) {
	switch x := v.Value.(type) {
	case uint8:
		return uint64(x), true
	case uint16:
		return uint64(x), true
	case uint32:
		return uint64(x), true
	case uint64:
		return x, true
	case int8:
		return uint64(x), x >= 0
	case int16:
		return uint64(x), x >= 0
	case int32:
		return uint64(x), x >= 0
	case int64:
		return uint64(x), x >= 0
	}
	return 0, false
}

func (g *GGUF) typeErr(key string, v GGUFValue, want string) error {
	t := v.Type.String()
	if v.Type == GGUFArray {
		t = "array of " + v.Elem.String()
	}
	return fmt.Errorf("checkpoint: %s: metadata %q is %s %s, want %s", g.Path, key, t, shortValue(v), want)
}

func shortValue(v GGUFValue) string {
	s := fmt.Sprint(v.Value)
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return s
}

// String returns the string value of key; ok is false when the key is
// absent, and err is set when it has another type.
func (g *GGUF) String(key string) (s string, ok bool, err error) {
	v, ok := g.Get(key)
	if !ok {
		return "", false, nil
	}
	if s, isStr := v.Value.(string); isStr && v.Type == GGUFString {
		return s, true, nil
	}
	return "", true, g.typeErr(key, v, "a string")
}

// Int returns the value of an integer key as an int (any integer type,
// non-negative, at most max).
func (g *GGUF) Int(key string, maxVal int) (n int, ok bool, err error) {
	v, ok := g.Get(key)
	if !ok {
		return 0, false, nil
	}
	u, isInt := v.uint()
	if !isInt || v.Type == GGUFArray {
		return 0, true, g.typeErr(key, v, "a non-negative integer")
	}
	if u > uint64(maxVal) {
		return 0, true, fmt.Errorf("checkpoint: %s: metadata %q = %d exceeds %d", g.Path, key, u, maxVal)
	}
	return int(u), true, nil
}

// Float returns the value of a float (or integer) key.
func (g *GGUF) Float(key string) (f float64, ok bool, err error) {
	v, ok := g.Get(key)
	if !ok {
		return 0, false, nil
	}
	switch x := v.Value.(type) {
	case float32:
		return float64(x), true, nil
	case float64:
		return x, true, nil
	}
	if u, isInt := v.uint(); isInt && v.Type != GGUFArray {
		return float64(u), true, nil
	}
	return 0, true, g.typeErr(key, v, "a number")
}

// Bool returns the value of a bool key.
func (g *GGUF) Bool(key string) (b bool, ok bool, err error) {
	v, ok := g.Get(key)
	if !ok {
		return false, false, nil
	}
	if b, isBool := v.Value.(bool); isBool && v.Type == GGUFBool {
		return b, true, nil
	}
	return false, true, g.typeErr(key, v, "a bool")
}

// Strings returns the value of an array-of-strings key (not a copy).
func (g *GGUF) Strings(key string) (s []string, ok bool, err error) {
	v, ok := g.Get(key)
	if !ok {
		return nil, false, nil
	}
	if s, isStr := v.Value.([]string); isStr {
		return s, true, nil
	}
	return nil, true, g.typeErr(key, v, "an array of strings")
}

// Float32s returns the value of an array-of-float32 key (not a copy).
func (g *GGUF) Float32s(key string) (f []float32, ok bool, err error) {
	v, ok := g.Get(key)
	if !ok {
		return nil, false, nil
	}
	if f, isF := v.Value.([]float32); isF {
		return f, true, nil
	}
	return nil, true, g.typeErr(key, v, "an array of float32")
}

// Ints returns the value of an array of any integer type as ints.
func (g *GGUF) Ints(key string) (n []int, ok bool, err error) {
	v, ok := g.Get(key)
	if !ok {
		return nil, false, nil
	}
	conv := func(l int, at func(int) int64) []int {
		out := make([]int, l)
		for i := range out {
			out[i] = int(at(i))
		}
		return out
	}
	switch x := v.Value.(type) {
	case []uint8:
		return conv(len(x), func(i int) int64 { return int64(x[i]) }), true, nil
	case []int8:
		return conv(len(x), func(i int) int64 { return int64(x[i]) }), true, nil
	case []uint16:
		return conv(len(x), func(i int) int64 { return int64(x[i]) }), true, nil
	case []int16:
		return conv(len(x), func(i int) int64 { return int64(x[i]) }), true, nil
	case []uint32:
		return conv(len(x), func(i int) int64 { return int64(x[i]) }), true, nil
	case []int32:
		return conv(len(x), func(i int) int64 { return int64(x[i]) }), true, nil
	case []int64:
		return conv(len(x), func(i int) int64 { return x[i] }), true, nil
	case []uint64:
		for i, u := range x {
			if u > math.MaxInt32 {
				return nil, true, fmt.Errorf("checkpoint: %s: metadata %q[%d] = %d is out of range", g.Path, key, i, u)
			}
		}
		return conv(len(x), func(i int) int64 { return int64(x[i]) }), true, nil
	}
	return nil, true, g.typeErr(key, v, "an array of integers")
}

// Tensor returns the info of the tensor called name.
func (g *GGUF) Tensor(name string) (GGUFTensorInfo, bool) {
	for _, t := range g.Tensors {
		if t.Name == name {
			return t, true
		}
	}
	return GGUFTensorInfo{}, false
}

// Architecture is general.architecture ("" when absent or not a string).
func (g *GGUF) Architecture() string {
	s, _, _ := g.String("general.architecture")
	return strings.TrimSpace(s)
}
