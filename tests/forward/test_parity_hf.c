/* test_parity_hf.c — forward_logits against Hugging Face transformers.
 *
 * Usage: test_parity_hf FIXTURE_DIR EDGEPRUNE_BIN SCRATCH.h5
 * FIXTURE_DIR holds a save_pretrained model (config.json + safetensors) and
 * expected.json from tools/make_gpt2_fixtures.py: token sequences and the float32
 * logits transformers gives at every position. The model is loaded twice, from the
 * directory and from the HDF5 model file `edgeprune convert` makes of it, and each is
 * run on every sequence alone, on all of them as one padded batch, and at selected
 * positions only. Exit 77 (skip) only when the fixture directory is absent. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "edgeprune/core.h"
#include "edgeprune/forward.h"
#include "test_util.h"

#define TOL 1e-4

typedef struct {
  int n;         /* tokens */
  int32_t *tok;  /* [n] */
  float *logits; /* [n, V] */
} sequence;

/* Parse expected.json; fatal on a malformed file (it is generated, so that is a bug). */
static sequence *load_expected(const char *dir, int *n_seq, int *vocab) {
  char *path = ep_path_join(dir, "expected.json");
  size_t len;
  char *text = ep_read_file(path, &len);
  cJSON *doc = cJSON_Parse(text);
  EP_CHECK(doc, "%s: not valid JSON", path);
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, "vocab_size");
  const cJSON *seqs = cJSON_GetObjectItemCaseSensitive(doc, "sequences");
  EP_CHECK(cJSON_IsNumber(v) && cJSON_IsArray(seqs), "%s: needs vocab_size and sequences", path);
  *vocab = v->valueint;
  *n_seq = cJSON_GetArraySize(seqs);
  sequence *out = ep_calloc((size_t)*n_seq, sizeof *out);
  int i = 0;
  const cJSON *s;
  cJSON_ArrayForEach(s, seqs) {
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(s, "tokens");
    const cJSON *lg = cJSON_GetObjectItemCaseSensitive(s, "logits");
    int n = cJSON_GetArraySize(tok);
    EP_CHECK(n >= 1 && cJSON_GetArraySize(lg) == n, "%s: sequence %d: tokens/logits mismatch", path, i);
    out[i].n = n;
    out[i].tok = ep_malloc(sizeof(int32_t) * n);
    out[i].logits = ep_malloc(sizeof(float) * (size_t)n * *vocab);
    int t = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, tok) out[i].tok[t++] = (int32_t)e->valueint;
    t = 0;
    const cJSON *row;
    cJSON_ArrayForEach(row, lg) {
      EP_CHECK(cJSON_GetArraySize(row) == *vocab, "%s: sequence %d position %d: %d logits, want %d", path, i,
               t, cJSON_GetArraySize(row), *vocab);
      int j = 0;
      cJSON_ArrayForEach(e, row) out[i].logits[(size_t)t * *vocab + j++] = (float)e->valuedouble;
      t++;
    }
    i++;
  }
  cJSON_Delete(doc);
  free(text);
  free(path);
  return out;
}

static double max_diff(const float *a, const float *b, size_t n) {
  return t_max_abs_diff(a, b, n);
}

