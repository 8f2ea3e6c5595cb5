/* model.c — model config defaults/validation, tensor list, allocation, random init. */
#include "edgeprune/model.h"

#include <stdlib.h>
#include <string.h>

#include "edgeprune/core.h"
#include "edgeprune/rng.h"

void model_config_defaults(ep_model_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  strcpy(cfg->arch, "gpt2");
  cfg->n_layer = 12;
  cfg->n_head = 12;
  cfg->n_kv_head = 12;
  cfg->d_model = 768;
  cfg->d_head = 64;
  cfg->d_mlp = 3072;
  cfg->vocab = 50257;
  cfg->vocab_out = 50257;
  cfg->n_ctx = 1024;
  cfg->norm = EP_NORM_LAYERNORM;
  cfg->norm_eps = 1e-5f;
  cfg->act = EP_ACT_GELU_TANH;
  cfg->pos = EP_POS_LEARNED;
  cfg->rope_theta = 10000.0f;
  cfg->causal = 1;
  cfg->tied_unembed = 1;
  cfg->attn_bias = 1;
  cfg->mlp_bias = 1;
  cfg->final_norm = 1;
  cfg->bos_token = -1;
  cfg->pad_token = -1;
  cfg->output = EP_OUTPUT_LOGITS;
  for (int l = 0; l < EP_MAX_LAYERS; l++) cfg->has_attn[l] = cfg->has_mlp[l] = 1;
}

const char *model_config_validate(const ep_model_config *cfg) {
  if (cfg->n_layer < 1 || cfg->n_layer > EP_MAX_LAYERS) return "n_layer must be in 1..256";
  if (cfg->n_head < 1) return "n_head must be >= 1";
  if (cfg->n_kv_head < 1 || cfg->n_head % cfg->n_kv_head != 0)
    return "n_kv_head must be >= 1 and divide n_head";
  if (cfg->d_model < 1 || cfg->d_head < 1 || cfg->d_mlp < 1) return "widths must be >= 1";
  if (cfg->vocab < 1 || cfg->vocab_out < 1) return "vocabulary sizes must be >= 1";
  if (cfg->n_ctx < 1) return "n_ctx must be >= 1";
  if (cfg->tied_unembed && cfg->vocab_out != cfg->vocab) return "a tied unembedding needs vocab_out == vocab";
  if (cfg->act == EP_ACT_SILU_GLU && cfg->mlp_bias) return "a gated (SiLU) MLP has no biases here";
  if (cfg->pos == EP_POS_ROPE && cfg->d_head % 2) return "RoPE needs an even head width";
  if (cfg->bos_token >= cfg->vocab) return "bos_token out of range";
  if (cfg->pad_token >= cfg->vocab) return "pad_token out of range";
  return NULL;
}

/* Append one tensor reference. */
static void add(ep_tensor_ref *t, int *n, char *name, float **slot, int64_t a, int64_t b) {
  t[*n].name = name;
  t[*n].slot = slot;
  t[*n].ndim = b ? 2 : 1;
  t[*n].shape[0] = a;
  t[*n].shape[1] = b;
  (*n)++;
}

