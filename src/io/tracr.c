/* tracr.c — Tracr-compiled models (Haiku parameter names, safetensors + config JSON).
 *
 * Config JSON: num_heads, num_layers, mlp_hidden_size, layer_norm (must be false),
 * causal, max_seq_len, bos, pad, vocab {token: id}. Widths come from the tensors:
 * D from token_embed_embeddings [V, D], the key size from query_w [D, H*dk]. Tracr's
 * projections are Haiku Linear weights, already [in, out] = our x @ W orientation.
 * The positional table has max_seq_len + 1 rows (BOS takes position 0). A model with
 * an `unembedding` [D, V_out] has a logits head (our unembed is its transpose); one
 * without reads residual dimension 0 (numeric head, a one-hot unembed row). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgeprune/core.h"
#include "edgeprune/model_io.h"
#include "edgeprune/safetensors.h"
#include "io/json_keys.h"

#define TRACR_MAX_VOCAB 65536

static const ep_st_tensor *layer_tensor(const ep_safetensors *st, int l, const char *what) {
  char name[128];
  snprintf(name, sizeof name, "transformer/layer_%d/%s", l, what);
  return safetensors_find(st, name);
}

/* A sub-block exists when its first weight is present and non-empty. */
static int block_present(const ep_safetensors *st, int l, const char *w) {
  const ep_st_tensor *t = layer_tensor(st, l, w);
  return t && t->numel > 0;
}

/* 1 when s is an optional '-' and digits only. */
static int is_int_str(const char *s) {
  if (*s == '-') s++;
  if (!*s) return 0;
  for (; *s; s++)
    if (*s < '0' || *s > '9') return 0;
  return 1;
}

static int all_int;
static int cmp_token(const void *a, const void *b) {
  const char *x = *(const char *const *)a, *y = *(const char *const *)b;
  if (all_int) {
    long long p = atoll(x), q = atoll(y);
    return (p > q) - (p < q);
  }
  return strcmp(x, y);
}

