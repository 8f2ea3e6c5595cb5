/* edgegrad_tc.cu — edge-gradient partials <dY_r, delta_w> on TF32 tensor cores.
 *
 * For the chunks of token rows of cu_edge_grad: gchunk[b] [R, n] = dY[:, chunk b] [R, K]
 * x delta[w0 : w0 + n, chunk b]^T [K, n], K = crow * D, as WMMA m16n16k8 TF32 products
 * with fp32 accumulation (cuBLAS's TF32 GEMM computes the same; this kernel replaces its
 * strided-batched call in the TF32 precision). A block takes one chunk and a group of
 * at most 64 writers (four warps, one 16-writer tile each, all R <= 48 readers as MT
 * m-tiles): the chunk's columns stream through shared memory 32 at a time (cp.async,
 * EG_STAGES deep, rows past R or n and columns past the chunk zero-filled), so every
 * row segment is read from memory as one 128-byte line. The chunks are then summed in
 * double by cu_edge_grad, as for the cuBLAS partials. */
#include <mma.h>

#include "cuda_internal.h"
#include "cuda_util.cuh"

using namespace nvcuda;

#define EG_COLS 32   /* columns of a stage */
#define EG_LD 36     /* shared-memory row stride (floats): 16-byte rows, 32-byte fragment starts */
#define EG_WTILES 4  /* 16-writer tiles a block (one warp each) */
#define EG_STAGES 4

static __device__ __forceinline__ void eg_cp16(float *dst, const float *src, int bytes) {
  const unsigned d = (unsigned)__cvta_generic_to_shared(dst);
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src), "r"(bytes));
}

/* rows [0, rows) of a [rows][EG_COLS] stage from src rows (stride ND) at column c0 of the
 * chunk; rows >= valid and columns >= K are zero-filled */
static __device__ __forceinline__ void eg_load(float *dst, const float *src, size_t ND, int rows, int valid,
                                               int c0, int K) {
  for (int i = threadIdx.x; i < rows * (EG_COLS / 4); i += blockDim.x) {
    const int r = i / (EG_COLS / 4), c = (i % (EG_COLS / 4)) * 4;
    const bool ok = r < valid && c0 + c < K;
    eg_cp16(dst + r * EG_LD + c, ok ? src + (size_t)r * ND + c0 + c : src, ok ? 16 : 0);
  }
}

template <int MT>
static __global__ void __launch_bounds__(EG_WTILES * 32)
    k_edge_grad_tc(const float *__restrict__ dY, int R, const float *__restrict__ delta, int n, size_t ND, int K,
                   int ngroups, float *__restrict__ gchunk) {
  extern __shared__ __align__(128) float sm[]; /* EG_STAGES x [16 MT + 64][EG_LD] */
  const int b = blockIdx.x / ngroups, grp = blockIdx.x % ngroups;
  const int wbase = grp * 16 * EG_WTILES, nw = n - wbase < 16 * EG_WTILES ? n - wbase : 16 * EG_WTILES;
  const int warp = threadIdx.x >> 5;
  const float *A = dY + (size_t)b * K, *Bm = delta + (size_t)wbase * ND + (size_t)b * K;
  const int stage_f = (16 * MT + 16 * EG_WTILES) * EG_LD, ns = (K + EG_COLS - 1) / EG_COLS;
  auto issue = [&](int s) {
    float *st = sm + (s % EG_STAGES) * stage_f;
    eg_load(st, A, ND, 16 * MT, R, s * EG_COLS, K);
    eg_load(st + 16 * MT * EG_LD, Bm, ND, 16 * EG_WTILES, nw, s * EG_COLS, K);
  };
  for (int s = 0; s < EG_STAGES - 1; s++) {
    if (s < ns) issue(s);
    asm volatile("cp.async.commit_group;\n" ::);
  }
  wmma::fragment<wmma::accumulator, 16, 16, 8, float> acc[MT];
#pragma unroll
  for (int m = 0; m < MT; m++) wmma::fill_fragment(acc[m], 0.0f);
  for (int s = 0; s < ns; s++) {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(EG_STAGES - 2));
    __syncthreads();
    if (s + EG_STAGES - 1 < ns) issue(s + EG_STAGES - 1);
    asm volatile("cp.async.commit_group;\n" ::);
    const float *sa = sm + (s % EG_STAGES) * stage_f, *sb = sa + 16 * MT * EG_LD + warp * 16 * EG_LD;
#pragma unroll
    for (int kk = 0; kk < EG_COLS / 8; kk++) {
      wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::col_major> bf;
      wmma::load_matrix_sync(bf, sb + kk * 8, EG_LD); /* B[k][w] = delta_w[k] */
#pragma unroll
      for (int e = 0; e < bf.num_elements; e++) bf.x[e] = wmma::__float_to_tf32(bf.x[e]);
#pragma unroll
      for (int m = 0; m < MT; m++) {
        wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> af;
        wmma::load_matrix_sync(af, sa + m * 16 * EG_LD + kk * 8, EG_LD);
#pragma unroll
        for (int e = 0; e < af.num_elements; e++) af.x[e] = wmma::__float_to_tf32(af.x[e]);
        wmma::mma_sync(acc[m], af, bf, acc[m]);
      }
    }
  }
  asm volatile("cp.async.wait_group 0;\n" ::);
  __syncthreads();
  /* through shared memory: only the [R, nw] part goes to gchunk[b] (ld n) */
  float *out = sm + warp * 16 * MT * 16; /* [16 MT][16] per warp */
