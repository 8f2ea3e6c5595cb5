/* hf_load.c — Hugging Face safetensors weights -> ep_model (GPT-2 and Llama families).
 *
 * GPT-2 stores its projections as Conv1D, i.e. already in our "x @ W" orientation:
 * c_attn.weight is [D, 3D] with the q, k and v blocks side by side in its columns. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgeprune/core.h"
#include "edgeprune/model_io.h"
#include "edgeprune/safetensors.h"

typedef struct {
  ep_safetensors st;
  const char *prefix; /* "" or "transformer." */
  uint8_t *used;      /* [st.n_tensors] */
} hf_ctx;

/* The tensor prefix+name with shape [s0] (s1 == 0) or [s0, s1]; fatal when missing or
 * of another shape. */
static const ep_st_tensor *hf_expect(hf_ctx *c, const char *name, int64_t s0, int64_t s1) {
  char full[256];
  snprintf(full, sizeof full, "%s%s", c->prefix, name);
  int64_t shape[2] = {s0, s1};
  const ep_st_tensor *t = safetensors_expect(&c->st, full, s1 ? 2 : 1, shape);
  c->used[t - c->st.tensors] = 1;
  return t;
}

static void hf_read(hf_ctx *c, const char *name, int64_t s0, int64_t s1, float *dst) {
  safetensors_read_f32(&c->st, hf_expect(c, name, s0, s1), dst);
}

/* A tied model's lm_head.weight (prefix already set) must equal the token embedding;
 * Hugging Face would overwrite it, so a difference is only a warning. Compared in
 * chunks: never a second full copy of the embedding. */
static void check_tied_head(hf_ctx *c, const ep_model *m) {
  const int64_t V = m->cfg.vocab, D = m->cfg.d_model;
  const ep_st_tensor *h = hf_expect(c, "lm_head.weight", V, D);
  const int64_t total = V * D, chunk = (int64_t)1 << 20;
  float *tmp = ep_malloc((size_t)(total < chunk ? total : chunk) * sizeof(float));
  int differs = 0;
  for (int64_t at = 0; at < total && !differs; at += chunk) {
    int64_t k = total - at < chunk ? total - at : chunk;
    safetensors_read_f32_range(&c->st, h, at, k, tmp);
    differs = memcmp(tmp, m->wte + at, (size_t)k * sizeof(float)) != 0;
  }
  if (differs)
    ep_warn(
        "%s: 'lm_head.weight' differs from the token embedding but tie_word_embeddings is true; using the "
        "token embedding",
        safetensors_file_of(&c->st, h));
  free(tmp);
}

static void load_gpt2(ep_model *m, hf_ctx *c) {
  const ep_model_config *cfg = &m->cfg;
  const int64_t D = cfg->d_model, F = cfg->d_mlp, V = cfg->vocab;
  if (safetensors_find(&c->st, "transformer.wte.weight"))
    c->prefix = "transformer.";
  else if (safetensors_find(&c->st, "wte.weight"))
    c->prefix = "";
  else
    ep_fatal("%s: tensor 'wte.weight' (or 'transformer.wte.weight') is missing", c->st.source);

  hf_read(c, "wte.weight", V, D, m->wte);
  hf_read(c, "wpe.weight", cfg->n_ctx, D, m->wpe);
  float *qkv = ep_malloc((size_t)D * 3 * (size_t)D * sizeof(float)); /* [D, 3D] */
  char name[128];
  for (int l = 0; l < cfg->n_layer; l++) {
    ep_layer_weights *w = &m->layers[l];
#define HF(suffix, s0, s1, dst)                                                                              \
  (snprintf(name, sizeof name, "h.%d." suffix, l), hf_read(c, name, s0, s1, dst))
    HF("ln_1.weight", D, 0, w->ln1_w);
    HF("ln_1.bias", D, 0, w->ln1_b);
    HF("attn.c_attn.weight", D, 3 * D, qkv);
    for (int64_t r = 0; r < D; r++) {
      memcpy(w->w_q + r * D, qkv + r * 3 * D, (size_t)D * sizeof(float));
      memcpy(w->w_k + r * D, qkv + r * 3 * D + D, (size_t)D * sizeof(float));
      memcpy(w->w_v + r * D, qkv + r * 3 * D + 2 * D, (size_t)D * sizeof(float));
    }
    HF("attn.c_attn.bias", 3 * D, 0, qkv);
    memcpy(w->b_q, qkv, (size_t)D * sizeof(float));
    memcpy(w->b_k, qkv + D, (size_t)D * sizeof(float));
    memcpy(w->b_v, qkv + 2 * D, (size_t)D * sizeof(float));
    HF("attn.c_proj.weight", D, D, w->w_o);
    HF("attn.c_proj.bias", D, 0, w->b_o);
    HF("ln_2.weight", D, 0, w->ln2_w);
    HF("ln_2.bias", D, 0, w->ln2_b);
    HF("mlp.c_fc.weight", D, F, w->w_fc);
    HF("mlp.c_fc.bias", F, 0, w->b_fc);
    HF("mlp.c_proj.weight", F, D, w->w_proj);
    HF("mlp.c_proj.bias", D, 0, w->b_proj);
#undef HF
  }
  free(qkv);
  hf_read(c, "ln_f.weight", D, 0, m->lnf_w);
  hf_read(c, "ln_f.bias", D, 0, m->lnf_b);

  /* The LM head is outside the "transformer." prefix in GPT2LMHeadModel. */
  const char *saved = c->prefix;
  c->prefix = safetensors_find(&c->st, "lm_head.weight") ? "" : saved;
  snprintf(name, sizeof name, "%slm_head.weight", c->prefix);
  const ep_st_tensor *head = safetensors_find(&c->st, name);
  if (cfg->tied_unembed) {
    if (head) check_tied_head(c, m);
  } else {
    hf_read(c, "lm_head.weight", cfg->vocab_out, D, m->unembed);
  }
  c->prefix = saved;
}

