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

/* g = dy w (w NULL: 1) and xhat = (x - m) rx for the four elements of piece c, in double. */
static __device__ __forceinline__ void norm_bwd_terms(float4 x, float4 dy, const float4 *w4, int c, double m,
                                                      double rx, double g[4], double xh[4]) {
  const float4 wv = w4 ? w4[c] : make_float4(1.0f, 1.0f, 1.0f, 1.0f);
  const float xs[4] = {x.x, x.y, x.z, x.w}, ys[4] = {dy.x, dy.y, dy.z, dy.w}, ws[4] = {wv.x, wv.y, wv.z, wv.w};
#pragma unroll
  for (int e = 0; e < 4; e++) {
    g[e] = (double)ys[e] * ws[e];
    xh[e] = ((double)xs[e] - m) * rx;
  }
}

/* The same, one warp per row for D a multiple of 4 up to 128 NV: the row's x and dy as
 * NV float4 a lane, all loads issued before the sums (warp shuffles, no barriers), so a
 * row's reads are in flight together; k_norm_bwd's block per row waits on its barriers
 * with a few loads out. */
/* four elements of x as floats: a float4, or four halves (xhat in fp16) */
static __device__ __forceinline__ float4 norm_ld4(const float *x, int c) {
  return reinterpret_cast<const float4 *>(x)[c];
}
static __device__ __forceinline__ float4 norm_ld4(const __half *x, int c) {
  return cu_half4_float4(reinterpret_cast<const uint2 *>(x)[c]);
}

template <int NV, typename XT>
static __global__ void k_norm_bwd_warp(const XT *__restrict__ x, const float *__restrict__ mu,
                                       const float *__restrict__ rs, const float *__restrict__ w,
                                       const float *dy, float *dx, int D, size_t rows, int kind, int xhat) {
  const size_t row = (size_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31, D4 = D / 4;
  if (row >= rows) return;
  const XT *xr = x + row * D;
  const float4 *dyr = reinterpret_cast<const float4 *>(dy + row * D);
  const float4 *w4 = reinterpret_cast<const float4 *>(w);
  float4 *dxr = reinterpret_cast<float4 *>(dx + row * D);
  float4 xv[NV], gv[NV];
#pragma unroll
  for (int i = 0; i < NV; i++) {
    const int c = lane + 32 * i;
    if (c < D4) {
      xv[i] = norm_ld4(xr, c);
      gv[i] = dyr[c];
    }
  }
  if (kind == EP_NORM_NONE) {
#pragma unroll
    for (int i = 0; i < NV; i++)
      if (lane + 32 * i < D4) dxr[lane + 32 * i] = gv[i];
    return;
  }
  /* xhat: x holds the normed rows (x - mu) rs themselves, and there is no weight */
  const double m = xhat ? 0.0 : (double)mu[row], r = rs[row], rx = xhat ? 1.0 : r;
  double s1 = 0, s2 = 0;
#pragma unroll
  for (int i = 0; i < NV; i++) {
    const int c = lane + 32 * i;
    if (c >= D4) continue;
    double g[4], xh[4];
    norm_bwd_terms(xv[i], gv[i], w4, c, m, rx, g, xh);
#pragma unroll
    for (int e = 0; e < 4; e++) {
      s1 += g[e];
      s2 += g[e] * xh[e];
    }
  }
  s1 = cu_warp_sum(s1) / D;
  s2 = cu_warp_sum(s2) / D;
  if (kind == EP_NORM_RMSNORM) s1 = 0;
#pragma unroll
  for (int i = 0; i < NV; i++) {
    const int c = lane + 32 * i;
    if (c >= D4) continue;
    double g[4], xh[4];
    norm_bwd_terms(xv[i], gv[i], w4, c, m, rx, g, xh);
    float o[4];
#pragma unroll
    for (int e = 0; e < 4; e++) {
      o[e] = (float)(r * (g[e] - s1 - xh[e] * s2));
    }
    dxr[c] = make_float4(o[0], o[1], o[2], o[3]);
  }
}

/* The warp kernel where it applies (1), else 0. */
template <typename XT>
static int cu_norm_bwd_warp(cu_ws *ws, const XT *x, const float *mu, const float *rs, const float *w,
                            const float *dy, float *dx, size_t rows, int xhat) {
  const int D = ws->D, kind = (int)ws->m->cfg.norm;
  const unsigned wblocks = (unsigned)((rows + NORM_THREADS / 32 - 1) / (NORM_THREADS / 32));
  const int aligned = !(((uintptr_t)x | (uintptr_t)dy | (uintptr_t)dx | (uintptr_t)w) & 15);
  if (D % 4 || D > 1024 || !aligned || rows / (NORM_THREADS / 32) >= 0x7fffffffu) return 0;
  const int nv = (D / 4 + 31) / 32;
#define NORM_BWD_WARP(v) k_norm_bwd_warp<v, XT><<<wblocks, NORM_THREADS, 0, ws->st>>>(x, mu, rs, w, dy, dx, D, rows, kind, xhat)
  if (nv <= 2) NORM_BWD_WARP(2);
  else if (nv <= 4) NORM_BWD_WARP(4);
  else if (nv <= 6) NORM_BWD_WARP(6);
  else NORM_BWD_WARP(8);
#undef NORM_BWD_WARP
  EP_CHECK_LAUNCH();
  return 1;
}

extern "C" void cu_norm_bwd(cu_ws *ws, const float *x, const float *mu, const float *rs, const float *w,
                            const float *dy, float *dx, size_t rows) {
  if (rows == 0 || cu_norm_bwd_warp(ws, x, mu, rs, w, dy, dx, rows, 0)) return;
  EP_CHECK(rows <= 0x7fffffffu, "too many rows for the norm kernel (%zu)", rows);
  k_norm_bwd<<<(unsigned)rows, NORM_THREADS, 0, ws->st>>>(x, mu, rs, w, dy, dx, ws->D, (int)ws->m->cfg.norm);
  EP_CHECK_LAUNCH();
}

extern "C" void cu_norm_bwd_xhat_h(cu_ws *ws, const __half *xhat, const float *rs, const float *dy, float *dx,
                                   size_t rows) {
  if (rows == 0) return;
  EP_CHECK(cu_norm_bwd_warp(ws, xhat, NULL, rs, NULL, dy, dx, rows, 1),
           "norm backward from fp16 normed rows: D %d (a multiple of 4 up to 1024, aligned rows)", ws->D);
}

extern "C" void cu_norm_bwd_xhat(cu_ws *ws, const float *xhat, const float *rs, const float *dy, float *dx,
                                 size_t rows) {
  if (rows == 0) return;
  EP_CHECK(cu_norm_bwd_warp(ws, xhat, NULL, rs, NULL, dy, dx, rows, 1),
           "norm backward from normed rows: D %d (a multiple of 4 up to 1024, aligned rows)", ws->D);
}
