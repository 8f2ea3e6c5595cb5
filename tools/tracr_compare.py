#!/usr/bin/env python3
"""tracr_compare.py TRUTH.json EDGES.json SEED — one line: exact, or the missing/extra edges."""
import json
import sys

truth = {tuple(e) for e in json.load(open(sys.argv[1]))}
got = {tuple(e) for e in json.load(open(sys.argv[2]))}
miss, extra = sorted(truth - got), sorted(got - truth)
fmt = lambda l: " ".join(f"{w}->{r}" for w, r in l)
if not miss and not extra:
    print(f"seed {sys.argv[3]}: exact")
else:
    kind = "missing" if miss else "extra"
    print(f"seed {sys.argv[3]}: {kind} ({len(got)} edges) -[{fmt(miss)}] +[{fmt(extra)}]")
