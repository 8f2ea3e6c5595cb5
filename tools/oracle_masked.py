#!/usr/bin/env python3
"""Independent PyTorch oracle for the Edge Pruning masked forward, loss and gradients.

Written from DESIGN.md section 1 only, in the plainest form: two explicit stacks (the
masked run's writer outputs x_w and the ablation values c_w), every reader input built as
sum_w z_rw * x_w + (1 - z_rw) * c_w, gradients by autograd in float64.

For each case it writes tests/data/oracle/<case>.h5 (h5py) with
  attributes  config (n_layer, n_head, d_model, d_head, d_mlp, vocab, vocab_out, n_ctx,
              norm_eps, causal), embedding_nodes, node_masks, node_loss, ablation, loss,
              t_edge, t_node, n_edges, n_writers
  /weights/<name>   float32, the names and [x @ W] shapes of model_tensor_list (GPT-2 layout)
  clean, corrupted [B, T], length, loss_start, loss_end [B]   int32
  log_alpha_edge [E], u_edge [E], log_alpha_node [W], u_node [W] (node masks only)
  lambdas [4]       edge lambda1, lambda2, node lambda1, lambda2
  writer_names, reader_names   (strings, graph order)
  expect/faith, expect/reg_edge, expect/reg_node, expect/total      scalars
  expect/z_edge [E], expect/z_node [W]
  expect/grad_edge [E], expect/grad_node [W], expect/grad_lambda [4]   d(total)/d(.)

Mean ablation: c_w at position t is the mean over the batch's examples with length > t
of the writer output of the plain model on the corrupted input (the data given).

Usage: python3 tools/oracle_masked.py [--out tests/data/oracle]
       python3 tools/oracle_masked.py --check-dump STEP.h5 [--model MODEL.h5] [--data DATA.h5]
The second form redoes one step written by `edgeprune step-dump` (GPT-2 model files,
kl / kl_sum) from the dump's log_alpha, u and lambdas and compares every gradient.
"""
import argparse
import math
import os

import h5py
import numpy as np
import torch

torch.set_default_dtype(torch.float64)

HC_L, HC_R, HC_BETA = -0.1, 1.1, 2.0 / 3.0


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w + b


class Model:
    """Random GPT-2-shaped weights, named as the C model's tensor list."""

    def __init__(self, L, H, D, V, T_ctx, seed):
        g = np.random.default_rng(seed)
        self.L, self.H, self.D, self.dh, self.F, self.V, self.n_ctx = L, H, D, D // H, 2 * D, V, T_ctx
        self.eps = 1e-5
        w = {}

        def rnd(*shape, std=0.3):
            return g.normal(0.0, std, size=shape).astype(np.float32)

        w["wte"] = rnd(V, D)
        w["wpe"] = rnd(T_ctx, D)
        for l in range(L):
            w[f"h.{l}.ln1_w"] = (1.0 + rnd(D, std=0.1)).astype(np.float32)
            w[f"h.{l}.ln1_b"] = rnd(D, std=0.1)
            w[f"h.{l}.w_q"] = rnd(D, D)
            w[f"h.{l}.w_k"] = rnd(D, D)
            w[f"h.{l}.w_v"] = rnd(D, D)
            w[f"h.{l}.w_o"] = rnd(D, D)
            w[f"h.{l}.b_q"] = rnd(D, std=0.1)
            w[f"h.{l}.b_k"] = rnd(D, std=0.1)
            w[f"h.{l}.b_v"] = rnd(D, std=0.1)
            w[f"h.{l}.b_o"] = rnd(D, std=0.1)
            w[f"h.{l}.ln2_w"] = (1.0 + rnd(D, std=0.1)).astype(np.float32)
            w[f"h.{l}.ln2_b"] = rnd(D, std=0.1)
            w[f"h.{l}.w_fc"] = rnd(D, self.F)
            w[f"h.{l}.b_fc"] = rnd(self.F, std=0.1)
            w[f"h.{l}.w_proj"] = rnd(self.F, D)
            w[f"h.{l}.b_proj"] = rnd(D, std=0.1)
        w["lnf_w"] = (1.0 + rnd(D, std=0.1)).astype(np.float32)
        w["lnf_b"] = rnd(D, std=0.1)
        self.np_weights = w
        # computations in float64 from the float32 values stored in the file
        self.w = {k: torch.tensor(v.astype(np.float64)) for k, v in w.items()}


