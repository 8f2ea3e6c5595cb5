/* mixnorm_tc.cu — the q/k/v reader mixing fused with the per-reader norm on TF32 tensor
 * cores (the TF32 precision's path; mixnorm.cu is the exact-fp32 one).
 *
 * Y[r, row] = base[row] + sum_{w < n} Z[r, w] delta_w[row] for the R <= 48 readers of a
 * group, then their LayerNorm / RMSNorm, as one kernel: a block takes one token row and
 * either all R readers (MT m-tiles of 16) or, split, a slice of at most 16 (G =
 * ceil(R / 16) blocks per row, side by side, so the row's delta comes from DRAM once and
 * from L2 for the others; two blocks per SM), and computes its [16 MT, D] block of Y as
 * a GEMM Z [16 MT, n] x delta[:, row] [n, D] with WMMA m16n16k8 TF32 fragments
 * (masks and delta rounded to TF32 like cuBLAS's TF32 GEMMs, fp32 accumulation). The
 * writers' rows of delta stream through shared memory in stages of 8 writers (cp.async,
 * CU_TC_STAGES deep, zero-filled past n); the masks sit in shared memory for the whole
 * block. The accumulators then go to shared memory and each warp norms whole readers:
 * x = acc + base (float add), statistics in float (TF32 inputs), writing Y (read by the
 * norm backward), the normed rows Xn, mu and rs; or, folded (the norm's weight and bias
 * in the q/k/v projections), only xhat = (x - mu) rs into Y, mu and rs: half the stores.
 *
 * Readers Rn <= r < R are not normed: Y2[r - Rn] = acc + base2, the partial input of a
 * reader whose other inputs come later (the MLP reader's writers before the layer's
 * heads, in the same pass over delta as the q/k/v readers).
 *
 * Two forms: the persistent k_mix_norm_tcp (below; the default; on TF32's fp16 copy of
 * delta it runs f16 MMAs, 16 writers a stage, and can store xhat in fp16) and the one-row
 * k_mix_norm_tc described above (EP_CUDA_TC_PERSIST=0, EP_CUDA_TC_SPLIT=1, and shapes the
 * persistent one does not cover). Shapes: D a multiple of 16 with D / 16 n-tiles spread
 * over at most 16 warps (D <= 1024), at most 48 readers; the persistent form D a multiple
 * of 8. Others use the GEMM path. */
#include <mma.h>

#include "cuda_internal.h"
#include "cuda_util.cuh"
#include "tc_util.cuh"

using namespace nvcuda;

#define CU_TC_STAGES 4 /* delta stages in flight: 3 loading while one is multiplied */
#define CU_TC_MAX_WARPS 16

/* Shared-memory leading dimensions (floats): multiples of 4 (WMMA's ldm), 4 more than a
 * multiple of 8 against bank conflicts; every fragment's first row stays 32-byte aligned
 * (fragments start at multiples of 8 rows or 8 columns). */
static __host__ __device__ inline int tc_ldz(int n) { return (n + 7) / 8 * 8 + 4; }
static __host__ __device__ inline int tc_ldd(int D) { return D + 4; }

/* A thread's share of every stage: a stage is the delta rows of 8 writers at one token
 * row, 8 x D/4 pieces of 16 bytes over the block's 2 D / TPW threads, so TPW pieces a
 * thread, the same (writer slot, column) in every stage: their offsets are computed once. */
template <int TPW>
struct tc_loader {
  int k[TPW];     /* writer slot in the stage, or -1 */
  int so[TPW];    /* shared-memory offset in a stage buffer */
  size_t go[TPW]; /* offset in a writer's [N, D] rows */
};

template <int TPW>
static __device__ __forceinline__ void tc_loader_init(tc_loader<TPW> &L, int ldd, size_t row, int D) {
  const int per_row = D / 4;
#pragma unroll
  for (int j = 0; j < TPW; j++) {
    const int i = threadIdx.x + j * blockDim.x, c = (i % per_row) * 4;
    L.k[j] = i < 8 * per_row ? i / per_row : -1;
    L.so[j] = (i / per_row) * ldd + c;
    L.go[j] = row * D + c;
  }
}

