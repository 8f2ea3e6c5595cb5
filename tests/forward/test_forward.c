/* test_forward.c — forward_run / forward_logits against the naive reference on random
 * models of every kind, plus the position-selection and padding contracts. Needs no
 * golden files. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgeprune/forward.h"
#include "edgeprune/rng.h"
#include "naive_ref.h"
#include "test_util.h"

typedef struct {
  const char *name;
  ep_model_config cfg;
  float std;
} kind;

static ep_model_config gpt2_like(void) {
  ep_model_config c;
  model_config_defaults(&c);
  c.n_layer = 2, c.n_head = c.n_kv_head = 4, c.d_model = 32, c.d_head = 8, c.d_mlp = 64;
  c.vocab = c.vocab_out = 50, c.n_ctx = 16;
  return c;
}

static ep_model_config llama_like(void) {
  ep_model_config c;
  model_config_defaults(&c);
  strcpy(c.arch, "llama");
  c.n_layer = 2, c.n_head = 4, c.n_kv_head = 2, c.d_model = 32, c.d_head = 8, c.d_mlp = 48;
  c.vocab = 60, c.vocab_out = 60, c.n_ctx = 16;
  c.norm = EP_NORM_RMSNORM, c.norm_eps = 1e-6f, c.act = EP_ACT_SILU_GLU, c.pos = EP_POS_ROPE;
  c.rope_theta = 500.0f; /* small base: every frequency turns noticeably within 16 tokens */
  c.attn_bias = c.mlp_bias = 0, c.tied_unembed = 0;
  return c;
}

/* No norms, ReLU, bidirectional, untied output head, one layer without an MLP and one
 * without attention. */
static ep_model_config tracr_like(int numeric) {
  ep_model_config c;
  model_config_defaults(&c);
  strcpy(c.arch, "tracr");
  c.n_layer = 3, c.n_head = c.n_kv_head = 2, c.d_model = 24, c.d_head = 6, c.d_mlp = 16;
  c.vocab = 10, c.vocab_out = numeric ? 1 : 4, c.n_ctx = 8;
  c.norm = EP_NORM_NONE, c.act = EP_ACT_RELU, c.causal = 0, c.tied_unembed = 0, c.final_norm = 0;
  c.output = numeric ? EP_OUTPUT_NUMERIC : EP_OUTPUT_LOGITS;
  c.has_mlp[1] = 0, c.has_attn[2] = 0;
  return c;
}

/* Deterministic token in 0..V-1 */
static int32_t tok_at(uint64_t seed, int i, int V) {
  return (int32_t)(ep_rng_uniform(seed, 7, (uint64_t)i, 0) * V) % V;
}

