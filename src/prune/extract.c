/* extract.c — trained mask parameters to a binary circuit (see circuit.h for the rules). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "edgeprune/circuit.h"
#include "edgeprune/core.h"
#include "edgeprune/hardconcrete.h"

void extract_options_default(ep_extract_options *o) {
  o->edge_sparsity = -1.0;
  o->node_sparsity = -1.0;
  o->prune_dangling = 0;
  o->rule = EP_THRESHOLD_COUNT;
}

/* ---- per-group zeroing ------------------------------------------------------------ */

typedef struct {
  float v;
  int64_t i;
} val_idx;

static int val_idx_cmp(const void *a, const void *b) {
  const val_idx *x = a, *y = b;
  if (x->v != y->v) return x->v < y->v ? -1 : 1;
  return x->i < y->i ? -1 : (x->i > y->i);
}

/* One mask group of n masks at positions idx[]: value = soft mask, then the
 * round(sum P(z=0)) smallest values (ties: lower position first) set to 0.
 * scratch holds n entries. Returns the sum of the group's values. */
static double zero_group(const float *log_alpha, const int64_t *idx, int64_t n, float *value,
                         val_idx *scratch) {
  double expected_zeros = 0.0;
  for (int64_t j = 0; j < n; j++) {
    float la = log_alpha[idx[j]];
    expected_zeros += hc_prob_zero(la);
    value[idx[j]] = hc_soft_mask(la);
    scratch[j] = (val_idx){value[idx[j]], idx[j]};
  }
  /* nearbyint rounds half to even, as torch.round does. */
  int64_t k = (int64_t)nearbyint(expected_zeros);
  if (k > n) k = n;
  if (k > 0) {
    qsort(scratch, (size_t)n, sizeof *scratch, val_idx_cmp);
    for (int64_t j = 0; j < k; j++)
      value[scratch[j].i] = 0.0f;
  }
  double sum = 0.0;
  for (int64_t j = 0; j < n; j++)
    sum += value[idx[j]];
  return sum;
}

/* Edge indices of every edge of reader r, appended to idx. */
static int64_t push_reader_edges(const ep_graph *g, int r, int64_t *idx, int64_t n) {
  for (int w = 0; w < g->readers[r].n_in; w++)
    idx[n++] = g->readers[r].edge_offset + w;
  return n;
}

double extract_edge_values(const ep_graph *g, const float *log_alpha, float *value) {
  int64_t *idx = ep_malloc((size_t)(g->n_edges ? g->n_edges : 1) * sizeof *idx);
  val_idx *scratch = ep_malloc((size_t)(g->n_edges ? g->n_edges : 1) * sizeof *scratch);
  double sum = 0.0;
  int n_layer = g->readers[g->resid_reader].layer;
  int64_t covered = 0;
  for (int l = 0; l < n_layer; l++) {
    int q0 = g->layer_q_reader[l];
    if (q0 >= 0) {
      /* Heads are reader-major (a.h0.q, a.h0.k, a.h0.v, a.h1.q, ...): the q group
       * takes every third reader starting at the layer's first q reader. */
      for (int kind = 0; kind < 3; kind++) {
        int64_t n = 0;
        for (int r = q0 + kind; r < g->n_readers && g->readers[r].layer == l &&
                                g->readers[r].kind == (ep_reader_kind)(EP_READER_Q + kind);
             r += 3)
          n = push_reader_edges(g, r, idx, n);
        sum += zero_group(log_alpha, idx, n, value, scratch);
        covered += n;
      }
    }
    int m = g->layer_mlp_reader[l];
    if (m >= 0) {
      int64_t n = push_reader_edges(g, m, idx, 0);
      sum += zero_group(log_alpha, idx, n, value, scratch);
      covered += n;
    }
  }
  int64_t n = push_reader_edges(g, g->resid_reader, idx, 0);
  sum += zero_group(log_alpha, idx, n, value, scratch);
  covered += n;
  EP_CHECK(covered == g->n_edges, "mask groups cover %lld of %lld edges", (long long)covered,
           (long long)g->n_edges);
  free(idx);
  free(scratch);
  return g->n_edges ? 1.0 - sum / (double)g->n_edges : 0.0;
}