/* Stage s: delta rows of writers [8 s, 8 s + 8) into buf [8][ldd] (zeros past n). */
template <int TPW>
static __device__ __forceinline__ void tc_load_stage(const tc_loader<TPW> &L, float *buf, const float *delta,
                                                     size_t ND, int n, int s) {
#pragma unroll
  for (int j = 0; j < TPW; j++) {
    if (L.k[j] < 0) continue;
    const int w = 8 * s + L.k[j];
    const bool ok = w < n;
    cu_cp16(buf + L.so[j], delta + (ok ? (size_t)w * ND : 0) + L.go[j], ok ? 16 : 0); /* 0 bytes: zero fill */
  }
}

template <int MT, int TPW>
static __global__ void __launch_bounds__(CU_TC_MAX_WARPS * 32, MT == 1 ? 2 : 1)
    k_mix_norm_tc(const float *__restrict__ Z, int R, int Rn, int G, int n, const float *__restrict__ delta,
                  size_t ND, const float *__restrict__ base, float *__restrict__ Y, float *__restrict__ Xn,
                  float *mu, float *rs, const float *__restrict__ lw, const float *__restrict__ lb,
                  const float *__restrict__ base2, float *__restrict__ Y2, int D, size_t N, int kind, double eps,
                  int fold) {
  extern __shared__ __align__(128) float sm[];
  const int ldz = tc_ldz(n), ldd = tc_ldd(D), nk = (n + 7) / 8;
  float *zs = sm;                   /* [16 MT][ldz], TF32-rounded masks of this block's readers */
  float *bufs = sm + 16 * MT * ldz; /* CU_TC_STAGES x [8][ldd] */
  float *ys = sm;                   /* [16 MT][ldd] after the GEMM (aliases both) */
  const size_t row = blockIdx.x / G;
  const int RB = (R + G - 1) / G, r0 = (int)(blockIdx.x % G) * RB; /* readers [r0, r0 + Rb) */
  const int Rb = R - r0 < RB ? R - r0 : RB;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nwarp = blockDim.x >> 5;

  tc_loader<TPW> ld;
  tc_loader_init<TPW>(ld, ldd, row, D);
  for (int s = 0; s < CU_TC_STAGES - 1; s++) {
    if (s < nk) tc_load_stage<TPW>(ld, bufs + s * 8 * ldd, delta, ND, n, s);
    cu_cp_commit();
  }
  for (int i = threadIdx.x; i < 16 * MT * ldz; i += blockDim.x) {
    const int r = i / ldz, w = i % ldz;
    zs[i] = (r < Rb && w < n) ? wmma::__float_to_tf32(Z[(size_t)(r0 + r) * n + w]) : 0.0f;
  }

  wmma::fragment<wmma::accumulator, 16, 16, 8, float> acc[MT][TPW];
#pragma unroll
  for (int m = 0; m < MT; m++)
#pragma unroll
    for (int t = 0; t < TPW; t++) wmma::fill_fragment(acc[m][t], 0.0f);

  for (int s = 0; s < nk; s++) {
    cu_cp_wait<CU_TC_STAGES - 2>(); /* this thread's copies of stage s have landed */
    __syncthreads();             /* everyone's; and stage s - 1's buffer is free again */
    if (s + CU_TC_STAGES - 1 < nk)
      tc_load_stage<TPW>(ld, bufs + ((s + CU_TC_STAGES - 1) % CU_TC_STAGES) * 8 * ldd, delta, ND, n,
                         s + CU_TC_STAGES - 1);
    cu_cp_commit();
    const float *buf = bufs + (s % CU_TC_STAGES) * 8 * ldd;
    wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> a[MT];
#pragma unroll
    for (int m = 0; m < MT; m++) wmma::load_matrix_sync(a[m], zs + m * 16 * ldz + s * 8, ldz);
#pragma unroll
    for (int t = 0; t < TPW; t++) {
      wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major> b;
      wmma::load_matrix_sync(b, buf + (warp * TPW + t) * 16, ldd);
#pragma unroll
      for (int e = 0; e < b.num_elements; e++) b.x[e] = __uint_as_float(cu_tf32_round(b.x[e]));
#pragma unroll
      for (int m = 0; m < MT; m++) wmma::mma_sync(acc[m][t], a[m], b, acc[m][t]);
    }
  }
  cu_cp_wait<0>();
  __syncthreads(); /* the masks and stages are dead: ys takes their place */
#pragma unroll
  for (int m = 0; m < MT; m++)
#pragma unroll
    for (int t = 0; t < TPW; t++)
      wmma::store_matrix_sync(ys + m * 16 * ldd + (warp * TPW + t) * 16, acc[m][t], ldd, wmma::mem_row_major);
  __syncthreads();

  /* warp `warp` takes this block's readers warp, warp + nwarp, ... */
  for (int rl = warp; rl < Rb; rl += nwarp) {
    const int r = r0 + rl;
    float *yr = ys + rl * ldd;
    if (r >= Rn) { /* a partial input: no norm */
      const float *b2 = base2 + row * D;
      float *out = Y2 + ((size_t)(r - Rn) * N + row) * D;
      for (int d = lane; d < D; d += 32) out[d] = yr[d] + b2[d];
      continue;
    }
    const float *brow = base + row * D;
    /* statistics in float: this is the TF32 path, whose inputs carry 10 mantissa bits */
    float s1 = 0.0f;
    for (int d = lane; d < D; d += 32) {
      const float x = yr[d] + brow[d];
      yr[d] = x;
      if (!fold) Y[((size_t)r * N + row) * D + d] = x;
      s1 += x;
    }
    float m = 0.0f, rr = 1.0f;
    if (kind == EP_NORM_LAYERNORM) m = cu_warp_sumf(s1) / D;
    if (kind != EP_NORM_NONE) {
      float s2 = 0.0f;
      for (int d = lane; d < D; d += 32) {
        const float e = yr[d] - m;
        s2 = fmaf(e, e, s2);
      }
      rr = 1.0f / sqrtf(cu_warp_sumf(s2) / D + (float)eps);
    }
    float *xr = (fold ? Y : Xn) + ((size_t)r * N + row) * D;
    for (int d = lane; d < D; d += 32) {
      if (kind == EP_NORM_NONE) xr[d] = yr[d];
      else if (fold) xr[d] = (yr[d] - m) * rr;
      else xr[d] = fmaf((yr[d] - m) * rr, lw[d], lb ? lb[d] : 0.0f);
    }
    if (lane == 0) {
      mu[(size_t)r * N + row] = (float)m;
      rs[(size_t)r * N + row] = (float)rr;
    }
  }
}

