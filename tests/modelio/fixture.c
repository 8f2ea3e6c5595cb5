/* fixture.c — see fixture.h. Deliberately independent of src/io: the writer builds
 * the header text by hand and the rounding uses frexp/ldexp, not bit tricks. */
#define _POSIX_C_SOURCE 200809L
#include "fixture.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void die(const char *what, const char *arg) {
  fprintf(stderr, "fixture: %s %s\n", what, arg ? arg : "");
  exit(99);
}

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static float uniform(uint64_t *s) {
  return (float)((double)(splitmix(s) >> 11) / 9007199254740992.0 - 0.5);
}

void fx_add(fx_set *s, const char *name, int64_t a, int64_t b, uint64_t *rng, float base, float scale) {
  if (s->n >= FX_MAX_TENSORS) die("too many tensors", name);
  fx_tensor *t = &s->t[s->n++];
  snprintf(t->name, sizeof t->name, "%s", name);
  t->ndim = b ? 2 : 1;
  t->shape[0] = a;
  t->shape[1] = b;
  size_t n = (size_t)a * (size_t)(b ? b : 1);
  t->data = malloc(n * sizeof(float));
  if (!t->data) die("out of memory", name);
  for (size_t i = 0; i < n; i++)
    t->data[i] = base + scale * uniform(rng);
}

void fx_gpt2_tensors(fx_set *s, const fx_gpt2 *g, uint64_t seed, const char *prefix, int lm_head,
                     int tied_copy) {
  memset(s, 0, sizeof *s);
  uint64_t rng = seed;
  const int64_t D = g->D, F = 4 * (int64_t)g->D;
  char n[128];
#define NM(...) (snprintf(n, sizeof n, __VA_ARGS__), n)
  fx_add(s, NM("%swte.weight", prefix), g->V, D, &rng, 0, 0.2f);
  /* Values that exercise float16 / bfloat16 rounding: ties, subnormals, overflow. */
  const float special[] = {0.0f,        -0.0f,       65504.0f,      6.103515625e-05f, 5.9604645e-08f,
                           1e-6f,       -3.1415927f, 1.0009765625f, 2049.0f,          1e5f,
                           1.00390625f, -1.5e-40f,   3.3895314e38f};
  memcpy(s->t[0].data, special, sizeof special);
  fx_add(s, NM("%swpe.weight", prefix), g->C, D, &rng, 0, 0.1f);
  for (int l = 0; l < g->L; l++) {
    fx_add(s, NM("%sh.%d.ln_1.weight", prefix, l), D, 0, &rng, 1, 0.1f);
    fx_add(s, NM("%sh.%d.ln_1.bias", prefix, l), D, 0, &rng, 0, 0.1f);
    fx_add(s, NM("%sh.%d.attn.c_attn.weight", prefix, l), D, 3 * D, &rng, 0, 0.2f);
    fx_add(s, NM("%sh.%d.attn.c_attn.bias", prefix, l), 3 * D, 0, &rng, 0, 0.1f);
    fx_add(s, NM("%sh.%d.attn.c_proj.weight", prefix, l), D, D, &rng, 0, 0.2f);
    fx_add(s, NM("%sh.%d.attn.c_proj.bias", prefix, l), D, 0, &rng, 0, 0.1f);
    fx_add(s, NM("%sh.%d.ln_2.weight", prefix, l), D, 0, &rng, 1, 0.1f);
    fx_add(s, NM("%sh.%d.ln_2.bias", prefix, l), D, 0, &rng, 0, 0.1f);
    fx_add(s, NM("%sh.%d.mlp.c_fc.weight", prefix, l), D, F, &rng, 0, 0.2f);
    fx_add(s, NM("%sh.%d.mlp.c_fc.bias", prefix, l), F, 0, &rng, 0, 0.1f);
    fx_add(s, NM("%sh.%d.mlp.c_proj.weight", prefix, l), F, D, &rng, 0, 0.2f);
    fx_add(s, NM("%sh.%d.mlp.c_proj.bias", prefix, l), D, 0, &rng, 0, 0.1f);
    /* The causal-mask buffer old checkpoints carry; the loader must skip it. */
    fx_add(s, NM("%sh.%d.attn.bias", prefix, l), g->C, g->C, &rng, 1, 0);
  }
  fx_add(s, NM("%sln_f.weight", prefix), D, 0, &rng, 1, 0.1f);
  fx_add(s, NM("%sln_f.bias", prefix), D, 0, &rng, 0, 0.1f);
  if (lm_head) {
    fx_add(s, "lm_head.weight", g->V, D, &rng, 0, 0.2f);
    if (tied_copy) memcpy(s->t[s->n - 1].data, s->t[0].data, (size_t)g->V * (size_t)D * sizeof(float));
  }
#undef NM
}

