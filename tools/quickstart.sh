#!/bin/sh
# quickstart.sh — install what the build needs, build edgeprune, and run the main job:
# Edge Pruning of the Tracr-compiled `reverse` program (shipped in inputs/tracr/) with
# 2 MPI ranks on the CPU. It prints the circuit found as an edge list and its metrics
# against the full model, and writes out/quickstart/{circuit.h5,edges.json,circuit.svg}.
#   Usage: bash tools/quickstart.sh [BUILD_DIR]
set -eu
cd "$(dirname "$0")/.."
build=${1:-build}
sh tools/install-deps.sh
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "$(nproc)" --target edgeprune
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
ep=$build/edgeprune
out=out/quickstart
rm -rf "$out"
mkdir -p "$out"

echo "== model: inputs/tracr/reverse -> $out/reverse.h5"
$ep convert --from inputs/tracr/reverse.config.json --to "$out/reverse.h5"
$ep graph --model "$out/reverse.h5" --embedding-nodes

echo "== data: every input of 3 tokens after BOS, in random order"
$ep dataset --task reverse --n 1000 --seed 1 --out "$out/reverse-data.h5" --split train
$ep dataset --task reverse --n 100 --seed 2 --out "$out/reverse-data.h5" --split validation

echo "== Edge Pruning with 2 MPI ranks (deck: inputs/decks/tracr-reverse.yml)"
mpirun -n 2 "$ep" prune inputs/decks/tracr-reverse.yml \
  -P model.path="$out/reverse.h5" -P data.path="$out/reverse-data.h5" -P run.out_dir="$out/run"
cp "$out/run/circuit.h5" "$out/circuit.h5"

echo "== the circuit"
$ep circuit "$out/circuit.h5" --format edges
$ep circuit "$out/circuit.h5" --format json --out "$out/edges.json"
if $ep circuit "$out/circuit.h5" --format svg --out "$out/circuit.svg" 2>/dev/null; then
  svg="$out/circuit.svg"
else
  $ep circuit "$out/circuit.h5" --format dot --out "$out/circuit.dot"
  svg="$out/circuit.dot (this build has no Graphviz: dot -Tsvg to render)"
fi

echo "== circuit against the full model on the validation split"
$ep eval inputs/decks/tracr-reverse.yml --circuit "$out/circuit.h5" \
  -P model.path="$out/reverse.h5" -P data.path="$out/reverse-data.h5" -P run.out_dir="$out/run"

echo
echo "wrote $out/circuit.h5, $out/edges.json, $svg"
