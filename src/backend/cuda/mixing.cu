/* mixing.cu — reader mixing over the difference stack and its backward.
 *
 * Reader r's input is base_r + sum_{w < n} z_rw delta_w. All q/k/v readers of a layer
 * share n, so their inputs are one GEMM Z_l [3H, n] x delta [n, N*D]; the MLP reader is
 * the same with one row, resid_post is needed at the loss positions only. The
 * backward gives d(loss)/dz_rw = <dY_r, delta_w> (fp32 over chunks of token rows, the
 * chunks summed in double; the CPU reference sums per example) and ddelta += Z^T dY
 * (k_ddelta). Node (writer) masks scale delta_w. */
#include <type_traits>

#include "cuda_internal.h"
#include "cuda_util.cuh"

/* ---- GEMM wrappers: row-major operands on column-major cuBLAS --------------------- */

/* Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands. */
extern "C" void cu_gemm(cu_ws *ws, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                        const float *B, int ldb, float beta, float *C, int ldc) {
  if (M == 0 || N == 0) return;
  EP_CHECK_CUBLAS(cublasGemmEx(ws->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M,
                               K, &alpha, B, ws->gemm_type, ldb, A, ws->gemm_type, lda, &beta, C, ws->gemm_type,
                               ldc, ws->gemm_compute, CUBLAS_GEMM_DEFAULT));
}

extern "C" void cu_gemm_batched(cu_ws *ws, int ta, int tb, int M, int N, int K, float alpha, const float *A,
                                int lda, long long sA, const float *B, int ldb, long long sB, float beta,
                                float *C, int ldc, long long sC, int batch) {
  if (M == 0 || N == 0 || batch == 0) return;
  EP_CHECK_CUBLAS(cublasGemmStridedBatchedEx(ws->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                                             ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha, B, ws->gemm_type,
                                             ldb, sB, A, ws->gemm_type, lda, sA, &beta, C, ws->gemm_type, ldc, sC,
                                             batch, ws->gemm_compute, CUBLAS_GEMM_DEFAULT));
}

/* Batched over pointer arrays in device memory (A[i], B[i], C[i], i < batch): for
 * batches whose operands sit at no common stride (the 3H per-head q/k/v projections). */
extern "C" void cu_gemm_ptr_batched(cu_ws *ws, int ta, int tb, int M, int N, int K, const float *const *A, int lda,
                                    const float *const *B, int ldb, float *const *C, int ldc, int batch) {
  if (M == 0 || N == 0 || batch == 0) return;
  const float one = 1.0f, zero = 0.0f;
  EP_CHECK_CUBLAS(cublasGemmBatchedEx(ws->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M,
                                      K, &one, (const void *const *)B, ws->gemm_type, ldb, (const void *const *)A,
                                      ws->gemm_type, lda, &zero, (void *const *)C, ws->gemm_type, ldc, batch,
                                      ws->gemm_compute, CUBLAS_GEMM_DEFAULT));
}

/* bf16 operands (the difference stack, reader gradients, masks), fp32 output and
 * accumulation. */
