/* restart_tool.c — helper of the tests/restart scripts.
 *
 *   restart_tool fixture DIR        tiny GPT-2-shaped model.h5, data.h5 (train 48 examples,
 *                                   validation 16, mixed lengths) and run.yml in DIR
 *   restart_tool gpt2-vocab-model PATH   a tiny random model with GPT-2's 50,257-token
 *                                   vocabulary (for datasets from `edgeprune dataset`)
 *   restart_tool same A.h5 B.h5     checkpoints: every array under /arrays (theta = all
 *                                   log_alphas and lambdas, AdamW moments and step) and
 *                                   the step attribute identical bit for bit
 *   restart_tool close A.h5 B.h5 TOL   circuits: edge and node mask values within TOL;
 *                                   prints the largest differences (log_alpha too)
 * Exit status 0 when the check holds, 1 when not (with the reason), 2 on usage errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgeprune/core.h"
#include "edgeprune/dataset.h"
#include "edgeprune/h5io.h"
#include "edgeprune/model_file.h"
#include "edgeprune/rng.h"
#include "engine/fixture.h"

static void write_split(const char *path, const char *split, int64_t n, uint64_t seed) {
  const int T = 7, V = 30;
  ep_dataset d;
  dataset_alloc(&d, n, T);
  snprintf(d.task, sizeof d.task, "jsonl");
  for (int64_t i = 0; i < n; i++) {
    d.length[i] = T - (int)(i % 3);
    d.loss_start[i] = d.length[i] - 2;
    d.loss_end[i] = d.length[i];
    d.target[i] = (int32_t)(i % V);
    d.distractor[i] = (int32_t)((i + 7) % V);
    for (int t = 0; t < T; t++) {
      uint32_t w[4];
      ep_rng_words(seed, 50, (uint64_t)i, (uint32_t)t, w);
      int on = t < d.length[i];
      d.clean[i * T + t] = on ? (int32_t)(w[0] % (uint32_t)V) : 0;
      /* the corrupted input differs from the clean one at a few positions */
      d.corrupted[i * T + t] = on ? (t % 2 ? (int32_t)(w[1] % (uint32_t)V) : d.clean[i * T + t]) : 0;
    }
  }
  dataset_write(&d, path, split, "{\"generator\": \"restart_tool fixture\"}");
  dataset_free(&d);
}

static int fixture(const char *dir) {
  ep_model m;
  fx_gpt2_tiny(&m, 2, 2, 16, 30, 8);
  char *mp = ep_path_join(dir, "model.h5");
  model_file_write(&m, NULL, "random", mp);
  model_free(&m);
  char *dp = ep_path_join(dir, "data.h5");
  write_split(dp, "train", 48, 6);
  write_split(dp, "validation", 16, 7);
  char *deck = ep_path_join(dir, "run.yml");
  FILE *f = fopen(deck, "w");
  if (!f) return 2;
  fputs("model:\n  path: model.h5\n"
        "data:\n  path: data.h5\n"
        /* long enough that the masks spread out and the circuit keeps some edges */
        "prune:\n  steps: 300\n  batch_size: 8\n  lr_warmup: 5\n  sparsity_warmup: 200\n"
        "  edge_lambda_lr: 0.02\n  node_lambda_lr: 0.02\n"
        "  target_edge_sparsity: 0.7\n  target_node_sparsity: 0.1\n"
        "run:\n  checkpoint_every: 25\n  checkpoint_keep: 3\n  log_every: 50\n  val_every: 0\n",
        f);
  fclose(f);
  free(mp);
  free(dp);
  free(deck);
  return 0;
}

/* Names of the datasets under /arrays of a checkpoint. */
typedef struct {
  int n;
  char names[16][64];
} name_list;

static herr_t collect(hid_t g, const char *name, const H5L_info_t *info, void *op) {
  (void)g;
  (void)info;
  name_list *l = op;
  if (l->n < 16) snprintf(l->names[l->n++], sizeof l->names[0], "%s", name);
  return 0;
}

/* A dataset's elements as stored (its own type, native byte order): *size per element. */
static unsigned char *read_raw(hid_t f, const char *name, size_t *size) {
  hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
  EP_CHECK_H5(ds);
  hid_t ft = H5Dget_type(ds);
  EP_CHECK_H5(ft);
  hid_t mt = H5Tget_native_type(ft, H5T_DIR_ASCEND);
  EP_CHECK_H5(mt);
  hid_t sp = H5Dget_space(ds);
  EP_CHECK_H5(sp);
  hssize_t n = H5Sget_simple_extent_npoints(sp);
  EP_CHECK_H5(n);
  *size = H5Tget_size(mt);
  unsigned char *buf = ep_malloc((size_t)n * *size + 1);
  if (n > 0) EP_CHECK_H5(H5Dread(ds, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf));
  EP_CHECK_H5(H5Sclose(sp));
  EP_CHECK_H5(H5Tclose(mt));
  EP_CHECK_H5(H5Tclose(ft));
  EP_CHECK_H5(H5Dclose(ds));
  return buf;
}

