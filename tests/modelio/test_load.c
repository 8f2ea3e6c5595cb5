/* test_load.c — loading models in-process: GPT-2 safetensors in every dtype, with and
 * without the "transformer." prefix, sharded, untied; the HDF5 model file round trip;
 * Tracr models. Fixtures are written here at test time (fixture.c).
 * usage: test_load INPUTS_DIR   (INPUTS_DIR/tracr holds the shipped Tracr models) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgeprune/core.h"
#include "edgeprune/model.h"
#include "edgeprune/model_file.h"
#include "edgeprune/model_io.h"
#include "edgeprune/safetensors.h"
#include "fixture.h"
#include "test_util.h"

static const fx_gpt2 G = {2, 2, 16, 50, 12};
static const char *tmp_root; /* this run's temporary folder */

/* Count floats of got[] that are not bit-identical to rounded(want[]). */
static long mismatches(const float *got, const float *want, size_t n, const char *dtype) {
  long bad = 0;
  for (size_t i = 0; i < n; i++) {
    float w = fx_rounded(want[i], dtype);
    if (memcmp(&got[i], &w, sizeof w) != 0) bad++;
  }
  return bad;
}

/* Compare a strided block: rows x cols of got (row stride gs) vs want (row stride ws). */
static long block_mismatches(const float *got, size_t gs, const float *want, size_t ws, size_t rows,
                             size_t cols, const char *dtype) {
  long bad = 0;
  for (size_t r = 0; r < rows; r++)
    bad += mismatches(got + r * gs, want + r * ws, cols, dtype);
  return bad;
}

static const float *T(const fx_set *s, const char *prefix, const char *fmt, int l) {
  char name[128], full[160];
  snprintf(name, sizeof name, fmt, l);
  snprintf(full, sizeof full, "%s%s", prefix, name);
  const fx_tensor *t = fx_find(s, full);
  if (!t) {
    fprintf(stderr, "fixture lacks %s\n", full);
    exit(99);
  }
  return t->data;
}

/* Every weight of m against the fixture, mapping written out independently here. */
static long check_gpt2(const ep_model *m, const fx_set *s, const char *pre, const char *dt) {
  const size_t D = (size_t)G.D, F = 4 * (size_t)G.D, V = (size_t)G.V, C = (size_t)G.C;
  long bad = 0;
  bad += mismatches(m->wte, T(s, pre, "wte.weight", 0), V * D, dt);
  bad += mismatches(m->wpe, T(s, pre, "wpe.weight", 0), C * D, dt);
  for (int l = 0; l < G.L; l++) {
    const ep_layer_weights *w = &m->layers[l];
    const float *qkv = T(s, pre, "h.%d.attn.c_attn.weight", l), *qkvb = T(s, pre, "h.%d.attn.c_attn.bias", l);
    bad += block_mismatches(w->w_q, D, qkv, 3 * D, D, D, dt);
    bad += block_mismatches(w->w_k, D, qkv + D, 3 * D, D, D, dt);
    bad += block_mismatches(w->w_v, D, qkv + 2 * D, 3 * D, D, D, dt);
    bad += mismatches(w->b_q, qkvb, D, dt) + mismatches(w->b_k, qkvb + D, D, dt) +
           mismatches(w->b_v, qkvb + 2 * D, D, dt);
    bad += mismatches(w->w_o, T(s, pre, "h.%d.attn.c_proj.weight", l), D * D, dt);
    bad += mismatches(w->b_o, T(s, pre, "h.%d.attn.c_proj.bias", l), D, dt);
    bad += mismatches(w->ln1_w, T(s, pre, "h.%d.ln_1.weight", l), D, dt);
    bad += mismatches(w->ln1_b, T(s, pre, "h.%d.ln_1.bias", l), D, dt);
    bad += mismatches(w->ln2_w, T(s, pre, "h.%d.ln_2.weight", l), D, dt);
    bad += mismatches(w->ln2_b, T(s, pre, "h.%d.ln_2.bias", l), D, dt);
    bad += mismatches(w->w_fc, T(s, pre, "h.%d.mlp.c_fc.weight", l), D * F, dt);
    bad += mismatches(w->b_fc, T(s, pre, "h.%d.mlp.c_fc.bias", l), F, dt);
    bad += mismatches(w->w_proj, T(s, pre, "h.%d.mlp.c_proj.weight", l), F * D, dt);
    bad += mismatches(w->b_proj, T(s, pre, "h.%d.mlp.c_proj.bias", l), D, dt);
  }
  bad += mismatches(m->lnf_w, T(s, pre, "ln_f.weight", 0), D, dt);
  bad += mismatches(m->lnf_b, T(s, pre, "ln_f.bias", 0), D, dt);
  return bad;
}

