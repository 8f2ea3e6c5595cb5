/* logits.cu — the output head at the loss positions only, its backward from the loss
 * gradient, and the kl / kl_sum losses on the device. The other losses (position_kl,
 * mse: Tracr's numeric heads with tiny Vo) run in the shared host code backend_loss on
 * the [P, Vo] logits copied back, their gradient copied in (cuda_backend.cu). */
#include "cuda_internal.h"

static int head_has_norm(const cu_ws *ws) { return ws->m->cfg.final_norm && ws->m->cfg.norm != EP_NORM_NONE; }

extern "C" void cu_head_logits(cu_ws *ws) {
  const int P = (int)ws->P, D = ws->D, Vo = ws->Vo;
  if (head_has_norm(ws))
    cu_norm_fwd(ws, ws->yf, NULL, 1, ws->xf, ws->fmu, ws->frs, ws->lnf_w, ws->lnf_b, (size_t)P);
  else
    EP_CHECK_CUDA(cudaMemcpyAsync(ws->xf, ws->yf, (size_t)P * D * sizeof(float), cudaMemcpyDeviceToDevice, ws->st));
  /* logits [P, Vo] = xf [P, D] unembed^T */
  cu_gemm(ws, 0, 1, P, Vo, D, 1.0f, ws->xf, D, ws->unembed, D, 0.0f, ws->logits, Vo);
}

extern "C" void cu_head_logits_bwd(cu_ws *ws) {
  const int P = (int)ws->P, D = ws->D, Vo = ws->Vo;
  /* d xf [P, D] = dlogits [P, Vo] unembed [Vo, D] */
  cu_gemm(ws, 0, 0, P, D, Vo, 1.0f, ws->logits, Vo, ws->unembed, D, 0.0f, ws->xf, D);
  if (head_has_norm(ws)) cu_norm_bwd(ws, ws->yf, ws->fmu, ws->frs, ws->lnf_w, ws->xf, ws->xf, (size_t)P);
}

#include "cuda_util.cuh"

#define KL_THREADS 256

/* Each loss position's row of Vo logits is cut into kl_chunks(Vo) fixed chunks, one
 * block each (grid: chunks x P), so the rows' work spreads over the device; the chunk
 * results are combined per row in chunk order (deterministic). */
static int kl_chunks(int Vo) {
  const int c = (Vo + KL_CHUNK - 1) / KL_CHUNK;
  return c < 1 ? 1 : c > KL_MAX_CHUNKS ? KL_MAX_CHUNKS : c;
}

static __device__ __forceinline__ void kl_chunk_range(int Vo, int C, int c, int *lo, int *hi) {
  *lo = (int)((long long)Vo * c / C);
  *hi = (int)((long long)Vo * (c + 1) / C);
}

/* Chunk partials of a row's log-sum-exp: part[2 (row C + c)] = chunk max m_c,
 * part[... + 1] = sum over the chunk of exp(x_i - m_c) in double. */
static __global__ void k_lse_part(const float *x, int Vo, double *part) {
  __shared__ double sh[32];
  const int C = gridDim.x, c = blockIdx.x;
  const size_t row = blockIdx.y;
  const float *xr = x + row * Vo;
  int lo, hi;
  kl_chunk_range(Vo, C, c, &lo, &hi);
  float mx = -INFINITY;
  for (int i = lo + threadIdx.x; i < hi; i += blockDim.x) mx = fmaxf(mx, xr[i]);
  mx = cu_warp_maxf(mx);
  if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = mx;
  __syncthreads();
  float m = -INFINITY;
  for (int w = 0; w < (int)(blockDim.x >> 5); w++) m = fmaxf(m, (float)sh[w]);
  double s = 0;
  for (int i = lo + threadIdx.x; i < hi; i += blockDim.x) s += exp((double)xr[i] - (double)m);
  s = cu_block_sum(s, sh); /* syncs before reusing sh */
  if (threadIdx.x == 0) {
    part[2 * (row * C + c)] = m;
    part[2 * (row * C + c) + 1] = s;
  }
}

/* log-sum-exp of a row from its C chunk partials: max M of the chunk maxima, then
 * sum_c s_c exp(m_c - M) in chunk order, all in double. */
