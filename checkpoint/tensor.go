package checkpoint

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"unsafe"
)

// Tensor is one named tensor. Data holds the little-endian elements in
// row-major order; for tensors from a Store it aliases the memory-mapped file,
// is read-only (writing to it crashes the program) and is valid only until
// the Store is closed.
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte
	File  string // the file the tensor was read from
}

// NumElements is the product of Shape (1 for a scalar).
func (t Tensor) NumElements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// check verifies that Data holds exactly NumElements elements of DType.
func (t Tensor) check() (int, error) {
	size := t.DType.Size()
	if size == 0 {
		return 0, fmt.Errorf("checkpoint: tensor %q: invalid dtype %v", t.Name, t.DType)
	}
	n, ok := numElements(t.Shape)
	if !ok {
		return 0, fmt.Errorf("checkpoint: tensor %q: invalid shape %v", t.Name, t.Shape)
	}
	if nb, ok := mulOK(n, size); !ok || nb != len(t.Data) {
		return 0, fmt.Errorf("checkpoint: tensor %q: %v%v needs %d×%d bytes, Data has %d",
			t.Name, t.DType, t.Shape, n, size, len(t.Data))
	}
	return n, nil
}

// ToFloat32 decodes the whole tensor (F32, F16 or BF16) into dst, whose
// length must equal NumElements.
func (t Tensor) ToFloat32(dst []float32) error {
	if !t.DType.IsFloat() {
		return fmt.Errorf("checkpoint: tensor %q: cannot decode dtype %v to float32 (want F32, F16 or BF16)", t.Name, t.DType)
	}
	n, err := t.check()
	if err != nil {
		return err
	}
	if len(dst) != n {
		return fmt.Errorf("checkpoint: tensor %q: destination has %d elements, tensor has %d", t.Name, len(dst), n)
	}
	src := t.Data
	switch t.DType {
	case F32:
		if v, ok := t.Float32View(); ok {
			copy(dst, v)
			break
		}
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
	case F16:
		for i := range dst {
			dst[i] = F16ToF32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	case BF16:
		for i := range dst {
			dst[i] = BF16ToF32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	}
	return nil
}

// Float32 decodes element i (in row-major order) of an F32, F16 or BF16
// tensor. Like slice indexing it panics if i is out of range, and it panics
// for other dtypes.
func (t Tensor) Float32(i int) float32 {
	switch t.DType {
	case F32:
		return math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i : 4*i+4]))
	case F16:
		return F16ToF32(binary.LittleEndian.Uint16(t.Data[2*i : 2*i+2]))
	case BF16:
		return BF16ToF32(binary.LittleEndian.Uint16(t.Data[2*i : 2*i+2]))
	}
	panic(fmt.Sprintf("checkpoint: Float32 on %v tensor %q", t.DType, t.Name))
}

// Float32View returns Data of an F32 tensor as a []float32 without copying
// (read-only when Data aliases a Store's file). It reports false unless the
// dtype is F32, Data has exactly NumElements elements, is 4-byte aligned and
// the host is little-endian.
func (t Tensor) Float32View() ([]float32, bool) {
	if t.DType != F32 || !littleEndianHost {
		return nil, false
	}
	n, err := t.check()
	if err != nil {
		return nil, false
	}
	if n == 0 {
		return []float32{}, true
	}
	p := unsafe.Pointer(unsafe.SliceData(t.Data))
	if uintptr(p)%4 != 0 {
		return nil, false
	}
	return unsafe.Slice((*float32)(p), len(t.Data)/4), true
}

var littleEndianHost = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// Store is a set of named tensors opened from one or more files. Its methods
// other than Close are safe for concurrent use. Close unmaps the files;
// tensors obtained earlier must not be used afterwards.
type Store struct {
	tensors  map[string]Tensor
	names    []string
	metadata map[string]string
	maps     []*mapping
}

// Tensor returns the tensor called name. Its Shape is a copy; its Data
// aliases the file.
func (s *Store) Tensor(name string) (Tensor, bool) {
	t, ok := s.tensors[name]
	if ok {
		t.Shape = slices.Clone(t.Shape)
	}
	return t, ok
}

// Names returns the tensor names in sorted order.
func (s *Store) Names() []string { return append([]string(nil), s.names...) }

// Len is the number of tensors.
func (s *Store) Len() int { return len(s.names) }

// Metadata returns the string metadata of the checkpoint (safetensors
// "__metadata__"; for sharded checkpoints the union over shards, the first
// shard in name order winning on conflicts). It may be empty.
func (s *Store) Metadata() map[string]string {
	m := make(map[string]string, len(s.metadata))
	for k, v := range s.metadata {
		m[k] = v
	}
	return m
}

// Close releases the mapped files. It is safe to call more than once.
func (s *Store) Close() error {
	var errs []error
	for _, m := range s.maps {
		if err := m.close(); err != nil {
			errs = append(errs, err)
		}
	}
	s.maps = nil
	s.tensors = nil
	s.names = nil
	return errors.Join(errs...)
}

func newStore(maps []*mapping, tensors map[string]Tensor, meta map[string]string) *Store {
	names := make([]string, 0, len(tensors))
	for n := range tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	if meta == nil {
		meta = map[string]string{}
	}
	return &Store{tensors: tensors, names: names, metadata: meta, maps: maps}
}

// numElements is the product of shape, reporting false on a negative
// dimension or on overflow of int.
func numElements(shape []int) (int, bool) {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return 0, false
		}
		var ok bool
		if n, ok = mulOK(n, d); !ok {
			return 0, false
		}
	}
	return n, true
}

// mulOK multiplies non-negative a and b, reporting false on overflow.
func mulOK(a, b int) (int, bool) {
	if a < 0 || b < 0 {
		return 0, false
	}
	if a == 0 || b == 0 {
		return 0, true
	}
	if a > math.MaxInt/b {
		return 0, false
	}
	return a * b, true
}