static void check_cfg(const ep_model_config *c, int tied) {
  T_CHECK(!strcmp(c->arch, "gpt2") && c->n_layer == 2 && c->n_head == 2 && c->n_kv_head == 2 &&
              c->d_model == 16 && c->d_head == 8 && c->d_mlp == 64 && c->vocab == 50 && c->vocab_out == 50 &&
              c->n_ctx == 12,
          "gpt2 config shape fields");
  T_CHECK(c->norm == EP_NORM_LAYERNORM && c->act == EP_ACT_GELU_TANH && c->pos == EP_POS_LEARNED &&
              c->causal == 1 && c->final_norm == 1 && c->attn_bias == 1 && c->mlp_bias == 1 &&
              c->tied_unembed == tied && c->norm_eps == 1e-5f && c->output == EP_OUTPUT_LOGITS,
          "gpt2 config kinds");
}

/* A folder with config.json and model.safetensors in one dtype; loads and compares. */
static void test_dtype(const char *root, const char *dtype, const char *prefix, int lm_head) {
  char dir[600], p[700];
  snprintf(dir, sizeof dir, "%s/%s_%s", root, dtype, *prefix ? "prefixed" : "plain");
  T_CHECK(fx_mkdir(dir), "mkdir %s", dir);
  fx_set s;
  fx_gpt2_tensors(&s, &G, 1234 + (uint64_t)strlen(dtype), prefix, lm_head, 1);
  snprintf(p, sizeof p, "%s/model.safetensors", dir);
  fx_write_safetensors(p, &s, dtype, NULL, NULL, NULL);
  snprintf(p, sizeof p, "%s/config.json", dir);
  fx_write_gpt2_config(p, &G, NULL, NULL);
  ep_model m;
  model_load(&m, dir);
  check_cfg(&m.cfg, 1);
  long bad = check_gpt2(&m, &s, prefix, dtype);
  T_CHECK(bad == 0, "%s (prefix '%s'): %ld values differ from the fixture rounded to %s", dtype, prefix, bad,
          dtype);
  T_CHECK(m.unembed == m.wte, "%s: tied unembedding is the token embedding", dtype);
  /* The special values really went through rounding (catches a writer that stored F32). */
  if (!strcmp(dtype, "F16"))
    T_CHECK(isinf(m.wte[9]) && m.wte[9] > 0 && m.wte[8] == 2048.0f, "F16: 1e5 -> inf, 2049 -> 2048");
  if (!strcmp(dtype, "BF16")) T_CHECK(m.wte[7] == 1.0f && m.wte[10] == 1.0f, "BF16 ties round to even");
  /* Range reads convert from the right byte offset in every dtype. */
  ep_safetensors st;
  snprintf(p, sizeof p, "%s/model.safetensors", dir);
  safetensors_open(&st, p);
  char wte[64];
  snprintf(wte, sizeof wte, "%swte.weight", prefix);
  float part[500];
  safetensors_read_f32_range(&st, safetensors_find(&st, wte), 3, 500, part);
  T_CHECK(!memcmp(part, m.wte + 3, sizeof part), "%s: range read equals the loaded slice", dtype);
  safetensors_close(&st);
  model_free(&m);
  fx_set_free(&s);
}

/* Shards: tensors spread over three files by index, plus the index JSON. */
static int keep_shard(const char *name, void *arg) {
  int shard = *(int *)arg;
  if (strstr(name, "h.0.")) return shard == 0;
  if (strstr(name, "h.1.")) return shard == 1;
  return shard == 2;
}