double extract_node_values(const ep_graph *g, const float *log_alpha, float *value) {
  int64_t *idx = ep_malloc((size_t)(g->n_writers ? g->n_writers : 1) * sizeof *idx);
  val_idx *scratch = ep_malloc((size_t)(g->n_writers ? g->n_writers : 1) * sizeof *scratch);
  double sum = 0.0;
  int64_t covered = 0;
  /* Each embedding is its own one-element group, as in the reference. */
  for (int w = 0; w < g->n_writers; w++) {
    if (g->writers[w].kind == EP_WRITER_TOK || g->writers[w].kind == EP_WRITER_POS ||
        g->writers[w].kind == EP_WRITER_MLP) {
      idx[0] = w;
      sum += zero_group(log_alpha, idx, 1, value, scratch);
      covered++;
    } else if (g->writers[w].head == 0) { /* all heads of a layer together */
      int64_t n = 0;
      for (int v = w; v < g->n_writers && g->writers[v].kind == EP_WRITER_HEAD &&
                      g->writers[v].layer == g->writers[w].layer;
           v++)
        idx[n++] = v;
      sum += zero_group(log_alpha, idx, n, value, scratch);
      covered += n;
    }
  }
  EP_CHECK(covered == g->n_writers, "node mask groups cover %lld of %d writers", (long long)covered,
           g->n_writers);
  free(idx);
  free(scratch);
  return g->n_writers ? 1.0 - sum / (double)g->n_writers : 0.0;
}

/* ---- thresholds ------------------------------------------------------------------- */

/* kept = value > threshold, compared in float32 as the reference (a float32 tensor
 * against a Python float) does. */
static int above(float value, double threshold) {
  return value > (float)threshold;
}

double extract_sparsity_at(const float *value, int64_t n, double threshold) {
  if (n == 0) return 0.0;
  int64_t kept = 0;
  for (int64_t i = 0; i < n; i++)
    kept += above(value[i], threshold);
  return 1.0 - (double)kept / (double)n;
}

double extract_threshold(const float *value, int64_t n, double target) {
  /* The reference's search, including its result: the last midpoint tried. Its
   * sparsity is on one side of the target or the other, within one mask of it when
   * no two values lie within 1e-5 of each other. */
  double lo = 0.0, hi = 1.0, t = 0.5;
  while (hi - lo > 1e-5) {
    t = 0.5 * (lo + hi);
    if (extract_sparsity_at(value, n, t) > target)
      hi = t;
    else
      lo = t;
  }
  return t;
}

static int cmp_float_desc(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x < y) - (x > y);
}

double extract_threshold_count(const float *value, int64_t n, double target) {
  if (n == 0) return 0.0;
  double keep = nearbyint((1.0 - target) * (double)n);
  int64_t k = keep <= 0 ? 0 : keep >= (double)n ? n : (int64_t)keep;
  if (k == n) return -1.0; /* values are >= 0: keep everything */
  float *sorted = ep_malloc((size_t)n * sizeof *sorted);
  memcpy(sorted, value, (size_t)n * sizeof *sorted);
  qsort(sorted, (size_t)n, sizeof *sorted, cmp_float_desc);
  double t = (double)sorted[k]; /* the (k+1)-th largest: exactly the k above it are kept */
  free(sorted);
  return t;
}

double extract_threshold_rule(ep_threshold_rule rule, const float *value, int64_t n, double target) {
  return rule == EP_THRESHOLD_BISECT ? extract_threshold(value, n, target)
                                     : extract_threshold_count(value, n, target);
}

/* ---- the circuit ------------------------------------------------------------------ */

/* Writer index of reader r's node (-1 for resid_post). */
static int reader_node(const ep_graph *g, int r) {
  const ep_reader *rd = &g->readers[r];
  switch (rd->kind) {
  case EP_READER_Q:
  case EP_READER_K:
  case EP_READER_V:
    return g->layer_head_writer[rd->layer] + rd->head;
  case EP_READER_MLP:
    return g->layer_mlp_writer[rd->layer];
  case EP_READER_RESID:
    return -1;
  }
  return -1;
}

/* Keep only nodes with a kept path to resid_post and the edges between such nodes.
 * Every edge goes from a writer to a reader whose node comes later in writer order, so
 * one pass from the last writer down decides each node. */
