/* test_extract.c — circuit extraction on small graphs with chosen log_alphas:
 * per-group top-k zeroing, bisection to requested sparsities, edges of removed writers,
 * node groups and dangling-edge pruning. Expected values are worked out from the rules
 * in DESIGN section 1, not from the code under test. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "edgeprune/circuit.h"
#include "edgeprune/graph.h"
#include "edgeprune/hardconcrete.h"
#include "test_util.h"

static int64_t E(const ep_graph *g, const char *w, const char *r) {
  int wi = graph_find_writer(g, w), ri = graph_find_reader(g, r);
  if (wi < 0 || ri < 0) return -1;
  return graph_edge_index(g, wi, ri);
}

/* P(z=0) in closed form (see test_hardconcrete.c). */
static double p0(double la) {
  return 1.0 / (1.0 + pow(11.0, 2.0 / 3.0) * exp(la));
}

static void small_graph(ep_graph *g, int L, int H, int emb) {
  ep_model_config c;
  model_config_defaults(&c);
  c.n_layer = L;
  c.n_head = c.n_kv_head = H;
  graph_init(g, &c, emb);
}

/* Top-k zeroing inside each group. */
static void test_topk(void) {
  ep_graph g;
  small_graph(&g, 2, 2, 1); /* writers tok,pos,a0.h0,a0.h1,m0,a1.h0,a1.h1,m1; 61 edges */
  T_CHECK(g.n_edges == 61, "L=2 H=2 graph has 61 edges (%lld)", (long long)g.n_edges);
  float *la = malloc((size_t)g.n_edges * sizeof *la);
  float *val = malloc((size_t)g.n_edges * sizeof *val);
  for (int64_t e = 0; e < g.n_edges; e++)
    la[e] = 10.0f;

  /* Layer-1 q group (a1.h0.q and a1.h1.q, 10 edges): three sure zeros -> k = 3. */
  int64_t z1 = E(&g, "tok_embeds", "a1.h0.q"), z2 = E(&g, "m0", "a1.h1.q"), z3 = E(&g, "a0.h1", "a1.h0.q");
  la[z1] = la[z2] = la[z3] = -10.0f;
  /* Layer-1 k group: five middling masks; sum of P0 = 2.2 -> k = 2: the two smallest. */
  const char *kw[5] = {"tok_embeds", "pos_embeds", "a0.h0", "a0.h1", "m0"};
  const float kla[5] = {-1.3f, -1.2f, -1.1f, -1.4f, -1.25f};
  double ksum = 0;
  int64_t ke[5];
  for (int i = 0; i < 5; i++) {
    ke[i] = E(&g, kw[i], i < 3 ? "a1.h0.k" : "a1.h1.k");
    la[ke[i]] = kla[i];
    ksum += p0(kla[i]);
  }
  ksum += 5 * p0(10.0);
  T_CHECK(fabs(ksum - 2.0) < 0.45, "k group: expected zeros %.3f rounds to 2", ksum);
  /* resid_post group: four equal masks at 0, P0 sum 0.673 -> k = 1: the lowest index. */
  const char *rw[4] = {"a0.h0", "m0", "a1.h1", "m1"};
  int64_t re[4];
  for (int i = 0; i < 4; i++)
    la[re[i] = E(&g, rw[i], "resid_post")] = 0.0f;
  /* m0 reader group (4 edges): two masks at 0 -> P0 sum 0.336 -> nothing zeroed. */
  int64_t m0a = E(&g, "tok_embeds", "m0"), m0b = E(&g, "a0.h1", "m0");
  la[m0a] = la[m0b] = 0.0f;
  /* Same q masks in the layer-0 v group: a sure zero. */
  int64_t v0 = E(&g, "pos_embeds", "a0.h1.v");
  la[v0] = -10.0f;

  double det = extract_edge_values(&g, la, val);
  int64_t expect_zero[] = {z1, z2, z3, ke[3], ke[0], re[0], v0};
  int nz = 0, bad = 0;
  for (int64_t e = 0; e < g.n_edges; e++) {
    int should_zero = 0;
    for (int i = 0; i < 7; i++)
      should_zero |= expect_zero[i] == e;
    if (val[e] == 0.0f) nz++;
    if (should_zero ? val[e] != 0.0f : fabsf(val[e] - hc_soft_mask(la[e])) > 1e-7f) bad++;
  }
  T_CHECK(nz == 7 && bad == 0, "top-k zeroing: %d zeros (want 7), %d wrong values", nz, bad);
  T_CLOSE(val[re[1]], 0.5, 1e-7, 0, "tied resid masks after the first keep their soft value");
  T_CLOSE(val[m0a], 0.5, 1e-7, 0, "m0 group: P0 sum below 1/2 zeroes nothing");
  double sum = 0;
  for (int64_t e = 0; e < g.n_edges; e++)
    sum += val[e];
  T_CLOSE(det, 1.0 - sum / 61.0, 1e-9, 0, "deterministic sparsity = 1 - mean(value)");

  /* Node groups: embeddings and MLPs alone, heads of a layer together. */
  float nla[8], nval[8];
  for (int w = 0; w < 8; w++)
    nla[w] = 10.0f;
  nla[graph_find_writer(&g, "a0.h1")] = -10.0f; /* heads of layer 0: k = 1 */
  nla[graph_find_writer(&g, "m0")] = -0.2f;     /* P0 = 0.198: kept at soft(-0.2) */
  nla[graph_find_writer(&g, "m1")] = -2.0f;     /* P0 = 0.599: rounds to 1, zeroed */
  nla[graph_find_writer(&g, "pos_embeds")] = -0.2f;
  extract_node_values(&g, nla, nval);
  T_CHECK(nval[graph_find_writer(&g, "a0.h1")] == 0.0f, "node a0.h1 zeroed");
  T_CHECK(nval[graph_find_writer(&g, "m1")] == 0.0f, "node m1 (P0 %.3f) zeroed", p0(-2.0));
  T_CLOSE(nval[graph_find_writer(&g, "m0")], hc_soft_mask(-0.2f), 1e-7, 0, "node m0 keeps its soft value");
  T_CLOSE(nval[graph_find_writer(&g, "pos_embeds")], hc_soft_mask(-0.2f), 1e-7, 0, "pos_embeds alone");
  T_CLOSE(nval[graph_find_writer(&g, "a1.h0")], hc_soft_mask(10.0f), 1e-7, 0, "a1.h0 kept");
  free(la);
  free(val);
  graph_free(&g);
}

