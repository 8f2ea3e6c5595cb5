/* test_tracr.c — the shipped Tracr models compute their programs under forward_run.
 *
 * Usage: test_tracr TRACR_DIR EDGEPRUNE_BIN SCRATCH_DIR
 * TRACR_DIR holds reverse.{safetensors,config.json} and xproportion.{...}. Each model
 * goes through `edgeprune convert` to an HDF5 model file and model_load. Then, for every
 * input "BOS t1..tn" with n = 1..5:
 *   reverse:     argmax over the output tokens at position i (1..n) is t_{n+1-i};
 *   xproportion: residual dimension 0 at position i is the fraction of "x" in t1..ti.
 * Token ids come from the config's vocabulary map; the output index of an int token is
 * its rank among the int tokens in sorted order (Tracr's categorical output space). Every
 * input is run twice: in a padded batch of all lengths and in an unpadded batch of one
 * length, so the bidirectional key mask is exercised. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgeprune/core.h"
#include "edgeprune/forward.h"
#include "edgeprune/model_io.h"
#include "test_util.h"

#define NMAX 5 /* longest input after BOS */

typedef struct {
  cJSON *doc;
  const cJSON *vocab; /* token string -> id */
  int bos, pad;
} tracr_cfg;

static int vocab_id(const tracr_cfg *c, const char *tok) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(c->vocab, tok);
  EP_CHECK(cJSON_IsNumber(v), "Tracr vocabulary has no token '%s'", tok);
  return v->valueint;
}

static tracr_cfg read_cfg(const char *dir, const char *name) {
  char file[512];
  snprintf(file, sizeof file, "%s.config.json", name);
  char *path = ep_path_join(dir, file);
  size_t len;
  char *text = ep_read_file(path, &len);
  tracr_cfg c;
  c.doc = cJSON_Parse(text);
  EP_CHECK(c.doc, "%s: not valid JSON", path);
  c.vocab = cJSON_GetObjectItemCaseSensitive(c.doc, "vocab");
  const cJSON *bos = cJSON_GetObjectItemCaseSensitive(c.doc, "bos");
  const cJSON *pad = cJSON_GetObjectItemCaseSensitive(c.doc, "pad");
  EP_CHECK(cJSON_IsObject(c.vocab) && cJSON_IsString(bos) && cJSON_IsString(pad),
           "%s: needs vocab, bos and pad", path);
  c.bos = vocab_id(&c, bos->valuestring);
  c.pad = vocab_id(&c, pad->valuestring);
  free(text);
  free(path);
  return c;
}

/* Load NAME through `edgeprune convert` and model_load of the HDF5 file; the direct load
 * of the safetensors file must give the same config and the same weights. */
static void convert_and_load(ep_model *m, const char *dir, const char *name, const char *bin,
                             const char *scratch) {
  char src[512], dst[512], cmd[2048], out[8192];
  snprintf(src, sizeof src, "%s/%s.safetensors", dir, name);
  snprintf(dst, sizeof dst, "%s/%s.h5", scratch, name);
  snprintf(cmd, sizeof cmd, "'%s' convert --from '%s' --to '%s' 2>&1", bin, src, dst);
  int rc = t_run_capture(cmd, out, sizeof out);
  EP_CHECK(rc == 0, "edgeprune convert of %s exited %d: %s", src, rc, out);
  model_load(m, dst);
  remove(dst);
  ep_model direct;
  model_load(&direct, src);
  T_CHECK(direct.cfg.n_layer == m->cfg.n_layer && direct.cfg.vocab_out == m->cfg.vocab_out &&
              direct.cfg.causal == m->cfg.causal && direct.cfg.output == m->cfg.output &&
              direct.n_floats == m->n_floats && !memcmp(direct.mem, m->mem, sizeof(float) * m->n_floats),
          "%s: the converted model differs from the one loaded from %s", name, src);
  model_free(&direct);
  T_CHECK(m->cfg.causal == 0 && m->cfg.norm == EP_NORM_NONE && m->cfg.act == EP_ACT_RELU,
          "%s: expected a bidirectional no-norm ReLU model (causal %d norm %d act %d)", name, m->cfg.causal,
          (int)m->cfg.norm, (int)m->cfg.act);
}

/* All sequences over `alphabet` (n_sym symbols) of length n, as symbol indices, in
 * lexicographic order: *count rows of n. */
