/* test_scores.c — EAP, EAP-IG and ACDC on tiny random models (fp64 CPU backend).
 *
 * The data are 7 examples in batches of 3 (3 + 3 + 1), so the per-batch weighting of
 * losses and gradients is exercised.
 *  - EAP scores are the mean of the backend's dz at z = 1 over the examples; with the
 *    faithfulness losses (minimal at z = 1) they vanish, as does the central difference
 *    of L in z_e there; EAP-IG with m = 1 is EAP bit for bit.
 *  - EAP-IG with m = 2 equals the average of central finite differences of L(z) in z_e
 *    at z = 1/2 and z = 1 for sampled edges (the path gradient is what it claims).
 *  - Completeness: |sum_e score_e - (L(1) - L(0))| shrinks as m grows (1, 4, 16, 64)
 *    and is below 5% of |L(1) - L(0)| at m = 64, for interchange and mean ablation on a
 *    GPT-2-shaped model and zero ablation on a Tracr-shaped one (no LayerNorm); with
 *    zero ablation and LayerNorm the straight path is flat and the scores stay ~0.
 *  - ACDC: deterministic; tau = 0 keeps a circuit whose loss does not exceed the full
 *    model's by more than rounding and removing any kept edge raises L by more than tau;
 *    a huge tau removes every edge; the returned loss is L of the kept set. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "edgeprune/baselines.h"
#include "edgeprune/core.h"
#include "edgeprune/dataset.h"
#include "engine/fixture.h"
#include "test_util.h"

static void make_data(ep_dataset *d, int V, uint64_t seed) {
  const int N = 7, T = 6;
  fx_batch f;
  fx_batch_make(&f, N, T, V, 2, seed);
  dataset_alloc(d, N, T);
  memcpy(d->clean, f.clean, (size_t)N * T * sizeof(int32_t));
  memcpy(d->corrupted, f.corrupted, (size_t)N * T * sizeof(int32_t));
  memcpy(d->length, f.len, (size_t)N * sizeof(int32_t));
  memcpy(d->loss_start, f.ls, (size_t)N * sizeof(int32_t));
  memcpy(d->loss_end, f.le, (size_t)N * sizeof(int32_t));
  fx_batch_free(&f);
}

static void config(ep_prune_config *c, ep_ablation abl, ep_loss_kind loss) {
  prune_config_defaults(c);
  c->batch_size = 3;
  c->ablation = abl;
  c->loss = loss;
}

static double completeness_error(ep_baseline_data *bd, int m, double *scores, double *gap) {
  double ends[2];
  baseline_eap_scores(bd, m, scores, ends);
  double s = 0;
  for (int64_t e = 0; e < bd->g->n_edges; e++)
    s += scores[e];
  *gap = ends[1] - ends[0];
  return fabs(s - *gap);
}

static void check_eap(const char *label, ep_model *m, ep_ablation abl, ep_loss_kind loss) {
  ep_graph g;
  graph_init(&g, &m->cfg, 1);
  ep_dataset d;
  make_data(&d, m->cfg.vocab, 5);
  ep_prune_config c;
  config(&c, abl, loss);
  ep_baseline_data bd;
  baseline_data_init(&bd, &c, m, &g, &d, EP_PREC_F64);
  const int64_t E = g.n_edges;
  double *s1 = ep_malloc((size_t)E * sizeof *s1), *s2 = ep_malloc((size_t)E * sizeof *s2);
  double *z = ep_malloc((size_t)E * sizeof *z), *dz = ep_malloc((size_t)E * sizeof *dz);
  double *ref = ep_calloc((size_t)E, sizeof *ref);

  /* EAP = example-weighted mean of the backend's dz at z = 1, batch by batch */
  baseline_eap_scores(&bd, 1, s1, NULL);
  {
    const ep_backend_ops *be = backend_cpu();
    ep_engine_opts eo = {loss, abl, 0, EP_PREC_F64};
    void *ws = be->create(m, &g, &eo, 3, d.max_len);
    for (int64_t e = 0; e < E; e++)
      z[e] = 1;
    ep_batch_buf bb = {0};
    for (int64_t first = 0; first < d.n; first += 3) {
      int n = (int)(d.n - first < 3 ? d.n - first : 3);
      int64_t idx[3] = {first, first + 1, first + 2};
      prune_batch_gather(&bb, &d, idx, n);
      be->prepare(ws, &bb.b, bd.mean);
      be->faith(ws, z, NULL, dz, NULL, NULL);
      for (int64_t e = 0; e < E; e++)
        ref[e] += dz[e] * n / (double)d.n;
    }
    prune_batch_free(&bb);
    be->destroy(ws);
  }
  double worst = 0, big = 0;
  for (int64_t e = 0; e < E; e++) {
    worst = fmax(worst, fabs(s1[e] - ref[e]));
    big = fmax(big, fabs(s1[e]));
  }
  T_CHECK(worst <= 1e-15, "%s: EAP differs from the batch-weighted backend dz by %g", label, worst);
  /* a faithfulness loss is minimal at z = 1: EAP's scores vanish (to rounding) */
  T_CHECK(big <= 1e-9, "%s: EAP scores should vanish at the loss minimum, largest %g", label, big);

  /* ... as does the central difference of L in z_e at z = 1 */
  /* tolerance: rounding and the h^2 term, both scaling with the size of L */
  for (int64_t j = 0; j < E; j++)
    z[j] = 0;
  const double fd1_tol = 1e-9 * (1 + baseline_loss(&bd, z, NULL));
  double fd1 = 0;
  for (int64_t e = 0; e < E; e += E / 25 + 1) {
    for (int64_t j = 0; j < E; j++)
      z[j] = 1;
    z[e] = 1 + 1e-6;
    double lp = baseline_loss(&bd, z, NULL);
    z[e] = 1 - 1e-6;
    double lm = baseline_loss(&bd, z, NULL);
    fd1 = fmax(fd1, fabs((lp - lm) / 2e-6 - s1[e]));
  }
  T_CHECK(fd1 <= fd1_tol, "%s: EAP vs central differences at z = 1: worst %g (tolerance %g)", label, fd1,
          fd1_tol);

  /* EAP-IG m = 1 is EAP exactly */
  baseline_eap_scores(&bd, 1, s2, NULL);
  int same = 1;
  for (int64_t e = 0; e < E; e++)
    same &= s1[e] == s2[e];
  T_CHECK(same, "%s: EAP-IG with m = 1 differs from EAP", label);

  /* EAP-IG m = 2 against central differences at z = 1/2 and z = 1 */
  baseline_eap_scores(&bd, 2, s2, NULL);
  const double h = 1e-5;
  double fd_worst = 0, gmax = 0;
  for (int64_t e = 0; e < E; e++)
    gmax = fmax(gmax, fabs(s2[e]));
  int checked = 0;
  for (int64_t e = 0; e < E; e += E / 25 + 1) {
    double fd = 0;
    for (int k = 1; k <= 2; k++) {
      for (int64_t j = 0; j < E; j++)
        z[j] = k / 2.0;
      z[e] = k / 2.0 + h;
      double lp = baseline_loss(&bd, z, NULL);
      z[e] = k / 2.0 - h;
      double lm = baseline_loss(&bd, z, NULL);
      fd += (lp - lm) / (2 * h) / 2;
    }
    fd_worst = fmax(fd_worst, fabs(fd - s2[e]));
    checked++;
  }
  T_CHECK(gmax > 1e-3, "%s: EAP-IG (m = 2) scores are all ~0 (largest %g)", label, gmax);
  T_CHECK(fd_worst <= 1e-6 * gmax + 1e-9,
          "%s: EAP-IG m = 2 vs finite differences: worst %g (largest score %g)", label, fd_worst, gmax);
  printf("%s: EAP vs differences at z = 1: worst %.2e; EAP-IG m = 2 vs differences: %d edges, worst %.2e of "
         "%.3g\n",
         label, fd1, checked, fd_worst, gmax);

  /* completeness improves with m */
  int ms[4] = {1, 4, 16, 64};
  double err[4], gap = 0;
  for (int i = 0; i < 4; i++)
    err[i] = completeness_error(&bd, ms[i], s2, &gap);
  printf("%s: L(1) - L(0) = %.6g; |sum - gap| for m = 1, 4, 16, 64: %.3g %.3g %.3g %.3g\n", label, gap,
         err[0], err[1], err[2], err[3]);
  T_CHECK(fabs(gap) > 1e-3, "%s: L(0) and L(1) should differ (gap %g)", label, gap);
  T_CHECK(err[1] < err[0] && err[2] < err[1] && err[3] < err[2],
          "%s: completeness error does not shrink with m", label);
  T_CHECK(err[3] < 0.05 * fabs(gap), "%s: completeness error at m = 64 is %g of gap %g", label, err[3], gap);

  free(s1);
  free(s2);
  free(z);
  free(dz);
  free(ref);
  baseline_data_free(&bd);
  dataset_free(&d);
  graph_free(&g);
}

