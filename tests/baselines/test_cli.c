/* test_cli.c — `edgeprune baseline` end to end on the Tracr models.
 *
 * argv: edgeprune binary, mpiexec, inputs dir, test data dir, scratch dir.
 * Data: `edgeprune dataset --task reverse|xproportion` (the decks' header commands).
 *  - ACDC recovers the ground-truth circuits (tests/data/tracr/TASK-circuit.json, derived by
 *    the necessity analysis of tracr_truth): xproportion at tau = 0; reverse at
 *    tau = 1e-9, while tau = 0 keeps the ground truth plus edges whose removal raises the
 *    summed KL only at rounding level (~1e-14); the same with the batches dealt to 2 MPI
 *    ranks. The exported edges.json equals the shipped file byte for byte.
 *  - `edgeprune eval --circuit` reads the ACDC circuit: KL ~0 to the full model.
 *  - EAP-IG writes a circuit file with method eap-ig and exactly round((1 - S) * E) edges,
 *    which `edgeprune circuit --format json` exports; re-extraction is refused; with 2
 *    ranks the scores match one rank's.
 *  - Bad input is refused with exit status 2 and a message naming the problem. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgeprune/circuit.h"
#include "edgeprune/core.h"
#include "test_util.h"

static const char *bin, *mpiexec, *inputs, *tdata, *scratch;
static char out[65536];

static int sh(const char *fmt, ...) EP_PRINTF(1, 2);
static int sh(const char *fmt, ...) {
  char cmd[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  return t_run_capture(cmd, out, sizeof out);
}

static const char *mpi_env =
    "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1";

static void make_data(const char *task) {
  int rc = sh("'%s' dataset --task %s --n 1000 --seed 1 --split train --out '%s/%s.h5' 2>&1 && "
              "'%s' dataset --task %s --n 100 --seed 2 --split validation --out '%s/%s.h5' 2>&1",
              bin, task, scratch, task, bin, task, scratch, task);
  EP_CHECK(rc == 0, "edgeprune dataset --task %s: %s", task, out);
}

/* Run ACDC on a Tracr deck; returns the exit status; the circuit in scratch/NAME.h5 and
 * its edges.json in scratch/NAME.json. */
static int acdc(const char *task, const char *tau, const char *name, int ranks, const char *extra) {
  char launch[1024] = "";
  if (ranks > 1) snprintf(launch, sizeof launch, "%s '%s' -n %d", mpi_env, mpiexec, ranks);
  int rc = sh("%s '%s' baseline '%s/decks/tracr-%s.yml' --method acdc --tau %s -P data.path='%s/%s.h5' "
              "-P run.log_every=1000000 --out '%s/%s.h5' %s 2>&1",
              launch, bin, inputs, task, tau, scratch, task, scratch, name, extra);
  if (rc != 0) {
    fprintf(stderr, "%s\n", out);
    return rc;
  }
  return sh("'%s' circuit '%s/%s.h5' --format json --out '%s/%s.json' 2>&1", bin, scratch, name, scratch,
            name);
}

static int same_file(const char *a, const char *b) {
  return sh("cmp -s '%s' '%s'", a, b) == 0;
}

/* Edges listed in an edges.json (count of "],"-separated pairs). */
static int json_pairs(const char *path) {
  size_t n = 0;
  char *s = ep_read_file(path, &n);
  int k = 0;
  for (char *p = s; (p = strstr(p, "[\"")); p++)
    k++;
  free(s);
  return k;
}

static void check_usage(const char *args, const char *want) {
  int rc = sh("'%s' baseline '%s/decks/tracr-reverse.yml' -P data.path='%s/reverse.h5' %s 2>&1", bin, inputs,
              scratch, args);
  T_CHECK(rc == 2 && strstr(out, want), "`baseline %s`: status %d, expected 2 and '%s' in:\n%s", args, rc,
          want, out);
}

