/* tracr_common.h — the Tracr reverse / xproportion tasks on their whole input space,
 * shared by the ground-truth tool (tracr_truth) and the recovery test.
 *
 * A task is one of the two shipped Tracr models with every input of the paper's length:
 *   reverse:     "BOS t1 t2 t3",    t_i in {1, 2, 3}         (27 inputs)
 *   xproportion: "BOS t1 t2 t3 t4", t_i in {a, b, c, x}      (256 inputs)
 * The outputs compared are those at every non-BOS position (the datasets' loss
 * positions): reverse's 3 logits, xproportion's numeric output. Circuits are judged
 * under zero ablation with embedding nodes on and no node masks (DESIGN section 1). */
#pragma once

#include <stdint.h>

#include "edgeprune/backend.h"
#include "edgeprune/graph.h"
#include "edgeprune/model.h"

typedef struct {
  int xprop; /* 0: reverse, 1: xproportion */
  ep_model m;
  ep_graph g;                              /* embedding nodes on */
  int L;                                   /* input tokens after BOS */
  int n_sym;                               /* input alphabet size */
  int sym_id[4];                           /* symbol -> token id */
  int out_of_sym[4];                       /* reverse: symbol -> output row (Tracr's sorted int tokens) */
  int B, T;                                /* every input; T = L + 1 */
  int32_t *tokens;                         /* [B, T] */
  int32_t *length, *loss_start, *loss_end; /* [B] */
  int64_t P;                               /* loss positions = B * L */
  int Vo;
  const ep_backend_ops *be;
  void *ws;
  float *full; /* [P, Vo] full-model outputs */
} tracr_task;

/* Load model `config_path` (a Tracr *.config.json) for task "reverse" or "xproportion"
 * and prepare the backend (zero ablation, given precision) on every input. */
void tracr_task_init(tracr_task *t, const char *task, const char *config_path, ep_precision prec);
void tracr_task_free(tracr_task *t);

/* Outputs of the circuit z_edge[E] on every input into out[P, Vo]; returns the largest
 * |out - full| over all loss positions and outputs. */
double tracr_task_run(tracr_task *t, const double *z_edge, float *out);

/* Reverse: inputs (of B) whose argmax at some non-BOS position is not the reversed
 * token. xproportion: inputs where some output differs from the fraction of x among
 * t1..ti by more than tol. */
int tracr_task_wrong(const tracr_task *t, const float *out, double tol);

/* Edge index of "writer reader" names, or -1. */
int64_t tracr_edge_by_names(const ep_graph *g, const char *writer, const char *reader);

/* Read an edges.json circuit ([[writer, reader], ...]) into kept[E] (0/1); returns the
 * number of edges. Fatal (naming the file) on malformed input or unknown names. */
int64_t tracr_read_edges_json(const ep_graph *g, const char *path, uint8_t *kept);
