/* test_restart.c — checkpoint/restart of `edgeprune prune` (argv[1] = the binary):
 * a run that dies after step 13 (debug.exit_after_step) and is started again continues
 * from its step-10 checkpoint and ends with exactly the log_alphas of an uninterrupted
 * run; so does a run stopped by a stop file after its first step. A checkpoint of another
 * configuration is refused with a message naming it. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "edgeprune/core.h"
#include "edgeprune/dataset.h"
#include "edgeprune/h5io.h"
#include "edgeprune/model_file.h"
#include "fixture.h"
#include "test_util.h"

static char dir[256];
static const char *bin;

static float *read_la(const char *sub, const char *what, int64_t *n) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s/circuit.h5", dir, sub);
  if (access(p, R_OK) != 0) return NULL;
  hid_t f = h5io_open_read(p);
  int64_t dims[8];
  h5io_dims(f, what, dims, p);
  *n = dims[0];
  float *v = h5io_read(f, what, H5T_NATIVE_FLOAT, 1, dims, NULL, p);
  h5io_close(f);
  return v;
}

static int run(const char *args, char *out, size_t cap) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "cd '%s' && '%s' prune run.yml -P run.checkpoint_every=5 %s 2>&1", dir, bin,
           args);
  return t_run_capture(cmd, out, cap);
}

static void same_as_reference(const char *sub) {
  const char *what[2] = {"edges/log_alpha", "nodes/log_alpha"};
  for (int k = 0; k < 2; k++) {
    int64_t na = 0, nb = 0;
    float *a = read_la("ref", what[k], &na), *b = read_la(sub, what[k], &nb);
    T_CHECK(a && b && na == nb && memcmp(a, b, (size_t)na * sizeof *a) == 0,
            "%s: %s identical to the uninterrupted run", sub, what[k]);
    free(a);
    free(b);
  }
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  bin = argv[1];
  snprintf(dir, sizeof dir, "/tmp/ep_rs_XXXXXX");
  if (!mkdtemp(dir)) return 2;
  ep_model m;
  fx_gpt2_tiny(&m, 2, 2, 16, 30, 8);
  char *mp = ep_path_join(dir, "model.h5");
  model_file_write(&m, NULL, "random", mp);
  model_free(&m);
  ep_dataset d;
  dataset_alloc(&d, 24, 6);
  for (int64_t i = 0; i < d.n; i++) {
    d.length[i] = 6;
    d.loss_start[i] = 5;
    d.loss_end[i] = 6;
    for (int t = 0; t < 6; t++) {
      uint32_t w[4];
      ep_rng_words(6, 50, (uint64_t)i, (uint32_t)t, w);
      d.clean[i * 6 + t] = (int32_t)(w[0] % 30u);
      d.corrupted[i * 6 + t] = (int32_t)(w[1] % 30u);
    }
  }
  char *dp = ep_path_join(dir, "data.h5");
  dataset_write(&d, dp, "train", NULL);
  dataset_free(&d);
  char *deck = ep_path_join(dir, "run.yml");
  FILE *f = fopen(deck, "w");
  if (!f) return 2;
  fputs("model:\n  path: model.h5\ndata:\n  path: data.h5\n  val_split: \"\"\nprune:\n  steps: 20\n  "
        "batch_size: 8\n"
        "  lr_warmup: 3\n  sparsity_warmup: 12\n  target_edge_sparsity: 0.5\n  target_node_sparsity: 0.3\n",
        f);
  fclose(f);
  char out[16384];
  int st = run("-P run.out_dir=ref", out, sizeof out);
  T_CHECK(st == 0, "uninterrupted run (status %d):\n%s", st, out);

  st = run("-P run.out_dir=crash -P debug.exit_after_step=12", out, sizeof out);
  T_CHECK(st != 0 && strstr(out, "after step 13"), "simulated crash (status %d):\n%s", st, out);
  char p[512];
  snprintf(p, sizeof p, "%s/crash/circuit.h5", dir);
  T_CHECK(access(p, F_OK) != 0, "no circuit after the crash");
  snprintf(p, sizeof p, "%s/crash/checkpoints/ckpt-00000010.h5", dir);
  T_CHECK(access(p, R_OK) == 0, "checkpoint of step 10 exists");
  st = run("-P run.out_dir=crash", out, sizeof out);
  T_CHECK(st == 0 && strstr(out, "restarting from") && strstr(out, "at step 10"), "restart (status %d):\n%s",
          st, out);
  same_as_reference("crash");

  snprintf(p, sizeof p, "%s/stopped", dir);
  mkdir(p, 0777);
  snprintf(p, sizeof p, "%s/stopped/stop", dir);
  f = fopen(p, "w");
  if (f) fclose(f);
  st = run("-P run.out_dir=stopped", out, sizeof out);
  T_CHECK(st == 0 && strstr(out, "stop file") && strstr(out, "step 1 "),
          "stop file ends the run (status %d):\n%s", st, out);
  snprintf(p, sizeof p, "%s/stopped/circuit.h5", dir);
  T_CHECK(access(p, F_OK) != 0, "no circuit after a stop");
  st = run("-P run.out_dir=stopped", out, sizeof out);
  T_CHECK(st == 0 && strstr(out, "at step 1"), "continue after the stop (status %d):\n%s", st, out);
  same_as_reference("stopped");

  st = run("-P run.out_dir=crash -P prune.seed=5", out, sizeof out);
  T_CHECK(st != 0 && strstr(out, "another configuration") && strstr(out, "ckpt-"),
          "a checkpoint of another deck is refused (status %d):\n%s", st, out);

  free(mp);
  free(dp);
  free(deck);
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (t_failed == 0 && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  return t_done();
}
