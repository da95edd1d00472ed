#!/usr/bin/env python3
"""Reference fixtures from Hugging Face transformers for dejavu's Go tests.

Run on a machine with torch + transformers (the device machine):

    python3 testdata/gen/gen_fixtures.py --out OUT [--shared DIR] [--parts tiny,tokenizers,testbed-opt-relu,...]

Parts:
  tiny        small random models of every supported architecture/option, saved with
              save_pretrained, plus float32 logits for a fixed id sequence
              -> OUT/models/<name>/ and OUT/logits/<name>.safetensors
  tokenizers  encode/decode cases for the real tokenizers under DIR
              -> OUT/tokenizer/hf_cases.json
  testbed-*   greedy generations and prompt logits of the real test-bed model DIR/models/<name>
              -> OUT/testbed/<name>.json and OUT/testbed/<name>.logits.safetensors

DIR is a copy of ../shared/data (only the files the parts read need to be present).
Everything is computed in float32; weights stored in f16/bf16 are upcast exactly, so the
Go engine loading the saved files must reproduce these numbers to float32 rounding.
"""
import argparse
import json
import os

import torch
from safetensors.torch import save_file

TINY_VOCAB = 256
SEQ = 12


def perturb(model, scale, seed):
    """Random weights with visible structure: norms != 1, biases != 0."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g) * scale
            if p.dim() == 1 and ("norm" in name or "layer_norm" in name) and name.endswith("weight"):
                p.copy_(1.0 + noise)
            else:
                p.copy_(noise)


def old_style_config(path):
    """Rewrite config.json the way pre-v5 transformers wrote it (torch_dtype, rope_theta, rope_scaling)."""
    cfg = json.load(open(path))
    if "dtype" in cfg:
        cfg["torch_dtype"] = cfg.pop("dtype")
    rp = cfg.pop("rope_parameters", None)
    if rp is not None:
        cfg["rope_theta"] = rp.get("rope_theta", 10000.0)
        if rp.get("rope_type", "default") != "default":
            sc = {k: v for k, v in rp.items() if k != "rope_theta"}
            cfg["rope_scaling"] = sc
        else:
            cfg["rope_scaling"] = None
    json.dump(cfg, open(path, "w"), indent=2)


def tiny_specs():
    from transformers import (LlamaConfig, MistralConfig, OPTConfig, Qwen2Config)

    common_llama = dict(vocab_size=TINY_VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                        rms_norm_eps=1e-5)
    opt_common = dict(vocab_size=TINY_VOCAB, hidden_size=64, ffn_dim=128, num_hidden_layers=2,
                      num_attention_heads=4, max_position_embeddings=64, pad_token_id=1,
                      bos_token_id=2, eos_token_id=2)
    return [
        # name, arch class name, config, storage dtype, old-style config?, max shard size
        ("opt-preln", "OPTForCausalLM", OPTConfig(**opt_common, do_layer_norm_before=True,
                                                   word_embed_proj_dim=64), torch.float32, True, None),
        ("opt-postln", "OPTForCausalLM", OPTConfig(**opt_common, do_layer_norm_before=False,
                                                    word_embed_proj_dim=64), torch.float16, True, None),
        ("opt-projinout", "OPTForCausalLM", OPTConfig(**opt_common, do_layer_norm_before=False,
                                                       word_embed_proj_dim=32), torch.bfloat16, False, None),
        ("llama-silu", "LlamaForCausalLM", LlamaConfig(**common_llama, hidden_act="silu",
                                                        tie_word_embeddings=False, rope_theta=10000.0),
         torch.float32, True, None),
        ("llama3-rope", "LlamaForCausalLM", LlamaConfig(
            **common_llama, hidden_act="silu", tie_word_embeddings=True,
            rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 4.0,
                             "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                             "original_max_position_embeddings": 16}),
         torch.float16, True, None),
        ("llama3-rope-new", "LlamaForCausalLM", LlamaConfig(
            **common_llama, hidden_act="silu", tie_word_embeddings=False,
            rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 4.0,
                             "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                             "original_max_position_embeddings": 16}),
         torch.float32, False, None),
        ("llama-relu-sharded", "LlamaForCausalLM", LlamaConfig(
            **{**common_llama, "num_key_value_heads": 1}, hidden_act="relu", tie_word_embeddings=False),
         torch.bfloat16, False, "40KB"),
        ("llama-gelu", "LlamaForCausalLM", LlamaConfig(**common_llama, hidden_act="gelu",
                                                        tie_word_embeddings=False), torch.float32, False, None),
        ("mistral-headdim", "MistralForCausalLM", MistralConfig(
            **common_llama, head_dim=32, hidden_act="gelu_pytorch_tanh", sliding_window=None,
            tie_word_embeddings=False), torch.float16, False, None),
        ("qwen2-bias", "Qwen2ForCausalLM", Qwen2Config(**common_llama, hidden_act="silu",
                                                       tie_word_embeddings=True, use_sliding_window=False),
         torch.float32, False, None),
    ]


def gen_tiny(out):
    import transformers
    for i, (name, arch, cfg, dtype, old, shard) in enumerate(tiny_specs()):
        torch.manual_seed(1000 + i)
        model = getattr(transformers, arch)(cfg).eval()
        perturb(model, 0.15, 2000 + i)
        if cfg.tie_word_embeddings:
            model.tie_weights()
        model = model.to(dtype)
        d = os.path.join(out, "models", name)
        kw = {"max_shard_size": shard} if shard else {}
        model.save_pretrained(d, safe_serialization=True, **kw)
        for extra in ("generation_config.json",):
            p = os.path.join(d, extra)
            if os.path.exists(p):
                os.remove(p)
        if old:
            old_style_config(os.path.join(d, "config.json"))
        # Reload from disk as a user would: from_pretrained recomputes buffers such as
        # RoPE's inv_freq in float32 (casting the in-memory model would round them).
        model = getattr(transformers, arch).from_pretrained(d, dtype=torch.float32).eval()
        g = torch.Generator().manual_seed(3000 + i)
        ids = torch.randint(0, TINY_VOCAB, (1, SEQ), generator=g)
        with torch.no_grad():
            logits = model(ids).logits[0].float().contiguous()
        os.makedirs(os.path.join(out, "logits"), exist_ok=True)
        save_file({"ids": ids[0].to(torch.int32).contiguous(), "logits": logits},
                  os.path.join(out, "logits", name + ".safetensors"))
        print(f"tiny {name}: {sum(p.numel() for p in model.parameters())} params, stored {dtype}, "
              f"max|logit| {logits.abs().max():.3f}")


TOKENIZER_TEXTS = [
    "",
    "Hello world",
    " Hello world",
    "Hello  world ",
    "The quick brown fox jumps over the lazy dog.",
    "I'm sure it's what they've said; we'll see, wouldn't you?",
    "Numbers: 3.14159, 1,000,000 and 2026-11-27.",
    "tabs\tand\nnewlines\n\n  indented\r\nline",
    "    leading spaces and trailing   ",
    "Ünïcödé: café, naïve, Straße, Ελληνικά, русский",
    "中文字符和日本語のテキスト",
    "Emoji: 😀🎉👍🏽 and 🇫🇷 flags",
    "<s> and </s> and <unk> <pad> inline",
    "<|endoftext|>A document<|endoftext|>",
    "code: def f(x):\n    return x**2  # square",
    "a" * 50,
    "Mixed\u00a0nbsp\u2003emspace\u200bzero-width",
]


def gen_tokenizers(out, shared):
    import sentencepiece as spm
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer, GPT2Tokenizer

    res = {}

    def add(name, path, enc, enc_plain, dec, note):
        cases = []
        for t in TOKENIZER_TEXTS:
            ids = enc(t)
            plain = enc_plain(t)
            cases.append({"text": t, "ids": ids, "ids_no_special": plain, "decoded": dec(ids),
                          "decoded_no_special": dec(plain)})
        res[name] = {"path": path, "note": note, "cases": cases}
        print(f"tokenizer {name}: {len(cases)} cases")

    for name, path in [("testbed-opt-relu", "models/testbed-opt-relu"),
                       ("testbed-llama-relu", "models/testbed-llama-relu"),
                       ("gptj-6B", "tokenizers/gptj-6B")]:
        if not os.path.exists(os.path.join(shared, path, "tokenizer.json")):
            print(f"tokenizer {name}: skipped, {path} is not present")
            continue
        tk = Tokenizer.from_file(os.path.join(shared, path, "tokenizer.json"))
        add(name, path, lambda t: tk.encode(t).ids, lambda t: tk.encode(t, add_special_tokens=False).ids,
            lambda ids: tk.decode(ids, skip_special_tokens=False),
            "tokenizers.Tokenizer.from_file(tokenizer.json); decode with skip_special_tokens=False")
        # Cross-check: transformers' AutoTokenizer must agree with the raw tokenizers library.
        try:
            at = AutoTokenizer.from_pretrained(os.path.join(shared, path))
            bad = [t for t in TOKENIZER_TEXTS if at(t)["input_ids"] != tk.encode(t).ids]
            print(f"  AutoTokenizer disagreements: {len(bad)} {bad[:3]!r}")
        except Exception as e:  # the cross-check is informative only
            print(f"  AutoTokenizer cross-check failed: {e}")

    if not os.path.exists(os.path.join(shared, "tokenizers/gpt2/vocab.json")):
        print("tokenizer gpt2 and sentencepiece: skipped, not present")
        return save_cases(out, res)
    g2 = GPT2Tokenizer.from_pretrained(os.path.join(shared, "tokenizers/gpt2"))
    add("gpt2", "tokenizers/gpt2", lambda t: g2(t)["input_ids"], lambda t: g2(t, add_special_tokens=False)["input_ids"],
        lambda ids: g2.decode(ids), "transformers GPT2Tokenizer(vocab.json, merges.txt)")

    for name, path in [("llama2-spm", "tokenizers/llama2/tokenizer.model"),
                       ("tok512", "models/stories260K/tok512.model")]:
        sp = spm.SentencePieceProcessor(model_file=os.path.join(shared, path))
        add(name, os.path.dirname(path) if name == "llama2-spm" else path,
            lambda t, sp=sp: [sp.bos_id()] + sp.encode(t), lambda t, sp=sp: sp.encode(t),
            lambda ids, sp=sp: sp.decode(ids),
            "sentencepiece.SentencePieceProcessor: ids = [bos] + encode(text) (add_bos_token default); "
            "decoded = sp.decode(ids), which drops control tokens such as <s>")

    save_cases(out, res)


def save_cases(out, res):
    """Writes (merging into an existing file, so parts can run on separate machines)."""
    os.makedirs(os.path.join(out, "tokenizer"), exist_ok=True)
    p = os.path.join(out, "tokenizer", "hf_cases.json")
    old = json.load(open(p)) if os.path.exists(p) else {}
    old.update(res)
    with open(p, "w") as f:
        json.dump(dict(sorted(old.items())), f, ensure_ascii=False, indent=1)


TESTBED_PROMPTS = [
    "Once upon a time",
    "The history of the city",
    "In 1850, the river",
    "She opened the door and saw",
    "The theory of evolution explains",
]


def gen_testbed(out, shared, name):
    from tokenizers import Tokenizer
    from transformers import AutoModelForCausalLM

    d = os.path.join(shared, "models", name)
    tk = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
    model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32).eval()
    runs = []
    for p in TESTBED_PROMPTS:
        ids = tk.encode(p).ids
        with torch.no_grad():
            o = model.generate(torch.tensor([ids]), max_new_tokens=32, do_sample=False, num_beams=1,
                               eos_token_id=model.config.eos_token_id, pad_token_id=model.config.pad_token_id)
        gen = o[0, len(ids):].tolist()
        runs.append({"prompt": p, "prompt_ids": ids, "output_ids": gen, "text": tk.decode(gen)})
        print(f"{name}: {p!r} -> {tk.decode(gen)!r}")
    ids = torch.tensor([tk.encode(TESTBED_PROMPTS[1]).ids])
    with torch.no_grad():
        logits = model(ids).logits[0].float().contiguous()
    os.makedirs(os.path.join(out, "testbed"), exist_ok=True)
    save_file({"ids": ids[0].to(torch.int32).contiguous(), "logits": logits},
              os.path.join(out, "testbed", name + ".logits.safetensors"))
    with open(os.path.join(out, "testbed", name + ".json"), "w") as f:
        json.dump({"model": name, "max_new_tokens": 32, "runs": runs}, f, ensure_ascii=False, indent=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--shared", default="../shared/data")
    ap.add_argument("--parts", default="tiny,tokenizers")
    a = ap.parse_args()
    torch.use_deterministic_algorithms(True)
    for part in a.parts.split(","):
        if part == "tiny":
            gen_tiny(a.out)
        elif part == "tokenizers":
            gen_tokenizers(a.out, a.shared)
        elif part.startswith("testbed-"):
            gen_testbed(a.out, a.shared, part)
        else:
            raise SystemExit(f"unknown part {part!r}")


if __name__ == "__main__":
    main()
