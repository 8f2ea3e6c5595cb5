/* edge_tc.cu — a reader group's edge gradients on tensor cores (mma.sync m16n8k8 TF32,
 * fp32 accumulation):
 *
 *   part[s, r, w] = sum_{j in slice s} dY[r, j] delta_w[j]
 *
 * over the N*D token-row columns j, readers r < R (<= 48) and writers w < n; the caller
 * sums the slices s in double. The pass reads delta[:n] and dY once (on an H200 the
 * edge-gradient phase of a GPT-2-small TF32 step took 1.35 ms, against 1.76 ms for the
 * cuBLAS batched GEMMs over chunks of token rows it replaces). Precision: `x3` splits each
 * fp32 operand into a TF32 head and a TF32 tail and adds tail*head + head*tail + head*head
 * (3xTF32): products about as accurate as fp32's, the fp32 precision's path; without it
 * plain TF32, as the TF32 precision's cuBLAS GEMMs.
 *
 * Fragment layouts: tc_util.cuh. */
#include "cuda_internal.h"
#include "cuda_util.cuh"
#include "tc_util.cuh"

#define ET_STAGES 4  /* column tiles in flight: 3 loading while one is multiplied */
#define ET_STAGE_FLOATS 6912 /* a stage's shared memory at most (floats): two blocks an SM */
#define ET_WARPS 8
#define ET_NTW 5     /* n-tiles (8 writers) a warp at most */
#define ET_MAX_NB 160 /* writers a block: 4 warp groups x ET_NTW n-tiles */

/* TF32 operand(s) of fp32 bits: rounded (TF32), or head and tail (3xTF32) */
template <bool X3>
static __device__ __forceinline__ void tf32_op(uint32_t raw, uint32_t &hi, uint32_t &lo) {
  if (X3) tf32_split(__uint_as_float(raw), hi, lo);
  else hi = cu_tf32_round(__uint_as_float(raw));
}

/* ---- edge gradients ---- */

/* Block (s, y) takes the column tiles [s T / S, (s + 1) T / S) of the T = ceil(ND / KT)
 * and writers [y nb, y nb + nb) (nb <= ET_MAX_NB, the block's n): it streams the tiles' dY
 * rows (16 MT, zero past R) and delta rows (nb8 = ceil(nb / 8) 8-row groups, zero past nb)
 * through shared memory (cp.async, ET_STAGES deep) and accumulates the [16 MT, 8 nb8]
 * product in registers. The 8 warps form KW column groups x 8 / KW writer groups: warp
 * (kq, nq) takes the k8 steps kq, kq + KW, ... of every tile and the n-tiles nq, nq + 8 / KW,
 * ... (at most ET_NTW) across all MT m-tiles; fragments come by ldmatrix. At the end the KW
 * column groups' sums are added in order through shared memory and the block's partial
 * sums go to part[s] [R, n_all] (the caller sums the S slices in double, in order).
 *
 * TD = __half: delta is ws->delta_h (values already TF32, exact in fp32), TF32 products.
 * Each k8 step then takes its columns in the order kk, kk + 2, kk + 4, kk + 6, kk + 1, ...
 * (fragment column t is kk + 2t, column t + 4 is kk + 2t + 1; a sum over k is the same in
 * any order), so a lane's two B values are adjacent halves (one 32-bit load) and its A
 * values adjacent floats (float2); row strides KT + 8 keep both free of bank conflicts. */