void fx_set_free(fx_set *s) {
  for (int i = 0; i < s->n; i++)
    free(s->t[i].data);
  memset(s, 0, sizeof *s);
}

const fx_tensor *fx_find(const fx_set *s, const char *name) {
  for (int i = 0; i < s->n; i++)
    if (!strcmp(s->t[i].name, name)) return &s->t[i];
  return NULL;
}

/* ---- rounding ---------------------------------------------------------------- */

uint16_t fx_f32_to_f16(float f) {
  uint16_t sign = signbit(f) ? 0x8000 : 0;
  double a = fabs((double)f);
  if (isnan(f)) return sign | 0x7e00;
  if (a >= 65520.0) return sign | 0x7c00; /* 65520 is the tie between 65504 and 2^16 */
  if (a < ldexp(1, -14))
    return sign | (uint16_t)nearbyint(a / ldexp(1, -24)); /* subnormal (1024 = min normal) */
  int e;
  double m = frexp(a, &e); /* a = m 2^e, m in [0.5, 1) */
  double mant = nearbyint((2 * m - 1) * 1024);
  int E = e - 1 + 15;
  if (mant == 1024) {
    mant = 0;
    E++;
  }
  if (E >= 31) return sign | 0x7c00;
  return (uint16_t)(sign | (E << 10) | (int)mant);
}

float fx_f16_to_f32(uint16_t h) {
  int E = (h >> 10) & 31, M = h & 1023;
  double v = E == 0 ? ldexp(M, -24) : E == 31 ? (M ? NAN : INFINITY) : ldexp(1024 + M, E - 25);
  return (float)((h & 0x8000) ? -v : v);
}

uint16_t fx_f32_to_bf16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  if (isnan(f)) return (uint16_t)((x >> 16) | 0x40);
  x += 0x7fffu + ((x >> 16) & 1u); /* round to nearest even on the low 16 bits */
  return (uint16_t)(x >> 16);
}

float fx_bf16_to_f32(uint16_t b) {
  int E = (b >> 7) & 255, M = b & 127;
  double v = E == 0 ? ldexp(M, -133) : E == 255 ? (M ? NAN : INFINITY) : ldexp(128 + M, E - 134);
  return (float)((b & 0x8000) ? -v : v);
}

float fx_rounded(float v, const char *dtype) {
  if (!strcmp(dtype, "F16")) return fx_f16_to_f32(fx_f32_to_f16(v));
  if (!strcmp(dtype, "BF16")) return fx_bf16_to_f32(fx_f32_to_bf16(v));
  return v; /* F32, and F64 holds every float32 exactly */
}

/* ---- safetensors writer ------------------------------------------------------- */

static int elem_size(const char *dtype) {
  if (!strcmp(dtype, "F32")) return 4;
  if (!strcmp(dtype, "F64")) return 8;
  return 2;
}

static void put(unsigned char *dst, const char *dtype, float v) {
  if (!strcmp(dtype, "F32")) {
    memcpy(dst, &v, 4);
  } else if (!strcmp(dtype, "F64")) {
    double d = v;
    memcpy(dst, &d, 8);
  } else {
    uint16_t h = !strcmp(dtype, "F16") ? fx_f32_to_f16(v) : fx_f32_to_bf16(v);
    dst[0] = (unsigned char)(h & 0xff); /* little-endian by construction */
    dst[1] = (unsigned char)(h >> 8);
  }
}

static int is(const char *a, const char *b) {
  return a && b && !strcmp(a, b);
}

