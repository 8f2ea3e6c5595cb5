/* attention.cu — per-head q/k/v projections, attention core and head outputs, forward
 * and backward.
 *
 * Projections are pointer-batched GEMMs over heads (each head has its own input in the
 * masked run); their biases are added by the core as it loads q, k, v. The core runs one
 * block per (example, head), a warp per query row, with that example's q, k, v (and dO
 * in the backward) in shared memory: sequences up to CU_T_MAX tokens. Keys at
 * or beyond an example's length are masked, later keys too when the model is causal;
 * the probabilities are kept ([H, B, T, T]) for the backward, as in the CPU reference. */
#include <math.h>

#include "cuda_internal.h"
#include "cuda_util.cuh"

/* Warps per block, one per query row up to ws->attn_nw: 8 (four blocks an SM: a GPT-2
 * batch of 32 is 384 blocks, one wave) or ATTN_MAX_WARPS with EP_CUDA_ATTN_WARPS=16 (two
 * blocks an SM; measured 0.1 ms a step slower). */
#define ATTN_MAX_WARPS 16

/* ---- projections ---------------------------------------------------------------------- */

/* Pointer arrays of the 3H per-head projections, entry i = c H + h (c: 0 q, 1 k, 2 v):
 * A[i] = a[c] + h sa, B[i] = w[c] + h dh, C[i] = o[c] + h so (elements of T: fp32, or
 * fp16 inputs and weights). Written on the device in stream order (and so inside a
 * captured graph) right before the GEMM that reads them. */
template <typename T>
struct qkv_ops_t {
  const T *a[3], *w[3];
  float *o[3];
};
typedef qkv_ops_t<float> qkv_ops;

template <typename T>
static __global__ void k_qkv_ptrs(qkv_ops_t<T> p, long long sa, long long so, int dh, int H, const T **A,
                                  const T **B, float **C) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= 3 * H) return;
  const int c = i / H, h = i % H;
  A[i] = p.a[c] + (size_t)h * sa;
  B[i] = p.w[c] + (size_t)h * dh;
  C[i] = p.o[c] + (size_t)h * so;
}

static void cu_qkv_gemm(cu_ws *ws, const qkv_ops *p, long long sa, long long so, int tb, int M, int N, int K,
                        int lda, int ldb, int ldc) {
  const int H = ws->H;
  const float **A = ws->qkv_ptr, **B = A + 3 * H;
  float **C = (float **)(B + 3 * H);
  k_qkv_ptrs<<<(3 * H + 127) / 128, 128, 0, ws->st>>>(*p, sa, so, ws->dh, H, A, B, C);
  EP_CHECK_LAUNCH();
  cu_gemm_ptr_batched(ws, 0, tb, M, N, K, A, lda, B, ldb, C, ldc, 3 * H);
}

/* Layer l's q/k/v weights W[3] and biases b[3]: the model's, or folded (cu_fold_weights). */
static void qkv_weights(const cu_lw *w, int folded, const float *W[3], const float *b[3]) {
  W[0] = folded ? w->fw_q : w->w_q;
  W[1] = folded ? w->fw_k : w->w_k;
  W[2] = folded ? w->fw_v : w->w_v;
  b[0] = folded ? w->fb_q : w->b_q;
  b[1] = folded ? w->fb_k : w->b_k;
  b[2] = folded ? w->fb_v : w->b_v;
}

/* q, k, v [H, N, dh]: head h of q from reader input X + 0 offX + h sX (k: + offX, v:
 * + 2 offX), one batched GEMM over the 3H (head, q/k/v) pairs. Without the biases: the
 * attention core adds them as it loads the rows (cu_attn_fwd, cu_attn_bwd). */
extern "C" void cu_qkv(cu_ws *ws, int l, const float *X, long long sX, long long offX, int folded) {
  const cu_lw *w = &ws->lw[l];
  const int N = (int)ws->N, D = ws->D, dh = ws->dh, H = ws->H, Q = H * dh;
  const long long Ndh = (long long)N * dh;
  const float *W[3], *bm[3];
  qkv_weights(w, folded, W, bm);
  const qkv_ops p = {{X, X + offX, X + 2 * offX}, {W[0], W[1], W[2]}, {ws->q, ws->k, ws->v}};
  cu_qkv_gemm(ws, &p, sX, Ndh, 0, N, dh, D, D, Q, dh);
}