/* Zero ablation scales every reader input of a LayerNorm model by alpha along the path,
 * and LayerNorm undoes the scale: L is flat on (0, 1] and jumps at 0, so EAP-IG's scores
 * stay ~0 however large m is (docs/baselines.md). */
static void check_ln_zero(ep_model *m) {
  ep_graph g;
  graph_init(&g, &m->cfg, 1);
  ep_dataset d;
  make_data(&d, m->cfg.vocab, 5);
  ep_prune_config c;
  config(&c, EP_ABLATE_ZERO, EP_LOSS_KL_SUM);
  ep_baseline_data bd;
  baseline_data_init(&bd, &c, m, &g, &d, EP_PREC_F64);
  double *s = ep_malloc((size_t)g.n_edges * sizeof *s), gap = 0;
  double err = completeness_error(&bd, 16, s, &gap);
  double sum = 0;
  for (int64_t e = 0; e < g.n_edges; e++)
    sum += s[e];
  printf("gpt2 zero kl_sum: L(1) - L(0) = %.6g, EAP-IG (m = 16) sum of scores %.3g\n", gap, sum);
  T_CHECK(fabs(gap) > 1e-2 && fabs(sum) < 1e-3 * fabs(gap) && err > 0.99 * fabs(gap),
          "LayerNorm + zero ablation: expected a flat path (sum %g, gap %g)", sum, gap);
  free(s);
  baseline_data_free(&bd);
  dataset_free(&d);
  graph_free(&g);
}

