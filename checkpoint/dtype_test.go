package checkpoint

import (
	"math"
	"math/rand"
	"sort"
	"testing"
)

func TestDType(t *testing.T) {
	for d := DType(1); d < numDTypes; d++ {
		got, ok := ParseDType(d.String())
		if !ok || got != d || d.Size() == 0 {
			t.Errorf("DType %d: String %q, Size %d, ParseDType -> %v %v", d, d, d.Size(), got, ok)
		}
	}
	if F32.Size() != 4 || F16.Size() != 2 || BF16.Size() != 2 || F8E4M3.String() != "F8_E4M3" {
		t.Errorf("unexpected sizes/names")
	}
	if DType(0).Size() != 0 || DType(200).Size() != 0 || DType(200).String() != "DType(200)" {
		t.Errorf("invalid DType: size %d, %q", DType(200).Size(), DType(200))
	}
	if _, ok := ParseDType("F4"); ok {
		t.Errorf("ParseDType(F4) succeeded")
	}
}

func TestF16ToF32(t *testing.T) {
	for _, c := range []struct {
		h    uint16
		want float32
	}{
		{0x3c00, 1},
		{0xc000, -2},
		{0x7bff, 65504},
		{0xfbff, -65504},
		{0x0001, float32(math.Ldexp(1, -24))},    // smallest subnormal
		{0x03ff, float32(math.Ldexp(1023, -24))}, // largest subnormal
		{0x0400, float32(math.Ldexp(1, -14))},    // smallest normal
		{0x3555, float32(0.333251953125)},        // 1/3 rounded
		{0x7c00, float32(math.Inf(1))},
		{0xfc00, float32(math.Inf(-1))},
		{0x0000, 0},
		{0x8000, float32(math.Copysign(0, -1))},
		{0x8001, -float32(math.Ldexp(1, -24))},
		{0x3bff, float32(1 - math.Ldexp(1, -11))}, // largest below 1
		{0x3c01, float32(1 + math.Ldexp(1, -10))}, // next after 1
		{0x0200, float32(math.Ldexp(1, -15))},
		{0x70e2, 10000},
		{0x5555, 85.3125},
	} {
		got := F16ToF32(c.h)
		if math.Float32bits(got) != math.Float32bits(c.want) {
			t.Errorf("F16ToF32(%#04x) = %g (%#08x), want %g (%#08x)", c.h, got, math.Float32bits(got), c.want, math.Float32bits(c.want))
		}
	}
	for _, h := range []uint16{0x7e00, 0x7c01, 0xfe00, 0x7fff} {
		if got := F16ToF32(h); !math.IsNaN(float64(got)) {
			t.Errorf("F16ToF32(%#04x) = %g, want NaN", h, got)
		}
	}
	// Signalling NaN payloads survive.
	if b := math.Float32bits(F16ToF32(0x7c01)); b != 0x7f802000 {
		t.Errorf("F16ToF32(0x7c01) bits %#08x, want 0x7f802000", b)
	}
}

func TestF16RoundTripExhaustive(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		f := F16ToF32(h)
		back := F32ToF16(f)
		if math.IsNaN(float64(f)) {
			if back&0x7c00 != 0x7c00 || back&0x3ff == 0 || back&0x8000 != h&0x8000 {
				t.Fatalf("NaN %#04x -> %#04x", h, back)
			}
			continue
		}
		if back != h {
			t.Fatalf("F32ToF16(F16ToF32(%#04x)) = %#04x", h, back)
		}
		// Via float64 as a cross-check of the decoder.
		if !math.IsInf(float64(f), 0) {
			e := int(h>>10) & 0x1f
			m := float64(h & 0x3ff)
			var v float64
			if e == 0 {
				v = math.Ldexp(m, -24)
			} else {
				v = math.Ldexp(1024+m, e-25)
			}
			if h&0x8000 != 0 {
				v = -v
			}
			if float64(f) != v {
				t.Fatalf("F16ToF32(%#04x) = %g, want %g", h, f, v)
			}
		}
	}
}

