/* test_tracr_recover.c — Edge Pruning recovers the ground-truth circuits of the Tracr
 * models exactly.
 *
 * Usage: test_tracr_recover TASK DECK.yml TRUTH.json EDGEPRUNE_BIN SCRATCH_DIR SEED...
 *   TASK is reverse or xproportion; DECK is the shipped deck (inputs/tracr-TASK.yml),
 *   whose paths are relative to the working directory (the repository root); TRUTH is
 *   tests/data/tracr/TASK-circuit.json, written by tracr_truth.
 *
 * The training and validation splits are made with `edgeprune dataset --task TASK` in
 * SCRATCH_DIR (the commands in the deck's header). For every seed the deck is loaded
 * with -P overrides of data.path, prune.seed and run.out_dir only, so the hyper-parameters
 * are the shipped ones; the masks are trained (prune_train), the circuit is extracted as
 * `edgeprune prune` does (the masks' own sparsity, circuit.h), and:
 *   - its kept edges are exactly the ground truth's;
 *   - on every input of the task (tracr_common.h) the circuit alone, zero-ablated,
 *     does the task: reverse: argmax right at every non-BOS position; xproportion:
 *     output within 1e-5 of the running fraction of x (the full model's own accuracy);
 *     and its outputs are within 1e-4 of the full model's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgeprune/circuit.h"
#include "edgeprune/core.h"
#include "edgeprune/dataset.h"
#include "edgeprune/deck.h"
#include "edgeprune/train.h"
#include "test_util.h"
#include "tracr_common.h"

/* The deck header's dataset commands, into SCRATCH/tracr-TASK.h5. */
static void make_data(const char *bin, const char *task, const char *path) {
  static const struct {
    const char *split;
    int n, seed;
  } splits[] = {{"train", 1000, 1}, {"validation", 100, 2}};
  for (int i = 0; i < 2; i++) {
    char cmd[2048], out[4096];
    snprintf(cmd, sizeof cmd, "'%s' dataset --task %s --n %d --seed %d --split %s --out '%s' 2>&1", bin, task,
             splits[i].n, splits[i].seed, splits[i].split, path);
    int rc = t_run_capture(cmd, out, sizeof out);
    EP_CHECK(rc == 0, "edgeprune dataset exited %d: %s", rc, out);
  }
}

static void print_diff(const ep_graph *g, const uint8_t *kept, const uint8_t *truth) {
  for (int64_t e = 0; e < g->n_edges; e++) {
    if (kept[e] == truth[e]) continue;
    int w, r;
    graph_edge_ends(g, e, &w, &r);
    fprintf(stderr, "  %s %s -> %s\n", kept[e] ? "extra:  " : "missing:", g->writers[w].name, g->readers[r].name);
  }
}

int main(int argc, char **argv) {
  if (argc < 7) {
    fprintf(stderr, "usage: %s TASK DECK.yml TRUTH.json EDGEPRUNE_BIN SCRATCH_DIR SEED...\n", argv[0]);
    return 2;
  }
  const char *task = argv[1], *deck_path = argv[2], *truth_path = argv[3], *bin = argv[4], *scratch = argv[5];
  char data_path[1024];
  snprintf(data_path, sizeof data_path, "%s/tracr-%s.h5", scratch, task);
  remove(data_path);
  make_data(bin, task, data_path);

  for (int a = 6; a < argc; a++) {
    const char *seed = argv[a];
    char o_data[1100], o_seed[64], o_out[1100];
    snprintf(o_data, sizeof o_data, "data.path=%s", data_path);
    snprintf(o_seed, sizeof o_seed, "prune.seed=%s", seed);
    snprintf(o_out, sizeof o_out, "run.out_dir=%s/out-%s-%s", scratch, task, seed);
    char *ov[3] = {o_data, o_seed, o_out};
    ep_deck *deck = deck_load(deck_path, prune_deck_keys, 3, ov);
    ep_prune_config c;
    prune_config_from_deck(&c, deck, deck_path);
    T_CHECK(c.ablation == EP_ABLATE_ZERO && c.embedding_nodes, "%s: the deck must use zero ablation and embedding nodes",
            deck_path);

    tracr_task t; /* every input, zero ablation, single precision as in training */
    tracr_task_init(&t, task, c.model_path, EP_PREC_F32);
    const ep_graph *g = &t.g;
    uint8_t *truth = ep_malloc((size_t)g->n_edges);
    int64_t n_truth = tracr_read_edges_json(g, truth_path, truth);

    ep_dataset train, val;
    dataset_read(&train, c.data_path, c.train_split);
    dataset_read(&val, c.data_path, c.val_split);
    prune_check_dataset(&train, &t.m.cfg, c.data_path, c.train_split);
    ep_mask_params p;
    prune_params_init(&p, g->n_edges, c.node_masks ? g->n_writers : 0, (uint64_t)c.seed);
    ep_train_result res;
    double t0 = ep_time_now();
    int st = prune_train(&c, &t.m, g, &train, &val, &p, &res);
    double secs = ep_time_now() - t0;
    T_CHECK(st == 0 && res.steps_done == c.steps, "%s seed %s: training stopped after %lld of %lld steps", task, seed,
            (long long)res.steps_done, (long long)c.steps);

    float *la_e = ep_malloc((size_t)g->n_edges * sizeof *la_e);
    float *la_n = ep_malloc((size_t)(g->n_writers + 1) * sizeof *la_n);
    for (int64_t e = 0; e < g->n_edges; e++) la_e[e] = (float)p.la_edge[e];
    for (int w = 0; w < p.n_nodes; w++) la_n[w] = (float)p.la_node[w];
    ep_circuit circ;
    extract_circuit(g, la_e, c.node_masks ? la_n : NULL, NULL, &circ);
    int64_t n_diff = 0;
    for (int64_t e = 0; e < g->n_edges; e++) n_diff += circ.edge_kept[e] != truth[e];

    double *z = ep_malloc((size_t)g->n_edges * sizeof *z);
    for (int64_t e = 0; e < g->n_edges; e++) z[e] = circ.edge_kept[e];
    float *out = ep_malloc((size_t)t.P * t.Vo * sizeof *out);
    double dev = tracr_task_run(&t, z, out);
    int wrong = tracr_task_wrong(&t, out, 1e-5);

    printf("%s seed %s: %lld steps in %.1f s; circuit %lld edges (ground truth %lld), %lld differ; on all %d "
           "inputs: %d wrong, max |circuit - full| = %.3g; last faithfulness loss %.3g\n",
           task, seed, (long long)res.steps_done, secs, (long long)circ.n_kept_edges, (long long)n_truth,
           (long long)n_diff, t.B, wrong, dev, res.last_faith);
    T_CHECK(n_diff == 0, "%s seed %s: the circuit differs from the ground truth in %lld edges", task, seed,
            (long long)n_diff);
    if (n_diff) print_diff(g, circ.edge_kept, truth);
    T_CHECK(wrong == 0, "%s seed %s: the circuit gets %d of %d inputs wrong", task, seed, wrong, t.B);
    T_CHECK(dev <= 1e-4, "%s seed %s: the circuit's outputs are up to %.3g from the full model's", task, seed, dev);

    free(z);
    free(out);
    free(la_e);
    free(la_n);
    circuit_free(&circ);
    prune_params_free(&p);
    dataset_free(&train);
    dataset_free(&val);
    free(truth);
    tracr_task_free(&t);
    deck_free(deck);
  }
  remove(data_path);
  return t_done();
}