static int same(const char *a, const char *b) {
  hid_t fa = h5io_open_read(a), fb = h5io_open_read(b);
  int64_t sa = h5io_get_attr_i64(fa, "step", a), sb = h5io_get_attr_i64(fb, "step", b);
  int bad = 0;
  if (sa != sb) {
    printf("step %lld vs %lld\n", (long long)sa, (long long)sb);
    bad = 1;
  }
  name_list l = {0};
  hid_t ga = H5Gopen2(fa, "arrays", H5P_DEFAULT);
  EP_CHECK_H5(ga);
  EP_CHECK_H5(H5Literate(ga, H5_INDEX_NAME, H5_ITER_INC, NULL, collect, &l));
  EP_CHECK_H5(H5Gclose(ga));
  if (l.n < 4) {
    printf("%s holds %d arrays, expected at least 4\n", a, l.n);
    bad = 1;
  }
  for (int k = 0; k < l.n; k++) {
    char name[128];
    snprintf(name, sizeof name, "arrays/%s", l.names[k]);
    int64_t da[8], db[8];
    h5io_dims(fa, name, da, a);
    if (!h5io_exists(fb, name) || (h5io_dims(fb, name, db, b), da[0] != db[0])) {
      printf("%s: missing or of another length in %s\n", name, b);
      bad = 1;
      continue;
    }
    /* the stored bytes (no conversion), compared element by element */
    size_t size = 0;
    unsigned char *va = read_raw(fa, name, &size), *vb = read_raw(fb, name, &size);
    int64_t diff = 0;
    for (int64_t i = 0; i < da[0]; i++)
      diff += memcmp(va + i * size, vb + i * size, size) != 0;
    printf("%-8s %8lld values, %lld differ\n", l.names[k], (long long)da[0], (long long)diff);
    bad |= diff != 0;
    free(va);
    free(vb);
  }
  h5io_close(fa);
  h5io_close(fb);
  return bad;
}

static double max_diff(hid_t fa, hid_t fb, const char *name, const char *a, const char *b) {
  int64_t da[8], db[8];
  h5io_dims(fa, name, da, a);
  h5io_dims(fb, name, db, b);
  if (da[0] != db[0]) return INFINITY;
  float *va = h5io_read(fa, name, H5T_NATIVE_FLOAT, 1, NULL, NULL, a);
  float *vb = h5io_read(fb, name, H5T_NATIVE_FLOAT, 1, NULL, NULL, b);
  double m = 0;
  for (int64_t i = 0; i < da[0]; i++)
    m = fmax(m, fabs((double)va[i] - vb[i]));
  free(va);
  free(vb);
  return m;
}

static int close_enough(const char *a, const char *b, double tol) {
  hid_t fa = h5io_open_read(a), fb = h5io_open_read(b);
  double ev = max_diff(fa, fb, "edges/value", a, b), nv = max_diff(fa, fb, "nodes/value", a, b);
  double el = max_diff(fa, fb, "edges/log_alpha", a, b), nl = max_diff(fa, fb, "nodes/log_alpha", a, b);
  h5io_close(fa);
  h5io_close(fb);
  printf("max |difference|: edge masks %.3g, node masks %.3g, edge log_alpha %.3g, node log_alpha %.3g "
         "(tolerance on masks %.3g)\n",
         ev, nv, el, nl, tol);
  return !(ev <= tol && nv <= tol);
}

/* A tiny random GPT-2-shaped model with GPT-2's vocabulary, for datasets made by
 * `edgeprune dataset` with the GPT-2 tokenizer (job-script checks). */
static int gpt2_vocab_model(const char *path) {
  ep_model m;
  ep_model_config c;
  model_config_defaults(&c);
  c.n_layer = 2;
  c.n_head = c.n_kv_head = 2;
  c.d_model = 16;
  c.d_head = 8;
  c.d_mlp = 32;
  c.vocab = c.vocab_out = 50257;
  c.n_ctx = 64;
  model_alloc(&m, &c);
  model_init_random(&m, 11, 0.3f);
  model_file_write(&m, NULL, "random", path);
  model_free(&m);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && !strcmp(argv[1], "fixture")) return fixture(argv[2]);
  if (argc == 3 && !strcmp(argv[1], "gpt2-vocab-model")) return gpt2_vocab_model(argv[2]);
  if (argc == 4 && !strcmp(argv[1], "same")) return same(argv[2], argv[3]);
  if (argc == 5 && !strcmp(argv[1], "close")) return close_enough(argv[2], argv[3], atof(argv[4]));
  fprintf(stderr,
          "usage: restart_tool fixture DIR | gpt2-vocab-model PATH | same A.h5 B.h5 | close A.h5 B.h5 "
          "TOL\n");
  return 2;
}