static void check_model(const ep_model *m, const char *what, const sequence *seq, int n_seq, int V) {
  T_CHECK(m->cfg.vocab_out == V, "%s: vocab_out %d, expected.json has %d", what, m->cfg.vocab_out, V);
  if (m->cfg.vocab_out != V) return;

  /* 1. each sequence alone */
  double alone = 0;
  int T = 0;
  for (int s = 0; s < n_seq; s++) {
    float *lg = ep_malloc(sizeof(float) * (size_t)seq[s].n * V);
    forward_logits(m, seq[s].tok, NULL, 1, seq[s].n, NULL, 0, lg);
    double d = max_diff(lg, seq[s].logits, (size_t)seq[s].n * V);
    alone = d > alone ? d : alone;
    free(lg);
    if (seq[s].n > T) T = seq[s].n;
  }

  /* 2. all sequences as one right-padded batch */
  const int B = n_seq;
  int32_t *tok = ep_malloc(sizeof(int32_t) * (size_t)B * T), *len = ep_malloc(sizeof(int32_t) * B);
  for (int b = 0; b < B; b++) {
    len[b] = seq[b].n;
    for (int t = 0; t < T; t++)
      tok[(size_t)b * T + t] = t < seq[b].n ? seq[b].tok[t] : -1;
  }
  float *lg = ep_malloc(sizeof(float) * (size_t)B * T * V);
  forward_logits(m, tok, len, B, T, NULL, 0, lg);
  double batch = 0;
  for (int b = 0; b < B; b++) {
    double d = max_diff(lg + (size_t)b * T * V, seq[b].logits, (size_t)seq[b].n * V);
    batch = d > batch ? d : batch;
  }

  /* 3. only the last and the first position of each sequence */
  int32_t *pos = ep_malloc(sizeof(int32_t) * 2 * B);
  for (int b = 0; b < B; b++)
    pos[2 * b] = seq[b].n - 1, pos[2 * b + 1] = 0;
  float *sel = ep_malloc(sizeof(float) * 2 * (size_t)B * V);
  forward_logits(m, tok, len, B, T, pos, 2, sel);
  double picked = 0;
  for (int b = 0; b < B; b++)
    for (int p = 0; p < 2; p++) {
      double d =
          max_diff(sel + (2 * (size_t)b + p) * V, seq[b].logits + (size_t)pos[2 * b + p] * V, (size_t)V);
      picked = d > picked ? d : picked;
    }

  printf("%-12s %d sequences (T<=%d, V=%d): max|diff| alone %.3g, batched %.3g, selected %.3g\n", what, n_seq,
         T, V, alone, batch, picked);
  T_CHECK(alone <= TOL, "%s: logits of single sequences differ from transformers by %g", what, alone);
  T_CHECK(batch <= TOL, "%s: logits of the padded batch differ from transformers by %g", what, batch);
  T_CHECK(picked <= TOL, "%s: logits at selected positions differ from transformers by %g", what, picked);
  free(tok), free(len), free(lg), free(pos), free(sel);
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s FIXTURE_DIR EDGEPRUNE_BIN SCRATCH.h5\n", argv[0]);
    return 2;
  }
  const char *dir = argv[1], *bin = argv[2], *h5 = argv[3];
  struct stat st;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    printf("SKIP: fixture %s is absent (make it with tools/make_gpt2_fixtures.py on a GPU node)\n", dir);
    return 77;
  }
  int n_seq, V;
  sequence *seq = load_expected(dir, &n_seq, &V);

  ep_model hf;
  model_load(&hf, dir);
  check_model(&hf, "safetensors", seq, n_seq, V);

  char cmd[4096], out[8192];
  snprintf(cmd, sizeof cmd, "'%s' convert --from '%s' --to '%s' 2>&1", bin, dir, h5);
  int rc = t_run_capture(cmd, out, sizeof out);
  T_CHECK(rc == 0, "edgeprune convert exited %d: %s", rc, out);
  if (rc == 0) {
    ep_model h;
    model_load(&h, h5);
    check_model(&h, "hdf5", seq, n_seq, V);
    /* The conversion must not round: same tensor list, same bits. */
    T_CHECK(h.n_floats == hf.n_floats && !memcmp(h.mem, hf.mem, sizeof(float) * hf.n_floats),
            "the HDF5 model's weights differ from the safetensors ones");
    model_free(&h);
    remove(h5);
  }
  model_free(&hf);
  for (int s = 0; s < n_seq; s++)
    free(seq[s].tok), free(seq[s].logits);
  free(seq);
  return t_done();
}