func TestF32ToF16(t *testing.T) {
	ulp1 := math.Ldexp(1, -10) // f16 ulp at 1
	for _, c := range []struct {
		f    float64
		want uint16
	}{
		{1, 0x3c00},
		{-2, 0xc000},
		{65504, 0x7bff},
		{65519.99, 0x7bff},
		{65520, 0x7c00}, // tie between 65504 (odd) and 65536 (Inf): even wins
		{1e6, 0x7c00},
		{-1e6, 0xfc00},
		{math.Inf(1), 0x7c00},
		{math.Inf(-1), 0xfc00},
		{math.Ldexp(1, -24), 0x0001},
		{math.Ldexp(1, -25), 0x0000},                      // tie with 0: even
		{math.Ldexp(1, -25) * (1 + 1e-7), 0x0001},         // just above the tie
		{math.Ldexp(3, -25), 0x0002},                      // tie between 1 and 2: even
		{math.Ldexp(5, -25), 0x0002},                      // tie between 2 and 3: even
		{math.Ldexp(1, -26), 0x0000},                      //
		{-math.Ldexp(1, -24), 0x8001},                     //
		{math.Ldexp(1, -14) - math.Ldexp(1, -25), 0x0400}, // tie, carries into the smallest normal
		{math.Ldexp(1, -14) - math.Ldexp(1, -24), 0x03ff}, // largest subnormal
		{1 + ulp1/2, 0x3c00},                              // tie: even
		{1 + 3*ulp1/2, 0x3c02},                            // tie: even
		{1 + ulp1/2 + math.Ldexp(1, -20), 0x3c01},         // above the tie
		{1 + ulp1/2 - math.Ldexp(1, -20), 0x3c00},         // below the tie
		{2047.5, 0x6800},                                  // tie between 2047 (odd) and 2048
		{0.1, 0x2e66},                                     //
		{1.0 / 3, 0x3555},                                 //
		{math.Copysign(0, -1), 0x8000},                    //
		{math.SmallestNonzeroFloat32, 0x0000},             //
		{-math.SmallestNonzeroFloat32, 0x8000},            //
		{math.MaxFloat32, 0x7c00},                         //
	} {
		got := F32ToF16(float32(c.f))
		if got != c.want {
			t.Errorf("F32ToF16(%g) = %#04x, want %#04x", c.f, got, c.want)
		}
	}
	for _, b := range []uint32{0x7fc00000, 0x7f800001, 0xffc00000, 0x7fffffff} {
		h := F32ToF16(math.Float32frombits(b))
		if h&0x7c00 != 0x7c00 || h&0x3ff == 0 {
			t.Errorf("F32ToF16(NaN %#08x) = %#04x, not NaN", b, h)
		}
	}
}

// TestF32ToF16Reference compares F32ToF16 with a slow nearest-value search
// over all finite f16 values for random float32 inputs.
func TestF32ToF16Reference(t *testing.T) {
	// Positive finite f16 values, ascending with their bit patterns.
	vals := make([]float64, 0x7c00)
	for h := 0; h < 0x7c00; h++ {
		vals[h] = float64(F16ToF32(uint16(h)))
	}
	ref := func(f float32) uint16 {
		x := math.Abs(float64(f))
		var sign uint16
		if math.Signbit(float64(f)) {
			sign = 0x8000
		}
		if x >= 65520 {
			return sign | 0x7c00
		}
		i := sort.SearchFloat64s(vals, x) // vals[i-1] < x <= vals[i]
		if i < len(vals) && vals[i] == x {
			return sign | uint16(i)
		}
		lo, hi := i-1, i
		if hi == len(vals) {
			return sign | uint16(lo)
		}
		dl, dh := x-vals[lo], vals[hi]-x
		switch {
		case dl < dh:
			return sign | uint16(lo)
		case dh < dl:
			return sign | uint16(hi)
		case lo%2 == 0:
			return sign | uint16(lo)
		default:
			return sign | uint16(hi)
		}
	}
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 300000; i++ {
		var f float32
		switch i % 3 {
		case 0: // any bits in the f16 range and a bit beyond
			exp := uint32(rng.Intn(50) + 127 - 30)
			f = math.Float32frombits(uint32(rng.Intn(2))<<31 | exp<<23 | uint32(rng.Intn(1<<23)))
		case 1: // near a tie: an f16 value plus half an ulp, ± a little
			h := uint16(rng.Intn(0x7bff))
			a, b := float64(F16ToF32(h)), float64(F16ToF32(h+1))
			f = float32((a + b) / 2)
			f = math.Float32frombits(math.Float32bits(f) + uint32(rng.Intn(3)) - 1)
		default: // uniform small values
			f = float32(rng.NormFloat64() * math.Ldexp(1, rng.Intn(40)-25))
		}
		if got, want := F32ToF16(f), ref(f); got != want {
			t.Fatalf("F32ToF16(%g / %#08x) = %#04x, want %#04x", f, math.Float32bits(f), got, want)
		}
	}
}