/* ---- persistent form ------------------------------------------------------------------
 *
 * k_mix_norm_tcp: one block a multiprocessor that takes the token rows blockIdx.x,
 * + gridDim.x, ... in turn. Its stages of delta form one stream over all its rows, so
 * while a row's readers are normed and stored the next row's first S - 1 stages are
 * already loading (the one-row kernel's norm phase loaded nothing, and a new block's
 * first stages waited for the old one to leave). The GEMM is mma.sync m16n8k8 TF32 on
 * registers (fragment layouts in tc_util.cuh): warp w holds the [16 MT, 8 NT] block of
 * columns [8 NT w, 8 NT (w + 1)); the norm works on the accumulators in place (row sums
 * over the four lanes of a row by shuffles, over the warps through shared memory), so no
 * [16 MT, D] staging of Y. The row's base (and base2) come with its first stage into one
 * of S slots.
 *
 * TD = __half (TF32's fp16 copy of delta, every value already TF32): the masks go to
 * shared memory in fp16 too (rounded to TF32 first: the same values down to 2^-14), a
 * stage is 16 writers, one m16n8k16 f16 MMA step (fp32 accumulation), A comes by ldmatrix
 * and B by ldmatrix.trans from the [writer][column] stage; with yh and folded readers Y
 * gets xhat in fp16. */

/* stage row stride (elements): fp32, 8 more than a multiple of 32, so the B fragments'
 * scalar loads (lane (g, t) reads writer t, column g) hit 32 different banks; fp16, 8
 * more than a multiple of 64 (4 words a row for the 8 columns, rows 4 words apart) */
static __host__ __device__ inline int tcp_ldd(int D, int esz) {
  return esz == 2 ? D + (8 - D % 64 + 64) % 64 : D + (8 - D % 32 + 32) % 32;
}

/* mask row stride (elements): fp32 masks tc_ldz; fp16 masks (with fp16 delta) a multiple
 * of 16 writers plus 8 (rows 16 bytes apart modulo 128: ldmatrix without bank conflicts) */
static __host__ __device__ inline int tcp_ldz(int n, int h) { return h ? (n + 15) / 16 * 16 + 8 : tc_ldz(n); }

