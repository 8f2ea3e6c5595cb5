#!/usr/bin/env python3
"""Golden ids for the tokenizer test: encode every string of
tests/data/tokenizer/cases.json with the reference Hugging Face GPT2Tokenizer built from
the shipped vocab.json and merges.txt, and write tests/data/tokenizer/expected.json
(a list of id lists, in the same order). Runs offline.

usage: python3 tools/make_tokenizer_vectors.py [--tokenizer DIR] [--cases FILE] [--out FILE]
"""
import argparse
import json
import os

from transformers import GPT2Tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--tokenizer", default=os.path.join(ROOT, "inputs", "gpt2-tokenizer"))
    ap.add_argument("--cases", default=os.path.join(ROOT, "tests", "data", "tokenizer", "cases.json"))
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "data", "tokenizer", "expected.json"))
    args = ap.parse_args()
    tok = GPT2Tokenizer(os.path.join(args.tokenizer, "vocab.json"), os.path.join(args.tokenizer, "merges.txt"))
    with open(args.cases, encoding="utf-8") as f:
        cases = json.load(f)
    # encode() adds no BOS/EOS for GPT-2; <|endoftext|> in the text is the special token.
    expected = [tok.encode(s) for s in cases]
    assert tok.encode("Hello world") == [15496, 995]
    assert tok.encode("<|endoftext|>") == [50256]
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(expected, f)
        f.write("\n")
    print(f"wrote {len(expected)} id lists to {args.out}")


if __name__ == "__main__":
    main()
