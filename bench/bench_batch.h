/* bench_batch.h — the benchmarks' synthetic batch: B full-length rows of T random tokens
 * (ids below V), a random corrupted row each, the loss at the last token. Timing does not
 * depend on the token values. */
#pragma once

#include <stdint.h>
#include <stdlib.h>

#include "edgeprune/backend.h"
#include "edgeprune/core.h"
#include "edgeprune/rng.h"

typedef struct {
  int32_t *clean, *corrupted, *len, *ls, *le;
  ep_batch b;
} bench_batch;

static inline void bench_batch_make(bench_batch *f, int B, int T, int V, uint64_t seed) {
  f->clean = ep_calloc((size_t)B * T, sizeof(int32_t));
  f->corrupted = ep_calloc((size_t)B * T, sizeof(int32_t));
  f->len = ep_calloc((size_t)B, sizeof(int32_t));
  f->ls = ep_calloc((size_t)B, sizeof(int32_t));
  f->le = ep_calloc((size_t)B, sizeof(int32_t));
  for (int b = 0; b < B; b++) {
    f->len[b] = T;
    f->ls[b] = T - 1;
    f->le[b] = T;
    for (int t = 0; t < T; t++) {
      uint32_t w[4];
      ep_rng_words(seed, 99, (uint64_t)b * 1000 + t, 0, w);
      f->clean[b * T + t] = (int32_t)(w[0] % (uint32_t)V);
      f->corrupted[b * T + t] = (int32_t)(w[1] % (uint32_t)V);
    }
  }
  f->b = (ep_batch){B, T, f->clean, f->corrupted, f->len, f->ls, f->le};
}

static inline void bench_batch_free(bench_batch *f) {
  free(f->clean);
  free(f->corrupted);
  free(f->len);
  free(f->ls);
  free(f->le);
}
