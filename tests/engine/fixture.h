/* fixture.h — tiny random models and batches shared by the engine tests. */
#pragma once

#include <stdlib.h>
#include <string.h>

#include "edgeprune/backend.h"
#include "edgeprune/dataset.h"
#include "edgeprune/graph.h"
#include "edgeprune/model.h"
#include "edgeprune/prune.h"
#include "edgeprune/rng.h"

/* A GPT-2-shaped model small enough for finite differences. */
static inline void fx_gpt2_tiny(ep_model *m, int L, int H, int D, int V, uint64_t seed) {
  ep_model_config c;
  model_config_defaults(&c);
  c.n_layer = L;
  c.n_head = c.n_kv_head = H;
  c.d_model = D;
  c.d_head = D / H;
  c.d_mlp = 2 * D;
  c.vocab = c.vocab_out = V;
  c.n_ctx = 16;
  model_alloc(m, &c);
  model_init_random(m, seed, 0.3f);
}

/* A Tracr-shaped model: no norms, ReLU, bidirectional, numeric output, untied head. */
static inline void fx_tracr_tiny(ep_model *m, uint64_t seed) {
  ep_model_config c;
  model_config_defaults(&c);
  strcpy(c.arch, "tracr");
  c.n_layer = 2;
  c.n_head = c.n_kv_head = 2;
  c.d_model = 12;
  c.d_head = 4;
  c.d_mlp = 10;
  c.vocab = 6;
  c.vocab_out = 1;
  c.n_ctx = 6;
  c.norm = EP_NORM_NONE;
  c.act = EP_ACT_RELU;
  c.causal = 0;
  c.tied_unembed = 0;
  c.final_norm = 0;
  c.bos_token = 0;
  c.output = EP_OUTPUT_NUMERIC;
  c.has_mlp[1] = 0; /* a layer without MLP, as Tracr compiles */
  model_alloc(m, &c);
  model_init_random(m, seed, 0.5f);
}

/* A Llama-shaped model: RMSNorm, RoPE, SwiGLU, grouped-query attention, no biases. */
static inline void fx_llama_tiny(ep_model *m, uint64_t seed) {
  ep_model_config c;
  model_config_defaults(&c);
  strcpy(c.arch, "llama");
  c.n_layer = 2;
  c.n_head = 4;
  c.n_kv_head = 2;
  c.d_model = 16;
  c.d_head = 4;
  c.d_mlp = 24;
  c.vocab = c.vocab_out = 40;
  c.n_ctx = 16;
  c.norm = EP_NORM_RMSNORM;
  c.norm_eps = 1e-6f;
  c.act = EP_ACT_SILU_GLU;
  c.pos = EP_POS_ROPE;
  c.tied_unembed = 0;
  c.attn_bias = 0;
  c.mlp_bias = 0;
  model_alloc(m, &c);
  model_init_random(m, seed, 0.4f);
}

/* A batch of B rows of length T with lengths T, T-1, ...; tokens from the RNG; loss
 * positions: the last `npos` valid positions (never position 0). */
typedef struct {
  int32_t *clean, *corrupted, *len, *ls, *le;
  ep_batch b;
} fx_batch;

static inline void fx_batch_make(fx_batch *f, int B, int T, int V, int npos, uint64_t seed) {
  f->clean = calloc((size_t)B * T, sizeof(int32_t));
  f->corrupted = calloc((size_t)B * T, sizeof(int32_t));
  f->len = calloc((size_t)B, sizeof(int32_t));
  f->ls = calloc((size_t)B, sizeof(int32_t));
  f->le = calloc((size_t)B, sizeof(int32_t));
  for (int b = 0; b < B; b++) {
    f->len[b] = T - (b % 2);
    f->le[b] = f->len[b];
    f->ls[b] = f->len[b] - npos > 1 ? f->len[b] - npos : 1;
    for (int t = 0; t < T; t++) {
      uint32_t w[4];
      ep_rng_words(seed, 99, (uint64_t)b * 1000 + t, 0, w);
      f->clean[b * T + t] = (int32_t)(w[0] % (uint32_t)V);
      /* corrupted: same first token, others changed at random */
      f->corrupted[b * T + t] = t == 0 ? f->clean[b * T] : (int32_t)(w[1] % (uint32_t)V);
    }
  }
  f->b = (ep_batch){B, T, f->clean, f->corrupted, f->len, f->ls, f->le};
}

static inline void fx_batch_free(fx_batch *f) {
  free(f->clean);
  free(f->corrupted);
  free(f->len);
  free(f->ls);
  free(f->le);
}

/* A split of n random prompts of T tokens (ids below V), loss at the last position; the
 * corrupted prompt has fresh tokens at the positions t with bit t of corrupt_mask set.
 * Tokens from (seed, stream). */
static inline void fx_dataset_random(ep_dataset *d, int64_t n, int T, int V, uint64_t seed, uint32_t stream,
                                     uint32_t corrupt_mask) {
  memset(d, 0, sizeof *d);
  strcpy(d->task, "random");
  d->n = n;
  d->max_len = T;
  d->clean = calloc((size_t)n * T, sizeof(int32_t));
  d->corrupted = calloc((size_t)n * T, sizeof(int32_t));
  d->length = calloc((size_t)n, sizeof(int32_t));
  d->loss_start = calloc((size_t)n, sizeof(int32_t));
  d->loss_end = calloc((size_t)n, sizeof(int32_t));
  for (int64_t i = 0; i < n; i++) {
    d->length[i] = T;
    d->loss_start[i] = T - 1;
    d->loss_end[i] = T;
    for (int t = 0; t < T; t++) {
      uint32_t w[4];
      ep_rng_words(seed, stream, (uint64_t)i, (uint32_t)t, w);
      d->clean[i * T + t] = (int32_t)(w[0] % (uint32_t)V);
      d->corrupted[i * T + t] = ((corrupt_mask >> t) & 1u) ? (int32_t)(w[1] % (uint32_t)V) : d->clean[i * T + t];
    }
  }
}

static inline void fx_dataset_free(ep_dataset *d) {
  free(d->clean);
  free(d->corrupted);
  free(d->length);
  free(d->loss_start);
  free(d->loss_end);
}

/* Per-position mean of the corrupted run's writer outputs over the batch rows that
 * reach that position: mean [W, T, D]. */
static inline float *fx_mean_writers(const ep_backend_ops *be, void *ws, const ep_graph *g, int D,
                                     const fx_batch *f) {
  int B = f->b.B, T = f->b.T, W = g->n_writers;
  float *all = calloc((size_t)W * B * T * D, sizeof(float));
  float *mean = calloc((size_t)W * T * D, sizeof(float));
  be->writer_outputs(ws, f->corrupted, f->len, B, T, all);
  for (int w = 0; w < W; w++)
    for (int t = 0; t < T; t++) {
      int cnt = 0;
      for (int b = 0; b < B; b++)
        if (t < f->len[b]) {
          cnt++;
          for (int d = 0; d < D; d++)
            mean[((size_t)w * T + t) * D + d] += all[(((size_t)w * B + b) * T + t) * D + d];
        }
      for (int d = 0; d < D; d++)
        if (cnt) mean[((size_t)w * T + t) * D + d] /= (float)cnt;
    }
  free(all);
  return mean;
}
