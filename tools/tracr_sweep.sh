#!/usr/bin/env bash
# tracr_sweep.sh — exact-recovery rate of a Tracr deck over seeds.
#
#   tools/tracr_sweep.sh TASK DECK.yml "SEEDS" [-P section.key=value ...]
#
# TASK is reverse or xproportion. For every seed it runs `edgeprune prune DECK -P
# prune.seed=S` (plus the -P overrides), exports the stored circuit with `edgeprune circuit
# --format json` and compares it, and the trained masks' circuit (mask values above 1/2, as
# tests/tracr checks), with tests/data/tracr/TASK-circuit.json (tools/tracr_compare.py).
# Prints one line per seed (exact, or the edges missing / extra) and a summary line
#   rate K/N exact (missing: seeds..., extra: seeds..., stored only: seeds...) -P ...
# Runs from the repository root. EDGEPRUNE (default build/edgeprune) is the binary, JOBS
# (default 2) the runs at a time, WORK (default a temporary folder) the scratch folder;
# the datasets are made once per WORK folder with the commands of the deck's header.
set -euo pipefail
if [ $# -lt 3 ]; then
  sed -n '3,15p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
task=$1 deck=$2 seeds=$3
shift 3
overrides=("$@")
bin=${EDGEPRUNE:-build/edgeprune}
jobs=${JOBS:-2}
truth=tests/data/tracr/$task-circuit.json
[ -x "$bin" ] || { echo "tracr_sweep: $bin is not an executable (set EDGEPRUNE)" >&2; exit 2; }
[ -f "$truth" ] || { echo "tracr_sweep: no ground truth $truth" >&2; exit 2; }
work=${WORK:-$(mktemp -d)}
mkdir -p "$work"
data=$work/tracr-$task.h5
if [ ! -f "$data" ]; then
  "$bin" dataset --task "$task" --n 1000 --seed 1 --out "$data.tmp" >/dev/null
  "$bin" dataset --task "$task" --n 100 --seed 2 --split validation --out "$data.tmp" >/dev/null
  mv "$data.tmp" "$data"
fi
export OPENBLAS_NUM_THREADS=1
export bin deck data work truth
# the overrides go through a file so that values with spaces survive xargs
printf '%s\n' "${overrides[@]}" >"$work/overrides.$$"
results=$(printf '%s\n' $seeds | xargs -P "$jobs" -I{} bash -c '
  mapfile -t overrides <"'"$work/overrides.$$"'"
  args=(); for o in "${overrides[@]}"; do [ -n "$o" ] && args+=(-P "$o"); done
  s={} dir=$work/run-{}-$$
  if ! "$bin" prune "$deck" -P data.path="$data" -P prune.seed=$s -P run.out_dir="$dir" \
      -P run.log_every=100000 "${args[@]}" >"$dir.log" 2>&1; then
    echo "seed $s: prune failed ($dir.log)"; exit 0
  fi
  "$bin" circuit "$dir/circuit.h5" --format json --out "$dir/edges.json" >/dev/null 2>&1
  python3 '"$(cd "$(dirname "$0")" && pwd)"'/tracr_compare.py "$truth" "$dir/circuit.h5" "$dir/edges.json" $s
  rm -rf "$dir" "$dir.log"')
rm -f "$work/overrides.$$"
echo "$results" | sort -t' ' -k2,2n
n=$(echo "$results" | grep -c '^seed')
k=$(echo "$results" | grep -c ': exact$' || true)
miss=$(echo "$results" | awk '/: missing/{sub(":","",$2); printf "%s\n", $2}' | sort -n | tr '\n' ' ')
extra=$(echo "$results" | awk '/: extra/{sub(":","",$2); printf "%s\n", $2}' | sort -n | tr '\n' ' ')
stored=$(echo "$results" | awk '/: stored/{sub(":","",$2); printf "%s\n", $2}' | sort -n | tr '\n' ' ')
echo "rate $k/$n exact (missing: ${miss:-none}, extra: ${extra:-none}, stored only: ${stored:-none}) $*"