/* forward_logits on a padded batch against naive_forward per sequence. */
static void check_vs_naive(const char *name, const ep_model *m, int B, int T, const int32_t *len) {
  const ep_model_config *c = &m->cfg;
  const int V = c->vocab_out, D = c->d_model;
  int32_t *tok = malloc(sizeof *tok * B * T);
  for (int i = 0; i < B * T; i++)
    tok[i] = tok_at(11, i, c->vocab);
  for (int b = 0; b < B; b++)
    for (int t = len[b]; t < T; t++)
      tok[b * T + t] = -1; /* padding is never read */
  float *lg = malloc(sizeof *lg * B * T * V), *res = malloc(sizeof *res * B * T * D);
  ep_forward_ws ws;
  forward_ws_init(&ws);
  forward_run(m, &ws, tok, len, B, T, NULL, 0, lg, res);
  double worst = 0, worst_res = 0, scale = 0;
  double *ref = malloc(sizeof *ref * T * V), *rres = malloc(sizeof *rres * T * D);
  for (int b = 0; b < B; b++) {
    naive_forward(m, tok + b * T, len[b], ref, rres);
    for (int i = 0; i < len[b] * V; i++) {
      double d = fabs(lg[(size_t)b * T * V + i] - ref[i]);
      worst = d > worst || isnan(d) ? d : worst;
      scale = fabs(ref[i]) > scale ? fabs(ref[i]) : scale;
    }
    for (int i = 0; i < len[b] * D; i++) {
      double d = fabs(res[(size_t)b * T * D + i] - rres[i]);
      worst_res = d > worst_res || isnan(d) ? d : worst_res;
    }
  }
  printf("%-14s B=%d T=%d  max|logit|=%.3f  max|diff| logits %.3g resid %.3g\n", name, B, T, scale, worst,
         worst_res);
  T_CHECK(worst <= 1e-4, "%s: logits differ from the naive reference by %g", name, worst);
  T_CHECK(worst_res <= 1e-4, "%s: residual differs from the naive reference by %g", name, worst_res);
  T_CHECK(scale > 0.5, "%s: logits too flat (%g) for the comparison to mean much", name, scale);

  /* Selected positions equal the same rows of the all-positions output; -1 gives zeros. */
  const int P = 3;
  int32_t *pos = malloc(sizeof *pos * B * P);
  for (int b = 0; b < B; b++) {
    pos[b * P + 0] = len[b] - 1;
    pos[b * P + 1] = b % 2 ? -1 : 0;
    pos[b * P + 2] = len[b] / 2;
  }
  float *sel = malloc(sizeof *sel * B * P * V);
  forward_run(m, &ws, tok, len, B, T, pos, P, sel, NULL);
  double dsel = 0;
  int zeros_ok = 1;
  for (int b = 0; b < B; b++)
    for (int p = 0; p < P; p++) {
      const float *row = sel + ((size_t)b * P + p) * V;
      if (pos[b * P + p] < 0) {
        for (int i = 0; i < V; i++)
          zeros_ok &= row[i] == 0.0f;
        continue;
      }
      double d = t_max_abs_diff(row, lg + ((size_t)b * T + pos[b * P + p]) * V, (size_t)V);
      dsel = d > dsel ? d : dsel;
    }
  T_CHECK(dsel <= 1e-6, "%s: selected positions differ from the full output by %g", name, dsel);
  T_CHECK(zeros_ok, "%s: position -1 must give a zero logits row", name);

  /* Padding contents and extra padding change nothing at positions < length. */
  const int T2 = T + 3 <= c->n_ctx || c->pos != EP_POS_LEARNED ? T + 3 : T;
  int32_t *tok2 = malloc(sizeof *tok2 * B * T2);
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T2; t++)
      tok2[b * T2 + t] = t < len[b] ? tok[b * T + t] : tok_at(99, b * T2 + t, c->vocab);
  float *lg2 = malloc(sizeof *lg2 * B * T2 * V);
  forward_run(m, &ws, tok2, len, B, T2, NULL, 0, lg2, NULL);
  double dpad = 0;
  for (int b = 0; b < B; b++) {
    double d = t_max_abs_diff(lg2 + (size_t)b * T2 * V, lg + (size_t)b * T * V, (size_t)len[b] * V);
    dpad = d > dpad ? d : dpad;
  }
  T_CHECK(dpad <= 1e-6, "%s: padding changed logits before the length by %g", name, dpad);

  /* Causal models: with no lengths at all, a prefix is unaffected by what follows it. */
  if (c->causal) {
    float *lg3 = malloc(sizeof *lg3 * B * T2 * V);
    forward_run(m, &ws, tok2, NULL, B, T2, NULL, 0, lg3, NULL);
    double dc = 0;
    for (int b = 0; b < B; b++) {
      double d = t_max_abs_diff(lg3 + (size_t)b * T2 * V, lg + (size_t)b * T * V, (size_t)len[b] * V);
      dc = d > dc ? d : dc;
    }
    /* different key counts reorder float sums: allow rounding, not leakage (which is O(1)) */
    T_CHECK(dc <= 1e-5, "%s: causal prefix changed by later tokens by %g", name, dc);
    free(lg3);
  } else {
    /* Bidirectional: a later token must change earlier outputs (else the mask is causal). */
    int32_t l1[1] = {len[0]}, l2[1] = {len[0] - 1};
    float *a = malloc(sizeof *a * T * V), *bb = malloc(sizeof *bb * T * V);
    forward_run(m, &ws, tok, l1, 1, T, NULL, 0, a, NULL);
    forward_run(m, &ws, tok, l2, 1, T, NULL, 0, bb, NULL);
    double d = t_max_abs_diff(a, bb, (size_t)V); /* position 0 */
    T_CHECK(d > 1e-4, "%s: bidirectional position 0 ignores later tokens (diff %g)", name, d);
    free(a), free(bb);
  }

  /* The convenience wrapper gives the same numbers as the workspace call. */
  float *lw = malloc(sizeof *lw * B * T * V);
  forward_logits(m, tok, len, B, T, NULL, 0, lw);
  T_CHECK(t_max_abs_diff(lw, lg, (size_t)B * T * V) == 0.0, "%s: forward_logits != forward_run", name);

  forward_ws_free(&ws);
  free(tok), free(lg), free(res), free(ref), free(rres), free(pos), free(sel), free(tok2), free(lg2),
      free(lw);
}

int main(void) {
  kind kinds[8];
  int nk = 0;
  kinds[nk++] = (kind){"gpt2-like", gpt2_like(), 0.2f};
  kinds[nk++] = (kind){"llama-like", llama_like(), 0.2f};
  kinds[nk++] = (kind){"tracr-like", tracr_like(0), 0.3f};
  kinds[nk++] = (kind){"tracr-numeric", tracr_like(1), 0.3f};
  /* GPT-2 shape with a separate head, attention-only biases and a skipped sub-block. */
  kind g = {"gpt2-variant", gpt2_like(), 0.2f};
  g.cfg.tied_unembed = 0, g.cfg.vocab_out = 37, g.cfg.mlp_bias = 0, g.cfg.has_mlp[0] = 0;
  kinds[nk++] = g;
  /* Llama shape with multi-query attention, ReLU-free GELU MLP and no final norm. */
  kind q = {"mqa-nofinal", llama_like(), 0.2f};
  q.cfg.n_kv_head = 1, q.cfg.final_norm = 0, q.cfg.norm = EP_NORM_LAYERNORM, q.cfg.act = EP_ACT_GELU_TANH;
  q.cfg.mlp_bias = 1;
  kinds[nk++] = q;

  for (int i = 0; i < nk; i++) {
    ep_model m;
    model_alloc(&m, &kinds[i].cfg);
    model_init_random(&m, 1234 + (uint64_t)i, kinds[i].std);
    int T = m.cfg.n_ctx < 12 ? m.cfg.n_ctx - 3 : 12;
    int32_t len[4] = {T, 1, T - 2, T / 2 + 1};
    check_vs_naive(kinds[i].name, &m, 4, T, len);
    model_free(&m);
  }
  return t_done();
}
