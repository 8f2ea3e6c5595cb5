#!/bin/bash
# The HDF5 outputs are plain HDF5 that h5dump reads: the checkpoint and the circuit carry
# the resolved input deck (as an attribute), the dataset from `edgeprune dataset` its
# generator parameters. Skips (77) without h5dump.
. "$(dirname "$0")/common.sh"
command -v h5dump >/dev/null || { echo "SKIP: h5dump not found"; exit 77; }
run_prune 1 run.log -P run.out_dir=out -P prune.steps=30 -P prune.lr_warmup=3 -P prune.sparsity_warmup=20 \
  -P run.checkpoint_every=10 || { cat run.log; fail "run"; }
ckpt=out/checkpoints/ckpt-00000030.h5
for f in $ckpt out/circuit.h5; do
  if h5dump -a deck "$f" >deck.txt 2>&1 && grep -q "checkpoint_every: 10" deck.txt &&
    grep -q 'path: \\"model.h5\\"\|path: "model.h5"' deck.txt; then
    ok "$f: h5dump shows the resolved deck"
  else
    fail "$f: no resolved deck"; head -20 deck.txt
  fi
  h5dump "$f" >/dev/null 2>&1 && ok "$f: h5dump reads all of it" || fail "$f: h5dump failed"
done
h5dump -a step $ckpt | grep -q "(0): 30" && h5dump -d arrays/theta $ckpt | grep -q "DATASPACE  SIMPLE { ( 73 )" &&
  ok "checkpoint: step and theta[73] visible" || fail "checkpoint: step or theta missing"
tokdir=$(dirname "$0")/../../inputs/gpt2-tokenizer
"$BIN" dataset --task ioi --n 20 --seed 3 --tokenizer "$tokdir" --out ds.h5 >ds.log 2>&1 || { cat ds.log; fail "dataset"; }
h5dump -A ds.h5 >ds.txt 2>&1 && grep -q 'ATTRIBUTE "seed"' ds.txt && grep -q 'ATTRIBUTE "tokenizer"' ds.txt &&
  grep -q '"ioi"' ds.txt && h5dump -d train/clean ds.h5 >/dev/null 2>&1 &&
  ok "dataset: h5dump shows task, seed, tokenizer and the token arrays" || { fail "dataset attributes"; head -30 ds.txt; }
finish
