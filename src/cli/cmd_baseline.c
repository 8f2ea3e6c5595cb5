/* cmd_baseline.c — `edgeprune baseline DECK.yml --method eap|eap-ig|acdc`: the circuit
 * discovery baselines on the graph, data and loss of an Edge Pruning deck. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "edgeprune/baselines.h"
#include "edgeprune/circuit.h"
#include "edgeprune/cli.h"
#include "edgeprune/core.h"
#include "prune/session.h"

static int run(int argc, char **argv);

const ep_command ep_cmd_baseline = {
    .name = "baseline",
    .summary = "find a circuit with EAP, EAP-IG or ACDC on the same graph, data and loss",
    .help = "usage: edgeprune baseline DECK.yml --method eap|eap-ig|acdc [--steps M] [--tau T]\n"
            "                          [--edge-sparsity S] [--examples N] [--out CIRCUIT.h5]\n"
            "                          [-P section.key=value ...]\n"
            "\n"
            "Reads the same deck as 'edgeprune prune' (model.path, data.path, data.train_split,\n"
            "prune.ablation, prune.loss, prune.embedding_nodes, prune.batch_size, run.*) and scores\n"
            "the edges of the model's graph on the training split with the deck's loss L(z) (KL to\n"
            "the full model by default) and ablation. Edges only: node masks play no part.\n"
            "\n"
            "methods:\n"
            "  eap     score_e = dL/dz_e at z = 1 (all edges kept), averaged over the examples:\n"
            "          one forward/backward per batch. Removing e changes L by about -score_e.\n"
            "          Every deck loss is minimal (0) at z = 1, so these scores are ~0 up to\n"
            "          rounding; see docs/baselines.md.\n"
            "  eap-ig  the same gradient averaged over z = k/M, k = 1..M, on the straight path from\n"
            "          0 to 1 (all edges together): M forward/backward passes per batch. The\n"
            "          scores add up to about L(1) - L(0) (printed).\n"
            "  acdc    greedy: readers from resid_post back to the first layer, each reader's\n"
            "          writers from last to first; an edge is removed (z_e = 0) when L rises by at\n"
            "          most T over the current circuit's L. One forward pass over the data per edge.\n"
            "\n"
            "options:\n"
            "  --method NAME       eap, eap-ig or acdc (required)\n"
            "  --steps M           eap-ig path steps, M >= 1 (default 5; M = 1 is eap)\n"
            "  --tau T             acdc threshold, T >= 0 (default 0)\n"
            "  --edge-sparsity S   eap / eap-ig: keep the round((1 - S) * E) edges of largest |score|,\n"
            "                      S in [0, 1] (default prune.target_edge_sparsity when it is <= 1)\n"
            "  --examples N        use the first N examples of the training split (default 0: all)\n"
            "  --out FILE          circuit file (default run.out_dir/circuit-METHOD.h5)\n"
            "  -P section.key=v    override a deck key (run.log_every: an acdc progress line every\n"
            "                      N readers; prune.batch_size: examples per backend call)\n"
            "\n"
            "Cost: acdc evaluates L once per edge; a rank holding more than one batch prepares\n"
            "each batch again for every evaluation (clean and corrupted runs), so give it one:\n"
            "-P prune.batch_size=N with N >= examples / ranks when memory allows.\n"
            "\n"
            "The circuit file has the layout of those 'edgeprune prune' writes, with the\n"
            "attribute method = eap|eap-ig|acdc; edges/log_alpha holds the signed score\n"
            "(acdc: the 0/1 kept flag) and edges/value its absolute value; every node is kept.\n"
            "It carries the metrics of the circuit on data.val_split (when present);\n"
            "'edgeprune circuit' and 'edgeprune eval --circuit' read it like any circuit\n"
            "('edgeprune circuit --edge-sparsity' refuses it: rerun with --edge-sparsity).\n"
            "Under mpirun the batches are dealt to the ranks and the results summed.\n"
            "\n"
            "Exit status 0 on success; 2 on usage errors; 1 on an error in the deck, model or data\n"
            "(one-line reason on stderr).\n",
    .order = 12,
    .run = run,
};

static int parse_num(const char *flag, const char *v, double *out) {
  char *end = NULL;
  errno = 0;
  double x = strtod(v, &end);
  if (!end || end == v || *end || errno || !isfinite(x)) {
    cli_usage_error(&ep_cmd_baseline, "%s needs a number, got '%s'", flag, v);
    return 0;
  }
  *out = x;
  return 1;
}

static void make_dir(const char *dir) {
  if (mkdir(dir, 0777) != 0 && errno != EEXIST)
    ep_fatal("cannot create run.out_dir '%s': %s", dir, strerror(errno));
}

static int run(int argc, char **argv) {
  static const char *const flags[] = {"--method",   "--steps", "--tau", "--edge-sparsity",
                                      "--examples", "--out",   NULL};
  const char *val[6];
  ep_session s;
  int st = session_parse(&ep_cmd_baseline, argc, argv, flags, val, &s);
  if (st) return st;
  if (!val[0]) return cli_usage_error(&ep_cmd_baseline, "--method eap|eap-ig|acdc is required");
  const int mi = baseline_method_parse(val[0]);
  if (mi < 0)
    return cli_usage_error(&ep_cmd_baseline, "unknown method '%s' (one of eap, eap-ig, acdc)", val[0]);
  const ep_baseline_method method = (ep_baseline_method)mi;
  double steps = 5, tau = 0, sparsity = s.c.target_edge, examples = 0;
  if (val[1]) {
    if (method != EP_BASELINE_EAP_IG)
      return cli_usage_error(&ep_cmd_baseline, "--steps applies to eap-ig only");
    if (!parse_num("--steps", val[1], &steps)) return 2;
    if (!(steps >= 1 && steps <= 1e6 && steps == floor(steps)))
      return cli_usage_error(&ep_cmd_baseline, "--steps must be an integer M >= 1, got '%s'", val[1]);
  }
  if (val[2]) {
    if (method != EP_BASELINE_ACDC) return cli_usage_error(&ep_cmd_baseline, "--tau applies to acdc only");
    if (!parse_num("--tau", val[2], &tau)) return 2;
    if (!(tau >= 0)) return cli_usage_error(&ep_cmd_baseline, "--tau must be >= 0, got '%s'", val[2]);
  }
  if (val[3]) {
    if (method == EP_BASELINE_ACDC)
      return cli_usage_error(&ep_cmd_baseline, "--edge-sparsity applies to eap and eap-ig (acdc's circuit is "
                                               "set by --tau)");
    if (!parse_num("--edge-sparsity", val[3], &sparsity)) return 2;
    if (!(sparsity >= 0 && sparsity <= 1))
      return cli_usage_error(&ep_cmd_baseline, "--edge-sparsity must be in [0, 1], got '%s'", val[3]);
  } else if (method != EP_BASELINE_ACDC && !(sparsity >= 0 && sparsity <= 1)) {
    return cli_usage_error(
        &ep_cmd_baseline, "prune.target_edge_sparsity = %g is not a sparsity in [0, 1]: give --edge-sparsity",
        sparsity);
  }
  if (val[4]) {
    if (!parse_num("--examples", val[4], &examples)) return 2;
    if (!(examples >= 0 && examples == floor(examples)))
      return cli_usage_error(&ep_cmd_baseline, "--examples must be an integer >= 0, got '%s'", val[4]);
  }

  session_load_model(&s);
  ep_dataset train, vsplit;
  memset(&vsplit, 0, sizeof vsplit);
  session_read_split(&s, s.c.train_split, 0, &train);
  if (examples > 0 && (int64_t)examples < train.n) train.n = (int64_t)examples;
  int have_val = session_read_split(&s, s.c.val_split, 1, &vsplit);
  ep_graph g;
  graph_init(&g, &s.m.cfg, s.c.embedding_nodes);
  static const char *ablations[] = {"interchange", "zero", "mean"};
  static const char *losses[] = {"kl", "kl_sum", "position_kl", "mse"};
  ep_log("baseline %s on %s split '%s': %lld examples, batch %lld, %lld edges, %s ablation, loss %s",
         baseline_method_name(method), s.c.data_path, s.c.train_split, (long long)train.n,
         (long long)s.c.batch_size, (long long)g.n_edges, ablations[s.c.ablation], losses[s.c.loss]);

  ep_baseline_data bd;
  baseline_data_init(&bd, &s.c, &s.m, &g, &train, EP_PREC_F32);
  const double t0 = ep_time_now();
  ep_circuit circ;
  if (method == EP_BASELINE_ACDC) {
    uint8_t *kept = ep_malloc((size_t)g.n_edges + 1);
    double l = baseline_acdc(&bd, tau, (int)(s.c.log_every < 1000000 ? s.c.log_every : 1000000), kept);
    ep_log("acdc (tau %g): %lld loss evaluations in %.1f s; final training loss %.6g", tau,
           (long long)bd.evaluations, ep_time_now() - t0, l);
    baseline_circuit(&g, method, NULL, kept, 0, &circ);
    free(kept);
  } else {
    double *scores = ep_malloc((size_t)g.n_edges * sizeof *scores), ends[2];
    baseline_eap_scores(&bd, method == EP_BASELINE_EAP ? 1 : (int)steps, scores, ends);
    double sum = 0, amax = 0;
    for (int64_t e = 0; e < g.n_edges; e++) {
      sum += scores[e];
      amax = fabs(scores[e]) > amax ? fabs(scores[e]) : amax;
    }
    ep_log("%s: %.1f s; sum of scores %.6g, L(1) - L(0) = %.6g - %.6g = %.6g; largest |score| %.6g",
           baseline_method_name(method), ep_time_now() - t0, sum, ends[1], ends[0], ends[1] - ends[0], amax);
    baseline_circuit(&g, method, scores, NULL, sparsity, &circ);
    free(scores);
  }
  baseline_data_free(&bd);
  session_describe_circuit(&s, &circ);
  if (have_val) {
    /* metrics of the binary circuit on the validation split */
    prune_evaluate_circuit(&s.c, &s.m, &g, &vsplit, &circ);
  }
  if (ep_rank == 0) {
    char *path = NULL;
    if (val[5]) {
      path = ep_strdup(val[5]);
    } else {
      make_dir(s.c.out_dir);
      char name[64];
      snprintf(name, sizeof name, "circuit-%s.h5", baseline_method_name(method));
      path = ep_path_join(s.c.out_dir, name);
    }
    circuit_write(&circ, path);
    ep_log("wrote %s: %s, %lld of %lld edges kept (sparsity %.4f)", path, baseline_method_name(method),
           (long long)circ.n_kept_edges, (long long)g.n_edges, circ.edge_sparsity);
    free(path);
  }
  circuit_free(&circ);
  graph_free(&g);
  dataset_free(&train);
  if (have_val) dataset_free(&vsplit);
  session_free(&s);
  return 0;
}
