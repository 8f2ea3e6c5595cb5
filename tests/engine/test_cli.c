/* test_cli.c — the prune / step-dump / eval commands from the outside (argv[1] = the
 * edgeprune binary): a short run succeeds and writes its circuit, and bad input stops
 * with a clear one-line message and a non-zero exit status: wrong types, out-of-range
 * values, a target below its start, a log schedule with a target >= 1, a dataset longer
 * than the model's context, a NaN loss (injected by deck key, and from a model with a
 * NaN weight) — which must leave the previous circuit file untouched. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "edgeprune/core.h"
#include "edgeprune/dataset.h"
#include "edgeprune/h5io.h"
#ifdef EP_HAVE_CUDA
#include "edgeprune/backend_cuda.h"
#endif
#include "edgeprune/model_file.h"
#include "fixture.h"
#include "test_util.h"

static char dir[256];
static const char *bin;

static char *path_in(const char *name) {
  return ep_path_join(dir, name);
}

static void write_text(const char *name, const char *text) {
  char *p = path_in(name);
  FILE *f = fopen(p, "w");
  if (!f) {
    perror(p);
    exit(2);
  }
  fputs(text, f);
  fclose(f);
  free(p);
}

static void write_data(const char *name, int64_t n, int T, int V) {
  ep_dataset d;
  dataset_alloc(&d, n, T);
  strcpy(d.task, "jsonl");
  for (int64_t i = 0; i < n; i++) {
    d.length[i] = T;
    d.loss_start[i] = T - 1;
    d.loss_end[i] = T;
    d.target[i] = (int32_t)(i % V);
    d.distractor[i] = (int32_t)((i + 1) % V);
    for (int t = 0; t < T; t++) {
      uint32_t w[4];
      ep_rng_words(3, 50, (uint64_t)i, (uint32_t)t, w);
      d.clean[i * T + t] = (int32_t)(w[0] % (uint32_t)V);
      d.corrupted[i * T + t] = t == 2 ? (int32_t)(w[1] % (uint32_t)V) : d.clean[i * T + t];
    }
  }
  char *p = path_in(name);
  dataset_write(&d, p, "train", NULL);
  dataset_write(&d, p, "validation", NULL);
  free(p);
  dataset_free(&d);
}

/* Run `edgeprune ARGS` in dir; returns exit status, stderr+stdout in out. */
static int run(const char *args, char *out, size_t cap) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s 2>&1", dir, bin, args);
  return t_run_capture(cmd, out, cap);
}

static void expect_fail(const char *what, const char *args, const char *must1, const char *must2) {
  char out[16384];
  int st = run(args, out, sizeof out);
  T_CHECK(st != 0, "%s: expected failure, got status 0", what);
  T_CHECK(strstr(out, must1) != NULL, "%s: message lacks '%s':\n%s", what, must1, out);
  if (must2) T_CHECK(strstr(out, must2) != NULL, "%s: message lacks '%s':\n%s", what, must2, out);
}

