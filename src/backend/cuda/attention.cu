/* attention.cu — per-head q/k/v projections, attention core and head outputs, forward
 * and backward.
 *
 * Projections are strided-batched GEMMs over heads (each head has its own input in the
 * masked run). The core runs one block per (example, head) with that example's K and V
 * (and Q, dO in the backward) in shared memory: sequences up to CU_T_MAX tokens. Keys at
 * or beyond an example's length are masked, later keys too when the model is causal;
 * the probabilities are kept ([H, B, T, T]) for the backward, as in the CPU reference. */
#include <math.h>

#include "cuda_internal.h"
#include "cuda_util.cuh"

#define ATTN_THREADS 128
#define ATTN_WARPS (ATTN_THREADS / 32)

/* ---- projections ---------------------------------------------------------------------- */

/* q, k, v [H, N, dh] += their biases (grid y: 0 q, 1 k, 2 v; a NULL bias is skipped). */
static __global__ void k_add_qkv_bias(float *q, float *k, float *v, const float *bq, const float *bk,
                                      const float *bv, size_t Ndh, int dh, int H) {
  float *y = blockIdx.y == 0 ? q : blockIdx.y == 1 ? k : v;
  const float *b = blockIdx.y == 0 ? bq : blockIdx.y == 1 ? bk : bv;
  if (!b) return;
  const size_t n = Ndh * (size_t)H;
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    y[i] += b[(i / Ndh) * dh + i % dh];
}

/* Pointer arrays of the 3H per-head projections, entry i = c H + h (c: 0 q, 1 k, 2 v):
 * A[i] = a[c] + h sa, B[i] = w[c] + h dh, C[i] = o[c] + h so. Written on the device in
 * stream order (and so inside a captured graph) right before the GEMM that reads them. */
typedef struct {
  const float *a[3], *w[3];
  float *o[3];
} qkv_ops;

static __global__ void k_qkv_ptrs(qkv_ops p, long long sa, long long so, int dh, int H, const float **A,
                                  const float **B, float **C) {
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
 * + 2 offX), one batched GEMM over the 3H (head, q/k/v) pairs, then the biases. */
