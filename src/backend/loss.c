/* loss.c — faithfulness losses shared by every backend (see backend.h for definitions).
 * Everything here is O(P * Vo) and runs in double on the host. */
#include <math.h>
#include <stdlib.h>

#include "edgeprune/backend.h"
#include "edgeprune/core.h"

/* log-softmax of x [n] into out [n] (stable). */
static void log_softmax(const double *x, int n, double *out) {
  double mx = x[0];
  for (int i = 1; i < n; i++)
    mx = x[i] > mx ? x[i] : mx;
  double s = 0;
  for (int i = 0; i < n; i++)
    s += exp(x[i] - mx);
  double lse = mx + log(s);
  for (int i = 0; i < n; i++)
    out[i] = x[i] - lse;
}

/* KL(p || q) for log-probabilities lp, lq [n]; grad (optional) gets w * (q - p), the
 * gradient w.r.t. the logits behind lq. */
static double kl_logits(const double *lp, const double *lq, int n, double w, double *grad) {
  double kl = 0;
  for (int i = 0; i < n; i++) {
    double p = exp(lp[i]);
    kl += p * (lp[i] - lq[i]);
    if (grad) grad[i] = w * (exp(lq[i]) - p);
  }
  return kl;
}

double backend_loss(ep_loss_kind kind, int B, const int32_t *n_pos, int Vo, const double *full,
                    const double *masked, double *grad) {
  int n_max = Vo;
  for (int b = 0; b < B; b++)
    n_max = n_pos[b] > n_max ? n_pos[b] : n_max;
  double *lp = ep_malloc((size_t)n_max * sizeof *lp), *lq = ep_malloc((size_t)n_max * sizeof *lq);
  double total = 0;
  int64_t p0 = 0;
  for (int b = 0; b < B; b++) {
    int n = n_pos[b];
    if (n == 0) continue;
    if (kind == EP_LOSS_KL || kind == EP_LOSS_KL_SUM) {
      double w = kind == EP_LOSS_KL ? 1.0 / ((double)n * B) : 1.0 / B;
      for (int j = 0; j < n; j++) {
        size_t row = (size_t)(p0 + j) * (size_t)Vo;
        log_softmax(full + row, Vo, lp);
        log_softmax(masked + row, Vo, lq);
        total += w * kl_logits(lp, lq, Vo, w, grad ? grad + row : NULL);
      }
    } else if (kind == EP_LOSS_POSITION_KL) {
      /* softmax over the example's loss positions of output 0 */
      double *a = ep_malloc((size_t)n * sizeof *a), *m = ep_malloc((size_t)n * sizeof *m);
      for (int j = 0; j < n; j++) {
        a[j] = full[(size_t)(p0 + j) * Vo];
        m[j] = masked[(size_t)(p0 + j) * Vo];
      }
      log_softmax(a, n, lp);
      log_softmax(m, n, lq);
      double *g = grad ? ep_malloc((size_t)n * sizeof *g) : NULL;
      total += kl_logits(lp, lq, n, 1.0 / B, g) / B;
      if (grad)
        for (int j = 0; j < n; j++) {
          double *row = grad + (size_t)(p0 + j) * Vo;
          for (int v = 0; v < Vo; v++)
            row[v] = 0;
          row[0] = g[j];
        }
      free(g);
      free(a);
      free(m);
    } else {
      EP_CHECK(kind == EP_LOSS_MSE, "unknown loss kind %d", (int)kind);
      double w = 1.0 / ((double)n * Vo * B);
      for (int j = 0; j < n; j++) {
        size_t row = (size_t)(p0 + j) * (size_t)Vo;
        for (int v = 0; v < Vo; v++) {
          double d = masked[row + v] - full[row + v];
          total += w * d * d;
          if (grad) grad[row + v] = 2 * w * d;
        }
      }
    }
    p0 += n;
  }
  free(lp);
  free(lq);
  return total;
}