func TestBF16(t *testing.T) {
	for _, c := range []struct {
		b    uint16
		want float32
	}{
		{0x3f80, 1},
		{0xc000, -2},
		{0x7f7f, float32(math.Ldexp(255, 120))}, // largest finite
		{0x0001, float32(math.Ldexp(1, -133))},  // smallest subnormal
		{0x0080, float32(math.Ldexp(1, -126))},  // smallest normal
		{0x7f80, float32(math.Inf(1))},
		{0xff80, float32(math.Inf(-1))},
		{0x8000, float32(math.Copysign(0, -1))},
	} {
		if got := BF16ToF32(c.b); math.Float32bits(got) != math.Float32bits(c.want) {
			t.Errorf("BF16ToF32(%#04x) = %g, want %g", c.b, got, c.want)
		}
		if got := F32ToBF16(c.want); got != c.b {
			t.Errorf("F32ToBF16(%g) = %#04x, want %#04x", c.want, got, c.b)
		}
	}
	if !math.IsNaN(float64(BF16ToF32(0x7fc0))) || !math.IsNaN(float64(BF16ToF32(0x7f81))) {
		t.Errorf("BF16ToF32(NaN) not NaN")
	}
	for _, c := range []struct {
		f    float64
		want uint16
	}{
		{1 + math.Ldexp(1, -8), 0x3f80},                      // tie: even
		{1 + 3*math.Ldexp(1, -8), 0x3f82},                    // tie: even
		{1 + math.Ldexp(1, -8) + math.Ldexp(1, -20), 0x3f81}, // above the tie
		{math.MaxFloat32, 0x7f80},                            // rounds up to Inf
		{-math.MaxFloat32, 0xff80},                           //
		{math.Ldexp(255.5, 120), 0x7f80},                     // tie between max (odd) and Inf
		{math.Ldexp(1, -134), 0x0000},                        // tie with 0
		{math.Ldexp(3, -134), 0x0002},                        // tie between 1 and 2
	} {
		if got := F32ToBF16(float32(c.f)); got != c.want {
			t.Errorf("F32ToBF16(%g) = %#04x, want %#04x", c.f, got, c.want)
		}
	}
	for _, b := range []uint32{0x7fc00000, 0x7f800001, 0xff800001, 0x7fffffff} {
		h := F32ToBF16(math.Float32frombits(b))
		if h&0x7f80 != 0x7f80 || h&0x7f == 0 || uint32(h>>15) != b>>31 {
			t.Errorf("F32ToBF16(NaN %#08x) = %#04x", b, h)
		}
	}
	for i := 0; i < 1<<16; i++ {
		f := BF16ToF32(uint16(i))
		if math.IsNaN(float64(f)) {
			continue
		}
		if got := F32ToBF16(f); got != uint16(i) {
			t.Fatalf("F32ToBF16(BF16ToF32(%#04x)) = %#04x", i, got)
		}
	}
}

func TestToFloat32(t *testing.T) {
	want := []float32{1, -2, 0.5, 65504, float32(math.Inf(1)), 0}
	mk := func(dt DType, enc func(float32) []byte) Tensor {
		var data []byte
		for _, v := range want {
			data = append(data, enc(v)...)
		}
		return Tensor{Name: "x", DType: dt, Shape: []int{2, 3}, Data: data}
	}
	le16 := func(v uint16) []byte { return []byte{byte(v), byte(v >> 8)} }
	for _, tt := range []Tensor{
		mk(F32, func(v float32) []byte {
			b := math.Float32bits(v)
			return []byte{byte(b), byte(b >> 8), byte(b >> 16), byte(b >> 24)}
		}),
		mk(F16, func(v float32) []byte { return le16(F32ToF16(v)) }),
		mk(BF16, func(v float32) []byte { return le16(F32ToBF16(v)) }),
	} {
		if tt.DType == BF16 {
			tt.Data[6], tt.Data[7] = le16(0x477f)[0], le16(0x477f)[1] // 65280: bf16 has no 65504
		}
		dst := make([]float32, 6)
		if err := tt.ToFloat32(dst); err != nil {
			t.Fatalf("%v: %v", tt.DType, err)
		}
		for i, w := range want {
			if tt.DType == BF16 && i == 3 {
				w = 65280
			}
			if dst[i] != w || tt.Float32(i) != w {
				t.Errorf("%v element %d = %g / %g, want %g", tt.DType, i, dst[i], tt.Float32(i), w)
			}
		}
		if err := tt.ToFloat32(make([]float32, 5)); err == nil {
			t.Errorf("%v: short dst accepted", tt.DType)
		}
		short := tt
		short.Data = short.Data[:len(short.Data)-1]
		if err := short.ToFloat32(dst); err == nil {
			t.Errorf("%v: short Data accepted", tt.DType)
		}
	}
	if err := (Tensor{Name: "i", DType: I32, Shape: []int{1}, Data: make([]byte, 4)}).ToFloat32(make([]float32, 1)); err == nil {
		t.Errorf("I32 decoded")
	}
	// Misaligned F32 data still decodes (via the slow path).
	buf := make([]byte, 9)
	copy(buf[1:], []byte{0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0})
	mis := Tensor{Name: "m", DType: F32, Shape: []int{2}, Data: buf[1:]}
	dst := make([]float32, 2)
	if err := mis.ToFloat32(dst); err != nil || dst[0] != 1 || dst[1] != -2 {
		t.Errorf("misaligned: %v %v", dst, err)
	}
}