/* Bisection reaches requested sparsities within one edge. */
static void test_bisection(void) {
  ep_graph g;
  small_graph(&g, 3, 3, 1);
  int64_t n = g.n_edges;
  T_CHECK(n == 203, "L=3 H=3 graph has 203 edges (%lld)", (long long)n);
  float *la = malloc((size_t)n * sizeof *la);
  /* Distinct log_alphas in [2, 5] in a scrambled order: P0 <= 0.027 each, so no group
   * expects a zero (checked below), and neighbouring soft values are more than 4e-5
   * apart, wider than the bisection's 1e-5 bracket. */
  for (int64_t e = 0; e < n; e++)
    la[e] = 2.0f + 3.0f * (float)((e * 7919) % n) / (float)n;
  float *val = malloc((size_t)n * sizeof *val);
  extract_edge_values(&g, la, val);
  int zeros = 0;
  for (int64_t e = 0; e < n; e++)
    zeros += val[e] == 0.0f;
  T_CHECK(zeros == 0, "no zeroing for confident masks (%d zeros)", zeros);
  const double targets[] = {0.0, 0.05, 0.1, 0.25, 0.333, 0.5, 0.73, 0.9, 0.97, 0.99, 1.0};
  for (int i = 0; i < (int)(sizeof targets / sizeof *targets); i++) {
    ep_extract_options o;
    extract_options_default(&o);
    o.edge_sparsity = targets[i];
    ep_circuit c;
    extract_circuit(&g, la, NULL, &o, &c);
    double want_kept = (1.0 - targets[i]) * (double)n;
    T_CHECK(fabs((double)c.n_kept_edges - want_kept) <= 1.0, "target %.3f: kept %lld, want %.1f +- 1",
            targets[i], (long long)c.n_kept_edges, want_kept);
    T_CLOSE(c.edge_sparsity, 1.0 - (double)c.n_kept_edges / (double)n, 1e-12, 0, "achieved sparsity");
    /* Kept edges are exactly those above the threshold, i.e. the largest values. */
    float min_kept = 2.0f, max_dropped = -1.0f;
    for (int64_t e = 0; e < n; e++) {
      if (c.edge_kept[e] && val[e] < min_kept) min_kept = val[e];
      if (!c.edge_kept[e] && val[e] > max_dropped) max_dropped = val[e];
    }
    T_CHECK(max_dropped < min_kept, "target %.3f: kept set is a top set", targets[i]);
    T_CHECK(c.n_kept_nodes == g.n_writers && c.node_sparsity == 0.0, "no node masks: all nodes kept");
    circuit_free(&c);
  }
  /* The threshold function on its own, on values with many ties at 0 and 1/2. */
  float v[100];
  for (int i = 0; i < 100; i++)
    v[i] = i < 20 ? 0.0f : (i < 30 ? 0.5f : 0.5f + 0.004f * (float)i);
  T_CLOSE(extract_sparsity_at(v, 100, extract_threshold(v, 100, 0.0)), 0.2, 1e-12, 0, "zeros are never kept");
  /* 0.26: the bisection sets hi = 0.5 (sparsity 0.3 there, ties at 1/2 excluded) and
   * every later midpoint lies in (0.25, 0.5) with sparsity 0.2: the ties stay together
   * and the last midpoint gives 0.2. */
  T_CLOSE(extract_sparsity_at(v, 100, extract_threshold(v, 100, 0.26)), 0.2, 1e-12, 0,
          "ties at 1/2 go together (0.26 -> 0.20)");
  /* 0.305: sparsity 0.3 for t in [0.5, 0.62); the bisection closes in on 0.62, the next
   * value, and may end just above it (0.31): within one mask either way. */
  T_CLOSE(extract_sparsity_at(v, 100, extract_threshold(v, 100, 0.305)), 0.305, 0.0051, 0,
          "0.305 within one mask");
  T_CLOSE(extract_sparsity_at(v, 100, extract_threshold(v, 100, 0.6)), 0.6, 1e-12, 0, "0.6 exactly");
  T_CLOSE(extract_sparsity_at(v, 100, extract_threshold(v, 100, 1.0)), 1.0, 1e-12, 0, "1.0 keeps nothing");
  /* The count rule (the default): exactly round((1 - target) * n) kept, fewer only when
   * values tie across the boundary. */
  T_CLOSE(extract_sparsity_at(v, 100, extract_threshold_count(v, 100, 0.31)), 0.31, 1e-12, 0,
          "count rule: 0.31 exactly");
  T_CLOSE(extract_sparsity_at(v, 100, extract_threshold_count(v, 100, 0.26)), 0.30, 1e-12, 0,
          "count rule: ties at 1/2 across the boundary are dropped together (0.26 -> 0.30)");
  T_CLOSE(extract_sparsity_at(v, 100, extract_threshold_count(v, 100, 0.0)), 0.0, 1e-12, 0,
          "count rule: 0 keeps everything");
  T_CLOSE(extract_sparsity_at(v, 100, extract_threshold_count(v, 100, 1.0)), 1.0, 1e-12, 0,
          "count rule: 1 keeps nothing");
  /* Confident masks a little under 1 (as after a long run): the default request
   * 1 - mean(value) lies between two counts; the count rule keeps all of them. */
  float w[100];
  for (int i = 0; i < 100; i++)
    w[i] = i % 10 == 3 ? 0.9931f + 0.0001f * (float)(i / 10) : 0.0f;
  double mean = 0;
  for (int i = 0; i < 100; i++)
    mean += w[i] / 100.0;
  T_CLOSE(extract_sparsity_at(w, 100, extract_threshold_count(w, 100, 1.0 - mean)), 0.9, 1e-12, 0,
          "count rule keeps the 10 confident masks at the masks' own sparsity");
  free(la);
  free(val);
  graph_free(&g);
}