static void test_sharded(const char *root) {
  char dir[600], p[700];
  snprintf(dir, sizeof dir, "%s/sharded", root);
  T_CHECK(fx_mkdir(dir), "mkdir %s", dir);
  fx_set s;
  fx_gpt2_tensors(&s, &G, 77, "transformer.", 0, 0);
  char index[16384];
  size_t k = (size_t)snprintf(index, sizeof index, "{\"metadata\": {\"total_size\": 0}, \"weight_map\": {");
  for (int shard = 0; shard < 3; shard++) {
    snprintf(p, sizeof p, "%s/model-%05d-of-00003.safetensors", dir, shard + 1);
    fx_write_safetensors(p, &s, "F32", NULL, keep_shard, &shard);
    for (int i = 0; i < s.n; i++)
      if (keep_shard(s.t[i].name, &shard))
        k += (size_t)snprintf(index + k, sizeof index - k, "%s\"%s\": \"model-%05d-of-00003.safetensors\"",
                              k > 50 ? ", " : "", s.t[i].name, shard + 1);
  }
  snprintf(index + k, sizeof index - k, "}}\n");
  snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
  fx_write_text(p, index);
  snprintf(p, sizeof p, "%s/config.json", dir);
  fx_write_gpt2_config(p, &G, NULL, NULL);
  ep_model m;
  model_load(&m, dir);
  check_cfg(&m.cfg, 1);
  T_CHECK(check_gpt2(&m, &s, "transformer.", "F32") == 0, "sharded checkpoint loads every tensor");
  ep_safetensors st;
  snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
  safetensors_open(&st, p);
  T_CHECK(st.n_files == 3, "three shards opened (%d)", st.n_files);
  const ep_st_tensor *t = safetensors_find(&st, "transformer.h.1.mlp.c_fc.weight");
  T_CHECK(t && strstr(safetensors_file_of(&st, t), "model-00002-of-00003"), "h.1 tensors live in shard 2");
  /* A range read equals the same slice of a whole read (F32 shard here). */
  float whole[16 * 64], part[100];
  safetensors_read_f32(&st, t, whole);
  safetensors_read_f32_range(&st, t, 357, 100, part);
  T_CHECK(!memcmp(part, whole + 357, sizeof part), "range read matches the whole read");
  safetensors_close(&st);
  model_free(&m);
  fx_set_free(&s);
}

/* tie_word_embeddings false: lm_head.weight becomes the unembedding. */
static void test_untied(const char *root, ep_model *keep) {
  char dir[600], p[700];
  snprintf(dir, sizeof dir, "%s/untied", root);
  T_CHECK(fx_mkdir(dir), "mkdir %s", dir);
  fx_set s;
  fx_gpt2_tensors(&s, &G, 5, "", 1, 0);
  snprintf(p, sizeof p, "%s/model.safetensors", dir);
  fx_write_safetensors(p, &s, "F32", NULL, NULL, NULL);
  snprintf(p, sizeof p, "%s/config.json", dir);
  fx_write_gpt2_config(p, &G, "\"tie_word_embeddings\": false", NULL);
  /* Load through the safetensors path itself (config.json is its sibling). */
  snprintf(p, sizeof p, "%s/model.safetensors", dir);
  model_load(keep, p);
  check_cfg(&keep->cfg, 0);
  T_CHECK(check_gpt2(keep, &s, "", "F32") == 0, "untied: body weights");
  T_CHECK(keep->unembed != keep->wte && mismatches(keep->unembed, fx_find(&s, "lm_head.weight")->data,
                                                   (size_t)G.V * (size_t)G.D, "F32") == 0,
          "untied: unembed is lm_head.weight");
  fx_set_free(&s);
}

static int configs_equal(const ep_model_config *a, const ep_model_config *b) {
  return !memcmp(a, b, sizeof *a);
}

/* Model file round trip: bit-identical config and weights. */
static void test_roundtrip(const char *root, const ep_model *m) {
  char p[700];
  snprintf(p, sizeof p, "%s/roundtrip.h5", root);
  model_file_write(m, NULL, "test", p);
  T_CHECK(fx_count_matching(root, ".tmp.") == 0, "no temporary left after writing");
  ep_model r;
  model_load(&r, p);
  T_CHECK(configs_equal(&m->cfg, &r.cfg), "round trip: config identical");
  T_CHECK(r.n_floats == m->n_floats && !memcmp(r.mem, m->mem, m->n_floats * sizeof(float)),
          "round trip: %zu weights bit-identical", m->n_floats);
  ep_model_config c;
  model_load_config(&c, p);
  T_CHECK(configs_equal(&c, &m->cfg), "model_load_config on the model file");
  ep_model_tokens tok;
  model_load_tokens(&tok, p);
  T_CHECK(tok.n_in == 0 && tok.n_out == 0, "no token names in a GPT-2 model file");
  model_tokens_free(&tok);
  model_free(&r);
}