static void prune_dangling(const ep_graph *g, uint8_t *edge_kept, uint8_t *node_kept) {
  uint8_t *alive = ep_calloc((size_t)g->n_writers + 1, 1);
  int *node_of = ep_malloc((size_t)g->n_readers * sizeof *node_of);
  for (int r = 0; r < g->n_readers; r++) {
    node_of[r] = reader_node(g, r);
    EP_ASSERT(node_of[r] < 0 || node_of[r] >= g->readers[r].n_in);
  }
  for (int w = g->n_writers - 1; w >= 0; w--) {
    if (!node_kept[w]) continue;
    for (int r = 0; r < g->n_readers && !alive[w]; r++) {
      int64_t e = graph_edge_index(g, w, r);
      if (e >= 0 && edge_kept[e] && (node_of[r] < 0 || alive[node_of[r]])) alive[w] = 1;
    }
  }
  for (int r = 0; r < g->n_readers; r++)
    for (int w = 0; w < g->readers[r].n_in; w++) {
      int64_t e = g->readers[r].edge_offset + w;
      if (!alive[w] || (node_of[r] >= 0 && !alive[node_of[r]])) edge_kept[e] = 0;
    }
  for (int w = 0; w < g->n_writers; w++)
    node_kept[w] = alive[w];
  free(alive);
  free(node_of);
}

static double mean_prob_zero(const float *log_alpha, int64_t n) {
  double s = 0.0;
  for (int64_t i = 0; i < n; i++)
    s += hc_prob_zero(log_alpha[i]);
  return n ? s / (double)n : 0.0;
}

static void check_request(double s, const char *what) {
  if (s >= 0.0 && !(s <= 1.0))
    ep_fatal("requested %s sparsity %g is outside [0, 1] (negative means the masks' own)", what, s);
}

