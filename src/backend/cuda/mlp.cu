/* mlp.cu — MLP activation (GELU-tanh / ReLU) forward and backward, residual adds.
 * Activations are evaluated in double from the float pre-activation, as the CPU
 * reference does, so the two agree to rounding. */
#include "cuda_internal.h"
#include "cuda_util.cuh"

static __device__ __forceinline__ double act_fwd(int relu, double x) {
  if (relu) return x > 0 ? x : 0;
  const double c = 0.7978845608028654; /* sqrt(2/pi) */
  return 0.5 * x * (1 + tanh(c * (x + 0.044715 * x * x * x)));
}

static __device__ __forceinline__ double act_grad(int relu, double x) {
  if (relu) return x > 0 ? 1 : 0;
  const double c = 0.7978845608028654;
  const double th = tanh(c * (x + 0.044715 * x * x * x));
  return 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * c * (1 + 3 * 0.044715 * x * x);
}

static __global__ void k_bias_act(float *h, const float *b, float *a, size_t n, int cols, int relu) {
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    float x = h[i];
    if (b) x += b[i % (size_t)cols];
    h[i] = x;
    a[i] = (float)act_fwd(relu, (double)x);
  }
}

extern "C" void cu_bias_act(cu_ws *ws, float *h, const float *b, float *a, size_t rows, int cols) {
  const size_t n = rows * (size_t)cols;
  if (n == 0) return;
  EP_CHECK(ws->m->cfg.act == EP_ACT_GELU_TANH || ws->m->cfg.act == EP_ACT_RELU,
           "the CUDA backend supports GELU-tanh and ReLU MLPs only");
  k_bias_act<<<cu_blocks(n, 256), 256, 0, ws->st>>>(h, b, a, n, cols, ws->m->cfg.act == EP_ACT_RELU);
  EP_CHECK_LAUNCH();
}

static __global__ void k_act_bwd(const float *h, float *dh, size_t n, int relu) {
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    dh[i] = (float)(dh[i] * act_grad(relu, (double)h[i]));
}

extern "C" void cu_act_bwd(cu_ws *ws, const float *h, float *dh, size_t n) {
  if (n == 0) return;
  k_act_bwd<<<cu_blocks(n, 256), 256, 0, ws->st>>>(h, dh, n, ws->m->cfg.act == EP_ACT_RELU);
  EP_CHECK_LAUNCH();
}

static __global__ void k_resid_add(float *res, const float *x, float *wout, size_t n) {
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    res[i] += x[i];
    if (wout) wout[i] = x[i];
  }
}

extern "C" void cu_resid_add(cu_ws *ws, float *res, const float *x, float *wout) {
  const size_t n = ws->N * (size_t)ws->D;
  k_resid_add<<<cu_blocks(n, 256), 256, 0, ws->st>>>(res, x, wout, n);
  EP_CHECK_LAUNCH();
}