class FileModel(Model):
    """Weights of an edgeprune model file (GPT-2 layout only), in float64."""

    def __init__(self, path):
        with h5py.File(path, "r") as f:
            a = f.attrs

            def txt(k):
                v = a[k]
                return v.decode() if isinstance(v, bytes) else str(v)

            if txt("norm") != "layernorm" or txt("act") != "gelu_tanh" or txt("pos") != "learned":
                raise SystemExit(f"{path}: the oracle covers GPT-2 models (LayerNorm, GELU, learned positions)")
            if int(a["n_kv_head"]) != int(a["n_head"]) or not int(a["attn_bias"]) or not int(a["mlp_bias"]):
                raise SystemExit(f"{path}: the oracle needs full attention heads and biases")
            self.L, self.H, self.D = int(a["n_layer"]), int(a["n_head"]), int(a["d_model"])
            self.dh, self.F, self.V = int(a["d_head"]), int(a["d_mlp"]), int(a["vocab"])
            self.n_ctx, self.eps = int(a["n_ctx"]), float(a["norm_eps"])
            if self.dh * self.H != self.D or not int(a["causal"]) or not int(a["final_norm"]):
                raise SystemExit(f"{path}: the oracle needs H * d_head == d_model, causal attention, a final norm")
            self.w = {k: torch.tensor(f[k][:].astype(np.float64)) for k in f.keys() if isinstance(f[k], h5py.Dataset)}
            if "unembed" not in self.w:
                self.w["unembed"] = self.w["wte"]


def graph(L, H, emb):
    """Writers and readers in the order of DESIGN section 1; edges (reader, writer) pairs."""
    writers = (["tok_embeds", "pos_embeds"] if emb else [])
    readers = []  # (name, n_in)
    for l in range(L):
        for h in range(H):
            for k in "qkv":
                readers.append((f"a{l}.h{h}.{k}", len(writers)))
        writers += [f"a{l}.h{h}" for h in range(H)]
        readers.append((f"m{l}", len(writers)))
        writers.append(f"m{l}")
    readers.append(("resid_post", len(writers)))
    edges = []
    for r, (_, n_in) in enumerate(readers):
        for w in range(n_in):
            edges.append((r, w))
    return writers, readers, edges


def attention(m, l, h, xq, xk, xv, lengths):
    """One head: normed inputs [B, T, D] -> head writer output [B, T, D]."""
    w, dh = m.w, m.dh
    sl = slice(h * dh, (h + 1) * dh)
    q = xq @ w[f"h.{l}.w_q"][:, sl] + w[f"h.{l}.b_q"][sl]
    k = xk @ w[f"h.{l}.w_k"][:, sl] + w[f"h.{l}.b_k"][sl]
    v = xv @ w[f"h.{l}.w_v"][:, sl] + w[f"h.{l}.b_v"][sl]
    B, T, _ = q.shape
    s = q @ k.transpose(1, 2) / math.sqrt(dh)
    i = torch.arange(T).view(T, 1)
    j = torch.arange(T).view(1, T)
    mask = (j <= i).unsqueeze(0) & (j.unsqueeze(0) < lengths.view(B, 1, 1))
    s = s.masked_fill(~mask, float("-inf"))
    p = torch.softmax(s, dim=-1)
    o = p @ v
    return o @ w[f"h.{l}.w_o"][sl, :] + w[f"h.{l}.b_o"] / m.H


