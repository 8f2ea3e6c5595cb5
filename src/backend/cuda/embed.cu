/* embed.cu — token/position embeddings, ablation values and base points. */
#include <string.h>

#include <type_traits>

#include "cuda_internal.h"
#include "cuda_util.cuh"

/* One row per (b, t); threads over D. Token ids were checked on the host. */
static __global__ void k_embed(const int32_t *tok, const float *wte, const float *wpe, int T, int D, size_t N,
                               float *xt, float *xp) {
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < N * (size_t)D;
       i += (size_t)gridDim.x * blockDim.x) {
    const size_t row = i / (size_t)D;
    const int d = (int)(i % (size_t)D), t = (int)(row % (size_t)T);
    xt[i] = wte[(size_t)tok[row] * D + d];
    xp[i] = wpe ? wpe[(size_t)t * D + d] : 0.0f;
  }
}

extern "C" void cu_embed(cu_ws *ws, const int32_t *tok_d, float *xt, float *xp) {
  const size_t n = ws->N * (size_t)ws->D;
  k_embed<<<cu_blocks(n, 256), 256, 0, ws->st>>>(tok_d, ws->wte, ws->wpe, ws->T, ws->D, ws->N, xt, xp);
  EP_CHECK_LAUNCH();
}

static __global__ void k_add2(float *out, const float *a, const float *b, size_t n) {
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    out[i] = a[i] + b[i];
}

extern "C" void cu_add2(cu_ws *ws, float *out, const float *a, const float *b, size_t n) {
  k_add2<<<cu_blocks(n, 256), 256, 0, ws->st>>>(out, a, b, n);
  EP_CHECK_LAUNCH();
}

/* c [W, B, T, D] from the first T positions of mean [W, Tm, D]. */
static __global__ void k_mean_broadcast(const float *mean, float *c, int W, int B, int T, int Tm, int D) {
  const size_t TD = (size_t)T * D, n = (size_t)W * B * TD;
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const size_t w = i / ((size_t)B * TD), r = i % TD;
    c[i] = mean[w * (size_t)Tm * D + r];
  }
}

extern "C" void cu_mean_broadcast(cu_ws *ws, const float *mean, float *c) {
  const size_t n = (size_t)ws->W * ws->N * ws->D;
  k_mean_broadcast<<<cu_blocks(n, 256), 256, 0, ws->st>>>(mean, c, ws->W, ws->B, ws->T, ws->Tmax, ws->D);
  EP_CHECK_LAUNCH();
}

/* base [slot] for every base slot: x0 + x1 (or 0 when x0 is NULL) plus the writers'
 * c_w before the slot, in writer order (cu_base_walk). One pass over c. */
template <int V>
static __global__ void k_base_points(const float *x0, const float *x1, const float *c, const int2 *slots,
                                     int K, size_t ND, float *base) {
  typedef typename std::conditional<V == 4, float4, float>::type vec;
  const size_t ndv = ND / V;
  const vec *cv = reinterpret_cast<const vec *>(c);
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < ndv;
       i += (size_t)gridDim.x * blockDim.x) {
    vec run;
    if (x0) run = cu_vadd(reinterpret_cast<const vec *>(x0)[i], reinterpret_cast<const vec *>(x1)[i]);
    else memset(&run, 0, sizeof run);
    cu_base_walk(
        run, slots, K, [&](int w) { return cv[(size_t)w * ndv + i]; }, reinterpret_cast<vec *>(base), ndv, i);
  }
}

extern "C" void cu_base_points(cu_ws *ws) {
  const size_t ND = ws->N * (size_t)ws->D;
  const float *x0 = ws->g->embedding_nodes ? NULL : ws->xtok, *x1 = ws->xpos;
  if (ND % 4 == 0)
    k_base_points<4><<<cu_blocks(ND / 4, 256), 256, 0, ws->st>>>(x0, x1, ws->c, ws->slots_d, ws->n_slots, ND,
                                                                 ws->base);
  else
    k_base_points<1>
        <<<cu_blocks(ND, 256), 256, 0, ws->st>>>(x0, x1, ws->c, ws->slots_d, ws->n_slots, ND, ws->base);
  EP_CHECK_LAUNCH();
}