/* As cu_qkv from fp16 xhat (reader (c, h)'s rows at X + c offX + h sX halves) and the
 * fp16 folded weights: f16 tensor cores, fp32 accumulation and output. */
extern "C" void cu_qkv_h(cu_ws *ws, int l, const __half *X, long long sX, long long offX) {
  const cu_lw *w = &ws->lw[l];
  const int N = (int)ws->N, D = ws->D, dh = ws->dh, H = ws->H, Q = H * dh;
  const __half **A = (const __half **)ws->qkv_ptr, **B = A + 3 * H;
  float **C = (float **)(B + 3 * H);
  const qkv_ops_t<__half> p = {{X, X + offX, X + 2 * offX}, {w->hw_q, w->hw_k, w->hw_v}, {ws->q, ws->k, ws->v}};
  k_qkv_ptrs<<<(3 * H + 127) / 128, 128, 0, ws->st>>>(p, sX, (long long)N * dh, dh, H, A, B, C);
  EP_CHECK_LAUNCH();
  const float one = 1.0f, zero = 0.0f;
  /* row-major q_i [N, dh] = X_i [N, D] W_i [D, dh] (ld Q), as column-major C^T = W^T X^T */
  EP_CHECK_CUBLAS(cublasGemmBatchedEx(ws->blas, CUBLAS_OP_N, CUBLAS_OP_N, dh, N, D, &one, (const void *const *)B,
                                      CUDA_R_16F, Q, (const void *const *)A, CUDA_R_16F, D, &zero,
                                      (void *const *)C, CUDA_R_32F, dh, 3 * H, CUBLAS_COMPUTE_32F,
                                      CUBLAS_GEMM_DEFAULT));
}

extern "C" void cu_head_out(cu_ws *ws, int l, int bias) {
  const cu_lw *w = &ws->lw[l];
  const int N = (int)ws->N, D = ws->D, dh = ws->dh, H = ws->H;
  cu_gemm_batched(ws, 0, 0, N, D, dh, 1.0f, ws->ob, dh, (long long)N * dh, w->w_o, D, (long long)dh * D, 0.0f,
                  ws->hx, D, (long long)N * D, H);
  /* the output bias is split evenly over the heads */
  if (bias) cu_add_bias(ws, ws->hx, w->b_o, (size_t)H * N, D, (float)(1.0 / H));
}

extern "C" void cu_head_out_bwd(cu_ws *ws, int l) {
  const cu_lw *w = &ws->lw[l];
  const int N = (int)ws->N, D = ws->D, dh = ws->dh, H = ws->H;
  cu_gemm_batched(ws, 0, 1, N, dh, D, 1.0f, ws->hx, D, (long long)N * D, w->w_o, D, (long long)dh * D, 0.0f,
                  ws->dob, dh, (long long)N * dh, H);
}

/* Xn's reader 3h + c gets d(input) = dq/dk/dv[h] W_c[:, h]^T: one batched GEMM. */
extern "C" void cu_qkv_bwd(cu_ws *ws, int l, int folded) {
  const cu_lw *w = &ws->lw[l];
  const int N = (int)ws->N, D = ws->D, dh = ws->dh, H = ws->H, Q = H * dh;
  const long long ND = (long long)N * D, Ndh = (long long)N * dh;
  const float *W[3], *bm[3];
  qkv_weights(w, folded, W, bm);
  const qkv_ops p = {{ws->dq, ws->dk, ws->dv}, {W[0], W[1], W[2]}, {ws->Xn, ws->Xn + ND, ws->Xn + 2 * ND}};
  cu_qkv_gemm(ws, &p, Ndh, 3 * ND, 1, N, D, dh, dh, Q, D);
}

/* ---- core ---------------------------------------------------------------------------- */

/* One block per (example, head); warp w takes query rows w, w + nwarps, ... Rows of
 * q/k/v/dO sit in shared memory padded to attn_ld(dh) floats: dh + 4 when dh is a
 * multiple of 4, so a lane that walks key j reads it as float4s and the 8 lanes of each
 * quarter-warp hit distinct banks (else dh + 1, scalar reads, lanes also apart). */
static int attn_warps(int T, int nw) { return T < nw ? T : nw; }
static __host__ __device__ __forceinline__ int attn_ld(int dh) { return dh % 4 == 0 ? dh + 4 : dh + 1; }
static size_t attn_smem_fwd(int T, int dh, int nw) {
  return ((size_t)3 * T * attn_ld(dh) + (size_t)attn_warps(T, nw) * T) * sizeof(float);
}
static size_t attn_smem_bwd(int T, int dh) {
  return ((size_t)4 * T * attn_ld(dh) + (size_t)T * (T + 1)) * sizeof(float);
}