static int *enumerate(int n_sym, int n, int *count) {
  int total = 1;
  for (int i = 0; i < n; i++)
    total *= n_sym;
  int *s = ep_malloc(sizeof(int) * (size_t)total * n);
  for (int r = 0; r < total; r++)
    for (int i = 0, x = r; i < n; i++, x /= n_sym)
      s[r * n + (n - 1 - i)] = x % n_sym;
  *count = total;
  return s;
}

/* Run `seqs` (symbol indices, rows of length n) two ways and hand both outputs to check:
 * padded to T = NMAX+1 with lengths n+1, and unpadded with T = n+1. */
typedef void (*check_fn)(const ep_model *m, const int *sym, int n, const float *logits, const float *resid,
                         int T, const char *how, void *ctx);

static void run_both(const ep_model *m, ep_forward_ws *ws, const int *ids /* symbol -> token id */, int bos,
                     int pad, const int *seqs, int count, int n, check_fn check, void *ctx) {
  const int V = m->cfg.vocab_out, D = m->cfg.d_model;
  for (int padded = 0; padded < 2; padded++) {
    int T = padded ? NMAX + 1 : n + 1;
    int32_t *tok = ep_malloc(sizeof(int32_t) * (size_t)count * T);
    int32_t *len = ep_malloc(sizeof(int32_t) * count);
    for (int b = 0; b < count; b++) {
      len[b] = n + 1;
      tok[(size_t)b * T] = bos;
      for (int t = 1; t < T; t++)
        tok[(size_t)b * T + t] = t <= n ? ids[seqs[b * n + t - 1]] : pad;
    }
    float *lg = ep_malloc(sizeof(float) * (size_t)count * T * V);
    float *res = ep_malloc(sizeof(float) * (size_t)count * T * D);
    forward_run(m, ws, tok, padded ? len : NULL, count, T, NULL, 0, lg, res);
    check(m, seqs, n, lg, res, T, padded ? "padded" : "unpadded", ctx);
    free(tok), free(len), free(lg), free(res);
  }
}

/* ---- reverse ---------------------------------------------------------------- */

typedef struct {
  int out_index[3]; /* symbol -> output index */
  int wrong, total;
} reverse_ctx;

static void check_reverse(const ep_model *m, const int *seqs, int n, const float *lg, const float *res, int T,
                          const char *how, void *vctx) {
  reverse_ctx *c = vctx;
  const int V = m->cfg.vocab_out;
  int count = 1;
  for (int i = 0; i < n; i++)
    count *= 3;
  for (int b = 0; b < count; b++) {
    int ok = 1;
    for (int i = 1; i <= n; i++) {
      const float *row = lg + ((size_t)b * T + i) * V;
      int best = 0;
      for (int v = 1; v < V; v++)
        if (row[v] > row[best]) best = v;
      ok &= best == c->out_index[seqs[b * n + (n - i)]];
    }
    c->total++;
    if (!ok) {
      if (c->wrong < 5) {
        fprintf(stderr, "reverse (%s) wrong on input", how);
        for (int i = 0; i < n; i++)
          fprintf(stderr, " %d", seqs[b * n + i] + 1);
        fputc('\n', stderr);
      }
      c->wrong++;
    }
  }
}

