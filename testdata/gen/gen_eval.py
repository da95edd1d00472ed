#!/usr/bin/env python3
"""Reference numbers for dejavu's eval package, from Hugging Face transformers.

Run from the repository root on a machine with torch + transformers:

    python3 testdata/gen/gen_eval.py --out OUT

For each tiny fixture model testdata/models/<name> (vocab 256, no tokenizer, so
everything is in token ids) it writes OUT/<name>.json with

  ids       a fixed pseudo-random id sequence of N_IDS tokens
  windows   perplexity of ids with non-overlapping windows of CTX tokens (a shorter
            last window dropped), every position after the first of a window scored
  llamacpp  llama.cpp's llama-perplexity convention: floor(len/CTX) windows, the first
            token of each replaced by the model's BOS id, only the predictions of
            tokens CTX/2+1 .. CTX-1 of each window scored
  loglik    (context ids, continuation ids) pairs with the summed log-probability of
            the continuation given the context and whether it is the greedy one

Perplexity entries hold perplexity, stderr (llama.cpp's: ppl * sqrt(var/(n-1)) with
var = mean(nll^2) - mean(nll)^2), the mean nll and the number of scored tokens.
The models run on the CPU in float64 (the stored weights are float32, upcast
exactly), and the log-softmax is taken in float64, so these are the exact values
that dejavu's float32 forward pass must approach.
"""
import argparse
import json
import math
import os

import torch
import transformers
from transformers import AutoModelForCausalLM

MODELS = ["llama-silu", "opt-preln"]
VOCAB = 256
CTX = 64  # the fixtures' max_position_embeddings
N_IDS = 300


def logprobs(model, ids):
    """Float64 log-softmax of the logits of every position of ids."""
    with torch.no_grad():
        logits = model(torch.tensor([ids], dtype=torch.long)).logits[0].to(torch.float64)
    return torch.log_softmax(logits, dim=-1)


def stats(nlls):
    n = len(nlls)
    mean = sum(nlls) / n
    ppl = math.exp(mean)
    var = sum(v * v for v in nlls) / n - mean * mean
    stderr = math.sqrt(var / (n - 1)) * ppl if var > 0 and n > 1 else 0.0
    return {"perplexity": ppl, "stderr": stderr, "nll": mean, "tokens": n}


def windows_nll(model, ids, ctx):
    nlls = []
    for w in range(len(ids) // ctx):
        x = ids[w * ctx:(w + 1) * ctx]
        lp = logprobs(model, x)
        nlls += [-lp[j, x[j + 1]].item() for j in range(ctx - 1)]
    return nlls


def llamacpp_nll(model, ids, ctx, bos):
    assert len(ids) >= 2 * ctx
    first = ctx // 2
    nlls = []
    for w in range(len(ids) // ctx):
        x = list(ids[w * ctx:(w + 1) * ctx])
        x[0] = bos
        lp = logprobs(model, x)
        nlls += [-lp[j, x[j + 1]].item() for j in range(first, ctx - 1)]
    return nlls


def loglik(model, ctx, cont):
    lp = logprobs(model, ctx + cont)
    ll, greedy = 0.0, True
    for i, t in enumerate(cont):
        row = lp[len(ctx) - 1 + i]
        ll += row[t].item()
        greedy = greedy and int(torch.argmax(row)) == t
    return ll, greedy


def greedy_continuation(model, ctx, n):
    seq = list(ctx)
    for _ in range(n):
        seq.append(int(torch.argmax(logprobs(model, seq)[-1])))
    return seq[len(ctx):]


def pairs(model, bos, g):
    """(context, continuation) cases; consecutive cases share contexts or prefixes,
    as multiple-choice and partial-scoring tasks do."""
    def rand(n):
        return torch.randint(0, VOCAB, (n,), generator=g).tolist()

    out = []
    c1 = [bos]  # BOS alone
    out += [(c1, rand(1)), (c1, rand(3))]
    c2 = [bos] + rand(9)  # one context, several choices
    out += [(c2, rand(1)), (c2, rand(4)), (c2, rand(7))]
    c3 = [bos] + rand(39)  # long context and continuations (ctx + cont <= CTX)
    out += [(c3, rand(12)), (c3, rand(20))]
    c4 = [bos] + rand(7)  # a greedy continuation and a perturbed one
    gc = greedy_continuation(model, c4, 5)
    out += [(c4, gc), (c4, gc[:3] + [(gc[3] + 1) % VOCAB] + gc[4:])]
    pre, cont = [bos] + rand(11), rand(6)  # partial scoring: contexts share a prefix
    out += [(pre + rand(3), cont), (pre + rand(5), cont)]
    c6 = rand(15)  # no BOS
    out += [(c6, rand(2))]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--models-dir", default="testdata/models")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_grad_enabled(False)
    for mi, name in enumerate(MODELS):
        path = os.path.join(args.models_dir, name)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float64).eval()
        bos = model.config.bos_token_id
        assert model.config.vocab_size == VOCAB and model.config.max_position_embeddings >= CTX
        g = torch.Generator().manual_seed(5000 + mi)
        ids = torch.randint(0, VOCAB, (N_IDS,), generator=g).tolist()
        res = {
            "model": name,
            "generator": f"transformers {transformers.__version__}, torch {torch.__version__}, float64 CPU",
            "ctx": CTX,
            "bos": bos,
            "ids": ids,
            "windows": stats(windows_nll(model, ids, CTX)),
            "llamacpp": stats(llamacpp_nll(model, ids, CTX, bos)),
            "loglik": [],
        }
        for ctx, cont in pairs(model, bos, g):
            ll, greedy = loglik(model, ctx, cont)
            res["loglik"].append({"context": ctx, "continuation": cont, "loglik": ll, "greedy": greedy})
        with open(os.path.join(args.out, name + ".json"), "w") as f:
            json.dump(res, f, indent=1)
            f.write("\n")
        print(f"{name}: windows ppl {res['windows']['perplexity']:.6f} over {res['windows']['tokens']}, "
              f"llamacpp ppl {res['llamacpp']['perplexity']:.6f} over {res['llamacpp']['tokens']}, "
              f"{len(res['loglik'])} loglik pairs, greedy {[p['greedy'] for p in res['loglik']]}")


if __name__ == "__main__":
    main()
