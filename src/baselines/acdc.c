/* acdc.c — automatic circuit discovery (ACDC, Conmy et al. 2023) on the Edge Pruning
 * graph: greedy edge removal in reverse topological order (baselines.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "edgeprune/baselines.h"
#include "edgeprune/core.h"

double baseline_acdc(ep_baseline_data *bd, double tau, int log_every, uint8_t *kept) {
  if (!(tau >= 0)) ep_fatal("ACDC threshold tau must be a non-negative number (got %g)", tau);
  const ep_graph *g = bd->g;
  const int64_t E = g->n_edges;
  double *z = ep_malloc((size_t)E * sizeof *z);
  for (int64_t e = 0; e < E; e++)
    z[e] = 1;
  double cur = baseline_loss(bd, z, NULL);
  const double t0 = ep_time_now();
  int64_t removed = 0;
  /* Readers are stored in topological order (layer by layer, resid_post last), so the
   * reverse index order visits every reader after all readers that depend on it;
   * within a reader, later writers first. */
  for (int r = g->n_readers - 1; r >= 0; r--) {
    for (int w = g->readers[r].n_in - 1; w >= 0; w--) {
      const int64_t e = graph_edge_index(g, w, r);
      z[e] = 0;
      double l = baseline_loss(bd, z, NULL);
      if (!isfinite(l))
        ep_fatal("ACDC: the loss is not finite (%g) without edge %s -> %s", l, g->writers[w].name,
                 g->readers[r].name);
      if (l - cur <= tau) {
        cur = l;
        removed++;
      } else {
        z[e] = 1;
      }
    }
    const int done = g->n_readers - r;
    if (log_every > 0 && (done % log_every == 0 || r == 0))
      ep_log("acdc: %d of %d readers, %lld of %lld edges removed, loss %.6g, %.1f s", done, g->n_readers,
             (long long)removed, (long long)E, cur, ep_time_now() - t0);
  }
  for (int64_t e = 0; e < E; e++)
    kept[e] = z[e] > 0.5;
  free(z);
  return cur;
}
