/* layernorm.cu — LayerNorm / RMSNorm / none over rows of D, forward and backward.
 *
 * One block per row; statistics in double as the CPU reference. The forward can first
 * add a base row (the reader-mixing GEMM leaves sum_w z_rw delta_w; the reader input is
 * base + that), so the per-reader LN of the q/k/v inputs is one pass over [3H*N, D]. */
#include "cuda_internal.h"
#include "cuda_util.cuh"

#define NORM_THREADS 256

static __global__ void k_norm_fwd(float *x, const float *add, size_t add_rows, float *y, float *mu, float *rs,
                                  const float *w, const float *b, int D, int kind, double eps) {
  __shared__ double sh[32];
  const size_t row = blockIdx.x;
  float *xr = x + row * D;
  float *yr = y + row * D;
  if (add) {
    const float *ar = add + (row % add_rows) * D;
    for (int j = threadIdx.x; j < D; j += blockDim.x) xr[j] = xr[j] + ar[j];
  }
  /* each thread reads back only what it wrote itself: no barrier needed before here */
  if (kind == EP_NORM_NONE) {
    for (int j = threadIdx.x; j < D; j += blockDim.x) yr[j] = xr[j];
    if (threadIdx.x == 0) {
      mu[row] = 0.0f;
      rs[row] = 1.0f;
    }
    return;
  }
  double m = 0;
  if (kind == EP_NORM_LAYERNORM) {
    double s = 0;
    for (int j = threadIdx.x; j < D; j += blockDim.x) s += xr[j];
    m = cu_block_sum(s, sh) / D;
  }
  double v = 0;
  for (int j = threadIdx.x; j < D; j += blockDim.x) {
    const double e = (double)xr[j] - m;
    v += e * e;
  }
  v = cu_block_sum(v, sh);
  const double r = 1.0 / sqrt(v / D + eps);
  for (int j = threadIdx.x; j < D; j += blockDim.x)
    yr[j] = (float)(((double)xr[j] - m) * r * w[j] + (b ? b[j] : 0.0f));
  if (threadIdx.x == 0) {
    mu[row] = (float)m;
    rs[row] = (float)r;
  }
}

extern "C" void cu_norm_fwd(cu_ws *ws, float *x, const float *add, size_t add_rows, float *y, float *mu,
                            float *rs, const float *w, const float *b, size_t rows) {
  if (rows == 0) return;
  EP_CHECK(rows <= 0x7fffffffu, "too many rows for the norm kernel (%zu)", rows);
  k_norm_fwd<<<(unsigned)rows, NORM_THREADS, 0, ws->st>>>(x, add, add_rows, y, mu, rs, w, b, ws->D,
                                                          (int)ws->m->cfg.norm, (double)ws->m->cfg.norm_eps);
  EP_CHECK_LAUNCH();
}

/* dx = r (g - s1 - xhat s2) with g = dy w, s1 = mean g (0 for RMSNorm), s2 = mean g xhat.
 * A thread reads dy[j] before writing dx[j] for the same j only: dx may alias dy. */
static __global__ void k_norm_bwd(const float *x, const float *mu, const float *rs, const float *w,
                                  const float *dy, float *dx, int D, int kind) {
  __shared__ double sh[32];
  const size_t row = blockIdx.x;
  const float *xr = x + row * D, *dyr = dy + row * D;
  float *dxr = dx + row * D;
  if (kind == EP_NORM_NONE) {
    if (dxr != dyr)
      for (int j = threadIdx.x; j < D; j += blockDim.x) dxr[j] = dyr[j];
    return;
  }
  const double m = mu[row], r = rs[row];
  double s1 = 0, s2 = 0;
  for (int j = threadIdx.x; j < D; j += blockDim.x) {
    const double g = (double)dyr[j] * w[j], xh = ((double)xr[j] - m) * r;
    s1 += g;
    s2 += g * xh;
  }
  s1 = cu_block_sum(s1, sh) / D;
  s2 = cu_block_sum(s2, sh) / D;
  if (kind == EP_NORM_RMSNORM) s1 = 0;
  for (int j = threadIdx.x; j < D; j += blockDim.x) {
    const double g = (double)dyr[j] * w[j], xh = ((double)xr[j] - m) * r;
    dxr[j] = (float)(r * (g - s1 - xh * s2));
  }
}

extern "C" void cu_norm_bwd(cu_ws *ws, const float *x, const float *mu, const float *rs, const float *w,
                            const float *dy, float *dx, size_t rows) {
  if (rows == 0) return;
  EP_CHECK(rows <= 0x7fffffffu, "too many rows for the norm kernel (%zu)", rows);
  k_norm_bwd<<<(unsigned)rows, NORM_THREADS, 0, ws->st>>>(x, mu, rs, w, dy, dx, ws->D, (int)ws->m->cfg.norm);
  EP_CHECK_LAUNCH();
}