template <int MT, int KW, bool X3, typename TD>
static __global__ void __launch_bounds__(ET_WARPS * 32, 2)
    k_edge_tc(const float *__restrict__ dY, int R, const TD *__restrict__ delta, int n_all, int nb, size_t ND,
              int lkt, float *__restrict__ part) {
  extern __shared__ __align__(16) float sm[];
  constexpr bool H = sizeof(TD) == 2;
  static_assert(!(H && X3), "3xTF32 needs fp32 delta");
  constexpr int NW = ET_WARPS / KW, EB = 16 / (int)sizeof(TD), LEB = H ? 3 : 2; /* delta elements a piece */
  const int KT = 1 << lkt, LD = KT + (H ? 8 : 4); /* columns a tile; dY row stride (floats) */
  const int LB = LD, LBF = LB * (int)sizeof(TD) / 4; /* delta row stride (elements, floats) */
  const int w0 = blockIdx.y * nb, n = min(nb, n_all - w0);
  const int nb8 = (n + 7) / 8, rowsA = 16 * MT, stage = rowsA * LD + 8 * nb8 * LBF;
  const long long T = (long long)((ND + KT - 1) / KT), S = gridDim.x, s = blockIdx.x;
  const int t0 = (int)(T * s / S), t1 = (int)(T * (s + 1) / S);
  const TD *dl = delta + (size_t)w0 * ND;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int kq = warp % KW, nq = warp / KW;

  /* rows no copy writes (readers past R, writers past n) stay zero in every stage */
  {
    const int za = (rowsA - R) * LD, zb = (8 * nb8 - n) * LBF;
    for (int i = threadIdx.x; i < ET_STAGES * (za + zb); i += blockDim.x) {
      const int b = i / (za + zb), e = i % (za + zb);
      sm[b * stage + (e < za ? R * LD + e : rowsA * LD + n * LBF + e - za)] = 0.0f;
    }
  }
  /* tile k into stage buffer b: R dY rows of KT / 4 pieces of 16 bytes and n delta rows of
   * KT / EB (zeros past ND). Thread i copies piece i % (pieces a row) of rows i / (pieces a
   * row), + rs, + 2 rs, ...: the same offsets every tile, plus the tile's first column. */
  const int pp = threadIdx.x & ((KT >> 2) - 1), r0 = threadIdx.x >> (lkt - 2), rs = blockDim.x >> (lkt - 2);
  const int qp = threadIdx.x & ((KT >> LEB) - 1), q0 = threadIdx.x >> (lkt - LEB), qs = blockDim.x >> (lkt - LEB);
  const float *gA = dY + (size_t)r0 * ND + 4 * pp;
  const TD *gB = dl + (size_t)q0 * ND + EB * qp;
  const int sA = r0 * LD + 4 * pp, sB = rowsA * LD + q0 * LBF + qp * 4;
  auto load = [&](int k, int b) {
    const size_t c0 = (size_t)k * KT;
    float *buf = sm + b * stage;
    {
      const bool ok = c0 + 4 * pp < ND;
      const float *src = gA + (ok ? c0 : 0);
      int so = sA;
      for (int r = r0; r < R; r += rs, so += rs * LD, src += (size_t)rs * ND) cu_cp16(buf + so, src, ok ? 16 : 0);
    }
    const bool ok = c0 + EB * qp < ND;
    const TD *src = gB + (ok ? c0 : 0);
    int so = sB;
    for (int r = q0; r < n; r += qs, so += qs * LBF, src += (size_t)qs * ND)
      cu_cp16(buf + so, reinterpret_cast<const float *>(src), ok ? 16 : 0);
  };
  for (int k = 0; k < ET_STAGES - 1; k++) {
    if (t0 + k < t1) load(t0 + k, k);
    cu_cp_commit();
  }

  float acc[MT][ET_NTW][4] = {};

  /* fp32 delta, ldmatrix addresses: A (x4) matrix lm = rows +8 (lm & 1), columns +4
   * (lm >> 1); B (x2) matrix lm & 1 = columns +4 (lm & 1). fp16 delta: lane (g, t)'s
   * A pairs at row g (+ 8), column 2t; its B pair at writer g, column 2t. */
  const int lr = lane & 7, lm = lane >> 3;
  const int aoff = H ? g * LD + 2 * t : (lr + 8 * (lm & 1)) * LD + 4 * (lm >> 1);
  const int boff = H ? g * LB + 2 * t : lr * LD + 4 * (lm & 1);
  int cb = 0, lb = ET_STAGES - 1; /* stage buffer computed, loaded next */
  for (int k = t0; k < t1; k++) {
    cu_cp_wait<ET_STAGES - 2>(); /* this thread's copies of tile k have landed */
    __syncthreads();             /* everyone's; and tile k - 1's buffer is free again */
    if (k + ET_STAGES - 1 < t1) load(k + ET_STAGES - 1, lb);
    cu_cp_commit();
    lb = lb + 1 == ET_STAGES ? 0 : lb + 1;
    const float *A = sm + cb * stage + aoff;
    const TD *B = reinterpret_cast<const TD *>(sm + cb * stage + rowsA * LD) + boff;
    cb = cb + 1 == ET_STAGES ? 0 : cb + 1;
#pragma unroll 2
    for (int kk = 8 * kq; kk < KT; kk += 8 * KW) {
      uint32_t ah[MT][4], al[MT][4];
#pragma unroll
      for (int m = 0; m < MT; m++) {
        uint32_t raw[4];
        if (H) {
          const float2 lo = *reinterpret_cast<const float2 *>(A + 16 * m * LD + kk);
          const float2 hi = *reinterpret_cast<const float2 *>(A + (16 * m + 8) * LD + kk);
          raw[0] = __float_as_uint(lo.x);
          raw[1] = __float_as_uint(hi.x);
          raw[2] = __float_as_uint(lo.y);
          raw[3] = __float_as_uint(hi.y);
        } else {
          ldsm_x4(raw, reinterpret_cast<const float *>(A) + 16 * m * LD + kk);
        }
#pragma unroll
        for (int e = 0; e < 4; e++) tf32_op<X3>(raw[e], ah[m][e], al[m][e]);
      }
#pragma unroll
      for (int j = 0; j < ET_NTW; j++) {
        const int nt = nq + NW * j;
        if (nt >= nb8) break; /* warp-uniform */
        uint32_t bh[2], bl[2];
        if (H) {
          const float2 f = __half22float2(*reinterpret_cast<const __half2 *>(B + 8 * nt * LB + kk));
          bh[0] = __float_as_uint(f.x);
          bh[1] = __float_as_uint(f.y);
        } else {
          uint32_t raw[2];
          ldsm_x2(raw, reinterpret_cast<const float *>(B) + 8 * nt * LD + kk);
          tf32_op<X3>(raw[0], bh[0], bl[0]);
          tf32_op<X3>(raw[1], bh[1], bl[1]);
        }
#pragma unroll
        for (int m = 0; m < MT; m++) {
          if (X3) mma_x3(acc[m][j], ah[m], al[m], bh, bl);
          else mma_tf32(acc[m][j], ah[m], bh);
        }
      }
    }
  }
  cu_cp_wait<0>();

  /* column groups 1 .. KW - 1 hand their sums to group 0 through shared memory: red
   * [KW - 1][NW][MT ET_NTW 4][32] */
  constexpr int NACC = MT * ET_NTW * 4;
  __syncthreads(); /* the stage buffers are dead */
  if (kq > 0) {
    float *red = sm + ((kq - 1) * NW + nq) * NACC * 32 + lane;
#pragma unroll
    for (int m = 0; m < MT; m++)
#pragma unroll
      for (int j = 0; j < ET_NTW; j++)
#pragma unroll
        for (int e = 0; e < 4; e++) red[((m * ET_NTW + j) * 4 + e) * 32] = acc[m][j][e];
  }
  __syncthreads();
  if (kq > 0) return;
  for (int q = 1; q < KW; q++) {
    const float *red = sm + ((q - 1) * NW + nq) * NACC * 32 + lane;
#pragma unroll
    for (int m = 0; m < MT; m++)
#pragma unroll
      for (int j = 0; j < ET_NTW; j++)
#pragma unroll
        for (int e = 0; e < 4; e++) acc[m][j][e] += red[((m * ET_NTW + j) * 4 + e) * 32];
  }

  float *out = part + (size_t)s * R * n_all + w0;
#pragma unroll
  for (int j = 0; j < ET_NTW; j++) {
    const int nt = nq + NW * j;
    if (nt >= nb8) break;
    const int c = 8 * nt + 2 * t;
#pragma unroll
    for (int m = 0; m < MT; m++)
#pragma unroll
      for (int h = 0; h < 2; h++) {
        const int r = 16 * m + g + 8 * h;
        if (r >= R) continue;
        if (c < n) out[(size_t)r * n_all + c] = acc[m][j][2 * h];
        if (c + 1 < n) out[(size_t)r * n_all + c + 1] = acc[m][j][2 * h + 1];
      }
  }
}

