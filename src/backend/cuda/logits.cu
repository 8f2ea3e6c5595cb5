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

#define KL_THREADS 512

/* log-sum-exp of row x [Vo] (max, then sum of exp in double, as backend_loss) */
static __device__ double kl_row_lse(const float *x, int Vo, double *sh) {
  float mx = -INFINITY;
  for (int i = threadIdx.x; i < Vo; i += blockDim.x) mx = fmaxf(mx, x[i]);
  /* block max through the double block sum's shared memory, one warp value each */
  mx = cu_warp_maxf(mx);
  __syncthreads();
  if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = mx;
  __syncthreads();
  float m = -INFINITY;
  for (int w = 0; w < (int)(blockDim.x >> 5); w++) m = fmaxf(m, (float)sh[w]);
  double s = 0;
  for (int i = threadIdx.x; i < Vo; i += blockDim.x) s += exp((double)x[i] - (double)m);
  s = cu_block_sum(s, sh);
  return (double)m + log(s);
}

static __global__ void k_row_lse(const float *x, int Vo, double *lse) {
  __shared__ double sh[32];
  const double v = kl_row_lse(x + (size_t)blockIdx.x * Vo, Vo, sh);
  if (threadIdx.x == 0) lse[blockIdx.x] = v;
}

extern "C" void cu_kl_prepare(cu_ws *ws) {
  const size_t PV = (size_t)ws->P * ws->Vo;
  EP_CHECK_CUDA(cudaMemcpyAsync(ws->tgt_d, ws->logits, PV * sizeof(float), cudaMemcpyDeviceToDevice, ws->st));
  k_row_lse<<<(unsigned)ws->P, KL_THREADS, 0, ws->st>>>(ws->tgt_d, ws->Vo, ws->lse_d);
  EP_CHECK_LAUNCH();
}

/* One block per loss position: KL = sum_i p_i (lp_i - lq_i), grad_i = w (q_i - p_i). */
static __global__ void k_kl_rows(const float *tgt, const double *lse_p, const double *wrow, float *x, int Vo,
                                 int grad, double *kl) {
  __shared__ double sh[32];
  const size_t row = blockIdx.x;
  const float *t = tgt + row * Vo;
  float *xr = x + row * Vo;
  const double lq_lse = kl_row_lse(xr, Vo, sh), lp_lse = lse_p[row], w = wrow[row];
  double s = 0;
  for (int i = threadIdx.x; i < Vo; i += blockDim.x) {
    const double lp = (double)t[i] - lp_lse, lq = (double)xr[i] - lq_lse, p = exp(lp);
    s += p * (lp - lq);
    if (grad) xr[i] = (float)(w * (exp(lq) - p)); /* this thread's own element, already read */
  }
  s = cu_block_sum(s, sh);
  if (threadIdx.x == 0) kl[row] = s;
}

extern "C" void cu_kl_rows(cu_ws *ws, int grad) {
  k_kl_rows<<<(unsigned)ws->P, KL_THREADS, 0, ws->st>>>(ws->tgt_d, ws->lse_d, ws->wrow_d, ws->logits, ws->Vo, grad,
                                                      ws->klrow_d);
  EP_CHECK_LAUNCH();
}
