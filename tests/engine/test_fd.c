/* test_fd.c — finite-difference check of d(total loss)/d(log_alpha) and d/d(lambda).
 *
 * The engine runs in double (the fp64 instantiation of the CPU backend) with fixed u
 * (u depends only on seed, step and index), so a central difference with h = 1e-5 has
 * truncation error ~h^2 * f''' ~ 1e-10 and rounding error ~1e-16/h ~ 1e-11 relative to
 * O(1) gradients: a tolerance of 1e-6 relative (floored at 1e-6 of the largest gradient)
 * leaves four orders of margin while any wrong term (a missed edge, a sign, a factor)
 * shows up at O(1). Masks whose clamp regime changes within +-h are skipped (the
 * function has a kink there). The fp32 build is then compared with the fp64 gradients. */
#include <math.h>
#include <stdio.h>

#include "fixture.h"
#include "test_util.h"

static double max_rel_seen = 0;

static double total_at(const ep_backend_ops *be, void *ws, ep_mask_params *p, const ep_step_targets *t,
                       ep_step_out *o) {
  return prune_step_given_masks(be, ws, p, t, o);
}

static void check_case(const char *label, ep_model *m, int emb, ep_ablation abl, int node_masks,
                       ep_loss_kind loss, int npos) {
  const ep_backend_ops *be = backend_cpu();
  ep_graph g;
  graph_init(&g, &m->cfg, emb);
  fx_batch f;
  fx_batch_make(&f, 3, 6, m->cfg.vocab, npos, 7);
  ep_engine_opts eo = {loss, abl, node_masks, EP_PREC_F64};
  void *ws = be->create(m, &g, &eo, 3, 6);
  float *mean = abl == EP_ABLATE_MEAN ? fx_mean_writers(be, ws, &g, m->cfg.d_model, &f) : NULL;
  be->prepare(ws, &f.b, mean);

  ep_mask_params p;
  prune_params_init(&p, g.n_edges, node_masks ? g.n_writers : 0, 3);
  for (int64_t i = 0; i < g.n_edges + p.n_nodes; i++)
    p.theta[i] = 1.5 * ep_rng_normal(11, 77, (uint64_t)i, 0) + 0.5;
  p.lam_edge[0] = 0.5;
  p.lam_edge[1] = 0.3;
  if (node_masks) {
    p.lam_node[0] = 0.4;
    p.lam_node[1] = 0.2;
  }
  ep_step_targets tg = {0.5, 0.3, 1};
  ep_step_out o, o2;
  prune_step_out_init(&o, &p);
  prune_step_out_init(&o2, &p);
  prune_sample_masks(&p, 5, 2, &o);
  prune_sample_masks(&p, 5, 2, &o2);
  total_at(be, ws, &p, &tg, &o);
  T_CHECK(isfinite(o.total) && o.faith > 0, "%s: loss %g faith %g", label, o.total, o.faith);

  double gmax = 0;
  for (int64_t i = 0; i < p.n; i++)
    gmax = fmax(gmax, fabs(o.grad[i]));
  const double h = 1e-5;
  double worst = 0;
  int checked = 0, skipped = 0;
  int64_t stride = g.n_edges / 30 + 1;
  for (int64_t i = 0; i < p.n; i++) {
    int is_edge = i < g.n_edges, is_lambda = i >= g.n_edges + p.n_nodes;
    if (is_edge && i % stride != 0) continue;
    double u = is_lambda ? 0 : is_edge ? o.u_edge[i] : o.u_node[i - g.n_edges];
    double save = p.theta[i], d1, d2;
    if (!is_lambda) {
      prune_hc_sample(save + h, u, &d1);
      prune_hc_sample(save - h, u, &d2);
      if ((d1 == 0) != (d2 == 0)) {
        skipped++;
        continue;
      }
    }
    p.theta[i] = save + h;
    double fp = total_at(be, ws, &p, &tg, &o2);
    p.theta[i] = save - h;
    double fm = total_at(be, ws, &p, &tg, &o2);
    p.theta[i] = save;
    double fd = (fp - fm) / (2 * h), an = o.grad[i];
    double rel = fabs(fd - an) / fmax(fmax(fabs(an), fabs(fd)), 1e-6 * gmax + 1e-300);
    if (rel > worst) worst = rel;
    T_CHECK(rel < 1e-6, "%s: theta[%lld] analytic %.10g fd %.10g rel %.2e", label, (long long)i, an, fd, rel);
    checked++;
  }
  if (worst > max_rel_seen) max_rel_seen = worst;

  /* fp32 against fp64 on the same masks */
  ep_engine_opts eo32 = eo;
  eo32.precision = EP_PREC_F32;
  void *ws32 = be->create(m, &g, &eo32, 3, 6);
  be->prepare(ws32, &f.b, mean);
  prune_step_given_masks(be, ws32, &p, &tg, &o2);
  double d32 = 0;
  for (int64_t i = 0; i < p.n; i++)
    d32 = fmax(d32, fabs(o2.grad[i] - o.grad[i]));
  T_CHECK(d32 <= 1e-4 * gmax, "%s: fp32 gradient differs from fp64 by %.3g (max |g| %.3g)", label, d32, gmax);
  T_CLOSE(o2.faith, o.faith, 1e-6, 1e-4, "fp32 faithfulness loss");
  printf("%-44s checked %3d skipped %d  max rel err %.2e  fp32 |dg|/max|g| %.2e  loss %.6f\n", label, checked,
         skipped, worst, d32 / gmax, o.faith);

  be->destroy(ws32);
  prune_step_out_free(&o);
  prune_step_out_free(&o2);
  prune_params_free(&p);
  free(mean);
  be->destroy(ws);
  fx_batch_free(&f);
  graph_free(&g);
}

int main(void) {
  ep_model m;
  fx_gpt2_tiny(&m, 2, 2, 16, 30, 42);
  const char *abl_name[] = {"interchange", "zero", "mean"};
  char label[96];
  for (int a = 0; a < 3; a++)
    for (int nm = 0; nm < 2; nm++)
      for (int emb = 0; emb < 2; emb++) {
        snprintf(label, sizeof label, "gpt2 kl %s nodes=%d emb=%d", abl_name[a], nm, emb);
        check_case(label, &m, emb, (ep_ablation)a, nm, EP_LOSS_KL, 2);
      }
  check_case("gpt2 kl_sum interchange nodes=1 emb=1", &m, 1, EP_ABLATE_INTERCHANGE, 1, EP_LOSS_KL_SUM, 3);
  check_case("gpt2 mse interchange nodes=1 emb=0", &m, 0, EP_ABLATE_INTERCHANGE, 1, EP_LOSS_MSE, 2);
  model_free(&m);
  fx_tracr_tiny(&m, 9);
  check_case("tracr position_kl interchange nodes=1 emb=1", &m, 1, EP_ABLATE_INTERCHANGE, 1,
             EP_LOSS_POSITION_KL, 4);
  check_case("tracr mse zero nodes=0 emb=1", &m, 1, EP_ABLATE_ZERO, 0, EP_LOSS_MSE, 3);
  model_free(&m);
  fx_llama_tiny(&m, 17);
  check_case("llama kl interchange nodes=1 emb=1", &m, 1, EP_ABLATE_INTERCHANGE, 1, EP_LOSS_KL, 2);
  check_case("llama kl mean nodes=0 emb=0", &m, 0, EP_ABLATE_MEAN, 0, EP_LOSS_KL, 2);
  model_free(&m);
  printf("max relative error over all cases: %.3e\n", max_rel_seen);
  return t_done();
}