/* The q, k, v biases of one layer ([H dh] each, NULL: none); the projections leave them
 * out and the core adds them as it loads the rows (the same float addition). */
typedef struct {
  const float *b[3];
} attn_bias;

static __device__ __forceinline__ int attn_jmax(int t, int len, int causal) {
  int j = causal ? (t + 1 < len ? t + 1 : len) : len;
  return j < 1 ? 1 : j;
}

/* Where a core reads q, k, v and writes o: element (head h, token row n, d) of x at
 * x + h hs + n rs + d, of o at o + h ohs + n ors + d; opad > 0: o's columns dh, dh + 1
 * of each head get 1 and the next opad - 2 get 0 (cu_attn_fwd_rows). */
typedef struct {
  long long hs, rs, ohs, ors;
  int opad;
} attn_io;

/* s [T, attn_ld(dh)] = rows x [T, dh] at row stride rs (+ bias [dh] when non-NULL); float4
 * loads when they can. */
static __device__ void attn_stage(float *s, const float *x, long long rs, const float *bias, int T, int dh) {
  const int ld = attn_ld(dh);
  if ((dh & 3) == 0 && (rs & 3) == 0 && ((uintptr_t)x & 15) == 0) {
    const int n4 = T * dh / 4;
    for (int i = threadIdx.x; i < n4; i += blockDim.x) {
      const int r = 4 * i / dh, d = 4 * i - r * dh;
      float4 v = *reinterpret_cast<const float4 *>(x + r * rs + d);
      if (bias) {
        v.x += bias[d];
        v.y += bias[d + 1];
        v.z += bias[d + 2];
        v.w += bias[d + 3];
      }
      *reinterpret_cast<float4 *>(s + r * ld + d) = v; /* ld = dh + 4: 16-byte aligned */
    }
    return;
  }
  for (int i = threadIdx.x; i < T * dh; i += blockDim.x) {
    const int r = i / dh, d = i - r * dh;
    const float xv = x[r * rs + d];
    s[r * ld + d] = bias ? xv + bias[d] : xv;
  }
}

/* a . b over n floats of shared memory (rows at attn_ld strides), four partial sums;
 * float4 reads when n is a multiple of 4 (the rows are then 16-byte aligned). */
static __device__ __forceinline__ float attn_dot(const float *a, const float *b, int n) {
  float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
  if (n % 4 == 0) {
    const float4 *a4 = reinterpret_cast<const float4 *>(a), *b4 = reinterpret_cast<const float4 *>(b);
    for (int d = 0; d < n / 4; d++) {
      const float4 x = a4[d], y = b4[d];
      s0 = fmaf(x.x, y.x, s0);
      s1 = fmaf(x.y, y.y, s1);
      s2 = fmaf(x.z, y.z, s2);
      s3 = fmaf(x.w, y.w, s3);
    }
    return (s0 + s1) + (s2 + s3);
  }
  int d = 0;
  for (; d + 4 <= n; d += 4) {
    s0 = fmaf(a[d], b[d], s0);
    s1 = fmaf(a[d + 1], b[d + 1], s1);
    s2 = fmaf(a[d + 2], b[d + 2], s2);
    s3 = fmaf(a[d + 3], b[d + 3], s3);
  }
  for (; d < n; d++) s0 = fmaf(a[d], b[d], s0);
  return (s0 + s1) + (s2 + s3);
}

static __device__ __forceinline__ const float *attn_head_bias(const float *b, int h, int dh) {
  return b ? b + (size_t)h * dh : NULL;
}

/* p [H, B, T, T] = softmax(q k^T / sqrt(dh)) over the unmasked keys, o = p v (layouts io).
 * Blocks of NW warps, 32 / NW of them an SM: 64 registers, no spills (with 16 warps and
 * no minimum ptxas aimed at three blocks and spilled). */