void tracr_load_config(ep_model_config *cfg, ep_model_tokens *tok, const char *config_path,
                       const char *weights) {
  size_t len = 0;
  char *text = ep_read_file(config_path, &len);
  cJSON *root = jk_parse(text, len, config_path);
  model_config_defaults(cfg);
  strcpy(cfg->arch, "tracr");
  const int H = jk_req_int(root, "num_heads", 1, config_path);
  const int L = jk_req_int(root, "num_layers", 1, config_path);
  const int F = jk_req_int(root, "mlp_hidden_size", 1, config_path);
  const int max_seq = jk_req_int(root, "max_seq_len", 1, config_path);
  if (L > EP_MAX_LAYERS)
    ep_fatal("%s: key 'num_layers' is %d; at most %d layers are supported", config_path, L, EP_MAX_LAYERS);
  if (jk_req_bool(root, "layer_norm", config_path))
    ep_fatal("%s: key 'layer_norm' is true; Tracr models with LayerNorm are not supported", config_path);
  cfg->causal = jk_req_bool(root, "causal", config_path);
  const char *bos = jk_req_str(root, "bos", config_path);
  const char *pad = jk_req_str(root, "pad", config_path);
  const cJSON *vmap = jk_req_obj(root, "vocab", config_path);

  /* Vocabulary: ids need not be contiguous; V = max id + 1. */
  int max_id = -1;
  const cJSON *e;
  cJSON_ArrayForEach(e, vmap) {
    if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble >= TRACR_MAX_VOCAB ||
        (double)(int)e->valuedouble != e->valuedouble)
      ep_fatal("%s: key 'vocab': entry \"%s\" should be an integer id in 0..%d", config_path, e->string,
               TRACR_MAX_VOCAB - 1);
    if ((int)e->valuedouble > max_id) max_id = (int)e->valuedouble;
  }
  if (max_id < 0) ep_fatal("%s: key 'vocab' is empty", config_path);
  const int V = max_id + 1;
  char **names = ep_calloc((size_t)V, sizeof *names);
  cJSON_ArrayForEach(e, vmap) {
    int id = (int)e->valuedouble;
    if (names[id])
      ep_fatal("%s: key 'vocab': \"%s\" and \"%s\" share id %d", config_path, names[id], e->string, id);
    names[id] = e->string;
  }
  const cJSON *jb = cJSON_GetObjectItemCaseSensitive(vmap, bos),
              *jp = cJSON_GetObjectItemCaseSensitive(vmap, pad);
  if (!jb) ep_fatal("%s: key 'bos' names \"%s\", which is not in 'vocab'", config_path, bos);
  if (!jp) ep_fatal("%s: key 'pad' names \"%s\", which is not in 'vocab'", config_path, pad);
  cfg->bos_token = (int)jb->valuedouble;
  cfg->pad_token = (int)jp->valuedouble;

  ep_safetensors st;
  safetensors_open(&st, weights);
  const ep_st_tensor *te = safetensors_find(&st, "token_embed_embeddings");
  if (!te) ep_fatal("%s: tensor 'token_embed_embeddings' is missing", weights);
  if (te->ndim != 2 || te->shape[1] < 1)
    ep_fatal("%s: tensor 'token_embed_embeddings' should be [vocab, d_model]", weights);
  const int D = (int)te->shape[1];
  cfg->vocab = V;
  cfg->d_model = D;
  cfg->n_layer = L;
  cfg->n_head = cfg->n_kv_head = H;
  cfg->d_mlp = F;
  cfg->n_ctx = max_seq + 1;
  cfg->norm = EP_NORM_NONE;
  cfg->final_norm = 0;
  cfg->act = EP_ACT_RELU;
  cfg->pos = EP_POS_LEARNED;
  cfg->tied_unembed = 0;
  cfg->attn_bias = cfg->mlp_bias = 1;

  cfg->d_head = 0;
  for (int l = 0; l < L; l++) {
    cfg->has_attn[l] = (uint8_t)block_present(&st, l, "attn/query_w");
    cfg->has_mlp[l] = (uint8_t)block_present(&st, l, "mlp/linear_1_w");
    if (!cfg->has_attn[l]) continue;
    const ep_st_tensor *q = layer_tensor(&st, l, "attn/query_w");
    if (q->ndim != 2 || q->shape[1] % H)
      ep_fatal("%s: tensor 'transformer/layer_%d/attn/query_w' should be [d_model, num_heads*key_size] with "
               "num_heads = %d",
               safetensors_file_of(&st, q), l, H);
    int dk = (int)(q->shape[1] / H);
    if (cfg->d_head && dk != cfg->d_head)
      ep_fatal("%s: tensor 'transformer/layer_%d/attn/query_w' has key size %d, earlier layers %d",
               safetensors_file_of(&st, q), l, dk, cfg->d_head);
    cfg->d_head = dk;
    const char *kv[2] = {"attn/key_w", "attn/value_w"};
    for (int k = 0; k < 2; k++) {
      const ep_st_tensor *t = layer_tensor(&st, l, kv[k]);
      if (t && t->ndim == 2 && t->shape[1] != q->shape[1])
        ep_fatal("%s: tensor 'transformer/layer_%d/%s' is %lld wide but query_w is %lld: a value size "
                 "other than the key size is not supported",
                 safetensors_file_of(&st, t), l, kv[k], (long long)t->shape[1], (long long)q->shape[1]);
    }
  }
  if (cfg->d_head == 0) cfg->d_head = 1; /* no attention anywhere: the width is unused */

  const ep_st_tensor *un = safetensors_find(&st, "unembedding");
  if (un) {
    if (un->ndim != 2 || un->shape[0] != D || un->shape[1] < 1)
      ep_fatal("%s: tensor 'unembedding' should be [d_model = %d, output vocabulary]", weights, D);
    cfg->output = EP_OUTPUT_LOGITS;
    cfg->vocab_out = (int)un->shape[1];
  } else {
    cfg->output = EP_OUTPUT_NUMERIC;
    cfg->vocab_out = 1;
  }
  const char *bad = model_config_validate(cfg);
  if (bad) ep_fatal("%s: inconsistent Tracr model: %s", config_path, bad);

  if (tok) {
    memset(tok, 0, sizeof *tok);
    tok->n_in = V;
    tok->in = ep_calloc((size_t)V, sizeof *tok->in);
    for (int i = 0; i < V; i++)
      tok->in[i] = ep_strdup(names[i] ? names[i] : "");
    tok->n_out = cfg->vocab_out;
    tok->out = ep_calloc((size_t)cfg->vocab_out, sizeof *tok->out);
    if (cfg->output == EP_OUTPUT_NUMERIC) {
      tok->out[0] = ep_strdup("value");
    } else {
      /* Tracr orders a categorical output space by value: the non-special input
       * tokens, sorted (numerically when they are all integers). */
      int n = 0;
      const char **cand = ep_calloc((size_t)V, sizeof *cand);
      all_int = 1;
      for (int i = 0; i < V; i++)
        if (names[i] && i != cfg->bos_token && i != cfg->pad_token) {
          cand[n++] = names[i];
          all_int &= is_int_str(names[i]);
        }
      qsort(cand, (size_t)n, sizeof *cand, cmp_token);
      if (n == cfg->vocab_out) {
        for (int i = 0; i < n; i++)
          tok->out[i] = ep_strdup(cand[i]);
      } else {
        ep_warn("%s: %d output rows but %d non-special tokens; naming the outputs by index", weights,
                cfg->vocab_out, n);
        for (int i = 0; i < cfg->vocab_out; i++) {
          char buf[16];
          snprintf(buf, sizeof buf, "%d", i);
          tok->out[i] = ep_strdup(buf);
        }
      }
      free(cand);
    }
  }
  safetensors_close(&st);
  free(names);
  cJSON_Delete(root);
  free(text);
}

