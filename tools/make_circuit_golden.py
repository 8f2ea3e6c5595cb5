#!/usr/bin/env python3
"""make_circuit_golden.py — golden files for circuit-extraction parity (tests/circuit).

Re-implements, in PyTorch and in the parameter layout of the reference Edge Pruning
code (princeton-nlp/Edge-Pruning, modeling_fpt2.py + l0.py), how a circuit is read off
trained masks, and records inputs and results for the C test
tests/circuit/test_reference_parity.c:

  * per layer the reference keeps q, k, v read arrays [n_writers, n_head], an MLP read
    array [n_writers], and the model a final read array [n_writers]; the rows a reader
    cannot read (writers at or after its layer) are padding that never receives a
    gradient and keeps its N(10, 0.01) initialisation;
  * node masks: tok and pos embeddings [1] each (with embedding nodes), per layer the
    heads [n_head] and the MLP [1];
  * deterministic mask of an array: soft = sigmoid(log_alpha / beta * 0.8); the
    round(sum(P(z=0))) smallest entries of the array are set to 0 (torch.topk), with
    P(z=0) = clamp(sigmoid(beta * log(0.1/1.1) - log_alpha), 1e-6, 1-1e-6), all in
    float32 as the reference computes it;
  * sparsity = 1 - mean over the real edges (padding rows sliced off); the default
    requested sparsity is that of the deterministic masks; a threshold in [0, 1] is
    found by bisection to 1e-5 and the last midpoint kept; masks become value > t;
  * the circuit lists, per layer, for each allowed writer row the q edges over heads,
    then k, then v; then the MLP reader's rows; then resid_post; a writer is allowed
    when its node mask is 1.

The random masks are drawn so that no mask group's expected zero count sits within 0.01
of a rounding boundary (with or without the padding rows), so float32 sums and float64
sums round alike. Output: OUT/reference_<name>.h5 with
  attributes n_layer, n_head, embedding_nodes
  /edges/log_alpha, /edges/value     [n_edges] float32 in edgeprune's edge order
                                     (readers: per layer a{l}.h{i}.q/k/v head-major, m{l};
                                     resid_post; edge = reader offset + writer index)
  /nodes/log_alpha, /nodes/value     [n_writers] float32 in writer order
  /cases/<case>/writer, /reader      kept edges in the reference's order (strings)
  /cases/<case> attributes           requested_edge_sparsity, requested_node_sparsity,
                                     edge_threshold, node_threshold, achieved sparsities

Needs: torch, h5py, numpy (CPU only).   Usage: python3 tools/make_circuit_golden.py [--out DIR]
"""
import argparse
import math
import os

import h5py
import numpy as np
import torch

L_LEFT, R_RIGHT, EPS, BETA, FACTOR = -0.1, 1.1, 1e-6, 2.0 / 3.0, 0.8


def prob_zero(la):
    q = BETA * math.log((0.0 - L_LEFT) / (R_RIGHT - 0.0))
    return torch.clamp(torch.sigmoid(q - la), EPS, 1.0 - EPS)


def deterministic(la):
    """Soft mask of one parameter array with its round(sum P0) smallest entries zeroed."""
    flat = la.reshape(-1)
    n_zero = int(torch.round(torch.sum(prob_zero(flat))).item())
    soft = torch.sigmoid(flat / BETA * FACTOR)
    if n_zero > 0:
        idx = torch.topk(soft, k=n_zero, largest=False).indices
        soft = soft.clone()
        soft[idx] = 0.0
    return soft.reshape(la.shape)


