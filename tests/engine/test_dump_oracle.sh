#!/usr/bin/env bash
# test_dump_oracle.sh EDGEPRUNE DUMP_FIXTURE ORACLE_PY — `edgeprune step-dump` against the
# independent PyTorch oracle (tools/oracle_masked.py --check-dump) on a random GPT-2-shaped
# model: interchange / mean / zero ablation, with and without node masks and embedding
# nodes, kl and kl_sum, fp64 (gradients within 1e-4 relative) and fp32 (within 2e-3).
# Skips (77) when no python3 with torch and h5py is available.
set -u
bin=$1 fixture=$2 oracle=$3
py=""
for cand in python3 /usr/bin/python3; do
  if command -v "$cand" >/dev/null 2>&1 && "$cand" -c "import torch, h5py" >/dev/null 2>&1; then py=$cand; break; fi
done
if [ -z "$py" ]; then echo "SKIP: no python3 with torch and h5py"; exit 77; fi
dir=$(mktemp -d /tmp/ep_dump_XXXXXX)
trap 'rm -rf "$dir"' EXIT
"$fixture" "$dir" || exit 1
cat > "$dir/d.yml" <<'DECK'
model:
  path: model.h5
data:
  path: data.h5
  val_split: ""
prune:
  batch_size: 6
  target_node_sparsity: 0.3
DECK
n=0
for args in "" "-P prune.ablation=mean" "-P prune.ablation=zero -P prune.embedding_nodes=false" \
            "-P prune.loss=kl_sum -P prune.node_masks=false"; do
  for prec in f64 f32; do
    n=$((n + 1))
    (cd "$dir" && "$bin" step-dump d.yml --out s$n.h5 --step 7 --init-mean 0.5 --init-std 1.5 --precision $prec $args \
       >/dev/null 2>&1) || { echo "FAIL: step-dump $prec $args"; exit 1; }
  done
done
# one interpreter for every dump (importing torch dominates the run time)
(cd "$dir" && "$py" "$oracle" --check-dump $(seq -f "s%g.h5" 1 $n) --rtol 1e-4 --rtol-f32 2e-3) || exit 1
echo "$n passed, 0 failed"
