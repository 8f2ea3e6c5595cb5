/* test_dataset_io.c — HDF5 round trip of a dataset, row ranges, adding and replacing
 * splits, and (through the edgeprune binary) deterministic output.
 *   test_dataset_io TMPDIR [EDGEPRUNE TOKDIR] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgeprune/core.h"
#include "edgeprune/dataset.h"
#include "test_util.h"

static void fill(ep_dataset *d, int64_t n, int T, int salt) {
  dataset_alloc(d, n, T);
  snprintf(d->task, sizeof d->task, "gt");
  d->pad_id = 99;
  for (int64_t i = 0; i < n; i++) {
    d->length[i] = 1 + (int)(i % T);
    for (int t = 0; t < T; t++) {
      size_t k = (size_t)i * (size_t)T + (size_t)t;
      d->clean[k] = t < d->length[i] ? (int32_t)(1000 * i + t + salt) : 99;
      d->corrupted[k] = t < d->length[i] ? (int32_t)(2000 * i + t + salt) : 99;
    }
    d->loss_start[i] = d->length[i] - 1;
    d->loss_end[i] = d->length[i];
    d->target[i] = (int32_t)(i + salt);
    d->distractor[i] = (int32_t)(i * 3);
    d->aux[i] = (int32_t)(i % 100);
  }
  d->n_answer_tokens = 100;
  d->answer_tokens = ep_malloc(100 * sizeof *d->answer_tokens);
  for (int y = 0; y < 100; y++)
    d->answer_tokens[y] = 5000 + y;
}

static int same_rows(const ep_dataset *a, int64_t first, const ep_dataset *b) {
  /* b holds rows [first, first + b->n) of a */
  if (a->max_len != b->max_len || strcmp(a->task, b->task) || a->pad_id != b->pad_id) return 0;
  size_t T = (size_t)a->max_len;
  for (int64_t i = 0; i < b->n; i++) {
    int64_t j = first + i;
    if (memcmp(a->clean + (size_t)j * T, b->clean + (size_t)i * T, T * 4) ||
        memcmp(a->corrupted + (size_t)j * T, b->corrupted + (size_t)i * T, T * 4) ||
        a->length[j] != b->length[i] || a->loss_start[j] != b->loss_start[i] ||
        a->loss_end[j] != b->loss_end[i] || a->target[j] != b->target[i] ||
        a->distractor[j] != b->distractor[i] || a->aux[j] != b->aux[i])
      return 0;
  }
  return b->n_answer_tokens == a->n_answer_tokens &&
         !memcmp(a->answer_tokens, b->answer_tokens, (size_t)a->n_answer_tokens * 4);
}

static int files_equal(const char *p, const char *q) {
  size_t la, lb;
  char *a = ep_read_file(p, &la), *b = ep_read_file(q, &lb);
  int eq = la == lb && !memcmp(a, b, la);
  free(a);
  free(b);
  return eq;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: test_dataset_io TMPDIR [EDGEPRUNE TOKDIR]\n");
    return 2;
  }
  char *path = ep_path_join(argv[1], "io_test.h5");
  remove(path);
  ep_dataset a, b, r;
  fill(&a, 37, 9, 0);
  fill(&b, 5, 4, 7);
  dataset_write(&a, path, "train", "{\"seed\": 3, \"tokenizer\": \"x\", \"ratio\": 0.5, \"list\": [1,2]}");
  dataset_write(&b, path, "validation", NULL);
  int64_t n;
  int T;
  dataset_shape(path, "train", &n, &T);
  T_CHECK(n == 37 && T == 9, "shape of train [%lld, %d]", (long long)n, T);
  dataset_read(&r, path, "train");
  T_CHECK(same_rows(&a, 0, &r) && r.n == 37, "train read back equal");
  dataset_free(&r);
  dataset_read(&r, path, "validation");
  T_CHECK(same_rows(&b, 0, &r) && r.n == 5, "validation kept when adding a split");
  dataset_free(&r);
  dataset_read_rows(&r, path, "train", 10, 13, 0);
  T_CHECK(r.n == 13 && same_rows(&a, 10, &r), "rows [10, 23)");
  dataset_free(&r);
  dataset_read_rows(&r, path, "train", 37, 0, 0);
  T_CHECK(r.n == 0, "empty row range");
  dataset_free(&r);
  char *tk = dataset_attr_str(path, "train", "tokenizer");
  T_CHECK(tk && !strcmp(tk, "x"), "tokenizer attribute");
  free(tk);
  char *lst = dataset_attr_str(path, "train", "list");
  T_CHECK(lst && !strcmp(lst, "[1,2]"), "non-scalar attribute kept as JSON text");
  free(lst);
  T_CHECK(dataset_attr_str(path, "train", "nope") == NULL, "absent attribute is NULL");
  /* replacing a split */
  dataset_write(&b, path, "train", NULL);
  dataset_read(&r, path, "train");
  T_CHECK(r.n == 5 && same_rows(&b, 0, &r), "train replaced");
  dataset_free(&r);
  /* no temporary left behind */
  char tmp[4096];
  ep_atomic_tmpname(path, tmp, sizeof tmp);
  FILE *f = fopen(tmp, "rb");
  T_CHECK(f == NULL, "temporary %s removed", tmp);
  if (f) fclose(f);
  dataset_free(&a);
  dataset_free(&b);

  if (argc >= 4) {
    /* the same command twice gives the same bytes; another seed gives other data */
    char cmd[8192], out[4096];
    char *f1 = ep_path_join(argv[1], "det1.h5"), *f2 = ep_path_join(argv[1], "det2.h5"),
         *f3 = ep_path_join(argv[1], "det3.h5");
    const char *files[3] = {f1, f2, f3};
    const int seeds[3] = {5, 5, 6};
    for (int k = 0; k < 3; k++) {
      remove(files[k]);
      snprintf(cmd, sizeof cmd, "%s dataset --task ioi --n 3000 --seed %d --tokenizer %s --out %s", argv[2],
               seeds[k], argv[3], files[k]);
      T_CHECK(t_run_capture(cmd, out, sizeof out) == 0, "ran: %s", cmd);
    }
    T_CHECK(files_equal(f1, f2), "same seed -> identical file bytes");
    ep_dataset x, y;
    dataset_read(&x, f1, "train");
    dataset_read(&y, f3, "train");
    size_t cells = (size_t)x.n * (size_t)(x.max_len < y.max_len ? x.max_len : y.max_len);
    int64_t same = 0;
    for (int64_t i = 0; i < x.n && i < y.n; i++)
      same += x.length[i] == y.length[i] &&
              !memcmp(x.clean + (size_t)i * (size_t)x.max_len, y.clean + (size_t)i * (size_t)y.max_len,
                      (size_t)x.length[i] * 4);
    T_CHECK(same < 10, "different seed -> different examples (%lld of %lld equal, %zu cells)",
            (long long)same, (long long)x.n, cells);
    dataset_free(&x);
    dataset_free(&y);
    free(f1);
    free(f2);
    free(f3);
  }
  free(path);
  return t_done();
}