static void check_acdc(ep_model *m) {
  ep_graph g;
  graph_init(&g, &m->cfg, 0);
  ep_dataset d;
  make_data(&d, m->cfg.vocab, 9);
  ep_prune_config c;
  config(&c, EP_ABLATE_INTERCHANGE, EP_LOSS_KL);
  ep_baseline_data bd;
  baseline_data_init(&bd, &c, m, &g, &d, EP_PREC_F64);
  const int64_t E = g.n_edges;
  uint8_t *k1 = ep_malloc((size_t)E), *k2 = ep_malloc((size_t)E);
  double *z = ep_malloc((size_t)E * sizeof *z);
  /* a tau that keeps some edges and removes others on this model */
  const double tau = 1e-3;
  double l1 = baseline_acdc(&bd, tau, 0, k1);
  T_CHECK(bd.evaluations == E + 1, "acdc: %lld evaluations for %lld edges", (long long)bd.evaluations,
          (long long)E);
  double l2 = baseline_acdc(&bd, tau, 0, k2);
  int64_t n_kept = 0, diff = 0;
  for (int64_t e = 0; e < E; e++) {
    n_kept += k1[e];
    diff += k1[e] != k2[e];
    z[e] = k1[e];
  }
  T_CHECK(diff == 0 && l1 == l2, "acdc: not deterministic (%lld edges differ)", (long long)diff);
  T_CHECK(n_kept > 0 && n_kept < E, "acdc tau %g: kept %lld of %lld edges (expected some of each)", tau,
          (long long)n_kept, (long long)E);
  double lk = baseline_loss(&bd, z, NULL);
  T_CLOSE(l1, lk, 1e-14, 1e-12, "acdc: returned loss vs L(kept)");
  /* each removal added at most tau: the final loss is within E * tau of L(1) = 0 */
  T_CHECK(l1 <= (double)(E - n_kept) * tau + 1e-12, "acdc: loss %g after %lld removals of at most %g", l1,
          (long long)(E - n_kept), tau);
  /* the last edge visited that was kept: removing it now costs more than tau (it did when visited and
   * nothing was removed after it) */
  int64_t last_kept = -1;
  for (int r = 0; r < g.n_readers && last_kept < 0; r++)
    for (int w = 0; w < g.readers[r].n_in; w++)
      if (k1[graph_edge_index(&g, w, r)]) {
        last_kept = graph_edge_index(&g, w, r);
        break;
      }
  if (last_kept >= 0) {
    z[last_kept] = 0;
    double l = baseline_loss(&bd, z, NULL);
    T_CHECK(l - l1 > tau, "acdc: removing the last kept edge visited raises L by only %g", l - l1);
    z[last_kept] = 1;
  }
  /* a huge tau removes everything */
  baseline_acdc(&bd, 1e300, 0, k2);
  int64_t left = 0;
  for (int64_t e = 0; e < E; e++)
    left += k2[e];
  T_CHECK(left == 0, "acdc with a huge tau kept %lld edges", (long long)left);
  printf("acdc: tau %g keeps %lld of %lld edges, loss %.3g\n", tau, (long long)n_kept, (long long)E, l1);

  /* circuit of a score vector: top-k by |score| */
  double *sc = ep_malloc((size_t)E * sizeof *sc);
  for (int64_t e = 0; e < E; e++)
    sc[e] = (e % 2 ? -1.0 : 1.0) * (double)((e * 37) % E);
  ep_circuit circ;
  baseline_circuit(&g, EP_BASELINE_EAP_IG, sc, NULL, 0.75, &circ);
  int64_t want = (int64_t)llround(0.25 * (double)E), bad = 0;
  for (int64_t e = 0; e < E; e++)
    bad += circ.edge_kept[e] != (fabs(sc[e]) > (double)(E - want - 1) + 0.5);
  T_CHECK(circ.n_kept_edges == want && bad == 0, "baseline_circuit: kept %lld (want %lld), %lld wrong",
          (long long)circ.n_kept_edges, (long long)want, (long long)bad);
  T_CHECK(!strcmp(circ.method, "eap-ig") && circ.n_kept_nodes == g.n_writers, "baseline_circuit: method %s",
          circ.method);
  circuit_free(&circ);
  free(sc);
  free(k1);
  free(k2);
  free(z);
  baseline_data_free(&bd);
  dataset_free(&d);
  graph_free(&g);
}

int main(void) {
  T_CHECK(baseline_method_parse("eap") == EP_BASELINE_EAP &&
              baseline_method_parse("eap-ig") == EP_BASELINE_EAP_IG &&
              baseline_method_parse("acdc") == EP_BASELINE_ACDC && baseline_method_parse("eapig") == -1,
          "method names");
  ep_model m;
  fx_gpt2_tiny(&m, 2, 2, 8, 11, 21);
  check_eap("gpt2 interchange kl", &m, EP_ABLATE_INTERCHANGE, EP_LOSS_KL);
  check_ln_zero(&m);
  check_eap("gpt2 mean kl", &m, EP_ABLATE_MEAN, EP_LOSS_KL);
  check_acdc(&m);
  model_free(&m);
  fx_tracr_tiny(&m, 4);
  check_eap("tracr zero mse", &m, EP_ABLATE_ZERO, EP_LOSS_MSE);
  model_free(&m);
  return t_done();
}