template <int NW>
static __global__ void __launch_bounds__(32 * NW, 32 / NW)
    k_attn_fwd(const float *q, const float *k, const float *v, attn_bias bias, float *p, float *o, attn_io io,
               const int32_t *len, int B, int T, int dh, int causal, float scale) {
  extern __shared__ float sm[]; /* indexed in int: at most CU_T_MAX rows */
  const int b = blockIdx.x, h = blockIdx.y, ld = attn_ld(dh);
  const size_t N = (size_t)B * T;
  const size_t base = (size_t)h * io.hs + (size_t)b * T * io.rs; /* row (b, 0) of head h */
  const size_t obase = (size_t)h * io.ohs + (size_t)b * T * io.ors;
  const size_t pbase = (size_t)h * N * T + (size_t)b * T * T;
  float *qs = sm, *ks = qs + T * ld, *vs = ks + T * ld, *ps = vs + T * ld;
  attn_stage(qs, q + base, io.rs, attn_head_bias(bias.b[0], h, dh), T, dh);
  attn_stage(ks, k + base, io.rs, attn_head_bias(bias.b[1], h, dh), T, dh);
  attn_stage(vs, v + base, io.rs, attn_head_bias(bias.b[2], h, dh), T, dh);
  __syncthreads();
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  const int L = len[b];
  float *pw = ps + warp * T;
  for (int t = warp; t < T; t += nwarps) {
    const int jmax = attn_jmax(t, L, causal);
    const float *qt = qs + t * ld;
    float mx = -INFINITY;
    for (int j = lane; j < jmax; j += 32) {
      const float s = attn_dot(qt, ks + j * ld, dh) * scale;
      pw[j] = s;
      mx = fmaxf(mx, s);
    }
    mx = cu_warp_maxf(mx);
    float sum = 0.0f;
    for (int j = lane; j < jmax; j += 32) {
      const float e = expf(pw[j] - mx);
      pw[j] = e;
      sum += e;
    }
    sum = cu_warp_sumf(sum);
    float *pr = p + pbase + t * T;
    for (int j = lane; j < T; j += 32) {
      const float pv = j < jmax ? pw[j] / sum : 0.0f;
      pw[j] = pv;
      pr[j] = pv;
    }
    __syncwarp();
    float *ot = o + obase + (size_t)t * io.ors;
    for (int d = dh + lane; d < dh + io.opad; d += 32) ot[d] = d - dh < 2 ? 1.0f : 0.0f;
    for (int d = lane; d < dh; d += 32) {
      float a0 = 0.0f, a1 = 0.0f;
      int j = 0;
      for (; j + 2 <= jmax; j += 2) {
        a0 = fmaf(pw[j], vs[j * ld + d], a0);
        a1 = fmaf(pw[j + 1], vs[(j + 1) * ld + d], a1);
      }
      if (j < jmax) a0 = fmaf(pw[j], vs[j * ld + d], a0);
      ot[d] = a0 + a1;
    }
    __syncwarp();
  }
}

static attn_bias attn_biases(const cu_ws *ws, int l, int folded) {
  const cu_lw *w = &ws->lw[l];
  const attn_bias a = {{folded ? w->fb_q : w->b_q, folded ? w->fb_k : w->b_k, folded ? w->fb_v : w->b_v}};
  return a;
}

static void attn_fwd_io(cu_ws *ws, int l, int folded, const float *q, const float *k, const float *v, float *p,
                        float *o, attn_io io) {
  const dim3 grid((unsigned)ws->B, (unsigned)ws->H);
  auto *kern = ws->attn_nw == 8 ? k_attn_fwd<8> : k_attn_fwd<ATTN_MAX_WARPS>;
  kern<<<grid, 32 * attn_warps(ws->T, ws->attn_nw), attn_smem_fwd(ws->T, ws->dh, ws->attn_nw), ws->st>>>(
      q, k, v, attn_biases(ws, l, folded), p, o, io, ws->len_d, ws->B, ws->T, ws->dh, ws->m->cfg.causal,
      (float)(1.0 / sqrt((double)ws->dh)));
  EP_CHECK_LAUNCH();
}

extern "C" void cu_attn_fwd(cu_ws *ws, int l, int folded, const float *q, const float *k, const float *v,
                            float *p, float *o) {
  const long long Ndh = (long long)ws->N * ws->dh;
  attn_fwd_io(ws, l, folded, q, k, v, p, o, attn_io{Ndh, ws->dh, Ndh, ws->dh, 0});
}

extern "C" void cu_attn_fwd_rows(cu_ws *ws, int l, const float *qkv, float *p, float *oa) {
  const long long Q = (long long)ws->H * ws->dh, hp = ws->dh + 4;
  attn_fwd_io(ws, l, 0, qkv, qkv + Q, qkv + 2 * Q, p, oa, attn_io{ws->dh, 3 * Q, hp, ws->H * hp, 4});
}

