/* train.h — the Edge Pruning training run: deck keys, resolved configuration, the loop.
 *
 * `edgeprune prune DECK.yml` = prune_config_from_deck + model_load + dataset_read +
 * prune_train + circuit extraction/writing. The loop works on in-memory models and
 * datasets so tests can drive it directly. */
#pragma once

#include <stdint.h>

#include "edgeprune/backend.h"
#include "edgeprune/backend_select.h"
#include "edgeprune/circuit.h"
#include "edgeprune/dataset.h"
#include "edgeprune/deck.h"
#include "edgeprune/graph.h"
#include "edgeprune/model.h"
#include "edgeprune/prune.h"

/* The deck keys of prune / step-dump / eval (terminated by {NULL}). */
extern const ep_deck_key prune_deck_keys[];

typedef struct {
  const char *model_path, *data_path, *train_split, *val_split, *out_dir; /* point into the deck */
  int64_t steps, batch_size, lr_warmup, sparsity_warmup, seed;
  int64_t log_every, val_every, val_examples;
  double lr[4]; /* edge log_alpha, node log_alpha, edge lambda, node lambda */
  double start_edge, target_edge, start_node, target_node;
  double max_grad_norm;
  double init_mean, init_std; /* initial log_alpha ~ N(init_mean, init_std) */
  int node_loss, node_masks, embedding_nodes, log_schedule;
  ep_ablation ablation;
  ep_loss_kind loss;
  int64_t inject_nan_step; /* testing: the loss becomes NaN at this step (-1: never) */
  int64_t exit_after_step; /* testing: end the process after this step like a crash (-1: never) */
  double step_delay;       /* testing: seconds slept after every step (0: none) */
  int64_t checkpoint_every, checkpoint_keep;
  double max_wall_time; /* seconds, 0: no limit */
  int restart;          /* 1: continue from the newest valid checkpoint in out_dir/checkpoints */
  int stop_exit_status; /* exit status of `edgeprune prune` after a graceful stop (run.stop_exit_status) */
  uint64_t config_hash; /* deck_hash of the keys that change the result (not run.*, debug.*) */
  const ep_deck *deck;  /* borrowed; NULL in tests (no deck text in checkpoints) */
  ep_backend_choice backend; /* run.backend, run.precision, run.device_cache_mb */
} ep_prune_config;

/* Typed configuration from a loaded deck; cross-key checks (a target below its start,
 * a log schedule with a target >= 1) are fatal errors naming the keys and the deck. */
void prune_config_from_deck(ep_prune_config *c, const ep_deck *d, const char *deck_path);
/* Defaults of every key (no deck file): for tests. */
void prune_config_defaults(ep_prune_config *c);

/* Check a dataset against a model: sequences no longer than the model's context, token
 * ids in range, loss positions inside each example. Fatal, naming file and split. */
void prune_check_dataset(const ep_dataset *d, const ep_model_config *cfg, const char *file,
                         const char *split);
/* The same checks on a piece of a split whose row 0 is example `first` of the split
 * (messages name the example's index in the split). */
void prune_check_rows(const ep_dataset *d, int64_t first, const ep_model_config *cfg, const char *file,
                      const char *split);

/* Per-position mean over `d` of the plain model's writer outputs on the corrupted input
 * (positions past an example's length are not counted): out [W, T, D]. */
void prune_mean_writers(const ep_backend_ops *be, void *ws, const ep_graph *g, const ep_model_config *cfg,
                        const ep_dataset *d, int64_t batch, float *out);
/* Its two halves, for a split read in pieces or spread over ranks: add d's writer outputs
 * into sum [W, T, D] and the examples reaching each position into cnt [T]; then
 * out = sum / cnt (0 where no example reaches a position). */
void prune_mean_writers_accumulate(const ep_backend_ops *be, void *ws, const ep_graph *g,
                                   const ep_model_config *cfg, const ep_dataset *d, int64_t batch,
                                   double *sum, int64_t *cnt);
void prune_mean_writers_finish(const ep_graph *g, const ep_model_config *cfg, int T, const double *sum,
                               const int64_t *cnt, float *out);

/* Gather rows idx[0..n) of d into a contiguous batch (buffers owned by bb), padded to its
 * longest example: b.T = the largest length among the rows (at most d->max_len). */
