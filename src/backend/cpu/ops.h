/* ops.h — CPU primitives of the transformer forward pass (llm.c style: plain functions
 * over flat row-major arrays, shapes in the comments). Matrices are in the "x @ W"
 * orientation of model.h. Every matmul goes through cblas_sgemm. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* out[N, D] = (x - mean) / sqrt(var + eps) * w + b, per row (biased variance, as torch). */
void ops_layernorm(float *out, const float *x, const float *w, const float *b, size_t N, int D, float eps);

/* out[N, D] = x / sqrt(mean(x^2) + eps) * w, per row (Hugging Face LlamaRMSNorm). */
void ops_rmsnorm(float *out, const float *x, const float *w, size_t N, int D, float eps);

/* out[N, n_out] = beta * out + x[N, n_in] @ W[n_in, n_out] + bias[n_out] (bias may be NULL).
 * beta 0 overwrites out (its old contents are never read); beta 1 accumulates, which is
 * how sub-block outputs are added to the residual stream. */
void ops_matmul(float *out, const float *x, const float *W, const float *bias, size_t N, int n_in, int n_out,
                float beta);

/* out[N, V] = x[N, D] @ U[V, D]^T: logits from an unembedding stored [V, D]. */
void ops_unembed(float *out, const float *x, const float *U, size_t N, int D, int V);

/* In place: GPT-2's tanh GELU, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
void ops_gelu_tanh(float *x, size_t n);
/* In place: max(x, 0). */
void ops_relu(float *x, size_t n);
/* In place: gate = silu(gate) * up, silu(g) = g * sigmoid(g) (SwiGLU). */
void ops_silu_mul(float *gate, const float *up, size_t n);

/* cos/sin tables [T, dh/2] for rotary positions 0..T-1, computed in float32 the way
 * Hugging Face's LlamaRotaryEmbedding does (inv_freq = 1 / theta^(2i/dh)). */
void ops_rope_tables(float *cos_t, float *sin_t, int T, int dh, float theta);

/* In place: rotate every head of x[B*T, n_heads*dh] by its position (row % T), with the
 * rotate_half convention: for i < dh/2, (x_i, x_{i+dh/2}) -> (x_i c - x_{i+dh/2} s,
 * x_{i+dh/2} c + x_i s). */
void ops_rope_apply(float *x, const float *cos_t, const float *sin_t, size_t B, int T, int n_heads, int dh);

/* Multi-head attention core (no projections):
 *   out[B*T, H*dh] with head h of row (b, i) = sum_j softmax_j(q_h(b,i) . k_g(b,j) / sqrt(dh)) v_g(b,j)
 * over the visible keys j (j < lengths[b] and, when causal, j <= i), g = h / (H / Hkv).
 * q [B*T, H*dh], k and v [B*T, Hkv*dh]; lengths [B] or NULL (all T);
 * scores: scratch of at least T*T floats. */
void ops_attention(float *out, const float *q, const float *k, const float *v, const int32_t *lengths, int B,
                   int T, int H, int Hkv, int dh, int causal, float *scores);
