/* evaluate.c — metrics of the full model and of a circuit side by side (train.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "edgeprune/core.h"
#include "edgeprune/tasks.h"
#include "edgeprune/train.h"

static int argmax(const float *x, int n) {
  int k = 0;
  for (int i = 1; i < n; i++)
    if (x[i] > x[k]) k = i;
  return k;
}

void prune_evaluate(const ep_prune_config *c, const ep_model *m, const ep_graph *g, const ep_dataset *d0,
                    const double *z_edge, const double *z_node, ep_eval_report *r) {
  ep_dataset d = *d0;
  if (c->val_examples > 0 && d.n > c->val_examples) d.n = c->val_examples;
  const int Vo = m->cfg.vocab_out;
  int64_t npos = 0;
  for (int64_t i = 0; i < d.n; i++)
    npos += d.loss_end[i] - d.loss_start[i];
  float *om = ep_malloc((size_t)npos * Vo * sizeof *om), *of = ep_malloc((size_t)npos * Vo * sizeof *of);
  double loss = prune_eval_masks(c, m, g, &d, z_edge, z_node, om, of);
  const ep_task_info *task = task_find(d.task);
  double ld[2] = {0, 0}, acc[2] = {0, 0}, em = 0, tm[2] = {0, 0};
  int64_t n_t = 0, n_task = 0, p0 = 0, n_em = 0;
  for (int64_t i = 0; i < d.n; i++) {
    const int np = d.loss_end[i] - d.loss_start[i];
    const float *last[2] = {of + (p0 + np - 1) * Vo, om + (p0 + np - 1) * Vo};
    for (int j = 0; j < np; j++) {
      em += argmax(om + (p0 + j) * Vo, Vo) == argmax(of + (p0 + j) * Vo, Vo);
      n_em++;
    }
    int tgt = d.target ? d.target[i] : -1, dis = d.distractor ? d.distractor[i] : -1;
    if (Vo > 1 && tgt >= 0 && tgt < Vo) {
      for (int k = 0; k < 2; k++) {
        acc[k] += argmax(last[k], Vo) == tgt;
        if (dis >= 0 && dis < Vo) ld[k] += (double)last[k][tgt] - last[k][dis];
      }
      n_t++;
    }
    if (task && task->metric != EP_METRIC_NONE && Vo > 1) {
      double a = task_metric(task, &d, i, of + p0 * Vo, np, Vo),
             b = task_metric(task, &d, i, om + p0 * Vo, np, Vo);
      if (isfinite(a) && isfinite(b)) {
        tm[0] += a;
        tm[1] += b;
        n_task++;
      }
    }
    p0 += np;
  }
  memset(r, 0, sizeof *r);
  static const char *loss_names[] = {"kl", "kl_sum", "position_kl", "mse"};
  r->names[r->n] = loss_names[c->loss];
  r->full[r->n] = 0;
  r->circuit[r->n++] = loss;
  if (n_t) {
    int has_dis = 0;
    for (int64_t i = 0; i < d.n; i++)
      has_dis |= d.distractor && d.distractor[i] >= 0;
    if (has_dis) {
      r->names[r->n] = "logit_diff";
      r->full[r->n] = ld[0] / n_t;
      r->circuit[r->n++] = ld[1] / n_t;
    }
    r->names[r->n] = "accuracy";
    r->full[r->n] = acc[0] / n_t;
    r->circuit[r->n++] = acc[1] / n_t;
  }
  if (Vo > 1) { /* a numeric output (Tracr) has no argmax to match */
    r->names[r->n] = "exact_match";
    r->full[r->n] = 1;
    r->circuit[r->n++] = n_em ? em / n_em : NAN;
  }
  if (n_task) {
    r->names[r->n] = task->metric == EP_METRIC_GT_PROB_DIFF     ? "task_prob_diff"
                     : task->metric == EP_METRIC_TARGET_LOGPROB ? "task_target_logprob"
                                                                : "task_logit_diff";
    r->full[r->n] = tm[0] / n_task;
    r->circuit[r->n++] = tm[1] / n_task;
  }
  free(om);
  free(of);
}

void prune_evaluate_circuit(const ep_prune_config *c, const ep_model *m, const ep_graph *g, const ep_dataset *d,
                            ep_circuit *circ) {
  double *ze = ep_malloc((size_t)g->n_edges * sizeof *ze), *zn = ep_malloc((size_t)g->n_writers * sizeof *zn);
  for (int64_t e = 0; e < g->n_edges; e++)
    ze[e] = circ->edge_kept[e];
  for (int w = 0; w < g->n_writers; w++)
    zn[w] = circ->node_kept[w];
  ep_prune_config ce = *c;
  ce.node_masks = 1; /* the circuit's node set applies whether or not nodes were trained */
  ep_eval_report r;
  prune_evaluate(&ce, m, g, d, ze, zn, &r);
  circuit_set_metrics(circ, r.n, r.names, r.full, r.circuit);
  for (int k = 0; k < r.n; k++)
    ep_log("circuit %-20s full %10.5f  circuit %10.5f", r.names[k], r.full[k], r.circuit[k]);
  free(ze);
  free(zn);
}
