/* tracr_truth.c — the ground-truth circuit of a Tracr model by exhaustive ablation.
 *
 * Usage: tracr_truth TASK MODEL.config.json [--out CIRCUIT.json] [--tol X]
 *   TASK is reverse or xproportion (tracr_common.h: every input of the paper's length).
 *
 * Method (zero ablation, embedding nodes on, no node masks; docs/tracr.md):
 *  1. Necessity: an edge is necessary when setting its mask alone to 0 (every other
 *     edge 1) moves some output at some non-BOS position of some input by more than
 *     tol from the full model's.
 *  2. Sufficiency: the necessary edges alone (every other edge 0) must reproduce the
 *     full model's outputs within tol on every input.
 *  3. Greedy (ACDC-style) pruning as an independent derivation: starting from every
 *     edge, visit readers from resid_post back to the first layer and, within a reader,
 *     writers from last to first; drop an edge when the outputs without it stay within
 *     tol of the full model's. This finds a sufficient circuit even when single-edge
 *     necessity misses interactions.
 *  4. Minimality: removing any one edge of the result breaks it (output moves > tol).
 * The ground truth is the necessity set when steps 2-4 agree with it (same edge set from
 * both derivations, sufficient, minimal); otherwise the greedy circuit, with the
 * difference printed. Steps run in double precision and are re-checked in single
 * precision (the training precision). The circuit is written in the edges.json form. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgeprune/circuit.h"
#include "edgeprune/core.h"
#include "tracr_common.h"

static void usage(FILE *f) {
  fprintf(f, "usage: tracr_truth reverse|xproportion MODEL.config.json [--out CIRCUIT.json] [--tol X]\n");
}

/* Write kept edges in the reference edges.json order through the circuit exporter. */
static void write_json(const ep_graph *g, const uint8_t *kept, const char *path) {
  ep_circuit c;
  memset(&c, 0, sizeof c);
  c.n_edges = g->n_edges;
  c.edge_writer = ep_malloc((size_t)g->n_edges * sizeof *c.edge_writer);
  c.edge_reader = ep_malloc((size_t)g->n_edges * sizeof *c.edge_reader);
  c.edge_kept = ep_malloc((size_t)g->n_edges);
  for (int64_t e = 0; e < g->n_edges; e++) {
    int w, r;
    graph_edge_ends(g, e, &w, &r);
    c.edge_writer[e] = g->writers[w].name;
    c.edge_reader[e] = g->readers[r].name;
    c.edge_kept[e] = kept[e];
    c.n_kept_edges += kept[e];
  }
  char tmp[4096];
  ep_atomic_tmpname(path, tmp, sizeof tmp);
  FILE *f = fopen(tmp, "w");
  if (!f) ep_fatal("%s: cannot write", tmp);
  circuit_export_json(&c, f);
  if (fclose(f) != 0) ep_fatal("%s: write failed", tmp);
  ep_atomic_commit(tmp, path);
  free(c.edge_writer);
  free(c.edge_reader);
  free(c.edge_kept);
}

static void edge_name(const ep_graph *g, int64_t e, char *buf, size_t n) {
  int w, r;
  graph_edge_ends(g, e, &w, &r);
  snprintf(buf, n, "%s -> %s", g->writers[w].name, g->readers[r].name);
}

/* Per-node summary: which writers have a kept edge into resid_post or into a reader of a
 * node that is itself used (walked backwards from resid_post). */
static void print_summary(const ep_graph *g, const uint8_t *kept) {
  int64_t n = 0;
  for (int64_t e = 0; e < g->n_edges; e++)
    n += kept[e];
  printf("circuit: %lld of %lld edges\n", (long long)n, (long long)g->n_edges);
  for (int r = 0; r < g->n_readers; r++) {
    int first = 1;
    for (int w = 0; w < g->readers[r].n_in; w++) {
      if (!kept[graph_edge_index(g, w, r)]) continue;
      printf("%s%s", first ? "  " : ", ", g->writers[w].name);
      first = 0;
    }
    if (!first) printf(" -> %s\n", g->readers[r].name);
  }
}

