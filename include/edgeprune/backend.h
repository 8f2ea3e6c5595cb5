/* backend.h — the per-step interface of the Edge Pruning engine.
 *
 * A backend owns a workspace for one model, one graph and batches of at most
 * B_max x T_max tokens. Per batch it is first prepared (clean-run targets at the loss
 * positions, corrupted writer outputs c_w), then asked any number of times for the
 * faithfulness loss of given masks z and its gradient d(loss)/dz. The hard-concrete
 * sampling, sparsity regulariser and optimiser are common code (prune.h) on plain
 * arrays, so a CUDA backend implements exactly these entry points.
 *
 * Plain arrays in, plain arrays out. Mask values and their gradients are double on the
 * host side (33k edges for GPT-2 small: negligible) so a finite-difference check of the
 * double-precision CPU build is meaningful; a backend may compute internally in fp32.
 *
 * Shapes: W = writers, R = readers, E = edges (graph.h); N = B*T token rows; D = d_model;
 * P = total loss positions of the batch (sum over examples of loss_end - loss_start);
 * Vo = vocab_out. Loss-position rows are ordered by example, then position. */
#pragma once

#include <stdint.h>

#include "edgeprune/graph.h"
#include "edgeprune/model.h"

typedef enum { EP_ABLATE_INTERCHANGE = 0, EP_ABLATE_ZERO = 1, EP_ABLATE_MEAN = 2 } ep_ablation;

/* kl:          KL(p_full || p_masked) over Vo, mean over an example's positions, mean over batch.
 * kl_sum:      the same summed over an example's positions, mean over batch.
 * position_kl: per example, KL between softmaxes over its loss positions of output 0 of the
 *              full and of the masked model; mean over batch (numeric Tracr outputs).
 * mse:         mean over an example's positions and Vo outputs of (masked - full)^2; mean
 *              over batch. */
typedef enum { EP_LOSS_KL = 0, EP_LOSS_KL_SUM = 1, EP_LOSS_POSITION_KL = 2, EP_LOSS_MSE = 3 } ep_loss_kind;

typedef enum { EP_PREC_F32 = 0, EP_PREC_F64 = 1 } ep_precision;

typedef struct {
  int B, T;                  /* examples, padded row length */
  const int32_t *clean;      /* [B, T] */
  const int32_t *corrupted;  /* [B, T]; needed for interchange ablation only */
  const int32_t *length;     /* [B] valid tokens per row */
  const int32_t *loss_start; /* [B] loss positions are [loss_start, loss_end) */
  const int32_t *loss_end;   /* [B] */
} ep_batch;

typedef struct {
  ep_loss_kind loss;
  ep_ablation ablation;
  int node_masks;         /* 1: writer (node) masks z_w scale x_w - c_w */
  ep_precision precision; /* CPU backend: fp32 (production) or fp64 (gradient checks) */
} ep_engine_opts;

typedef struct ep_backend_ops {
  const char *name;
  /* Workspace for a model/graph (the graph decides embedding nodes). Weights are read,
   * never written; they must outlive the workspace. */
  void *(*create)(const ep_model *m, const ep_graph *g, const ep_engine_opts *o, int B_max, int T_max);
  void (*destroy)(void *ws);
  /* Plain (unmasked) forward of tokens [B, T]; writes every writer's output to
   * out [W, B*T, D] (embedding writers too when the graph has embedding nodes). Used for
   * the mean-ablation statistics. */
  void (*writer_outputs)(void *ws, const int32_t *tokens, const int32_t *length, int B, int T, float *out);
  /* Per batch: clean full-model outputs at the loss positions and the ablation values c_w
   * (interchange: corrupted run; zero: 0; mean: mean_c [W, T_max, D], T_max as given to
   * create, its first b->T positions broadcast over the batch). Returns P. */
  int64_t (*prepare)(void *ws, const ep_batch *b, const float *mean_c);
  /* Masked forward + faithfulness loss (+ backward when dz_edge != NULL).
   *   z_edge  [E]          edge masks
   *   z_node  [W] or NULL  node masks (NULL: all 1; must be non-NULL iff opts.node_masks)
   *   dz_edge [E] out      d(loss)/dz_edge (overwritten), or NULL for forward only
   *   dz_node [W] out      d(loss)/dz_node, or NULL
   *   out     [P, Vo] out  masked outputs at the loss positions, or NULL
   * Returns the loss. */
  double (*faith)(void *ws, const double *z_edge, const double *z_node, double *dz_edge, double *dz_node,
                  float *out);
  /* The prepared clean full-model outputs at the loss positions, [P, Vo]. */
  void (*full_outputs)(void *ws, float *out);
  /* Optional (NULL: the caller draws the masks on the host): faith with backward, the
   * hard-concrete masks of training step `step` of a run seeded `seed` drawn by the
   * backend itself from the log-alphas la_edge [E] and la_node [W] (NULL iff node masks
   * are off), with hardconcrete.h's hc_train_noise / hc_train_sample, as
   * prune_sample_masks + prune_step_faith draw them on the host. Writes the masks
   * z_edge / z_node and dz/dlog_alpha dzdla_edge / dzdla_node (host arrays, [E] / [W];
   * the node ones NULL iff la_node is), then dz_edge / dz_node as faith. Returns the loss. */
  double (*faith_sampled)(void *ws, uint64_t seed, int64_t step, const double *la_edge, const double *la_node,
                          double *z_edge, double *dzdla_edge, double *z_node, double *dzdla_node,
                          double *dz_edge, double *dz_node);
  /* Optional (NULL when faith_sampled is, or the backend has no use for them):
   * faith_sampled in two halves, so that the host can read and prepare the next batch
   * while the device runs this step. faith_sampled_start queues the step (it has read
   * la_edge / la_node when it returns); a prepare() of the next batch before
   * faith_sampled_end is queued behind the step, which keeps its own batch;
   * faith_sampled_end waits for the step, writes what faith_sampled writes and returns
   * the loss. No other call on ws may come in between. */
  void (*faith_sampled_start)(void *ws, uint64_t seed, int64_t step, const double *la_edge, const double *la_node);
  double (*faith_sampled_end)(void *ws, double *z_edge, double *dzdla_edge, double *z_node, double *dzdla_node,
                              double *dz_edge, double *dz_node);
} ep_backend_ops;

/* The CPU reference backend. */
const ep_backend_ops *backend_cpu(void);

/* Loss functions shared by every backend: value and gradient w.r.t. the masked outputs
 * (double), given full outputs and masked outputs at the loss positions [P, Vo] and the
 * per-example position counts [B]. grad may be NULL. */
double backend_loss(ep_loss_kind kind, int B, const int32_t *n_pos, int Vo, const double *full,
                    const double *masked, double *grad);