/* Removed writers lose every outgoing edge; default sparsities follow the masks. */
static void test_nodes_and_default(void) {
  ep_graph g;
  small_graph(&g, 2, 2, 1);
  float *la = malloc((size_t)g.n_edges * sizeof *la);
  for (int64_t e = 0; e < g.n_edges; e++)
    la[e] = 10.0f;
  int64_t drop = E(&g, "a0.h0", "m0");
  la[drop] = -10.0f;
  float nla[8];
  for (int w = 0; w < 8; w++)
    nla[w] = 10.0f;
  int a01 = graph_find_writer(&g, "a0.h1");
  nla[a01] = -10.0f;
  ep_circuit c;
  extract_circuit(&g, la, nla, NULL, &c);
  /* Default request = deterministic sparsity: one zero, 60 masks at soft(10). */
  T_CLOSE(c.requested_edge_sparsity, 1.0 - 60.0 * hc_soft_mask(10.0f) / 61.0, 1e-7, 0,
          "default edge request = 1 - mean(value)");
  T_CLOSE(c.expected_edge_sparsity, (60.0 * p0(10.0) + p0(-10.0)) / 61.0, 1e-7, 0, "expected = mean P0");
  T_CHECK(c.node_masks && c.node_kept[a01] == 0 && c.n_kept_nodes == 7, "a0.h1 removed, 7 nodes kept");
  T_CLOSE(c.node_sparsity, 1.0 / 8.0, 1e-12, 0, "node sparsity");
  int from_removed = 0, other_dropped = 0;
  for (int r = 0; r < g.n_readers; r++)
    for (int w = 0; w < g.readers[r].n_in; w++) {
      int64_t e = g.readers[r].edge_offset + w;
      if (w == a01)
        from_removed += c.edge_kept[e];
      else if (!c.edge_kept[e] && e != drop)
        other_dropped++;
    }
  T_CHECK(from_removed == 0, "%d edges of removed writer a0.h1 kept", from_removed);
  T_CHECK(other_dropped == 0 && !c.edge_kept[drop], "only a0.h0->m0 and a0.h1's edges dropped");
  /* a0.h1 feeds: a1.h*.q/k/v (6), m0, m1, resid_post = 9 edges. */
  T_CHECK(c.n_kept_edges == 61 - 1 - 9, "kept %lld edges (want 51)", (long long)c.n_kept_edges);
  T_CLOSE(c.edge_sparsity, 10.0 / 61.0, 1e-12, 0, "effective edge sparsity");
  circuit_free(&c);
  free(la);
  graph_free(&g);
}

