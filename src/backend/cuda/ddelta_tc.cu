/* ddelta_tc.cu — the difference stack's gradient update on tensor cores (3xTF32
 * mma.sync m16n8k8, fp32 accumulation):
 *
 *   ddelta[w, j] += sum_r Z[r, w] dY[r, j]
 *
 * over writers w < n, the N*D token-row columns j and the reduction rows r of one or two
 * reader groups (cu_dd_src a, then b). The update is bound by the ddelta traffic, one
 * read and one write of every writer's row. At 74 reduction rows (a pair of layers'
 * q/k/v and MLP readers, cu_layer_ddelta) exact fp32 FMAs need more issue slots than the
 * bytes take: a two-source k_ddelta (mixing.cu) moved 1.47 TB/s on an H200, this kernel
 * 2.39 TB/s; at one layer's 37 rows 2.99-3.19 against k_ddelta's 2.65 TB/s. Each fp32
 * operand is split into a TF32 head and tail and the product summed as tail*head +
 * head*tail + head*head (3xTF32, products about as accurate as fp32's, as k_edge_tc's
 * fp32 path), in every precision.
 *
 * Fragment layouts: tc_util.cuh. */
#include "cuda_internal.h"
#include "cuda_util.cuh"
#include "tc_util.cuh"

#define DT_COLS 32 /* columns of a warp's tile (4 n-tiles): 128-byte pieces of each ddelta row */
#define DT_LB 40   /* row stride of a warp's dY tile in shared memory (floats; no bank conflicts) */

/* Warps a block: 12 at KS = 10 (the dY tiles fill the shared memory of an SM with one
 * block), else 8. */
static constexpr __host__ __device__ int dt_warps(int ks) { return ks > 5 ? 12 : 8; }

/* Block: Z^T of all n writers in shared memory ([n16][8 KS + 4], zero past n and R; the
 * row stride keeps the A fragment loads free of bank conflicts). Warp: column tiles of
 * DT_COLS columns in turn (grid-stride); for each, its dY rows come into the warp's own
 * [8 KS][DT_LB] tile (cp.async; rows past R zero), then the writers in tiles of 16: the
 * tile's ddelta comes in as the accumulator (the next two tiles loading meanwhile), takes the
 * KS k8 steps, every fp32 operand split at its use, and goes back. A warp's 16 rows of
 * 128 bytes a tile keep the DRAM pieces as long as k_ddelta's (narrower tiles measured
 * 1.5-1.9 TB/s on an H200). */
template <int KS>
static __global__ void __launch_bounds__(dt_warps(KS) * 32)
    k_ddelta_tc(const cu_dd_src a, const cu_dd_src b, int n, size_t ND, float *__restrict__ dd) {
  constexpr int K8 = 8 * KS, LZ = K8 + 4, NW = dt_warps(KS), NT = DT_COLS / 8;
  extern __shared__ __align__(16) float sm[];
  const int R = a.R + b.R, n16 = (n + 15) & ~15;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  float *zt = sm, *yt = sm + (size_t)n16 * LZ + (size_t)warp * K8 * DT_LB;
  for (int i = threadIdx.x; i < n16 * K8; i += blockDim.x) {
    const int w = i / K8, r = i % K8;
    float z = 0.0f;
    if (w < n && r < R) z = r < a.R ? a.Z[(size_t)r * a.ldz + w] : b.Z[(size_t)(r - a.R) * b.ldz + w];
    zt[w * LZ + r] = z;
  }
  for (int i = lane; i < (K8 - R) * DT_LB; i += 32) yt[R * DT_LB + i] = 0.0f;
  __syncthreads();
  /* lane (c, t) of the accumulator: c[nt][0..1] = ddelta[w0 + g][j0 + 8 nt + 2t, + 1],
   * c[nt][2..3] the same at writer w0 + g + 8 */
  size_t j0 = 0;
  auto load = [&](int w0, float (&c)[NT][4]) {
#pragma unroll
    for (int h = 0; h < 2; h++) {
      const int w = w0 + g + 8 * h;
#pragma unroll
      for (int nt = 0; nt < NT; nt++) {
        float2 v = make_float2(0.0f, 0.0f);
        if (w < n) v = *reinterpret_cast<const float2 *>(dd + (size_t)w * ND + j0 + 8 * nt + 2 * t);
        c[nt][2 * h] = v.x;
        c[nt][2 * h + 1] = v.y;
      }
    }
  };
  const int pr = lane >> 3, pc = 4 * (lane & 7); /* a lane's 16-byte pieces: rows pr + 4i */
  const size_t ntile = ND / DT_COLS, nwarp = (size_t)gridDim.x * NW;
  for (size_t ct = (size_t)blockIdx.x * NW + warp; ct < ntile; ct += nwarp) {
    j0 = ct * DT_COLS;
    __syncwarp(); /* the last tile's reads of yt are done */
    for (int r = pr; r < R; r += 4) {
      const float *row = r < a.R ? a.dY + (size_t)r * ND : b.dY + (size_t)(r - a.R) * ND;
      cu_cp16(yt + r * DT_LB + pc, row + j0 + pc, 16);
    }
    cu_cp_commit();
    float q0[NT][4], q1[NT][4]; /* the next two writer tiles, loading */
    load(0, q0);
    if (16 < n) load(16, q1);
    cu_cp_wait<0>();
    __syncwarp();
    for (int w0 = 0; w0 < n; w0 += 16) {
      float c[NT][4];
#pragma unroll
      for (int nt = 0; nt < NT; nt++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
          c[nt][e] = q0[nt][e];
          q0[nt][e] = q1[nt][e];
        }
      if (w0 + 32 < n) load(w0 + 32, q1);
      const float *pz = zt + (w0 + g) * LZ + t, *py = yt + t * DT_LB + g;
#pragma unroll
      for (int ks = 0; ks < KS; ks++) {
        const int o = 8 * ks;
        const float za[4] = {pz[o], pz[8 * LZ + o], pz[o + 4], pz[8 * LZ + o + 4]};
        uint32_t ah[4], al[4];
#pragma unroll
        for (int e = 0; e < 4; e++) tf32_split(za[e], ah[e], al[e]);
#pragma unroll
        for (int nt = 0; nt < NT; nt++) {
          uint32_t bh[2], bl[2];
          tf32_split(py[o * DT_LB + 8 * nt], bh[0], bl[0]);
          tf32_split(py[(o + 4) * DT_LB + 8 * nt], bh[1], bl[1]);
          mma_x3(c[nt], ah, al, bh, bl);
        }
      }
#pragma unroll
      for (int h = 0; h < 2; h++) {
        const int w = w0 + g + 8 * h;
        if (w < n)
#pragma unroll
          for (int nt = 0; nt < NT; nt++)
            *reinterpret_cast<float2 *>(dd + (size_t)w * ND + j0 + 8 * nt + 2 * t) =
                make_float2(c[nt][2 * h], c[nt][2 * h + 1]);
      }
    }
  }
}