extern "C" void cu_gemm_bf16(cu_ws *ws, int ta, int tb, int M, int N, int K, float alpha, const __nv_bfloat16 *A,
                             int lda, const __nv_bfloat16 *B, int ldb, float beta, float *C, int ldc) {
  if (M == 0 || N == 0) return;
  EP_CHECK_CUBLAS(cublasGemmEx(ws->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M,
                               K, &alpha, B, CUDA_R_16BF, ldb, A, CUDA_R_16BF, lda, &beta, C, CUDA_R_32F, ldc,
                               CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

static void cu_gemm_batched_bf16(cu_ws *ws, int ta, int tb, int M, int N, int K, const __nv_bfloat16 *A, int lda,
                                 long long sA, const __nv_bfloat16 *B, int ldb, long long sB, float *C, int ldc,
                                 long long sC, int batch) {
  if (M == 0 || N == 0 || batch == 0) return;
  const float one = 1.0f, zero = 0.0f;
  EP_CHECK_CUBLAS(cublasGemmStridedBatchedEx(ws->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                                             ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &one, B, CUDA_R_16BF, ldb,
                                             sB, A, CUDA_R_16BF, lda, sA, &zero, C, CUDA_R_32F, ldc, sC, batch,
                                             CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

static __global__ void k_to_bf16(const float *src, __nv_bfloat16 *dst, size_t n) {
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    dst[i] = __float2bfloat16(src[i]);
}

extern "C" void cu_to_bf16(cu_ws *ws, const float *src, __nv_bfloat16 *dst, size_t n) {
  if (n == 0) return;
  k_to_bf16<<<cu_blocks(n, 256), 256, 0, ws->st>>>(src, dst, n);
  EP_CHECK_LAUNCH();
}

#define RESID_THREADS 512 /* k_resid_bwd: one block per writer over all loss positions */

/* ---- elementwise ------------------------------------------------------------------- */

static __global__ void k_add_bias(float *y, const float *b, size_t n, int cols, float scale) {
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    y[i] += scale * b[i % (size_t)cols];
}

extern "C" void cu_add_bias(cu_ws *ws, float *y, const float *b, size_t rows, int cols, float scale) {
  if (!b || rows == 0) return;
  const size_t n = rows * (size_t)cols;
  k_add_bias<<<cu_blocks(n, 256), 256, 0, ws->st>>>(y, b, n, cols, scale);
  EP_CHECK_LAUNCH();
}

/* delta (when d32; and, in bf16 mode, its bf16 copy dbf at the same offset; with delta16, its fp16
 * copy dh: each value rounded to TF32, which fp16 holds exactly in its range, the flag
 * *ovf set when one is past it); with a bias b, first x[i] += scale b[i mod D] (written
 * back: x is the writer's output). Grid (blocks, nw): writer blockIdx.y, V floats at a
 * time (V = 4: D a multiple of 4, 16-byte aligned). */
template <int V>
static __global__ void k_delta_write(float *x, const float *b, float scale, const float *c, const float *zn,
                                     float *delta, int d32, __nv_bfloat16 *dbf, __half *dh, int *ovf,
                                     unsigned ndv, int Dv) {
  typedef typename std::conditional<V == 4, float4, float>::type vec;
  const size_t o = (size_t)blockIdx.y * ndv; /* this writer's first vector */
  const float z = zn[blockIdx.y];
  vec *xv = reinterpret_cast<vec *>(x) + o, *dv = reinterpret_cast<vec *>(delta) + o;
  const vec *cv = reinterpret_cast<const vec *>(c) + o;
  bool big = false;
  for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < ndv; i += gridDim.x * blockDim.x) {
    vec xi = xv[i];
    float *xf = reinterpret_cast<float *>(&xi);
    if (b) {
      const float *bd = b + (i % (unsigned)Dv) * V;
#pragma unroll
      for (int e = 0; e < V; e++) xf[e] += scale * bd[e];
      xv[i] = xi;
    }
    const vec ci = cv[i];
    const float *cf = reinterpret_cast<const float *>(&ci);
    vec d;
    float *df = reinterpret_cast<float *>(&d);
#pragma unroll
    for (int e = 0; e < V; e++) df[e] = z * (xf[e] - cf[e]);
    if (d32) dv[i] = d;
    if (dbf)
#pragma unroll
      for (int e = 0; e < V; e++) dbf[(o + i) * V + e] = __float2bfloat16(df[e]);
    if (dh) {
      __align__(8) __half hv[V];
#pragma unroll
      for (int e = 0; e < V; e++) {
        const float r = __uint_as_float(cu_tf32_round(df[e]));
        big |= fabsf(r) > 65504.0f; /* fp16's largest finite value */
        hv[e] = __float2half_rn(r);
      }
      if (V == 4) *reinterpret_cast<uint2 *>(dh + (o + i) * V) = *reinterpret_cast<const uint2 *>(hv);
      else dh[o + i] = hv[0];
    }
  }
  if (big) *ovf = 1;
}

extern "C" void cu_delta_write_bias(cu_ws *ws, float *x, const float *b, float scale, const float *c,
                                    const float *zn, float *delta, int nw) {
  const size_t ND = ws->N * (size_t)ws->D;
  __nv_bfloat16 *dbf = ws->compute == 2 ? ws->delta_bf + (delta - ws->delta) : NULL;
  __half *dh = cu_delta16_on(ws) ? ws->delta_h + (delta - ws->delta) : NULL;
  const int v4 = ws->D % 4 == 0 && !(((uintptr_t)x | (uintptr_t)c | (uintptr_t)delta) & 15);
  const unsigned ndv = (unsigned)(ND / (v4 ? 4 : 1));
  const dim3 grid(cu_blocks(ndv, 256), (unsigned)nw);
  const int d32 = ws->delta32 || !dh;
  if (v4)
    k_delta_write<4><<<grid, 256, 0, ws->st>>>(x, b, scale, c, zn, delta, d32, dbf, dh, ws->ovf_d, ndv, ws->D / 4);
  else k_delta_write<1><<<grid, 256, 0, ws->st>>>(x, b, scale, c, zn, delta, d32, dbf, dh, ws->ovf_d, ndv, ws->D);
  EP_CHECK_LAUNCH();
}

extern "C" void cu_delta_write(cu_ws *ws, const float *x, const float *c, const float *zn, float *delta, int nw) {
  cu_delta_write_bias(ws, (float *)x, NULL, 0.0f, c, zn, delta, nw); /* x is only read */
}

/* grid (blocks per writer, nw): block partials of <dd_w, x_w - c_w> in double; dx_w =
 * zn dd_w. V = 4: float4 loads (N*D a multiple of 4), else V = 1. */
template <int V>
static __global__ void k_node_grad(const float *x, const float *c, const float *dd, const float *zn, double *part,
                                   float *dx, size_t ND) {
  typedef typename std::conditional<V == 4, float4, float>::type vec;
  __shared__ double sh[32];
  const size_t w = blockIdx.y, o = w * ND / V, nv = ND / V;
  const vec *xv = reinterpret_cast<const vec *>(x) + o, *cv = reinterpret_cast<const vec *>(c) + o;
  const vec *dv = reinterpret_cast<const vec *>(dd) + o;
  vec *ov = dx ? reinterpret_cast<vec *>(dx) + o : NULL;
  const float z = zn[w];
  double s = 0;
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < nv; i += (size_t)gridDim.x * blockDim.x) {
    const vec d = dv[i];
    const float *df = reinterpret_cast<const float *>(&d);
    if (part) {
      const vec xa = xv[i], ca = cv[i];
      const float *xf = reinterpret_cast<const float *>(&xa), *cf = reinterpret_cast<const float *>(&ca);
#pragma unroll
      for (int e = 0; e < V; e++) s += (double)df[e] * ((double)xf[e] - cf[e]);
    }
    if (ov) { /* after reading x: dx may alias x */
      vec r;
      float *rf = reinterpret_cast<float *>(&r);
#pragma unroll
      for (int e = 0; e < V; e++) rf[e] = z * df[e];
      ov[i] = r;
    }
  }
  if (!part) return;
  s = cu_block_sum(s, sh);
  if (threadIdx.x == 0) part[w * gridDim.x + blockIdx.x] = s;
}

/* out[w] = sum_b part[w * nb + b]: a warp per writer, lane-strided sums, then the warp's
 * fixed tree (deterministic). */
static __global__ void k_sum_rows(const double *part, int nb, int nw, double *out) {
  const int w = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
  if (w >= nw) return; /* whole warps: the shuffles below see all 32 lanes */
  double s = 0;
  for (int b = lane; b < nb; b += 32) s += part[(size_t)w * nb + b];
  s = cu_warp_sum(s);
  if (lane == 0) out[w] = s;
}

static void sum_rows(cu_ws *ws, const double *part, int nb, int nw, double *out) {
  k_sum_rows<<<(nw + 3) / 4, 128, 0, ws->st>>>(part, nb, nw, out);
  EP_CHECK_LAUNCH();
}

extern "C" void cu_node_grad(cu_ws *ws, const float *x, const float *c, const float *dd, const float *zn,
                             double *dz, float *dx, int nw) {
  if (nw == 0 || (!dz && !dx)) return;
  const size_t ND = ws->N * (size_t)ws->D;
  EP_CHECK(nw <= ws->W, "node gradient of %d writers (workspace has %d)", nw, ws->W);
  /* blocks per writer: enough for the device with one writer (the MLP's), fewer with many
   * (the heads'); fixed per nw, so the sums' order is too */
  const int nb = nw >= 8 ? CU_RED_BLOCKS / 4 : CU_RED_BLOCKS;
  const int v4 = ND % 4 == 0 && !(((uintptr_t)x | (uintptr_t)c | (uintptr_t)dd | (uintptr_t)dx) & 15);
  if (v4) k_node_grad<4><<<dim3(nb, nw), 256, 0, ws->st>>>(x, c, dd, zn, dz ? ws->part : NULL, dx, ND);
  else k_node_grad<1><<<dim3(nb, nw), 256, 0, ws->st>>>(x, c, dd, zn, dz ? ws->part : NULL, dx, ND);
  EP_CHECK_LAUNCH();
  if (dz) sum_rows(ws, ws->part, nb, nw, dz);
}

/* out[j] = sum_b part[b * cnt + j] over many chunks, in double and in a fixed order, one
 * coalesced pass: a block takes 32 outputs x CU_SUM_GROUPS groups; group y sums chunks y,
 * y + CU_SUM_GROUPS, ... in order, then the group sums are added in order. */
#define CU_SUM_GROUPS 8
static __global__ void __launch_bounds__(32 * CU_SUM_GROUPS)
    k_sum_chunks_g(const float *__restrict__ part, int nb, int cnt, double *__restrict__ out) {
  __shared__ double red[CU_SUM_GROUPS][32];
  const int j = blockIdx.x * 32 + threadIdx.x, y = threadIdx.y;
  double acc = 0;
  if (j < cnt)
#pragma unroll 8
    for (int b = y; b < nb; b += CU_SUM_GROUPS) acc += part[(size_t)b * cnt + j];
  red[y][threadIdx.x] = acc;
  __syncthreads();
  if (y == 0 && j < cnt) {
    double t = 0;
    for (int g = 0; g < CU_SUM_GROUPS; g++) t += red[g][threadIdx.x];
    out[j] = t;
  }
}

/* out[j] = sum_s part[s * cnt + j] in order, in double (few chunks: a thread an output). */
static __global__ void k_sum_chunks_2(const float *part, int ns, int cnt, double *out) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= cnt) return;
  double acc = 0;
#pragma unroll 8
  for (int s = 0; s < ns; s++) acc += part[(size_t)s * cnt + j];
  out[j] = acc;
}

/* ddelta[w, j] += sum_{r < R} Z[r, w] dY[r, j] (one cu_dd_src: Z[r * ldz + w]) for writers
 * w < n and columns j of the N*D token-row space, in exact fp32 FMAs (k_ddelta_tc,
 * ddelta_tc.cu, takes the shapes it covers; this one the rest, or all with
 * EP_CUDA_DDELTA_TC=0): the reader-gradient columns j, j + 1 of a thread stay in registers
 * (2 MR floats, MR >= R, zero above R), Z^T in shared memory ([n][MR], broadcast reads),
 * and each writer's ddelta pair is read and written once: the update is bound by the
 * ddelta traffic, which this keeps at one read and one write per writer and column
 * (cuBLAS's GEMM with K = R, beta = 1 moved it at about 40 % of the bandwidth). Exact
 * fp32 products in every precision, summed over r in order, then added to ddelta.
 * Grid-stride over column pairs; ND even. PIPE (ws->dd_pipe): the next four writers'
 * ddelta loads are issued before this four's sums (tf32 masked step 8.94-9.00 -> 8.82-8.83
 * ms at 32 x 20, an H200, two runs each). */
template <int MR, bool PIPE>
static __global__ void __launch_bounds__(256) k_ddelta(const cu_dd_src a, int n, size_t ND,
                                                       float *__restrict__ dd) {
  extern __shared__ __align__(16) float zt[]; /* [n][MR] */
  const int R = a.R;
  const float *__restrict__ dY = a.dY;
  for (int i = threadIdx.x; i < n * MR; i += blockDim.x) {
    const int w = i / MR, r = i % MR;
    zt[i] = r < R ? a.Z[(size_t)r * a.ldz + w] : 0.0f;
  }
  __syncthreads();
  const size_t npair = ND / 2;
  for (size_t p = (size_t)blockIdx.x * blockDim.x + threadIdx.x; p < npair; p += (size_t)gridDim.x * blockDim.x) {
    const size_t j = 2 * p;
    float y0[MR], y1[MR];
#pragma unroll
    for (int r = 0; r < MR; r++) {
      float2 v = make_float2(0.0f, 0.0f);
      if (r < R) v = __ldg(reinterpret_cast<const float2 *>(dY + (size_t)r * ND + j));
      y0[r] = v.x;
      y1[r] = v.y;
    }
    int w = 0;
    float2 dn[4]; /* PIPE: the next four writers' ddelta, loading while these four are summed */
    if (PIPE && n >= 4)
#pragma unroll
      for (int k = 0; k < 4; k++) dn[k] = *reinterpret_cast<const float2 *>(dd + (size_t)k * ND + j);
    for (; w + 4 <= n; w += 4) { /* four writers' ddelta loads in flight (eight with PIPE) */
      float2 d[4];
#pragma unroll
      for (int k = 0; k < 4; k++)
        d[k] = PIPE ? dn[k] : *reinterpret_cast<const float2 *>(dd + (size_t)(w + k) * ND + j);
      if (PIPE && w + 8 <= n)
#pragma unroll
        for (int k = 0; k < 4; k++) dn[k] = *reinterpret_cast<const float2 *>(dd + (size_t)(w + 4 + k) * ND + j);
#pragma unroll
      for (int k = 0; k < 4; k++) {
        const float *zr = zt + (w + k) * MR;
        float a0 = 0.0f, a1 = 0.0f;
#pragma unroll
        for (int r = 0; r < MR; r += 4) {
          const float4 z = *reinterpret_cast<const float4 *>(zr + r);
          a0 = fmaf(z.x, y0[r], a0);
          a1 = fmaf(z.x, y1[r], a1);
          a0 = fmaf(z.y, y0[r + 1], a0);
          a1 = fmaf(z.y, y1[r + 1], a1);
          a0 = fmaf(z.z, y0[r + 2], a0);
          a1 = fmaf(z.z, y1[r + 2], a1);
          a0 = fmaf(z.w, y0[r + 3], a0);
          a1 = fmaf(z.w, y1[r + 3], a1);
        }
        d[k].x += a0;
        d[k].y += a1;
      }
#pragma unroll
      for (int k = 0; k < 4; k++) *reinterpret_cast<float2 *>(dd + (size_t)(w + k) * ND + j) = d[k];
    }
    for (; w < n; w++) {
      const float *zr = zt + w * MR;
      float a0 = 0.0f, a1 = 0.0f;
#pragma unroll
      for (int r = 0; r < MR; r++) {
        a0 = fmaf(zr[r], y0[r], a0);
        a1 = fmaf(zr[r], y1[r], a1);
      }
      float2 *q = reinterpret_cast<float2 *>(dd + (size_t)w * ND + j);
      float2 v = *q;
      v.x += a0;
      v.y += a1;
      *q = v;
    }
  }
}

template <int MR>
static void cu_ddelta_launch(cu_ws *ws, const cu_dd_src &a, int n, float *dd) {
  const size_t ND = ws->N * (size_t)ws->D, smem = (size_t)n * MR * sizeof(float);
  unsigned blocks = cu_blocks(ND / 2, 256);
  const unsigned cap = (unsigned)ws->sm_count * 4u; /* Z^T is loaded once per block */
  if (blocks > cap) blocks = cap;
  if (ws->dd_pipe) k_ddelta<MR, true><<<blocks, 256, smem, ws->st>>>(a, n, ND, dd);
  else k_ddelta<MR, false><<<blocks, 256, smem, ws->st>>>(a, n, ND, dd);
  EP_CHECK_LAUNCH();
}

/* Reduction rows k_ddelta is compiled for at R rows (0: more than it covers). */
static int cu_ddelta_mr(int R) {
  static const int mr[] = {4, 8, 16, 24, 40, 48};
  for (int i = 0; i < (int)(sizeof mr / sizeof mr[0]); i++)
    if (R <= mr[i]) return mr[i];
  return 0;
}

/* Does k_ddelta cover R reduction rows over n writers? */
static int cu_ddelta_covers(const cu_ws *ws, int R, int n) {
  const int mr = cu_ddelta_mr(R);
  const size_t ND = ws->N * (size_t)ws->D;
  return ws->ddelta_kernel && mr && ND % 2 == 0 && (size_t)n * mr * sizeof(float) <= 48 * 1024;
}

extern "C" void cu_ddelta_add(cu_ws *ws, cu_dd_src a, cu_dd_src b, int w0, int n) {
  const size_t ND = ws->N * (size_t)ws->D;
  const int R = a.R + b.R;
  if (n == 0 || R == 0) return;
  float *dd = ws->ddelta + (size_t)w0 * ND;
  EP_CHECK(w0 + n <= ws->W, "ddelta of writers [%d, %d) of %d", w0, w0 + n, ws->W);
  if (cu_ddelta_tc_covers(ws, R, n)) { /* 3xTF32 on tensor cores */
    cu_ddelta_tc(ws, a, b, n, dd);
    return;
  }
  EP_CHECK(b.R == 0, "a two-source ddelta update of %d + %d rows over %d writers is not covered", a.R, b.R, n);
  if (cu_ddelta_covers(ws, R, n)) { /* exact fp32 in k_ddelta */
    switch (cu_ddelta_mr(R)) {
    case 4: cu_ddelta_launch<4>(ws, a, n, dd); break;
    case 8: cu_ddelta_launch<8>(ws, a, n, dd); break;
    case 16: cu_ddelta_launch<16>(ws, a, n, dd); break;
    case 24: cu_ddelta_launch<24>(ws, a, n, dd); break;
    case 40: cu_ddelta_launch<40>(ws, a, n, dd); break;
    default: cu_ddelta_launch<48>(ws, a, n, dd); break;
    }
    return;
  }
  if (ws->compute == 2) { /* bf16: the operands cu_edge_grad converted */
    EP_CHECK(ws->dy_bf_of == a.dY, "ddelta in bf16 from reader gradients that were not converted");
    cu_gemm_bf16(ws, 1, 0, n, (int)ND, a.R, 1.0f, ws->z_bf + (a.Z - ws->zd), a.ldz, ws->dy_bf, (int)ND, 1.0f, dd,
                 (int)ND);
  } else cu_gemm(ws, 1, 0, n, (int)ND, a.R, 1.0f, a.Z, a.ldz, a.dY, (int)ND, 1.0f, dd, (int)ND);
}

/* Token rows per edge-gradient chunk: the largest divisor c of N that still leaves at
 * least CU_EDGE_CHUNKS chunks (independent GEMMs to fill the device; K = c D each), or
 * ws->edge_rows when set (EP_CUDA_EDGE_ROWS, for measurements; must divide N). */
static int cu_edge_rows(const cu_ws *ws) {
  const size_t N = ws->N;
  if (ws->edge_rows > 0 && N % (size_t)ws->edge_rows == 0) return ws->edge_rows;
  int best = 1;
  for (size_t c = 1; c <= N / CU_EDGE_CHUNKS; c++)
    if (N % c == 0) best = (int)c;
  return best;
}

extern "C" void cu_edge_grad(cu_ws *ws, const float *dY, int R, int w0, int n, const float *Z, double *dz,
                             int dd) {
  if (n == 0) return;
  const int D = ws->D, ND = (int)(ws->N * (size_t)D);
  const int bf = ws->compute == 2;
  const int crow = cu_edge_rows(ws), K = crow * D;
  int nb = (int)(ws->N / (size_t)crow);
  const size_t off = (size_t)w0 * ND; /* first writer's row of delta / ddelta */
  EP_CHECK(R <= 3 * ws->H + 1 && w0 + n <= ws->W, "edge gradient of %d readers x writers [%d, %d)", R, w0, w0 + n);
  if (bf) {
    cu_to_bf16(ws, dY, ws->dy_bf, (size_t)R * ND);
    ws->dy_bf_of = dY;
  }
  /* gchunk[b] [R, n] = dY[:, chunk b] x delta[:, chunk b]^T over nb column chunks, then
   * the chunks summed in double: the tensor-core kernel's slices (fp32 and TF32), or a
   * strided-batched GEMM over chunks of crow token rows (bf16, or shapes the kernel does
   * not cover), with enough independent blocks to fill the device (one GEMM over all rows
   * would give a long K and few blocks). */
  const __half *dh = cu_delta16_on(ws) ? ws->delta_h + off : NULL;
  const int S = bf ? 0 : cu_edge_tc(ws, dY, R, ws->delta + off, dh, n, ws->compute == 0, ws->gchunk);
  if (S) nb = S;
  else if (bf)
    cu_gemm_batched_bf16(ws, 0, 1, R, n, K, ws->dy_bf, ND, K, ws->delta_bf + off, ND, K, ws->gchunk, n,
                         (long long)R * n, nb);
  else
    cu_gemm_batched(ws, 0, 1, R, n, K, 1.0f, dY, ND, K, cu_delta32(ws) + off, ND, K, 0.0f, ws->gchunk, n,
                    (long long)R * n, nb);
  const int cnt = R * n;
  if (nb <= CU_CHUNK_ONE_PASS) { /* few chunks: each output sums its nb chunks in order */
    k_sum_chunks_2<<<(cnt + 127) / 128, 128, 0, ws->st>>>(ws->gchunk, nb, cnt, dz);
    EP_CHECK_LAUNCH();
  } else {
    k_sum_chunks_g<<<(cnt + 31) / 32, dim3(32, CU_SUM_GROUPS), 0, ws->st>>>(ws->gchunk, nb, cnt, dz);
    EP_CHECK_LAUNCH();
  }
  cu_mark(ws, CU_PH_EDGE);
  /* ddelta[w0 : w0 + n] += Z^T dY (fp32 accumulation into fp32 ddelta in every mode) */
  if (!dd) return;
  const cu_dd_src src = {Z, dY, R, n}, none = {NULL, NULL, 0, 0};
  cu_ddelta_add(ws, src, none, w0, n);
  cu_mark(ws, CU_PH_DDELTA);
}

/* yf[p, d] = base[row, d] + sum_w z[w] delta_w[row, d] (writer order, as the CPU); delta
 * fp32, or TF32's fp16 copy. */
template <typename TD>
static __global__ void k_resid_fwd(const float *__restrict__ base, const TD *__restrict__ delta,
                                   const float *__restrict__ z, int n, const int32_t *__restrict__ prow,
                                   int P, int D, size_t ND, float *__restrict__ yf) {
  const size_t total = (size_t)P * D;
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
    const size_t p = i / D, d = i % D, row = (size_t)prow[p] * D + d;
    float y = base[row];
#pragma unroll 8
    for (int w = 0; w < n; w++) y += z[w] * (float)delta[(size_t)w * ND + row];
    yf[i] = y;
  }
}

extern "C" void cu_resid_fwd(cu_ws *ws, const float *base, const float *z, int n, float *yf) {
  const size_t total = (size_t)ws->P * ws->D;
  if (total == 0) return;
  const size_t ND = ws->N * (size_t)ws->D;
  if (cu_delta16_on(ws))
    k_resid_fwd<<<cu_blocks(total, 128), 128, 0, ws->st>>>(base, ws->delta_h, z, n, ws->prow_d, (int)ws->P, ws->D,
                                                           ND, yf);
  else
    k_resid_fwd<<<cu_blocks(total, 128), 128, 0, ws->st>>>(base, ws->delta, z, n, ws->prow_d, (int)ws->P, ws->D,
                                                           ND, yf);
  EP_CHECK_LAUNCH();
}

/* One block per writer: loss positions are distinct rows, so each ddelta entry has one
 * writer thread. V = 4: float4 columns (D a multiple of 4), else V = 1. */
template <int V, typename TD>
static __global__ void __launch_bounds__(RESID_THREADS)
    k_resid_bwd(const float *__restrict__ dy, const TD *__restrict__ delta, float *__restrict__ ddelta,
                const float *__restrict__ z, const int32_t *__restrict__ prow, int P, int D, size_t ND,
                double *__restrict__ dz) {
  typedef typename std::conditional<V == 4, float4, float>::type vec;
  __shared__ double sh[32];
  const size_t w = blockIdx.x;
  const int DV = D / V, total = P * DV;
  const float zw = z[w];
  double s = 0;
  for (int i = threadIdx.x; i < total; i += blockDim.x) {
    const int p = i / DV, dv = i - p * DV;
    const size_t row = w * ND + (size_t)prow[p] * D;
    const vec g = reinterpret_cast<const vec *>(dy + (size_t)p * D)[dv];
    float xf[V];
#pragma unroll
    for (int e = 0; e < V; e++) xf[e] = (float)delta[row + (size_t)dv * V + e];
    vec *o = reinterpret_cast<vec *>(ddelta + row) + dv;
    vec a = *o;
    const float *gf = reinterpret_cast<const float *>(&g);
    float *af = reinterpret_cast<float *>(&a);
#pragma unroll
    for (int e = 0; e < V; e++) {
      s += (double)gf[e] * xf[e];
      af[e] += zw * gf[e];
    }
    *o = a;
  }
  s = cu_block_sum(s, sh);
  if (threadIdx.x == 0) dz[w] = s;
}

extern "C" void cu_resid_bwd(cu_ws *ws, const float *dy, const float *z, int n, double *dz) {
  if (n == 0) return;
  const size_t ND = ws->N * (size_t)ws->D;
  const int v4 = ws->D % 4 == 0 && !(((uintptr_t)dy | (uintptr_t)ws->delta | (uintptr_t)ws->ddelta) & 15);
  const int P = (int)ws->P, D = ws->D;
  if (cu_delta16_on(ws) && v4)
    k_resid_bwd<4><<<n, RESID_THREADS, 0, ws->st>>>(dy, ws->delta_h, ws->ddelta, z, ws->prow_d, P, D, ND, dz);
  else if (cu_delta16_on(ws))
    k_resid_bwd<1><<<n, RESID_THREADS, 0, ws->st>>>(dy, ws->delta_h, ws->ddelta, z, ws->prow_d, P, D, ND, dz);
  else if (v4)
    k_resid_bwd<4><<<n, RESID_THREADS, 0, ws->st>>>(dy, ws->delta, ws->ddelta, z, ws->prow_d, P, D, ND, dz);
  else k_resid_bwd<1><<<n, RESID_THREADS, 0, ws->st>>>(dy, ws->delta, ws->ddelta, z, ws->prow_d, P, D, ND, dz);
  EP_CHECK_LAUNCH();
}

static __global__ void k_gather_rows(const float *x, const int32_t *prow, int P, int D, float *yf) {
  const size_t total = (size_t)P * D;
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x)
    yf[i] = x[(size_t)prow[i / D] * D + i % D];
}

extern "C" void cu_gather_rows(cu_ws *ws, const float *x, float *yf) {
  const size_t total = (size_t)ws->P * ws->D;
  if (total == 0) return;
  k_gather_rows<<<cu_blocks(total, 256), 256, 0, ws->st>>>(x, ws->prow_d, (int)ws->P, ws->D, yf);
  EP_CHECK_LAUNCH();
}
