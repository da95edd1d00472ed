// Package checkpoint reads model checkpoint files (Hugging Face safetensors,
// single or sharded, and llama2.c .bin files) into named tensors whose data
// aliases the read-only, memory-mapped files.
package checkpoint

import (
	"fmt"

	"dejavu/internal/half"
)

// DType is a tensor element type. The names follow safetensors; the model
// accepts F32, F16 and BF16, and from GGUF files the block types Q8_0, Q4_0,
// Q5_0, Q5_1, Q4_K, Q5_K and Q6_K (gguf.go); the others exist so they can be reported.
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

// String is the safetensors name of d ("F16", "F8_E4M3", ...), or ggml's
// name of a quantized block type ("Q8_0", ...).
func (d DType) String() string {
	if b, ok := blockDTypes[d]; ok {
		return b.name
	}
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
func F16ToF32(h uint16) float32 { return half.F16ToF32(h) }

// F32ToF16 converts f to IEEE 754 binary16 bits, rounding to nearest even.
// Values too large become ±Inf; NaN stays a (quiet) NaN.
func F32ToF16(f float32) uint16 { return half.F32ToF16(f) }

// BF16ToF32 converts bfloat16 bits to float32 (exact).
func BF16ToF32(b uint16) float32 { return half.BF16ToF32(b) }

// F32ToBF16 converts f to bfloat16 bits, rounding to nearest even. NaN stays
// a (quiet) NaN.
func F32ToBF16(f float32) uint16 { return half.F32ToBF16(f) }