/* prune_dangling: a1.h0 has inputs but no kept output; m0 only feeds a1.h0. */
static void test_dangling(void) {
  ep_graph g;
  small_graph(&g, 2, 2, 1);
  float *la = malloc((size_t)g.n_edges * sizeof *la);
  for (int64_t e = 0; e < g.n_edges; e++)
    la[e] = 10.0f;
  int a10 = graph_find_writer(&g, "a1.h0"), m0 = graph_find_writer(&g, "m0");
  for (int r = 0; r < g.n_readers; r++) {
    int64_t e = graph_edge_index(&g, a10, r);
    if (e >= 0) la[e] = -10.0f; /* a1.h0 -> m1, resid_post */
    const char *rn = g.readers[r].name;
    e = graph_edge_index(&g, m0, r);
    if (e >= 0 && strncmp(rn, "a1.h0.", 6) != 0) la[e] = -10.0f; /* m0 only feeds a1.h0 */
  }
  ep_extract_options o;
  extract_options_default(&o);
  ep_circuit keep, pruned;
  extract_circuit(&g, la, NULL, &o, &keep);
  o.prune_dangling = 1;
  extract_circuit(&g, la, NULL, &o, &pruned);
  /* Without pruning: 61 - 2 (a1.h0 out) - 5 (m0 -> a1.h1.qkv, m1, resid) = 54. */
  T_CHECK(keep.n_kept_edges == 54 && keep.n_kept_nodes == 8, "unpruned: %lld edges, %d nodes",
          (long long)keep.n_kept_edges, keep.n_kept_nodes);
  /* Pruned: also the 3*5 edges into a1.h0.q/k/v and the 4 edges into m0. */
  T_CHECK(pruned.n_kept_edges == 54 - 15 - 4, "pruned: %lld edges (want 35)", (long long)pruned.n_kept_edges);
  T_CHECK(!pruned.node_kept[a10] && !pruned.node_kept[m0] && pruned.n_kept_nodes == 6,
          "a1.h0 and m0 marked removed");
  T_CHECK(!pruned.edge_kept[E(&g, "a0.h0", "a1.h0.k")] && pruned.edge_kept[E(&g, "a0.h0", "a1.h1.k")] &&
              !pruned.edge_kept[E(&g, "tok_embeds", "m0")] && pruned.edge_kept[E(&g, "tok_embeds", "m1")],
          "dangling edges dropped, live ones kept");
  circuit_free(&keep);
  circuit_free(&pruned);
  free(la);
  graph_free(&g);
}