def mlp(m, l, x):
    w = m.w
    h = layer_norm(x, w[f"h.{l}.ln2_w"], w[f"h.{l}.ln2_b"], m.eps)
    return gelu_tanh(h @ w[f"h.{l}.w_fc"] + w[f"h.{l}.b_fc"]) @ w[f"h.{l}.w_proj"] + w[f"h.{l}.b_proj"]


def embeddings(m, tokens):
    T = tokens.shape[1]
    return m.w["wte"][tokens], m.w["wpe"][:T].unsqueeze(0).expand(tokens.shape[0], T, m.D)


def plain_writer_outputs(m, tokens, lengths, emb):
    """Unmasked model: list of every writer's output [B, T, D] in graph order."""
    tok, pos = embeddings(m, tokens)
    resid = tok + pos
    outs = [tok, pos] if emb else []
    for l in range(m.L):
        xn = layer_norm(resid, m.w[f"h.{l}.ln1_w"], m.w[f"h.{l}.ln1_b"], m.eps)
        heads = [attention(m, l, h, xn, xn, xn, lengths) for h in range(m.H)]
        outs += heads
        resid = resid + sum(heads)
        mo = mlp(m, l, resid)
        outs.append(mo)
        resid = resid + mo
    return outs, resid


def logits_at(m, resid_rows):
    x = layer_norm(resid_rows, m.w["lnf_w"], m.w["lnf_b"], m.eps)
    return x @ m.w.get("unembed", m.w["wte"]).T


def hard_concrete(log_alpha, u):
    s = torch.sigmoid((torch.log(u) - torch.log(1 - u) + log_alpha) / HC_BETA)
    return torch.clamp(s * (HC_R - HC_L) + HC_L, 0.0, 1.0)


def oracle_step(m, emb, node_masks, ablation, loss, clean, corrupted, lengths, loss_start, loss_end, la_edge, u_edge,
                la_node, u_node, lambdas, t_edge, t_node, node_loss, mean_tokens=None, mean_lengths=None):
    """One step: loss terms and gradients (autograd, float64). Mean ablation averages the
    corrupted run over (mean_tokens, mean_lengths), by default the batch itself."""
    writers, readers, edges = graph(m.L, m.H, emb)
    W, E = len(writers), len(edges)
    B, T = clean.shape
    D = m.D
    tl = torch.tensor(lengths.astype(np.int64))
    clean_t = torch.tensor(clean.astype(np.int64))
    corr_t = torch.tensor(corrupted.astype(np.int64))

    # full model on the clean input: the KL reference at the loss positions
    _, resid_full = plain_writer_outputs(m, clean_t, tl, emb)
    # ablation values c_w
    if ablation == "interchange":
        c = [t.detach() for t in plain_writer_outputs(m, corr_t, tl, emb)[0]]
    elif ablation == "zero":
        c = [torch.zeros(B, T, D) for _ in range(W)]
    else:
        mt = corr_t if mean_tokens is None else torch.tensor(mean_tokens.astype(np.int64))
        ml = tl if mean_lengths is None else torch.tensor(mean_lengths.astype(np.int64))
        Bm, Tm = mt.shape
        outs = plain_writer_outputs(m, mt, ml, emb)[0]
        valid = (torch.arange(Tm).view(1, Tm) < ml.view(Bm, 1)).double().unsqueeze(-1)  # [Bm, Tm, 1]
        cnt = valid.sum(0)  # [Tm, 1]
        c = [((o * valid).sum(0) / cnt.clamp(min=1))[:T].unsqueeze(0).expand(B, T, D).clone() for o in outs]

    la_e = torch.tensor(la_edge, requires_grad=True)
    la_n = torch.tensor(la_node, requires_grad=True)
    lam = torch.tensor(lambdas, requires_grad=True)
    z_e = hard_concrete(la_e, torch.tensor(u_edge))
    z_n = hard_concrete(la_n, torch.tensor(u_node))
    edge_index = {}
    for i, (r, w) in enumerate(edges):
        edge_index[(r, w)] = i

    tok, pos = embeddings(m, clean_t)
    x = []  # masked run writer outputs (after node masks), graph order

    def add_writer(out):
        widx = len(x)
        if node_masks:
            out = z_n[widx] * out + (1 - z_n[widx]) * c[widx]
        x.append(out)

    def reader_input(r):
        n_in = readers[r][1]
        total = torch.zeros(B, T, D) if emb else (tok + pos)
        for w in range(n_in):
            z = z_e[edge_index[(r, w)]]
            total = total + z * x[w] + (1 - z) * c[w]
        return total

    if emb:
        add_writer(tok)
        add_writer(pos)
    r = 0
    for l in range(m.L):
        ln_w, ln_b = m.w[f"h.{l}.ln1_w"], m.w[f"h.{l}.ln1_b"]
        heads = []
        for h in range(m.H):
            xq = layer_norm(reader_input(r), ln_w, ln_b, m.eps)
            xk = layer_norm(reader_input(r + 1), ln_w, ln_b, m.eps)
            xv = layer_norm(reader_input(r + 2), ln_w, ln_b, m.eps)
            r += 3
            heads.append(attention(m, l, h, xq, xk, xv, tl))
        for hout in heads:
            add_writer(hout)
        add_writer(mlp(m, l, reader_input(r)))
        r += 1
    final = reader_input(r)

    faith = torch.zeros(())
    for b in range(B):
        n = int(loss_end[b] - loss_start[b])
        for t in range(int(loss_start[b]), int(loss_end[b])):
            lp = torch.log_softmax(logits_at(m, resid_full[b, t]), -1)
            lq = torch.log_softmax(logits_at(m, final[b, t]), -1)
            faith = faith + (lp.exp() * (lp - lq)).sum() / (n if loss == "kl" else 1)
    faith = faith / B
    s_e = 1 - z_e.sum() / E
    reg_e = lam[0] * (s_e - t_edge) + lam[1] * (s_e - t_edge) ** 2
    if node_masks and node_loss:
        s_n = 1 - z_n.sum() / W
        reg_n = lam[2] * (s_n - t_node) + lam[3] * (s_n - t_node) ** 2
    else:
        reg_n = torch.zeros(())
    total = faith + reg_e + reg_n
    total.backward()

    return dict(faith=faith.item(), reg_edge=reg_e.item(), reg_node=reg_n.item(), total=total.item(), z_edge=z_e,
                z_node=z_n, la_e=la_e, la_n=la_n, lam=lam)


