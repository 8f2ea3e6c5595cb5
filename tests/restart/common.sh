# common.sh — sourced by the tests/restart scripts: arguments, a scratch folder with the
# fixture (tiny model, data and deck from restart_tool), and small helpers.
#   test_X.sh EDGEPRUNE RESTART_TOOL MPIEXEC
set -u
BIN=$1
TOOL=$2
MPIEXEC=$3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
WORK=$(mktemp -d /tmp/ep_restart_XXXXXX)
cd "$WORK" || exit 2
"$TOOL" fixture . || { echo "FAIL: fixture"; exit 1; }
FAILED=0

fail() {
  echo "FAIL: $*"
  FAILED=1
}
ok() { echo "ok: $*"; }

# run_prune NPROCS LOG ARGS...: edgeprune prune run.yml ARGS, on NPROCS ranks (1: no mpirun)
run_prune() {
  local np=$1 log=$2
  shift 2
  if [ "$np" = 1 ]; then
    "$BIN" prune run.yml "$@" >"$log" 2>&1
  else
    "$MPIEXEC" -n "$np" --oversubscribe "$BIN" prune run.yml "$@" >"$log" 2>&1
  fi
}

# wait_for_file PATTERN SECONDS: until a file matching the glob exists (1 on timeout)
wait_for_file() {
  local pat=$1 limit=$2 t=0
  while ! compgen -G "$pat" >/dev/null; do
    sleep 0.05
    t=$((t + 1))
    [ $t -ge $((limit * 20)) ] && return 1
  done
  return 0
}

# the step of the newest checkpoint in DIR/checkpoints (or -1)
newest_step() {
  local f
  f=$(ls "$1"/checkpoints/ckpt-*.h5 2>/dev/null | sort | tail -1)
  [ -z "$f" ] && { echo -1; return; }
  f=${f##*/ckpt-}
  echo $((10#${f%.h5}))
}

finish() {
  if [ $FAILED = 0 ]; then
    cd / && rm -rf "$WORK"
    echo "PASSED"
    exit 0
  fi
  echo "FAILED (files kept in $WORK)"
  exit 1
}
