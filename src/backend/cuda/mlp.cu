/* mlp.cu — MLP activation (GELU-tanh / ReLU) forward and backward, residual adds.
 * GELU-tanh in float as x sigmoid(2u) = 0.5 x (1 + tanh u), u = sqrt(2/pi) (x + 0.044715
 * x^3): no cancellation in 1 + tanh u for large negative x. The same float formulas on
 * the host (glibc expf) stay within 2e-7 of the CPU reference's double evaluation over
 * |x| < 30 (relative, or absolute below 1); CUDA's expf adds at most 2 ulps. The passes
 * are memory-bound in float; evaluated in double they were not. */
#include <type_traits>

#include "cuda_internal.h"
#include "cuda_util.cuh"

#define GELU_C 0.7978845608f /* sqrt(2/pi) */
#define GELU_A 0.044715f

/* For the GELU argument u of x: s = sigmoid(2u) and s (1 - s), from e = exp(-2|u|) <= 1
 * (no overflow, no cancellation in 1 - s). */
static __device__ __forceinline__ float gelu_sig(float x, float *s1s) {
  const float u = GELU_C * fmaf(GELU_A * x, x * x, x);
  const float e = expf(-2.0f * fabsf(u)), r = 1.0f / (1.0f + e);
  *s1s = e * r * r;
  return u >= 0.0f ? r : e * r;
}

static __device__ __forceinline__ float act_fwd(int relu, float x) {
  if (relu) return x > 0 ? x : 0;
  float s1s;
  return x * gelu_sig(x, &s1s);
}

/* d/dx x s(x), s = sigmoid(2u): s + 2 x s (1 - s) u' */
static __device__ __forceinline__ float act_grad(int relu, float x) {
  if (relu) return x > 0 ? 1 : 0;
  float s1s;
  const float s = gelu_sig(x, &s1s), du = GELU_C * fmaf(3.0f * GELU_A * x, x, 1.0f);
  return fmaf(2.0f * x * s1s, du, s);
}

/* float4 groups for the elementwise kernels: m (the row length of bias_act, the count
 * of act_bwd) a multiple of 4 and both pointers 16-byte aligned; else single floats. */
static int mlp_vec4(size_t m, const void *a, const void *b) {
  return m % 4 == 0 && !(((uintptr_t)a | (uintptr_t)b) & 15);
}

template <int V>
static __global__ void k_bias_act(float *h, const float *b, float *a, size_t n, int cols, int relu) {
  typedef typename std::conditional<V == 4, float4, float>::type vec;
  const size_t nv = n / V;
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < nv;
       i += (size_t)gridDim.x * blockDim.x) {
    vec x = reinterpret_cast<const vec *>(h)[i], y;
    float *xf = reinterpret_cast<float *>(&x), *yf = reinterpret_cast<float *>(&y);
    const int c0 = (int)((i * V) % (size_t)cols);
#pragma unroll
    for (int e = 0; e < V; e++) {
      if (b) xf[e] += b[c0 + e];
      yf[e] = act_fwd(relu, xf[e]);
    }
    if (b) reinterpret_cast<vec *>(h)[i] = x;
    reinterpret_cast<vec *>(a)[i] = y;
  }
}

extern "C" void cu_bias_act(cu_ws *ws, float *h, const float *b, float *a, size_t rows, int cols) {
  const size_t n = rows * (size_t)cols;
  if (n == 0) return;
  EP_CHECK(ws->m->cfg.act == EP_ACT_GELU_TANH || ws->m->cfg.act == EP_ACT_RELU,
           "the CUDA backend supports GELU-tanh and ReLU MLPs only");
  const int relu = ws->m->cfg.act == EP_ACT_RELU;
  if (mlp_vec4((size_t)cols, h, a))
    k_bias_act<4><<<cu_blocks(n / 4, 256), 256, 0, ws->st>>>(h, b, a, n, cols, relu);
  else
    k_bias_act<1><<<cu_blocks(n, 256), 256, 0, ws->st>>>(h, b, a, n, cols, relu);
  EP_CHECK_LAUNCH();
}

template <int V>
static __global__ void k_act_bwd(const float *h, float *dh, size_t n, int relu) {
  typedef typename std::conditional<V == 4, float4, float>::type vec;
  const size_t nv = n / V;
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < nv;
       i += (size_t)gridDim.x * blockDim.x) {
    const vec x = reinterpret_cast<const vec *>(h)[i];
    vec g = reinterpret_cast<const vec *>(dh)[i];
    const float *xf = reinterpret_cast<const float *>(&x);
    float *gf = reinterpret_cast<float *>(&g);
#pragma unroll
    for (int e = 0; e < V; e++) gf[e] *= act_grad(relu, xf[e]);
    reinterpret_cast<vec *>(dh)[i] = g;
  }
}

extern "C" void cu_act_bwd(cu_ws *ws, const float *h, float *dh, size_t n) {
  if (n == 0) return;
  const int relu = ws->m->cfg.act == EP_ACT_RELU;
  if (mlp_vec4(n, h, dh)) k_act_bwd<4><<<cu_blocks(n / 4, 256), 256, 0, ws->st>>>(h, dh, n, relu);
  else k_act_bwd<1><<<cu_blocks(n, 256), 256, 0, ws->st>>>(h, dh, n, relu);
  EP_CHECK_LAUNCH();
}

/* x_i = x + b (b NULL: x); res += x_i; from element off on, wout[i - off] = x_i. */
static __global__ void k_resid_add(float *res, const float *x, const float *b, int D, float *wout, size_t off,
                                   size_t n) {
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    float xi = x[i];
    if (b) xi += b[i % (size_t)D];
    res[i] += xi;
    if (wout && i >= off) wout[i - off] = xi;
  }
}

extern "C" void cu_resid_add(cu_ws *ws, float *res, const float *x, const float *b, const cu_wout *wo,
                             int w) {
  const size_t n = ws->N * (size_t)ws->D;
  float *out = wo ? wo->out + (size_t)w * wo->stride : NULL;
  k_resid_add<<<cu_blocks(n, 256), 256, 0, ws->st>>>(res, x, b, ws->D, out, wo ? wo->off : 0, n);
  EP_CHECK_LAUNCH();
}
