/* masks.cu — a training step's hard-concrete masks drawn on the device (backend.h
 * faith_sampled): the counter noise and formulas of hardconcrete.h, in double, the ones
 * the host evaluates in prune_sample_masks + prune_step_faith. Drawing here spares the
 * host a Philox draw, two logs and an exp per edge each step, and the masks' upload. */
#include "cuda_internal.h"
#include "cuda_util.cuh"
#include "edgeprune/hardconcrete.h"

/* hdr = seed, step (their bits); la [E + Nn] log-alphas of the edges then the nodes
 * (Nn = W with node masks, else 0). zd [E + W] the masks as float (1 for nodes without
 * masks); zz [2 (E + W)]: z, then dz/dlog_alpha (double, 0 for nodes without masks). */
static __global__ void k_hc_sample(const double *hdr, const double *la, long long E, int Nn, int W, float *zd,
                                   double *zz) {
  const long long n = E + W;
  uint64_t seed;
  int64_t step;
  memcpy(&seed, hdr, sizeof seed);
  memcpy(&step, hdr + 1, sizeof step);
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (long long)gridDim.x * blockDim.x) {
    const int node = i >= E;
    if (node && !Nn) {
      zd[i] = 1.0f;
      zz[i] = 1.0;
      zz[n + i] = 0.0;
      continue;
    }
    const uint32_t stream = node ? EP_RNG_STREAM_NODE_NOISE : EP_RNG_STREAM_EDGE_NOISE;
    const double u = hc_train_noise(seed, stream, step, node ? i - E : i);
    double dz;
    const double z = hc_train_sample(la[i], u, &dz);
    zd[i] = (float)z;
    zz[i] = z;
    zz[n + i] = dz;
  }
}

extern "C" void cu_hc_sample(cu_ws *ws) {
  const size_t E = (size_t)ws->E, W = (size_t)ws->W, n = E + W;
  const int Nn = ws->o.node_masks ? ws->W : 0;
  EP_CHECK_CUDA(
      cudaMemcpyAsync(ws->la_d, ws->h_la, (2 + E + Nn) * sizeof(double), cudaMemcpyHostToDevice, ws->st));
  k_hc_sample<<<cu_blocks(n, 256), 256, 0, ws->st>>>(ws->la_d, ws->la_d + 2, (long long)E, Nn, ws->W, ws->zd,
                                                     ws->dzd + n);
  EP_CHECK_LAUNCH();
}
