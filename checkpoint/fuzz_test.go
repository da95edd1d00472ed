package checkpoint

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"testing"
)

func FuzzSafetensorsHeader(f *testing.F) {
	valid, err := encodeSafetensors(sampleTensors(), map[string]string{"format": "pt"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	plain, _ := encodeSafetensors(sampleTensors()[:2], nil)
	f.Add(plain)
	empty, _ := encodeSafetensors(nil, nil)
	f.Add(empty)
	f.Add(valid[:len(valid)-3])                 // truncated data
	f.Add(valid[:20])                           // truncated header
	f.Add(append([]byte{0xff, 0xff}, valid...)) // shifted
	for _, c := range corruptSafetensors {
		f.Add(c.file)
	}
	f.Add(rawST(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"e":{"dtype":"F32","shape":[0],"data_offsets":[1,1]}}`, []byte{1, 2, 3}))
	f.Fuzz(func(t *testing.T, data []byte) {
		tensors, meta, err := parseSafetensors("fuzz.safetensors", data)
		if err != nil {
			return
		}
		list := make([]Tensor, 0, len(tensors))
		for name, tt := range tensors {
			if tt.Name != name || name == "" {
				t.Fatalf("tensor %q stored as %q", tt.Name, name)
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
			list = append(list, tt)
		}
		// Re-encoding and re-parsing must give the same tensors.
		enc, err := encodeSafetensors(list, meta)
		if err != nil {
			t.Fatalf("re-encoding: %v", err)
		}
		if binary.LittleEndian.Uint64(enc)%8 != 0 {
			t.Fatalf("unaligned header")
		}
		again, meta2, err := parseSafetensors("re.safetensors", enc)
		if err != nil {
			t.Fatalf("re-parsing: %v", err)
		}
		if len(again) != len(tensors) || len(meta2) != len(meta) || (len(meta) > 0 && !reflect.DeepEqual(meta, meta2)) {
			t.Fatalf("round trip changed %d/%v into %d/%v", len(tensors), meta, len(again), meta2)
		}
		for name, a := range tensors {
			b := again[name]
			if a.DType != b.DType || !reflect.DeepEqual(a.Shape, b.Shape) || !bytes.Equal(a.Data, b.Data) {
				t.Fatalf("round trip changed %q", name)
			}
		}
	})
}

func FuzzLlama2C(f *testing.F) {
	good := [7]int32{8, 12, 2, 4, 2, 10, 6}
	f.Add(makeLlama2C(good))
	untied := good
	untied[5] = -10
	f.Add(makeLlama2C(untied))
	f.Add(makeLlama2C([7]int32{4, 4, 1, 1, 1, 2, 1}))
	f.Add(makeLlama2C(good)[:100])
	f.Add(makeLlama2C(good)[:28])
	f.Add([]byte{})
	f.Add(binary.LittleEndian.AppendUint32(nil, llama2CMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, tensors, err := parseLlama2C("fuzz.bin", data)
		if err != nil {
			return
		}
		if cfg.Dim <= 0 || cfg.Dim%cfg.NHeads != 0 || cfg.NHeads%cfg.NKVHeads != 0 || cfg.VocabSize <= 0 {
			t.Fatalf("accepted config %+v", *cfg)
		}
		if len(tensors) != 9*cfg.NLayers+3 {
			t.Fatalf("%d tensors for %d layers", len(tensors), cfg.NLayers)
		}
		total := 0
		for name, tt := range tensors {
			n, err := tt.check()
			if err != nil || tt.DType != F32 || n == 0 {
				t.Fatalf("%q: %v %v", name, tt.DType, err)
			}
			if name != "lm_head.weight" || !cfg.SharedClassifier {
				total += len(tt.Data)
			}
		}
		freq := 4 * (cfg.SeqLen * cfg.HeadSize() / 2) * 2
		if 28+total+freq != len(data) {
			t.Fatalf("tensors cover %d+%d+28 of %d bytes", total, freq, len(data))
		}
	})
}
