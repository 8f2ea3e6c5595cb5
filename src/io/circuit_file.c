/* circuit_file.c — the circuit HDF5 file (layout in circuit.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "edgeprune/circuit.h"
#include "edgeprune/core.h"
#include "edgeprune/h5io.h"
#include "edgeprune/version.h"

/* A group whose attributes keep their creation order, so metrics read back in the
 * order they were given. */
static hid_t create_ordered_group(hid_t loc, const char *name) {
  hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
  EP_CHECK_H5(gcpl);
  EP_CHECK_H5(H5Pset_attr_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED));
  hid_t g = H5Gcreate2(loc, name, H5P_DEFAULT, gcpl, H5P_DEFAULT);
  EP_CHECK_H5(g);
  EP_CHECK_H5(H5Pclose(gcpl));
  return g;
}

static void write_metrics(hid_t file, const ep_circuit *c) {
  hid_t m = h5io_group(file, "metrics");
  hid_t full = create_ordered_group(m, "full");
  hid_t circ = create_ordered_group(m, "circuit");
  for (int i = 0; i < c->n_metrics; i++) {
    if (!isnan(c->metric_full[i])) h5io_attr_f64(full, c->metric_name[i], c->metric_full[i]);
    if (!isnan(c->metric_circuit[i])) h5io_attr_f64(circ, c->metric_name[i], c->metric_circuit[i]);
  }
  EP_CHECK_H5(H5Gclose(full));
  EP_CHECK_H5(H5Gclose(circ));
  EP_CHECK_H5(H5Gclose(m));
}

static void write_file(const ep_circuit *c, const char *path) {
  hid_t f = h5io_create(path);
  h5io_attr_str(f, "format", EP_CIRCUIT_FORMAT);
  h5io_attr_i64(f, "format_version", EP_CIRCUIT_FORMAT_VERSION);
  h5io_attr_str(f, "edgeprune_version", EP_VERSION);
  h5io_attr_i64(f, "n_edges", c->n_edges);
  h5io_attr_i64(f, "n_kept", c->n_kept_edges);
  h5io_attr_i64(f, "n_nodes", c->n_nodes);
  h5io_attr_i64(f, "n_kept_nodes", c->n_kept_nodes);
  h5io_attr_f64(f, "edge_sparsity", c->edge_sparsity);
  h5io_attr_f64(f, "node_sparsity", c->node_sparsity);
  h5io_attr_f64(f, "requested_edge_sparsity", c->requested_edge_sparsity);
  h5io_attr_f64(f, "requested_node_sparsity", c->requested_node_sparsity);
  h5io_attr_f64(f, "expected_edge_sparsity", c->expected_edge_sparsity);
  h5io_attr_f64(f, "expected_node_sparsity", c->expected_node_sparsity);
  h5io_attr_f64(f, "edge_threshold", c->edge_threshold);
  h5io_attr_f64(f, "node_threshold", c->node_threshold);
  h5io_attr_i64(f, "embedding_nodes", c->embedding_nodes);
  h5io_attr_i64(f, "node_masks", c->node_masks);
  h5io_attr_i64(f, "prune_dangling", c->prune_dangling);
  h5io_attr_i64(f, "n_layer", c->n_layer);
  h5io_attr_i64(f, "n_head", c->n_head);
  h5io_attr_str(f, "model", c->model ? c->model : "");
  h5io_attr_str(f, "deck", c->deck ? c->deck : "");
  h5io_attr_str(f, "method", c->method && c->method[0] ? c->method : "edge-pruning");

  int64_t ne = c->n_edges, nn = c->n_nodes;
  hid_t ge = h5io_group(f, "edges");
  h5io_write_strings(ge, "writer", ne, (const char *const *)c->edge_writer);
  h5io_write_strings(ge, "reader", ne, (const char *const *)c->edge_reader);
  h5io_write_f32(ge, "log_alpha", 1, &ne, c->edge_log_alpha);
  h5io_write_f32(ge, "value", 1, &ne, c->edge_value);
  h5io_write_u8(ge, "kept", 1, &ne, c->edge_kept);
  EP_CHECK_H5(H5Gclose(ge));

  hid_t gn = h5io_group(f, "nodes");
  h5io_write_strings(gn, "name", nn, (const char *const *)c->node_name);
  if (c->node_masks) {
    h5io_write_f32(gn, "log_alpha", 1, &nn, c->node_log_alpha);
    h5io_write_f32(gn, "value", 1, &nn, c->node_value);
  }
  h5io_write_u8(gn, "kept", 1, &nn, c->node_kept);
  EP_CHECK_H5(H5Gclose(gn));

  write_metrics(f, c);
  h5io_close(f);
}

void circuit_write(const ep_circuit *c, const char *path) {
  char tmp[4096];
  ep_atomic_tmpname(path, tmp, sizeof tmp);
  write_file(c, tmp);
  ep_atomic_commit(tmp, path);
}

/* ---- reading ---------------------------------------------------------------------- */

typedef struct {
  char **names;
  double *values;
  int n;
} attr_list;

