package kernels

import (
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"testing"
)

// ggmlQuants is testdata/quants/ggml_quants.json, written by
// testdata/gen/gen_quants.py with llama.cpp's gguf-py (its numpy reference
// of the block formats): blocks with the values llama.cpp dequantizes them
// to, and rows of floats with the blocks llama.cpp quantizes them to.
type ggmlQuants struct {
	Dequantize []struct {
		Type   string
		Blocks string
		Values []uint32
	}
	Quantize []struct {
		Type       string
		Rows, Cols int
		Input      []uint32
		Blocks     string
	}
}

func loadGGMLQuants(t *testing.T) ggmlQuants {
	b, err := os.ReadFile("../testdata/quants/ggml_quants.json")
	if err != nil {
		t.Fatal(err)
	}
	var q ggmlQuants
	if err := json.Unmarshal(b, &q); err != nil {
		t.Fatal(err)
	}
	return q
}

// TestDequantizeMatchesGGML checks that Row decodes llama.cpp's blocks to
// exactly llama.cpp's values, and that every kernel's product with x
// agrees with those values.
func TestDequantizeMatchesGGML(t *testing.T) {
	q := loadGGMLQuants(t)
	types := map[string]DType{"Q8_0": Q8_0, "Q4_0": Q4_0, "Q4_K": Q4_K, "Q5_K": Q5_K, "Q6_K": Q6_K, "Q5_0": Q5_0, "Q5_1": Q5_1}
	seen := 0
	for _, c := range q.Dequantize {
		dt, ok := types[c.Type]
		if !ok {
			t.Fatalf("fixture type %q", c.Type)
		}
		seen++
		data, err := hex.DecodeString(c.Blocks)
		if err != nil {
			t.Fatal(err)
		}
		cols := len(c.Values)
		m, err := NewMat(dt, 1, cols, data)
		if err != nil {
			t.Fatalf("%v: %v", dt, err)
		}
		row := make([]float32, cols)
		m.Row(0, row)
		want := make([]float32, cols)
		for j, v := range c.Values {
			want[j] = math.Float32frombits(v)
			if row[j] != want[j] {
				t.Fatalf("%v element %d: %v, llama.cpp %v", dt, j, row[j], want[j])
			}
		}
		// As a 2-row matrix (the blocks split in two rows) through every
		// kernel set.
		if bs := dt.RowBytes(cols / 2); len(data)%2 == 0 && cols%2 == 0 && (cols/2)%max(Q8Block, dt.q4BlockOrZero()) == 0 {
			m2, err := NewMat(dt, 2, cols/2, data[:2*bs])
			if err != nil {
				t.Fatal(err)
			}
			x := make([]float32, cols/2)
			for j := range x {
				x[j] = float32(math.Sin(float64(j)))
			}
			forEachKernel(t, func(t *testing.T) {
				pool := NewPool(1)
				defer pool.Close()
				y := make([]float32, 2)
				NewExec(pool, cols/2).MatVec(y, m2, x)
				// The products quantize x to 8 bits per 32 values (as
				// llama.cpp does): allow half a step of x times the weight
				// part it multiplies (at most |w| plus the spread of the
				// weights of its 32-block), plus f32 rounding.
				for i := range 2 {
					w := want[i*cols/2 : (i+1)*cols/2]
					var ref, mag, xe float64
					for b := 0; b < len(x)/32; b++ {
						lo, hi, amax := math.Inf(1), math.Inf(-1), 0.0
						for j := b * 32; j < b*32+32; j++ {
							lo, hi = math.Min(lo, float64(w[j])), math.Max(hi, float64(w[j]))
							amax = math.Max(amax, math.Abs(float64(x[j])))
						}
						for j := b * 32; j < b*32+32; j++ {
							ref += float64(w[j]) * float64(x[j])
							mag += math.Abs(float64(w[j]) * float64(x[j]))
							xe += (math.Abs(float64(w[j])) + hi - lo) * amax / 127 / 2
						}
					}
					if math.Abs(float64(y[i])-ref) > 1e-5*mag+xe {
						t.Fatalf("%v row %d: %v, llama.cpp values give %v (allowed %.3g)", dt, i, y[i], ref, 1e-5*mag+xe)
					}
				}
			})
		}
	}
	if seen != 7 {
		t.Fatalf("fixture has %d dequantize cases, want 7", seen)
	}
}

// q4BlockOrZero is the Q4 block size, or 0 for other types.
func (d DType) q4BlockOrZero() int {
	if d.isQ4() {
		return d.q4Block()
	}
	return 0
}

// TestQuantizeMatchesGGML checks QuantizeQ8_0 and QuantizeQ4_0 against
// llama.cpp's reference quantizers byte for byte.
func TestQuantizeMatchesGGML(t *testing.T) {
	q := loadGGMLQuants(t)
	for _, c := range q.Quantize {
		x := make([]float32, len(c.Input))
		for i, v := range c.Input {
			x[i] = math.Float32frombits(v)
		}
		var m Mat
		var got []byte
		switch c.Type {
		case "Q8_0":
			m = QuantizeQ8_0(c.Rows, c.Cols, x)
			got = m.q8
		case "Q4_0":
			var err error
			if m, err = QuantizeQ4_0(c.Rows, c.Cols, x); err != nil {
				t.Fatal(err)
			}
			got = m.q4
		default:
			t.Fatalf("fixture type %q", c.Type)
		}
		if h := hex.EncodeToString(got); h != c.Blocks {
			t.Fatalf("%s: quantized\n%s\nllama.cpp\n%s", c.Type, h, c.Blocks)
		}
	}
}