#define CU_TCP_STAGES 4

/* shared memory (bytes): masks, stages (delta elements of esz bytes), base slots, the
 * warps' row sums, the statistics */
static size_t tcp_smem(int MT, int n, int D, int esz) {
  const int S = CU_TCP_STAGES, h = esz == 2, ks = h ? 16 : 8;
  return (size_t)16 * MT * tcp_ldz(n, h) * esz + (size_t)S * ks * tcp_ldd(D, esz) * esz +
         ((size_t)S * 2 * D + (size_t)CU_TC_MAX_WARPS * 16 * MT + 2 * 16 * MT) * sizeof(float);
}

/* Row totals of the accumulator rows: v[m][h] is this thread's partial sum of fragment row
 * 16 m + g + 8 h; summed over the row's four lanes (shuffles), then over the nw warps in
 * order through red [warps][16 MT]. Thread r < 16 MT returns row r's total (others 0);
 * the block's threads must all call it (it has a barrier). */
template <int MT>
static __device__ __forceinline__ float tcp_row_total(float (&v)[MT][2], float *red, int warp, int nw, int g,
                                                      int t) {
#pragma unroll
  for (int m = 0; m < MT; m++)
#pragma unroll
    for (int h = 0; h < 2; h++) {
      float x = v[m][h];
      x += __shfl_xor_sync(0xffffffffu, x, 1);
      x += __shfl_xor_sync(0xffffffffu, x, 2);
      if (t == 0) red[warp * 16 * MT + 16 * m + g + 8 * h] = x;
    }
  __syncthreads();
  float tot = 0.0f;
  if ((int)threadIdx.x < 16 * MT)
    for (int w = 0; w < nw; w++) tot += red[w * 16 * MT + threadIdx.x];
  return tot;
}

