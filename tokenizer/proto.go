package tokenizer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// pbReader reads the protobuf wire format, just enough for the
// sentencepiece ModelProto.
type pbReader struct {
	b   []byte
	pos int
}

var errTruncated = errors.New("truncated")

func (r *pbReader) done() bool { return r.pos >= len(r.b) }

func (r *pbReader) varint() (uint64, error) {
	var v uint64
	for shift := uint(0); shift < 64; shift += 7 {
		if r.pos >= len(r.b) {
			return 0, errTruncated
		}
		c := r.b[r.pos]
		r.pos++
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v, nil
		}
	}
	return 0, errors.New("varint too long")
}

// key reads a field key: field number and wire type.
func (r *pbReader) key() (int, int, error) {
	k, err := r.varint()
	if err != nil {
		return 0, 0, err
	}
	if k>>3 == 0 || k>>3 > math.MaxInt32 {
		return 0, 0, fmt.Errorf("bad field number %d", k>>3)
	}
	return int(k >> 3), int(k & 7), nil
}

func (r *pbReader) bytes() ([]byte, error) {
	n, err := r.varint()
	if err != nil {
		return nil, err
	}
	if n > uint64(len(r.b)-r.pos) {
		return nil, errTruncated
	}
	b := r.b[r.pos : r.pos+int(n)]
	r.pos += int(n)
	return b, nil
}

func (r *pbReader) fixed32() (uint32, error) {
	if len(r.b)-r.pos < 4 {
		return 0, errTruncated
	}
	v := binary.LittleEndian.Uint32(r.b[r.pos:])
	r.pos += 4
	return v, nil
}

// skip skips a field of wire type wt.
func (r *pbReader) skip(wt int) error {
	switch wt {
	case 0:
		_, err := r.varint()
		return err
	case 1:
		if len(r.b)-r.pos < 8 {
			return errTruncated
		}
		r.pos += 8
		return nil
	case 2:
		_, err := r.bytes()
		return err
	case 5:
		_, err := r.fixed32()
		return err
	}
	return fmt.Errorf("unsupported wire type %d", wt)
}

// wantType checks that field num has wire type want.
func wantType(num, wt, want int) error {
	if wt != want {
		return fmt.Errorf("field %d: wire type %d, want %d", num, wt, want)
	}
	return nil
}