extern "C" void cu_qkv_rows(cu_ws *ws, int l, const float *X, float *qkv) {
  const int N = (int)ws->N, D = ws->D, Q3 = 3 * ws->H * ws->dh;
  cu_gemm(ws, 0, 0, N, Q3, D, 1.0f, X, D, ws->lw[l].w_qkv, Q3, 0.0f, qkv, Q3);
}

extern "C" void cu_head_out_rows(cu_ws *ws, int l, const float *oa, float *res, const cu_wout *wo, int w0) {
  const int N = (int)ws->N, D = ws->D, H = ws->H, hp = ws->dh + 4, Hp = H * hp;
  const float *W = ws->lw[l].w_oa;
  if (wo) {
    const size_t r0 = wo->off / (size_t)D; /* the first row stored */
    cu_gemm_batched(ws, 0, 0, N - (int)r0, D, hp, 1.0f, oa + r0 * Hp, Hp, hp, W, D, (long long)hp * D, 0.0f,
                    wo->out + (size_t)w0 * wo->stride, D, (long long)wo->stride, H);
  }
  cu_gemm(ws, 0, 0, N, D, Hp, 1.0f, oa, Hp, W, D, 1.0f, res, D);
}

/* ds_tj = p_tj (dp_tj - sum_j p_tj dp_tj) / sqrt(dh) with dp_tj = dO_t . v_j (phase 1,
 * into shared ds); then dq = ds k, dk = ds^T q, dv = p^T dO (phase 2). Masked entries
 * have p = 0 and contribute nothing. */
template <int NW> /* ptxas's own register choice: 55 (16 warps), 53 (8), no spills */
static __global__ void __launch_bounds__(32 * NW)
    k_attn_bwd(const float *q, const float *k, const float *v, attn_bias bias, const float *p,
               const float *dO, float *dq, float *dk, float *dv, int B, int T, int dh, float scale) {
  extern __shared__ float sm[]; /* indexed in int: at most CU_T_MAX rows */
  const int b = blockIdx.x, h = blockIdx.y, ld = attn_ld(dh), lt = T + 1;
  const size_t N = (size_t)B * T;
  const size_t base = (size_t)h * N * dh + (size_t)b * T * dh;
  const size_t pbase = (size_t)h * N * T + (size_t)b * T * T;
  float *qs = sm, *ks = qs + T * ld, *vs = ks + T * ld, *dos = vs + T * ld;
  float *dss = dos + T * ld; /* [T, T + 1] */
  attn_stage(qs, q + base, dh, attn_head_bias(bias.b[0], h, dh), T, dh);
  attn_stage(ks, k + base, dh, attn_head_bias(bias.b[1], h, dh), T, dh);
  attn_stage(vs, v + base, dh, attn_head_bias(bias.b[2], h, dh), T, dh);
  attn_stage(dos, dO + base, dh, NULL, T, dh);
  __syncthreads();
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  for (int t = warp; t < T; t += nwarps) {
    const float *pr = p + pbase + t * T;
    float *dsr = dss + t * lt;
    float acc = 0.0f;
    for (int j = lane; j < T; j += 32) {
      const float pj = pr[j];
      const float dp = pj != 0.0f ? attn_dot(dos + t * ld, vs + j * ld, dh) : 0.0f;
      dsr[j] = dp;
      acc += pj * dp;
    }
    const float dot = cu_warp_sumf(acc);
    for (int j = lane; j < T; j += 32) { /* each lane rewrites its own entries */
      const float pj = pr[j];
      dsr[j] = pj != 0.0f ? pj * (dsr[j] - dot) * scale : 0.0f;
    }
  }
  __syncthreads(); /* ds complete for this block */
  const float *pb = p + pbase;
  for (int i = threadIdx.x; i < T * dh; i += blockDim.x) {
    const int r = i / dh, d = i - r * dh;
    float gq = 0.0f, gk = 0.0f, gv = 0.0f;
    for (int j = 0; j < T; j++) {
      gq = fmaf(dss[r * lt + j], ks[j * ld + d], gq);
      gk = fmaf(dss[j * lt + r], qs[j * ld + d], gk);
      gv = fmaf(pb[j * T + r], dos[j * ld + d], gv);
    }
    dq[base + i] = gq;
    dk[base + i] = gk;
    dv[base + i] = gv;
  }
}