/* Names are built once per list into one arena owned by the returned array. */
ep_tensor_ref *model_tensor_list(ep_model *m, int *n_out) {
  const ep_model_config *c = &m->cfg;
  const int64_t D = c->d_model, F = c->d_mlp, Q = (int64_t)c->n_head * c->d_head,
                KV = (int64_t)c->n_kv_head * c->d_head;
  int cap = 8 + 18 * c->n_layer;
  size_t name_bytes = (size_t)cap * 24;
  ep_tensor_ref *t = ep_calloc(1, (size_t)cap * sizeof *t + name_bytes);
  char *names = (char *)(t + cap);
  int n = 0;
#define NAME(...) (snprintf(names, 24, __VA_ARGS__), names += 24, names - 24)
  add(t, &n, NAME("wte"), &m->wte, c->vocab, D);
  if (c->pos == EP_POS_LEARNED) add(t, &n, NAME("wpe"), &m->wpe, c->n_ctx, D);
  for (int l = 0; l < c->n_layer; l++) {
    ep_layer_weights *w = &m->layers[l];
    int ln = c->norm != EP_NORM_NONE, lnb = c->norm == EP_NORM_LAYERNORM;
    if (c->has_attn[l]) {
      if (ln) add(t, &n, NAME("h.%d.ln1_w", l), &w->ln1_w, D, 0);
      if (lnb) add(t, &n, NAME("h.%d.ln1_b", l), &w->ln1_b, D, 0);
      add(t, &n, NAME("h.%d.w_q", l), &w->w_q, D, Q);
      add(t, &n, NAME("h.%d.w_k", l), &w->w_k, D, KV);
      add(t, &n, NAME("h.%d.w_v", l), &w->w_v, D, KV);
      add(t, &n, NAME("h.%d.w_o", l), &w->w_o, Q, D);
      if (c->attn_bias) {
        add(t, &n, NAME("h.%d.b_q", l), &w->b_q, Q, 0);
        add(t, &n, NAME("h.%d.b_k", l), &w->b_k, KV, 0);
        add(t, &n, NAME("h.%d.b_v", l), &w->b_v, KV, 0);
        add(t, &n, NAME("h.%d.b_o", l), &w->b_o, D, 0);
      }
    }
    if (c->has_mlp[l]) {
      if (ln) add(t, &n, NAME("h.%d.ln2_w", l), &w->ln2_w, D, 0);
      if (lnb) add(t, &n, NAME("h.%d.ln2_b", l), &w->ln2_b, D, 0);
      add(t, &n, NAME("h.%d.w_fc", l), &w->w_fc, D, F);
      if (c->act == EP_ACT_SILU_GLU) add(t, &n, NAME("h.%d.w_gate", l), &w->w_gate, D, F);
      add(t, &n, NAME("h.%d.w_proj", l), &w->w_proj, F, D);
      if (c->mlp_bias) {
        add(t, &n, NAME("h.%d.b_fc", l), &w->b_fc, F, 0);
        add(t, &n, NAME("h.%d.b_proj", l), &w->b_proj, D, 0);
      }
    }
  }
  if (c->final_norm && c->norm != EP_NORM_NONE) {
    add(t, &n, NAME("lnf_w"), &m->lnf_w, D, 0);
    if (c->norm == EP_NORM_LAYERNORM) add(t, &n, NAME("lnf_b"), &m->lnf_b, D, 0);
  }
  if (!c->tied_unembed) add(t, &n, NAME("unembed"), &m->unembed, c->vocab_out, D);
#undef NAME
  EP_ASSERT(n <= cap);
  *n_out = n;
  return t;
}

static size_t tensor_numel(const ep_tensor_ref *t) {
  return (size_t)t->shape[0] * (size_t)(t->ndim == 2 ? t->shape[1] : 1);
}

void model_alloc(ep_model *m, const ep_model_config *cfg) {
  const char *bad = model_config_validate(cfg);
  EP_CHECK(!bad, "invalid model config: %s", bad);
  memset(m, 0, sizeof *m);
  m->cfg = *cfg;
  m->layers = ep_calloc((size_t)cfg->n_layer, sizeof *m->layers);
  int n = 0;
  ep_tensor_ref *t = model_tensor_list(m, &n);
  size_t total = 0;
  for (int i = 0; i < n; i++) total += tensor_numel(&t[i]);
  m->mem = ep_calloc(total, sizeof(float));
  m->n_floats = total;
  size_t off = 0;
  for (int i = 0; i < n; i++) {
    *t[i].slot = m->mem + off;
    off += tensor_numel(&t[i]);
  }
  if (cfg->tied_unembed) m->unembed = m->wte;
  free(t);
}

void model_free(ep_model *m) {
  free(m->mem);
  free(m->layers);
  memset(m, 0, sizeof *m);
}

void model_init_random(ep_model *m, uint64_t seed, float std) {
  int n = 0;
  ep_tensor_ref *t = model_tensor_list(m, &n);
  for (int i = 0; i < n; i++) {
    float *p = *t[i].slot;
    size_t numel = tensor_numel(&t[i]);
    int is_gain = strstr(t[i].name, "ln") && strstr(t[i].name, "_w");
    for (size_t j = 0; j < numel; j++) {
      double z = ep_rng_normal(seed, EP_RNG_STREAM_INIT, ((uint64_t)i << 40) | j, 0);
      p[j] = is_gain ? (float)(1.0 + 0.1 * z) : (float)(std * z);
    }
  }
  free(t);
}
