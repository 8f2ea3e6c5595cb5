#!/usr/bin/env python3
"""reference_port.py — a plain-Python (no numpy/torch) re-implementation of how the
reference Edge Pruning code reads a circuit off trained masks, in the reference's
parameter layout, for tests/circuit/test_reference_port.c. Same rules as
tools/make_circuit_golden.py (which uses PyTorch and float32 like the reference), in
float64 with float32-rounded inputs and soft values:
  per-layer q/k/v read arrays [n_writers, n_head] and MLP read array [n_writers] whose
  rows past the reader's prefix are padding at N(10, 0.01); final read array; node
  arrays tok, pos, per layer heads [n_head] and MLP [1]; per array the round(sum P0)
  smallest soft values zeroed; bisection to 1e-5 keeping the last midpoint; circuit in
  the reference's get_edges order.
usage: reference_port.py L H EMB SEED OUT.txt
OUT.txt: "L H emb n_edges n_writers", then per edge (edgeprune order) "log_alpha value",
per writer "log_alpha value", then per case (default, 0.99, 0.995)
"req_edge req_node edge_threshold node_threshold n_kept" and n_kept "writer reader" lines.
"""
import math, random, struct, sys
L_LEFT, R_RIGHT, EPS, BETA, FACTOR = -0.1, 1.1, 1e-6, 2.0/3.0, 0.8
f32 = lambda x: struct.unpack('f', struct.pack('f', x))[0]
sig = lambda x: 1/(1+math.exp(-x)) if x >= 0 else math.exp(x)/(1+math.exp(x))
def p0(la):
    q = BETA*math.log((0.0-L_LEFT)/(R_RIGHT-0.0))
    return min(max(sig(q-la), EPS), 1-EPS)
def det(flat):
    n_zero = int(round(sum(p0(x) for x in flat)))
    soft = [f32(sig(x/BETA*FACTOR)) for x in flat]
    if n_zero > 0:
        idx = sorted(range(len(flat)), key=lambda i: (soft[i], i))[:n_zero]
        for i in idx: soft[i] = 0.0
    return soft
