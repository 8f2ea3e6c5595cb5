/* common.c — what the baselines share: method names, the data pass L(z) (+ dL/dz) over
 * a dataset in batches on the per-step backend, and the circuit of a baseline
 * (baselines.h). */
#include <math.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "edgeprune/baselines.h"
#include "edgeprune/core.h"

const char *baseline_method_name(ep_baseline_method m) {
  static const char *names[] = {"eap", "eap-ig", "acdc"};
  return (unsigned)m < 3 ? names[m] : "?";
}

int baseline_method_parse(const char *s) {
  for (int k = 0; k < 3; k++)
    if (s && !strcmp(s, baseline_method_name((ep_baseline_method)k))) return k;
  return -1;
}

static int mpi_many(void) {
  return ep_mpi_active() && ep_size > 1;
}

/* Rows [first, first + n) of d as a dataset of their own (no copy). */
static ep_dataset rows_view(const ep_dataset *d, int64_t first, int64_t n) {
  ep_dataset v = *d;
  const int64_t T = d->max_len;
  v.n = n;
  v.clean = d->clean + first * T;
  v.corrupted = d->corrupted + first * T;
  v.length = d->length + first;
  v.loss_start = d->loss_start + first;
  v.loss_end = d->loss_end + first;
  v.target = d->target ? d->target + first : NULL;
  v.distractor = d->distractor ? d->distractor + first : NULL;
  v.aux = d->aux ? d->aux + first : NULL;
  return v;
}

static int64_t batch_rows(const ep_baseline_data *bd, int64_t k, int64_t *first) {
  *first = k * bd->B;
  return bd->d->n - *first < bd->B ? bd->d->n - *first : bd->B;
}

void baseline_data_init(ep_baseline_data *bd, const ep_prune_config *c, const ep_model *m, const ep_graph *g,
                        const ep_dataset *d, ep_precision prec) {
  memset(bd, 0, sizeof *bd);
  EP_CHECK(d->n >= 1, "baselines need at least one example");
  bd->c = c;
  bd->m = m;
  bd->g = g;
  bd->d = d;
  bd->B = c->batch_size < d->n ? c->batch_size : d->n;
  bd->n_batches = (d->n + bd->B - 1) / bd->B;
  bd->prepared = -1;
  bd->be = backend_choose(&c->backend);
  /* edges only: node masks play no part in the baselines */
  ep_engine_opts eo = {c->loss, c->ablation, 0, prec};
  bd->ws = backend_open(bd->be, &c->backend, m, g, &eo, (int)bd->B, d->max_len);
  bd->batch = ep_calloc(1, sizeof(ep_batch_buf));
  if (c->ablation == EP_ABLATE_MEAN) {
    /* per-position mean of the corrupted run over d, each rank adding its batches */
    const int T = d->max_len;
    const size_t n = (size_t)g->n_writers * T * m->cfg.d_model;
    double *sum = ep_calloc(n, sizeof *sum);
    int64_t *cnt = ep_calloc((size_t)T, sizeof *cnt);
    for (int64_t k = ep_rank; k < bd->n_batches; k += ep_size) {
      int64_t first, rows = batch_rows(bd, k, &first);
      ep_dataset v = rows_view(d, first, rows);
      prune_mean_writers_accumulate(bd->be, bd->ws, g, &m->cfg, &v, bd->B, sum, cnt);
    }
    if (mpi_many()) {
      EP_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, sum, (int)n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
      EP_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, cnt, T, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD));
    }
    bd->mean = ep_malloc(n * sizeof *bd->mean);
    prune_mean_writers_finish(g, &m->cfg, T, sum, cnt, bd->mean);
    free(sum);
    free(cnt);
  }
}

void baseline_data_free(ep_baseline_data *bd) {
  if (bd->ws) bd->be->destroy(bd->ws);
  if (bd->batch) prune_batch_free(bd->batch);
  free(bd->batch);
  free(bd->mean);
  memset(bd, 0, sizeof *bd);
}

