/* rng.h — counter-based random numbers (Philox4x32-10).
 *
 * Every value is a pure function of (seed, counter): no state is carried, so every
 * MPI rank and the GPU draw the same hard-concrete noise for (seed, step, edge), and a
 * restarted run draws exactly what the uninterrupted one would have. Header-only so
 * the CUDA kernels can use the same code. */
#pragma once

#include <stdint.h>

#if defined(__CUDACC__)
#define EP_RNG_FN static inline __host__ __device__
#else
#define EP_RNG_FN static inline
#endif

/* Philox4x32-10 on counter (c0..c3) with key (k0, k1); writes four 32-bit words. */
EP_RNG_FN void ep_philox4x32(uint32_t c[4], uint32_t k0, uint32_t k1) {
  const uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;
  const uint32_t W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
  for (int r = 0; r < 10; r++) {
    uint64_t p0 = (uint64_t)M0 * c[0];
    uint64_t p1 = (uint64_t)M1 * c[2];
    uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    uint32_t n0 = hi1 ^ c[1] ^ k0;
    uint32_t n2 = hi0 ^ c[3] ^ k1;
    c[0] = n0;
    c[1] = lo1;
    c[2] = n2;
    c[3] = lo0;
    k0 += W0;
    k1 += W1;
  }
}

/* Four uniform 32-bit words for (seed, stream, a, b). `stream` separates uses
 * (edge noise, node noise, init, data order); a and b are the counters (e.g. step, index). */
EP_RNG_FN void ep_rng_words(uint64_t seed, uint32_t stream, uint64_t a, uint32_t b, uint32_t out[4]) {
  out[0] = (uint32_t)a;
  out[1] = (uint32_t)(a >> 32);
  out[2] = b;
  out[3] = stream;
  ep_philox4x32(out, (uint32_t)seed, (uint32_t)(seed >> 32));
}

/* A uniform double in (0, 1) with 53 random bits, never 0 or 1. */
EP_RNG_FN double ep_rng_uniform(uint64_t seed, uint32_t stream, uint64_t a, uint32_t b) {
  uint32_t w[4];
  ep_rng_words(seed, stream, a, b, w);
  uint64_t bits = ((uint64_t)w[0] << 21) ^ (uint64_t)w[1];
  bits &= (1ull << 53) - 1;
  return ((double)bits + 0.5) * (1.0 / 9007199254740992.0);
}

/* A standard normal (Box-Muller on two uniforms of the same counter). */
EP_RNG_FN double ep_rng_normal(uint64_t seed, uint32_t stream, uint64_t a, uint32_t b) {
  uint32_t w[4];
  ep_rng_words(seed, stream, a, b, w);
  double u1 = (((uint64_t)w[0] << 21 ^ w[1]) & ((1ull << 53) - 1)) + 0.5;
  double u2 = (((uint64_t)w[2] << 21 ^ w[3]) & ((1ull << 53) - 1)) + 0.5;
  u1 *= 1.0 / 9007199254740992.0;
  u2 *= 1.0 / 9007199254740992.0;
#if defined(__CUDACC__)
  return sqrt(-2.0 * log(u1)) * cospi(2.0 * u2);
#else
  return __builtin_sqrt(-2.0 * __builtin_log(u1)) * __builtin_cos(6.283185307179586 * u2);
#endif
}

/* Streams in use. */
enum {
  EP_RNG_STREAM_INIT = 1,       /* model_init_random */
  EP_RNG_STREAM_EDGE_NOISE = 2, /* hard-concrete u of edge masks */
  EP_RNG_STREAM_NODE_NOISE = 3, /* hard-concrete u of node masks */
  EP_RNG_STREAM_LOGALPHA = 4,   /* log_alpha initialisation */
  EP_RNG_STREAM_DATA = 5,       /* data order permutation */
  EP_RNG_STREAM_TASK = 6        /* dataset generators */
};
