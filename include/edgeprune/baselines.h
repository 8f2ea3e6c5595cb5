/* baselines.h — EAP, EAP-IG and ACDC on the Edge Pruning graph, data and losses.
 *
 * All three drive the per-step backend interface (backend.h): prepare a batch, then ask
 * for the deck's faithfulness loss L(z) of given edge masks z and, where needed, dL/dz.
 * Node masks are not used (edges only); the graph (embedding nodes), the ablation
 * (interchange / zero / mean) and the loss come from the prune configuration (train.h).
 *
 *   EAP     score_e = dL/dz_e at z = 1 (every edge kept), averaged over the examples:
 *           one forward/backward per batch. Since x_w - c_w enters reader r as
 *           z_rw (x_w - c_w), this is the gradient at the reader's input dotted with
 *           (x_w - c_w), the attribution-patching estimate of L(z = 1 - e_e) - L(1),
 *           with the sign flipped: removing e changes L by about -score_e.
 *   EAP-IG  score_e = (1/m) sum_{k=1..m} dL/dz_e at z = (k/m) 1 (all edges on the straight
 *           path from 0 to 1, right Riemann sum), times the path length 1. By completeness
 *           sum_e score_e -> L(1) - L(0) as m grows. m = 1 is EAP.
 *   ACDC    greedy: z = 1; readers from resid_post back to the first layer (reverse
 *           topological order), and within a reader its writers from last to first; for
 *           each edge set z_e = 0 and keep it removed when L(z) - L(current) <= tau.
 *           Deterministic: no sampling, ties broken by the fixed visiting order.
 *
 * Every faithfulness loss of the deck (KL, position KL, MSE to the full model) is
 * minimal, 0, at z = 1, so its gradient there vanishes and EAP's scores are zero up to
 * rounding with these losses (docs/baselines.md); EAP-IG's path avoids that.
 *
 * Scores and losses are means over the examples used. Under MPI the batches are dealt to
 * the ranks round-robin and the losses and gradients are summed over MPI_COMM_WORLD, so
 * every rank gets the same result (up to the reduction order). */
#pragma once

#include <stdint.h>

#include "edgeprune/backend.h"
#include "edgeprune/circuit.h"
#include "edgeprune/dataset.h"
#include "edgeprune/graph.h"
#include "edgeprune/model.h"
#include "edgeprune/train.h"

typedef enum { EP_BASELINE_EAP = 0, EP_BASELINE_EAP_IG = 1, EP_BASELINE_ACDC = 2 } ep_baseline_method;

/* "eap", "eap-ig", "acdc"; baseline_method_parse returns -1 for anything else. */
const char *baseline_method_name(ep_baseline_method m);
int baseline_method_parse(const char *s);

/* The data and backend every method evaluates L(z) with: d's examples in batches of
 * c->batch_size, this rank's share of them, a workspace of the deck's backend with the
 * deck's loss and ablation and no node masks, and the mean-ablation values (mean over d
 * of the corrupted run) when the ablation is mean. The precision applies to the CPU
 * backend (fp64 for gradient checks). Collective over MPI_COMM_WORLD when MPI runs. */
typedef struct {
  const ep_prune_config *c;
  const ep_model *m;
  const ep_graph *g;
  const ep_dataset *d;
  const ep_backend_ops *be;
  void *ws;
  float *mean;         /* [W, T, D] for mean ablation, else NULL */
  int64_t B;           /* examples per batch */
  int64_t n_batches;   /* over all ranks */
  int64_t prepared;    /* index of the batch the workspace holds (-1: none) */
  int64_t evaluations; /* L(z) evaluations so far (each one pass over the data) */
  void *batch;         /* ep_batch_buf */
} ep_baseline_data;

void baseline_data_init(ep_baseline_data *bd, const ep_prune_config *c, const ep_model *m, const ep_graph *g,
                        const ep_dataset *d, ep_precision prec);
void baseline_data_free(ep_baseline_data *bd);

/* L(z) averaged over the examples; dz[E] (or NULL) receives dL/dz averaged the same way.
 * Collective. */
double baseline_loss(ep_baseline_data *bd, const double *z, double *dz);

/* EAP (steps = 1) or EAP-IG (steps = m >= 1): scores[E]. loss_end[2] (or NULL) receives
 * L(z = 0) and L(z = 1) for the completeness check. Collective. */
void baseline_eap_scores(ep_baseline_data *bd, int steps, double *scores, double loss_end[2]);

/* ACDC with threshold tau >= 0: kept[E] (0/1). Returns the final L of the kept set.
 * log_every > 0: a progress line (rank 0) every log_every readers. Collective. */
double baseline_acdc(ep_baseline_data *bd, double tau, int log_every, uint8_t *kept);

/* A circuit of a baseline on g: scores (EAP/EAP-IG) keep the round((1 - edge_sparsity) * E)
 * edges with the largest |score| (fewer only on ties across the boundary); kept (ACDC)
 * is the circuit itself. Exactly one of scores / kept is non-NULL. The file stores the
 * signed score in edges/log_alpha and |score| in edges/value (ACDC: both the 0/1 kept
 * flag), kept = value > edge_threshold, and method = baseline_method_name(method); every
 * node is kept (no node masks). */
void baseline_circuit(const ep_graph *g, ep_baseline_method method, const double *scores, const uint8_t *kept,
                      double edge_sparsity, ep_circuit *c);
