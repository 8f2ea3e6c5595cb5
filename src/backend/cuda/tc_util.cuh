/* tc_util.cuh — tensor-core helpers for the backend's mma.sync kernels (edge_tc.cu,
 * mixnorm_tc.cu, ddelta_tc.cu): TF32 operands, 3xTF32 products, f16 products, ldmatrix,
 * the shared-memory opt-in, the resident grid of a persistent kernel.
 *
 * Fragment layouts (PTX ISA, mma.m16n8k8 .tf32; g = lane / 4, t = lane % 4):
 *   A (16 x 8, row):  a0 = A[g][t], a1 = A[g + 8][t], a2 = A[g][t + 4], a3 = A[g + 8][t + 4]
 *   B (8 x 8, col):   b0 = B[t][g], b1 = B[t + 4][g]
 *   C (16 x 8):       c0 = C[g][2t], c1 = C[g][2t + 1], c2 = C[g + 8][2t], c3 = C[g + 8][2t + 1] */
#pragma once

#include <stdint.h>

#include "cuda_check.h"
#include "cuda_util.cuh"

/* Let kernel f take up to the device's opt-in shared memory (once per instantiation). */
template <typename F>
static void smem_optin(F *f, int &done) {
  if (done) return;
  int dev = 0, optin = 0;
  EP_CHECK_CUDA(cudaGetDevice(&dev));
  EP_CHECK_CUDA(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  EP_CHECK_CUDA(cudaFuncSetAttribute(f, cudaFuncAttributeMaxDynamicSharedMemorySize, optin));
  done = 1;
}

/* Blocks of kernel f (threads and smem bytes a block) that are resident on the device at
 * once, sm_count multiprocessors: a persistent kernel's grid (0: not one block fits). */
template <typename F>
static size_t resident_blocks(F *f, int threads, size_t smem, int sm_count) {
  int per_sm = 0;
  EP_CHECK_CUDA(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, f, threads, smem));
  return per_sm > 0 ? (size_t)sm_count * (size_t)per_sm : 0;
}

/* x = head + tail: the head rounded to TF32, the tail the exact rest (the tensor cores
 * read its top 19 bits: an error of at most 2^-11 of the tail, 2^-22 of x) */
static __device__ __forceinline__ void tf32_split(float x, uint32_t &hi, uint32_t &lo) {
  hi = cu_tf32_round(x);
  lo = __float_as_uint(x - __uint_as_float(hi));
}

static __device__ __forceinline__ void mma_tf32(float c[4], const uint32_t a[4], const uint32_t b[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

/* ldmatrix of 32-bit elements seen as pairs of b16: matrix k's 8 rows of 16 bytes from
 * the addresses of lanes 8k .. 8k + 7; lane (g, t) gets its row g, 4-byte column t, the
 * layout of a TF32 fragment. */
static __device__ __forceinline__ void ldsm_x4(uint32_t r[4], const void *p) {
  const unsigned a = (unsigned)__cvta_generic_to_shared(p);
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a));
}
static __device__ __forceinline__ void ldsm_x2(uint32_t r[2], const void *p) {
  const unsigned a = (unsigned)__cvta_generic_to_shared(p);
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(a));
}

/* The same transposed (b16 elements): lane (g, t) gets column g, rows 2t and 2t + 1 of
 * matrix k, the layout of an m16n8k16 f16 B fragment from a [k][n] row-major tile. */
static __device__ __forceinline__ void ldsm_x4_t(uint32_t r[4], const void *p) {
  const unsigned a = (unsigned)__cvta_generic_to_shared(p);
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a));
}
static __device__ __forceinline__ void ldsm_x2_t(uint32_t r[2], const void *p) {
  const unsigned a = (unsigned)__cvta_generic_to_shared(p);
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(a));
}

/* c += a b, m16n8k16 with f16 operands (pairs of halves a register; PTX ISA layouts:
 * a0 = A[g][2t, 2t + 1], a1 = A[g + 8][..], a2 = A[g][2t + 8, 2t + 9], a3 = A[g + 8][..];
 * b0 = B[2t, 2t + 1][g], b1 = B[2t + 8, 2t + 9][g]; C as for TF32), fp32 accumulation */
static __device__ __forceinline__ void mma_f16(float c[4], const uint32_t a[4], const uint32_t b[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

/* c += a b, 3xTF32 from split operands (small products first) */
static __device__ __forceinline__ void mma_x3(float c[4], const uint32_t ah[4], const uint32_t al[4],
                                              const uint32_t bh[2], const uint32_t bl[2]) {
  mma_tf32(c, al, bh);
  mma_tf32(c, ah, bl);
  mma_tf32(c, ah, bh);
}
