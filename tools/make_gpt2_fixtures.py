#!/usr/bin/env python3
"""make_gpt2_fixtures.py — golden files for the forward-pass parity test (tests/forward).

Builds small randomly initialised Hugging Face models, saves each with save_pretrained
(config.json + safetensors) under OUT/<name>/, and writes OUT/<name>/expected.json with
input token sequences and the float32 logits transformers computes for them at every
position. The C test (tests/forward/test_parity_hf.c) loads each directory with
model_load, and the HDF5 file `edgeprune convert` makes from it, and compares.

Fixtures:
  gpt2-tiny          L=2 H=2 D=32 V=300 n_ctx=32, float32, one safetensors file
  gpt2-tiny-sharded  the same weights saved in several shards (model.safetensors.index.json)
  gpt2-wide-fp16     L=4 H=4 D=64 V=500 n_ctx=32 F=128, saved in float16; its logits come
                     from the float16-rounded weights, computed in float32
  gpt2-deep-1head    L=3 H=1 D=24 V=200 n_ctx=32, layer_norm_epsilon 1e-4
  llama-tiny         LlamaForCausalLM L=2 H=4 Hkv=2 D=48 F=64 V=256, untied head,
                     RMSNorm, RoPE, SwiGLU

Weights use an enlarged initializer_range (0.2) and every norm gain and bias is
perturbed away from its 1/0 initialisation, so logits are far from flat and a loader
that drops a bias or a gain fails the test. Everything runs on the CPU in float32 (TF32
disabled) so the numbers do not depend on the GPU.

Needs: torch, transformers, safetensors.   Usage: python3 tools/make_gpt2_fixtures.py [--out DIR]
"""
import argparse
import copy
import json
import os
import shutil
import sys

import torch
import transformers
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

MAX_FIXTURE_BYTES = 1 << 20


def perturb_(model, seed):
    """Move norm gains off 1 and biases off 0 (GPT-2 initialises them to exactly that)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            is_norm = ".ln_" in name or "ln_f" in name or "norm" in name
            if name.endswith(".bias"):
                p.add_(0.1 * torch.randn(p.shape, generator=g))
            elif is_norm and name.endswith(".weight"):
                p.add_(0.2 * torch.randn(p.shape, generator=g))


def make_sequences(vocab, n_ctx, lengths, seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, vocab, (n,), generator=g).tolist() for n in lengths]


@torch.no_grad()
def logits_of(model, seqs):
    """float32 logits [n, V] per sequence, each run alone (no padding, no attention mask)."""
    out = []
    for s in seqs:
        ids = torch.tensor([s], dtype=torch.long)
        out.append(model(input_ids=ids).logits[0].float())
    return out


def write_expected(path, name, dtype, model, seqs, logits):
    doc = {
        "name": name,
        "generator": "tools/make_gpt2_fixtures.py",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "weights_dtype": dtype,
        "vocab_size": int(model.config.vocab_size),
        "sequences": [
            {"tokens": s, "logits": [[float(f"{v:.8g}") for v in row] for row in lg.tolist()]}
            for s, lg in zip(seqs, logits)
        ],
    }
    with open(path, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")


def dir_bytes(d):
    return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))


def check_reload(cls, d, seqs, logits, tol):
    """The saved files must reproduce the logits we wrote (catches a save that dropped or
    re-tied a tensor, or an fp16 file whose rounding we did not account for)."""
    m = cls.from_pretrained(d).float().eval()
    again = logits_of(m, seqs)
    worst = max((a - b).abs().max().item() for a, b in zip(again, logits))
    if worst > tol:
        sys.exit(f"{d}: reloaded model differs from the expected logits by {worst:g}")
    return worst


def fixture(out, name, model, seqs, dtype="float32", shard=None):
    d = os.path.join(out, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    model = copy.deepcopy(model).eval()
    if dtype == "float16":
        model = model.half()
    kw = {"max_shard_size": shard} if shard else {}
    try:
        model.save_pretrained(d, safe_serialization=True, **kw)
    except TypeError:  # releases where safetensors is the only format drop the flag
        model.save_pretrained(d, **kw)
    if shard and not os.path.exists(os.path.join(d, "model.safetensors.index.json")):
        sys.exit(f"{d}: max_shard_size={shard} did not produce a sharded checkpoint")
    if not any(f.endswith(".safetensors") for f in os.listdir(d)):
        sys.exit(f"{d}: save_pretrained wrote no safetensors file")
    model = model.float()  # float16 weights, rounded, now computed in float32
    logits = logits_of(model, seqs)
    write_expected(os.path.join(d, "expected.json"), name, dtype, model, seqs, logits)
    worst = check_reload(type(model), d, seqs, logits, 1e-5)
    size = dir_bytes(d)
    if size > MAX_FIXTURE_BYTES:
        sys.exit(f"{d}: {size} bytes, over the {MAX_FIXTURE_BYTES}-byte budget")
    files = sorted(os.listdir(d))
    scale = max(lg.abs().max().item() for lg in logits)
    print(f"{name}: {len(seqs)} sequences, max|logit| {scale:.3f}, reload diff {worst:.2g}, "
          f"{size} bytes, files {files}")


def gpt2(vocab, n_ctx, d, n_layer, n_head, n_inner=None, eps=1e-5, seed=0):
    cfg = GPT2Config(vocab_size=vocab, n_positions=n_ctx, n_embd=d, n_layer=n_layer,
                     n_head=n_head, n_inner=n_inner, activation_function="gelu_new",
                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, layer_norm_epsilon=eps,
                     initializer_range=0.2, bos_token_id=0, eos_token_id=0)
    torch.manual_seed(seed)
    m = GPT2LMHeadModel(cfg).eval()
    perturb_(m, seed + 1)
    return m


def llama(seed=0):
    cfg = LlamaConfig(vocab_size=256, hidden_size=48, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                      rms_norm_eps=1e-6, hidden_act="silu", tie_word_embeddings=False,
                      attention_bias=False, initializer_range=0.2, bos_token_id=1,
                      eos_token_id=2, attention_dropout=0.0)
    torch.manual_seed(seed)
    m = LlamaForCausalLM(cfg).eval()
    perturb_(m, seed + 1)
    return m


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="tests/data", help="output directory (default tests/data)")
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_grad_enabled(False)
    os.makedirs(args.out, exist_ok=True)

    tiny = gpt2(300, 32, 32, 2, 2, seed=10)
    seqs = make_sequences(300, 32, [1, 5, 13, 32], seed=11)
    fixture(args.out, "gpt2-tiny", tiny, seqs)
    fixture(args.out, "gpt2-tiny-sharded", tiny, seqs, shard="40KB")

    wide = gpt2(500, 32, 64, 4, 4, n_inner=128, seed=20)
    fixture(args.out, "gpt2-wide-fp16", wide, make_sequences(500, 32, [1, 9, 32], seed=21),
            dtype="float16")

    deep = gpt2(200, 32, 24, 3, 1, eps=1e-4, seed=30)
    fixture(args.out, "gpt2-deep-1head", deep, make_sequences(200, 32, [1, 4, 17, 32], seed=31))

    fixture(args.out, "llama-tiny", llama(seed=40), make_sequences(256, 64, [1, 6, 20, 48], seed=41))


if __name__ == "__main__":
    main()