/* One reader (R = 1, the MLP reader's edges from its layer's heads) and n <= ET_DOT_MAX
 * writers: plain fp32 dot products (of the fp16 copy's values with delta_h), no tensor
 * cores. Block s of S takes the float4 columns
 * s 256 + i, + S 256, ... and writes part[s] [n]: each thread keeps n + 1 float4 loads in
 * flight, where the tile kernel's 16-row m-tile would be 15 rows of zeros. */
#define ET_DOT_MAX 16
/* four delta elements as floats: fp32, or fp16 (TF32's copy) */
static __device__ __forceinline__ float4 et_ld4(const float *d, size_t i) {
  return __ldg(reinterpret_cast<const float4 *>(d) + i);
}
static __device__ __forceinline__ float4 et_ld4(const __half *d, size_t i) {
  return cu_half4_float4(__ldg(reinterpret_cast<const uint2 *>(d) + i));
}

template <typename TD>
static __global__ void __launch_bounds__(ET_WARPS * 32)
    k_edge_dot(const float *__restrict__ dY, const TD *__restrict__ delta, int n, size_t ND4,
               float *__restrict__ part) {
  __shared__ float red[ET_WARPS][ET_DOT_MAX]; /* launched with ET_WARPS warps */
  const float4 *y4 = reinterpret_cast<const float4 *>(dY);
  float acc[ET_DOT_MAX];
#pragma unroll
  for (int w = 0; w < ET_DOT_MAX; w++) acc[w] = 0.0f;
  const size_t step = (size_t)gridDim.x * blockDim.x;
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < ND4; i += step) {
    const float4 y = __ldg(y4 + i);
#pragma unroll
    for (int w = 0; w < ET_DOT_MAX; w++) {
      if (w >= n) break;
      const float4 d = et_ld4(delta, (size_t)w * ND4 + i);
      acc[w] = fmaf(y.x, d.x, fmaf(y.y, d.y, fmaf(y.z, d.z, fmaf(y.w, d.w, acc[w]))));
    }
  }
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
#pragma unroll
  for (int w = 0; w < ET_DOT_MAX; w++) {
    const float v = cu_warp_sumf(acc[w]);
    if (lane == 0) red[warp][w] = v;
  }
  __syncthreads();
  if (threadIdx.x < n) {
    float v = 0.0f;
    for (int k = 0; k < ET_WARPS; k++) v += red[k][threadIdx.x];
    part[(size_t)blockIdx.x * n + threadIdx.x] = v;
  }
}

