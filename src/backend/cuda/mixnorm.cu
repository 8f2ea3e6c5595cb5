/* mixnorm.cu — reader mixing fused with the per-reader norm.
 *
 * For R readers sharing the same n inputs (the 3H q/k/v readers of a layer, or the MLP
 * reader), Y[r, row] = base[row] + sum_{w < n} Z[r, w] delta_w[row] and the norm of every
 * (reader, row) in one kernel: one block per token row reads each delta_w row once, keeps
 * the R reader rows in registers (fp32, masks in fp32 from shared memory), and writes Y
 * (the reader input, read by the norm backward), the normed rows Xn, mu and rs. The
 * cuBLAS path it replaces wrote Y, read it back for the norm and wrote it again; TF32 or
 * bf16 there rounded the masks and delta, here every precision mixes in exact fp32 (of
 * TF32's fp16 copy of delta when it has one, cu_delta16_on).
 * Statistics in double as k_norm_fwd (layernorm.cu), same formulas. */
#include "cuda_internal.h"
#include "cuda_util.cuh"

#define MIXNORM_WCH 32      /* writers per shared-memory chunk of Z */
#define MIXNORM_MAX_THREADS 384 /* 170 registers a thread: the MR = 36 accumulators without spills */
#define MIXNORM_MAX_WARPS (MIXNORM_MAX_THREADS / 32)

/* Block: one token row and one group of at most MR readers (G groups: block x is row
 * x / G, readers [MR (x % G), ...); the G blocks of a row run side by side, so delta is
 * read from DRAM once and from L2 by the others); thread t holds columns d0 = t and
 * d1 = t + blockDim.x (when < D), so D <= 2 * blockDim.x. MR accumulators per column
 * (compile-time: registers); MINB blocks per SM asked of the compiler. */