void extract_circuit(const ep_graph *g, const float *edge_log_alpha, const float *node_log_alpha,
                     const ep_extract_options *opt, ep_circuit *c) {
  ep_extract_options def;
  extract_options_default(&def);
  if (!opt) opt = &def;
  check_request(opt->edge_sparsity, "edge");
  check_request(opt->node_sparsity, "node");
  for (int64_t e = 0; e < g->n_edges; e++)
    if (!isfinite(edge_log_alpha[e])) {
      int w, r;
      graph_edge_ends(g, e, &w, &r);
      ep_fatal("edge %s -> %s has a non-finite log_alpha (%g)", g->writers[w].name, g->readers[r].name,
               (double)edge_log_alpha[e]);
    }
  if (node_log_alpha)
    for (int w = 0; w < g->n_writers; w++)
      if (!isfinite(node_log_alpha[w]))
        ep_fatal("node %s has a non-finite log_alpha (%g)", g->writers[w].name, (double)node_log_alpha[w]);

  memset(c, 0, sizeof *c);
  c->n_edges = g->n_edges;
  c->n_nodes = g->n_writers;
  c->embedding_nodes = g->embedding_nodes;
  c->n_layer = g->readers[g->resid_reader].layer;
  c->n_head = 0;
  for (int w = 0; w < g->n_writers; w++)
    if (g->writers[w].kind == EP_WRITER_HEAD && g->writers[w].head + 1 > c->n_head)
      c->n_head = g->writers[w].head + 1;
  c->prune_dangling = opt->prune_dangling ? 1 : 0;
  c->model = ep_strdup("");
  c->deck = ep_strdup("");

  size_t ne = (size_t)g->n_edges, nn = (size_t)g->n_writers;
  c->edge_writer = ep_malloc((ne + 1) * sizeof(char *));
  c->edge_reader = ep_malloc((ne + 1) * sizeof(char *));
  c->edge_log_alpha = ep_malloc((ne + 1) * sizeof(float));
  c->edge_value = ep_malloc((ne + 1) * sizeof(float));
  c->edge_kept = ep_calloc(ne + 1, 1);
  for (int r = 0; r < g->n_readers; r++)
    for (int w = 0; w < g->readers[r].n_in; w++) {
      int64_t e = g->readers[r].edge_offset + w;
      c->edge_writer[e] = ep_strdup(g->writers[w].name);
      c->edge_reader[e] = ep_strdup(g->readers[r].name);
    }
  memcpy(c->edge_log_alpha, edge_log_alpha, ne * sizeof(float));
  c->node_name = ep_malloc((nn + 1) * sizeof(char *));
  for (size_t w = 0; w < nn; w++)
    c->node_name[w] = ep_strdup(g->writers[w].name);
  c->node_kept = ep_calloc(nn + 1, 1);

  /* Edges: deterministic values, then the threshold. */
  double det_edge = extract_edge_values(g, c->edge_log_alpha, c->edge_value);
  c->expected_edge_sparsity = mean_prob_zero(c->edge_log_alpha, g->n_edges);
  c->requested_edge_sparsity = opt->edge_sparsity >= 0.0 ? opt->edge_sparsity : det_edge;
  c->edge_threshold = extract_threshold_rule(opt->rule, c->edge_value, g->n_edges, c->requested_edge_sparsity);
  for (size_t e = 0; e < ne; e++)
    c->edge_kept[e] = (uint8_t)above(c->edge_value[e], c->edge_threshold);

  /* Nodes. */
  if (node_log_alpha) {
    c->node_masks = 1;
    c->node_log_alpha = ep_malloc((nn + 1) * sizeof(float));
    c->node_value = ep_malloc((nn + 1) * sizeof(float));
    memcpy(c->node_log_alpha, node_log_alpha, nn * sizeof(float));
    double det_node = extract_node_values(g, c->node_log_alpha, c->node_value);
    c->expected_node_sparsity = mean_prob_zero(c->node_log_alpha, g->n_writers);
    c->requested_node_sparsity = opt->node_sparsity >= 0.0 ? opt->node_sparsity : det_node;
    c->node_threshold =
        extract_threshold_rule(opt->rule, c->node_value, g->n_writers, c->requested_node_sparsity);
    for (size_t w = 0; w < nn; w++)
      c->node_kept[w] = (uint8_t)above(c->node_value[w], c->node_threshold);
  } else {
    if (opt->node_sparsity > 0.0)
      ep_fatal("a node sparsity (%g) was requested but the run trained no node masks", opt->node_sparsity);
    c->node_masks = 0;
    c->requested_node_sparsity = 0.0;
    c->node_threshold = 0.0;
    for (size_t w = 0; w < nn; w++)
      c->node_kept[w] = 1;
  }

  /* Edges of removed writers carry nothing of the clean run: drop them. */
  for (int r = 0; r < g->n_readers; r++)
    for (int w = 0; w < g->readers[r].n_in; w++)
      if (!c->node_kept[w]) c->edge_kept[g->readers[r].edge_offset + w] = 0;
  if (c->prune_dangling) prune_dangling(g, c->edge_kept, c->node_kept);

  c->n_kept_edges = 0;
  for (size_t e = 0; e < ne; e++)
    c->n_kept_edges += c->edge_kept[e];
  c->n_kept_nodes = 0;
  for (size_t w = 0; w < nn; w++)
    c->n_kept_nodes += c->node_kept[w];
  c->edge_sparsity = ne ? 1.0 - (double)c->n_kept_edges / (double)ne : 0.0;
  c->node_sparsity = nn ? 1.0 - (double)c->n_kept_nodes / (double)nn : 0.0;
}

/* ---- text, metrics, mapping, free ------------------------------------------------- */

void circuit_set_text(ep_circuit *c, const char *model_summary, const char *deck) {
  free(c->model);
  free(c->deck);
  c->model = ep_strdup(model_summary ? model_summary : "");
  c->deck = ep_strdup(deck ? deck : "");
}

void circuit_model_summary(const ep_model_config *cfg, char *buf, size_t size) {
  static const char *norms[] = {"none", "layernorm", "rmsnorm"};
  static const char *acts[] = {"gelu_tanh", "relu", "silu_glu"};
  static const char *poss[] = {"learned", "rope", "none"};
  snprintf(buf, size,
           "%s n_layer=%d n_head=%d n_kv_head=%d d_model=%d d_head=%d d_mlp=%d vocab=%d "
           "vocab_out=%d n_ctx=%d norm=%s act=%s pos=%s causal=%d",
           cfg->arch, cfg->n_layer, cfg->n_head, cfg->n_kv_head, cfg->d_model, cfg->d_head, cfg->d_mlp,
           cfg->vocab, cfg->vocab_out, cfg->n_ctx, norms[cfg->norm % 3], acts[cfg->act % 3],
           poss[cfg->pos % 3], cfg->causal);
}

