#!/usr/bin/env python3
"""Tiny GPT-2 checkpoints written by Hugging Face transformers itself, and the weights
edgeprune must load from them (tests/modelio/test_hf_golden.c checks both).

usage: python3 tools/make_hf_gpt2_fixture.py OUT_DIR      (normally tests/data/hf-gpt2-tiny)

Writes OUT_DIR/<variant>/ as GPT2LMHeadModel.save_pretrained(safe_serialization=True):
  f32       float32, tied embeddings
  f16       the same model in float16
  bf16      the same model in bfloat16
  sharded   float32, split into several shards with model.safetensors.index.json
  untied    float32, tie_word_embeddings=false (lm_head.weight saved), n_inner 40,
            activation gelu_pytorch_tanh, layer_norm_epsilon 1e-6
and OUT_DIR/expected.h5: one group per variant holding every tensor under edgeprune's
model-file names ("wte", "h.0.w_q", ..., "unembed" when untied) in the x @ W
orientation, as float32 (half-precision values widened exactly), with attributes
n_layer, d_mlp, tied_unembed, norm_eps. Needs torch, transformers, safetensors, h5py.
"""
import os
import sys

import h5py
import numpy as np
import torch
from transformers import GPT2Config, GPT2LMHeadModel

L, H, D, V, C = 2, 2, 16, 50, 12


def make_model(seed, **kw):
    torch.manual_seed(seed)
    cfg = GPT2Config(n_layer=L, n_head=H, n_embd=D, vocab_size=V, n_positions=C, **kw)
    model = GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():  # every parameter random, so LayerNorm gains/biases are not 1/0
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.2)
    return model


def ours(model):
    """The model's weights under edgeprune's names, float32, x @ W orientation."""
    sd = {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items()}
    t = lambda n: sd["transformer." + n]
    cfg = model.config
    out = {"wte": t("wte.weight"), "wpe": t("wpe.weight")}
    for l in range(cfg.n_layer):
        p = f"h.{l}."
        qkv, qkvb = t(p + "attn.c_attn.weight"), t(p + "attn.c_attn.bias")  # Conv1D: [D, 3D]
        out.update({
            p + "ln1_w": t(p + "ln_1.weight"), p + "ln1_b": t(p + "ln_1.bias"),
            p + "w_q": qkv[:, :D], p + "w_k": qkv[:, D:2 * D], p + "w_v": qkv[:, 2 * D:],
            p + "w_o": t(p + "attn.c_proj.weight"),
            p + "b_q": qkvb[:D], p + "b_k": qkvb[D:2 * D], p + "b_v": qkvb[2 * D:],
            p + "b_o": t(p + "attn.c_proj.bias"),
            p + "ln2_w": t(p + "ln_2.weight"), p + "ln2_b": t(p + "ln_2.bias"),
            p + "w_fc": t(p + "mlp.c_fc.weight"), p + "w_proj": t(p + "mlp.c_proj.weight"),
            p + "b_fc": t(p + "mlp.c_fc.bias"), p + "b_proj": t(p + "mlp.c_proj.bias"),
        })
    out["lnf_w"], out["lnf_b"] = t("ln_f.weight"), t("ln_f.bias")
    if not cfg.tie_word_embeddings:
        out["unembed"] = sd["lm_head.weight"]
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    root = sys.argv[1]
    os.makedirs(root, exist_ok=True)
    base = make_model(1)
    untied = make_model(2, tie_word_embeddings=False, n_inner=40,
                        activation_function="gelu_pytorch_tanh", layer_norm_epsilon=1e-6)
    variants = {
        "f32": (base, {}),
        "f16": (make_model(1).half(), {}),
        "bf16": (make_model(1).to(torch.bfloat16), {}),
        "sharded": (base, {"max_shard_size": "10KB"}),
        "untied": (untied, {}),
    }
    with h5py.File(os.path.join(root, "expected.h5"), "w") as f:
        import transformers
        f.attrs["transformers_version"] = str(transformers.__version__)
        f.attrs["torch_version"] = str(torch.__version__)
        for name, (model, save_kw) in variants.items():
            out = os.path.join(root, name)
            try:
                model.save_pretrained(out, safe_serialization=True, **save_kw)
            except TypeError:  # releases where safetensors is the only format drop the flag
                model.save_pretrained(out, **save_kw)
            if not any(n.endswith(".safetensors") for n in os.listdir(out)):
                sys.exit(f"{out}: save_pretrained wrote no safetensors file")
            if save_kw and not os.path.exists(os.path.join(out, "model.safetensors.index.json")):
                sys.exit(f"{out}: max_shard_size did not produce a sharded checkpoint")
            g = f.create_group(name)
            for k, v in ours(model).items():
                g.create_dataset(k, data=np.ascontiguousarray(v, dtype=np.float32))
            cfg = model.config
            g.attrs["n_layer"] = cfg.n_layer
            g.attrs["d_mlp"] = cfg.n_inner or 4 * cfg.n_embd
            g.attrs["tied_unembed"] = int(cfg.tie_word_embeddings)
            g.attrs["norm_eps"] = float(np.float32(cfg.layer_norm_epsilon))
    shards = [n for n in os.listdir(os.path.join(root, "sharded")) if n.endswith(".safetensors")]
    print(f"wrote {root}: {', '.join(variants)}; sharded into {len(shards)} files")


if __name__ == "__main__":
    main()