/* Without embedding nodes and with a Tracr-like layer lacking an MLP the groups still
 * cover every edge exactly once. */
static void test_shapes(void) {
  ep_model_config c;
  model_config_defaults(&c);
  c.n_layer = 3;
  c.n_head = c.n_kv_head = 1;
  c.has_mlp[1] = 0;
  c.has_attn[2] = 0;
  ep_graph g;
  graph_init(&g, &c, 0);
  float *la = malloc((size_t)g.n_edges * sizeof *la), *val = malloc((size_t)g.n_edges * sizeof *val);
  for (int64_t e = 0; e < g.n_edges; e++)
    la[e] = -10.0f; /* every mask a sure zero */
  double det = extract_edge_values(&g, la, val);
  int nz = 0;
  for (int64_t e = 0; e < g.n_edges; e++)
    nz += val[e] == 0.0f;
  T_CHECK(nz == g.n_edges && det == 1.0, "all %lld masks zeroed in their groups (%d)", (long long)g.n_edges,
          nz);
  free(la);
  free(val);
  graph_free(&g);
}

/* GPT-2 small (32,936 edges): in every group, found here from each reader's own
 * (layer, kind), the number of zeros is round(sum of P0) in closed form, and zeros are
 * the group's smallest soft values. */
static void test_gpt2_groups(void) {
  ep_model_config cfg;
  model_config_defaults(&cfg);
  ep_graph g;
  graph_init(&g, &cfg, 1);
  int64_t n = g.n_edges;
  float *la = malloc((size_t)n * sizeof *la), *val = malloc((size_t)n * sizeof *val);
  uint64_t x = 12345;
  for (int64_t e = 0; e < n; e++) { /* xorshift: log_alpha roughly uniform in [-6, 6] */
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    la[e] = -6.0f + 12.0f * (float)(x % 1000003) / 1000003.0f;
  }
  extract_edge_values(&g, la, val);
  int n_groups = 0, bad = 0, skipped = 0;
  for (int layer = 0; layer <= cfg.n_layer; layer++)
    for (int kind = 0; kind <= EP_READER_RESID; kind++) {
      double sum = 0;
      int64_t zeros = 0, members = 0;
      float max_zeroed = -1, min_soft_kept = 2;
      for (int r = 0; r < g.n_readers; r++) {
        if (g.readers[r].layer != layer || (int)g.readers[r].kind != kind) continue;
        for (int w = 0; w < g.readers[r].n_in; w++) {
          int64_t e = g.readers[r].edge_offset + w;
          sum += p0(la[e]);
          members++;
          float soft = hc_soft_mask(la[e]);
          if (val[e] == 0.0f) {
            zeros++;
            if (soft > max_zeroed) max_zeroed = soft;
          } else if (soft < min_soft_kept) {
            min_soft_kept = soft;
          }
        }
      }
      if (!members) continue;
      n_groups++;
      if (fabs(sum - floor(sum) - 0.5) < 1e-3) {
        skipped++;
        continue;
      }
      if (zeros != (int64_t)floor(sum + 0.5) || (zeros && max_zeroed > min_soft_kept)) bad++;
    }
  T_CHECK(n_groups == 12 * 4 + 1 && bad == 0, "gpt2 groups: %d groups (want 49), %d wrong, %d skipped",
          n_groups, bad, skipped);
  free(la);
  free(val);
  graph_free(&g);
}

int main(void) {
  test_topk();
  test_bisection();
  test_nodes_and_default();
  test_dangling();
  test_shapes();
  test_gpt2_groups();
  return t_done();
}