static void free_metrics(ep_circuit *c) {
  for (int i = 0; i < c->n_metrics; i++)
    free(c->metric_name[i]);
  free(c->metric_name);
  free(c->metric_full);
  free(c->metric_circuit);
  c->metric_name = NULL;
  c->metric_full = c->metric_circuit = NULL;
  c->n_metrics = 0;
}

void circuit_set_metrics(ep_circuit *c, int n, const char *const *names, const double *full,
                         const double *circuit) {
  EP_CHECK(n >= 0, "negative metric count %d", n);
  free_metrics(c);
  c->n_metrics = n;
  c->metric_name = ep_calloc((size_t)n + 1, sizeof(char *));
  c->metric_full = ep_malloc(((size_t)n + 1) * sizeof(double));
  c->metric_circuit = ep_malloc(((size_t)n + 1) * sizeof(double));
  for (int i = 0; i < n; i++) {
    EP_CHECK(names[i] && names[i][0] && !strchr(names[i], '/'), "bad metric name '%s'",
             names[i] ? names[i] : "(null)");
    for (int j = 0; j < i; j++)
      EP_CHECK(strcmp(names[i], names[j]) != 0, "metric '%s' given twice", names[i]);
    c->metric_name[i] = ep_strdup(names[i]);
    c->metric_full[i] = full ? full[i] : NAN;
    c->metric_circuit[i] = circuit ? circuit[i] : NAN;
  }
}

void circuit_graph_masks(const ep_circuit *c, const ep_graph *g, const char *file, uint8_t *edge_kept,
                         uint8_t *node_kept) {
  if (c->n_edges != g->n_edges || c->n_nodes != g->n_writers)
    ep_fatal("%s: the circuit has %lld edges and %d nodes but the model's graph has %lld and %d "
             "(a different model, or a different embedding-nodes setting: circuit %s, graph %s)",
             file, (long long)c->n_edges, c->n_nodes, (long long)g->n_edges, g->n_writers,
             c->embedding_nodes ? "on" : "off", g->embedding_nodes ? "on" : "off");
  for (int w = 0; w < g->n_writers; w++)
    if (strcmp(c->node_name[w], g->writers[w].name) != 0)
      ep_fatal("%s: node %d is '%s' in the circuit but '%s' in the model's graph", file, w, c->node_name[w],
               g->writers[w].name);
  for (int r = 0; r < g->n_readers; r++)
    for (int w = 0; w < g->readers[r].n_in; w++) {
      int64_t e = g->readers[r].edge_offset + w;
      if (strcmp(c->edge_writer[e], g->writers[w].name) || strcmp(c->edge_reader[e], g->readers[r].name))
        ep_fatal("%s: edge %lld is %s -> %s in the circuit but %s -> %s in the model's graph", file,
                 (long long)e, c->edge_writer[e], c->edge_reader[e], g->writers[w].name, g->readers[r].name);
      if (edge_kept) edge_kept[e] = c->edge_kept[e];
    }
  if (node_kept) memcpy(node_kept, c->node_kept, (size_t)g->n_writers);
}

void circuit_graph(const ep_circuit *c, const char *file, ep_graph *g) {
  if (c->n_layer < 0 || c->n_layer > EP_MAX_LAYERS || c->n_head < 0 || c->n_head > 4096)
    ep_fatal("%s: bad graph shape (n_layer %d, n_head %d)", file, c->n_layer, c->n_head);
  ep_model_config cfg;
  model_config_defaults(&cfg);
  cfg.n_layer = c->n_layer;
  cfg.n_head = cfg.n_kv_head = c->n_head;
  memset(cfg.has_attn, 0, sizeof cfg.has_attn);
  memset(cfg.has_mlp, 0, sizeof cfg.has_mlp);
  for (int w = 0; w < c->n_nodes; w++) {
    int l, h, used = 0;
    const char *s = c->node_name[w];
    if (sscanf(s, "a%d.h%d%n", &l, &h, &used) == 2 && s[used] == '\0' && l >= 0 && l < c->n_layer)
      cfg.has_attn[l] = 1;
    else if (sscanf(s, "m%d%n", &l, &used) == 1 && s[used] == '\0' && l >= 0 && l < c->n_layer)
      cfg.has_mlp[l] = 1;
    else if (strcmp(s, "tok_embeds") != 0 && strcmp(s, "pos_embeds") != 0)
      ep_fatal("%s: node '%s' is not a writer name of a %d-layer model", file, s, c->n_layer);
  }
  graph_init(g, &cfg, c->embedding_nodes);
  circuit_graph_masks(c, g, file, NULL, NULL); /* every name must match */
}

