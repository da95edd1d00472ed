package checkpoint

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"dejavu/internal/atomicfile"
)

// GGUFWriteTensor is a tensor for WriteGGUF. Its bytes are Data, or, when
// Data is nil, what Load returns (called once, when the tensor is written,
// so that a large model need not be held in memory twice).
type GGUFWriteTensor struct {
	Name  string
	Type  GGMLType // F32, F16, BF16 (or another type with Data already encoded)
	Shape []int    // row-major; written as GGUF dims in reverse order
	Data  []byte
	Load  func() ([]byte, error)
}

// WriteGGUF writes a GGUF version 3 file at path with the metadata kvs (in
// order) and the tensors (in order, each aligned to general.alignment when
// kvs set it, else 32 bytes). The file is written atomically: to a
// temporary file in the same directory, synced, then renamed over path.
func WriteGGUF(path string, kvs []GGUFKV, tensors []GGUFWriteTensor) error {
	if err := atomicfile.Write(path, func(w io.Writer) error { return encodeGGUF(w, kvs, tensors) }); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// EncodeGGUF returns the GGUF encoding of kvs and tensors (see WriteGGUF).
func EncodeGGUF(kvs []GGUFKV, tensors []GGUFWriteTensor) ([]byte, error) {
	var b bytes.Buffer
	if err := encodeGGUF(&b, kvs, tensors); err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	return b.Bytes(), nil
}

type ggufWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (w *ggufWriter) write(b []byte) {
	if w.err != nil {
		return
	}
	var n int
	n, w.err = w.w.Write(b)
	w.n += int64(n)
}

func (w *ggufWriter) u32(v uint32) { w.write(binary.LittleEndian.AppendUint32(nil, v)) }
func (w *ggufWriter) u64(v uint64) { w.write(binary.LittleEndian.AppendUint64(nil, v)) }
func (w *ggufWriter) str(s string) {
	w.u64(uint64(len(s)))
	w.write([]byte(s))
}

func encodeGGUF(out io.Writer, kvs []GGUFKV, tensors []GGUFWriteTensor) error {
	align := ggufDefaultAlignment
	seen := map[string]bool{}
	for _, kv := range kvs {
		if kv.Key == "" || seen[kv.Key] {
			return fmt.Errorf("metadata key %q is empty or repeated", kv.Key)
		}
		seen[kv.Key] = true
		if kv.Key == "general.alignment" {
			a, ok := kv.Value.uint()
			if !ok || kv.Value.Type != GGUFUint32 || a == 0 || a&(a-1) != 0 {
				return fmt.Errorf("general.alignment must be a uint32 power of two, got %v %v", kv.Value.Type, kv.Value.Value)
			}
			align = int(a)
		}
	}
	type planned struct {
		t      GGUFWriteTensor
		dims   []uint64
		size   int
		offset uint64
	}
	plan := make([]planned, len(tensors))
	var off uint64
	names := map[string]bool{}
	for i, t := range tensors {
		if t.Name == "" || names[t.Name] {
			return fmt.Errorf("tensor name %q is empty or repeated", t.Name)
		}
		names[t.Name] = true
		info, ok := ggmlTypes[t.Type]
		if !ok {
			return fmt.Errorf("tensor %q: unknown type %v", t.Name, t.Type)
		}
		if len(t.Shape) < 1 || len(t.Shape) > ggufMaxDims {
			return fmt.Errorf("tensor %q: shape %v must have 1 to %d dims", t.Name, t.Shape, ggufMaxDims)
		}
		n, ok := numElements(t.Shape)
		if !ok || t.Shape[len(t.Shape)-1]%info.block != 0 {
			return fmt.Errorf("tensor %q: invalid shape %v for %v", t.Name, t.Shape, t.Type)
		}
		dims := make([]uint64, len(t.Shape))
		for j, d := range t.Shape {
			dims[len(dims)-1-j] = uint64(d)
		}
		size := n / info.block * info.size
		if t.Data != nil && len(t.Data) != size {
			return fmt.Errorf("tensor %q: %v%v needs %d bytes, Data has %d", t.Name, t.Type, t.Shape, size, len(t.Data))
		}
		if t.Data == nil && t.Load == nil && size > 0 {
			return fmt.Errorf("tensor %q: no Data and no Load", t.Name)
		}
		plan[i] = planned{t, dims, size, off}
		off += uint64(alignUp(size, align))
	}
	w := &ggufWriter{w: out}
	w.write([]byte(ggufMagic))
	w.u32(3)
	w.u64(uint64(len(tensors)))
	w.u64(uint64(len(kvs)))
	for _, kv := range kvs {
		w.str(kv.Key)
		w.u32(uint32(kv.Value.Type))
		if err := w.value(kv.Value, 0); err != nil {
			return fmt.Errorf("metadata %q: %w", kv.Key, err)
		}
	}
	for _, p := range plan {
		w.str(p.t.Name)
		w.u32(uint32(len(p.dims)))
		for _, d := range p.dims {
			w.u64(d)
		}
		w.u32(uint32(p.t.Type))
		w.u64(p.offset)
	}
	pad := func() {
		if r := int(w.n % int64(align)); r != 0 {
			w.write(make([]byte, align-r))
		}
	}
	pad()
	for _, p := range plan {
		data := p.t.Data
		if data == nil && p.size > 0 {
			var err error
			if data, err = p.t.Load(); err != nil {
				return fmt.Errorf("tensor %q: %w", p.t.Name, err)
			}
			if len(data) != p.size {
				return fmt.Errorf("tensor %q: Load gave %d bytes, want %d", p.t.Name, len(data), p.size)
			}
		}
		w.write(data)
		pad()
	}
	return w.err
}

// value writes v (whose type the caller has written).
func (w *ggufWriter) value(v GGUFValue, depth int) error {
	if v.Type != GGUFArray {
		return w.scalar(v.Type, v.Value)
	}
	if depth >= ggufMaxDepth {
		return fmt.Errorf("arrays nested deeper than %d", ggufMaxDepth)
	}
	w.u32(uint32(v.Elem))
	switch x := v.Value.(type) {
	case []GGUFValue:
		if v.Elem != GGUFArray {
			return fmt.Errorf("array of %v holds %T", v.Elem, v.Value)
		}
		w.u64(uint64(len(x)))
		for i, e := range x {
			if e.Type != GGUFArray {
				return fmt.Errorf("element %d of an array of arrays is %v", i, e.Type)
			}
			if err := w.value(e, depth+1); err != nil {
				return err
			}
		}
		return nil
	case []string:
		if v.Elem != GGUFString {
			return fmt.Errorf("array of %v holds %T", v.Elem, v.Value)
		}
		w.u64(uint64(len(x)))
		for _, s := range x {
			w.str(s)
		}
		return nil
	}
	return w.scalarArray(v.Elem, v.Value)
}

func (w *ggufWriter) scalarArray(et GGUFValueType, val any) error {
	var b []byte
	var n int
	le := binary.LittleEndian
	ok := true
	switch x := val.(type) {
	case []uint8:
		ok, n, b = et == GGUFUint8, len(x), x
	case []int8:
		ok, n = et == GGUFInt8, len(x)
		for _, e := range x {
			b = append(b, byte(e))
		}
	case []bool:
		ok, n = et == GGUFBool, len(x)
		for _, e := range x {
			if e {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		}
	case []uint16:
		ok, n = et == GGUFUint16, len(x)
		for _, e := range x {
			b = le.AppendUint16(b, e)
		}
	case []int16:
		ok, n = et == GGUFInt16, len(x)
		for _, e := range x {
			b = le.AppendUint16(b, uint16(e))
		}
	case []uint32:
		ok, n = et == GGUFUint32, len(x)
		for _, e := range x {
			b = le.AppendUint32(b, e)
		}
	case []int32:
		ok, n = et == GGUFInt32, len(x)
		for _, e := range x {
			b = le.AppendUint32(b, uint32(e))
		}
	case []float32:
		ok, n = et == GGUFFloat32, len(x)
		for _, e := range x {
			b = le.AppendUint32(b, math.Float32bits(e))
		}
	case []uint64:
		ok, n = et == GGUFUint64, len(x)
		for _, e := range x {
			b = le.AppendUint64(b, e)
		}
	case []int64:
		ok, n = et == GGUFInt64, len(x)
		for _, e := range x {
			b = le.AppendUint64(b, uint64(e))
		}
	case []float64:
		ok, n = et == GGUFFloat64, len(x)
		for _, e := range x {
			b = le.AppendUint64(b, math.Float64bits(e))
		}
	default:
		ok = false
	}
	if !ok {
		return fmt.Errorf("array of %v cannot hold %T", et, val)
	}
	w.u64(uint64(n))
	w.write(b)
	return nil
}

func (w *ggufWriter) scalar(t GGUFValueType, val any) error {
	le := binary.LittleEndian
	var b []byte
	ok := true
	switch x := val.(type) {
	case uint8:
		ok, b = t == GGUFUint8, []byte{x}
	case int8:
		ok, b = t == GGUFInt8, []byte{byte(x)}
	case bool:
		ok, b = t == GGUFBool, []byte{0}
		if x {
			b[0] = 1
		}
	case uint16:
		ok, b = t == GGUFUint16, le.AppendUint16(nil, x)
	case int16:
		ok, b = t == GGUFInt16, le.AppendUint16(nil, uint16(x))
	case uint32:
		ok, b = t == GGUFUint32, le.AppendUint32(nil, x)
	case int32:
		ok, b = t == GGUFInt32, le.AppendUint32(nil, uint32(x))
	case float32:
		ok, b = t == GGUFFloat32, le.AppendUint32(nil, math.Float32bits(x))
	case uint64:
		ok, b = t == GGUFUint64, le.AppendUint64(nil, x)
	case int64:
		ok, b = t == GGUFInt64, le.AppendUint64(nil, uint64(x))
	case float64:
		ok, b = t == GGUFFloat64, le.AppendUint64(nil, math.Float64bits(x))
	case string:
		if t != GGUFString {
			ok = false
			break
		}
		w.str(x)
		return nil
	default:
		ok = false
	}
	if !ok {
		return fmt.Errorf("a %v value cannot hold %T", t, val)
	}
	w.write(b)
	return nil
}