static void test_param_count(void) {
  ep_model_config c;
  model_config_defaults(&c);
  const int64_t V = 50257, D = 768, C = 1024, L = 12;
  int64_t want = V * D + C * D +
                 L * (4 * D + (D * 3 * D + 3 * D) + (D * D + D) + (D * 4 * D + 4 * D) + (4 * D * D + D)) +
                 2 * D;
  T_CHECK(model_param_count(&c) == want && want == 124439808, "GPT-2 small parameters %lld",
          (long long)model_param_count(&c));
  char buf[1024];
  model_describe(&c, buf, sizeof buf);
  T_CHECK(strstr(buf, "124,439,808 parameters") && strstr(buf, "12 layers") && strstr(buf, "50257"),
          "summary: %s", buf);
}

static void test_tracr(const char *inputs) {
  char p[700];
  /* reverse: 4 layers, logits head over "1" "2" "3". */
  snprintf(p, sizeof p, "%s/tracr/reverse.safetensors", inputs);
  ep_model m;
  model_load(&m, p);
  const ep_model_config *c = &m.cfg;
  T_CHECK(!strcmp(c->arch, "tracr") && c->n_layer == 4 && c->n_head == 1 && c->d_head == 12 &&
              c->d_model == 41 && c->d_mlp == 30 && c->vocab == 5 && c->vocab_out == 3 && c->n_ctx == 6,
          "reverse shapes");
  T_CHECK(c->norm == EP_NORM_NONE && c->final_norm == 0 && c->act == EP_ACT_RELU &&
              c->pos == EP_POS_LEARNED && c->causal == 0 && c->tied_unembed == 0 &&
              c->output == EP_OUTPUT_LOGITS && c->bos_token == 3 && c->pad_token == 4,
          "reverse kinds");
  int all = 1;
  for (int l = 0; l < 4; l++)
    all &= c->has_attn[l] && c->has_mlp[l];
  T_CHECK(all, "reverse: every layer has attention and an MLP");
  ep_safetensors st;
  safetensors_open(&st, p);
  float un[41 * 3], q[41 * 12];
  safetensors_read_f32(&st, safetensors_find(&st, "unembedding"), un);
  safetensors_read_f32(&st, safetensors_find(&st, "transformer/layer_2/attn/query_w"), q);
  int ok = 1;
  for (int i = 0; i < 41; i++)
    for (int j = 0; j < 3; j++)
      ok &= m.unembed[j * 41 + i] == un[i * 3 + j];
  T_CHECK(ok, "reverse: unembed is the transposed unembedding");
  T_CHECK(!memcmp(m.layers[2].w_q, q, sizeof q), "reverse: layer 2 query_w as stored");
  safetensors_close(&st);
  ep_model_tokens tok;
  model_load_tokens(&tok, p);
  T_CHECK(tok.n_in == 5 && !strcmp(tok.in[0], "1") && !strcmp(tok.in[3], "BOS") &&
              !strcmp(tok.in[4], "compiler_pad"),
          "reverse input names");
  T_CHECK(tok.n_out == 3 && !strcmp(tok.out[0], "1") && !strcmp(tok.out[1], "2") && !strcmp(tok.out[2], "3"),
          "reverse output names");
  /* Through the model file: weights and names survive. */
  char h5[700];
  snprintf(h5, sizeof h5, "%s/reverse.h5", tmp_root);
  model_file_write(&m, &tok, p, h5);
  ep_model r;
  model_load(&r, h5);
  T_CHECK(configs_equal(&r.cfg, &m.cfg) && !memcmp(r.mem, m.mem, m.n_floats * sizeof(float)),
          "reverse round trip");
  ep_model_tokens tok2;
  model_load_tokens(&tok2, h5);
  int same = tok2.n_in == tok.n_in && tok2.n_out == tok.n_out;
  for (int i = 0; same && i < tok.n_in; i++)
    same = !strcmp(tok.in[i], tok2.in[i]);
  for (int i = 0; same && i < tok.n_out; i++)
    same = !strcmp(tok.out[i], tok2.out[i]);
  T_CHECK(same, "reverse token names survive the model file");
  model_tokens_free(&tok2);
  model_tokens_free(&tok);
  model_free(&r);
  model_free(&m);

  /* xproportion: 6 ids (4 = pad), numeric head reading residual dimension 0. */
  snprintf(p, sizeof p, "%s/tracr/xproportion.config.json", inputs);
  model_load(&m, p);
  c = &m.cfg;
  T_CHECK(c->n_layer == 2 && c->d_model == 14 && c->d_head == 7 && c->d_mlp == 1 && c->vocab == 6 &&
              c->vocab_out == 1 && c->output == EP_OUTPUT_NUMERIC && c->bos_token == 0 && c->pad_token == 4,
          "xproportion shapes");
  float onehot[14] = {1};
  T_CHECK(!memcmp(m.unembed, onehot, sizeof onehot), "xproportion: unembed is one-hot on dimension 0");
  model_load_tokens(&tok, p);
  T_CHECK(tok.n_in == 6 && !strcmp(tok.in[5], "x") && !strcmp(tok.in[4], "compiler_pad") && tok.n_out == 1,
          "xproportion names");
  model_tokens_free(&tok);
  model_free(&m);
}

