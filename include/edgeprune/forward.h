/* forward.h — the plain (unmasked) CPU forward pass: the readable reference.
 *
 * Covers every kind an ep_model_config can describe: GPT-2 (LayerNorm, GELU, learned
 * positions), Llama (RMSNorm, SwiGLU, RoPE, grouped-query attention) and Tracr (no
 * norms, ReLU, optionally bidirectional attention, numeric output). Per layer:
 *   x += attn(norm1(x));  x += mlp(norm2(x))   (a sub-block absent from the layer is skipped)
 * then logits = norm_f(x) @ unembed^T at the requested positions only.
 *
 * Attention: out = concat_h(softmax(q_h k_h^T / sqrt(dh) + mask) v_h) @ W_O + b_O. Query
 * head h uses key/value head h / (H / Hkv) (Hugging Face's repeat_kv). Key j is visible
 * to query i when j < length[b] and, for causal models, j <= i.
 *
 * Padding: positions t >= lengths[b] are padding. Their tokens are never read (their
 * embedding is zero, so any value, even -1, is fine) and they are masked out as keys,
 * so they change nothing at positions < length. Their own outputs are finite but
 * meaningless. lengths == NULL means every sequence has length T.
 *
 * Every matmul runs through cblas_sgemm over all B*T rows at once. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "edgeprune/model.h"

/* Scratch buffers for one forward pass, grown on demand and reused between calls so a
 * training or evaluation loop does not reallocate. Zero-initialise (or forward_ws_init)
 * before first use; forward_ws_free releases everything. Not shareable between threads
 * running at the same time. */
typedef struct {
  size_t rows_cap;                    /* B*T the row buffers hold */
  int t_cap;                          /* T the per-sequence buffers hold */
  size_t out_cap;                     /* B*P the gathered-row buffers hold */
  size_t d_cap, q_cap, kv_cap, f_cap; /* widths the buffers were sized for */
  float *x;                           /* [B*T, D] residual stream */
  float *h;                           /* [B*T, D] normed input of a sub-block */
  float *q;                           /* [B*T, H*dh] */
  float *k;                           /* [B*T, Hkv*dh] */
  float *v;                           /* [B*T, Hkv*dh] */
  float *att;                         /* [B*T, H*dh] concatenated head outputs */
  float *fc;                          /* [B*T, F] MLP hidden (up projection for SwiGLU) */
  float *gate;                        /* [B*T, F] SwiGLU gate */
  float *scores;                      /* [T, T] attention scores of one (sequence, head) */
  float *rope_cos;                    /* [T, dh/2] */
  float *rope_sin;                    /* [T, dh/2] */
  float *sel;                         /* [B*P, D] residual rows at the requested positions */
  float *seln;                        /* [B*P, D] the same after the final norm */
} ep_forward_ws;

void forward_ws_init(ep_forward_ws *ws);
void forward_ws_free(ep_forward_ws *ws);

/* Full forward pass with a caller-owned workspace.
 *   tokens    [B, T] input ids (0 <= id < vocab at positions < length)
 *   lengths   [B] in 1..T, or NULL for all T
 *   positions [B, P] positions whose logits are wanted, each in 0..T-1 or -1 (that row of
 *             logits is set to 0: lets examples with fewer loss positions share a batch);
 *             NULL for all T positions (then P is ignored and taken as T)
 *   logits    [B, P, V_out] (or [B, T, V_out] when positions == NULL), or NULL for none
 *   resid     [B, T, D] the final residual stream (before the final norm), or NULL
 * Bad arguments (token out of range, T beyond a learned position table, ...) are fatal
 * errors naming the sequence and position. */
void forward_run(const ep_model *m, ep_forward_ws *ws, const int32_t *tokens, const int32_t *lengths, int B,
                 int T, const int32_t *positions, int P, float *logits, float *resid);

/* forward_run with a temporary workspace and no residual output. */
void forward_logits(const ep_model *m, const int32_t *tokens, const int32_t *lengths, int B, int T,
                    const int32_t *positions, int P, float *logits);