/* Read layer tensor `what` with shape [s0] or [s0, s1] into dst. */
static void read_layer(const ep_safetensors *st, uint8_t *used, int l, const char *what, int64_t s0,
                       int64_t s1, float *dst) {
  char name[128];
  snprintf(name, sizeof name, "transformer/layer_%d/%s", l, what);
  int64_t shape[2] = {s0, s1};
  const ep_st_tensor *t = safetensors_expect(st, name, s1 ? 2 : 1, shape);
  used[t - st->tensors] = 1;
  safetensors_read_f32(st, t, dst);
}

void tracr_load_weights(ep_model *m, const char *weights) {
  const ep_model_config *c = &m->cfg;
  const int64_t D = c->d_model, Q = (int64_t)c->n_head * c->d_head, F = c->d_mlp;
  ep_safetensors st;
  safetensors_open(&st, weights);
  uint8_t *used = ep_calloc((size_t)st.n_tensors + 1, 1);
  int64_t shape[2] = {c->vocab, D};
  const ep_st_tensor *t = safetensors_expect(&st, "token_embed_embeddings", 2, shape);
  used[t - st.tensors] = 1;
  safetensors_read_f32(&st, t, m->wte);
  shape[0] = c->n_ctx;
  t = safetensors_expect(&st, "pos_embed_embeddings", 2, shape);
  used[t - st.tensors] = 1;
  safetensors_read_f32(&st, t, m->wpe);

  for (int l = 0; l < c->n_layer; l++) {
    ep_layer_weights *w = &m->layers[l];
    if (c->has_attn[l]) {
      read_layer(&st, used, l, "attn/query_w", D, Q, w->w_q);
      read_layer(&st, used, l, "attn/key_w", D, Q, w->w_k);
      read_layer(&st, used, l, "attn/value_w", D, Q, w->w_v);
      read_layer(&st, used, l, "attn/linear_w", Q, D, w->w_o);
      read_layer(&st, used, l, "attn/query_b", Q, 0, w->b_q);
      read_layer(&st, used, l, "attn/key_b", Q, 0, w->b_k);
      read_layer(&st, used, l, "attn/value_b", Q, 0, w->b_v);
      read_layer(&st, used, l, "attn/linear_b", D, 0, w->b_o);
    }
    if (c->has_mlp[l]) {
      /* A layer's MLP may be narrower than mlp_hidden_size: the extra hidden units get
       * zero weights and biases, which ReLU maps to zero, so the output is unchanged. */
      const ep_st_tensor *w1 = layer_tensor(&st, l, "mlp/linear_1_w");
      if (w1->ndim != 2 || w1->shape[0] != D || w1->shape[1] > F)
        ep_fatal("%s: tensor 'transformer/layer_%d/mlp/linear_1_w' should be [%lld, <= %lld]",
                 safetensors_file_of(&st, w1), l, (long long)D, (long long)F);
      const int64_t Fl = w1->shape[1];
      float *tmp = ep_malloc((size_t)(D * Fl) * sizeof(float));
      read_layer(&st, used, l, "mlp/linear_1_w", D, Fl, tmp);
      for (int64_t r = 0; r < D; r++)
        memcpy(w->w_fc + r * F, tmp + r * Fl, (size_t)Fl * sizeof(float));
      read_layer(&st, used, l, "mlp/linear_1_b", Fl, 0, w->b_fc);
      read_layer(&st, used, l, "mlp/linear_2_w", Fl, D, w->w_proj); /* rows [0, Fl) */
      read_layer(&st, used, l, "mlp/linear_2_b", D, 0, w->b_proj);
      free(tmp);
    }
  }

  if (c->output == EP_OUTPUT_LOGITS) {
    const int64_t Vo = c->vocab_out;
    int64_t us[2] = {D, Vo};
    t = safetensors_expect(&st, "unembedding", 2, us);
    used[t - st.tensors] = 1;
    float *tmp = ep_malloc((size_t)(D * Vo) * sizeof(float));
    safetensors_read_f32(&st, t, tmp);
    for (int64_t i = 0; i < D; i++)
      for (int64_t j = 0; j < Vo; j++)
        m->unembed[j * D + i] = tmp[i * Vo + j];
    free(tmp);
  } else {
    memset(m->unembed, 0, (size_t)(c->vocab_out * D) * sizeof(float));
    m->unembed[0] = 1.0f; /* output = residual dimension 0 */
  }

  int unused = 0;
  const char *first = NULL;
  for (int i = 0; i < st.n_tensors; i++)
    if (!used[i] && st.tensors[i].numel > 0) {
      if (!first) first = st.tensors[i].name;
      unused++;
    }
  if (unused)
    ep_fatal(
        "%s: %d tensor(s) not part of the model described by its config, e.g. '%s' (num_layers too small?)",
        weights, unused, first);
  free(used);
  safetensors_close(&st);
}