extern "C" void cu_qkv(cu_ws *ws, int l, const float *X, long long sX, long long offX, int folded) {
  const cu_lw *w = &ws->lw[l];
  const int N = (int)ws->N, D = ws->D, dh = ws->dh, H = ws->H, Q = H * dh;
  const long long Ndh = (long long)N * dh;
  const float *W[3], *bm[3];
  qkv_weights(w, folded, W, bm);
  const qkv_ops p = {{X, X + offX, X + 2 * offX}, {W[0], W[1], W[2]}, {ws->q, ws->k, ws->v}};
  cu_qkv_gemm(ws, &p, sX, Ndh, 0, N, dh, D, D, Q, dh);
  if (bm[0] || bm[1] || bm[2]) {
    const size_t n = (size_t)H * Ndh;
    k_add_qkv_bias<<<dim3(cu_blocks(n, 256), 3), 256, 0, ws->st>>>(ws->q, ws->k, ws->v, bm[0], bm[1], bm[2],
                                                                    (size_t)Ndh, dh, H);
    EP_CHECK_LAUNCH();
  }
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

/* Padded shared-memory rows (dh + 1) keep lanes that walk keys off one bank. */
static size_t attn_smem_fwd(int T, int dh) { return ((size_t)2 * T * (dh + 1) + (size_t)ATTN_WARPS * T) * 4; }
static size_t attn_smem_bwd(int T, int dh) { return ((size_t)4 * T * (dh + 1) + (size_t)ATTN_WARPS * T) * 4; }

static __device__ __forceinline__ int attn_jmax(int t, int len, int causal) {
  int j = causal ? (t + 1 < len ? t + 1 : len) : len;
  return j < 1 ? 1 : j;
}

static __global__ void k_attn_fwd(const float *q, const float *k, const float *v, float *p, float *o,
                                  const int32_t *len, int B, int T, int dh, int causal, float scale) {
  extern __shared__ float sm[];
  const int b = blockIdx.x, h = blockIdx.y, ld = dh + 1;
  const size_t N = (size_t)B * T;
  const size_t base = (size_t)h * N * dh + (size_t)b * T * dh; /* row (b, 0) of head h */
  const size_t pbase = (size_t)h * N * T + (size_t)b * T * T;
  float *ks = sm, *vs = sm + (size_t)T * ld, *ps = vs + (size_t)T * ld;
  for (int i = threadIdx.x; i < T * dh; i += blockDim.x) {
    const int r = i / dh, d = i % dh;
    ks[r * ld + d] = k[base + i];
    vs[r * ld + d] = v[base + i];
  }
  __syncthreads();
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  const int L = len[b];
  float *pw = ps + (size_t)warp * T;
  for (int t = warp; t < T; t += nwarps) {
    const int jmax = attn_jmax(t, L, causal);
    const float *qt = q + base + (size_t)t * dh;
    float mx = -INFINITY;
    for (int j = lane; j < jmax; j += 32) {
      float s = 0.0f;
      for (int d = 0; d < dh; d++) s = fmaf(qt[d], ks[j * ld + d], s);
      s *= scale;
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
    float *pr = p + pbase + (size_t)t * T;
    for (int j = lane; j < T; j += 32) {
      const float pv = j < jmax ? pw[j] / sum : 0.0f;
      pw[j] = pv;
      pr[j] = pv;
    }
    __syncwarp();
    float *ot = o + base + (size_t)t * dh;
    for (int d = lane; d < dh; d += 32) {
      float acc = 0.0f;
      for (int j = 0; j < jmax; j++) acc = fmaf(pw[j], vs[j * ld + d], acc);
      ot[d] = acc;
    }
    __syncwarp();
  }
}

extern "C" void cu_attn_fwd(cu_ws *ws, const float *q, const float *k, const float *v, float *p, float *o) {
  const dim3 grid((unsigned)ws->B, (unsigned)ws->H);
  k_attn_fwd<<<grid, ATTN_THREADS, attn_smem_fwd(ws->T, ws->dh), ws->st>>>(
      q, k, v, p, o, ws->len_d, ws->B, ws->T, ws->dh, ws->m->cfg.causal, (float)(1.0 / sqrt((double)ws->dh)));
  EP_CHECK_LAUNCH();
}

/* ds_tj = p_tj (dp_tj - sum_j p_tj dp_tj) / sqrt(dh) with dp_tj = dO_t . v_j (phase 1,
 * into global ds); then dq = ds k, dk = ds^T q, dv = p^T dO (phase 2). Masked entries
 * have p = 0 and contribute nothing. */
static __global__ void k_attn_bwd(const float *q, const float *k, const float *v, const float *p,
                                  const float *dO, float *ds, float *dq, float *dk, float *dv, int B, int T, int dh,
                                  float scale) {
  extern __shared__ float sm[];
  const int b = blockIdx.x, h = blockIdx.y, ld = dh + 1;
  const size_t N = (size_t)B * T;
  const size_t base = (size_t)h * N * dh + (size_t)b * T * dh;
  const size_t pbase = (size_t)h * N * T + (size_t)b * T * T;
  float *qs = sm, *ks = qs + (size_t)T * ld, *vs = ks + (size_t)T * ld, *dos = vs + (size_t)T * ld;
  float *dps = dos + (size_t)T * ld;
  for (int i = threadIdx.x; i < T * dh; i += blockDim.x) {
    const int r = i / dh, d = i % dh;
    qs[r * ld + d] = q[base + i];
    ks[r * ld + d] = k[base + i];
    vs[r * ld + d] = v[base + i];
    dos[r * ld + d] = dO[base + i];
  }
  __syncthreads();
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  float *dpw = dps + (size_t)warp * T;
  for (int t = warp; t < T; t += nwarps) {
    const float *pr = p + pbase + (size_t)t * T;
    float acc = 0.0f;
    for (int j = lane; j < T; j += 32) {
      const float pj = pr[j];
      float dp = 0.0f;
      if (pj != 0.0f)
        for (int d = 0; d < dh; d++) dp = fmaf(dos[t * ld + d], vs[j * ld + d], dp);
      dpw[j] = dp;
      acc += pj * dp;
    }
    const float dot = cu_warp_sumf(acc);
    float *dsr = ds + pbase + (size_t)t * T;
    for (int j = lane; j < T; j += 32) {
      const float pj = pr[j];
      dsr[j] = pj != 0.0f ? pj * (dpw[j] - dot) * scale : 0.0f;
    }
  }
  __syncthreads(); /* ds (global) complete for this block */
  const float *dsb = ds + pbase, *pb = p + pbase;
  for (int i = threadIdx.x; i < T * dh; i += blockDim.x) {
    const int r = i / dh, d = i % dh;
    float gq = 0.0f, gk = 0.0f, gv = 0.0f;
    for (int j = 0; j < T; j++) {
      gq = fmaf(dsb[(size_t)r * T + j], ks[j * ld + d], gq);
      gk = fmaf(dsb[(size_t)j * T + r], qs[j * ld + d], gk);
      gv = fmaf(pb[(size_t)j * T + r], dos[j * ld + d], gv);
    }
    dq[base + i] = gq;
    dk[base + i] = gk;
    dv[base + i] = gv;
  }
}

extern "C" void cu_attn_bwd(cu_ws *ws, const float *q, const float *k, const float *v, const float *p,
                            const float *dO, float *ds, float *dq, float *dk, float *dv) {
  const dim3 grid((unsigned)ws->B, (unsigned)ws->H);
  k_attn_bwd<<<grid, ATTN_THREADS, attn_smem_bwd(ws->T, ws->dh), ws->st>>>(
      q, k, v, p, dO, ds, dq, dk, dv, ws->B, ws->T, ws->dh, (float)(1.0 / sqrt((double)ws->dh)));
  EP_CHECK_LAUNCH();
}

extern "C" void cu_attn_setup(cu_ws *ws) {
  EP_CHECK(ws->Tmax <= CU_T_MAX, "the CUDA attention kernels handle sequences up to %d tokens (asked for %d)",
           CU_T_MAX, ws->Tmax);
  int dev = 0, optin = 0;
  EP_CHECK_CUDA(cudaGetDevice(&dev));
  EP_CHECK_CUDA(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  ws->attn_smem_fwd = attn_smem_fwd(ws->Tmax, ws->dh);
  ws->attn_smem_bwd = attn_smem_bwd(ws->Tmax, ws->dh);
  EP_CHECK(ws->attn_smem_bwd <= (size_t)optin,
           "attention backward needs %zu bytes of shared memory per block (T %d, d_head %d); the device allows %d",
           ws->attn_smem_bwd, ws->Tmax, ws->dh, optin);
  EP_CHECK_CUDA(cudaFuncSetAttribute(k_attn_fwd, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     (int)ws->attn_smem_fwd));
  EP_CHECK_CUDA(cudaFuncSetAttribute(k_attn_bwd, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     (int)ws->attn_smem_bwd));
}

/* res[e] += sum_i hx_i[e] in head order (the CPU reference's order); wout_i = hx_i. */
static __global__ void k_head_sum(const float *hx, float *res, float *wout, size_t ND, int H) {
  for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < ND; e += (size_t)gridDim.x * blockDim.x) {
    float s = 0.0f;
    for (int i = 0; i < H; i++) {
      const float x = hx[(size_t)i * ND + e];
      s += x;
      if (wout) wout[(size_t)i * ND + e] = x;
    }
    res[e] += s;
  }
}

extern "C" void cu_head_sum(cu_ws *ws, const float *hx, float *res, float *wout) {
  const size_t ND = ws->N * (size_t)ws->D;
  k_head_sum<<<cu_blocks(ND, 256), 256, 0, ws->st>>>(hx, res, wout, ND, ws->H);
  EP_CHECK_LAUNCH();
}
