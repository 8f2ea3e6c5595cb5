/* forward.c — see forward.h. */
#include "edgeprune/forward.h"

#include <stdlib.h>
#include <string.h>

#include "backend/cpu/ops.h"
#include "edgeprune/core.h"

void forward_ws_init(ep_forward_ws *ws) {
  memset(ws, 0, sizeof *ws);
}

void forward_ws_free(ep_forward_ws *ws) {
  float **bufs[] = {&ws->x,    &ws->h,      &ws->q,        &ws->k,        &ws->v,   &ws->att, &ws->fc,
                    &ws->gate, &ws->scores, &ws->rope_cos, &ws->rope_sin, &ws->sel, &ws->seln};
  for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
    free(*bufs[i]);
  memset(ws, 0, sizeof *ws);
}

static size_t max_sz(size_t a, size_t b) {
  return a > b ? a : b;
}

/* Make every buffer big enough for this call; grows (never shrinks) so a loop over
 * batches of one shape allocates once. */
static void ws_reserve(ep_forward_ws *ws, const ep_model_config *c, size_t rows, int T, size_t out_rows) {
  size_t D = (size_t)c->d_model, Q = (size_t)c->n_head * c->d_head, KV = (size_t)c->n_kv_head * c->d_head,
         F = (size_t)c->d_mlp;
  if (rows <= ws->rows_cap && T <= ws->t_cap && out_rows <= ws->out_cap && D <= ws->d_cap && Q <= ws->q_cap &&
      KV <= ws->kv_cap && F <= ws->f_cap)
    return;
  ep_forward_ws n;
  memset(&n, 0, sizeof n);
  n.rows_cap = max_sz(rows, ws->rows_cap);
  n.t_cap = T > ws->t_cap ? T : ws->t_cap;
  n.out_cap = max_sz(out_rows, ws->out_cap);
  n.d_cap = max_sz(D, ws->d_cap);
  n.q_cap = max_sz(Q, ws->q_cap);
  n.kv_cap = max_sz(KV, ws->kv_cap);
  n.f_cap = max_sz(F, ws->f_cap);
  forward_ws_free(ws);
  *ws = n;
  size_t R = ws->rows_cap, Tc = (size_t)ws->t_cap;
  ws->x = ep_malloc(R * ws->d_cap * sizeof(float));
  ws->h = ep_malloc(R * ws->d_cap * sizeof(float));
  ws->q = ep_malloc(R * ws->q_cap * sizeof(float));
  ws->k = ep_malloc(R * ws->kv_cap * sizeof(float));
  ws->v = ep_malloc(R * ws->kv_cap * sizeof(float));
  ws->att = ep_malloc(R * ws->q_cap * sizeof(float));
  ws->fc = ep_malloc(R * ws->f_cap * sizeof(float));
  ws->gate = ep_malloc(R * ws->f_cap * sizeof(float));
  ws->scores = ep_malloc(Tc * Tc * sizeof(float));
  /* dh/2 <= H*dh/2, so tables sized by the query width fit any head width of this model */
  ws->rope_cos = ep_malloc(Tc * (ws->q_cap / 2 + 1) * sizeof(float));
  ws->rope_sin = ep_malloc(Tc * (ws->q_cap / 2 + 1) * sizeof(float));
  ws->sel = ep_malloc(max_sz(ws->out_cap, 1) * ws->d_cap * sizeof(float));
  ws->seln = ep_malloc(max_sz(ws->out_cap, 1) * ws->d_cap * sizeof(float));
}

/* out[N, D] = the model's norm of x with gain w and bias b; with no norm the input is
 * used as is (the returned pointer is what the sub-block reads). */
static const float *norm_rows(const ep_model_config *c, float *out, const float *x, const float *w,
                              const float *b, size_t N) {
  switch (c->norm) {
  case EP_NORM_LAYERNORM:
    ops_layernorm(out, x, w, b, N, c->d_model, c->norm_eps);
    return out;
  case EP_NORM_RMSNORM:
    ops_rmsnorm(out, x, w, N, c->d_model, c->norm_eps);
    return out;
  case EP_NORM_NONE:
    return x;
  }
  ep_fatal("unknown norm kind %d", (int)c->norm);
}

/* x[B*T, D] = token embedding + learned position embedding; padding rows are zero. */
static void embed(const ep_model *m, float *x, const int32_t *tokens, const int32_t *lengths, int B, int T) {
  const ep_model_config *c = &m->cfg;
  const size_t D = (size_t)c->d_model;
  for (int b = 0; b < B; b++) {
    int len = lengths ? lengths[b] : T;
    for (int t = 0; t < T; t++) {
      float *xr = x + ((size_t)b * T + t) * D;
      if (t >= len) {
        memset(xr, 0, D * sizeof *xr);
        continue;
      }
      int32_t tok = tokens[(size_t)b * T + t];
      EP_CHECK(tok >= 0 && tok < c->vocab,
               "token %d at sequence %d position %d is outside the vocabulary 0..%d", (int)tok, b, t,
               c->vocab - 1);
      const float *e = m->wte + (size_t)tok * D;
      if (m->wpe) {
        const float *p = m->wpe + (size_t)t * D;
        for (size_t i = 0; i < D; i++)
          xr[i] = e[i] + p[i];
      } else {
        memcpy(xr, e, D * sizeof *xr);
      }
    }
  }
}