/* An nn.Linear weight [out, in] read into our x @ W orientation dst [in, out]. */
static void hf_read_linear(hf_ctx *c, const char *name, int64_t out, int64_t in, float *dst, float *tmp) {
  hf_read(c, name, out, in, tmp);
  for (int64_t o = 0; o < out; o++)
    for (int64_t i = 0; i < in; i++)
      dst[i * out + o] = tmp[o * in + i];
}

/* Llama keeps nn.Linear [out, in] weights; Hugging Face's q/k layout already matches the
 * rotate-half RoPE the forward pass applies, so no row permutation is needed. */
static void load_llama(ep_model *m, hf_ctx *c) {
  const ep_model_config *cfg = &m->cfg;
  const int64_t D = cfg->d_model, F = cfg->d_mlp, V = cfg->vocab, Q = (int64_t)cfg->n_head * cfg->d_head,
                KV = (int64_t)cfg->n_kv_head * cfg->d_head;
  if (!safetensors_find(&c->st, "model.embed_tokens.weight"))
    ep_fatal("%s: tensor 'model.embed_tokens.weight' is missing", c->st.source);
  c->prefix = "model.";
  hf_read(c, "embed_tokens.weight", V, D, m->wte);
  int64_t big = D * (Q > F ? Q : F); /* the largest projection: q/o or an MLP matrix */
  float *tmp = ep_malloc((size_t)big * sizeof(float));
  char name[128];
  for (int l = 0; l < cfg->n_layer; l++) {
    ep_layer_weights *w = &m->layers[l];
#define NM(suffix) (snprintf(name, sizeof name, "layers.%d." suffix, l), name)
    hf_read(c, NM("input_layernorm.weight"), D, 0, w->ln1_w);
    hf_read_linear(c, NM("self_attn.q_proj.weight"), Q, D, w->w_q, tmp);
    hf_read_linear(c, NM("self_attn.k_proj.weight"), KV, D, w->w_k, tmp);
    hf_read_linear(c, NM("self_attn.v_proj.weight"), KV, D, w->w_v, tmp);
    hf_read_linear(c, NM("self_attn.o_proj.weight"), D, Q, w->w_o, tmp);
    if (cfg->attn_bias) {
      hf_read(c, NM("self_attn.q_proj.bias"), Q, 0, w->b_q);
      hf_read(c, NM("self_attn.k_proj.bias"), KV, 0, w->b_k);
      hf_read(c, NM("self_attn.v_proj.bias"), KV, 0, w->b_v);
      hf_read(c, NM("self_attn.o_proj.bias"), D, 0, w->b_o);
    }
    hf_read(c, NM("post_attention_layernorm.weight"), D, 0, w->ln2_w);
    hf_read_linear(c, NM("mlp.gate_proj.weight"), F, D, w->w_gate, tmp);
    hf_read_linear(c, NM("mlp.up_proj.weight"), F, D, w->w_fc, tmp);
    hf_read_linear(c, NM("mlp.down_proj.weight"), D, F, w->w_proj, tmp);
#undef NM
  }
  free(tmp);
  hf_read(c, "norm.weight", D, 0, m->lnf_w);
  c->prefix = "";
  const ep_st_tensor *head = safetensors_find(&c->st, "lm_head.weight");
  if (!cfg->tied_unembed) {
    hf_read(c, "lm_head.weight", cfg->vocab_out, D, m->unembed); /* [V, D] is already our layout */
  } else if (head) {
    check_tied_head(c, m);
  }
}

/* Buffers the checkpoint may carry that are not parameters. */
static int is_ignorable(const char *name) {
  size_t n = strlen(name);
  const char *tails[] = {".attn.bias", ".attn.masked_bias", ".rotary_emb.inv_freq"};
  for (size_t i = 0; i < sizeof tails / sizeof *tails; i++) {
    size_t k = strlen(tails[i]);
    if (n >= k && !strcmp(name + n - k, tails[i])) return 1;
  }
  return 0;
}

void hf_load_weights(ep_model *m, const char *weights) {
  hf_ctx c;
  memset(&c, 0, sizeof c);
  safetensors_open(&c.st, weights);
  c.used = ep_calloc((size_t)c.st.n_tensors + 1, 1);
  if (!strcmp(m->cfg.arch, "gpt2"))
    load_gpt2(m, &c);
  else if (!strcmp(m->cfg.arch, "llama"))
    load_llama(m, &c);
  else
    ep_fatal("%s: no Hugging Face weight mapping for arch '%s'", weights, m->cfg.arch);
  int unused = 0;
  const char *first = NULL;
  for (int i = 0; i < c.st.n_tensors; i++)
    if (!c.used[i] && !is_ignorable(c.st.tensors[i].name) && strcmp(c.st.tensors[i].name, "lm_head.weight")) {
      if (!first) first = c.st.tensors[i].name;
      unused++;
    }
  if (unused)
    ep_warn("%s: %d tensor(s) not used by the %s model, e.g. '%s'", weights, unused, m->cfg.arch, first);
  free(c.used);
  safetensors_close(&c.st);
}