static __device__ double kl_lse_combine(const double *pr, int C) {
  double M = -INFINITY;
  for (int c = 0; c < C; c++) M = fmax(M, pr[2 * c]);
  double s = 0;
  for (int c = 0; c < C; c++) s += pr[2 * c + 1] * exp(pr[2 * c] - M);
  return M + log(s);
}

static __global__ void k_lse_fin(const double *part, int P, int C, double *lse) {
  const int row = blockIdx.x * blockDim.x + threadIdx.x;
  if (row < P) lse[row] = kl_lse_combine(part + (size_t)2 * row * C, C);
}

/* ws->klpart <- the chunk partials of the log-sum-exp of rows x [P, Vo]. */
static void kl_lse_parts(cu_ws *ws, const float *x, int C) {
  k_lse_part<<<dim3((unsigned)C, (unsigned)ws->P), KL_THREADS, 0, ws->st>>>(x, ws->Vo, ws->klpart);
  EP_CHECK_LAUNCH();
}

extern "C" void cu_kl_prepare(cu_ws *ws) {
  const size_t PV = (size_t)ws->P * ws->Vo;
  if (ws->P == 0) return;
  if (ws->logits != ws->tgt_d) /* (prepare on its own stream writes them in place) */
    EP_CHECK_CUDA(cudaMemcpyAsync(ws->tgt_d, ws->logits, PV * sizeof(float), cudaMemcpyDeviceToDevice, ws->st));
  const int C = kl_chunks(ws->Vo);
  kl_lse_parts(ws, ws->tgt_d, C);
  k_lse_fin<<<(unsigned)(ws->P + 127) / 128, 128, 0, ws->st>>>(ws->klpart, (int)ws->P, C, ws->lse_d);
  EP_CHECK_LAUNCH();
}

/* Chunk c of row `row`: KL part sum_i p_i (lp_i - lq_i) into kpart[row C + c] and, with
 * grad, x_i = w (q_i - p_i); lq's log-sum-exp from the row's partials in part. */
static __global__ void k_kl_part(const float *tgt, const double *lse_p, const double *part,
                                 const double *wrow, float *x, int Vo, int grad, double *kpart) {
  __shared__ double sh[32];
  const int C = gridDim.x, c = blockIdx.x;
  const size_t row = blockIdx.y;
  const float *t = tgt + row * Vo;
  float *xr = x + row * Vo;
  const double lq_lse = kl_lse_combine(part + 2 * row * C, C), lp_lse = lse_p[row], w = wrow[row];
  int lo, hi;
  kl_chunk_range(Vo, C, c, &lo, &hi);
  double s = 0;
  for (int i = lo + threadIdx.x; i < hi; i += blockDim.x) {
    const double lp = (double)t[i] - lp_lse, lq = (double)xr[i] - lq_lse, p = exp(lp);
    s += p * (lp - lq);
    if (grad) xr[i] = (float)(w * (exp(lq) - p)); /* this thread's own element, already read */
  }
  s = cu_block_sum(s, sh);
  if (threadIdx.x == 0) kpart[row * C + c] = s;
}

/* kl[row] = sum_c kpart[row C + c], in chunk order. */
static __global__ void k_kl_fin(const double *kpart, int P, int C, double *kl) {
  const int row = blockIdx.x * blockDim.x + threadIdx.x;
  if (row >= P) return;
  double s = 0;
  for (int c = 0; c < C; c++) s += kpart[(size_t)row * C + c];
  kl[row] = s;
}

extern "C" void cu_kl_rows(cu_ws *ws, int grad) {
  if (ws->P == 0) return;
  const int C = kl_chunks(ws->Vo);
  double *kpart = ws->klpart + (size_t)2 * ws->P * C; /* after the lse partials */
  kl_lse_parts(ws, ws->logits, C);
  k_kl_part<<<dim3((unsigned)C, (unsigned)ws->P), KL_THREADS, 0, ws->st>>>(
      ws->tgt_d, ws->lse_d, ws->klpart, ws->wrow_d, ws->logits, ws->Vo, grad, kpart);
  EP_CHECK_LAUNCH();
  k_kl_fin<<<(unsigned)(ws->P + 127) / 128, 128, 0, ws->st>>>(kpart, (int)ws->P, C, ws->klrow_d);
  EP_CHECK_LAUNCH();
}