/* The synthetic Tracr model: gaps in the ids, a narrow MLP padded with zeros, a layer
 * without an MLP, two heads, causal. */
static void test_tracr_synthetic(void) {
  fx_set s;
  fx_write_tracr(&s, tmp_root, "synth", 0);
  char p[700];
  snprintf(p, sizeof p, "%s/synth.safetensors", tmp_root);
  ep_model m;
  model_load(&m, p);
  const ep_model_config *c = &m.cfg;
  T_CHECK(c->vocab == 4 && c->d_model == 6 && c->n_head == 2 && c->d_head == 2 && c->d_mlp == 4 &&
              c->n_ctx == 4 && c->causal == 1 && c->bos_token == 0 && c->pad_token == 3 &&
              c->output == EP_OUTPUT_NUMERIC,
          "synthetic Tracr config");
  T_CHECK(c->has_attn[0] && c->has_attn[1] && c->has_mlp[0] && !c->has_mlp[1], "layer 1 has no MLP");
  const float *w1 = fx_find(&s, "transformer/layer_0/mlp/linear_1_w")->data;
  const float *b1 = fx_find(&s, "transformer/layer_0/mlp/linear_1_b")->data;
  const float *w2 = fx_find(&s, "transformer/layer_0/mlp/linear_2_w")->data;
  int ok = m.layers[0].b_fc[3] == 0;
  for (int r = 0; r < 6; r++)
    for (int j = 0; j < 4; j++) {
      ok &= m.layers[0].w_fc[r * 4 + j] == (j < 3 ? w1[r * 3 + j] : 0.0f);
      ok &= m.layers[0].w_proj[j * 6 + r] == (j < 3 ? w2[j * 6 + r] : 0.0f);
    }
  for (int j = 0; j < 3; j++)
    ok &= m.layers[0].b_fc[j] == b1[j];
  T_CHECK(ok, "narrow MLP zero-padded to mlp_hidden_size");
  T_CHECK(
      !memcmp(m.layers[1].w_v, fx_find(&s, "transformer/layer_1/attn/value_w")->data, 6 * 4 * sizeof(float)),
      "layer 1 value_w");
  ep_model_tokens tok;
  model_load_tokens(&tok, p);
  T_CHECK(tok.n_in == 4 && !strcmp(tok.in[1], "a") && !strcmp(tok.in[2], "") && !strcmp(tok.in[3], "pad"),
          "unused id 2 has an empty name");
  model_tokens_free(&tok);
  model_free(&m);
  fx_set_free(&s);
}

/* Llama: nn.Linear weights transposed into x @ W, grouped-query heads, RMSNorm gains
 * only, untied head, rope_theta from rope_parameters (newer transformers). */