class RefMasks:
    """Mask parameters in the reference layout for GPT-2-shaped L, H."""

    def __init__(self, L, H, emb, gen, edge_mix, node_off):
        self.L, self.H, self.emb = L, H, emb
        self.E = 2 if emb else 0
        self.W = self.E + L * (H + 1)
        def edges(shape):
            on = torch.rand(shape, generator=gen) < edge_mix
            hi = 3.0 + torch.randn(shape, generator=gen)
            lo = -3.0 + 1.5 * torch.randn(shape, generator=gen)
            return torch.where(on, hi, lo).float()
        def pad(shape):
            return (10.0 + 0.01 * torch.randn(shape, generator=gen)).float()
        self.q, self.k, self.v, self.mlp = [], [], [], []
        for l in range(L):
            a_off = self.E + l * (H + 1)  # rows q/k/v can read
            m_off = a_off + H             # rows the MLP can read
            arrs = []
            for _ in range(3):
                a = pad((self.W, H))
                a[:a_off] = edges((a_off, H))
                arrs.append(a)
            self.q.append(arrs[0]); self.k.append(arrs[1]); self.v.append(arrs[2])
            m = pad((self.W,))
            m[:m_off] = edges((m_off,))
            self.mlp.append(m)
        self.final = edges((self.W,))
        def nodes(n):
            off = torch.rand(n, generator=gen) < node_off
            return torch.where(off, -5.0 + 0.5 * torch.randn(n, generator=gen),
                               5.0 + 0.5 * torch.randn(n, generator=gen)).float()
        self.tok = nodes(1) if emb else None
        self.pos = nodes(1) if emb else None
        self.attn_w = [nodes(H) for _ in range(L)]
        self.mlp_w = [nodes(1) for _ in range(L)]

    # --- group checks -----------------------------------------------------------------
    def groups(self):
        """(full array, real part) of every edge and node mask array."""
        out = []
        for l in range(self.L):
            a_off = self.E + l * (self.H + 1)
            for a in (self.q[l], self.k[l], self.v[l]):
                out.append((a, a[:a_off]))
            out.append((self.mlp[l], self.mlp[l][:a_off + self.H]))
        out.append((self.final, self.final))
        for arr in self.node_arrays():
            out.append((arr, arr))
        return out

    def node_arrays(self):
        arrs = [self.tok, self.pos] if self.emb else []
        for l in range(self.L):
            arrs += [self.attn_w[l], self.mlp_w[l]]
        return arrs

    def safe(self):
        for full, real in self.groups():
            for part in (full, real):
                s = torch.sum(prob_zero(part.double())).item()
                if abs(s - math.floor(s) - 0.5) < 0.01:
                    return False
        return True

    # --- reference evaluation --------------------------------------------------------
    def edge_masks(self, t):
        """Real-edge slices of every edge mask, thresholded when t is not None."""
        def m(a):
            d = deterministic(a)
            return d if t is None else (d > t).float()
        out = []
        for l in range(self.L):
            a_off = self.E + l * (self.H + 1)
            out.append((m(self.q[l])[:a_off], m(self.k[l])[:a_off], m(self.v[l])[:a_off],
                        m(self.mlp[l])[:a_off + self.H]))
        return out, m(self.final)

    def node_masks(self, t):
        def m(a):
            d = deterministic(a)
            return d if t is None else (d > t).float()
        return [m(a) for a in self.node_arrays()]

    def edge_sparsity(self, t):
        per_layer, final = self.edge_masks(t)
        s = n = 0
        for group in per_layer:
            for x in group:
                s += torch.sum(x); n += x.numel()
        s += torch.sum(final); n += final.numel()
        return (1.0 - s / n).item()  # float32, as the reference's tensors

    def node_sparsity(self, t):
        ms = self.node_masks(t)
        s = sum(torch.sum(x) for x in ms); n = sum(x.numel() for x in ms)
        return (1.0 - s / n).item()

    @staticmethod
    def bisect(fn, target):
        lo, hi = 0.0, 1.0
        t = 0.5
        while hi - lo > 1e-5:
            t = (lo + hi) / 2
            if fn(t) > target:
                hi = t
            else:
                lo = t
        return t

    def writer_name(self, w):
        if self.emb:
            if w == 0:
                return "tok_embeds"
            if w == 1:
                return "pos_embeds"
        w -= self.E
        l, i = divmod(w, self.H + 1)
        return f"m{l}" if i == self.H else f"a{l}.h{i}"

    def circuit(self, edge_t, node_t):
        per_layer, final = self.edge_masks(edge_t)
        nodes = torch.cat([x.reshape(-1) for x in self.node_masks(node_t)])
        allowed = [w for w in range(self.W) if nodes[w] == 1]
        pairs = []
        for l in range(self.L):
            zq, zk, zv, zm = per_layer[l]
            for w in range(zq.shape[0]):
                if w not in allowed:
                    continue
                for kind, z in (("q", zq), ("k", zk), ("v", zv)):
                    for h in range(self.H):
                        if z[w, h] == 1:
                            pairs.append((self.writer_name(w), f"a{l}.h{h}.{kind}"))
            for w in range(zm.shape[0]):
                if w in allowed and zm[w] == 1:
                    pairs.append((self.writer_name(w), f"m{l}"))
        for w in range(self.W):
            if w in allowed and final[w] == 1:
                pairs.append((self.writer_name(w), "resid_post"))
        return pairs

    # --- edgeprune's order ----------------------------------------------------------
    def to_edgeprune(self, arrays_q, arrays_k, arrays_v, arrays_m, final):
        """Flatten per-layer arrays into edgeprune's edge order."""
        out = []
        for l in range(self.L):
            a_off = self.E + l * (self.H + 1)
            for h in range(self.H):
                for a in (arrays_q[l], arrays_k[l], arrays_v[l]):
                    out.append(a[:a_off, h])
            out.append(arrays_m[l][:a_off + self.H])
        out.append(final)
        return torch.cat(out).float().numpy()


