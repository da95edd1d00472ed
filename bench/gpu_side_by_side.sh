#!/bin/bash
# Side by side on one GPU in one run: transformers generate vs dejavu dense vs dejavu sparse.
# Run on a machine with an NVIDIA GPU from the repository root, after
# `CGO_ENABLED=0 go build -o .devdata/dejavu ./cmd/dejavu`; OUT is where
# results go (the device tool sets it).
export OUT="${OUT:-/tmp/gpu-out}"; mkdir -p "$OUT"
D=./.devdata/dejavu
for m in opt-6.7b opt-13b; do
  for pl in 16 128; do
    $D bench --device cuda --synthetic $m --prompt-len $pl --gen 64 --json > $OUT/b-$m-$pl-dense.json 2>/dev/null
    $D bench --device cuda --synthetic $m --prompt-len $pl --gen 64 --mlp-density 0.1 --head-density 0.5 --json > $OUT/b-$m-$pl-sparse.json 2>/dev/null
  done
done
PYTHONUNBUFFERED=1 python3 bench/hf_generate.py --shape opt-6.7b,opt-13b --prompt 16 --tokens 64 --json $OUT/hf.json 2>&1 | grep -v Warning | tail -4
python3 - <<'PY'
import json, os
O=os.environ['OUT']
for m in ('opt-6.7b','opt-13b'):
    for pl in (16,128):
        d=json.load(open(f"{O}/b-{m}-{pl}-dense.json")); s=json.load(open(f"{O}/b-{m}-{pl}-sparse.json"))
        floor=d['weight_bytes_per_token']/(d['machine_read_gb_per_s']*1e9)*1e3
        print(f"{m} prompt {pl}: dense {d['decode_ms_median']:.3f} ms p90 {d['decode_ms_p90']:.3f} (floor {floor:.3f}, {d['decode_ms_median']/floor:.2f}x) sparse {s['decode_ms_median']:.3f} ms p90 {s['decode_ms_p90']:.3f} -> {d['decode_ms_median']/s['decode_ms_median']:.2f}x (mlp {s['mlp_density']:.3f} heads {s['head_density']:.3f}) copy {d['machine_read_gb_per_s']:.0f} GB/s")
PY
cat $OUT/hf.json