/* k8 steps k_ddelta_tc is compiled for at R reduction rows (0: not covered). Eight rows
 * or fewer stay with k_ddelta, whose FMAs keep up with the bytes there (the MLP readers'
 * 24 passes a GPT-2-small step: 0.164 ms, against 0.175 ms here). */
static int dt_ks(int R) {
  static const int ks[] = {3, 5, 10};
  if (R <= 8) return 0;
  for (int i = 0; i < (int)(sizeof ks / sizeof ks[0]); i++)
    if (R <= 8 * ks[i]) return ks[i];
  return 0;
}

static size_t dt_smem(int ks, int n) {
  return ((size_t)((n + 15) & ~15) * (8 * ks + 4) + (size_t)dt_warps(ks) * 8 * ks * DT_LB) * sizeof(float);
}

extern "C" int cu_ddelta_tc_covers(const cu_ws *ws, int R, int n) {
  const int ks = dt_ks(R);
  return ws->ddelta_tc && ks && (ws->N * (size_t)ws->D) % DT_COLS == 0 && dt_smem(ks, n) <= (size_t)ws->smem_optin;
}

template <int KS>
static void dt_launch(cu_ws *ws, const cu_dd_src &a, const cu_dd_src &b, int n, float *dd) {
  static int optin = 0;
  smem_optin(k_ddelta_tc<KS>, optin);
  const size_t ND = ws->N * (size_t)ws->D, smem = dt_smem(KS, n);
  /* Z^T is loaded once per block: no more blocks than are resident at once */
  const size_t cap = resident_blocks(k_ddelta_tc<KS>, dt_warps(KS) * 32, smem, ws->sm_count);
  EP_CHECK(cap > 0, "k_ddelta_tc<%d>: no block of %zu bytes of shared memory fits", KS, smem);
  const size_t tiles = ND / DT_COLS, per_block = (size_t)dt_warps(KS);
  size_t blocks = (tiles + per_block - 1) / per_block;
  if (blocks > cap) blocks = cap;
  k_ddelta_tc<KS><<<(unsigned)blocks, dt_warps(KS) * 32, smem, ws->st>>>(a, b, n, ND, dd);
  EP_CHECK_LAUNCH();
}

extern "C" void cu_ddelta_tc(cu_ws *ws, cu_dd_src a, cu_dd_src b, int n, float *dd) {
  EP_CHECK(cu_ddelta_tc_covers(ws, a.R + b.R, n), "k_ddelta_tc does not cover %d rows over %d writers", a.R + b.R,
           n);
  switch (dt_ks(a.R + b.R)) {
  case 3: dt_launch<3>(ws, a, b, n, dd); break;
  case 5: dt_launch<5>(ws, a, b, n, dd); break;
  default: dt_launch<10>(ws, a, b, n, dd); break;
  }
}