extern "C" void cu_attn_bwd(cu_ws *ws, int l, int folded, const float *q, const float *k, const float *v,
                            const float *p, const float *dO, float *dq, float *dk, float *dv) {
  const dim3 grid((unsigned)ws->B, (unsigned)ws->H);
  auto *kern = ws->attn_nw == 8 ? k_attn_bwd<8> : k_attn_bwd<ATTN_MAX_WARPS>;
  kern<<<grid, 32 * attn_warps(ws->T, ws->attn_nw), attn_smem_bwd(ws->T, ws->dh), ws->st>>>(
      q, k, v, attn_biases(ws, l, folded), p, dO, dq, dk, dv, ws->B, ws->T, ws->dh,
      (float)(1.0 / sqrt((double)ws->dh)));
  EP_CHECK_LAUNCH();
}

extern "C" void cu_attn_setup(cu_ws *ws) {
  EP_CHECK(ws->Tmax <= CU_T_MAX, "the CUDA attention kernels handle sequences up to %d tokens (asked for %d)",
           CU_T_MAX, ws->Tmax);
  EP_CHECK(ws->attn_nw == 8 || ws->attn_nw == ATTN_MAX_WARPS, "EP_CUDA_ATTN_WARPS=%d: 8 or %d", ws->attn_nw,
           ATTN_MAX_WARPS);
  int dev = 0, optin = 0;
  EP_CHECK_CUDA(cudaGetDevice(&dev));
  EP_CHECK_CUDA(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  ws->attn_smem_fwd = attn_smem_fwd(ws->Tmax, ws->dh, ws->attn_nw);
  ws->attn_smem_bwd = attn_smem_bwd(ws->Tmax, ws->dh);
  EP_CHECK(
      ws->attn_smem_bwd <= (size_t)optin,
      "attention backward needs %zu bytes of shared memory per block (T %d, d_head %d); the device allows %d",
      ws->attn_smem_bwd, ws->Tmax, ws->dh, optin);
  if (ws->attn_nw == 8) {
    EP_CHECK_CUDA(cudaFuncSetAttribute(k_attn_fwd<8>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       (int)ws->attn_smem_fwd));
    EP_CHECK_CUDA(cudaFuncSetAttribute(k_attn_bwd<8>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       (int)ws->attn_smem_bwd));
  } else {
    EP_CHECK_CUDA(cudaFuncSetAttribute(k_attn_fwd<ATTN_MAX_WARPS>,
                                       cudaFuncAttributeMaxDynamicSharedMemorySize, (int)ws->attn_smem_fwd));
    EP_CHECK_CUDA(cudaFuncSetAttribute(k_attn_bwd<ATTN_MAX_WARPS>,
                                       cudaFuncAttributeMaxDynamicSharedMemorySize, (int)ws->attn_smem_bwd));
  }
}

/* x_i = hx_i[e] + scale b[e mod D] (b NULL: hx_i[e]); res[e] += sum_i x_i in head order
 * (the CPU reference's order); from element off on, wout[i stride + e - off] = x_i. */
static __global__ void k_head_sum(const float *hx, const float *b, float scale, float *res, float *wout,
                                  size_t stride, size_t off, size_t ND, int D, int H) {
  for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < ND; e += (size_t)gridDim.x * blockDim.x) {
    const float be = b ? b[e % (size_t)D] : 0.0f;
    const int store = wout && e >= off;
    float s = 0.0f;
    for (int i = 0; i < H; i++) {
      float x = hx[(size_t)i * ND + e];
      if (b) x += scale * be;
      s += x;
      if (store) wout[(size_t)i * stride + e - off] = x;
    }
    res[e] += s;
  }
}

extern "C" void cu_head_sum(cu_ws *ws, int l, const float *hx, float *res, const cu_wout *wo, int w0) {
  const size_t ND = ws->N * (size_t)ws->D;
  float *out = wo ? wo->out + (size_t)w0 * wo->stride : NULL;
  k_head_sum<<<cu_blocks(ND, 256), 256, 0, ws->st>>>(hx, ws->lw[l].b_o, (float)(1.0 / ws->H), res, out,
                                                     wo ? wo->stride : 0, wo ? wo->off : 0, ND, ws->D, ws->H);
  EP_CHECK_LAUNCH();
}
