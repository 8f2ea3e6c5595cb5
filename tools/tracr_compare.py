#!/usr/bin/env python3
"""tracr_compare.py TRUTH.json CIRCUIT.h5 EDGES.json SEED — one line per run.

Two circuits are compared with the ground truth, as tests/tracr/test_tracr_recover.c
does: the trained masks' circuit (edges whose deterministic mask value and whose writer
node's value are above 1/2, read from CIRCUIT.h5 with h5dump) and the stored circuit
(EDGES.json, exported by `edgeprune circuit --format json`). "exact" means both equal the
ground truth; otherwise the line names the masks' missing and extra edges and says
whether the stored circuit differs."""
import json
import re
import subprocess
import sys


def dataset(path, name):
    text = subprocess.run(["h5dump", "-y", "-w", "0", "-d", name, path], check=True, capture_output=True,
                          text=True).stdout
    data = text[text.index("DATA {") + len("DATA {"):]
    data = data[:data.index("}")]
    strings = re.findall(r'"([^"]*)"', data)
    return strings if strings else [float(v) for v in data.replace(",", " ").split()]


truth_path, circ_path, json_path, seed = sys.argv[1:5]
truth = {tuple(e) for e in json.load(open(truth_path))}
stored = {tuple(e) for e in json.load(open(json_path))}
node_value = dict(zip(dataset(circ_path, "/nodes/name"), dataset(circ_path, "/nodes/value")))
masks = {(w, r)
         for w, r, v in zip(dataset(circ_path, "/edges/writer"), dataset(circ_path, "/edges/reader"),
                            dataset(circ_path, "/edges/value"))
         if v > 0.5 and node_value.get(w, 1.0) > 0.5}
miss, extra = sorted(truth - masks), sorted(masks - truth)
fmt = lambda l: " ".join(f"{w}->{r}" for w, r in l)
if not miss and not extra and stored == truth:
    print(f"seed {seed}: exact")
else:
    kind = "missing" if miss else "extra" if extra else "stored"
    note = "stored circuit exact" if stored == truth else f"stored circuit {len(stored)} edges, differs"
    print(f"seed {seed}: {kind} (masks keep {len(masks)} edges) -[{fmt(miss)}] +[{fmt(extra)}]; {note}")