static void test_llama(void) {
  char dir[700];
  snprintf(dir, sizeof dir, "%s/llama", tmp_root);
  T_CHECK(fx_mkdir(dir), "mkdir %s", dir);
  const fx_llama g = {2, 4, 2, 16, 24, 40};
  fx_set s;
  fx_write_llama(&s, dir, &g, "\"rope_parameters\": {\"rope_theta\": 500000.0, \"rope_type\": \"default\"}",
                 NULL);
  ep_model m;
  model_load(&m, dir);
  const ep_model_config *c = &m.cfg;
  T_CHECK(!strcmp(c->arch, "llama") && c->n_layer == 2 && c->n_head == 4 && c->n_kv_head == 2 &&
              c->d_head == 4 && c->d_model == 16 && c->d_mlp == 24 && c->vocab == 40 && c->vocab_out == 40 &&
              c->n_ctx == 32,
          "llama config sizes");
  T_CHECK(c->norm == EP_NORM_RMSNORM && c->norm_eps == 1e-6f && c->act == EP_ACT_SILU_GLU &&
              c->pos == EP_POS_ROPE && c->rope_theta == 500000.0f && !c->tied_unembed && !c->attn_bias &&
              !c->mlp_bias && c->final_norm && c->bos_token == 1 && m.wpe == NULL &&
              m.layers[0].ln1_b == NULL,
          "llama config kinds");
  /* got is [in, out] (x @ W); the fixture holds nn.Linear [out, in]. */
#define TRANSPOSED(got, name, out, in)                                                                       \
  do {                                                                                                       \
    const float *w_ = fx_find(&s, name)->data;                                                               \
    int ok_ = 1;                                                                                             \
    for (int o_ = 0; o_ < (out); o_++)                                                                       \
      for (int i_ = 0; i_ < (in); i_++)                                                                      \
        ok_ &= (got)[i_ * (out) + o_] == w_[o_ * (in) + i_];                                                 \
    T_CHECK(ok_, "llama %s transposed into x @ W", name);                                                    \
  } while (0)
  char n[128];
  for (int l = 0; l < 2; l++) {
    const ep_layer_weights *w = &m.layers[l];
    snprintf(n, sizeof n, "model.layers.%d.self_attn.q_proj.weight", l);
    TRANSPOSED(w->w_q, n, 16, 16);
    snprintf(n, sizeof n, "model.layers.%d.self_attn.k_proj.weight", l);
    TRANSPOSED(w->w_k, n, 8, 16);
    snprintf(n, sizeof n, "model.layers.%d.self_attn.v_proj.weight", l);
    TRANSPOSED(w->w_v, n, 8, 16);
    snprintf(n, sizeof n, "model.layers.%d.self_attn.o_proj.weight", l);
    TRANSPOSED(w->w_o, n, 16, 16);
    snprintf(n, sizeof n, "model.layers.%d.mlp.gate_proj.weight", l);
    TRANSPOSED(w->w_gate, n, 24, 16);
    snprintf(n, sizeof n, "model.layers.%d.mlp.up_proj.weight", l);
    TRANSPOSED(w->w_fc, n, 24, 16);
    snprintf(n, sizeof n, "model.layers.%d.mlp.down_proj.weight", l);
    TRANSPOSED(w->w_proj, n, 16, 24);
    snprintf(n, sizeof n, "model.layers.%d.post_attention_layernorm.weight", l);
    T_CHECK(!memcmp(w->ln2_w, fx_find(&s, n)->data, 16 * sizeof(float)), "llama %s", n);
  }
#undef TRANSPOSED
  T_CHECK(!memcmp(m.wte, fx_find(&s, "model.embed_tokens.weight")->data, 40 * 16 * sizeof(float)),
          "llama embed");
  T_CHECK(!memcmp(m.unembed, fx_find(&s, "lm_head.weight")->data, 40 * 16 * sizeof(float)), "llama lm_head");
  T_CHECK(!memcmp(m.lnf_w, fx_find(&s, "model.norm.weight")->data, 16 * sizeof(float)), "llama final norm");
  /* and through the model file */
  char h5[800];
  snprintf(h5, sizeof h5, "%s/llama.h5", tmp_root);
  model_file_write(&m, NULL, dir, h5);
  ep_model r;
  model_load(&r, h5);
  T_CHECK(configs_equal(&r.cfg, &m.cfg) && r.n_floats == m.n_floats &&
              !memcmp(r.mem, m.mem, m.n_floats * sizeof(float)),
          "llama model file round trip");
  model_free(&r);
  model_free(&m);
  fx_set_free(&s);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: test_load INPUTS_DIR\n");
    return 2;
  }
  char *root = fx_tmpdir();
  tmp_root = root;
  test_param_count();
  test_dtype(root, "F32", "", 0);
  test_dtype(root, "F16", "transformer.", 1);
  test_dtype(root, "BF16", "", 1);
  test_dtype(root, "F64", "transformer.", 0);
  test_sharded(root);
  ep_model m;
  test_untied(root, &m);
  test_roundtrip(root, &m);
  model_free(&m);
  test_tracr(argv[1]);
  test_tracr_synthetic();
  test_llama();
  fx_rmdir(root);
  free(root);
  return t_done();
}
