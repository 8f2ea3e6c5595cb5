#!/bin/bash
# Checks the job scripts in jobs/ without running them:
#   1. bash -n (syntax), and shellcheck when installed;
#   2. every #SBATCH line is an option sbatch knows, written --name or --name=value;
#   3. when a Slurm controller answers (scontrol ping): sbatch --test-only on each script.
#      A script asking for more than the cluster has (nodes, cores) is tried again with
#      the resources scaled down to one task per node, which still parses every
#      directive; both outcomes are printed.
# Usage: jobs/check-sbatch.sh [SCRIPT.sbatch ...]   (default: jobs/*.sbatch)
# Not part of ctest: it needs nothing but bash, and Slurm only for step 3.
set -u
cd "$(dirname "$0")/.." || exit 2
scripts=("$@")
[ ${#scripts[@]} = 0 ] && scripts=(jobs/*.sbatch)
known=" account array begin chdir comment constraint cpus-per-task dependency error exclusive export"
known+=" gpus gpus-per-node gpus-per-task gres hint job-name mail-type mail-user mem mem-per-cpu nodes"
known+=" ntasks ntasks-per-node open-mode output partition qos requeue no-requeue signal time time-min"
known+=" wait-all-nodes distribution cpu-bind switches reservation nice tmp "
bad=0
for s in "${scripts[@]}"; do
  if ! bash -n "$s"; then
    echo "FAIL $s: bash syntax"
    bad=1
    continue
  fi
  if command -v shellcheck >/dev/null && ! shellcheck -S warning "$s"; then
    echo "FAIL $s: shellcheck"
    bad=1
  fi
  n=0
  before=$bad
  bad=0
  while IFS= read -r line; do
    n=$((n + 1))
    [[ $line == "#SBATCH"* ]] || continue
    opt=${line#\#SBATCH }
    if [[ ! $opt =~ ^--([a-z-]+)(=[^[:space:]]+)?$ ]]; then
      echo "FAIL $s:$n: '$line' is not '#SBATCH --name[=value]'"
      bad=1
    elif [[ $known != *" ${BASH_REMATCH[1]} "* ]]; then
      echo "FAIL $s:$n: unknown sbatch option --${BASH_REMATCH[1]}"
      bad=1
    fi
  done <"$s"
  [ $bad = 0 ] && echo "ok   $s: bash -n, shellcheck, #SBATCH lines"
  [ $before = 1 ] && bad=1
done
if command -v sbatch >/dev/null && scontrol ping >/dev/null 2>&1; then
  for s in "${scripts[@]}"; do
    if out=$(sbatch --test-only "$s" 2>&1); then
      echo "ok   $s: sbatch --test-only: ${out#sbatch: }"
    elif out2=$(sbatch --test-only --ntasks-per-node=1 --cpus-per-task=1 "$s" 2>&1); then
      echo "ok   $s: sbatch --test-only (scaled to 1 task/node, 1 core: ${out#sbatch: }): ${out2#sbatch: }"
    else
      echo "FAIL $s: sbatch --test-only: $out / $out2"
      bad=1
    fi
  done
else
  echo "note: no Slurm controller answers here: sbatch --test-only skipped"
fi
exit $bad