int main(int argc, char **argv) {
  if (argc < 3) {
    usage(stderr);
    return 2;
  }
  const char *task = argv[1], *model = argv[2], *out_path = NULL;
  double tol = 1e-4;
  for (int i = 3; i < argc; i++) {
    if (!strcmp(argv[i], "--out") && i + 1 < argc)
      out_path = argv[++i];
    else if (!strcmp(argv[i], "--tol") && i + 1 < argc) {
      char *end;
      tol = strtod(argv[++i], &end);
      if (*end || !(tol >= 0)) ep_fatal("--tol: '%s' is not a non-negative number", argv[i]);
    } else {
      usage(stderr);
      return 2;
    }
  }
  tracr_task t;
  tracr_task_init(&t, task, model, EP_PREC_F64);
  const ep_graph *g = &t.g;
  const int64_t E = g->n_edges;
  double *z = ep_malloc((size_t)E * sizeof *z);
  float *out = ep_malloc((size_t)t.P * t.Vo * sizeof *out);
  char name[96];
  printf("%s: %d inputs, %lld loss positions, %lld edges (embedding nodes on), zero ablation, tol %g\n", task,
         t.B, (long long)t.P, (long long)E, tol);

  /* the full model does the task, and z = 1 reproduces it */
  for (int64_t e = 0; e < E; e++)
    z[e] = 1;
  double d_all = tracr_task_run(&t, z, out);
  int wrong_full = tracr_task_wrong(&t, t.full, 1e-5);
  printf("full model: %d of %d inputs wrong; all edges kept: max |out - full| = %.3g\n", wrong_full, t.B,
         d_all);
  EP_CHECK(wrong_full == 0 && d_all <= 1e-9, "%s: the full model does not do the task", model);

  /* 1. necessity */
  uint8_t *need = ep_calloc((size_t)E, 1);
  double *dev = ep_malloc((size_t)E * sizeof *dev);
  int64_t n_need = 0;
  for (int64_t e = 0; e < E; e++) {
    z[e] = 0;
    dev[e] = tracr_task_run(&t, z, out);
    z[e] = 1;
    need[e] = !(dev[e] <= tol);
    n_need += need[e];
  }
  /* the gap between necessary and unnecessary edges shows how robust tol is */
  double min_need = INFINITY, max_free = 0;
  for (int64_t e = 0; e < E; e++) {
    if (need[e] && dev[e] < min_need) min_need = dev[e];
    if (!need[e] && dev[e] > max_free) max_free = dev[e];
  }
  printf(
      "necessity: %lld edges change the output when removed alone; smallest such change %.3g, largest change "
      "of any other edge %.3g\n",
      (long long)n_need, min_need, max_free);

  /* 2. sufficiency of the necessity set */
  for (int64_t e = 0; e < E; e++)
    z[e] = need[e];
  double d_need = tracr_task_run(&t, z, out);
  int wrong_need = tracr_task_wrong(&t, out, 1e-5);
  printf("sufficiency: necessary edges only: max |out - full| = %.3g, %d inputs wrong\n", d_need, wrong_need);

  /* 3. greedy removal in reverse topological order */
  uint8_t *greedy = ep_malloc((size_t)E);
  for (int64_t e = 0; e < E; e++)
    z[e] = 1;
  for (int r = g->n_readers - 1; r >= 0; r--) {
    for (int w = g->readers[r].n_in - 1; w >= 0; w--) {
      int64_t e = graph_edge_index(g, w, r);
      z[e] = 0;
      if (!(tracr_task_run(&t, z, out) <= tol)) z[e] = 1;
    }
  }
  int64_t n_greedy = 0, n_diff = 0;
  for (int64_t e = 0; e < E; e++) {
    greedy[e] = z[e] > 0.5;
    n_greedy += greedy[e];
    n_diff += greedy[e] != need[e];
  }
  printf("greedy: %lld edges; %lld differ from the necessity set\n", (long long)n_greedy, (long long)n_diff);
  for (int64_t e = 0; e < E; e++)
    if (greedy[e] != need[e]) {
      edge_name(g, e, name, sizeof name);
      printf("  %-28s necessity %d greedy %d (alone: %.3g)\n", name, need[e], greedy[e], dev[e]);
    }

  const int agree = n_diff == 0 && d_need <= tol && wrong_need == 0;
  const uint8_t *truth = agree ? need : greedy;
  printf("ground truth: %s\n", agree ? "necessity set (sufficient, equal to the greedy circuit)"
                                     : "greedy circuit (the necessity set is not it)");

  /* 4. minimality of the result, and single-precision re-check */
  for (int64_t e = 0; e < E; e++)
    z[e] = truth[e];
  double d_truth = tracr_task_run(&t, z, out);
  int minimal = 1;
  double weakest = INFINITY;
  for (int64_t e = 0; e < E; e++) {
    if (!truth[e]) continue;
    z[e] = 0;
    double d = tracr_task_run(&t, z, out);
    z[e] = 1;
    if (d < weakest) weakest = d;
    if (d <= tol) {
      edge_name(g, e, name, sizeof name);
      printf("  not minimal: without %s the output moves only %.3g\n", name, d);
      minimal = 0;
    }
  }
  printf("minimality: %s (removing any one circuit edge moves the output by at least %.3g)\n",
         minimal ? "yes" : "no", weakest);
  tracr_task t32;
  tracr_task_init(&t32, task, model, EP_PREC_F32);
  double d32 = tracr_task_run(&t32, z, out);
  int wrong32 = tracr_task_wrong(&t32, out, 1e-5);
  printf("single precision: circuit max |out - full| = %.3g, %d inputs wrong\n", d32, wrong32);
  tracr_task_free(&t32);

  print_summary(g, truth);
  const int ok = d_truth <= tol && minimal && d32 <= tol && wrong32 == 0;
  if (ok && out_path) {
    write_json(g, truth, out_path);
    printf("wrote %s\n", out_path);
  }
  free(z);
  free(out);
  free(need);
  free(dev);
  free(greedy);
  tracr_task_free(&t);
  if (!ok) {
    fprintf(stderr, "tracr_truth: no sufficient and minimal circuit within tol %g; nothing written\n", tol);
    return 1;
  }
  return 0;
}
