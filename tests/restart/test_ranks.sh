#!/bin/bash
# Rank invariance of `edgeprune prune`: the same run on 1 rank and on 2 ranks (batch 8 as
# 4 + 4; each rank reads only its rows of every batch) gives the same masks within 1e-5
# and the same circuit (identical edges.json); so does 3 ranks (3 + 3 + 2, mean ablation,
# whose mean over the training split is summed across the ranks).
. "$(dirname "$0")/common.sh"

check_pair() { # ARGS: label dirA dirB
  local label=$1 a=$2 b=$3
  if out=$("$TOOL" close "$a/circuit.h5" "$b/circuit.h5" 1e-5); then
    ok "$label: $out"
  else
    fail "$label: $out"
  fi
  "$BIN" circuit "$a/circuit.h5" --format json --out "$a/edges.json" >/dev/null 2>&1
  "$BIN" circuit "$b/circuit.h5" --format json --out "$b/edges.json" >/dev/null 2>&1
  local kept
  kept=$(grep -c '\["' "$a/edges.json")
  # a circuit that keeps everything or nothing would not test much
  if [ "$kept" -gt 0 ] && [ "$kept" -lt 61 ] && cmp -s "$a/edges.json" "$b/edges.json"; then
    ok "$label: identical edges.json ($kept of 61 edges)"
  else
    fail "$label: edges.json differ or degenerate ($kept edges)"
    diff "$a/edges.json" "$b/edges.json"
  fi
}

run_prune 1 np1.log -P run.out_dir=np1 || { cat np1.log; fail "1 rank"; }
run_prune 2 np2.log -P run.out_dir=np2 || { cat np2.log; fail "2 ranks"; }
grep -q "over 2 replica" np2.log || fail "2 ranks: no data parallelism in the log"
check_pair "1 vs 2 ranks" np1 np2

run_prune 1 mean1.log -P run.out_dir=mean1 -P prune.ablation=mean || { cat mean1.log; fail "1 rank, mean"; }
run_prune 3 mean3.log -P run.out_dir=mean3 -P prune.ablation=mean || { cat mean3.log; fail "3 ranks, mean"; }
check_pair "1 vs 3 ranks, mean ablation" mean1 mean3
finish
