/* prune_step.c — hard-concrete masks, sparsity regulariser, schedules and AdamW (prune.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "edgeprune/core.h"
#include "edgeprune/prune.h"
#include "edgeprune/rng.h"

void prune_params_init(ep_mask_params *p, int64_t n_edges, int n_nodes, uint64_t seed) {
  prune_params_init_normal(p, n_edges, n_nodes, seed, EP_HC_INIT_MEAN, EP_HC_INIT_STD);
}

void prune_params_init_normal(ep_mask_params *p, int64_t n_edges, int n_nodes, uint64_t seed, float mean,
                              float std) {
  memset(p, 0, sizeof *p);
  p->n_edges = n_edges;
  p->n_nodes = n_nodes;
  p->n = n_edges + n_nodes + 4;
  p->theta = ep_calloc((size_t)p->n, sizeof *p->theta);
  p->la_edge = p->theta;
  p->la_node = p->theta + n_edges;
  p->lam_edge = p->theta + n_edges + n_nodes;
  p->lam_node = p->lam_edge + 2;
  /* edges use counters [0, E), nodes [E, E+Nn) so the two never share a draw */
  for (int64_t i = 0; i < n_edges + n_nodes; i++)
    p->theta[i] = (double)mean + (double)std * ep_rng_normal(seed, EP_RNG_STREAM_LOGALPHA, (uint64_t)i, 0);
}

void prune_params_free(ep_mask_params *p) {
  free(p->theta);
  memset(p, 0, sizeof *p);
}

double prune_hc_noise(uint64_t seed, uint32_t stream, int64_t step, int64_t index) {
  return hc_train_noise(seed, stream, step, index);
}

double prune_hc_sample(double log_alpha, double u, double *dz_dla) {
  return hc_train_sample(log_alpha, u, dz_dla);
}

void prune_step_out_init(ep_step_out *o, const ep_mask_params *p) {
  memset(o, 0, sizeof *o);
  size_t E = (size_t)p->n_edges, Nn = (size_t)p->n_nodes;
  o->u_edge = ep_calloc(E, sizeof(double));
  o->z_edge = ep_calloc(E, sizeof(double));
  /* [faith slot, dz_edge, dz_node] in one block: one all-reduce per data-parallel step */
  o->reduce = ep_calloc(1 + E + Nn, sizeof(double));
  o->n_reduce = 1 + E + Nn;
  o->dz_edge = o->reduce + 1;
  o->dzdla_edge = ep_calloc(E, sizeof(double));
  if (Nn) {
    o->dzdla_node = ep_calloc(Nn, sizeof(double));
    o->u_node = ep_calloc(Nn, sizeof(double));
    o->z_node = ep_calloc(Nn, sizeof(double));
    o->dz_node = o->reduce + 1 + E;
  }
  o->grad = ep_calloc((size_t)p->n, sizeof(double));
}

void prune_step_out_free(ep_step_out *o) {
  free(o->u_edge);
  free(o->z_edge);
  free(o->reduce);
  free(o->u_node);
  free(o->z_node);
  free(o->grad);
  free(o->dzdla_edge);
  free(o->dzdla_node);
  memset(o, 0, sizeof *o);
}

void prune_sample_masks(const ep_mask_params *p, uint64_t seed, int64_t step, ep_step_out *o) {
  for (int64_t e = 0; e < p->n_edges; e++)
    o->u_edge[e] = prune_hc_noise(seed, EP_RNG_STREAM_EDGE_NOISE, step, e);
  for (int i = 0; i < p->n_nodes; i++)
    o->u_node[i] = prune_hc_noise(seed, EP_RNG_STREAM_NODE_NOISE, step, i);
}

/* Regulariser of one mask group: sets value, sparsity, lambda gradients; returns
 * d(reg)/dz (the same for every mask of the group). */
