/* test_reference_port.c — circuit extraction against reference_port.py, an independent
 * plain-Python re-implementation of the reference code's extraction in its own
 * parameter layout (padding rows included): deterministic values, default requests,
 * thresholds, and the kept list in the reference's order, compared with our
 * edges.json text.
 * usage: test_reference_port FILE.txt...   (files written by reference_port.py) */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgeprune/circuit.h"
#include "edgeprune/graph.h"
#include "test_util.h"

static void check_file(const char *path) {
  FILE *f = fopen(path, "r");
  T_CHECK(f != NULL, "cannot open %s", path);
  if (!f) return;
  int L, H, emb;
  long ne, nn;
  if (fscanf(f, "%d %d %d %ld %ld", &L, &H, &emb, &ne, &nn) != 5) {
    T_CHECK(0, "%s: bad header", path);
    fclose(f);
    return;
  }
  ep_model_config cfg;
  model_config_defaults(&cfg);
  cfg.n_layer = L;
  cfg.n_head = cfg.n_kv_head = H;
  ep_graph g;
  graph_init(&g, &cfg, emb);
  T_CHECK(g.n_edges == ne && g.n_writers == nn, "%s: %ld edges / %ld writers, graph has %lld / %d", path, ne,
          nn, (long long)g.n_edges, g.n_writers);
  if (g.n_edges != ne || g.n_writers != nn) {
    fclose(f);
    graph_free(&g);
    return;
  }
  float *la = malloc((size_t)ne * sizeof *la), *ref = malloc((size_t)ne * sizeof *ref);
  float *val = malloc((size_t)ne * sizeof *val);
  float *nla = malloc((size_t)nn * sizeof *nla), *nref = malloc((size_t)nn * sizeof *nref);
  float *nval = malloc((size_t)nn * sizeof *nval);
  int ok = 1;
  for (long i = 0; i < ne; i++) {
    double a, b;
    ok &= fscanf(f, "%lf %lf", &a, &b) == 2;
    la[i] = (float)a, ref[i] = (float)b;
  }
  for (long i = 0; i < nn; i++) {
    double a, b;
    ok &= fscanf(f, "%lf %lf", &a, &b) == 2;
    nla[i] = (float)a, nref[i] = (float)b;
  }
  T_CHECK(ok, "%s: masks read", path);

  extract_edge_values(&g, la, val);
  extract_node_values(&g, nla, nval);
  long bad = 0, nbad = 0;
  for (long i = 0; i < ne; i++)
    bad += (val[i] == 0.0f) != (ref[i] == 0.0f) || fabsf(val[i] - ref[i]) > 2e-6f;
  for (long i = 0; i < nn; i++)
    nbad += (nval[i] == 0.0f) != (nref[i] == 0.0f) || fabsf(nval[i] - nref[i]) > 2e-6f;
  T_CHECK(bad == 0 && nbad == 0, "%s: %ld edge and %ld node values differ from the reference's", path, bad,
          nbad);

  for (int cs = 0; cs < 3; cs++) {
    double es, ns, et, nt;
    long np;
    if (fscanf(f, "%lf %lf %lf %lf %ld", &es, &ns, &et, &nt, &np) != 5) {
      T_CHECK(0, "%s: case %d header", path, cs);
      break;
    }
    ep_extract_options o;
    extract_options_default(&o);
    o.rule = EP_THRESHOLD_BISECT; /* the reference's rule */
    if (cs > 0) o.edge_sparsity = es; /* case 0: our own default request */
    ep_circuit c;
    extract_circuit(&g, la, nla, &o, &c);
    T_CLOSE(c.requested_edge_sparsity, es, 1e-7, 0, "requested edge sparsity");
    T_CLOSE(c.requested_node_sparsity, ns, 1e-7, 0, "default node sparsity");
    T_CHECK(c.edge_threshold == et && c.node_threshold == nt,
            "%s case %d: thresholds %.9f/%.9f, reference %.9f/%.9f", path, cs, c.edge_threshold,
            c.node_threshold, et, nt);
    /* The reference's list written as our exporter writes JSON: the texts must match. */
    char *want = NULL, *got = NULL;
    size_t wl = 0, gl = 0;
    FILE *w = open_memstream(&want, &wl);
    fputs("[", w);
    for (long i = 0; i < np; i++) {
      char a[64], b[64];
      if (fscanf(f, "%63s %63s", a, b) != 2) break;
      fprintf(w, "%s\n  [\"%s\", \"%s\"]", i ? "," : "", a, b);
    }
    fputs(np ? "\n]\n" : "]\n", w);
    fclose(w);
    FILE *m = open_memstream(&got, &gl);
    circuit_export_json(&c, m);
    fclose(m);
    T_CHECK(c.n_kept_edges == np && !strcmp(got, want),
            "%s case %d: %lld kept edges, reference %ld; lists %s", path, cs, (long long)c.n_kept_edges, np,
            strcmp(got, want) ? "differ" : "equal");
    printf("%s case %d: %lld edges, %d nodes kept, thresholds %.6f / %.6f\n", path, cs,
           (long long)c.n_kept_edges, c.n_kept_nodes, c.edge_threshold, c.node_threshold);
    free(want);
    free(got);
    circuit_free(&c);
  }
  fclose(f);
  free(la);
  free(ref);
  free(val);
  free(nla);
  free(nref);
  free(nval);
  graph_free(&g);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s FILE.txt...\n", argv[0]);
    return 2;
  }
  for (int i = 1; i < argc; i++)
    check_file(argv[i]);
  return t_done();
}
