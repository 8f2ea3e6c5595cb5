/* cuda_util.cuh — device helpers shared by the backend's kernels. */
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

/* Grid size for n elements at `threads` per block, capped (kernels use grid-stride loops). */
static inline unsigned cu_blocks(size_t n, int threads) {
  size_t b = (n + (size_t)threads - 1) / (size_t)threads;
  if (b > 65535u * 8u) b = 65535u * 8u;
  return b ? (unsigned)b : 1u;
}

__device__ __forceinline__ double cu_warp_sum(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float cu_warp_sumf(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float cu_warp_maxf(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

/* Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets it.
 * sh: 32 doubles of shared memory. Fixed order: deterministic. */
__device__ __forceinline__ double cu_block_sum(double v, double *sh) {
  const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = cu_warp_sum(v);
  __syncthreads(); /* sh may still be read from a previous call */
  if (lane == 0) sh[wid] = v;
  __syncthreads();
  double t = lane < nw ? sh[lane] : 0.0;
  return cu_warp_sum(t);
}

/* cp.async: 16 bytes global -> shared, the first `bytes` of them copied, the rest zeroed
 * (bytes 0: zero fill); commit the thread's copies as a group; wait until at most K groups
 * are in flight. */
static __device__ __forceinline__ void cu_cp16(float *dst, const float *src, int bytes) {
  const unsigned d = (unsigned)__cvta_generic_to_shared(dst);
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src), "r"(bytes));
}
static __device__ __forceinline__ void cu_cp_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int K>
static __device__ __forceinline__ void cu_cp_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(K));
}

/* Four halves (8 bytes, lowest address first) as a float4. */
__device__ __forceinline__ float4 cu_half4_float4(uint2 u) {
  const float2 a = __half22float2(*reinterpret_cast<const __half2 *>(&u.x));
  const float2 b = __half22float2(*reinterpret_cast<const __half2 *>(&u.y));
  return make_float4(a.x, a.y, b.x, b.y);
}

/* x rounded to TF32 (10 mantissa bits; the low 13 bits zero), to nearest with ties away
 * from zero like cvt.rna.tf32.f32 for finite x (an infinity becomes a NaN), in two integer
 * operations. */
__device__ __forceinline__ uint32_t cu_tf32_round(float x) {
  return (__float_as_uint(x) + 0x1000u) & 0xffffe000u;
}

/* ---- base points (embed.cu, cache.cu) ----------------------------------------------- */
/* Element-wise sums in float4 groups or single floats. */
static __device__ __forceinline__ float4 cu_vadd(float4 a, float4 b) {
  return make_float4(a.x + b.x, a.y + b.y, a.z + b.z, a.w + b.w);
}
static __device__ __forceinline__ float cu_vadd(float a, float b) { return a + b; }

/* One element's walk over the writers in order: run += get(w) for w = 0, 1, ...; when
 * the writers before base slot slots[k].x (slots[k].y of them) are in, base[slots[k].x]
 * = run (element i of slot rows of ndv elements). The CPU reference's summation order. */
template <typename V, typename F>
static __device__ __forceinline__ void cu_base_walk(V run, const int2 *slots, int K, F get, V *base,
                                                    size_t ndv, size_t i) {
  int w = 0;
  for (int k = 0; k < K; k++) {
    const int2 s = slots[k];
#pragma unroll 4
    for (; w < s.y; w++) run = cu_vadd(run, get(w));
    base[(size_t)s.x * ndv + i] = run;
  }
}