static double reg_group(const double *z, int64_t n, const double *lam, double t, double *reg, double *s_out,
                        double *g_lam) {
  double sum = 0;
  for (int64_t i = 0; i < n; i++)
    sum += z[i];
  double s = n ? 1.0 - sum / (double)n : 0;
  double d = s - t;
  *s_out = s;
  *reg = lam[0] * d + lam[1] * d * d;
  g_lam[0] = d;
  g_lam[1] = d * d;
  return n ? -(lam[0] + 2 * lam[1] * d) / (double)n : 0;
}

void prune_hc_masks(const ep_mask_params *p, ep_step_out *o) {
  for (int64_t e = 0; e < p->n_edges; e++)
    o->z_edge[e] = prune_hc_sample(p->la_edge[e], o->u_edge[e], &o->dzdla_edge[e]);
  for (int i = 0; i < p->n_nodes; i++)
    o->z_node[i] = prune_hc_sample(p->la_node[i], o->u_node[i], &o->dzdla_node[i]);
}

void prune_step_faith(const ep_backend_ops *be, void *ws, const ep_mask_params *p, ep_step_out *o) {
  const int Nn = p->n_nodes;
  prune_hc_masks(p, o);
  o->faith = be->faith(ws, o->z_edge, Nn ? o->z_node : NULL, o->dz_edge, Nn ? o->dz_node : NULL, NULL);
}

void prune_step_sample_faith(const ep_backend_ops *be, void *ws, const ep_mask_params *p, uint64_t seed,
                             int64_t step, ep_step_out *o) {
  if (!be->faith_sampled) {
    prune_sample_masks(p, seed, step, o);
    prune_step_faith(be, ws, p, o);
    return;
  }
  const int Nn = p->n_nodes;
  o->faith = be->faith_sampled(ws, seed, step, p->la_edge, Nn ? p->la_node : NULL, o->z_edge, o->dzdla_edge,
                               Nn ? o->z_node : NULL, Nn ? o->dzdla_node : NULL, o->dz_edge,
                               Nn ? o->dz_node : NULL);
}

void prune_step_sample_faith_start(const ep_backend_ops *be, void *ws, const ep_mask_params *p, uint64_t seed,
                                   int64_t step) {
  EP_CHECK(be->faith_sampled_start && be->faith_sampled_end, "backend %s cannot queue a step", be->name);
  be->faith_sampled_start(ws, seed, step, p->la_edge, p->n_nodes ? p->la_node : NULL);
}

void prune_step_sample_faith_end(const ep_backend_ops *be, void *ws, const ep_mask_params *p, ep_step_out *o) {
  const int Nn = p->n_nodes;
  o->faith = be->faith_sampled_end(ws, o->z_edge, o->dzdla_edge, Nn ? o->z_node : NULL, Nn ? o->dzdla_node : NULL,
                                   o->dz_edge, Nn ? o->dz_node : NULL);
}

double prune_step_finish(const ep_mask_params *p, const ep_step_targets *t, ep_step_out *o) {
  const int64_t E = p->n_edges;
  const int Nn = p->n_nodes;
  double *g = o->grad;
  double gz_e = reg_group(o->z_edge, E, p->lam_edge, t->t_edge, &o->reg_edge, &o->s_edge, g + E + Nn);
  for (int64_t e = 0; e < E; e++)
    g[e] = (o->dz_edge[e] + gz_e) * o->dzdla_edge[e];
  double gz_n = 0;
  o->reg_node = 0;
  o->s_node = 0;
  if (Nn) {
    gz_n = reg_group(o->z_node, Nn, p->lam_node, t->t_node, &o->reg_node, &o->s_node, g + E + Nn + 2);
    if (!t->node_loss) {
      gz_n = 0;
      o->reg_node = 0;
      g[E + Nn + 2] = g[E + Nn + 3] = 0;
    }
    for (int i = 0; i < Nn; i++)
      g[E + i] = (o->dz_node[i] + gz_n) * o->dzdla_node[i];
  } else {
    g[E + 2] = g[E + 3] = 0;
  }
  o->total = o->faith + o->reg_edge + o->reg_node;
  return o->total;
}