#pragma unroll
  for (int m = 0; m < MT; m++) wmma::store_matrix_sync(out + m * 16 * 16, acc[m], 16, wmma::mem_row_major);
  __syncwarp();
  const int lane = threadIdx.x & 31, wt = wbase + warp * 16;
  float *g = gchunk + (size_t)b * R * n;
  for (int i = lane; i < 16 * MT * 16; i += 32) {
    const int r = i / 16, w = wt + i % 16;
    if (r < R && w < n && w - wbase < nw) g[(size_t)r * n + w] = out[i];
  }
}

template <int MT>
static void cu_edge_grad_tc_launch(cu_ws *ws, unsigned blocks, const float *dY, int R, const float *delta, int n,
                                   size_t ND, int K, int ngroups, float *gchunk) {
  const size_t smem = (size_t)EG_STAGES * (16 * MT + 16 * EG_WTILES) * EG_LD * sizeof(float);
  static bool attr_set = false; /* per instantiation: over the default 48 KiB */
  if (!attr_set) {
    EP_CHECK_CUDA(cudaFuncSetAttribute(k_edge_grad_tc<MT>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    attr_set = true;
  }
  k_edge_grad_tc<MT><<<blocks, EG_WTILES * 32, smem, ws->st>>>(dY, R, delta, n, ND, K, ngroups, gchunk);
  EP_CHECK_LAUNCH();
}

extern "C" int cu_edge_grad_tc(cu_ws *ws, const float *dY, int R, int w0, int n, int crow, float *gchunk) {
  const int D = ws->D, K = crow * D, nb = (int)(ws->N / (size_t)crow);
  if (R < 1 || R > 48 || n < 1 || D % 4) return 0;
  const int ngroups = (n + 16 * EG_WTILES - 1) / (16 * EG_WTILES);
  const size_t ND = ws->N * (size_t)D;
  const float *delta = ws->delta + (size_t)w0 * ND;
  const unsigned blocks = (unsigned)nb * (unsigned)ngroups;
  if (R <= 16) cu_edge_grad_tc_launch<1>(ws, blocks, dY, R, delta, n, ND, K, ngroups, gchunk);
  else if (R <= 32) cu_edge_grad_tc_launch<2>(ws, blocks, dY, R, delta, n, ND, K, ngroups, gchunk);
  else cu_edge_grad_tc_launch<3>(ws, blocks, dY, R, delta, n, ND, K, ngroups, gchunk);
  return 1;
}