def run_case(name, out_dir, L, H, D, V, T, B, ablation, node_masks, emb, seed):
    rng = np.random.default_rng(seed + 1000)
    m = Model(L, H, D, V, 16, seed)
    writers, readers, edges = graph(L, H, emb)
    W, E = len(writers), len(edges)
    lengths = np.array([T - (b % 2) for b in range(B)], dtype=np.int32)
    clean = rng.integers(0, V, size=(B, T)).astype(np.int32)
    corrupted = rng.integers(0, V, size=(B, T)).astype(np.int32)
    corrupted[:, 0] = clean[:, 0]
    loss_end = lengths.copy()
    loss_start = (lengths - 2).astype(np.int32)
    la_edge = rng.normal(0.5, 1.5, size=E)
    u_edge = rng.uniform(1e-6, 1 - 1e-6, size=E)
    la_node = rng.normal(0.5, 1.5, size=W)
    u_node = rng.uniform(1e-6, 1 - 1e-6, size=W)
    lambdas = np.array([0.5, 0.3, 0.4, 0.2])
    t_edge, t_node = 0.5, 0.3

    r = oracle_step(m, emb, node_masks, ablation, "kl", clean, corrupted, lengths, loss_start, loss_end, la_edge,
                    u_edge, la_node, u_node, lambdas, t_edge, t_node, True)
    faith, reg_e, reg_n, total = r["faith"], r["reg_edge"], r["reg_node"], r["total"]
    z_e, z_n, la_e, la_n, lam = r["z_edge"], r["z_node"], r["la_e"], r["la_n"], r["lam"]
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, name + ".h5")
    with h5py.File(path, "w") as f:
        a = f.attrs
        for k, v in dict(n_layer=L, n_head=H, d_model=D, d_head=D // H, d_mlp=2 * D, vocab=V, vocab_out=V,
                         n_ctx=16, causal=1, embedding_nodes=int(emb), node_masks=int(node_masks), node_loss=1,
                         n_edges=E, n_writers=W).items():
            a[k] = np.int64(v)
        a["norm_eps"] = np.float64(m.eps)
        a["t_edge"] = np.float64(t_edge)
        a["t_node"] = np.float64(t_node)
        a["ablation"] = ablation
        a["loss"] = "kl"
        wg = f.create_group("weights")
        for k, v in m.np_weights.items():
            wg.create_dataset(k, data=v)
        for k, v in dict(clean=clean, corrupted=corrupted, length=lengths, loss_start=loss_start,
                         loss_end=loss_end).items():
            f.create_dataset(k, data=v.astype(np.int32))
        f.create_dataset("log_alpha_edge", data=la_edge)
        f.create_dataset("u_edge", data=u_edge)
        f.create_dataset("lambdas", data=lambdas)
        if node_masks:
            f.create_dataset("log_alpha_node", data=la_node)
            f.create_dataset("u_node", data=u_node)
        f.create_dataset("writer_names", data=np.array(writers, dtype=object), dtype=h5py.string_dtype())
        f.create_dataset("reader_names", data=np.array([n for n, _ in readers], dtype=object),
                         dtype=h5py.string_dtype())
        e = f.create_group("expect")
        e["faith"] = faith
        e["reg_edge"] = reg_e
        e["reg_node"] = reg_n
        e["total"] = total
        e["z_edge"] = z_e.detach().numpy()
        e["grad_edge"] = la_e.grad.numpy()
        g_lam = lam.grad.numpy().copy()
        if node_masks:
            e["z_node"] = z_n.detach().numpy()
            e["grad_node"] = la_n.grad.numpy()
        e["grad_lambda"] = g_lam
    print(f"{path}: E={E} W={W} faith={faith:.6g} total={total:.6g}")


