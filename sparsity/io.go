package sparsity

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"slices"

	"dejavu/checkpoint"
	"dejavu/kernels"
	"dejavu/model"
)

// tensors encodes the predictors: mlp.L.a (Rank×Hidden, f16), mlp.L.b
// (FFN×Rank, f16), mlp.L.bias (FFN, f32) and the same under head.L for the
// lookahead head predictors.
func (p *Predictors) tensors() ([]checkpoint.Tensor, error) {
	var ts []checkpoint.Tensor
	add := func(prefix string, lr *lowRank) error {
		for _, x := range []struct {
			n string
			m kernels.Mat
		}{{"a", lr.A}, {"b", lr.B}} {
			t, err := matTensor(prefix+"."+x.n, x.m)
			if err != nil {
				return err
			}
			ts = append(ts, t)
		}
		b := make([]byte, 4*len(lr.Bias))
		for i, v := range lr.Bias {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
		}
		ts = append(ts, checkpoint.Tensor{Name: prefix + ".bias", DType: checkpoint.F32, Shape: []int{len(lr.Bias)}, Data: b})
		return nil
	}
	for l := range p.mlp {
		if err := add(fmt.Sprintf("mlp.%d", l), &p.mlp[l]); err != nil {
			return nil, err
		}
	}
	for l := range p.head {
		if err := add(fmt.Sprintf("head.%d", l), &p.head[l]); err != nil {
			return nil, err
		}
	}
	return ts, nil
}

func matTensor(name string, m kernels.Mat) (checkpoint.Tensor, error) {
	row := make([]float32, m.Cols)
	var (
		b  []byte
		dt checkpoint.DType
	)
	switch m.DType {
	case kernels.F16:
		dt, b = checkpoint.F16, make([]byte, 0, 2*m.Rows*m.Cols)
	case kernels.F32:
		dt, b = checkpoint.F32, make([]byte, 0, 4*m.Rows*m.Cols)
	default:
		return checkpoint.Tensor{}, fmt.Errorf("sparsity: %s: unsupported dtype %v", name, m.DType)
	}
	for r := 0; r < m.Rows; r++ {
		m.Row(r, row)
		for _, v := range row {
			if dt == checkpoint.F16 {
				b = binary.LittleEndian.AppendUint16(b, checkpoint.F32ToF16(v))
			} else {
				b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
			}
		}
	}
	return checkpoint.Tensor{Name: name, DType: dt, Shape: []int{m.Rows, m.Cols}, Data: b}, nil
}

