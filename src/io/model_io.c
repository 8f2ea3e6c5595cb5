/* model_io.c — model sources: what a path is, and model_load / model_load_config on top
 * of the Hugging Face, Tracr and model-file readers (see model_io.h for the rules). */
#define _POSIX_C_SOURCE 200809L
#include "edgeprune/model_io.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "edgeprune/core.h"
#include "edgeprune/model_file.h"
#include "io/json_keys.h"

static int is_file(const char *p) {
  struct stat sb;
  return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && !strcmp(s + a - b, suffix);
}

/* s without its last `cut` characters, followed by add (malloc'd). */
static char *swap_tail(const char *s, size_t cut, const char *add) {
  size_t n = strlen(s) - cut, k = strlen(add);
  char *r = ep_malloc(n + k + 1);
  memcpy(r, s, n);
  memcpy(r + n, add, k + 1);
  return r;
}

static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return ep_strdup(".");
  if (slash == path) return ep_strdup("/");
  return swap_tail(path, strlen(slash), "");
}

/* Weights of a Hugging Face folder: model.safetensors, else the shard index, else NULL. */
static char *hf_weights_in(const char *dir) {
  char *w = ep_path_join(dir, "model.safetensors");
  if (is_file(w)) return w;
  free(w);
  w = ep_path_join(dir, "model.safetensors.index.json");
  if (is_file(w)) return w;
  free(w);
  return NULL;
}

static char *hf_config_in(const char *dir, const char *for_path) {
  char *c = ep_path_join(dir, "config.json");
  if (!is_file(c)) ep_fatal("%s: no config.json next to it (looked for %s)", for_path, c);
  return c;
}

void model_source_resolve(ep_model_source *s, const char *path, int need_weights) {
  memset(s, 0, sizeof *s);
  struct stat sb;
  if (stat(path, &sb) != 0) ep_fatal("cannot open model '%s': %s", path, strerror(errno));
  if (S_ISDIR(sb.st_mode)) {
    s->kind = EP_SRC_HF;
    char *c = ep_path_join(path, "config.json");
    if (!is_file(c)) ep_fatal("%s: not a model folder (no config.json)", path);
    s->config = c;
    s->weights = hf_weights_in(path);
  } else if (model_file_is_hdf5(path)) {
    s->kind = EP_SRC_MODEL_FILE;
    s->config = ep_strdup(path);
    s->weights = ep_strdup(path);
  } else if (ends_with(path, ".safetensors")) {
    char *tracr_cfg = swap_tail(path, strlen(".safetensors"), ".config.json");
    if (is_file(tracr_cfg)) {
      s->kind = EP_SRC_TRACR;
      s->config = tracr_cfg;
    } else {
      free(tracr_cfg);
      char *dir = dir_of(path);
      s->kind = EP_SRC_HF;
      s->config = hf_config_in(dir, path);
      free(dir);
    }
    s->weights = ep_strdup(path);
  } else if (ends_with(path, ".safetensors.index.json")) {
    char *dir = dir_of(path);
    s->kind = EP_SRC_HF;
    s->config = hf_config_in(dir, path);
    s->weights = ep_strdup(path);
    free(dir);
  } else if (ends_with(path, ".json")) {
    size_t len = 0;
    char *text = ep_read_file(path, &len);
    cJSON *root = jk_parse(text, len, path);
    int hf = jk_get(root, "model_type") != NULL;
    cJSON_Delete(root);
    free(text);
    s->config = ep_strdup(path);
    if (hf) {
      char *dir = dir_of(path);
      s->kind = EP_SRC_HF;
      s->weights = hf_weights_in(dir);
      free(dir);
    } else {
      s->kind = EP_SRC_TRACR;
      char *w = ends_with(path, ".config.json") ? swap_tail(path, strlen(".config.json"), ".safetensors")
                                                : swap_tail(path, strlen(".json"), ".safetensors");
      if (is_file(w))
        s->weights = w;
      else
        free(w);
    }
  } else {
    ep_fatal("%s: not a model (expected a Hugging Face folder, a .safetensors file, a Tracr "
             ".config.json or an edgeprune model file)",
             path);
  }
  if (!s->weights && (need_weights || s->kind == EP_SRC_TRACR))
    ep_fatal("%s: no weights found (%s)", path,
             s->kind == EP_SRC_TRACR ? "a Tracr config needs NAME.safetensors next to NAME.config.json"
                                     : "expected model.safetensors or model.safetensors.index.json next to "
                                       "config.json; PyTorch .bin checkpoints are not read");
}