CASES = [
    # name, L, H, D, V, T, B, ablation, node_masks, embedding_nodes
    ("interchange_edges_emb", 2, 2, 16, 100, 8, 3, "interchange", False, True),
    ("interchange_nodes_emb", 3, 4, 32, 100, 7, 3, "interchange", True, True),
    ("interchange_edges_noemb", 3, 2, 16, 100, 6, 3, "interchange", False, False),
    ("zero_nodes_noemb", 2, 3, 24, 97, 8, 3, "zero", True, False),
    ("zero_edges_emb", 2, 2, 16, 100, 5, 3, "zero", False, True),
    ("mean_nodes_emb", 2, 2, 16, 100, 8, 3, "mean", True, True),
    ("mean_edges_noemb", 3, 3, 24, 101, 6, 3, "mean", False, False),
]


def check_dump(dump, model_path, data_path, rtol):
    """Redo the step of an `edgeprune step-dump` file and compare; returns the exit status."""

    def txt(v):
        return v.decode() if isinstance(v, bytes) else str(v)

    with h5py.File(dump, "r") as f:
        a = f.attrs
        model_path = model_path or txt(a["model_path"])
        data_path = data_path or txt(a["data_path"])
        split, ablation, loss = txt(a["train_split"]), txt(a["ablation"]), txt(a["loss"])
        node_masks, emb, node_loss = bool(a["node_masks"]), bool(a["embedding_nodes"]), bool(a["node_loss"])
        t_edge, t_node, faith_c, total_c = float(a["t_edge"]), float(a["t_node"]), float(a["faith"]), float(a["total"])
        la_e, u_e, g_e = f["edges/log_alpha"][:], f["edges/u"][:], f["edges/grad"][:]
        ew = [txt(x) for x in f["edges/writer"][:]]
        er = [txt(x) for x in f["edges/reader"][:]]
        names = [txt(x) for x in f["nodes/name"][:]]
        W = len(names)
        la_n = f["nodes/log_alpha"][:] if node_masks else np.zeros(W)
        u_n = f["nodes/u"][:] if node_masks else np.full(W, 0.5)
        g_n = f["nodes/grad"][:] if node_masks else None
        lambdas, g_l = f["lambdas/value"][:], f["lambdas/grad"][:]
        rows = f["batch/index"][:]
        prec = txt(a["precision"])
    if loss not in ("kl", "kl_sum"):
        raise SystemExit(f"{dump}: the oracle covers the kl and kl_sum losses, not {loss}")
    m = FileModel(model_path)
    writers, readers, edges = graph(m.L, m.H, emb)
    if writers != names or [(readers[r][0], writers[w]) for r, w in edges] != list(zip(er, ew)):
        print(f"FAIL {dump}: writer/reader names or edge order differ from DESIGN section 1")
        return 1
    with h5py.File(data_path, "r") as f:
        g = f[split]
        cols = {k: g[k][:] for k in ("clean", "corrupted", "length", "loss_start", "loss_end")}
    T = cols["clean"].shape[1]
    for k in ("clean", "corrupted"):  # padding ids are never read: make them valid indices
        cols[k] = np.where(np.arange(T)[None, :] < cols["length"][:, None], cols[k], 0)
    pick = {k: v[rows] for k, v in cols.items()}
    r = oracle_step(m, emb, node_masks, ablation, loss, pick["clean"], pick["corrupted"], pick["length"],
                    pick["loss_start"], pick["loss_end"], la_e, u_e, la_n, u_n, lambdas, t_edge, t_node, node_loss,
                    cols["corrupted"], cols["length"])
    worst, bad = 0.0, 0
    for name, got, ref in (("edges", g_e, r["la_e"].grad.numpy()),
                           ("nodes", g_n, r["la_n"].grad.numpy() if node_masks else None),
                           ("lambdas", g_l, r["lam"].grad.numpy())):
        if got is None:
            continue
        sel = np.abs(ref) > 1e-6
        rel = np.abs(got[sel] - ref[sel]) / np.abs(ref[sel])
        if rel.size:
            worst = max(worst, float(rel.max()))
            bad += int((rel > rtol).sum())
    lrel = abs(faith_c - r["faith"]) / max(abs(r["faith"]), 1e-300)
    print(f"{dump} ({prec}): faithfulness {faith_c:.10g} vs oracle {r['faith']:.10g} (rel {lrel:.2e}); total "
          f"{total_c:.10g} vs {r['total']:.10g}; worst gradient rel error {worst:.2e} ({bad} above {rtol:g})")
    return 0 if bad == 0 and lrel <= 1e-5 else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "data", "oracle"))
    ap.add_argument("--check-dump", metavar="STEP.h5", nargs="+",
                    help="instead of writing cases: redo the step of an `edgeprune step-dump` file (GPT-2 models, kl "
                         "or kl_sum) and compare every gradient; exit status 1 on a mismatch")
    ap.add_argument("--model", help="with --check-dump: the model file (default: the dump's model_path)")
    ap.add_argument("--data", help="with --check-dump: the dataset file (default: the dump's data_path)")
    ap.add_argument("--rtol", type=float, default=1e-4,
                    help="with --check-dump: gradient tolerance (relative) for fp64 dumps")
    ap.add_argument("--rtol-f32", type=float, default=2e-3,
                    help="with --check-dump: the same for fp32 dumps (single-precision engine)")
    args = ap.parse_args()
    if args.check_dump:
        status = 0
        for dump in args.check_dump:
            with h5py.File(dump, "r") as f:
                p = f.attrs["precision"]
            rtol = args.rtol if (p.decode() if isinstance(p, bytes) else str(p)) == "f64" else args.rtol_f32
            status |= check_dump(dump, args.model, args.data, rtol)
        raise SystemExit(status)
    for i, c in enumerate(CASES):
        run_case(c[0], args.out, *c[1:], seed=100 + i)


if __name__ == "__main__":
    main()
