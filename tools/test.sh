#!/bin/sh
# test.sh — install what the build needs, build everything (warnings are errors) and
# run the whole test suite with ctest.   Usage: bash tools/test.sh [BUILD_DIR]
set -eu
cd "$(dirname "$0")/.."
build=${1:-build}
sh tools/install-deps.sh
cmake -S . -B "$build" -DEP_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$(nproc)"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
ctest --test-dir "$build" --output-on-failure -j "$(nproc)"
