/* cmd_prune.c — `edgeprune prune DECK.yml`: an Edge Pruning run. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "edgeprune/circuit.h"
#include "edgeprune/cli.h"
#include "edgeprune/core.h"
#include "edgeprune/stopper.h"
#include "prune/session.h"

static int run(int argc, char **argv);

const ep_command ep_cmd_prune = {
    .name = "prune",
    .summary = "find a circuit with Edge Pruning (MPI-aware)",
    .help = "usage: edgeprune prune DECK.yml [-P section.key=value ...]\n"
            "\n"
            "Trains hard-concrete masks on every edge (and node) of the model's computation\n"
            "graph to keep the masked model faithful (KL to the full model) at a target\n"
            "sparsity, then writes run.out_dir/circuit.h5 (edges, nodes, sparsity, metrics on\n"
            "the validation split, the resolved deck). Under mpirun the batch is split over the\n"
            "ranks (data parallel); each rank reads only its rows of every batch. Deck keys:\n"
            "`edgeprune prune --keys`.\n"
            "\n"
            "Checkpoints: run.out_dir/checkpoints/ckpt-STEP.h5 every run.checkpoint_every steps\n"
            "and at the end. Running the same command again continues from the newest valid\n"
            "one (a damaged one is reported and the previous one used); a checkpoint of another\n"
            "deck or rank grid is refused unless -P run.restart=never (start over; the old\n"
            "checkpoints are moved aside). SIGTERM or SIGUSR1 (Slurm --signal), a file\n"
            "run.out_dir/stop, or run.max_wall_time ends the run after the current step with\n"
            "a checkpoint and the line \"stopped at step N ...; resubmit to continue\".\n"
            "\n"
            "Exit status: 0 when the run finished (circuit written); run.stop_exit_status\n"
            "(default 0, the job scripts use 3) after a graceful stop with its checkpoint\n"
            "written; 1 when the loss becomes non-finite (no output written) or on an error\n"
            "in the deck, model or data (one-line reason); 2 on usage errors.\n",
    .order = 10,
    .run = run,
};

static void make_dir(const char *dir) {
  if (mkdir(dir, 0777) != 0 && errno != EEXIST)
    ep_fatal("cannot create run.out_dir '%s': %s", dir, strerror(errno));
}

/* srun without an MPI plugin that matches the MPI library starts N independent 1-rank
 * jobs, which would all train and write the same files: refuse that. */
static void check_launch(void) {
  const char *tasks = getenv("SLURM_STEP_NUM_TASKS");
  if (tasks && atoi(tasks) > 1 && ep_size == 1)
    ep_fatal("srun started %s tasks, but each is a 1-rank MPI job: launch with srun --mpi=pmix (or the MPI "
             "plugin your site uses) or with mpirun, else %s copies of the run would write the same files",
             tasks, tasks);
}

static int run(int argc, char **argv) {
  check_launch();
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--keys")) {
      if (ep_rank == 0) deck_print_keys(prune_deck_keys, stdout);
      return 0;
    }
  ep_session s;
  int st = session_parse(&ep_cmd_prune, argc, argv, NULL, NULL, &s);
  if (st) return st;
  session_load_model(&s);
  ep_dataset val;
  memset(&val, 0, sizeof val);
  /* the training split stays in its file: each rank reads its shard of every batch */
  ep_dataset_file *train = dataset_file_open(s.c.data_path, s.c.train_split, MPI_COMM_WORLD);
  int have_val = session_read_split(&s, s.c.val_split, 1, &val);
  ep_graph g;
  graph_init(&g, &s.m.cfg, s.c.embedding_nodes);
  ep_mask_params p;
  prune_params_init_normal(&p, g.n_edges, s.c.node_masks ? g.n_writers : 0, (uint64_t)s.c.seed,
                           (float)s.c.init_mean, (float)s.c.init_std);
  ep_train_result res;
  st = prune_train_file(&s.c, &s.m, &g, train, have_val ? &val : NULL, &p, &res);
  dataset_file_close(train);
  if (st == 0 && !res.stopped_early) {
    float *la_e = ep_malloc((size_t)g.n_edges * sizeof *la_e);
    float *la_n = ep_malloc((size_t)(g.n_writers + 1) * sizeof *la_n);
    for (int64_t e = 0; e < g.n_edges; e++)
      la_e[e] = (float)p.la_edge[e];
    for (int w = 0; w < p.n_nodes; w++)
      la_n[w] = (float)p.la_node[w];
    ep_circuit circ;
    extract_circuit(&g, la_e, p.n_nodes ? la_n : NULL, NULL, &circ);
    session_describe_circuit(&s, &circ);
    if (have_val) {
      /* metrics of the binary circuit on the validation split */
      prune_evaluate_circuit(&s.c, &s.m, &g, &val, &circ);
    }
    if (ep_rank == 0) {
      make_dir(s.c.out_dir);
      char *path = ep_path_join(s.c.out_dir, "circuit.h5");
      circuit_write(&circ, path);
      ep_log("wrote %s: %lld of %lld edges kept (sparsity %.4f), %d of %d nodes", path,
             (long long)circ.n_kept_edges, (long long)g.n_edges, circ.edge_sparsity, circ.n_kept_nodes,
             g.n_writers);
      free(path);
    }
    circuit_free(&circ);
    free(la_e);
    free(la_n);
  }
  if (st == 0 && res.stopped_early) {
    ep_log("stopped at step %lld of %lld (%s), checkpoint written; resubmit to continue (exit status %d)",
           (long long)res.steps_done, (long long)s.c.steps,
           stopper_reason_name((ep_stop_reason)res.stopped_early), s.c.stop_exit_status);
    st = s.c.stop_exit_status;
  }
  prune_params_free(&p);
  graph_free(&g);
  if (have_val) dataset_free(&val);
  session_free(&s);
  return st;
}