/* The launch of one edge-gradient pass (shape fixed by cu_edge_tc). */
struct edge_job {
  const float *dY, *delta;
  const __half *delta_h; /* or NULL: fp32 delta */
  float *part;
  int R, n, nb, ny, S, lkt;
  size_t smem;
  bool x3;
};

template <int MT, int KW>
static void edge_tc_launch(cu_ws *ws, const edge_job &j) {
  const size_t ND = ws->N * (size_t)ws->D;
  const dim3 grid((unsigned)j.S, (unsigned)j.ny);
  static int done[3];
  if (j.delta_h) {
    smem_optin(k_edge_tc<MT, KW, false, __half>, done[2]);
    k_edge_tc<MT, KW, false, __half>
        <<<grid, ET_WARPS * 32, j.smem, ws->st>>>(j.dY, j.R, j.delta_h, j.n, j.nb, ND, j.lkt, j.part);
  } else {
    auto *kern = j.x3 ? k_edge_tc<MT, KW, true, float> : k_edge_tc<MT, KW, false, float>;
    smem_optin(kern, done[j.x3]);
    kern<<<grid, ET_WARPS * 32, j.smem, ws->st>>>(j.dY, j.R, j.delta, j.n, j.nb, ND, j.lkt, j.part);
  }
  EP_CHECK_LAUNCH();
}