def make(out_dir, name, L, H, emb, seed, cases):
    gen = torch.Generator().manual_seed(seed)
    while True:
        m = RefMasks(L, H, emb, gen, edge_mix=0.04, node_off=0.12 if emb else 0.0)
        if m.safe():
            break
    det_q = [deterministic(a) for a in m.q]
    det_k = [deterministic(a) for a in m.k]
    det_v = [deterministic(a) for a in m.v]
    det_m = [deterministic(a) for a in m.mlp]
    edge_la = m.to_edgeprune(m.q, m.k, m.v, m.mlp, m.final)
    edge_val = m.to_edgeprune(det_q, det_k, det_v, det_m, deterministic(m.final))
    node_la = torch.cat([a.reshape(-1) for a in m.node_arrays()]).numpy()
    node_val = torch.cat([deterministic(a).reshape(-1) for a in m.node_arrays()]).numpy()
    assert node_la.shape[0] == m.W

    path = os.path.join(out_dir, f"reference_{name}.h5")
    with h5py.File(path, "w") as f:
        f.attrs["n_layer"] = L
        f.attrs["n_head"] = H
        f.attrs["embedding_nodes"] = int(emb)
        f.attrs["generator"] = "tools/make_circuit_golden.py"
        f["edges/log_alpha"] = edge_la.astype(np.float32)
        f["edges/value"] = edge_val.astype(np.float32)
        f["nodes/log_alpha"] = node_la.astype(np.float32)
        f["nodes/value"] = node_val.astype(np.float32)
        strs = h5py.string_dtype("utf-8")
        for case, edge_target in cases:
            es = m.edge_sparsity(None) if edge_target is None else edge_target
            ns = m.node_sparsity(None)
            et = RefMasks.bisect(m.edge_sparsity, es)
            nt = RefMasks.bisect(m.node_sparsity, ns)
            pairs = m.circuit(et, nt)
            g = f.create_group(f"cases/{case}")
            g.attrs["requested_edge_sparsity"] = es
            g.attrs["requested_node_sparsity"] = ns
            g.attrs["edge_threshold"] = et
            g.attrs["node_threshold"] = nt
            g.attrs["n_kept"] = len(pairs)
            g.create_dataset("writer", data=[p[0] for p in pairs], dtype=strs)
            g.create_dataset("reader", data=[p[1] for p in pairs], dtype=strs)
            print(f"{path} [{case}]: {len(pairs)} edges, edge sparsity request {es:.6f}, "
                  f"thresholds {et:.6f} / {nt:.6f}")
    assert os.path.getsize(path) < (1 << 20)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "data", "circuit"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)
    cases = [("default", None), ("edge0.99", 0.99), ("edge0.995", 0.995)]
    make(args.out, "gpt2_emb", 12, 12, True, 1234, cases)
    make(args.out, "small_noemb", 3, 4, False, 99, cases[:2])


if __name__ == "__main__":
    main()
