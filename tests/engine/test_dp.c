/* test_dp.c — data parallelism does not change the result: `edgeprune prune` on 1 rank
 * and under mpirun on 2 and 3 ranks (batch 8 split 4+4 and 3+3+2) gives the same trained
 * log_alphas up to floating-point reduction order (tolerance 1e-4 absolute on values of
 * order 10 after 15 AdamW steps). argv: edgeprune binary, mpiexec. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "edgeprune/core.h"
#include "edgeprune/dataset.h"
#include "edgeprune/h5io.h"
#include "edgeprune/model_file.h"
#include "fixture.h"
#include "test_util.h"

static char dir[256];

static float *read_la(const char *sub, int64_t *n) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s/circuit.h5", dir, sub);
  if (access(p, R_OK) != 0) return NULL;
  hid_t f = h5io_open_read(p);
  int64_t dims[8];
  h5io_dims(f, "edges/log_alpha", dims, p);
  *n = dims[0];
  float *v = h5io_read(f, "edges/log_alpha", H5T_NATIVE_FLOAT, 1, dims, NULL, p);
  h5io_close(f);
  return v;
}

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  snprintf(dir, sizeof dir, "/tmp/ep_dp_XXXXXX");
  if (!mkdtemp(dir)) return 2;
  ep_model m;
  fx_gpt2_tiny(&m, 2, 2, 16, 30, 8);
  char *mp = ep_path_join(dir, "model.h5");
  model_file_write(&m, NULL, "random", mp);
  model_free(&m);
  ep_dataset d;
  dataset_alloc(&d, 32, 6);
  for (int64_t i = 0; i < d.n; i++) {
    d.length[i] = 6 - (int)(i % 2);
    d.loss_start[i] = d.length[i] - 2;
    d.loss_end[i] = d.length[i];
    for (int t = 0; t < 6; t++) {
      uint32_t w[4];
      ep_rng_words(5, 50, (uint64_t)i, (uint32_t)t, w);
      d.clean[i * 6 + t] = (int32_t)(w[0] % 30u);
      d.corrupted[i * 6 + t] = (int32_t)(w[1] % 30u);
    }
  }
  char *dp = ep_path_join(dir, "data.h5");
  dataset_write(&d, dp, "train", NULL);
  dataset_free(&d);
  char cmd[2048], out[16384];
  char *deck = ep_path_join(dir, "dp.yml");
  FILE *f = fopen(deck, "w");
  if (!f) return 2;
  fputs("model:\n  path: model.h5\ndata:\n  path: data.h5\n", f);
  fclose(f);
  free(deck);
  const char *common = "dp.yml -P data.val_split= -P prune.steps=15 "
                       "-P prune.batch_size=8 -P prune.lr_warmup=3 -P prune.sparsity_warmup=10 "
                       "-P prune.target_edge_sparsity=0.5 -P prune.ablation=mean";
  snprintf(cmd, sizeof cmd, "cd '%s' && '%s' prune %s -P run.out_dir=np1 2>&1", dir, argv[1], common);
  int st = t_run_capture(cmd, out, sizeof out);
  T_CHECK(st == 0, "1 rank (status %d):\n%s", st, out);
  for (int np = 2; np <= 3; np++) {
    snprintf(cmd, sizeof cmd,
             "cd '%s' && OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 '%s' -n %d "
             "--oversubscribe '%s' "
             "prune %s -P run.out_dir=np%d 2>&1",
             dir, argv[2], np, argv[1], common, np);
    st = t_run_capture(cmd, out, sizeof out);
    T_CHECK(st == 0, "%d ranks (status %d):\n%s", np, st, out);
  }
  int64_t n1 = 0, n2 = 0, n3 = 0;
  float *a = read_la("np1", &n1), *b = read_la("np2", &n2), *c = read_la("np3", &n3);
  T_CHECK(a && b && c && n1 == n2 && n1 == n3, "three circuits of the same size");
  if (a && b && c && n1 == n2 && n1 == n3) {
    double d2 = 0, d3 = 0, moved = 0;
    for (int64_t e = 0; e < n1; e++) {
      d2 = fmax(d2, fabs((double)a[e] - b[e]));
      d3 = fmax(d3, fabs((double)a[e] - c[e]));
      moved = fmax(moved, fabs(a[e] - 10.0));
    }
    printf("max |log_alpha(1 rank) - log_alpha(2 ranks)| %.3g, (3 ranks) %.3g; max change from init %.3g\n",
           d2, d3, moved);
    T_CHECK(moved > 0.5, "training moved the log_alphas (%.3g)", moved);
    T_CHECK(d2 <= 1e-4 && d3 <= 1e-4, "data parallel result differs: %.3g / %.3g", d2, d3);
  }
  free(a);
  free(b);
  free(c);
  free(mp);
  free(dp);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (t_failed == 0 && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  return t_done();
}
