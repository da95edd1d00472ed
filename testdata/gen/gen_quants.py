#!/usr/bin/env python3
"""Quantized-block fixture from llama.cpp's own reference code, for kernels/q4_fixture_test.go.

gguf-py (the Python package in llama.cpp's source tree, gguf-py/gguf/quants.py) holds
llama.cpp's numpy reference of every block format. This script makes blocks of Q8_0, Q4_0,
Q4_K, Q5_0, Q5_1, Q5_K and Q6_K (random bytes with moderate f16 scales, plus edge cases: all-ones scale
and high-bit bytes, extreme int8 scales, negative and zero scales), dequantizes them with
gguf-py, and quantizes a few rows of
random floats with gguf-py's Q8_0 and Q4_0 quantizers; it writes the bytes and the f32
results (as bit patterns) to JSON:

    PYTHONPATH=$LLAMA_CPP_DIR/gguf-py python3 testdata/gen/gen_quants.py \\
        --out testdata/quants/ggml_quants.json

Needs numpy and gguf-py only (no network, no llama.cpp build). The output is small and
committed; the Go tests read it without Python.
"""
import argparse
import json

import numpy as np
from gguf import quants
from gguf.constants import GGMLQuantizationType as T


def f16(v):
    return np.array([v], dtype=np.float16).view(np.uint8)


def kblocks(kind, rng, n):
    """Q5_K / Q6_K / Q5_0 / Q5_1 blocks (made with their own generator, after the others,
    so that the older cases of the fixture stay as they were)."""
    if kind in ("Q5_0", "Q5_1"):
        size = {"Q5_0": 22, "Q5_1": 24}[kind]
        b = rng.integers(0, 256, size=(n, size), dtype=np.uint8)
        for i in range(n):
            b[i, 0:2] = f16(rng.uniform(-0.05, 0.05))
            if kind == "Q5_1":
                b[i, 2:4] = f16(rng.uniform(-0.5, 0.5))
        h = 2 if kind == "Q5_0" else 4
        b[0, h:h + 4] = 0xFF  # every fifth bit set
        b[1, h:h + 4] = 0  # none
        b[2, 0:2] = f16(0.0)
        return b
    if kind == "Q5_K":
        b = rng.integers(0, 256, size=(n, 176), dtype=np.uint8)
        for i in range(n):
            b[i, 0:2] = f16(rng.uniform(-0.05, 0.05))
            b[i, 2:4] = f16(rng.uniform(0.0, 0.05))
        b[0, 4:16] = 0xFF  # every 6-bit scale and min at 63
        b[0, 16:48] = 0xFF  # every fifth bit set
        b[1, 0:2] = f16(-0.02)  # negative d
        b[2, 2:4] = f16(0.0)  # no min
        b[3, 16:48] = 0  # no fifth bit
        return b
    b = rng.integers(0, 256, size=(n, 210), dtype=np.uint8)
    for i in range(n):
        b[i, 208:210] = f16(rng.uniform(-0.01, 0.01))
    b[0, 192:208] = np.array([0x80, 0x7F, 0x00, 0xFF] * 4, dtype=np.uint8)  # -128, 127, 0, -1
    b[0, 0:128] = 0xFF  # q = 63 where qh adds 3 ...
    b[0, 128:160] = 0xFF
    b[1, 0:192] = 0  # q = 0: the value -32
    b[2, 208:210] = f16(0.0)  # zero scale
    return b


def blocks(kind, rng, n):
    size = {"Q8_0": 34, "Q4_0": 18, "Q4_K": 144}[kind]
    b = rng.integers(0, 256, size=(n, size), dtype=np.uint8)
    for i in range(n):
        b[i, 0:2] = f16(rng.uniform(-0.05, 0.05))
        if kind == "Q4_K":
            b[i, 2:4] = f16(rng.uniform(0.0, 0.05))
    if kind == "Q4_K":
        b[0, 4:16] = 0xFF  # every 6-bit scale and min at 63
        b[1, 0:2] = f16(-0.02)  # negative d
        b[2, 2:4] = f16(0.0)  # no min
    else:
        b[0, 0:2] = f16(0.0)
    return b


def bits(a):
    return [int(v) for v in np.asarray(a, dtype=np.float32).reshape(-1).view(np.uint32)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    out = {"source": "llama.cpp gguf-py quants.py", "dequantize": [], "quantize": []}
    for kind, typ, n in (("Q8_0", T.Q8_0, 8), ("Q4_0", T.Q4_0, 16), ("Q4_K", T.Q4_K, 6)):
        b = blocks(kind, rng, n)
        vals = quants.dequantize(b, typ)
        out["dequantize"].append({"type": kind, "blocks": b.tobytes().hex(), "values": bits(vals)})
    for kind, typ in (("Q8_0", T.Q8_0), ("Q4_0", T.Q4_0)):
        x = rng.standard_normal((4, 64)).astype(np.float32)
        x[1, 3] = 0.0
        x[2, :32] = 0.0  # an all-zero block
        q = quants.quantize(x, typ)
        out["quantize"].append({"type": kind, "rows": 4, "cols": 64, "input": bits(x), "blocks": q.tobytes().hex()})
    krng = np.random.default_rng(args.seed + 1)
    for kind, typ, n in (("Q5_K", T.Q5_K, 4), ("Q6_K", T.Q6_K, 4), ("Q5_0", T.Q5_0, 8), ("Q5_1", T.Q5_1, 8)):
        b = kblocks(kind, krng, n)
        vals = quants.dequantize(b, typ)
        out["dequantize"].append({"type": kind, "blocks": b.tobytes().hex(), "values": bits(vals)})
    with open(args.out, "w") as f:
        json.dump(out, f)
        f.write("\n")


if __name__ == "__main__":
    main()