static char *slurp(const char *name, size_t *len) {
  char *p = path_in(name);
  char *s = ep_try_read_file(p, len);
  free(p);
  return s;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: test_cli EDGEPRUNE\n");
    return 2;
  }
  bin = argv[1];
  snprintf(dir, sizeof dir, "/tmp/ep_cli_XXXXXX");
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 2;
  }
  ep_model m;
  fx_gpt2_tiny(&m, 2, 2, 16, 30, 4);
  char *mp = path_in("model.h5");
  model_file_write(&m, NULL, "random", mp);
  m.cfg.bos_token = 1; /* the same weights with a BOS convention */
  char *bp = path_in("bos_model.h5");
  model_file_write(&m, NULL, "random", bp);
  free(bp);
  m.cfg.bos_token = -1;
  m.layers[1].w_fc[5] = NAN; /* a corrupt model: NaN in one MLP weight */
  char *np = path_in("nan_model.h5");
  model_file_write(&m, NULL, "random", np);
  model_free(&m);
  write_data("data.h5", 40, 8, 30);
  write_data("long.h5", 8, 20, 30); /* n_ctx is 16 */
  {
    ep_dataset d; /* scores position 0, which holds BOS (id 1) */
    dataset_alloc(&d, 8, 4);
    strcpy(d.task, "jsonl");
    for (int64_t i = 0; i < 8; i++) {
      d.length[i] = 4;
      d.loss_start[i] = 0;
      d.loss_end[i] = 4;
      d.clean[i * 4] = d.corrupted[i * 4] = 1;
      for (int t = 1; t < 4; t++)
        d.clean[i * 4 + t] = d.corrupted[i * 4 + t] = (int32_t)(2 + t + i);
    }
    char *p = path_in("bos.h5");
    dataset_write(&d, p, "train", NULL);
    free(p);
    dataset_free(&d);
  }
  const char *base = "model:\n  path: model.h5\ndata:\n  path: data.h5\n"
                     "run:\n  out_dir: out\n  log_every: 5\n  val_every: 0\n  val_examples: 16\n";
  char deck[2048];
  snprintf(deck, sizeof deck,
           "%sprune:\n  steps: 12\n  batch_size: 8\n  lr_warmup: 2\n  sparsity_warmup: 6\n"
           "  target_edge_sparsity: 0.5\n  target_node_sparsity: 0.2\n",
           base);
  write_text("ok.yml", deck);

  char out[16384];
  int st = run("prune ok.yml", out, sizeof out);
  T_CHECK(st == 0, "a short prune run succeeds (status %d):\n%s", st, out);
  T_CHECK(strstr(out, "step     10/12") && strstr(out, "steps/s") && strstr(out, "ETA"),
          "progress lines:\n%s", out);
  size_t len0 = 0;
  char *circ0 = slurp("out/circuit.h5", &len0);
  T_CHECK(circ0 && len0 > 0, "prune wrote out/circuit.h5");
  st = run("eval ok.yml --circuit out/circuit.h5", out, sizeof out);
  T_CHECK(st == 0 && strstr(out, "exact_match") && strstr(out, "accuracy") && strstr(out, "logit_diff"),
          "eval of the circuit (status %d):\n%s", st, out);
  st = run("step-dump ok.yml --out step.h5 --init-mean 1 --init-std 1", out, sizeof out);
  T_CHECK(st == 0, "step-dump (status %d):\n%s", st, out);
  char *sp = path_in("step.h5");
  T_CHECK(access(sp, R_OK) == 0, "step-dump wrote step.h5");
  /* --init-mean / --init-std override the deck keys: the keys alone, and the keys overridden
   * by the options, give the same log_alphas as the options alone */
  st = run("step-dump ok.yml --out step_k.h5 -P prune.init_log_alpha_mean=1 -P prune.init_log_alpha_std=1", out,
           sizeof out);
  T_CHECK(st == 0, "step-dump with the init keys (status %d):\n%s", st, out);
  st = run("step-dump ok.yml --out step_o.h5 --init-mean 1 -P prune.init_log_alpha_mean=7 "
           "-P prune.init_log_alpha_std=1",
           out, sizeof out);
  T_CHECK(st == 0, "step-dump with a key overridden (status %d):\n%s", st, out);
  {
    char *kp = path_in("step_k.h5"), *op = path_in("step_o.h5");
    hid_t f0 = h5io_open_read(sp), f1 = h5io_open_read(kp), f2 = h5io_open_read(op);
    int64_t n0, n1, n2;
    double *a0 = h5io_read(f0, "edges/log_alpha", H5T_NATIVE_DOUBLE, 1, NULL, &n0, sp);
    double *a1 = h5io_read(f1, "edges/log_alpha", H5T_NATIVE_DOUBLE, 1, NULL, &n1, kp);
    double *a2 = h5io_read(f2, "edges/log_alpha", H5T_NATIVE_DOUBLE, 1, NULL, &n2, op);
    int same = n0 == n1 && n0 == n2 && n0 > 0, spread = 0;
    for (int64_t i = 0; same && i < n0; i++) {
      same &= a0[i] == a1[i] && a0[i] == a2[i];
      spread |= fabs(a0[i] - 1) > 0.05;
    }
    T_CHECK(same && spread, "--init-mean/--init-std and the prune.init_log_alpha_* keys agree (%lld values)",
            (long long)n0);
    free(a0);
    free(a1);
    free(a2);
    h5io_close(f0);
    h5io_close(f1);
    h5io_close(f2);
    free(kp);
    free(op);
  }
  free(sp);

  /* backend selection: cpu always works; cuda works with a device and is a clear error
   * without one; fp64 step dumps are the CPU engine's */
  st = run("prune ok.yml -P run.backend=cpu -P run.out_dir=out_cpu", out, sizeof out);
  T_CHECK(st == 0, "run.backend = cpu (status %d):\n%s", st, out);
  int have_cuda = 0;
