// Package checkpoint reads model checkpoint files (Hugging Face safetensors,
// single or sharded, and llama2.c .bin files) into named tensors whose data
// aliases the read-only, memory-mapped files.
package checkpoint

import (
	"fmt"
	"math"
)

// DType is a tensor element type. The names follow safetensors; the model
// accepts only F32, F16 and BF16, the others exist so they can be reported.
type DType uint8

// Element types. The zero DType is invalid.
const (
	F32 DType = iota + 1
	F16
	BF16
	F64
	I64
	I32
	I16
	I8
	U64
	U32
	U16
	U8
	BOOL
	F8E4M3 // safetensors "F8_E4M3"
	F8E5M2 // safetensors "F8_E5M2"
	F8E8M0 // safetensors "F8_E8M0"
	C64    // safetensors "C64" (complex64)
)

const numDTypes = C64 + 1

var dtypeInfo = [numDTypes]struct {
	name string
	size int
}{
	F32:    {"F32", 4},
	F16:    {"F16", 2},
	BF16:   {"BF16", 2},
	F64:    {"F64", 8},
	I64:    {"I64", 8},
	I32:    {"I32", 4},
	I16:    {"I16", 2},
	I8:     {"I8", 1},
	U64:    {"U64", 8},
	U32:    {"U32", 4},
	U16:    {"U16", 2},
	U8:     {"U8", 1},
	BOOL:   {"BOOL", 1},
	F8E4M3: {"F8_E4M3", 1},
	F8E5M2: {"F8_E5M2", 1},
	F8E8M0: {"F8_E8M0", 1},
	C64:    {"C64", 8},
}

// Size is the size of one element in bytes, or 0 for an invalid DType.
func (d DType) Size() int {
	if d == 0 || d >= numDTypes {
		return 0
	}
	return dtypeInfo[d].size
}

// String is the safetensors name of d ("F16", "F8_E4M3", ...).
func (d DType) String() string {
	if d == 0 || d >= numDTypes {
		return fmt.Sprintf("DType(%d)", uint8(d))
	}
	return dtypeInfo[d].name
}

// IsFloat reports whether d is F32, F16 or BF16, the types ToFloat32 decodes.
func (d DType) IsFloat() bool { return d == F32 || d == F16 || d == BF16 }

// ParseDType returns the DType with safetensors name s.
func ParseDType(s string) (DType, bool) {
	for d := DType(1); d < numDTypes; d++ {
		if dtypeInfo[d].name == s {
			return d, true
		}
	}
	return 0, false
}

// F16ToF32 converts IEEE 754 binary16 bits to float32 exactly (subnormals,
// infinities and NaN payloads included).
func F16ToF32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch exp {
	case 0:
		if mant == 0 {
			return math.Float32frombits(sign)
		}
		// Subnormal: normalise the mantissa.
		e := uint32(127 - 14)
		for mant&0x400 == 0 {
			mant <<= 1
			e--
		}
		return math.Float32frombits(sign | e<<23 | (mant&0x3ff)<<13)
	case 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	default:
		return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
	}
}

// F32ToF16 converts f to IEEE 754 binary16 bits, rounding to nearest even.
// Values too large become ±Inf; NaN stays a (quiet) NaN.
func F32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant == 0 {
			return sign | 0x7c00
		}
		return sign | 0x7e00 | uint16(mant>>13) // quiet NaN, top payload bits kept
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		if e < -10 {
			return sign // below half the smallest subnormal: ±0
		}
		m := mant | 0x800000
		shift := uint32(14 - e) // 14..24
		hm := m >> shift
		rem := m & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && hm&1 == 1) {
			hm++ // may carry into the smallest normal: still the right encoding
		}
		return sign | uint16(hm)
	}
	r := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && r&1 == 1) {
		r++ // a carry into the exponent is correct, up to Inf
	}
	return sign | uint16(r)
}

// BF16ToF32 converts bfloat16 bits to float32 (exact).
func BF16ToF32(b uint16) float32 { return math.Float32frombits(uint32(b) << 16) }

// F32ToBF16 converts f to bfloat16 bits, rounding to nearest even. NaN stays
// a (quiet) NaN.
func F32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}