template <int MT, int NT, typename TD>
static __global__ void __launch_bounds__(CU_TC_MAX_WARPS * 32, 1)
    k_mix_norm_tcp(const float *__restrict__ Z, int R, int Rn, int n, const TD *__restrict__ delta, int N,
                   const float *__restrict__ base, float *__restrict__ Y, float *__restrict__ Xn, float *mu,
                   float *rs, const float *__restrict__ lw, const float *__restrict__ lb,
                   const float *__restrict__ base2, float *__restrict__ Y2, int D, int kind, float eps, int fold,
                   int yh) {
  constexpr bool H = sizeof(TD) == 2;       /* fp16 delta: f16 MMAs (m16n8k16), fp16 masks */
  constexpr int KS = H ? 16 : 8;            /* writers a stage: one MMA k step */
  constexpr int EB = 16 / (int)sizeof(TD);  /* delta elements a 16-byte piece */
  constexpr int SF = KS * (int)sizeof(TD) / 4; /* a stage's floats per ldd: KS ldd elements */
  constexpr int PPT = (KS * NT + 4 * EB - 1) / (4 * EB); /* pieces a thread: KS D / EB over 4 D / NT threads */
  constexpr int RM = 16 * MT, S = CU_TCP_STAGES;
  extern __shared__ __align__(128) float sm[];
  const int ldz = tcp_ldz(n, H), ldd = tcp_ldd(D, sizeof(TD)), nk = (n + KS - 1) / KS, D4 = D / 4, DP = D / EB;
  float *zs = sm;                          /* [RM][ldz] masks (TD), rounded to TF32 */
  float *bufs = zs + RM * ldz / (4 / (int)sizeof(TD)); /* S x [KS][ldd] stages of delta (TD) */
  float *bslot = bufs + S * SF * ldd;           /* S x [2][D]: a row's base and base2 */
  float *red = bslot + S * 2 * D;          /* [warps][RM] the warps' row sums */
  float *stat = red + CU_TC_MAX_WARPS * RM; /* [2][RM] mean, 1 / std */
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int nw = blockDim.x >> 5;
  const size_t ND = (size_t)N * D;
  const int nrows = (N - (int)blockIdx.x + (int)gridDim.x - 1) / (int)gridDim.x, total = nrows * nk;
  const int nb = Rn < R ? 2 : 1; /* base rows a row: base, and base2 for the partial inputs */

  /* this thread's pieces of every stage: writer slot (or -1), shared (floats) and column
   * offsets */
  int pk[PPT], ps[PPT], pc[PPT];
#pragma unroll
  for (int j = 0; j < PPT; j++) {
    const int i = threadIdx.x + j * blockDim.x, c = (i % DP) * EB;
    pk[j] = i < KS * DP ? i / DP : -1;
    ps[j] = ((i / DP) * ldd + c) / (4 / (int)sizeof(TD));
    pc[j] = c;
  }
  /* stage q of the block's stream: row q / nk, writers [KS s, KS s + KS) with s = q % nk */
  auto load = [&](int q) {
    const int k = q / nk, s = q - k * nk;
    const size_t ro = ((size_t)blockIdx.x + (size_t)k * gridDim.x) * D;
    float *buf = bufs + (q % S) * SF * ldd;
#pragma unroll
    for (int j = 0; j < PPT; j++) {
      if (pk[j] < 0) continue;
      const int w = KS * s + pk[j];
      const bool ok = w < n;
      cu_cp16(buf + ps[j], reinterpret_cast<const float *>(delta + (ok ? (size_t)w * ND + ro + pc[j] : 0)),
              ok ? 16 : 0);
    }
    if (s == 0 && (int)threadIdx.x < nb * D4) {
      const int h = threadIdx.x / D4, c = (threadIdx.x % D4) * 4;
      cu_cp16(bslot + (k % S) * 2 * D + h * D + c, (h ? base2 : base) + ro + c, 16);
    }
  };
  for (int q = 0; q < S - 1; q++) {
    if (q < total) load(q);
    cu_cp_commit();
  }
  for (int i = threadIdx.x; i < RM * ldz; i += blockDim.x) {
    const int r = i / ldz, w = i % ldz;
    const float z = (r < R && w < n) ? __uint_as_float(cu_tf32_round(Z[(size_t)r * n + w])) : 0.0f;
    if constexpr (H) reinterpret_cast<__half *>(zs)[i] = __float2half_rn(z);
    else zs[i] = z;
  }

  float acc[MT][NT][4] = {};
  /* fp32: A by ldmatrix (x4: matrix lm = rows + 8 (lm & 1), columns + 4 (lm >> 1)), B
   * scalar. fp16: A by ldmatrix (x4: rows + 8 (lm & 1), writers + 8 (lm >> 1)), B by
   * ldmatrix.trans from the [writer][column] stage (x4: writers + 8 (lm & 1), two n-tiles) */
  const int lr = lane & 7, lm = lane >> 3, col0 = 8 * NT * warp;
  const int aoff = H ? (lr + 8 * (lm & 1)) * ldz + 8 * (lm >> 1) : (lr + 8 * (lm & 1)) * ldz + 4 * (lm >> 1);
  const int boff = H ? (lane & 15) * ldd + col0 + 8 * (lane >> 4) : t * ldd + col0 + g;

  int q = 0;
  for (int k = 0; k < nrows; k++) {
    for (int s = 0; s < nk; s++, q++) {
      cu_cp_wait<S - 2>(); /* this thread's copies of stage q have landed */
      __syncthreads();     /* everyone's; and stage q - 1's buffer is free again */
      if (q + S - 1 < total) load(q + S - 1);
      cu_cp_commit();
      const TD *buf = reinterpret_cast<const TD *>(bufs + (q % S) * SF * ldd) + boff;
      const TD *za = reinterpret_cast<const TD *>(zs) + aoff + KS * s;
      uint32_t a[MT][4];
#pragma unroll
      for (int m = 0; m < MT; m++) ldsm_x4(a[m], za + 16 * m * ldz);
      if constexpr (H) {
#pragma unroll
        for (int j = 0; j + 1 < NT; j += 2) {
          uint32_t b[4];
          ldsm_x4_t(b, buf + 8 * j);
#pragma unroll
          for (int m = 0; m < MT; m++) {
            mma_f16(acc[m][j], a[m], b);
            mma_f16(acc[m][j + 1], a[m], b + 2);
          }
        }
        if (NT & 1) {
          uint32_t b[2];
          ldsm_x2_t(b, buf + 8 * (NT - 1));
#pragma unroll
          for (int m = 0; m < MT; m++) mma_f16(acc[m][NT - 1], a[m], b);
        }
      } else {
#pragma unroll
        for (int j = 0; j < NT; j++) {
          const uint32_t b[2] = {cu_tf32_round(buf[8 * j]), cu_tf32_round(buf[4 * ldd + 8 * j])};
#pragma unroll
          for (int m = 0; m < MT; m++) mma_tf32(acc[m][j], a[m], b);
        }
      }
    }

    /* row `row`: x = acc + base (acc + base2 for the partial inputs r >= Rn), then for
     * r < Rn the norm's statistics in float (TF32 inputs carry 10 mantissa bits) */
    const size_t row = (size_t)blockIdx.x + (size_t)k * gridDim.x;
    const float *bs = bslot + (k % S) * 2 * D;
    float s1[MT][2];
#pragma unroll
    for (int m = 0; m < MT; m++)
#pragma unroll
      for (int h = 0; h < 2; h++) {
        const int r = 16 * m + g + 8 * h;
        const float *b = bs + (r >= Rn ? D : 0) + col0 + 2 * t;
        float sum = 0.0f;
#pragma unroll
        for (int j = 0; j < NT; j++) {
          const float2 bv = *reinterpret_cast<const float2 *>(b + 8 * j);
          acc[m][j][2 * h] += bv.x;
          acc[m][j][2 * h + 1] += bv.y;
          sum += acc[m][j][2 * h] + acc[m][j][2 * h + 1];
        }
        s1[m][h] = sum;
      }
    {
      const float v = tcp_row_total<MT>(s1, red, warp, nw, g, t);
      if ((int)threadIdx.x < RM) stat[threadIdx.x] = kind == EP_NORM_LAYERNORM ? v / D : 0.0f;
    }
    __syncthreads();
    float s2[MT][2];
#pragma unroll
    for (int m = 0; m < MT; m++)
#pragma unroll
      for (int h = 0; h < 2; h++) {
        const float mean = stat[16 * m + g + 8 * h];
        float v = 0.0f;
#pragma unroll
        for (int j = 0; j < NT; j++) {
          const float e0 = acc[m][j][2 * h] - mean, e1 = acc[m][j][2 * h + 1] - mean;
          v = fmaf(e0, e0, v);
          v = fmaf(e1, e1, v);
        }
        s2[m][h] = v;
      }
    {
      const float v = tcp_row_total<MT>(s2, red, warp, nw, g, t);
      if ((int)threadIdx.x < RM) {
        const float rr = kind != EP_NORM_NONE ? 1.0f / sqrtf(v / D + eps) : 1.0f;
        stat[RM + threadIdx.x] = rr;
        if ((int)threadIdx.x < Rn) {
          mu[(size_t)threadIdx.x * N + row] = stat[threadIdx.x];
          rs[(size_t)threadIdx.x * N + row] = rr;
        }
      }
    }
    __syncthreads();

    /* stores: two adjacent columns a fragment row (8-byte stores; a warp's 4 lanes of a
     * row cover 32 contiguous bytes) */
#pragma unroll
    for (int m = 0; m < MT; m++)
#pragma unroll
      for (int h = 0; h < 2; h++) {
        const int r = 16 * m + g + 8 * h;
        if (r >= R) continue;
        const size_t o = (r >= Rn ? ((size_t)(r - Rn) * N + row) : ((size_t)r * N + row)) * D + col0 + 2 * t;
        const float mean = stat[r], rr = stat[RM + r];
#pragma unroll
        for (int j = 0; j < NT; j++) {
          float2 x = make_float2(acc[m][j][2 * h], acc[m][j][2 * h + 1]);
          acc[m][j][2 * h] = acc[m][j][2 * h + 1] = 0.0f;
          float *dst;
          if (r >= Rn) dst = Y2; /* a partial input: no norm */
          else if (kind == EP_NORM_NONE) {
            if (!fold) *reinterpret_cast<float2 *>(Y + o + 8 * j) = x;
            dst = fold ? Y : Xn;
          } else if (fold) {
            x = make_float2((x.x - mean) * rr, (x.y - mean) * rr);
            if (H && yh) { /* xhat in fp16 */
              reinterpret_cast<__half2 *>(Y)[(o + 8 * j) / 2] = __floats2half2_rn(x.x, x.y);
              continue;
            }
            dst = Y;
          } else {
            *reinterpret_cast<float2 *>(Y + o + 8 * j) = x;
            const int c = col0 + 2 * t + 8 * j;
            x = make_float2(fmaf((x.x - mean) * rr, lw[c], lb ? lb[c] : 0.0f),
                            fmaf((x.y - mean) * rr, lw[c + 1], lb ? lb[c + 1] : 0.0f));
            dst = Xn;
          }
          *reinterpret_cast<float2 *>(dst + o + 8 * j) = x;
        }
      }
  }
  cu_cp_wait<0>();
}