#ifdef EP_HAVE_CUDA
  have_cuda = backend_cuda_available();
#endif
  if (have_cuda) {
    st = run("prune ok.yml -P run.backend=cuda -P run.precision=bf16 -P run.out_dir=out_cuda", out, sizeof out);
    T_CHECK(st == 0 && strstr(out, "backend: cuda (bf16)"), "run.backend = cuda, bf16 (status %d):\n%s", st, out);
    st = run("step-dump ok.yml --out step_tf32.h5 -P run.backend=cuda -P run.precision=tf32", out, sizeof out);
    T_CHECK(st == 0, "step-dump on cuda (status %d):\n%s", st, out);
    st = run("eval ok.yml --circuit out/circuit.h5 -P run.backend=cuda", out, sizeof out);
    T_CHECK(st == 0 && strstr(out, "exact_match"), "eval on cuda (status %d):\n%s", st, out);
  } else {
    expect_fail("cuda without a device", "prune ok.yml -P run.backend=cuda", "run.backend = cuda", NULL);
  }
  expect_fail("fp64 on cuda", "step-dump ok.yml --out s64.h5 --precision f64 -P run.backend=cuda",
              "--precision f64", "run.backend = cuda");
  expect_fail("bad backend", "prune ok.yml -P run.backend=gpu", "run.backend", "auto");
  expect_fail("bad precision", "prune ok.yml -P run.precision=fp16", "run.precision", "bf16");

  /* deck errors: the key is named */
  expect_fail("wrong type", "prune ok.yml -P prune.steps=abc", "prune.steps", "integer");
  expect_fail("negative learning rate", "prune ok.yml -P prune.edge_lr=-0.5", "prune.edge_lr",
              "out of range");
  expect_fail("negative init std", "prune ok.yml -P prune.init_log_alpha_std=-0.1", "prune.init_log_alpha_std",
              "out of range");
  expect_fail("bad --init-std", "step-dump ok.yml --out s.h5 --init-std -1", "--init-std", NULL);
  expect_fail("batch 0", "prune ok.yml -P prune.batch_size=0", "prune.batch_size", "out of range");
  expect_fail("bad choice", "prune ok.yml -P prune.ablation=resample", "prune.ablation", "interchange");
  expect_fail("target below start", "prune ok.yml -P prune.start_edge_sparsity=0.6",
              "prune.target_edge_sparsity", "below prune.start_edge_sparsity");
  expect_fail("log schedule with target >= 1",
              "prune ok.yml -P prune.schedule=log -P prune.target_edge_sparsity=1.05", "prune.schedule",
              "below 1");
  expect_fail("unknown key", "prune ok.yml -P prune.stpes=3", "prune.stpes", NULL);
  expect_fail("batch larger than data", "prune ok.yml -P prune.batch_size=64", "prune.batch_size",
              "40 examples");
  expect_fail("sequence longer than context", "prune ok.yml -P data.path=long.h5", "long.h5",
              "length 20, longer than the model's context of 16");
  expect_fail("loss at the BOS position", "prune ok.yml -P model.path=bos_model.h5 -P data.path=bos.h5",
              "bos.h5", "BOS token");
  expect_fail("missing deck", "prune nope.yml", "nope.yml", NULL);

  /* NaN: stop naming the step; the previous circuit stays as it was. run.restart=never:
   * the good run left its final checkpoint, which would otherwise be resumed (first
   * case) or refused as another configuration's (second case). */
  expect_fail("injected NaN", "prune ok.yml -P debug.inject_nan_step=3 -P run.restart=never",
              "not finite at step 3", "no output written");
  expect_fail("NaN weight", "prune ok.yml -P model.path=nan_model.h5 -P run.restart=never",
              "not finite at step 0", NULL);
  size_t len1 = 0;
  char *circ1 = slurp("out/circuit.h5", &len1);
  T_CHECK(circ1 && len1 == len0 && memcmp(circ0, circ1, len0) == 0,
          "the circuit of the last good run is intact");
  free(circ0);
  free(circ1);
  free(mp);
  free(np);
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (t_failed == 0 && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  return t_done();
}
