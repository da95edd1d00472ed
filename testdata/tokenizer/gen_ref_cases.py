#!/usr/bin/python3
"""Generates ref_cases.json, the tokenizer package's reference cases that do
not need transformers:

- "spm": for the sentencepiece models tokenizers/llama2/tokenizer.model and
  models/stories260K/tok512.model, the ids of sentencepiece's own
  SentencePieceProcessor.encode (no BOS) and its decode of them;
- "gpt2": for tokenizers/gpt2 (vocab.json + merges.txt), the ids of OpenAI's
  original GPT-2 encoder algorithm (encoder.py, with the `regex` module);
- "gpt2_split": the pieces of the GPT-2 pre-tokenizer regex for random
  strings (their concatenation is the string), to check the hand-written
  split.

Run with Debian's python3 (apt-get install python3-sentencepiece
python3-regex) from the repository root:
    /usr/bin/python3 testdata/tokenizer/gen_ref_cases.py
"""
import json
import os
import random

import regex
import sentencepiece as spm

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "data")

FIXED = [
    "Hello world", "Hello, world!", "hello world", "HELLO WORLD", "The quick brown fox jumps over the lazy dog.",
    "I've been 'told he's there, 'RE you sure? 'M not sure I'll make it, 'D you like some tea? We'Ve a'lL",
    "don't won't can't shouldn't y'all o'clock rock'n'roll", "3.14159 and 2,718 and 1e-10 and 0x1F and 1/2",
    "   leading spaces", "trailing spaces   ", "two  spaces  between", "tab\there", "new\nline", "cr\r\nlf",
    "\n\n\nmany newlines\n\n", " \t \n mixed \u00a0 whitespace \u3000 ", "a\u2009thin\u200bzero-width",
    "Ünïcödé àçcéñts — “quotes” and ‘single’ …", "日本語のテキストと中文文本", "한국어 텍스트", "Привет, мир! Как дела?",
    "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया", "สวัสดีชาวโลก", "Γειά σου Κόσμε", "ქართული ენა",
    "😀 😃 😄 👍🏽 👨‍👩‍👧‍👦 🇫🇷 ❤️ ✅", "emoji😀inside", "math: ∑ ∫ √ ∞ ≠ ≤ ≥ ± × ÷ ∂ ∇", "currency: $ € £ ¥ ₹ ₿ ¢",
    "½ ¼ ¾ ² ³ ① Ⅷ ⁴", "https://example.com/path?query=1&b=2#frag", "user@example.com", "C:\\Windows\\System32",
    "def f(x):\n    return x**2  # comment\n", "<html><body class=\"a\">text</body></html>", "{\"json\": [1, 2, 3]}",
    "!!!!!!!!", "??!!..", "------======", "''''''```````\"\"\"\"......!!!!!!??????", "a-b_c.d,e;f:g",
    "   ", " ", "\t", "\n", "x", "I", "a b c d e f g", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789 00000 123456789012",
    "\u00ad soft hyphen", "\ufeffBOM", "replacement \ufffd char", "control \x01\x02\x1b[0m chars", "nul \x00 byte",
    "private \ue000 use", "astral 𝕳𝖊𝖑𝖑𝖔 𝒳 𐍈", "combining e\u0301 a\u0308 n\u0303", "ﬁ ﬂ ligatures", "full-width ＡＢＣ１２３",
    " = Robert Boulter = \n", " In 2006 , Boulter starred alongside Whishaw in the play Citizenship written by Mark Ravenhill . ",
    "▁ already has a meta space ▁▁ ", "Ġ and Ċ look like byte-level chars",
]