template <int MT, int NT, typename TD>
static int cu_mix_norm_tcp_launch(cu_ws *ws, const TD *delta, const float *Z, int R, int Rn, int n,
                                  const float *base, float *Y, float *Xn, float *mu, float *rs, const float *lw,
                                  const float *lb, const float *base2, float *Y2, int fold, int yh) {
  const int D = ws->D, threads = D / 8 / NT * 32;
  const size_t smem = tcp_smem(MT, n, D, sizeof(TD));
  static int attr_set = 0; /* per instantiation */
  smem_optin(k_mix_norm_tcp<MT, NT, TD>, attr_set);
  size_t blocks = resident_blocks(k_mix_norm_tcp<MT, NT, TD>, threads, smem, ws->sm_count);
  if (blocks == 0) return 0;
  if (blocks > ws->N) blocks = ws->N;
  k_mix_norm_tcp<MT, NT, TD><<<(unsigned)blocks, threads, smem, ws->st>>>(
      Z, R, Rn, n, delta, (int)ws->N, base, Y, Xn, mu, rs, lw, lb, base2, Y2, D, (int)ws->m->cfg.norm,
      (float)ws->m->cfg.norm_eps, fold, yh);
  EP_CHECK_LAUNCH();
  return 1;
}

/* The persistent kernel for R <= 48 readers, D a multiple of 8 spread over at most 16
 * warps of NT n-tiles (MT NT <= 18 accumulator fragments a thread); 0: not covered, 2:
 * launched with xhat in fp16 (fp16 delta, fold and yh), 1: launched. */