void fx_write_safetensors(const char *path, const fx_set *s, const char *dtype, const fx_damage *dmg,
                          int (*keep)(const char *name, void *arg), void *arg) {
  static const fx_damage none;
  if (!dmg) dmg = &none;
  const int es = elem_size(dtype);
  size_t hcap = 1 << 16, hlen = 0, dcap = 1 << 16, dlen = 0;
  char *hdr = malloc(hcap);
  unsigned char *data = malloc(dcap);
  if (!hdr || !data) die("out of memory", path);
  hlen += (size_t)snprintf(hdr, hcap, "{\"__metadata__\":{\"format\":\"pt\"}");
  for (int i = 0; i < s->n; i++) {
    const fx_tensor *t = &s->t[i];
    if (is(dmg->skip, t->name) || (keep && !keep(t->name, arg))) continue;
    int64_t shape[2] = {t->shape[0], t->shape[1]};
    int wider = is(dmg->shape_of, t->name);
    if (wider) shape[t->ndim - 1]++;
    size_t numel = (size_t)shape[0] * (size_t)(t->ndim == 2 ? shape[1] : 1);
    size_t extra = is(dmg->span_of, t->name) ? 1 : 0;
    size_t bytes = (numel + extra) * (size_t)es;
    while (dlen + bytes > dcap)
      data = realloc(data, dcap *= 2);
    if (!data) die("out of memory", path);
    size_t cols = (size_t)(t->ndim == 2 ? t->shape[1] : t->shape[0]);
    for (size_t j = 0; j < numel + extra; j++) {
      float v = 0;
      if (j < numel) {
        size_t r = t->ndim == 2 ? j / (size_t)shape[1] : 0, c = t->ndim == 2 ? j % (size_t)shape[1] : j;
        if (c < cols) v = t->data[r * cols + c];
      }
      put(data + dlen + j * (size_t)es, dtype, v);
    }
    unsigned long long b = dlen, e = dlen + bytes;
    if (is(dmg->oob_of, t->name)) e = 1ull << 40;
    const char *dt = is(dmg->dtype_of, t->name) ? dmg->dtype : dtype;
    char ent[512];
    if (t->ndim == 2)
      snprintf(ent, sizeof ent,
               ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld,%lld],\"data_offsets\":[%llu,%llu]}", t->name, dt,
               (long long)shape[0], (long long)shape[1], b, e);
    else
      snprintf(ent, sizeof ent, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld],\"data_offsets\":[%llu,%llu]}",
               t->name, dt, (long long)shape[0], b, e);
    size_t k = strlen(ent);
    while (hlen + k + 16 > hcap)
      hdr = realloc(hdr, hcap *= 2);
    if (!hdr) die("out of memory", path);
    memcpy(hdr + hlen, ent, k);
    hlen += k;
    dlen += bytes;
  }
  hdr[hlen++] = '}';
  while (hlen % 8)
    hdr[hlen++] = ' '; /* the format pads the header to 8 bytes */
  uint64_t L = dmg->header_len ? dmg->header_len : hlen;
  unsigned char lenb[8];
  for (int i = 0; i < 8; i++)
    lenb[i] = (unsigned char)(L >> (8 * i));
  FILE *f = fopen(path, "wb");
  if (!f) die("cannot write", path);
  if (fwrite(lenb, 1, 8, f) != 8 || fwrite(hdr, 1, hlen, f) != hlen || fwrite(data, 1, dlen, f) != dlen)
    die("short write", path);
  fclose(f);
  long total = (long)(8 + hlen + dlen);
  long cut = dmg->truncate_to > 0   ? dmg->truncate_to
             : dmg->truncate_to < 0 ? total + dmg->truncate_to
                                    : total;
  if (cut != total && truncate(path, cut) != 0) die("cannot truncate", path);
  free(hdr);
  free(data);
}