def samples():
    out = list(FIXED)
    with open(os.path.join(DATA, "text", "wikitext-2-raw", "wiki.test.raw"), encoding="utf-8") as f:
        lines = [l for l in f.read().split("\n") if len(l) > 40]
    rng = random.Random(1234)
    for l in rng.sample(lines, 20):
        out.append(l[:400])
    with open(os.path.join(DATA, "text", "c4_sample.jsonl"), encoding="utf-8") as f:
        docs = [json.loads(l)["text"] for l in f]
    for d in rng.sample(docs, 15):
        out.append(d[:500])
    # Random strings from a mix of scripts, spaces and symbols.
    pools = [
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789", " ", "  \t\n", ".,;:!?'\"-()[]{}<>/@#$%^&*_+=~`|\\",
        "éèêëàâäôöûüçñßøåæœ", "日本語中文字漢字かなカナ", "Привет", "😀😃👍🏽❤️\u200d", "½²①Ⅷ٣", "\u00a0\u3000\u2009\u200b",
    ]
    for _ in range(60):
        n = rng.randint(1, 40)
        out.append("".join(rng.choice(rng.choice(pools)) for _ in range(n)))
    return out


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


GPT2_PAT = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")


class GPT2:
    """OpenAI's gpt-2/src/encoder.py algorithm."""

    def __init__(self, d):
        with open(os.path.join(d, "vocab.json"), encoding="utf-8") as f:
            self.encoder = json.load(f)
        with open(os.path.join(d, "merges.txt"), encoding="utf-8") as f:
            merges = [tuple(l.split()) for l in f.read().split("\n")[1:-1]]
        self.ranks = dict(zip(merges, range(len(merges))))
        self.byte_encoder = bytes_to_unicode()
        self.cache = {}

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = tuple(token)
        while len(word) > 1:
            pairs = set(zip(word, word[1:]))
            bigram = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if bigram not in self.ranks:
                break
            first, second = bigram
            new_word = []
            i = 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                except ValueError:
                    new_word.extend(word[i:])
                    break
                new_word.extend(word[i:j])
                i = j
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    new_word.append(first + second)
                    i += 2
                else:
                    new_word.append(word[i])
                    i += 1
            word = tuple(new_word)
        self.cache[token] = word
        return word

    def encode(self, text):
        ids = []
        for tok in regex.findall(GPT2_PAT, text):
            tok = "".join(self.byte_encoder[b] for b in tok.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self.bpe(tok))
        return ids


def main():
    texts = samples()
    enc = lambda v: json.dumps(v, ensure_ascii=False, separators=(",", ":"))
    # One item per line, to keep the file small and its diffs readable.
    lines = ["{", '"texts":[', ",\n".join(enc(t) for t in texts), "],", '"spm":{']
    models = [("llama2", "tokenizers/llama2/tokenizer.model"), ("tok512", "models/stories260K/tok512.model")]
    for i, (name, rel) in enumerate(models):
        sp = spm.SentencePieceProcessor(model_file=os.path.join(DATA, rel))
        ids = [sp.encode(t) for t in texts]
        # decoded is null where sp.decode gives the text back.
        dec = [None if sp.decode(x) == t else sp.decode(x) for x, t in zip(ids, texts)]
        lines.append('%s:{"path":%s,"decoded":%s,"ids":[' % (enc(name), enc(rel), enc(dec)))
        lines.append(",\n".join(enc(x) for x in ids))
        lines.append("]}" + ("," if i + 1 < len(models) else ""))
    lines.append("},")
    g = GPT2(os.path.join(DATA, "tokenizers", "gpt2"))
    lines.append('"gpt2":{"path":"tokenizers/gpt2","ids":[')
    lines.append(",\n".join(enc(g.encode(t)) for t in texts))
    lines.append("]},")
    rng = random.Random(99)
    alphabet = list("aZ09 '\t\n.!é日😀½\u00a0\u3000sdtmlrev") + ["'s", "'ll", "  ", " '"]
    split = []
    for _ in range(300):
        t = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 25)))
        split.append(regex.findall(GPT2_PAT, t))
    lines.append('"gpt2_split":[')
    lines.append(",\n".join(enc(x) for x in split))
    lines.append("]}")
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ref_cases.json")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
