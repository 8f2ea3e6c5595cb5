/* eap.c — edge attribution patching (EAP) and its integrated-gradients form (EAP-IG)
 * on the mask gradient of the per-step backend (baselines.h).
 *
 * The backend's dL/dz_e for edge (w -> r) is the gradient at r's input dotted with
 * x_w - c_w, exactly the attribution-patching product, so EAP is the backend gradient at
 * z = 1 and EAP-IG its average along z = alpha * 1. */
#include <stdlib.h>

#include "edgeprune/baselines.h"
#include "edgeprune/core.h"

void baseline_eap_scores(ep_baseline_data *bd, int steps, double *scores, double loss_end[2]) {
  if (steps < 1) ep_fatal("EAP-IG needs at least one step on the path (got %d)", steps);
  const int64_t E = bd->g->n_edges;
  double *z = ep_malloc((size_t)E * sizeof *z), *dz = ep_malloc((size_t)E * sizeof *dz);
  for (int64_t e = 0; e < E; e++)
    scores[e] = 0;
  double l1 = 0;
  /* right Riemann sum: alpha = k/m, k = 1..m (k = m is z = 1, so m = 1 is EAP) */
  for (int k = 1; k <= steps; k++) {
    const double alpha = (double)k / steps;
    for (int64_t e = 0; e < E; e++)
      z[e] = alpha;
    double l = baseline_loss(bd, z, dz);
    if (k == steps) l1 = l;
    for (int64_t e = 0; e < E; e++)
      scores[e] += dz[e];
  }
  for (int64_t e = 0; e < E; e++)
    scores[e] /= steps; /* times the path length 1 */
  if (loss_end) {
    for (int64_t e = 0; e < E; e++)
      z[e] = 0;
    loss_end[0] = baseline_loss(bd, z, NULL);
    loss_end[1] = l1;
  }
  free(z);
  free(dz);
}
