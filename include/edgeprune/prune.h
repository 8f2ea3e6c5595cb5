/* prune.h — Edge Pruning training state and one training step, independent of the backend.
 *
 * All trainable values live in one double array theta (E = edges, Nn = nodes, 0 when
 * node masks are off):
 *   theta[0 .. E)            edge log_alpha
 *   theta[E .. E+Nn)         node log_alpha
 *   theta[E+Nn .. E+Nn+2)    edge lambda1, lambda2   (maximised)
 *   theta[E+Nn+2 .. E+Nn+4)  node lambda1, lambda2   (maximised)
 * A step samples hard-concrete masks with the counter RNG keyed by (seed, step, index),
 * asks the backend for the faithfulness loss and d/dz, and adds the sparsity
 * regulariser lambda1 (s - t) + lambda2 (s - t)^2 (DESIGN section 1). */
#pragma once

#include <stdint.h>

#include "edgeprune/backend.h"
#include "edgeprune/hardconcrete.h"

/* Hard-concrete constants come from hardconcrete.h (one definition for training and
 * extraction); the training step evaluates the same formulas in double so that gradient
 * checks are meaningful. */
#define EP_PRUNE_HC_L ((double)EP_HC_LEFT)
#define EP_PRUNE_HC_R ((double)EP_HC_RIGHT)
#define EP_PRUNE_HC_BETA ((double)EP_HC_BETA)

typedef struct {
  int64_t n_edges;
  int n_nodes;      /* writers with a node mask; 0 when node masks are off */
  int64_t n;        /* E + Nn + 4 */
  double *theta;    /* [n] */
  double *la_edge;  /* = theta */
  double *la_node;  /* = theta + E */
  double *lam_edge; /* = theta + E + Nn, [2] */
  double *lam_node; /* = theta + E + Nn + 2, [2] */
} ep_mask_params;

/* log_alpha ~ N(10, 0.01) from stream LOGALPHA keyed by (seed, index), lambdas 0. */
void prune_params_init(ep_mask_params *p, int64_t n_edges, int n_nodes, uint64_t seed);
/* log_alpha ~ N(mean, std) instead (prune.init_log_alpha_mean / _std). mean and std are
 * float, as the reference's fp32 parameters: the defaults 10 and 0.01 then give exactly
 * prune_params_init's values. */
void prune_params_init_normal(ep_mask_params *p, int64_t n_edges, int n_nodes, uint64_t seed, float mean,
                              float std);
void prune_params_free(ep_mask_params *p);

/* Hard-concrete sample for one mask: u in (eps, 1-eps); returns z and (optional) dz/dlog_alpha. */
double prune_hc_sample(double log_alpha, double u, double *dz_dla);
/* The u of mask `index` at `step` for stream EP_RNG_STREAM_EDGE_NOISE / NODE_NOISE. */
double prune_hc_noise(uint64_t seed, uint32_t stream, int64_t step, int64_t index);

typedef struct {
  double t_edge, t_node; /* sparsity targets of this step */
  int node_loss;         /* 1: node regulariser active */
} ep_step_targets;

/* Everything a step produces. Arrays are allocated by prune_step_out_init. */
typedef struct {
  double faith, reg_edge, reg_node, total;
  double s_edge, s_node;             /* sparsity 1 - sum(z)/n of the sampled masks */
  double *u_edge, *z_edge, *dz_edge; /* [E] noise, mask, d(faith)/dz */
  double *u_node, *z_node, *dz_node; /* [Nn] or NULL */
  double *grad;                      /* [n] d(total)/d(theta), lambdas included (not negated) */
  double *dzdla_edge, *dzdla_node;   /* [E], [Nn] dz/dlog_alpha of the sample */
  double *reduce;                    /* [1 + E + Nn]: a slot for faith, then dz_edge and dz_node
                                        (they point into it): what data parallelism sums */
  size_t n_reduce;
} ep_step_out;

