/* cmd_eval.c — `edgeprune eval DECK.yml [--circuit CIRCUIT.h5]`: metrics of the full
 * model and of a circuit side by side on the deck's validation split. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgeprune/circuit.h"
#include "edgeprune/cli.h"
#include "edgeprune/core.h"
#include "prune/session.h"

static int run(int argc, char **argv);

const ep_command ep_cmd_eval = {
    .name = "eval",
    .summary = "metrics of the full model and of a circuit",
    .help =
        "usage: edgeprune eval DECK.yml [--circuit CIRCUIT.h5] [--split NAME] [-P section.key=value ...]\n"
        "\n"
        "Evaluates on data.val_split (or --split; at most run.val_examples examples, 0 = all)\n"
        "the full model and the circuit (binary edge and node masks from CIRCUIT.h5; without\n"
        "--circuit every edge is kept). The graph (embedding nodes) comes from the circuit\n"
        "file, else from prune.embedding_nodes; the ablation and loss from the deck.\n"
        "Metrics: the deck's loss (KL by default) to the full model, logit difference\n"
        "(target - distractor) and accuracy (argmax = target) at the last loss position,\n"
        "exact match (argmax = the full model's argmax), and the task metric of the\n"
        "dataset's task when it has one. Prints one line per metric: name, full, circuit.\n",
    .order = 15,
    .run = run,
};

static int run(int argc, char **argv) {
  static const char *const flags[] = {"--circuit", "--split", NULL};
  const char *val[2];
  ep_session s;
  int st = session_parse(&ep_cmd_eval, argc, argv, flags, val, &s);
  if (st) return st;
  ep_circuit circ;
  memset(&circ, 0, sizeof circ);
  if (val[0]) {
    circuit_read(&circ, val[0]);
    s.c.embedding_nodes = circ.embedding_nodes;
  }
  session_load_model(&s);
  const char *split = val[1] ? val[1] : s.c.val_split;
  if (!split[0])
    return cli_usage_error(&ep_cmd_eval,
                           "no split to evaluate: data.val_split is empty and --split not given");
  ep_dataset d;
  session_read_split(&s, split, 0, &d);
  ep_graph g;
  graph_init(&g, &s.m.cfg, s.c.embedding_nodes);
  double *ze = ep_malloc((size_t)g.n_edges * sizeof *ze), *zn = ep_malloc((size_t)g.n_writers * sizeof *zn);
  for (int64_t e = 0; e < g.n_edges; e++)
    ze[e] = 1;
  for (int w = 0; w < g.n_writers; w++)
    zn[w] = 1;
  if (val[0]) {
    uint8_t *ek = ep_malloc((size_t)g.n_edges), *nk = ep_malloc((size_t)g.n_writers);
    circuit_graph_masks(&circ, &g, val[0], ek, nk);
    for (int64_t e = 0; e < g.n_edges; e++)
      ze[e] = ek[e];
    for (int w = 0; w < g.n_writers; w++)
      zn[w] = nk[w];
    free(ek);
    free(nk);
  }
  ep_prune_config c = s.c;
  c.node_masks = 1;
  ep_eval_report r;
  prune_evaluate(&c, &s.m, &g, &d, ze, zn, &r);
  if (ep_rank == 0) {
    int64_t kept = 0;
    for (int64_t e = 0; e < g.n_edges; e++)
      kept += ze[e] != 0;
    printf("# eval on %s split '%s' (%lld examples); circuit: %s, %lld of %lld edges\n", s.c.data_path, split,
           (long long)(c.val_examples > 0 && d.n > c.val_examples ? c.val_examples : d.n),
           val[0] ? val[0] : "(full model)", (long long)kept, (long long)g.n_edges);
    printf("%-22s %14s %14s\n", "metric", "full", "circuit");
    for (int k = 0; k < r.n; k++)
      printf("%-22s %14.6f %14.6f\n", r.names[k], r.full[k], r.circuit[k]);
    fflush(stdout);
  }
  free(ze);
  free(zn);
  graph_free(&g);
  dataset_free(&d);
  if (val[0]) circuit_free(&circ);
  session_free(&s);
  return 0;
}
