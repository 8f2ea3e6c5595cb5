/* test_hardconcrete.c — hard-concrete functions against closed forms worked out by hand,
 * the sampling rule against P(z=0), and dz/dlog_alpha against finite differences. */
#include <math.h>

#include "edgeprune/hardconcrete.h"
#include "test_util.h"

/* By hand: beta * log(-l / r) = (2/3) log(1/11), so
 *   P(z=0) = sigmoid(-(2/3) log 11 - la) = 1 / (1 + 11^(2/3) e^la)   (before the clamp). */
static double p0_closed(double la) {
  double p = 1.0 / (1.0 + pow(11.0, 2.0 / 3.0) * exp(la));
  return p < 1e-6 ? 1e-6 : (p > 1 - 1e-6 ? 1 - 1e-6 : p);
}

int main(void) {
  /* Constants. */
  T_CHECK(EP_HC_LEFT == -0.1f && EP_HC_RIGHT == 1.1f && EP_HC_EPS == 1e-6f, "l, r, eps");
  T_CLOSE(EP_HC_BETA, 2.0 / 3.0, 1e-7, 0, "beta");

  /* Deterministic mask: sigmoid(la * 1.2); at 0 it is 1/2, and sigmoid(x) + sigmoid(-x) = 1. */
  T_CLOSE(hc_soft_mask(0.0f), 0.5, 1e-7, 0, "soft(0)");
  T_CLOSE(hc_soft_mask(2.5f), 1.0 / (1.0 + exp(-3.0)), 1e-6, 0, "soft(2.5) = sigmoid(3)");
  T_CLOSE(hc_soft_mask(-2.5f), 1.0 / (1.0 + exp(3.0)), 1e-6, 0, "soft(-2.5) = sigmoid(-3)");
  T_CHECK(hc_soft_mask(-200.0f) == 0.0f && hc_soft_mask(200.0f) == 1.0f, "soft saturates without NaN");

  /* P(z=0) and P(z!=0). */
  T_CLOSE(hc_prob_zero(0.0f), 1.0 / (1.0 + pow(11.0, 2.0 / 3.0)), 1e-6, 0, "P0(0) = 1/(1+11^(2/3))");
  const float las[] = {-12.0f, -3.0f, -1.3f, -0.2f, 0.0f, 0.7f, 2.5f, 10.0f, 30.0f};
  for (int i = 0; i < (int)(sizeof las / sizeof *las); i++) {
    T_CLOSE(hc_prob_zero(las[i]), p0_closed(las[i]), 2e-7, 1e-5, "P0 closed form");
    T_CLOSE(hc_prob_nonzero(las[i]), 1.0 - p0_closed(las[i]), 2e-7, 1e-5, "P(z!=0) closed form");
  }
  T_CLOSE(hc_prob_zero(30.0f), 1e-6, 1e-12, 0, "P0 clamped at eps");
  T_CLOSE(hc_prob_zero(-30.0f), 1.0 - 1e-6, 1e-7, 0, "P0 clamped at 1-eps");

  /* Samples by hand: u = 1/2 cancels the logistic noise, s = sigmoid(la / beta).
   * la = 0: s = 1/2, z = 0.5 * 1.2 - 0.1 = 0.5, dz/dla = 1.2 * 0.25 / (2/3) = 0.45. */
  T_CLOSE(hc_sample_z(0.5f, 0.0f), 0.5, 1e-6, 0, "z(u=.5, la=0)");
  T_CLOSE(hc_dz_dlog_alpha(0.5f, 0.0f), 0.45, 1e-6, 0, "dz(u=.5, la=0)");
  /* u = 0.3, la = 0.7: log(0.3/0.7) + 0.7 = -0.147298..., / beta = -0.220948...,
   * s = 0.444986..., z = 1.2 s - 0.1 = 0.433984... */
  {
    double x = (log(0.3 / 0.7) + 0.7) * 1.5, s = 1.0 / (1.0 + exp(-x));
    T_CLOSE(hc_sample_z(0.3f, 0.7f), 1.2 * s - 0.1, 1e-6, 0, "z(u=.3, la=.7)");
    T_CLOSE(hc_sample_z(0.3f, 0.7f), 0.4339843, 2e-6, 0, "z(u=.3, la=.7) by hand");
    T_CLOSE(hc_dz_dlog_alpha(0.3f, 0.7f), 1.2 * s * (1 - s) * 1.5, 1e-6, 0, "dz(u=.3, la=.7)");
  }
  /* Clamped samples: exactly 0 or 1, zero gradient. */
  T_CHECK(hc_sample_z(0.01f, -1.0f) == 0.0f && hc_dz_dlog_alpha(0.01f, -1.0f) == 0.0f, "clamped at 0");
  T_CHECK(hc_sample_z(1.0f - 1e-6f, 3.0f) == 1.0f && hc_dz_dlog_alpha(1.0f - 1e-6f, 3.0f) == 0.0f,
          "clamped at 1");

  /* Derivative by central differences inside the clamp (double-checked in float). */
  int checked = 0, bad = 0;
  for (float u = 0.05f; u < 0.96f; u += 0.05f)
    for (float la = -2.0f; la <= 2.0f; la += 0.25f) {
      const float h = 1e-2f;
      float zp = hc_sample_z(u, la + h), zm = hc_sample_z(u, la - h);
      if (zp <= 0.0f || zp >= 1.0f || zm <= 0.0f || zm >= 1.0f) continue; /* straddles a clamp */
      double fd = ((double)zp - (double)zm) / (2.0 * h);
      if (!t_close(hc_dz_dlog_alpha(u, la), fd, 2e-3, 2e-3)) bad++;
      checked++;
    }
  T_CHECK(checked > 150 && bad == 0, "dz/dla vs finite differences: %d of %d differ", bad, checked);

  /* The sampling rule and P(z=0) agree: over u uniform on (eps, 1-eps) the fraction of
   * exact zeros is P(z=0), and the mean of z != 0 indicator is P(z != 0). */
  const float las2[] = {-2.0f, -0.5f, 0.0f, 1.0f, 3.0f};
  for (int i = 0; i < 5; i++) {
    const int n = 200000;
    int zeros = 0;
    for (int k = 0; k < n; k++) {
      float u = 1e-6f + (1.0f - 2e-6f) * ((float)k + 0.5f) / (float)n;
      zeros += hc_sample_z(u, las2[i]) == 0.0f;
    }
    T_CLOSE((double)zeros / n, p0_closed(las2[i]), 2e-4, 0, "fraction of sampled zeros = P(z=0)");
  }
  return t_done();
}