typedef struct {
  int32_t *clean, *corrupted, *length, *loss_start, *loss_end, *target, *distractor;
  ep_batch b;
} ep_batch_buf;
void prune_batch_gather(ep_batch_buf *bb, const ep_dataset *d, const int64_t *idx, int n);
void prune_batch_free(ep_batch_buf *bb);

/* The seeded permutation of example indices for an epoch: perm[n]. */
void prune_epoch_order(uint64_t seed, int64_t epoch, int64_t n, int64_t *perm);

/* Deterministic (test-time) masks used for validation: z = clamp(sigmoid(la)(r-l)+l, 0, 1). */
void prune_expected_masks(const double *log_alpha, int64_t n, double *z);

typedef struct {
  int64_t steps_done;
  double last_faith, last_edge_sparsity, last_node_sparsity;
  double val_kl;      /* last validation loss with deterministic masks (NAN if none) */
  int stopped_nan;    /* 1: stopped on a non-finite loss */
  int stopped_early;  /* an ep_stop_reason: stopped by signal, stop file or wall time (checkpoint written) */
  int64_t start_step; /* step the run started from (> 0 after a restart) */
} ep_train_result;

/* The training loop. p must be initialised (prune_params_init) for the graph of m with
 * the config's embedding nodes; on return it holds the trained values. val may be NULL.
 * Under MPI: restart from out_dir/checkpoints (restart = 1), a checkpoint every
 * checkpoint_every steps (rotation keeps checkpoint_keep), and the stopper (signal, stop
 * file, run.max_wall_time), which ends the loop after a checkpoint (res->stopped_early).
 * Returns 0, or 1 when the loss became non-finite (message printed, p left at the last
 * finite step, nothing written). */
int prune_train(const ep_prune_config *c, const ep_model *m, const ep_graph *g, const ep_dataset *train,
                const ep_dataset *val, ep_mask_params *p, ep_train_result *res);
/* The same loop with the training split left in its file (`edgeprune prune`): every
 * rank reads only its shard of each step's batch, collectively (dataset.h's open split);
 * one distributed pass at the start checks the split against the model and, for mean
 * ablation, forms the mean. Collective over MPI_COMM_WORLD. Same results as prune_train
 * on the split read into memory (on one rank, bit for bit). */
int prune_train_file(const ep_prune_config *c, const ep_model *m, const ep_graph *g, ep_dataset_file *train,
                     const ep_dataset *val, ep_mask_params *p, ep_train_result *res);

/* Faithfulness loss of fixed masks (z_node NULL when no node masks) over a dataset, in
 * batches, with the deck's loss. out_masked/out_full [N_pos, Vo] (optional) receive the
 * outputs at every loss position in dataset order. */
double prune_eval_masks(const ep_prune_config *c, const ep_model *m, const ep_graph *g, const ep_dataset *d,
                        const double *z_edge, const double *z_node, float *out_masked, float *out_full);

/* Evaluation of the full model and of fixed masks side by side on a dataset (at most
 * val_examples rows when > 0): the deck's loss (0 for the full model), logit difference
 * target - distractor and accuracy (argmax = target) at the last loss position where
 * the dataset has targets, exact match (argmax = the full model's argmax, over every
 * loss position; logits only) and the task metric of tasks.h when the task has one. */
#define EP_EVAL_MAX_METRICS 8
typedef struct {
  int n;
  const char *names[EP_EVAL_MAX_METRICS];
  double full[EP_EVAL_MAX_METRICS], circuit[EP_EVAL_MAX_METRICS];
} ep_eval_report;
void prune_evaluate(const ep_prune_config *c, const ep_model *m, const ep_graph *g, const ep_dataset *d,
                    const double *z_edge, const double *z_node, ep_eval_report *r);
/* Metrics of a binary circuit (its kept edges and nodes as masks 0/1) next to the full
 * model on d: evaluated with prune_evaluate, stored in the circuit with
 * circuit_set_metrics and logged one line per metric. */
void prune_evaluate_circuit(const ep_prune_config *c, const ep_model *m, const ep_graph *g, const ep_dataset *d,
                            ep_circuit *circ);