double baseline_loss(ep_baseline_data *bd, const double *z, double *dz) {
  const int64_t E = bd->g->n_edges;
  double *part = dz ? ep_malloc((size_t)E * sizeof *part) : NULL;
  /* [0] sum over this rank's examples of n * loss, then the gradient sums */
  double *acc = ep_calloc((size_t)(dz ? E : 0) + 1, sizeof *acc);
  int64_t *idx = ep_malloc((size_t)bd->B * sizeof *idx);
  for (int64_t k = ep_rank; k < bd->n_batches; k += ep_size) {
    int64_t first, rows = batch_rows(bd, k, &first);
    /* a rank holding one batch prepares it once (ACDC evaluates many masks on it) */
    if (bd->prepared != k) {
      for (int64_t i = 0; i < rows; i++)
        idx[i] = first + i;
      ep_batch_buf *bb = bd->batch;
      prune_batch_gather(bb, bd->d, idx, (int)rows);
      bd->be->prepare(bd->ws, &bb->b, bd->mean);
      bd->prepared = k;
    }
    double l = bd->be->faith(bd->ws, z, NULL, part, NULL, NULL);
    acc[0] += l * (double)rows;
    if (dz)
      for (int64_t e = 0; e < E; e++)
        acc[1 + e] += part[e] * (double)rows;
  }
  if (mpi_many())
    EP_CHECK_MPI(
        MPI_Allreduce(MPI_IN_PLACE, acc, (int)((dz ? E : 0) + 1), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
  const double n = (double)bd->d->n;
  if (dz)
    for (int64_t e = 0; e < E; e++)
      dz[e] = acc[1 + e] / n;
  double loss = acc[0] / n;
  bd->evaluations++;
  free(part);
  free(acc);
  free(idx);
  return loss;
}

void baseline_circuit(const ep_graph *g, ep_baseline_method method, const double *scores, const uint8_t *kept,
                      double edge_sparsity, ep_circuit *c) {
  EP_CHECK((scores != NULL) != (kept != NULL), "baseline_circuit: give scores or a kept set, not both");
  const int64_t E = g->n_edges;
  /* The names, nodes (all kept, no node masks) and graph fields of a circuit file come
   * from the common extractor; the edge fields are then replaced by the baseline's. */
  float *zero = ep_calloc((size_t)E + 1, sizeof *zero);
  ep_extract_options o;
  extract_options_default(&o);
  o.edge_sparsity = 0;
  extract_circuit(g, zero, NULL, &o, c);
  free(zero);
  for (int64_t e = 0; e < E; e++) {
    double v = scores ? scores[e] : kept[e];
    if (!isfinite(v)) {
      int w, r;
      graph_edge_ends(g, e, &w, &r);
      ep_fatal("%s: edge %s -> %s has a non-finite score (%g)", baseline_method_name(method),
               g->writers[w].name, g->readers[r].name, v);
    }
    c->edge_log_alpha[e] = (float)v;
    c->edge_value[e] = (float)fabs(v);
  }
  if (scores) {
    if (!(edge_sparsity >= 0 && edge_sparsity <= 1))
      ep_fatal("edge sparsity %g is outside [0, 1]", edge_sparsity);
    c->requested_edge_sparsity = edge_sparsity;
    c->edge_threshold = extract_threshold_count(c->edge_value, E, edge_sparsity);
  } else {
    c->edge_threshold = 0.5;
  }
  c->n_kept_edges = 0;
  for (int64_t e = 0; e < E; e++) {
    c->edge_kept[e] = c->edge_value[e] > (float)c->edge_threshold;
    c->n_kept_edges += c->edge_kept[e];
  }
  c->edge_sparsity = E ? 1.0 - (double)c->n_kept_edges / (double)E : 0.0;
  if (!scores) c->requested_edge_sparsity = c->edge_sparsity;
  /* hard-concrete quantities have no meaning here */
  c->expected_edge_sparsity = c->edge_sparsity;
  free(c->method);
  c->method = ep_strdup(baseline_method_name(method));
}