void circuit_reextract(const ep_circuit *in, const char *file, const ep_extract_options *opt,
                       ep_circuit *out) {
  if (in->method && in->method[0] && strcmp(in->method, "edge-pruning") != 0)
    ep_fatal("%s: a circuit found by %s stores attribution scores or a kept set, not trained masks, so it "
             "cannot be extracted again; run `edgeprune baseline` with --edge-sparsity instead",
             file, in->method);
  ep_graph g;
  circuit_graph(in, file, &g);
  extract_circuit(&g, in->edge_log_alpha, in->node_masks ? in->node_log_alpha : NULL, opt, out);
  circuit_set_text(out, in->model, in->deck);
  graph_free(&g);
}

void circuit_print_summary(const ep_circuit *c, const char *path, FILE *f) {
  fprintf(f, "circuit file   %s\n", path);
  fprintf(f, "model          %s\n", c->model && c->model[0] ? c->model : "(not recorded)");
  fprintf(f, "method         %s\n", c->method && c->method[0] ? c->method : "edge-pruning");
  fprintf(f, "graph          %d layers, %d heads, embedding nodes %s\n", c->n_layer, c->n_head,
          c->embedding_nodes ? "on" : "off");
  fprintf(f,
          "edges          %lld of %lld kept, sparsity %.6f (requested %.6f, threshold %.6f, expected %.6f)\n",
          (long long)c->n_kept_edges, (long long)c->n_edges, c->edge_sparsity, c->requested_edge_sparsity,
          c->edge_threshold, c->expected_edge_sparsity);
  if (c->node_masks)
    fprintf(f,
            "nodes          %d of %d kept, sparsity %.6f (requested %.6f, threshold %.6f, expected %.6f)\n",
            c->n_kept_nodes, c->n_nodes, c->node_sparsity, c->requested_node_sparsity, c->node_threshold,
            c->expected_node_sparsity);
  else
    fprintf(f, "nodes          %d of %d kept, sparsity %.6f (no node masks)\n", c->n_kept_nodes, c->n_nodes,
            c->node_sparsity);
  fprintf(f, "dangling       %s\n", c->prune_dangling ? "pruned" : "kept");
  if (c->n_metrics) {
    fprintf(f, "metrics        %-22s %14s %14s\n", "", "full", "circuit");
    for (int i = 0; i < c->n_metrics; i++) {
      fprintf(f, "               %-22s", c->metric_name[i]);
      if (isnan(c->metric_full[i]))
        fprintf(f, " %14s", "-");
      else
        fprintf(f, " %14.6g", c->metric_full[i]);
      if (isnan(c->metric_circuit[i]))
        fprintf(f, " %14s\n", "-");
      else
        fprintf(f, " %14.6g\n", c->metric_circuit[i]);
    }
  } else {
    fprintf(f, "metrics        (none recorded)\n");
  }
}

void circuit_free(ep_circuit *c) {
  if (c->edge_writer)
    for (int64_t e = 0; e < c->n_edges; e++)
      free(c->edge_writer[e]);
  if (c->edge_reader)
    for (int64_t e = 0; e < c->n_edges; e++)
      free(c->edge_reader[e]);
  if (c->node_name)
    for (int w = 0; w < c->n_nodes; w++)
      free(c->node_name[w]);
  free(c->edge_writer);
  free(c->edge_reader);
  free(c->edge_log_alpha);
  free(c->edge_value);
  free(c->edge_kept);
  free(c->node_name);
  free(c->node_log_alpha);
  free(c->node_value);
  free(c->node_kept);
  free(c->model);
  free(c->deck);
  free(c->method);
  free_metrics(c);
  memset(c, 0, sizeof *c);
}