/* The persistent kernel's n-tiles a warp for R readers over n writers with delta elements
 * of esz bytes, or 0 when it does not cover the shape. */
static int tcp_nt(const cu_ws *ws, int R, int n, int esz) {
  const int D = ws->D, MT = (R + 15) / 16, tiles = D / 8;
  if (D % 8 || ws->N > 0x7fffffff || (size_t)ws->N * D > ((size_t)1 << 40)) return 0;
  int nt = 0;
  static const int nts[] = {1, 2, 3, 4, 6, 8};
  for (int i = 0; i < 6 && !nt; i++)
    if (tiles % nts[i] == 0 && tiles / nts[i] <= CU_TC_MAX_WARPS) nt = nts[i];
  if (!nt || MT * nt > 18 || tcp_smem(MT, n, D, esz) > (size_t)ws->smem_optin) return 0;
  return nt;
}

static int cu_mix_norm_tcp(cu_ws *ws, const float *Z, int R, int Rn, int n, const float *base, float *Y, float *Xn,
                           float *mu, float *rs, const float *lw, const float *lb, const float *base2, float *Y2,
                           int fold, int yh) {
  const int MT = (R + 15) / 16;
  const int h = cu_delta16_on(ws); /* the fp16 copy of delta */
  const int nt = tcp_nt(ws, R, n, h ? 2 : 4);
  if (!nt) return 0;
  yh = h && fold && yh && ws->m->cfg.norm != EP_NORM_NONE;
#define TCP_CASE(mt, t)                                                                                         \
  if (MT == mt && nt == t)                                                                                     \
    return h ? (cu_mix_norm_tcp_launch<mt, t>(ws, ws->delta_h, Z, R, Rn, n, base, Y, Xn, mu, rs, lw, lb, base2,  \
                                              Y2, fold, yh) ? 1 + yh : 0)                                      \
             : cu_mix_norm_tcp_launch<mt, t>(ws, cu_delta32(ws), Z, R, Rn, n, base, Y, Xn, mu, rs, lw, lb, base2,  \
                                             Y2, fold, 0);
  TCP_CASE(1, 1) TCP_CASE(1, 2) TCP_CASE(1, 3) TCP_CASE(1, 4) TCP_CASE(1, 6) TCP_CASE(1, 8)
  TCP_CASE(2, 1) TCP_CASE(2, 2) TCP_CASE(2, 3) TCP_CASE(2, 4) TCP_CASE(2, 6) TCP_CASE(2, 8)
  TCP_CASE(3, 1) TCP_CASE(3, 2) TCP_CASE(3, 3) TCP_CASE(3, 4) TCP_CASE(3, 6)
#undef TCP_CASE
  return 0;
}