int main(int argc, char **argv) {
  if (argc < 6) return 2;
  bin = argv[1];
  mpiexec = argv[2];
  inputs = argv[3];
  tdata = argv[4];
  scratch = argv[5];
  char a[2048], b[2048];
  make_data("reverse");
  make_data("xproportion");

  /* ACDC recovers the Tracr ground truth */
  snprintf(b, sizeof b, "%s/tracr/xproportion-circuit.json", tdata);
  T_CHECK(acdc("xproportion", "0", "xp-acdc", 1, "") == 0, "acdc xproportion failed");
  snprintf(a, sizeof a, "%s/xp-acdc.json", scratch);
  T_CHECK(same_file(a, b), "acdc xproportion tau 0: %s differs from %s", a, b);

  snprintf(b, sizeof b, "%s/tracr/reverse-circuit.json", tdata);
  T_CHECK(acdc("reverse", "1e-9", "rev-acdc", 1, "-P prune.batch_size=1000") == 0, "acdc reverse failed");
  snprintf(a, sizeof a, "%s/rev-acdc.json", scratch);
  T_CHECK(same_file(a, b), "acdc reverse tau 1e-9: %s differs from %s", a, b);
  T_CHECK(acdc("reverse", "1e-9", "rev-acdc-np2", 2, "--examples 300") == 0,
          "acdc reverse on 2 ranks failed");
  snprintf(a, sizeof a, "%s/rev-acdc-np2.json", scratch);
  T_CHECK(same_file(a, b),
          "acdc reverse tau 1e-9, 2 ranks, 300 examples in batches of 16: %s differs from %s", a, b);

  /* tau = 0: the ground truth and more (rounding-level KL changes decide the rest) */
  T_CHECK(acdc("reverse", "0", "rev-acdc0", 1, "-P prune.batch_size=1000") == 0, "acdc reverse tau 0 failed");
  {
    ep_circuit c0, c1;
    snprintf(a, sizeof a, "%s/rev-acdc0.h5", scratch);
    circuit_read(&c0, a);
    snprintf(a, sizeof a, "%s/rev-acdc.h5", scratch);
    circuit_read(&c1, a);
    int64_t missing = 0, extra = 0;
    for (int64_t e = 0; e < c0.n_edges; e++) {
      missing += c1.edge_kept[e] && !c0.edge_kept[e];
      extra += c0.edge_kept[e] && !c1.edge_kept[e];
    }
    printf("reverse: acdc tau 0 keeps %lld edges, the ground truth and %lld more\n",
           (long long)c0.n_kept_edges, (long long)extra);
    T_CHECK(missing == 0, "acdc tau 0 misses %lld ground-truth edges", (long long)missing);
    T_CHECK(!strcmp(c1.method, "acdc") && c1.n_kept_edges == 11, "acdc circuit: method '%s', %lld edges",
            c1.method, (long long)c1.n_kept_edges);
    circuit_free(&c0);
    circuit_free(&c1);
  }

  /* eval reads the baseline circuit */
  int rc =
      sh("'%s' eval '%s/decks/tracr-reverse.yml' -P data.path='%s/reverse.h5' --circuit '%s/rev-acdc.h5' "
         "2>&1",
         bin, inputs, scratch, scratch);
  {
    const char *p = strstr(out, "\nkl_sum");
    double full = NAN, circ = NAN;
    if (p) sscanf(p, " kl_sum %lf %lf", &full, &circ);
    T_CHECK(rc == 0 && full == 0 && circ >= 0 && circ < 1e-6,
            "eval --circuit acdc: status %d, kl_sum %g:\n%s", rc, circ, out);
  }

  /* EAP-IG circuit file */
  rc = sh("'%s' baseline '%s/decks/tracr-reverse.yml' --method eap-ig --steps 3 --edge-sparsity 0.9 "
          "-P data.path='%s/reverse.h5' --out '%s/rev-ig.h5' 2>&1",
          bin, inputs, scratch, scratch);
  T_CHECK(rc == 0 && strstr(out, "sum of scores"), "eap-ig: status %d:\n%s", rc, out);
  snprintf(a, sizeof a, "%s/rev-ig.h5", scratch);
  ep_circuit ig;
  circuit_read(&ig, a);
  T_CHECK(!strcmp(ig.method, "eap-ig") && ig.n_kept_edges == 9 && ig.n_metrics > 0,
          "eap-ig circuit: method '%s', %lld edges kept (want 9 = round(0.1 * 94)), %d metrics", ig.method,
          (long long)ig.n_kept_edges, ig.n_metrics);
  float kmin = INFINITY, dmax = 0;
  for (int64_t e = 0; e < ig.n_edges; e++) {
    if (ig.edge_kept[e])
      kmin = fminf(kmin, ig.edge_value[e]);
    else
      dmax = fmaxf(dmax, ig.edge_value[e]);
    T_CHECK(ig.edge_value[e] == fabsf(ig.edge_log_alpha[e]), "eap-ig: value is not |score| at edge %lld",
            (long long)e);
  }
  T_CHECK(kmin >= dmax, "eap-ig: a dropped edge has a larger |score| (%g) than a kept one (%g)", dmax, kmin);
  rc = sh("'%s' circuit '%s' --format json --out '%s/rev-ig.json' 2>&1", bin, a, scratch);
  snprintf(b, sizeof b, "%s/rev-ig.json", scratch);
  T_CHECK(rc == 0 && json_pairs(b) == 9, "circuit --format json on eap-ig: status %d, %d pairs", rc,
          rc == 0 ? json_pairs(b) : -1);
  rc = sh("'%s' circuit '%s' 2>&1", bin, a);
  T_CHECK(rc == 0 && strstr(out, "method         eap-ig"), "circuit summary: %s", out);
  rc = sh("'%s' circuit '%s' --edge-sparsity 0.5 2>&1", bin, a);
  T_CHECK(rc != 0 && strstr(out, "cannot be extracted again"), "re-extraction of eap-ig: status %d:\n%s", rc,
          out);

  /* 2 ranks, mean ablation: same scores as 1 rank */
  for (int np = 1; np <= 2; np++) {
    char launch[1024] = "";
    if (np > 1) snprintf(launch, sizeof launch, "%s '%s' -n 2", mpi_env, mpiexec);
    rc = sh("%s '%s' baseline '%s/decks/tracr-reverse.yml' --method eap-ig --steps 2 --edge-sparsity 0.5 "
            "-P data.path='%s/reverse.h5' -P prune.ablation=mean -P data.val_split= --examples 200 "
            "--out '%s/ig-mean-np%d.h5' 2>&1",
            launch, bin, inputs, scratch, scratch, np);
    T_CHECK(rc == 0, "eap-ig mean, %d ranks: status %d:\n%s", np, rc, out);
  }
  {
    ep_circuit c1, c2;
    snprintf(a, sizeof a, "%s/ig-mean-np1.h5", scratch);
    circuit_read(&c1, a);
    snprintf(a, sizeof a, "%s/ig-mean-np2.h5", scratch);
    circuit_read(&c2, a);
    double worst = 0, big = 0;
    for (int64_t e = 0; e < c1.n_edges; e++) {
      worst = fmax(worst, fabs((double)c1.edge_log_alpha[e] - c2.edge_log_alpha[e]));
      big = fmax(big, fabs((double)c1.edge_log_alpha[e]));
    }
    T_CHECK(big > 0 && worst <= 1e-4 * big, "eap-ig 1 vs 2 ranks: scores differ by %g (largest %g)", worst,
            big);
    circuit_free(&c1);
    circuit_free(&c2);
  }

  /* bad input */
  check_usage("--method eapx", "unknown method 'eapx'");
  check_usage("", "--method eap|eap-ig|acdc is required");
  check_usage("--method acdc --tau -1", "--tau must be >= 0");
  check_usage("--method eap-ig --steps 0", "--steps must be an integer M >= 1");
  check_usage("--method eap-ig --steps 1.5", "--steps must be an integer M >= 1");
  check_usage("--method acdc --steps 3", "--steps applies to eap-ig only");
  check_usage("--method eap --tau 1", "--tau applies to acdc only");
  check_usage("--method eap --edge-sparsity 1.5", "--edge-sparsity must be in [0, 1]");
  check_usage("--method eap", "give --edge-sparsity"); /* the deck's target is 1.02 */
  circuit_free(&ig);
  return t_done();
}