// checksum is SHA-256 over the tensors' names, shapes, types and bytes in
// name order.
func checksum(ts []checkpoint.Tensor) string {
	ts = slices.Clone(ts)
	slices.SortFunc(ts, func(a, b checkpoint.Tensor) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	h := sha256.New()
	for _, t := range ts {
		fmt.Fprintf(h, "%s %v %v %d\n", t.Name, t.DType, t.Shape, len(t.Data))
		h.Write(t.Data)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Save writes the predictors to path (safetensors, atomically) with their
// Info, the model fingerprint and a checksum of the weights as metadata.
func (p *Predictors) Save(path string) error {
	ts, err := p.tensors()
	if err != nil {
		return err
	}
	info, err := json.Marshal(p.Info)
	if err != nil {
		return err
	}
	return checkpoint.WriteSafetensors(path, ts, map[string]string{
		"format":      PredictorsFormat,
		"fingerprint": p.Fingerprint,
		"info":        string(info),
		"checksum":    checksum(ts),
	})
}

// Load reads a predictors file for m. It refuses a file made for another
// model (fingerprint mismatch), one whose weights do not match their
// checksum, and one whose shapes do not fit m.
func Load(path string, m *model.Model) (*Predictors, error) {
	st, err := checkpoint.OpenSafetensors(path)
	if err != nil {
		return nil, fmt.Errorf("sparsity: predictors %s: %w (damaged? train them again)", path, err)
	}
	defer st.Close()
	meta := st.Metadata()
	if meta["format"] != PredictorsFormat {
		return nil, fmt.Errorf("sparsity: %s is not a predictors file (format %q, want %q)", path, meta["format"], PredictorsFormat)
	}
	fp := Fingerprint(m)
	if !fingerprintMatches(m, fp, meta["fingerprint"]) {
		return nil, fmt.Errorf("sparsity: %s was trained for another model (fingerprint %.12s…, this model %s is %.12s…): train predictors for it with `dejavu collect` and `dejavu train`",
			path, meta["fingerprint"], m.Source, fp)
	}
	p := &Predictors{Fingerprint: fp}
	if err := json.Unmarshal([]byte(meta["info"]), &p.Info); err != nil {
		return nil, fmt.Errorf("sparsity: %s: bad info metadata: %w", path, err)
	}
	c := m.Cfg
	in := p.Info
	if in.Layers != c.Layers || in.Hidden != c.Hidden || in.FFN != c.FFN || in.Heads != c.Heads || len(in.Stats) != c.Layers {
		return nil, fmt.Errorf("sparsity: %s: predictor shapes (layers %d, hidden %d, ffn %d, heads %d) do not fit the model", path, in.Layers, in.Hidden, in.FFN, in.Heads)
	}
	var ts []checkpoint.Tensor
	for _, name := range st.Names() {
		t, _ := st.Tensor(name)
		t.Data = slices.Clone(t.Data) // off the mapping, aligned
		ts = append(ts, t)
	}
	if got := checksum(ts); got != meta["checksum"] {
		return nil, fmt.Errorf("sparsity: %s is damaged: weights checksum %.12s… does not match the recorded %.12s…; train the predictors again", path, got, meta["checksum"])
	}
	byName := map[string]checkpoint.Tensor{}
	for _, t := range ts {
		byName[t.Name] = t
	}
	get := func(prefix string, in, out int) (lowRank, error) {
		var lr lowRank
		a, okA := byName[prefix+".a"]
		b, okB := byName[prefix+".b"]
		bias, okC := byName[prefix+".bias"]
		if !okA || !okB || !okC {
			return lr, fmt.Errorf("sparsity: %s: tensors of %s missing", path, prefix)
		}
		if len(a.Shape) != 2 || len(b.Shape) != 2 || a.Shape[1] != in || b.Shape[0] != out || b.Shape[1] != a.Shape[0] || len(bias.Shape) != 1 || bias.Shape[0] != out {
			return lr, fmt.Errorf("sparsity: %s: %s has shapes %v, %v, %v; want [r %d], [%d r], [%d]", path, prefix, a.Shape, b.Shape, bias.Shape, in, out, out)
		}
		var err error
		if lr.A, err = tensorMat(a); err != nil {
			return lr, err
		}
		if lr.B, err = tensorMat(b); err != nil {
			return lr, err
		}
		lr.Bias = make([]float32, out)
		if err := bias.ToFloat32(lr.Bias); err != nil {
			return lr, err
		}
		return lr, nil
	}
	for l := 0; l < c.Layers; l++ {
		lr, err := get(fmt.Sprintf("mlp.%d", l), c.Hidden, c.FFN)
		if err != nil {
			return nil, err
		}
		p.mlp = append(p.mlp, lr)
	}
	for l := 0; l+1 < c.Layers; l++ {
		lr, err := get(fmt.Sprintf("head.%d", l), c.Hidden, c.Heads)
		if err != nil {
			return nil, err
		}
		p.head = append(p.head, lr)
	}
	if err := p.finish(); err != nil {
		return nil, fmt.Errorf("sparsity: %s: %w", path, err)
	}
	return p, nil
}

func tensorMat(t checkpoint.Tensor) (kernels.Mat, error) {
	dt := map[checkpoint.DType]kernels.DType{checkpoint.F32: kernels.F32, checkpoint.F16: kernels.F16, checkpoint.BF16: kernels.BF16}[t.DType]
	if dt == 0 {
		return kernels.Mat{}, fmt.Errorf("sparsity: tensor %s: unsupported dtype %v", t.Name, t.DType)
	}
	return kernels.NewMat(dt, t.Shape[0], t.Shape[1], t.Data)
}

// finish validates the info and sets up selection state and scratch.
func (p *Predictors) finish() error {
	in := p.Info
	switch in.Norm {
	case "layernorm":
	case "rms":
		p.rms = true
	default:
		return fmt.Errorf("unknown input norm %q", in.Norm)
	}
	if err := checkMLPInput(in.MLPInput); err != nil {
		return err
	}
	for l, st := range in.Stats {
		if st.Budget < 0 || st.Budget > in.FFN || (l+1 < in.Layers && (st.HeadBudget < 1 || st.HeadBudget > in.Heads)) {
			return fmt.Errorf("layer %d: budgets %d neurons, %d heads out of range", l, st.Budget, st.HeadBudget)
		}
	}
	p.mlpK = make([]int, in.Layers)
	p.headK = make([]int, max(0, in.Layers-1))
	p.thr = make([]float32, in.Layers)
	p.initScratch(nil)
	return p.SetSelection(Selection{})
}
