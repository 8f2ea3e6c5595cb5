/* test_reference_parity.c — circuit extraction against an independent PyTorch
 * re-implementation of the reference Edge Pruning code (tools/make_circuit_golden.py):
 * deterministic values after per-array zeroing, default requested sparsities,
 * bisection thresholds, and the kept [writer, reader] list in the reference's order.
 * usage: test_reference_parity DATA_DIR   (DATA_DIR/reference_*.h5; skips when absent) */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "edgeprune/circuit.h"
#include "edgeprune/core.h"
#include "edgeprune/graph.h"
#include "edgeprune/h5io.h"
#include "test_util.h"

/* Zero patterns equal and values within tol; returns the number of mismatches. */
static int64_t compare_values(const float *ours, const float *ref, int64_t n, double tol) {
  int64_t bad = 0;
  for (int64_t i = 0; i < n; i++)
    if ((ours[i] == 0.0f) != (ref[i] == 0.0f) || fabs((double)ours[i] - (double)ref[i]) > tol) bad++;
  return bad;
}

static void check_case(const char *path, hid_t f, const char *cname, const ep_graph *g, const float *la,
                       const float *nla) {
  char gname[64];
  snprintf(gname, sizeof gname, "cases/%s", cname);
  if (!h5io_exists(f, gname)) return;
  hid_t cg = H5Gopen2(f, gname, H5P_DEFAULT);
  double req_e = h5io_get_attr_f64(cg, "requested_edge_sparsity", path);
  double req_n = h5io_get_attr_f64(cg, "requested_node_sparsity", path);
  double thr_e = h5io_get_attr_f64(cg, "edge_threshold", path);
  double thr_n = h5io_get_attr_f64(cg, "node_threshold", path);
  int64_t nw = 0, nr = 0;
  char **ws = h5io_read_strings(cg, "writer", &nw, path);
  char **rs = h5io_read_strings(cg, "reader", &nr, path);
  H5Gclose(cg);

  ep_extract_options o;
  extract_options_default(&o);
  o.rule = EP_THRESHOLD_BISECT; /* the reference's rule, to compare thresholds and edges exactly */
  int is_default = !strcmp(cname, "default");
  if (!is_default) o.edge_sparsity = req_e; /* the default case uses our own default */
  ep_circuit c;
  extract_circuit(g, la, nla, &o, &c);
  T_CLOSE(c.requested_edge_sparsity, req_e, 2e-6, 0, "requested edge sparsity");
  T_CLOSE(c.requested_node_sparsity, req_n, 2e-6, 0, "requested (default) node sparsity");
  T_CHECK(c.edge_threshold == thr_e, "%s [%s]: edge threshold %.9f, reference %.9f", path, cname,
          c.edge_threshold, thr_e);
  T_CHECK(c.node_threshold == thr_n, "%s [%s]: node threshold %.9f, reference %.9f", path, cname,
          c.node_threshold, thr_n);

  char *json = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&json, &len);
  circuit_export_json(&c, m);
  fclose(m);
  cJSON *j = cJSON_Parse(json);
  int ok = j && cJSON_IsArray(j) && cJSON_GetArraySize(j) == nw && nw == nr;
  int i = 0;
  cJSON *pair;
  if (ok) cJSON_ArrayForEach(pair, j) {
      cJSON *a = cJSON_GetArrayItem(pair, 0), *b = cJSON_GetArrayItem(pair, 1);
      if (!cJSON_IsString(a) || !cJSON_IsString(b) || strcmp(a->valuestring, ws[i]) ||
          strcmp(b->valuestring, rs[i]))
        ok = 0;
      i++;
    }
  T_CHECK(ok, "%s [%s]: our edges.json (%lld edges) equals the reference's (%lld), in order", path, cname,
          (long long)c.n_kept_edges, (long long)nw);
  printf("%s [%s]: %lld edges, thresholds %.6f / %.6f\n", path, cname, (long long)c.n_kept_edges,
         c.edge_threshold, c.node_threshold);
  cJSON_Delete(j);
  free(json);
  for (int64_t k = 0; k < nw; k++)
    free(ws[k]);
  for (int64_t k = 0; k < nr; k++)
    free(rs[k]);
  free(ws);
  free(rs);
  circuit_free(&c);
}

static int check_file(const char *dir, const char *name) {
  char *path = ep_path_join(dir, name);
  if (access(path, R_OK) != 0) {
    printf("SKIP: %s is absent (make it with tools/make_circuit_golden.py)\n", path);
    free(path);
    return 0;
  }
  hid_t f = h5io_open_read(path);
  ep_model_config cfg;
  model_config_defaults(&cfg);
  cfg.n_layer = (int)h5io_get_attr_i64(f, "n_layer", path);
  cfg.n_head = cfg.n_kv_head = (int)h5io_get_attr_i64(f, "n_head", path);
  ep_graph g;
  graph_init(&g, &cfg, (int)h5io_get_attr_i64(f, "embedding_nodes", path));
  int64_t ne = g.n_edges, nn = g.n_writers;
  float *la = h5io_read(f, "edges/log_alpha", H5T_NATIVE_FLOAT, 1, &ne, NULL, path);
  float *ref_val = h5io_read(f, "edges/value", H5T_NATIVE_FLOAT, 1, &ne, NULL, path);
  float *nla = h5io_read(f, "nodes/log_alpha", H5T_NATIVE_FLOAT, 1, &nn, NULL, path);
  float *ref_nval = h5io_read(f, "nodes/value", H5T_NATIVE_FLOAT, 1, &nn, NULL, path);

  float *val = malloc((size_t)ne * sizeof *val), *nval = malloc((size_t)nn * sizeof *nval);
  extract_edge_values(&g, la, val);
  extract_node_values(&g, nla, nval);
  int64_t bad = compare_values(val, ref_val, ne, 2e-6);
  T_CHECK(bad == 0, "%s: %lld of %lld edge values differ from the reference's", path, (long long)bad,
          (long long)ne);
  bad = compare_values(nval, ref_nval, nn, 2e-6);
  T_CHECK(bad == 0, "%s: %lld of %lld node values differ from the reference's", path, (long long)bad,
          (long long)nn);

  const char *cases[] = {"default", "edge0.99", "edge0.995"};
  for (int i = 0; i < 3; i++)
    check_case(path, f, cases[i], &g, la, nla);
  h5io_close(f);
  free(la);
  free(ref_val);
  free(nla);
  free(ref_nval);
  free(val);
  free(nval);
  graph_free(&g);
  free(path);
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s DATA_DIR\n", argv[0]);
    return 2;
  }
  int found = check_file(argv[1], "reference_gpt2_emb.h5");
  found += check_file(argv[1], "reference_small_noemb.h5");
  if (!found) {
    printf("SKIP: no golden circuit files under %s\n", argv[1]);
    return 77;
  }
  return t_done();
}
