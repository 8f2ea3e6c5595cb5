#!/usr/bin/env python3
"""Write tests/data/tokenizer/cases.json: the tokenizer test strings. Sentences from the
paper's reference splits (a deterministic sample) plus hand-written hard cases.

usage: python3 tools/make_tokenizer_cases.py DATA_DIR > tests/data/tokenizer/cases.json
DATA_DIR holds reference-datasets/*.jsonl.
"""
import json
import os
import random
import sys


def jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


HARD = [
    "", "Hello world", " Hello world", "Hello world ", "  Hello   world  ", "\tHello\tworld\t",
    "Hello\nworld", "Hello\n\nworld\n", "line one\r\nline two", " ", "  ", "   ", "\t", "\n", "\n\n",
    " \n ", "a  b", "a   b", "a \t b", "a\t\tb", "trailing spaces   ", "   leading spaces",
    "x\u00a0y", "x\u3000y", "x\u2028y", "x\u0085y", "x\u200by", "x\ufeffy", "x\u001cy",
    # contractions
    "it's", "don't", "they're", "we've", "I'm", "we'll", "he'd", "IT'S", "DON'T", "They'Re",
    "I'M", "We'LL", "she'D", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "''s", " 's", "?'s",
    "rock 'n' roll", "the dogs' bowls", "O'Neil's book", "y'all'd've", "'", "''", "'x", "'sx",
    # numbers
    "0", "7", "42", "1234", "12345", "1234567890", "3.14159", "1,000,000", "2024-01-01", "x1y2z3",
    " 99 bottles", "100000000000000000000", "The 1990s", "from 1589 to 15", "$4.99", "50%",
    "\u0661\u0662\u0663", "\u00bd and \u2153", "\u2460\u2461\u2462", "\u2167 chapters",
    # punctuation runs
    "!!!", "???!!!", "...", "Hello...world", "a--b", "(a) [b] {c}", "<html><body>", "@user #tag",
    "C++ && C#", "a/b\\c", "~`!@#$%^&*()_+-=", "\"quoted\"", "'single'", "e.g., i.e.;", ":-)",
    " ,", " .", " !?", "ok!!! ok", "«guillemets»", "\u201csmart quotes\u201d", "\u2014 em dash",
    # accents and Latin extensions
    "caf\u00e9", "na\u00efve r\u00e9sum\u00e9", "\u00c9cole \u00e0 Paris", "Stra\u00dfe", "\u00e5ngstr\u00f6m",
    "Se\u00f1or Pe\u00f1a", "\u0141\u00f3d\u017a", "\u0130stanbul", "\u00f8resund",
    # combining marks
    "cafe\u0301", "e\u0301e\u0301e\u0301", "n\u0303", "a\u0308b", "\u0301", " \u0301x",
    # Cyrillic, Greek, Arabic, Hebrew, Devanagari, Thai
    "\u041f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440", "\u041c\u043e\u0441\u043a\u0432\u0430 2024",
    "\u0393\u03b5\u03b9\u03ac \u03c3\u03bf\u03c5 \u039a\u03cc\u03c3\u03bc\u03b5",
    "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645",
    "\u0627\u0644\u0639\u0631\u0628\u064a\u0629\u064f", "\u05e9\u05dc\u05d5\u05dd",
    "\u0928\u092e\u0938\u094d\u0924\u0947", "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35",
    # CJK, Japanese, Korean
    "\u4f60\u597d\uff0c\u4e16\u754c", "\u4e2d\u6587\u5b57", "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8",
    "\u30ab\u30bf\u30ab\u30ca", "\uc548\ub155\ud558\uc138\uc694", "\u4e00\u4e8c\u4e09", "\u3007",
    "\uff11\uff12\uff13 fullwidth", "\u3002\u3001",
    # emoji and symbols
    "\U0001f600", "I love \U0001f355!", "\U0001f44d\U0001f3fd", "\U0001f468\u200d\U0001f469\u200d\U0001f467",
    "\U0001f1eb\U0001f1f7", "\u2764\ufe0f", "\u2603 snow", "\u00a9 2024 \u00ae", "\u20ac100",
    "\U0001d400\U0001d401", "\U00010400 deseret", "\u2122",
    # special token
    "<|endoftext|>", "<|endoftext|><|endoftext|>", "Hello<|endoftext|>world",
    "Hello <|endoftext|> world", "<|endoftext|> start", "end <|endoftext|>", "<|endoftext|>\n",
    "<|endoftext", "endoftext|>", "<|ENDOFTEXT|>", "<|endoftext|>'s",
    # mixed
    "The quick brown fox jumps over the lazy dog.", "THE QUICK BROWN FOX", "camelCaseIdentifier",
    "snake_case_identifier", "http://example.com/path?q=1&r=2", "user@example.com",
    "def f(x):\n    return x ** 2\n", "    indented code", "\tif (a) {\n\t\tb();\n\t}",
    "A" * 100, "ab" * 60, " " * 20 + "x", "x" + "\n" * 5 + "y",
]


def main():
    data = sys.argv[1]
    ref = os.path.join(data, "reference-datasets")
    rng = random.Random(1234)
    cases = list(HARD)
    ioi = jsonl(os.path.join(ref, "ioi-train.jsonl"))
    for r in rng.sample(ioi, 60):
        cases += [r["ioi_sentences"], r["corr_ioi_sentences"]]
    for r in rng.sample(jsonl(os.path.join(ref, "gt-train.jsonl")), 30):
        cases.append(r["prefix"])
    for r in rng.sample(jsonl(os.path.join(ref, "gp-train.jsonl")), 30):
        cases.append(r["prefix"])
    for r in rng.sample(jsonl(os.path.join(ref, "boolean_expressions-train.jsonl")), 20):
        cases.append(r["input"])
    seen = set()
    unique = [c for c in cases if not (c in seen or seen.add(c))]
    json.dump(unique, sys.stdout, ensure_ascii=False, indent=0)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