/* x += attention sub-block of layer l. */
static void attn_block(const ep_model *m, ep_forward_ws *ws, int l, const int32_t *lengths, int B, int T) {
  const ep_model_config *c = &m->cfg;
  const ep_layer_weights *w = &m->layers[l];
  const size_t N = (size_t)B * T;
  const int D = c->d_model, Q = c->n_head * c->d_head, KV = c->n_kv_head * c->d_head;
  const float *in = norm_rows(c, ws->h, ws->x, w->ln1_w, w->ln1_b, N);
  ops_matmul(ws->q, in, w->w_q, w->b_q, N, D, Q, 0.0f);
  ops_matmul(ws->k, in, w->w_k, w->b_k, N, D, KV, 0.0f);
  ops_matmul(ws->v, in, w->w_v, w->b_v, N, D, KV, 0.0f);
  if (c->pos == EP_POS_ROPE) {
    ops_rope_apply(ws->q, ws->rope_cos, ws->rope_sin, (size_t)B, T, c->n_head, c->d_head);
    ops_rope_apply(ws->k, ws->rope_cos, ws->rope_sin, (size_t)B, T, c->n_kv_head, c->d_head);
  }
  ops_attention(ws->att, ws->q, ws->k, ws->v, lengths, B, T, c->n_head, c->n_kv_head, c->d_head, c->causal,
                ws->scores);
  ops_matmul(ws->x, ws->att, w->w_o, w->b_o, N, Q, D, 1.0f);
}

/* x += MLP sub-block of layer l. */
static void mlp_block(const ep_model *m, ep_forward_ws *ws, int l, int B, int T) {
  const ep_model_config *c = &m->cfg;
  const ep_layer_weights *w = &m->layers[l];
  const size_t N = (size_t)B * T;
  const int D = c->d_model, F = c->d_mlp;
  const float *in = norm_rows(c, ws->h, ws->x, w->ln2_w, w->ln2_b, N);
  ops_matmul(ws->fc, in, w->w_fc, w->b_fc, N, D, F, 0.0f);
  const float *hidden = ws->fc;
  switch (c->act) {
  case EP_ACT_GELU_TANH:
    ops_gelu_tanh(ws->fc, N * F);
    break;
  case EP_ACT_RELU:
    ops_relu(ws->fc, N * F);
    break;
  case EP_ACT_SILU_GLU:
    ops_matmul(ws->gate, in, w->w_gate, NULL, N, D, F, 0.0f);
    ops_silu_mul(ws->gate, ws->fc, N * F); /* down(silu(x@gate) * (x@up)) */
    hidden = ws->gate;
    break;
  default:
    ep_fatal("unknown activation kind %d", (int)c->act);
  }
  ops_matmul(ws->x, hidden, w->w_proj, w->b_proj, N, F, D, 1.0f);
}

void forward_run(const ep_model *m, ep_forward_ws *ws, const int32_t *tokens, const int32_t *lengths, int B,
                 int T, const int32_t *positions, int P, float *logits, float *resid) {
  const ep_model_config *c = &m->cfg;
  EP_CHECK(B >= 1 && T >= 1,
           "forward needs a batch of at least one sequence of at least one token (B=%d T=%d)", B, T);
  EP_CHECK(c->pos != EP_POS_LEARNED || T <= c->n_ctx,
           "sequence length %d exceeds the model's %d learned positions", T, c->n_ctx);
  if (lengths)
    for (int b = 0; b < B; b++)
      EP_CHECK(lengths[b] >= 1 && lengths[b] <= T, "length %d of sequence %d is not in 1..%d",
               (int)lengths[b], b, T);
  if (!positions) P = T;
  EP_CHECK(P >= 1, "forward needs at least one output position (P=%d)", P);
  if (positions)
    for (size_t i = 0; i < (size_t)B * P; i++)
      EP_CHECK(positions[i] >= -1 && positions[i] < T,
               "output position %d of sequence %zu is not in 0..%d (or -1)", (int)positions[i], i / (size_t)P,
               T - 1);

  const size_t N = (size_t)B * T, D = (size_t)c->d_model;
  const size_t R = (size_t)B * P; /* output rows */
  ws_reserve(ws, c, N, T, positions ? R : 0);

  embed(m, ws->x, tokens, lengths, B, T);
  if (c->pos == EP_POS_ROPE) ops_rope_tables(ws->rope_cos, ws->rope_sin, T, c->d_head, c->rope_theta);
  for (int l = 0; l < c->n_layer; l++) {
    if (c->has_attn[l]) attn_block(m, ws, l, lengths, B, T);
    if (c->has_mlp[l]) mlp_block(m, ws, l, B, T);
  }
  if (resid) memcpy(resid, ws->x, N * D * sizeof *resid);
  if (!logits) return;

  /* Final norm and unembedding only at the rows that are asked for. */
  const float *rows = ws->x;
  if (positions) {
    for (int b = 0; b < B; b++)
      for (int p = 0; p < P; p++) {
        int t = positions[(size_t)b * P + p];
        float *dst = ws->sel + ((size_t)b * P + p) * D;
        if (t < 0)
          memset(dst, 0, D * sizeof *dst);
        else
          memcpy(dst, ws->x + ((size_t)b * T + t) * D, D * sizeof *dst);
      }
    rows = ws->sel;
  }
  float *normed = positions ? ws->seln : ws->h;
  if (c->final_norm && c->norm != EP_NORM_NONE) rows = norm_rows(c, normed, rows, m->lnf_w, m->lnf_b, R);
  ops_unembed(logits, rows, m->unembed, R, c->d_model, c->vocab_out);
  if (positions)
    for (size_t i = 0; i < R; i++)
      if (positions[i] < 0)
        memset(logits + i * (size_t)c->vocab_out, 0, (size_t)c->vocab_out * sizeof *logits);
}

void forward_logits(const ep_model *m, const int32_t *tokens, const int32_t *lengths, int B, int T,
                    const int32_t *positions, int P, float *logits) {
  ep_forward_ws ws;
  forward_ws_init(&ws);
  forward_run(m, &ws, tokens, lengths, B, T, positions, P, logits, NULL);
  forward_ws_free(&ws);
}