template <int MT>
static void edge_tc_kw(cu_ws *ws, const edge_job &j, int kw) {
  if (kw == 8) edge_tc_launch<MT, 8>(ws, j);
  else if (kw == 4) edge_tc_launch<MT, 4>(ws, j);
  else edge_tc_launch<MT, 2>(ws, j);
}

extern "C" int cu_edge_tc(cu_ws *ws, const float *dY, int R, const float *delta, const __half *delta_h, int n,
                          int x3, float *part) {
  const size_t ND = ws->N * (size_t)ws->D;
  if (!ws->edge_tc || R < 1 || R > 48 || n < 1 || ND % 4 || ((uintptr_t)dY | (uintptr_t)delta) % 16)
    return 0;
  if (x3 || ND % 8 || (uintptr_t)delta_h % 16) delta_h = NULL; /* fp32 delta */
  if (!delta_h) (void)cu_delta32(ws); /* which the step must have written */
  if (R == 1 && n <= ET_DOT_MAX) {
    if (delta_h) k_edge_dot<<<CU_EDGE_SPLITS, ET_WARPS * 32, 0, ws->st>>>(dY, delta_h, n, ND / 4, part);
    else k_edge_dot<<<CU_EDGE_SPLITS, ET_WARPS * 32, 0, ws->st>>>(dY, delta, n, ND / 4, part);
    EP_CHECK_LAUNCH();
    return CU_EDGE_SPLITS;
  }
  edge_job j;
  j.dY = dY;
  j.delta = delta;
  j.delta_h = delta_h;
  j.part = part;
  j.R = R;
  j.n = n;
  j.x3 = x3 != 0;
  j.ny = (n + ET_MAX_NB - 1) / ET_MAX_NB;
  j.nb = (n + j.ny - 1) / j.ny;
  /* the fewest writer groups whose warps have at most ET_NTW n-tiles each; the other warps
   * split the columns */
  const int MT = (R + 15) / 16, nb8 = (j.nb + 7) / 8;
  const int kw = nb8 <= ET_NTW ? 8 : nb8 <= 2 * ET_NTW ? 4 : 2;
  /* the widest tile (8 kw .. 256 columns) whose stage fits ET_STAGE_FLOATS: few rows (a
   * small group) still keep enough bytes in flight */
  const int pad = j.delta_h ? 8 : 4, bdiv = j.delta_h ? 2 : 1; /* row padding; floats per delta element */
  auto stage = [&](int kt) { return (16 * MT + 8 * nb8 / bdiv) * (kt + pad); };
  j.lkt = kw == 8 ? 6 : 5;
  while (j.lkt < 8 && stage(2 << j.lkt) <= ET_STAGE_FLOATS) j.lkt++;
  const size_t stages = (size_t)ET_STAGES * stage(1 << j.lkt);
  const size_t red = (size_t)(kw - 1) * (ET_WARPS / kw) * MT * ET_NTW * 4 * 32;
  j.smem = (stages > red ? stages : red) * sizeof(float);
  const size_t T = (ND + (1u << j.lkt) - 1) >> j.lkt;
  j.S = T < CU_EDGE_SPLITS ? (int)T : CU_EDGE_SPLITS;
  if (MT == 1) edge_tc_kw<1>(ws, j, kw);
  else if (MT == 2) edge_tc_kw<2>(ws, j, kw);
  else edge_tc_kw<3>(ws, j, kw);
  return j.S;
}
