#!/usr/bin/env python3
"""Hugging Face transformers decode speed, for the side-by-side with dejavu's
CUDA backend (docs/gpu.md): `generate` at batch 1, greedy, fp16, eager
attention, on a randomly initialised OPT model with the shapes of a real one
(the same shapes as dejavu's `--synthetic` / model.SyntheticConfig).

    python3 bench/hf_generate.py --shape opt-6.7b --prompt 16 --tokens 64

Prints one line per shape: ms/token (median and p90 of the per-step times,
each step timed by a stopping criterion that synchronises the GPU), the ms
of one forward over the prompt (median of three after a warm-up), the
weight bytes and the effective GB/s. --json writes the numbers to a file.
"""
import argparse
import json
import statistics
import time

import torch
from transformers import OPTConfig, OPTForCausalLM, StoppingCriteria, StoppingCriteriaList

# hidden, layers, heads, ffn, word_embed_proj_dim — as model/synthetic.go.
SHAPES = {
    "opt-125m": (768, 12, 12, 3072, 768),
    "opt-1.3b": (2048, 24, 32, 8192, 2048),
    "opt-2.7b": (2560, 32, 32, 10240, 2560),
    "opt-6.7b": (4096, 32, 32, 16384, 4096),
    "opt-13b": (5120, 40, 40, 20480, 5120),
    "opt-30b": (7168, 48, 56, 28672, 7168),
}


class StepTimer(StoppingCriteria):
    """Records the time after every generated token (never stops)."""

    def __init__(self):
        self.times = []

    def __call__(self, input_ids, scores, **kwargs):
        torch.cuda.synchronize()
        self.times.append(time.perf_counter())
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


def bench(shape, prompt, tokens, seed):
    d, layers, heads, ffn, proj = SHAPES[shape]
    cfg = OPTConfig(vocab_size=50272, hidden_size=d, num_hidden_layers=layers, ffn_dim=ffn,
                    num_attention_heads=heads, max_position_embeddings=2048, word_embed_proj_dim=proj,
                    do_layer_norm_before=True, activation_function="relu", attn_implementation="eager")
    torch.manual_seed(seed)
    torch.set_default_dtype(torch.float16)
    try:
        with torch.device("cuda"):
            model = OPTForCausalLM(cfg)
    finally:
        torch.set_default_dtype(torch.float32)
    model.eval()
    impl = getattr(model.config, "_attn_implementation", "?")
    dtype = str(next(model.parameters()).dtype)
    nbytes = sum(p.numel() * p.element_size() for n, p in model.named_parameters()
                 if "embed_tokens" not in n and "embed_positions" not in n)
    nbytes += model.lm_head.weight.numel() * 2  # tied head: read every step
    ids = torch.randint(0, cfg.vocab_size, (1, prompt), device="cuda")
    kw = dict(do_sample=False, use_cache=True, pad_token_id=1, eos_token_id=None)
    with torch.no_grad():
        model.generate(ids, max_new_tokens=4, min_new_tokens=4, **kw)  # warm-up
        timer = StepTimer()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        model.generate(ids, max_new_tokens=tokens, min_new_tokens=tokens,
                       stopping_criteria=StoppingCriteriaList([timer]), **kw)
        # The prompt alone: one forward over it with the cache on (what the
        # first generate step does before its token), median of three after one.
        pre = []
        for _ in range(4):
            torch.cuda.synchronize()
            t1 = time.perf_counter()
            model(ids, use_cache=True)
            torch.cuda.synchronize()
            pre.append((time.perf_counter() - t1) * 1e3)
    steps = [(b - a) * 1e3 for a, b in zip([t0] + timer.times[:-1], timer.times)]
    decode = sorted(steps[1:])  # the first step includes the prompt
    med = statistics.median(decode)
    p90 = decode[int(len(decode) * 0.9)]
    del model
    torch.cuda.empty_cache()
    return dict(shape=shape, prompt=prompt, tokens=tokens, median_ms=med, p90_ms=p90, prompt_ms=statistics.median(pre[1:]),
                weight_bytes=nbytes, gbs=nbytes / med / 1e6, device=torch.cuda.get_device_name(0),
                torch=torch.__version__, attn=impl, dtype=dtype)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="opt-6.7b", help="comma-separated: " + ", ".join(SHAPES))
    ap.add_argument("--prompt", type=int, default=16, help="prompt tokens")
    ap.add_argument("--tokens", type=int, default=64, help="generated tokens (timed: all but the first)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", help="write the results to this file")
    a = ap.parse_args()
    out = []
    for shape in a.shape.split(","):
        r = bench(shape, a.prompt, a.tokens, a.seed)
        out.append(r)
        print(f"transformers {shape:9s} {r['device']} ({r['dtype']}, {r['attn']}): median {r['median_ms']:.2f} ms/token, "
              f"p90 {r['p90_ms']:.2f}, prompt of {r['prompt']} {r['prompt_ms']:.1f} ms, weights {r['weight_bytes'] / 1e9:.2f} GB, {r['gbs']:.0f} GB/s", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