void model_source_free(ep_model_source *s) {
  free(s->config);
  free(s->weights);
  memset(s, 0, sizeof *s);
}

void model_load_config(ep_model_config *cfg, const char *path) {
  ep_model_source s;
  model_source_resolve(&s, path, 0);
  switch (s.kind) {
  case EP_SRC_MODEL_FILE:
    model_file_read_config(cfg, s.config);
    break;
  case EP_SRC_HF:
    hf_config_read(cfg, s.config);
    break;
  case EP_SRC_TRACR:
    tracr_load_config(cfg, NULL, s.config, s.weights);
    break;
  }
  model_source_free(&s);
}

void model_load(ep_model *m, const char *path) {
  ep_model_source s;
  model_source_resolve(&s, path, 1);
  ep_model_config cfg;
  switch (s.kind) {
  case EP_SRC_MODEL_FILE:
    model_file_read(m, s.weights);
    break;
  case EP_SRC_HF:
    hf_config_read(&cfg, s.config);
    model_alloc(m, &cfg);
    hf_load_weights(m, s.weights);
    break;
  case EP_SRC_TRACR:
    tracr_load_config(&cfg, NULL, s.config, s.weights);
    model_alloc(m, &cfg);
    tracr_load_weights(m, s.weights);
    break;
  }
  model_source_free(&s);
}

void model_load_bcast(ep_model *m, const char *path, MPI_Comm comm) {
  int rank = 0;
  EP_CHECK_MPI(MPI_Comm_rank(comm, &rank));
  ep_model_config cfg;
  memset(&cfg, 0, sizeof cfg);
  if (rank == 0) { /* a bad file is a fatal error here, which aborts the whole job */
    model_load(m, path);
    cfg = m->cfg;
  }
  /* The config is a plain value; the layout model_alloc derives from it is the same on
   * every rank, so the one weight allocation can be sent as is. */
  EP_CHECK_MPI(MPI_Bcast(&cfg, (int)sizeof cfg, MPI_BYTE, 0, comm));
  if (rank != 0) model_alloc(m, &cfg);
  uint64_t n = m->n_floats;
  EP_CHECK_MPI(MPI_Bcast(&n, 1, MPI_UINT64_T, 0, comm));
  EP_CHECK(n == m->n_floats, "model_load_bcast: %zu weights here, %llu on rank 0", m->n_floats,
           (unsigned long long)n);
  const size_t chunk = (size_t)1 << 28; /* MPI counts are int */
  for (size_t off = 0; off < m->n_floats; off += chunk) {
    size_t k = m->n_floats - off < chunk ? m->n_floats - off : chunk;
    EP_CHECK_MPI(MPI_Bcast(m->mem + off, (int)k, MPI_FLOAT, 0, comm));
  }
}

void model_load_tokens(ep_model_tokens *t, const char *path) {
  memset(t, 0, sizeof *t);
  ep_model_source s;
  model_source_resolve(&s, path, 0);
  ep_model_config cfg;
  if (s.kind == EP_SRC_MODEL_FILE) model_file_read_tokens(t, s.config);
  if (s.kind == EP_SRC_TRACR) tracr_load_config(&cfg, t, s.config, s.weights);
  model_source_free(&s);
}