double prune_step_given_masks(const ep_backend_ops *be, void *ws, const ep_mask_params *p,
                              const ep_step_targets *t, ep_step_out *o) {
  prune_step_faith(be, ws, p, o);
  return prune_step_finish(p, t, o);
}

double prune_step(const ep_backend_ops *be, void *ws, const ep_mask_params *p, uint64_t seed, int64_t step,
                  const ep_step_targets *t, ep_step_out *o) {
  prune_sample_masks(p, seed, step, o);
  return prune_step_given_masks(be, ws, p, t, o);
}

double prune_target(double start, double target, int64_t step, int64_t warmup, int log_schedule) {
  if (warmup <= 0 || step >= warmup) return target;
  double f = (double)step / (double)warmup;
  if (!log_schedule) return start + (target - start) * f;
  EP_CHECK(start < 1 && target < 1, "log sparsity schedule needs start and target below 1");
  return 1.0 - exp(log(1.0 - start) + (log(1.0 - target) - log(1.0 - start)) * f);
}

double prune_lr_factor(int64_t step, int64_t warmup, int64_t total) {
  if (step < warmup) return (double)step / (double)warmup;
  if (total <= warmup) return 0;
  double f = (double)(total - step) / (double)(total - warmup);
  return f > 0 ? f : 0;
}

void prune_adamw_init(ep_adamw *o, const ep_mask_params *p, const double lr[4]) {
  memset(o, 0, sizeof *o);
  for (int i = 0; i < 4; i++)
    o->lr[i] = lr[i];
  o->beta1 = 0.9;
  o->beta2 = 0.999;
  o->eps = 1e-8;
  o->weight_decay = 0.01;
  o->m = ep_calloc((size_t)p->n, sizeof *o->m);
  o->v = ep_calloc((size_t)p->n, sizeof *o->v);
}

void prune_adamw_free(ep_adamw *o) {
  free(o->m);
  free(o->v);
  memset(o, 0, sizeof *o);
}

/* AdamW on theta[i0, i1) with learning rate lr (torch.optim.AdamW's order of operations). */
static void adamw_range(ep_adamw *o, double *restrict theta, const double *restrict g, int64_t i0, int64_t i1,
                        double lr, double bc1, double bc2) {
  double *restrict m = o->m, *restrict v = o->v;
  const double b1 = o->beta1, b2 = o->beta2, wd = o->weight_decay, eps = o->eps;
  for (int64_t i = i0; i < i1; i++) {
    theta[i] -= lr * wd * theta[i];
    m[i] = b1 * m[i] + (1 - b1) * g[i];
    v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
    theta[i] -= lr * (m[i] / bc1) / (sqrt(v[i] / bc2) + eps);
  }
}

double prune_adamw_step(ep_adamw *o, ep_mask_params *p, const double *grad, double max_norm,
                        double lr_factor) {
  const int64_t E = p->n_edges, Nn = p->n_nodes, n = p->n;
  double *g = ep_malloc((size_t)n * sizeof *g);
  double ss = 0;
  for (int64_t i = 0; i < n; i++) {
    g[i] = i >= E + Nn ? -grad[i] : grad[i]; /* lambdas: gradient ascent */
    ss += g[i] * g[i];
  }
  double norm = sqrt(ss);
  if (max_norm > 0 && norm > max_norm) {
    double c = max_norm / (norm + 1e-6); /* as torch.nn.utils.clip_grad_norm_ */
    for (int64_t i = 0; i < n; i++)
      g[i] *= c;
  }
  o->t++;
  const double bc1 = 1 - pow(o->beta1, (double)o->t), bc2 = 1 - pow(o->beta2, (double)o->t);
  /* one loop per group (edge and node log-alphas, their lambdas): no branch in the
   * element loop, which the compiler can then vectorise (same operations per element) */
  const int64_t end[4] = {E, E + Nn, E + Nn + 2, n};
  for (int grp = 0; grp < 4; grp++)
    adamw_range(o, p->theta, g, grp ? end[grp - 1] : 0, end[grp], o->lr[grp] * lr_factor, bc1, bc2);
  free(g);
  return norm;
}