template <int MR, int MINB, typename TD>
static __global__ void __launch_bounds__(MIXNORM_MAX_THREADS, MINB)
    k_mix_norm(const float *__restrict__ Z, int R, int G, int n, const TD *__restrict__ delta, size_t ND,
               const float *__restrict__ base, float *__restrict__ Y, float *__restrict__ Xn, float *mu, float *rs,
               const float *__restrict__ lw, const float *__restrict__ lb, int D, size_t N, int kind, double eps) {
  __shared__ __align__(16) float zs[MIXNORM_WCH * MR];
  __shared__ double red[MIXNORM_MAX_WARPS][MR];
  __shared__ double mstat[MR], rstat[MR];
  const size_t row = blockIdx.x / G;
  {
    const int r0 = (int)(blockIdx.x % G) * MR; /* this block's readers: [r0, r0 + R) */
    Z += (size_t)r0 * n;
    Y += (size_t)r0 * N * D;
    Xn += (size_t)r0 * N * D;
    mu += (size_t)r0 * N;
    rs += (size_t)r0 * N;
    R = R - r0 < MR ? R - r0 : MR;
  }
  const int t = threadIdx.x, nt = blockDim.x, lane = t & 31, wid = t >> 5, nwarp = nt >> 5;
  const int d0 = t, d1 = t + nt;
  const bool h0 = d0 < D, h1 = d1 < D;
  float a0[MR], a1[MR];
#pragma unroll
  for (int r = 0; r < MR; r++) a0[r] = a1[r] = 0.0f;
  const TD *drow = delta + row * D;
  for (int w0 = 0; w0 < n; w0 += MIXNORM_WCH) {
    const int wc = n - w0 < MIXNORM_WCH ? n - w0 : MIXNORM_WCH;
    __syncthreads(); /* the previous chunk's zs is no longer read */
    for (int i = t; i < MIXNORM_WCH * MR; i += nt) {
      const int wl = i / MR, r = i % MR;
      zs[i] = (r < R && wl < wc) ? Z[(size_t)r * n + w0 + wl] : 0.0f;
    }
    __syncthreads();
#pragma unroll 4
    for (int wl = 0; wl < wc; wl++) {
      const TD *dp = drow + (size_t)(w0 + wl) * ND;
      const float x0 = h0 ? (float)__ldg(dp + d0) : 0.0f, x1 = h1 ? (float)__ldg(dp + d1) : 0.0f;
      const float *zr = zs + wl * MR;
      if (MR % 4 == 0) {
#pragma unroll
        for (int r = 0; r < MR; r += 4) {
          const float4 z = *reinterpret_cast<const float4 *>(zr + r);
          a0[r] = fmaf(z.x, x0, a0[r]);
          a1[r] = fmaf(z.x, x1, a1[r]);
          a0[r + 1] = fmaf(z.y, x0, a0[r + 1]);
          a1[r + 1] = fmaf(z.y, x1, a1[r + 1]);
          a0[r + 2] = fmaf(z.z, x0, a0[r + 2]);
          a1[r + 2] = fmaf(z.z, x1, a1[r + 2]);
          a0[r + 3] = fmaf(z.w, x0, a0[r + 3]);
          a1[r + 3] = fmaf(z.w, x1, a1[r + 3]);
        }
      } else {
#pragma unroll
        for (int r = 0; r < MR; r++) {
          a0[r] = fmaf(zr[r], x0, a0[r]);
          a1[r] = fmaf(zr[r], x1, a1[r]);
        }
      }
    }
  }
  /* reader inputs: x = base + mixing (float add, as k_norm_fwd) */
  const float b0 = h0 ? base[row * D + d0] : 0.0f, b1 = h1 ? base[row * D + d1] : 0.0f;
#pragma unroll
  for (int r = 0; r < MR; r++) {
    a0[r] += b0;
    a1[r] += b1;
    if (r < R) {
      float *yr = Y + ((size_t)r * N + row) * D;
      if (h0) yr[d0] = a0[r];
      if (h1) yr[d1] = a1[r];
    }
  }
  if (kind == EP_NORM_NONE) {
#pragma unroll
    for (int r = 0; r < MR; r++)
      if (r < R) {
        float *xr = Xn + ((size_t)r * N + row) * D;
        if (h0) xr[d0] = a0[r];
        if (h1) xr[d1] = a1[r];
        if (t == 0) {
          mu[(size_t)r * N + row] = 0.0f;
          rs[(size_t)r * N + row] = 1.0f;
        }
      }
    return;
  }
  /* mean (LayerNorm) then variance about it, per reader: warp sums, then the warps'
   * partials in warp order (deterministic); the statistics live in shared memory */
  for (int r = t; r < MR; r += nt) mstat[r] = 0.0;
  if (kind == EP_NORM_LAYERNORM) {
#pragma unroll
    for (int r = 0; r < MR; r++) {
      const double s = cu_warp_sum((h0 ? (double)a0[r] : 0.0) + (h1 ? (double)a1[r] : 0.0));
      if (lane == 0) red[wid][r] = s;
    }
    __syncthreads();
    for (int r = t; r < MR; r += nt) {
      double s = 0;
      for (int k = 0; k < nwarp; k++) s += red[k][r];
      mstat[r] = s / D;
    }
  }
  __syncthreads(); /* mstat final, red free again */
#pragma unroll
  for (int r = 0; r < MR; r++) {
    const double m = mstat[r];
    const double e0 = h0 ? (double)a0[r] - m : 0.0, e1 = h1 ? (double)a1[r] - m : 0.0;
    const double s = cu_warp_sum(e0 * e0 + e1 * e1);
    if (lane == 0) red[wid][r] = s;
  }
  __syncthreads();
  for (int r = t; r < MR; r += nt) {
    double s = 0;
    for (int k = 0; k < nwarp; k++) s += red[k][r];
    rstat[r] = 1.0 / sqrt(s / D + eps);
  }
  __syncthreads();
  const float w0v = h0 ? lw[d0] : 0.0f, w1v = h1 ? lw[d1] : 0.0f;
  const float bb0 = (h0 && lb) ? lb[d0] : 0.0f, bb1 = (h1 && lb) ? lb[d1] : 0.0f;
#pragma unroll
  for (int r = 0; r < MR; r++)
    if (r < R) {
      const double m = mstat[r], rr = rstat[r];
      float *xr = Xn + ((size_t)r * N + row) * D;
      if (h0) xr[d0] = (float)(((double)a0[r] - m) * rr * w0v + bb0);
      if (h1) xr[d1] = (float)(((double)a1[r] - m) * rr * w1v + bb1);
      if (t == 0) {
        mu[(size_t)r * N + row] = (float)m;
        rs[(size_t)r * N + row] = (float)rr;
      }
    }
}