static herr_t collect_attr(hid_t loc, const char *name, const H5A_info_t *info, void *data) {
  (void)info;
  attr_list *l = data;
  hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
  if (a < 0) return -1;
  double v = NAN;
  herr_t st = H5Aread(a, H5T_NATIVE_DOUBLE, &v);
  H5Aclose(a);
  if (st < 0) return -1;
  l->names = ep_realloc(l->names, (size_t)(l->n + 1) * sizeof(char *));
  l->values = ep_realloc(l->values, (size_t)(l->n + 1) * sizeof(double));
  l->names[l->n] = ep_strdup(name);
  l->values[l->n] = v;
  l->n++;
  return 0;
}

static void read_attr_list(hid_t file, const char *group, attr_list *l, const char *path) {
  memset(l, 0, sizeof *l);
  if (!h5io_exists(file, group)) return;
  hid_t g = H5Gopen2(file, group, H5P_DEFAULT);
  if (g < 0) ep_fatal("%s: '%s' is not a group", path, group);
  hsize_t idx = 0;
  /* Creation order when the group tracks it (ours do), name order otherwise. */
  hid_t gcpl = H5Gget_create_plist(g);
  EP_CHECK_H5(gcpl);
  unsigned flags = 0;
  EP_CHECK_H5(H5Pget_attr_creation_order(gcpl, &flags));
  EP_CHECK_H5(H5Pclose(gcpl));
  H5_index_t order = (flags & H5P_CRT_ORDER_INDEXED) ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME;
  if (H5Aiterate2(g, order, H5_ITER_INC, &idx, collect_attr, l) < 0)
    ep_fatal("%s: cannot read the metrics in '%s' (each should be a number)", path, group);
  EP_CHECK_H5(H5Gclose(g));
}

static void read_metrics(hid_t file, ep_circuit *c, const char *path) {
  attr_list full, circ;
  read_attr_list(file, "metrics/full", &full, path);
  read_attr_list(file, "metrics/circuit", &circ, path);
  /* Names: those of the full model in order, then any only the circuit has. */
  int n = full.n;
  const char **names = ep_malloc((size_t)(full.n + circ.n + 1) * sizeof(char *));
  for (int i = 0; i < full.n; i++)
    names[i] = full.names[i];
  for (int j = 0; j < circ.n; j++) {
    int found = 0;
    for (int i = 0; i < full.n; i++)
      found |= !strcmp(circ.names[j], full.names[i]);
    if (!found) names[n++] = circ.names[j];
  }
  double *fv = ep_malloc((size_t)(n + 1) * sizeof(double));
  double *cv = ep_malloc((size_t)(n + 1) * sizeof(double));
  for (int i = 0; i < n; i++) {
    fv[i] = cv[i] = NAN;
    for (int j = 0; j < full.n; j++)
      if (!strcmp(names[i], full.names[j])) fv[i] = full.values[j];
    for (int j = 0; j < circ.n; j++)
      if (!strcmp(names[i], circ.names[j])) cv[i] = circ.values[j];
  }
  circuit_set_metrics(c, n, names, fv, cv);
  free(names);
  free(fv);
  free(cv);
  for (int i = 0; i < full.n; i++)
    free(full.names[i]);
  for (int i = 0; i < circ.n; i++)
    free(circ.names[i]);
  free(full.names);
  free(full.values);
  free(circ.names);
  free(circ.values);
}

static uint8_t *read_flags(hid_t loc, const char *name, int64_t n, const char *path, const char *what) {
  int64_t expect = n;
  uint8_t *v = h5io_read(loc, name, H5T_NATIVE_UINT8, 1, &expect, NULL, path);
  for (int64_t i = 0; i < n; i++)
    if (v[i] > 1) ep_fatal("%s: %s[%lld] is %d (should be 0 or 1)", path, what, (long long)i, v[i]);
  return v;
}