template <int MT, int TPW>
static void cu_mix_norm_tc_launch(cu_ws *ws, const float *Z, int R, int Rn, int G, int n, const float *base,
                                  float *Y, float *Xn, float *mu, float *rs, const float *lw, const float *lb,
                                  const float *base2, float *Y2, int fold, size_t smem) {
  const int D = ws->D, warps = D / 16 / TPW;
  static bool attr_set = false; /* per instantiation: the dynamic shared-memory ceiling */
  if (!attr_set) {
    EP_CHECK_CUDA(cudaFuncSetAttribute(k_mix_norm_tc<MT, TPW>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       227 * 1024));
    attr_set = true;
  }
  k_mix_norm_tc<MT, TPW><<<(unsigned)(ws->N * G), warps * 32, smem, ws->st>>>(
      Z, R, Rn, G, n, cu_delta32(ws), ws->N * (size_t)D, base, Y, Xn, mu, rs, lw, lb, base2, Y2, D, ws->N,
      (int)ws->m->cfg.norm, (double)ws->m->cfg.norm_eps, fold);
  EP_CHECK_LAUNCH();
}

extern "C" int cu_mix_norm_tc_fp16(const cu_ws *ws, int R, int n) {
  return R >= 1 && R <= 48 && n >= 1 && ws->D % 16 == 0 && ws->N > 0 && ws->tc_persist && !ws->tc_split &&
         cu_delta16_on(ws) && tcp_nt(ws, R, n, 2) > 0;
}

extern "C" int cu_mix_norm_tc(cu_ws *ws, const float *Z, int R, int Rn, int n, const float *base, float *Y,
                              float *Xn, float *mu, float *rs, const float *lw, const float *lb,
                              const float *base2, float *Y2, int fold, int yh) {
  const int D = ws->D;
  if (R < 1 || R > 48 || Rn > R || (Rn < R && !(base2 && Y2)) || n < 1 || D % 16 || ws->N == 0) return 0;
  if (ws->tc_persist) {
    const int done = cu_mix_norm_tcp(ws, Z, R, Rn, n, base, Y, Xn, mu, rs, lw, lb, base2, Y2, fold, yh);
    if (done) return done;
  }
  /* ws->tc_split: blocks of <= 16 readers (G a row, two blocks per SM); else one block a
   * row with all R readers (MT m-tiles, one block per SM) */
  const int tiles = D / 16, G = ws->tc_split ? (R + 15) / 16 : 1, MT = ws->tc_split ? 1 : (R + 15) / 16;
  if (ws->N * (size_t)G > 0x7fffffffu) return 0;
  int tpw = 0; /* fewest n-tiles a warp (most warps) that divide the tiles over <= 16 warps */
  for (int t = 1; t <= 4 && !tpw; t++)
    if (tiles % t == 0 && tiles / t <= CU_TC_MAX_WARPS) tpw = t;
  if (!tpw) return 0;
  const size_t gemm = ((size_t)16 * MT * tc_ldz(n) + (size_t)CU_TC_STAGES * 8 * tc_ldd(D)) * sizeof(float);
  const size_t norm = (size_t)16 * MT * tc_ldd(D) * sizeof(float);
  const size_t smem = gemm > norm ? gemm : norm;
  if (smem > 227 * 1024) return 0;
#define TC_CASE(mt, t)                                                                                          \
  if (MT == mt && tpw == t) {                                                                                   \
    cu_mix_norm_tc_launch<mt, t>(ws, Z, R, Rn, G, n, base, Y, Xn, mu, rs, lw, lb, base2, Y2, fold, smem);       \
    return 1;                                                                                                   \
  }
  TC_CASE(1, 1) TC_CASE(1, 2) TC_CASE(1, 3) TC_CASE(1, 4)
  TC_CASE(2, 1) TC_CASE(2, 2) TC_CASE(2, 3) TC_CASE(2, 4)
  TC_CASE(3, 1) TC_CASE(3, 2) TC_CASE(3, 3) TC_CASE(3, 4)
#undef TC_CASE
  return 0;
}