class M:
    def __init__(s, L, H, emb, rng, mix, off):
        s.L, s.H, s.emb = L, H, emb; s.E = 2 if emb else 0; s.W = s.E + L*(H+1)
        e = lambda: f32(rng.gauss(3,1)) if rng.random() < mix else f32(rng.gauss(-3,1.5))
        pad = lambda: f32(10 + 0.01*rng.gauss(0,1))
        s.q, s.k, s.v, s.mlp = [], [], [], []
        for l in range(L):
            a_off = s.E + l*(H+1); m_off = a_off + H
            for lst in (s.q, s.k, s.v):
                lst.append([[e() if w < a_off else pad() for h in range(H)] for w in range(s.W)])
            s.mlp.append([e() if w < m_off else pad() for w in range(s.W)])
        s.final = [e() for w in range(s.W)]
        nd = lambda n: [f32(rng.gauss(-5,.5)) if rng.random() < off else f32(rng.gauss(5,.5)) for _ in range(n)]
        s.tok = nd(1) if emb else None; s.pos = nd(1) if emb else None
        s.attn_w = [nd(H) for _ in range(L)]; s.mlp_w = [nd(1) for _ in range(L)]
    def node_arrays(s):
        a = [s.tok, s.pos] if s.emb else []
        for l in range(s.L): a += [s.attn_w[l], s.mlp_w[l]]
        return a
    def det2(s, a):  # 2-D [W][H] deterministic over the whole array (row-major flatten)
        flat = [x for row in a for x in row]; d = det(flat)
        return [d[w*s.H:(w+1)*s.H] for w in range(s.W)]
    def edge_masks(s, t):
        th = (lambda v: v) if t is None else (lambda v: 1.0 if v > f32(t) else 0.0)
        out = []
        for l in range(s.L):
            a_off = s.E + l*(s.H+1)
            qs = [[th(x) for x in row] for row in s.det2(s.q[l])[:a_off]]
            ks = [[th(x) for x in row] for row in s.det2(s.k[l])[:a_off]]
            vs = [[th(x) for x in row] for row in s.det2(s.v[l])[:a_off]]
            ms = [th(x) for x in det(s.mlp[l])[:a_off+s.H]]
            out.append((qs, ks, vs, ms))
        return out, [th(x) for x in det(s.final)]
    def node_masks(s, t):
        th = (lambda v: v) if t is None else (lambda v: 1.0 if v > f32(t) else 0.0)
        return [[th(x) for x in det(a)] for a in s.node_arrays()]
    def edge_sparsity(s, t):
        pl, fin = s.edge_masks(t); tot = n = 0
        for qs, ks, vs, ms in pl:
            for g in (qs, ks, vs):
                for row in g: tot += sum(row); n += len(row)
            tot += sum(ms); n += len(ms)
        tot += sum(fin); n += len(fin)
        return 1 - tot/n
    def node_sparsity(s, t):
        ms = s.node_masks(t); return 1 - sum(map(sum, ms))/sum(map(len, ms))
    @staticmethod
    def bisect(fn, target):
        lo, hi, t = 0.0, 1.0, 0.5
        while hi - lo > 1e-5:
            t = (lo+hi)/2
            if fn(t) > target: hi = t
            else: lo = t
        return t
    def wname(s, w):
        if s.emb:
            if w == 0: return "tok_embeds"
            if w == 1: return "pos_embeds"
        w -= s.E; l, i = divmod(w, s.H+1)
        return f"m{l}" if i == s.H else f"a{l}.h{i}"
    def circuit(s, et, nt):
        pl, fin = s.edge_masks(et)
        nodes = [x for a in s.node_masks(nt) for x in a]
        allowed = [w for w in range(s.W) if nodes[w] == 1]
        pairs = []
        for l in range(s.L):
            zq, zk, zv, zm = pl[l]
            for w in range(len(zq)):
                if w not in allowed: continue
                for kind, z in (("q", zq), ("k", zk), ("v", zv)):
                    for h in range(s.H):
                        if z[w][h] == 1: pairs.append((s.wname(w), f"a{l}.h{h}.{kind}"))
            for w in range(len(zm)):
                if w in allowed and zm[w] == 1: pairs.append((s.wname(w), f"m{l}"))
        for w in range(s.W):
            if w in allowed and fin[w] == 1: pairs.append((s.wname(w), "resid_post"))
        return pairs
    def to_ep(s, Q, K, V, Mm, F):
        out = []
        for l in range(s.L):
            a_off = s.E + l*(s.H+1)
            for h in range(s.H):
                for a in (Q[l], K[l], V[l]): out += [a[w][h] for w in range(a_off)]
            out += Mm[l][:a_off+s.H]
        return out + F
L, H, emb, seed = map(int, sys.argv[1:5])
rng = random.Random(seed)
m = M(L, H, bool(emb), rng, 0.04, 0.12 if emb else 0.0)
la = m.to_ep(m.q, m.k, m.v, m.mlp, m.final)
val = m.to_ep([m.det2(a) for a in m.q], [m.det2(a) for a in m.k], [m.det2(a) for a in m.v], [det(a) for a in m.mlp], det(m.final))
nla = [x for a in m.node_arrays() for x in a]
nval = [x for a in m.node_arrays() for x in det(a)]
with open(sys.argv[5], "w") as f:
    print(L, H, emb, len(la), len(nla), file=f)
    for x, v in zip(la, val): print(repr(x), repr(v), file=f)
    for x, v in zip(nla, nval): print(repr(x), repr(v), file=f)
    for target in (None, 0.99, 0.995):
        es = m.edge_sparsity(None) if target is None else target
        ns = m.node_sparsity(None)
        et = M.bisect(m.edge_sparsity, es); nt = M.bisect(m.node_sparsity, ns)
        pairs = m.circuit(et, nt)
        print(repr(es), repr(ns), repr(et), repr(nt), len(pairs), file=f)
        for a, b in pairs: print(a, b, file=f)
