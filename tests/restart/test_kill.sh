#!/bin/bash
# Restart exactness: a run killed with SIGKILL at a random step after its first
# checkpoint and then resumed ends with the state of the uninterrupted run bit for bit
# (all log_alphas, lambdas, AdamW moments: the final checkpoints compared array by
# array); the same for a graceful stop on 2 ranks by SIGTERM to one rank (what the batch
# system does at the time limit) and by SIGUSR1 to mpirun (what the job scripts forward),
# which must end with run.stop_exit_status and the "resubmit to continue" line; and a run
# stopped by run.max_wall_time (1 rank).
. "$(dirname "$0")/common.sh"
FINAL=checkpoints/ckpt-00000300.h5
SLOW="-P debug.step_delay=0.01 -P run.log_every=1" # about 3 s a run: time to catch it mid-way

same_as() { # ARGS: label ref dir
  if out=$("$TOOL" same "$2/$FINAL" "$3/$FINAL"); then
    ok "$1: final state identical to the uninterrupted run"
  else
    fail "$1: final state differs:"
    echo "$out"
  fi
}

# a random delay of 0.05 .. 0.6 s after the first checkpoint
random_delay() { printf '0.%02d' $((5 + RANDOM % 55)); }

# --- SIGKILL, 1 rank -------------------------------------------------------------------
run_prune 1 ref1.log -P run.out_dir=ref1 || { cat ref1.log; fail "reference run"; }
setsid "$BIN" prune run.yml -P run.out_dir=killed $SLOW >killed1.log 2>&1 &
pid=$!
wait_for_file "killed/checkpoints/ckpt-*.h5" 20 || fail "no checkpoint appeared"
sleep "$(random_delay)"
kill -KILL -- -"$pid" # the whole process group, as a node failure would
wait "$pid" 2>/dev/null
step=$(newest_step killed)
last=$(grep -o "^step *[0-9]*" killed1.log | tail -1 | grep -o "[0-9]*")
if [ -e killed/circuit.h5 ] || [ "$step" -ge 300 ] || [ "$step" -lt 25 ]; then
  fail "SIGKILL: the run was not caught mid-way (newest checkpoint step $step)"
else
  ok "SIGKILL after step $last (newest checkpoint: step $step)"
fi
run_prune 1 killed2.log -P run.out_dir=killed || { cat killed2.log; fail "resume after SIGKILL"; }
grep -q "restarting from .*at step $step" killed2.log || fail "resume did not start at step $step: $(grep restarting killed2.log)"
same_as "SIGKILL after step $last, resumed from step $step" ref1 killed

# --- the wall-time limit, 1 rank: rank 0 stops in time to write the checkpoint ----------
run_prune 1 wall1.log -P run.out_dir=wall -P run.max_wall_time=1.5 -P run.stop_exit_status=3 $SLOW
st=$?
line=$(grep "stopped at step" wall1.log)
if [ $st = 3 ] && [[ "$line" == *"(wall-time limit), checkpoint written"* ]]; then
  ok "wall time: '$line'"
else
  fail "wall time: exit status $st, line '$line'"
fi
step=$(newest_step wall)
run_prune 1 wall2.log -P run.out_dir=wall || { cat wall2.log; fail "resume after the wall-time stop"; }
same_as "wall-time stop at step $step" ref1 wall

# --- graceful stops, 2 ranks ------------------------------------------------------------
run_prune 2 ref2.log -P run.out_dir=ref2 || { cat ref2.log; fail "2-rank reference run"; }
for how in TERM-rank USR1-mpirun; do
  d=stop-$how
  setsid "$MPIEXEC" -n 2 --oversubscribe "$BIN" prune run.yml -P run.out_dir=$d -P run.stop_exit_status=3 $SLOW \
    >$d.log 2>&1 &
  mp=$!
  wait_for_file "$d/checkpoints/ckpt-*.h5" 20 || fail "$how: no checkpoint appeared"
  sleep "$(random_delay)"
  if [ $how = TERM-rank ]; then
    kids=($(pgrep -P "$mp"))
    kill -TERM "${kids[${#kids[@]}-1]}" # one rank only: the stop decision is shared
  else
    kill -USR1 "$mp"
  fi
  wait "$mp"
  st=$?
  line=$(grep "stopped at step" $d.log)
  if [ $st = 3 ] && [[ "$line" == *"checkpoint written; resubmit to continue"* ]] && [ ! -e $d/circuit.h5 ]; then
    ok "SIG$how: exit status 3, '$line'"
  else
    fail "SIG$how: exit status $st, line '$line'"
    tail -20 $d.log
  fi
  step=$(newest_step $d)
  run_prune 2 $d-2.log -P run.out_dir=$d || { cat $d-2.log; fail "$how: resume"; }
  grep -q "restarting from .*at step $step" $d-2.log || fail "$how: resume did not start at step $step"
  same_as "SIG$how at step $step, 2 ranks" ref2 $d
done
finish