void circuit_read(ep_circuit *c, const char *path) {
  memset(c, 0, sizeof *c);
  hid_t f = h5io_open_read(path);
  if (!h5io_has_attr(f, "format"))
    ep_fatal("%s: not an edgeprune circuit file (no 'format' attribute; expected '%s')", path,
             EP_CIRCUIT_FORMAT);
  char *fmt = h5io_get_attr_str(f, "format", path);
  if (strcmp(fmt, EP_CIRCUIT_FORMAT) != 0)
    ep_fatal("%s: not an edgeprune circuit file (format is '%s', expected '%s')", path, fmt,
             EP_CIRCUIT_FORMAT);
  free(fmt);
  int64_t version = h5io_get_attr_i64(f, "format_version", path);
  if (version != EP_CIRCUIT_FORMAT_VERSION)
    ep_fatal("%s: circuit file format version %lld is not supported (this edgeprune reads version %d)", path,
             (long long)version, EP_CIRCUIT_FORMAT_VERSION);

  c->n_edges = h5io_get_attr_i64(f, "n_edges", path);
  int64_t n_nodes = h5io_get_attr_i64(f, "n_nodes", path);
  if (c->n_edges < 0 || n_nodes < 0 || n_nodes > (1 << 30))
    ep_fatal("%s: bad edge or node count (%lld, %lld)", path, (long long)c->n_edges, (long long)n_nodes);
  c->n_nodes = (int)n_nodes;
  c->n_kept_edges = h5io_get_attr_i64(f, "n_kept", path);
  c->n_kept_nodes = (int)h5io_get_attr_i64(f, "n_kept_nodes", path);
  c->edge_sparsity = h5io_get_attr_f64(f, "edge_sparsity", path);
  c->node_sparsity = h5io_get_attr_f64(f, "node_sparsity", path);
  c->requested_edge_sparsity = h5io_get_attr_f64(f, "requested_edge_sparsity", path);
  c->requested_node_sparsity = h5io_get_attr_f64(f, "requested_node_sparsity", path);
  c->expected_edge_sparsity = h5io_get_attr_f64(f, "expected_edge_sparsity", path);
  c->expected_node_sparsity = h5io_get_attr_f64(f, "expected_node_sparsity", path);
  c->edge_threshold = h5io_get_attr_f64(f, "edge_threshold", path);
  c->node_threshold = h5io_get_attr_f64(f, "node_threshold", path);
  c->embedding_nodes = (int)h5io_get_attr_i64(f, "embedding_nodes", path);
  c->node_masks = (int)h5io_get_attr_i64(f, "node_masks", path);
  c->prune_dangling = (int)h5io_get_attr_i64(f, "prune_dangling", path);
  c->n_layer = (int)h5io_get_attr_i64(f, "n_layer", path);
  c->n_head = (int)h5io_get_attr_i64(f, "n_head", path);
  c->model = h5io_get_attr_str(f, "model", path);
  c->deck = h5io_get_attr_str(f, "deck", path);
  c->method = h5io_has_attr(f, "method") ? h5io_get_attr_str(f, "method", path) : ep_strdup("edge-pruning");

  int64_t n = 0, ne = c->n_edges, nn = c->n_nodes;
  c->edge_writer = h5io_read_strings(f, "edges/writer", &n, path);
  if (n != ne)
    ep_fatal("%s: edges/writer has %lld entries, n_edges is %lld", path, (long long)n, (long long)ne);
  c->edge_reader = h5io_read_strings(f, "edges/reader", &n, path);
  if (n != ne)
    ep_fatal("%s: edges/reader has %lld entries, n_edges is %lld", path, (long long)n, (long long)ne);
  c->edge_log_alpha = h5io_read(f, "edges/log_alpha", H5T_NATIVE_FLOAT, 1, &ne, NULL, path);
  c->edge_value = h5io_read(f, "edges/value", H5T_NATIVE_FLOAT, 1, &ne, NULL, path);
  c->edge_kept = read_flags(f, "edges/kept", ne, path, "edges/kept");

  c->node_name = h5io_read_strings(f, "nodes/name", &n, path);
  if (n != nn)
    ep_fatal("%s: nodes/name has %lld entries, n_nodes is %lld", path, (long long)n, (long long)nn);
  if (c->node_masks) {
    c->node_log_alpha = h5io_read(f, "nodes/log_alpha", H5T_NATIVE_FLOAT, 1, &nn, NULL, path);
    c->node_value = h5io_read(f, "nodes/value", H5T_NATIVE_FLOAT, 1, &nn, NULL, path);
  }
  c->node_kept = read_flags(f, "nodes/kept", nn, path, "nodes/kept");
  read_metrics(f, c, path);
  h5io_close(f);

  /* Consistency: counts, and each reader's edges list the writers in node order (the
   * graph's prefix rule), which the exporters rely on. */
  int64_t kept = 0;
  for (int64_t e = 0; e < ne; e++)
    kept += c->edge_kept[e];
  if (kept != c->n_kept_edges)
    ep_fatal("%s: %lld edges are marked kept but n_kept is %lld", path, (long long)kept,
             (long long)c->n_kept_edges);
  int kept_nodes = 0;
  for (int w = 0; w < c->n_nodes; w++)
    kept_nodes += c->node_kept[w];
  if (kept_nodes != c->n_kept_nodes)
    ep_fatal("%s: %d nodes are marked kept but n_kept_nodes is %d", path, kept_nodes, c->n_kept_nodes);
  int64_t start = 0;
  for (int64_t e = 0; e < ne; e++) {
    if (e > 0 && strcmp(c->edge_reader[e], c->edge_reader[e - 1]) != 0) start = e;
    int64_t w = e - start;
    if (w >= c->n_nodes || strcmp(c->edge_writer[e], c->node_name[w]) != 0)
      ep_fatal("%s: edge %lld (%s -> %s) is out of graph order (expected writer %s)", path, (long long)e,
               c->edge_writer[e], c->edge_reader[e], w < c->n_nodes ? c->node_name[w] : "(none)");
  }
}

void circuit_update_metrics(const char *path, int n, const char *const *names, const double *full,
                            const double *circuit) {
  ep_circuit c;
  circuit_read(&c, path);
  circuit_set_metrics(&c, n, names, full, circuit);
  circuit_write(&c, path);
  circuit_free(&c);
}