void prune_step_out_init(ep_step_out *o, const ep_mask_params *p);
void prune_step_out_free(ep_step_out *o);

/* Draw the noise u of every mask for (seed, step) into o (prune_hc_masks makes z from it). */
void prune_sample_masks(const ep_mask_params *p, uint64_t seed, int64_t step, ep_step_out *o);
/* z and dz/dlog_alpha of every mask from log_alpha and o's noise u (prune_hc_sample). */
void prune_hc_masks(const ep_mask_params *p, ep_step_out *o);
/* One step on a prepared batch: masks, faithfulness loss and gradient, regulariser,
 * total gradient. Returns o->total. */
double prune_step(const ep_backend_ops *be, void *ws, const ep_mask_params *p, uint64_t seed, int64_t step,
                  const ep_step_targets *t, ep_step_out *o);
/* The two halves of a step, for data parallelism (sum the faithfulness parts of the
 * replicas, weighted by their share of the batch, between them):
 * prune_step_faith: z from log_alpha and o's u, o->faith and o->dz_* from the backend;
 * prune_step_finish: regulariser, sparsities and o->grad from o->faith / o->dz_*. */
void prune_step_faith(const ep_backend_ops *be, void *ws, const ep_mask_params *p, ep_step_out *o);
double prune_step_finish(const ep_mask_params *p, const ep_step_targets *t, ep_step_out *o);
/* prune_sample_masks + prune_step_faith for (seed, step) in one call; with a backend that
 * draws the masks itself (be->faith_sampled) on the device, in which case o's noise
 * u_edge / u_node are not filled (the same masks, z and dz/dlog_alpha, come back). */
void prune_step_sample_faith(const ep_backend_ops *be, void *ws, const ep_mask_params *p, uint64_t seed,
                             int64_t step, ep_step_out *o);
/* prune_step_sample_faith in two halves around other host work (be->faith_sampled_start
 * and _end, which must both be set): _start queues the step on the backend's device;
 * a prepare() of the next batch may come between them (backend.h); _end waits for the
 * step and fills o as prune_step_sample_faith does. */
void prune_step_sample_faith_start(const ep_backend_ops *be, void *ws, const ep_mask_params *p, uint64_t seed,
                                   int64_t step);
void prune_step_sample_faith_end(const ep_backend_ops *be, void *ws, const ep_mask_params *p, ep_step_out *o);
/* The same with u already in o: used by gradient checks. */
double prune_step_given_masks(const ep_backend_ops *be, void *ws, const ep_mask_params *p,
                              const ep_step_targets *t, ep_step_out *o);

/* Sparsity target at `step`: ramp from start to target over `warmup` steps, linear or
 * log-linear in (1 - t) (which needs start, target < 1). */
double prune_target(double start, double target, int64_t step, int64_t warmup, int log_schedule);

/* Learning-rate factor: linear warmup over `warmup` steps, then linear decay to 0 at
 * `total` (the Hugging Face linear schedule; `step` = optimizer steps already taken). */
double prune_lr_factor(int64_t step, int64_t warmup, int64_t total);

/* AdamW over theta with four groups (edge log_alpha, node log_alpha, edge lambdas, node
 * lambdas), each with its own learning rate; lambdas ascend. */
typedef struct {
  double lr[4];
  double beta1, beta2, eps, weight_decay;
  int64_t t;     /* steps taken */
  double *m, *v; /* [n] moments */
} ep_adamw;

void prune_adamw_init(ep_adamw *o, const ep_mask_params *p, const double lr[4]);
void prune_adamw_free(ep_adamw *o);
/* Clip the gradient (descent direction after negating the lambdas) to max_norm over all
 * values; returns the norm before clipping. Then one AdamW update with lr * lr_factor. */
double prune_adamw_step(ep_adamw *o, ep_mask_params *p, const double *grad, double max_norm,
                        double lr_factor);