void model_tokens_free(ep_model_tokens *t) {
  for (int i = 0; i < t->n_in; i++)
    free(t->in[i]);
  for (int i = 0; i < t->n_out; i++)
    free(t->out[i]);
  free(t->in);
  free(t->out);
  memset(t, 0, sizeof *t);
}

int64_t model_param_count(const ep_model_config *cfg) {
  ep_model m;
  memset(&m, 0, sizeof m);
  m.cfg = *cfg;
  m.layers = ep_calloc((size_t)cfg->n_layer, sizeof *m.layers); /* the list only takes addresses */
  int n = 0;
  ep_tensor_ref *t = model_tensor_list(&m, &n);
  int64_t total = 0;
  for (int i = 0; i < n; i++)
    total += t[i].shape[0] * (t[i].ndim == 2 ? t[i].shape[1] : 1);
  free(t);
  free(m.layers);
  return total;
}

/* 1234567 -> "1,234,567". */
static void with_commas(char *buf, size_t size, int64_t v) {
  char digits[32];
  int n = snprintf(digits, sizeof digits, "%lld", (long long)v);
  size_t k = 0;
  for (int i = 0; i < n && k + 1 < size; i++) {
    if (i > 0 && digits[i - 1] != '-' && (n - i) % 3 == 0) buf[k++] = ',';
    if (k + 1 < size) buf[k++] = digits[i];
  }
  buf[k] = '\0';
}

void model_describe(const ep_model_config *c, char *buf, size_t size) {
  static const char *norms[] = {"no normalisation", "LayerNorm", "RMSNorm"};
  static const char *acts[] = {"GELU (tanh)", "ReLU", "SiLU-gated"};
  static const char *poss[] = {"learned positions", "rotary positions", "no positional encoding"};
  int n_attn = 0, n_mlp = 0;
  for (int l = 0; l < c->n_layer; l++) {
    n_attn += c->has_attn[l];
    n_mlp += c->has_mlp[l];
  }
  char params[40], blocks[96] = "", kv[64] = "", eps[48] = "", special[64] = "";
  with_commas(params, sizeof params, model_param_count(c));
  if (n_attn != c->n_layer || n_mlp != c->n_layer)
    snprintf(blocks, sizeof blocks, " (%d with attention, %d with an MLP)", n_attn, n_mlp);
  if (c->n_kv_head != c->n_head) snprintf(kv, sizeof kv, ", %d key/value heads", c->n_kv_head);
  if (c->norm != EP_NORM_NONE)
    snprintf(eps, sizeof eps, " (eps %g)%s", (double)c->norm_eps, c->final_norm ? " with a final norm" : "");
  if (c->bos_token >= 0 && c->pad_token >= 0)
    snprintf(special, sizeof special, " (BOS %d, pad %d)", c->bos_token, c->pad_token);
  else if (c->bos_token >= 0)
    snprintf(special, sizeof special, " (BOS %d)", c->bos_token);
  else if (c->pad_token >= 0)
    snprintf(special, sizeof special, " (pad %d)", c->pad_token);
  snprintf(buf, size,
           "%s model: %d layer%s%s, %d attention head%s per layer (head width %d%s), residual width %d, "
           "MLP width %d; %s%s, %s MLPs, %s (n_ctx %d), %s attention; vocabulary %d in%s, %d out (%s, %s); "
           "%s parameters.",
           c->arch, c->n_layer, c->n_layer == 1 ? "" : "s", blocks, c->n_head, c->n_head == 1 ? "" : "s",
           c->d_head, kv, c->d_model, c->d_mlp, norms[c->norm], eps, acts[c->act], poss[c->pos], c->n_ctx,
           c->causal ? "causal" : "bidirectional", c->vocab, special, c->vocab_out,
           c->output == EP_OUTPUT_LOGITS ? "logits" : "numeric readout",
           c->tied_unembed ? "unembedding tied to the token embedding" : "separate unembedding", params);
}
