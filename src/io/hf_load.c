/* hf_load.c — Hugging Face safetensors weights -> ep_model (GPT-2 family).
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
    if (head) { /* tied: the head must be the embedding; Hugging Face would overwrite it */
      const ep_st_tensor *h = hf_expect(c, "lm_head.weight", V, D);
      const int64_t total = V * D, chunk = (int64_t)1 << 20;
      float *tmp = ep_malloc((size_t)(total < chunk ? total : chunk) * sizeof(float));
      int differs = 0;
      for (int64_t at = 0; at < total && !differs; at += chunk) { /* never a second full copy */
        int64_t k = total - at < chunk ? total - at : chunk;
        safetensors_read_f32_range(&c->st, h, at, k, tmp);
        differs = memcmp(tmp, m->wte + at, (size_t)k * sizeof(float)) != 0;
      }
      if (differs)
        ep_warn("%s: 'lm_head.weight' differs from 'wte.weight' but tie_word_embeddings is true; using wte",
                safetensors_file_of(&c->st, head));
      free(tmp);
    }
  } else {
    hf_read(c, "lm_head.weight", cfg->vocab_out, D, m->unembed);
  }
  c->prefix = saved;
}

/* Buffers the checkpoint may carry that are not parameters. */
static int is_ignorable(const char *name) {
  size_t n = strlen(name);
  const char *tails[] = {".attn.bias", ".attn.masked_bias"};
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