template <int MR, int MINB>
static void cu_mix_norm_launch(cu_ws *ws, const float *Z, int R, int w0, int n, const float *base, float *Y,
                               float *Xn, float *mu, float *rs, const float *lw, const float *lb, int threads) {
  const size_t ND = ws->N * (size_t)ws->D;
  const int G = (R + MR - 1) / MR;
  EP_CHECK(ws->N * (size_t)G <= 0x7fffffffu, "too many rows for the mixing kernel (%zu)", ws->N);
  const unsigned blocks = (unsigned)(ws->N * G);
  const int kind = (int)ws->m->cfg.norm;
  const double eps = (double)ws->m->cfg.norm_eps;
  if (cu_delta16_on(ws)) /* TF32: the fp16 copy (TF32 values) from writer w0's row */
    k_mix_norm<MR, MINB><<<blocks, threads, 0, ws->st>>>(Z, R, G, n, ws->delta_h + (size_t)w0 * ND, ND, base, Y, Xn,
                                                         mu, rs, lw, lb, ws->D, ws->N, kind, eps);
  else
    k_mix_norm<MR, MINB><<<blocks, threads, 0, ws->st>>>(Z, R, G, n, ws->delta + (size_t)w0 * ND, ND, base, Y, Xn,
                                                         mu, rs, lw, lb, ws->D, ws->N, kind, eps);
  EP_CHECK_LAUNCH();
}

/* Threads a block for D columns (two a thread). */
static int mix_norm_threads(int D) {
  const int threads = ((D + 1) / 2 + 31) / 32 * 32;
  return threads < 32 ? 32 : threads;
}

extern "C" int cu_mix_norm_covers(const cu_ws *ws, int R) {
  return mix_norm_threads(ws->D) <= MIXNORM_MAX_THREADS && R >= 1 && R <= 48 && ws->N > 0;
}

extern "C" int cu_mix_norm(cu_ws *ws, const float *Z, int R, int w0, int n, const float *base, float *Y,
                           float *Xn, float *mu, float *rs, const float *lw, const float *lb) {
  if (!cu_mix_norm_covers(ws, R)) return 0;
  const int threads = mix_norm_threads(ws->D);
  /* with EP_CUDA_MIXNORM_SPLIT=1, more than 12 readers go in groups of 12 (80 registers, two
   * blocks per SM; delta rows re-read from L2): on an H200 (GPT-2 small, 36 readers) no
   * faster than one block per row with all 36 accumulators (168 registers, small spills) */
  if (R > 12 && ws->mixnorm_split)
    cu_mix_norm_launch<12, 2>(ws, Z, R, w0, n, base, Y, Xn, mu, rs, lw, lb, threads);
  else if (R == 1) cu_mix_norm_launch<1, 1>(ws, Z, R, w0, n, base, Y, Xn, mu, rs, lw, lb, threads);
  else if (R <= 4) cu_mix_norm_launch<4, 1>(ws, Z, R, w0, n, base, Y, Xn, mu, rs, lw, lb, threads);
  else if (R <= 12) cu_mix_norm_launch<12, 1>(ws, Z, R, w0, n, base, Y, Xn, mu, rs, lw, lb, threads);
  else if (R <= 24) cu_mix_norm_launch<24, 1>(ws, Z, R, w0, n, base, Y, Xn, mu, rs, lw, lb, threads);
  else if (R <= 36) cu_mix_norm_launch<36, 1>(ws, Z, R, w0, n, base, Y, Xn, mu, rs, lw, lb, threads);
  else cu_mix_norm_launch<48, 1>(ws, Z, R, w0, n, base, Y, Xn, mu, rs, lw, lb, threads);
  return 1;
}
