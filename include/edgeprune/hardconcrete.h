/* hardconcrete.h — the hard-concrete mask distribution (Louizos et al. 2018) with the
 * constants Edge Pruning uses. One definition for training (sampling, gradients,
 * sparsity) and for circuit extraction (deterministic masks, P(z = 0)).
 *
 * A mask z in [0, 1] is a stretched, clamped concrete variable with location log_alpha:
 *   s = sigmoid((log u - log(1-u) + log_alpha) / beta),  u ~ U(eps, 1-eps)
 *   z = clamp(s * (r - l) + l, 0, 1)
 * Because the stretched variable lives on (l, r) = (-0.1, 1.1), z is exactly 0 or 1
 * with non-zero probability. Mask math is fp32 everywhere (also for bf16 models). */
#pragma once

#include <math.h>
#include <stdint.h>

#include "edgeprune/rng.h"

/* Usable from host C and from CUDA kernels alike. */
#if defined(__CUDACC__)
#define EP_HC_FN static inline __host__ __device__
#else
#define EP_HC_FN static inline
#endif

#define EP_HC_LEFT (-0.1f)       /* l: left end of the stretched interval */
#define EP_HC_RIGHT (1.1f)       /* r: right end */
#define EP_HC_BETA (2.0f / 3.0f) /* beta: temperature */
#define EP_HC_EPS (1e-6f)        /* eps: u range and P(z=0) clamp */
/* The deterministic (test-time) mask is sigmoid(log_alpha / beta * 0.8). */
#define EP_HC_DET_FACTOR (0.8f)
/* log_alpha initialisation N(10, 0.01): every mask starts almost surely at 1. */
#define EP_HC_INIT_MEAN (10.0f)
#define EP_HC_INIT_STD (0.01f)

/* Numerically safe logistic function (no overflow for large |x|). */
EP_HC_FN float hc_sigmoid(float x) {
  if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
  float e = expf(x);
  return e / (1.0f + e);
}

EP_HC_FN float hc_clamp(float x, float lo, float hi) {
  return x < lo ? lo : (x > hi ? hi : x);
}

/* Deterministic soft mask used when extracting a circuit. */
EP_HC_FN float hc_soft_mask(float log_alpha) {
  return hc_sigmoid(log_alpha / EP_HC_BETA * EP_HC_DET_FACTOR);
}

/* P(z = 0): the CDF of the stretched variable at 0, clamped to [eps, 1-eps].
 * beta * log((0 - l) / (r - 0)) = beta * log(-l / r) = (2/3) log(1/11). */
EP_HC_FN float hc_prob_zero(float log_alpha) {
  const float q = EP_HC_BETA * logf((0.0f - EP_HC_LEFT) / (EP_HC_RIGHT - 0.0f));
  return hc_clamp(hc_sigmoid(q - log_alpha), EP_HC_EPS, 1.0f - EP_HC_EPS);
}

/* Probability that the mask is non-zero: the expected L0 contribution of one mask. */
EP_HC_FN float hc_prob_nonzero(float log_alpha) {
  return 1.0f - hc_prob_zero(log_alpha);
}

/* The unclamped concrete sample s in (0, 1) for a uniform u in (0, 1). */
EP_HC_FN float hc_sample_s(float u, float log_alpha) {
  return hc_sigmoid((logf(u) - logf(1.0f - u) + log_alpha) / EP_HC_BETA);
}

/* Training sample z for the uniform draw u (u in [eps, 1-eps]). */
EP_HC_FN float hc_sample_z(float u, float log_alpha) {
  float s = hc_sample_s(u, log_alpha);
  return hc_clamp(s * (EP_HC_RIGHT - EP_HC_LEFT) + EP_HC_LEFT, 0.0f, 1.0f);
}

/* dz/dlog_alpha at the same u: (r - l) * s (1 - s) / beta inside the clamp, 0 where
 * the clamp is active (as hardtanh's gradient: zero at and beyond the ends). */
EP_HC_FN float hc_dz_dlog_alpha(float u, float log_alpha) {
  float s = hc_sample_s(u, log_alpha);
  float y = s * (EP_HC_RIGHT - EP_HC_LEFT) + EP_HC_LEFT;
  if (!(y > 0.0f && y < 1.0f)) return 0.0f;
  return (EP_HC_RIGHT - EP_HC_LEFT) * s * (1.0f - s) / EP_HC_BETA;
}

/* ---- the training step's draw, in double ------------------------------------------ */
/* One definition for the host (prune_step.c) and the CUDA backend's masks drawn on the
 * device: the same counter noise and formulas give the same masks on both. */

/* The u of mask `index` at `step`: counter noise of stream EP_RNG_STREAM_EDGE_NOISE /
 * NODE_NOISE, mapped into [eps, 1 - eps]. */
EP_HC_FN double hc_train_noise(uint64_t seed, uint32_t stream, int64_t step, int64_t index) {
  const double r = ep_rng_uniform(seed, stream, (uint64_t)step, (uint32_t)index);
  return (double)EP_HC_EPS + (1.0 - 2.0 * (double)EP_HC_EPS) * r;
}

/* z for u, and dz/dlog_alpha into *dz_dla when non-NULL (0 where the clamp is active). */
EP_HC_FN double hc_train_sample(double log_alpha, double u, double *dz_dla) {
  const double l = EP_HC_LEFT, r = EP_HC_RIGHT, beta = EP_HC_BETA;
  const double x = (log(u) - log(1.0 - u) + log_alpha) / beta;
  const double s = 1.0 / (1.0 + exp(-x));
  const double zr = s * (r - l) + l;
  const double z = zr < 0 ? 0 : zr > 1 ? 1 : zr;
  if (dz_dla) *dz_dla = (zr > 0 && zr < 1) ? (r - l) * s * (1 - s) / beta : 0;
  return z;
}