void fx_write_tracr(fx_set *s, const char *dir, const char *name, int variant) {
  memset(s, 0, sizeof *s);
  uint64_t rng = 2024;
  const int D = 6, Q = 4;
  fx_add(s, "token_embed_embeddings", 4, D, &rng, 0, 1);
  fx_add(s, "pos_embed_embeddings", 4, D, &rng, 0, 1);
  char n[128];
  for (int l = 0; l < 2; l++) {
    const char *w[4] = {"query", "key", "value", "linear"};
    for (int k = 0; k < 4; k++) {
      int wide = variant == 1 && k == 2 ? 2 : 0;
      snprintf(n, sizeof n, "transformer/layer_%d/attn/%s_w", l, w[k]);
      if (k < 3)
        fx_add(s, n, D, Q + wide, &rng, 0, 1);
      else
        fx_add(s, n, Q, D, &rng, 0, 1);
      snprintf(n, sizeof n, "transformer/layer_%d/attn/%s_b", l, w[k]);
      fx_add(s, n, k < 3 ? Q + wide : D, 0, &rng, 0, 1);
    }
  }
  fx_add(s, "transformer/layer_0/mlp/linear_1_w", D, 3, &rng, 0, 1);
  fx_add(s, "transformer/layer_0/mlp/linear_1_b", 3, 0, &rng, 0, 1);
  fx_add(s, "transformer/layer_0/mlp/linear_2_w", 3, D, &rng, 0, 1);
  fx_add(s, "transformer/layer_0/mlp/linear_2_b", D, 0, &rng, 0, 1);
  if (variant == 2) fx_add(s, "transformer/layer_2/mlp/linear_2_b", D, 0, &rng, 0, 1);
  char p[1024];
  snprintf(p, sizeof p, "%s/%s.safetensors", dir, name);
  fx_write_safetensors(p, s, "F32", NULL, NULL, NULL);
  snprintf(p, sizeof p, "%s/%s.config.json", dir, name);
  fx_write_text(p, "{\"num_heads\": 2, \"num_layers\": 2, \"mlp_hidden_size\": 4, \"dropout_rate\": 0.0,\n"
                   " \"layer_norm\": false, \"causal\": true, \"max_seq_len\": 3, \"bos\": \"BOS\",\n"
                   " \"pad\": \"pad\", \"vocab\": {\"BOS\": 0, \"a\": 1, \"pad\": 3}}\n");
}

void fx_write_llama(fx_set *s, const char *dir, const fx_llama *g, const char *extra, const char *drop) {
  memset(s, 0, sizeof *s);
  uint64_t rng = 777;
  const int dh = g->D / g->H;
  char n[128];
  fx_add(s, "model.embed_tokens.weight", g->V, g->D, &rng, 0, 1);
  for (int l = 0; l < g->L; l++) {
#define NM(x) (snprintf(n, sizeof n, "model.layers.%d." x, l), n)
    fx_add(s, NM("input_layernorm.weight"), g->D, 0, &rng, 1, 0.2f);
    fx_add(s, NM("self_attn.q_proj.weight"), g->H * dh, g->D, &rng, 0, 1); /* nn.Linear [out, in] */
    fx_add(s, NM("self_attn.k_proj.weight"), g->Hkv * dh, g->D, &rng, 0, 1);
    fx_add(s, NM("self_attn.v_proj.weight"), g->Hkv * dh, g->D, &rng, 0, 1);
    fx_add(s, NM("self_attn.o_proj.weight"), g->D, g->H * dh, &rng, 0, 1);
    fx_add(s, NM("post_attention_layernorm.weight"), g->D, 0, &rng, 1, 0.2f);
    fx_add(s, NM("mlp.gate_proj.weight"), g->F, g->D, &rng, 0, 1);
    fx_add(s, NM("mlp.up_proj.weight"), g->F, g->D, &rng, 0, 1);
    fx_add(s, NM("mlp.down_proj.weight"), g->D, g->F, &rng, 0, 1);
#undef NM
  }
  fx_add(s, "model.norm.weight", g->D, 0, &rng, 1, 0.2f);
  fx_add(s, "lm_head.weight", g->V, g->D, &rng, 0, 1);
  char p[1024], text[4096], keys[13][96];
  snprintf(p, sizeof p, "%s/model.safetensors", dir);
  fx_write_safetensors(p, s, "F32", NULL, NULL, NULL);
  const char *names[13] = {
      "model_type",          "hidden_size",       "intermediate_size",   "num_attention_heads",
      "num_key_value_heads", "num_hidden_layers", "vocab_size",          "max_position_embeddings",
      "rms_norm_eps",        "hidden_act",        "tie_word_embeddings", "attention_bias",
      "bos_token_id"};
  snprintf(keys[0], 96, "\"model_type\": \"llama\"");
  snprintf(keys[1], 96, "\"hidden_size\": %d", g->D);
  snprintf(keys[2], 96, "\"intermediate_size\": %d", g->F);
  snprintf(keys[3], 96, "\"num_attention_heads\": %d", g->H);
  snprintf(keys[4], 96, "\"num_key_value_heads\": %d", g->Hkv);
  snprintf(keys[5], 96, "\"num_hidden_layers\": %d", g->L);
  snprintf(keys[6], 96, "\"vocab_size\": %d", g->V);
  snprintf(keys[7], 96, "\"max_position_embeddings\": 32");
  snprintf(keys[8], 96, "\"rms_norm_eps\": 1e-06");
  snprintf(keys[9], 96, "\"hidden_act\": \"silu\"");
  snprintf(keys[10], 96, "\"tie_word_embeddings\": false");
  snprintf(keys[11], 96, "\"attention_bias\": false");
  snprintf(keys[12], 96, "\"bos_token_id\": 1");
  size_t k = (size_t)snprintf(text, sizeof text, "{\n  \"architectures\": [\"LlamaForCausalLM\"]");
  for (int i = 0; i < 13; i++)
    if (!is(drop, names[i])) k += (size_t)snprintf(text + k, sizeof text - k, ",\n  %s", keys[i]);
  if (extra && *extra) k += (size_t)snprintf(text + k, sizeof text - k, ",\n  %s", extra);
  snprintf(text + k, sizeof text - k, "\n}\n");
  snprintf(p, sizeof p, "%s/config.json", dir);
  fx_write_text(p, text);
}

