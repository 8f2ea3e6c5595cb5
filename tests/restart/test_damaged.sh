#!/bin/bash
# Damaged and foreign checkpoints: a run that crashed after step 161 left checkpoints of
# steps 100, 125 and 150; with the newest one truncated on disk the restart names it
# unusable, continues from step 125 and ends bit for bit where the uninterrupted run
# does, and every other file in the output folder is still there. A checkpoint from
# another deck or another rank grid is refused with the reason; run.restart=never starts
# over and moves the old checkpoints aside.
. "$(dirname "$0")/common.sh"

run_prune 1 ref.log -P run.out_dir=ref || { cat ref.log; fail "reference run"; }
run_prune 1 crash.log -P run.out_dir=out -P debug.exit_after_step=160
[ $? != 0 ] && grep -q "after step 161" crash.log || fail "the simulated crash did not happen"
echo "my notes" >out/notes.txt
ls out/checkpoints >before.txt
c150=out/checkpoints/ckpt-00000150.h5
[ -e $c150 ] || fail "no checkpoint of step 150"
size=$(stat -c %s $c150)
truncate -s $((size / 2)) $c150
run_prune 1 resume.log -P run.out_dir=out || { cat resume.log; fail "resume"; }
grep -q "ckpt-00000150.h5' is unusable.*trying the previous one" resume.log &&
  ok "truncated checkpoint named: $(grep -o "ckpt-00000150.h5' is unusable[^;]*" resume.log)" ||
  fail "truncated checkpoint not reported"
grep -q "restarting from .*ckpt-00000125.h5 at step 125" resume.log && ok "continued from step 125" ||
  fail "did not continue from step 125: $(grep restarting resume.log)"
if "$TOOL" same ref/checkpoints/ckpt-00000300.h5 out/checkpoints/ckpt-00000300.h5 >same.txt; then
  ok "final state identical to the uninterrupted run"
else
  fail "final state differs"; cat same.txt
fi
[ "$(cat out/notes.txt 2>/dev/null)" = "my notes" ] && [ -e out/circuit.h5 ] && ok "other files intact" ||
  fail "a file in the output folder was lost"

# a checkpoint of another deck, and of another rank grid, is refused
run_prune 1 other.log -P run.out_dir=out -P prune.seed=5
[ $? != 0 ] && grep -q "another configuration" other.log && ok "another deck refused" ||
  { fail "another deck not refused"; tail -5 other.log; }
run_prune 2 grid.log -P run.out_dir=out
[ $? != 0 ] && grep -q "grid of 1 x 1" grid.log && ok "another grid refused" ||
  { fail "another grid not refused"; tail -5 grid.log; }
# unless told to start over: the old checkpoints move aside, nothing is deleted
n_old=$(ls out/checkpoints | wc -l)
run_prune 2 over.log -P run.out_dir=out -P run.restart=never -P prune.steps=30 -P prune.lr_warmup=3 \
  -P prune.sparsity_warmup=20 || { cat over.log; fail "start over"; }
aside=$(ls -d out/checkpoints.old-* 2>/dev/null | head -1)
if [ -n "$aside" ] && [ "$(ls "$aside" | wc -l)" = "$n_old" ] && grep -q "moved aside" over.log &&
  [ -e out/checkpoints/ckpt-00000030.h5 ]; then
  ok "run.restart=never: $n_old old checkpoints in $aside, new run finished"
else
  fail "run.restart=never did not start over cleanly"; tail -5 over.log
fi
finish