static void test_reverse(const char *dir, const char *bin, const char *scratch) {
  tracr_cfg tc = read_cfg(dir, "reverse");
  ep_model m;
  convert_and_load(&m, dir, "reverse", bin, scratch);
  /* The output space is the int tokens in sorted order; collect and rank them. */
  int ints[64], n_int = 0;
  const cJSON *e;
  cJSON_ArrayForEach(e, tc.vocab) {
    char *end;
    long v = strtol(e->string, &end, 10);
    if (*e->string && !*end && n_int < 64) ints[n_int++] = (int)v;
  }
  T_CHECK(n_int == 3 && m.cfg.vocab_out == 3, "reverse: %d int tokens, %d outputs (want 3, 3)", n_int,
          m.cfg.vocab_out);
  reverse_ctx c = {{0}, 0, 0};
  /* The loader's names for the output rows must agree with the ranking used here. */
  char src[512];
  snprintf(src, sizeof src, "%s/reverse.safetensors", dir);
  ep_model_tokens names;
  model_load_tokens(&names, src);
  int ids[3];
  for (int s = 0; s < 3; s++) { /* symbol s is token s+1 */
    char name[16];
    snprintf(name, sizeof name, "%d", s + 1);
    ids[s] = vocab_id(&tc, name);
    int rank = 0;
    for (int i = 0; i < n_int; i++)
      rank += ints[i] < s + 1;
    c.out_index[s] = rank;
    T_CHECK(rank < names.n_out && !strcmp(names.out[rank], name),
            "reverse: output row %d is named '%s', want '%s'", rank,
            rank < names.n_out ? names.out[rank] : "(none)", name);
  }
  model_tokens_free(&names);
  ep_forward_ws ws;
  forward_ws_init(&ws);
  for (int n = 1; n <= NMAX; n++) {
    int count;
    int *seqs = enumerate(3, n, &count);
    run_both(&m, &ws, ids, tc.bos, tc.pad, seqs, count, n, check_reverse, &c);
    free(seqs);
  }
  printf("reverse: %d of %d runs (every input of length 1..%d, padded and unpadded) reversed correctly\n",
         c.total - c.wrong, c.total, NMAX);
  T_CHECK(c.wrong == 0 && c.total == 2 * (3 + 9 + 27 + 81 + 243), "reverse: %d wrong of %d", c.wrong,
          c.total);
  forward_ws_free(&ws);
  model_free(&m);
  cJSON_Delete(tc.doc);
}

/* ---- xproportion ------------------------------------------------------------ */

typedef struct {
  int x_symbol;
  double worst, worst_head;
  int total;
} xprop_ctx;

static void check_xprop(const ep_model *m, const int *seqs, int n, const float *lg, const float *res, int T,
                        const char *how, void *vctx) {
  xprop_ctx *c = vctx;
  const int D = m->cfg.d_model, V = m->cfg.vocab_out;
  int count = 1;
  for (int i = 0; i < n; i++)
    count *= 4;
  for (int b = 0; b < count; b++) {
    int xs = 0;
    for (int i = 1; i <= n; i++) {
      xs += seqs[b * n + i - 1] == c->x_symbol;
      double want = (double)xs / i;
      double got = res[((size_t)b * T + i) * D + 0];
      double d = fabs(got - want);
      if (!(d <= c->worst)) c->worst = d; /* NaN sticks */
      /* A numeric head reads the same dimension. */
      if (m->cfg.output == EP_OUTPUT_NUMERIC && V == 1) {
        double dh = fabs(lg[(size_t)b * T + i] - got);
        if (!(dh <= c->worst_head)) c->worst_head = dh;
      }
    }
    c->total++;
  }
  (void)how;
}

static void test_xproportion(const char *dir, const char *bin, const char *scratch) {
  tracr_cfg tc = read_cfg(dir, "xproportion");
  ep_model m;
  convert_and_load(&m, dir, "xproportion", bin, scratch);
  const char *syms[4] = {"a", "b", "c", "x"};
  int ids[4];
  for (int s = 0; s < 4; s++)
    ids[s] = vocab_id(&tc, syms[s]);
  xprop_ctx c = {3, 0, 0, 0};
  ep_forward_ws ws;
  forward_ws_init(&ws);
  for (int n = 1; n <= NMAX; n++) {
    int count;
    int *seqs = enumerate(4, n, &count);
    run_both(&m, &ws, ids, tc.bos, tc.pad, seqs, count, n, check_xprop, &c);
    free(seqs);
  }
  printf("xproportion: %d runs, max |resid[0] - fraction of x| = %.3g, numeric head vs resid %.3g\n", c.total,
         c.worst, c.worst_head);
  T_CHECK(c.total == 2 * (4 + 16 + 64 + 256 + 1024), "xproportion: ran %d inputs", c.total);
  T_CHECK(c.worst <= 1e-5, "xproportion: residual dimension 0 is off the running fraction by %g", c.worst);
  T_CHECK(c.worst_head <= 1e-6, "xproportion: numeric head differs from residual dimension 0 by %g",
          c.worst_head);
  forward_ws_free(&ws);
  model_free(&m);
  cJSON_Delete(tc.doc);
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s TRACR_DIR EDGEPRUNE_BIN SCRATCH_DIR\n", argv[0]);
    return 2;
  }
  test_reverse(argv[1], argv[2], argv[3]);
  test_xproportion(argv[1], argv[2], argv[3]);
  return t_done();
}