void fx_write_gpt2_config(const char *path, const fx_gpt2 *g, const char *extra, const char *drop) {
  char keys[8][96];
  const char *names[8] = {"model_type", "n_layer",     "n_head",  "n_embd",
                          "vocab_size", "n_positions", "n_inner", "activation_function"};
  snprintf(keys[0], 96, "\"model_type\": \"gpt2\"");
  snprintf(keys[1], 96, "\"n_layer\": %d", g->L);
  snprintf(keys[2], 96, "\"n_head\": %d", g->H);
  snprintf(keys[3], 96, "\"n_embd\": %d", g->D);
  snprintf(keys[4], 96, "\"vocab_size\": %d", g->V);
  snprintf(keys[5], 96, "\"n_positions\": %d", g->C);
  snprintf(keys[6], 96, "\"n_inner\": null");
  snprintf(keys[7], 96, "\"activation_function\": \"gelu_new\"");
  char text[4096];
  size_t k = (size_t)snprintf(text, sizeof text,
                              "{\n  \"architectures\": [\"GPT2LMHeadModel\"],\n"
                              "  \"layer_norm_epsilon\": 1e-05");
  for (int i = 0; i < 8; i++)
    if (!is(drop, names[i])) k += (size_t)snprintf(text + k, sizeof text - k, ",\n  %s", keys[i]);
  if (extra && *extra) k += (size_t)snprintf(text + k, sizeof text - k, ",\n  %s", extra);
  snprintf(text + k, sizeof text - k, "\n}\n");
  fx_write_text(path, text);
}

/* ---- files -------------------------------------------------------------------- */

char *fx_tmpdir(void) {
  const char *base = getenv("TMPDIR");
  char tmpl[512];
  snprintf(tmpl, sizeof tmpl, "%s/ep_modelio_XXXXXX", base && *base ? base : "/tmp");
  if (!mkdtemp(tmpl)) die("cannot create a temporary folder under", tmpl);
  char *d = malloc(strlen(tmpl) + 1);
  strcpy(d, tmpl);
  return d;
}

void fx_rmdir(const char *dir) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "fixture: could not remove %s\n", dir);
}

int fx_mkdir(const char *path) {
  return mkdir(path, 0755) == 0;
}

void fx_write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f || fputs(text, f) < 0) die("cannot write", path);
  fclose(f);
}

int fx_exists(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0;
}

int fx_count_matching(const char *dir, const char *part) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (strstr(e->d_name, part)) n++;
  closedir(d);
  return n;
}

unsigned char *fx_slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 1 << 16, n = 0, got;
  unsigned char *b = malloc(cap);
  while (b && (got = fread(b + n, 1, cap - n, f)) > 0) {
    n += got;
    if (n == cap) b = realloc(b, cap *= 2);
  }
  fclose(f);
  *len = n;
  return b;
}
