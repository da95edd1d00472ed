#!/bin/bash
# GPU checks of the CLI: run on the device from the repository root.
# Run on a machine with an NVIDIA GPU from the repository root, after
# `CGO_ENABLED=0 go build -o .devdata/dejavu ./cmd/dejavu` and copying
# ../shared/data/models/stories260K to .devdata/models/stories260K.
export OUT="${OUT:-/tmp/gpu-out}"; mkdir -p "$OUT"
set -x
D=./.devdata/dejavu
S=".devdata/models/stories260K/stories260K.bin --tokenizer .devdata/models/stories260K/tok512.bin"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
for dev in cpu cuda; do
  $D generate -m $S --device $dev --prompt "Once upon a time" --temperature 0 -n 48 --json > $OUT/gen-$dev.json
done
for m in llama-silu opt-postln qwen2-bias; do
  for dev in cpu cuda; do $D logits -m testdata/models/$m --ids 1,5,9,3,7,2 --device $dev > $OUT/logits-$m-$dev.json; done
done
printf 'Once upon a time there was a little girl named Lily. She liked to play in the park with her friends. One day she saw a big dog.\n' > /tmp/t.txt
for dev in cpu cuda; do $D eval ppl -m $S --device $dev --ctx 32 --json --progress=false /tmp/t.txt > $OUT/ppl-$dev.json; done
python3 - <<'PY'
import json, os
O=os.environ['OUT']
g={d: json.load(open(f"{O}/gen-{d}.json")) for d in ('cpu','cuda')}
print("generate ids equal:", g['cpu']['output_ids']==g['cuda']['output_ids'], g['cuda']['text'][:80])
for m in ('llama-silu','opt-postln','qwen2-bias'):
    a=json.load(open(f"{O}/logits-{m}-cpu.json"))['logits']; b=json.load(open(f"{O}/logits-{m}-cuda.json"))['logits']
    err=max(max(abs(x-y) for x,y in zip(r,s))/max(1e-9,max(abs(x) for x in r)) for r,s in zip(a,b))
    print(f"logits {m}: rows {len(a)} max row rel err {err:.2e}")
p={d: json.load(open(f"{O}/ppl-{d}.json")) for d in ('cpu','cuda')}
print("ppl cpu %.5f cuda %.5f" % (p['cpu']['perplexity'], p['cuda']['perplexity']))
PY
for m in opt-6.7b opt-13b; do
  $D bench --device cuda --synthetic $m --gen 128 --json > $OUT/bench-$m-dense.json
  $D bench --device cuda --synthetic $m --gen 128 --mlp-density 0.1 --head-density 0.5 --json > $OUT/bench-$m-sparse.json
  $D bench --device cuda --synthetic $m --gen 128 --mlp-density 0.1 --head-density 0.5
done
python3 - <<'PY'
import json, os
O=os.environ['OUT']
for m in ('opt-6.7b','opt-13b'):
    d=json.load(open(f"{O}/bench-{m}-dense.json")); s=json.load(open(f"{O}/bench-{m}-sparse.json"))
    floor=d['weight_bytes_per_token']/(d['machine_read_gb_per_s']*1e9)*1e3
    print(f"{m}: dense {d['decode_ms_median']:.3f} ms (floor {floor:.3f}, {d['decode_ms_median']/floor:.2f}x), sparse {s['decode_ms_median']:.3f} ms -> {d['decode_ms_median']/s['decode_ms_median']:.2f}x; copy {d['machine_read_gb_per_s']:.0f} GB/s; densities {s['mlp_density']:.3f}/{s['head_density']:.3f}; prompt {d['prompt_tokens_per_s']:.0f} tok/s")
PY
