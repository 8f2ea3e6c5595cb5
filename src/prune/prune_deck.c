/* prune_deck.c — the input-deck keys of prune / step-dump / eval and the typed config.
 * Defaults are the reference GPT-2 settings of DESIGN section 1. */
#include <math.h>
#include <string.h>

#include "edgeprune/core.h"
#include "edgeprune/train.h"

#define NO_RANGE 1, 0
#define BIG 1e18

const ep_deck_key prune_deck_keys[] = {
    {"model.path", EP_DECK_STRING, NULL, NO_RANGE, NULL,
     "model: edgeprune model file (.h5), Hugging Face folder or Tracr config"},
    {"data.path", EP_DECK_STRING, NULL, NO_RANGE, NULL, "dataset file (.h5) from `edgeprune dataset`"},
    {"data.train_split", EP_DECK_STRING, "train", NO_RANGE, NULL, "split used for training"},
    {"data.val_split", EP_DECK_STRING, "validation", NO_RANGE, NULL,
     "split used for validation and eval (\"\" for none in prune)"},
    {"prune.steps", EP_DECK_INT, "3000", 1, BIG, NULL, "optimizer steps"},
    {"prune.batch_size", EP_DECK_INT, "32", 1, 1 << 20, NULL, "examples per step (global batch)"},
    {"prune.edge_lr", EP_DECK_FLOAT, "0.8", 0, BIG, NULL, "learning rate of the edge log_alphas"},
    {"prune.node_lr", EP_DECK_FLOAT, "0.8", 0, BIG, NULL, "learning rate of the node log_alphas"},
    {"prune.edge_lambda_lr", EP_DECK_FLOAT, "0.8", 0, BIG, NULL,
     "learning rate of the edge lambdas (ascent)"},
    {"prune.node_lambda_lr", EP_DECK_FLOAT, "0.8", 0, BIG, NULL,
     "learning rate of the node lambdas (ascent)"},
    {"prune.lr_warmup", EP_DECK_INT, "200", 0, BIG, NULL, "linear learning-rate warmup steps"},
    {"prune.sparsity_warmup", EP_DECK_INT, "2500", 0, BIG, NULL, "steps over which targets ramp from start"},
    {"prune.start_edge_sparsity", EP_DECK_FLOAT, "0.0", 0, 1, NULL, "edge sparsity target at step 0"},
    {"prune.target_edge_sparsity", EP_DECK_FLOAT, "0.98", 0, 2, NULL,
     "final edge sparsity target (above 1 pushes to maximal sparsity)"},
    {"prune.start_node_sparsity", EP_DECK_FLOAT, "0.0", 0, 1, NULL, "node sparsity target at step 0"},
    {"prune.target_node_sparsity", EP_DECK_FLOAT, "0.72", 0, 2, NULL, "final node sparsity target"},
    {"prune.node_loss", EP_DECK_BOOL, "true", NO_RANGE, NULL,
     "node sparsity regulariser (off: node lambdas stay 0, node masks still trained)"},
    {"prune.node_masks", EP_DECK_BOOL, "true", NO_RANGE, NULL, "train writer (node) masks as well as edges"},
    {"prune.embedding_nodes", EP_DECK_BOOL, "true", NO_RANGE, NULL, "tok/pos embeddings are masked writers"},
    {"prune.ablation", EP_DECK_CHOICE, "interchange", NO_RANGE, "interchange|zero|mean",
     "what a pruned edge carries: the corrupted run, zero, or the per-position mean of the corrupted run "
     "over the training split"},
    {"prune.loss", EP_DECK_CHOICE, "kl", NO_RANGE, "kl|kl_sum|position_kl|mse", "faithfulness loss"},
    {"prune.schedule", EP_DECK_CHOICE, "linear", NO_RANGE, "linear|log",
     "sparsity target ramp: linear, or log-linear in (1 - t)"},
    {"prune.max_grad_norm", EP_DECK_FLOAT, "1.0", 0, BIG, NULL, "global gradient-norm clip (0: off)"},
    {"prune.init_log_alpha_mean", EP_DECK_FLOAT, "10", -1000, 1000, NULL,
     "mean of the initial mask log_alphas (10: masks start almost surely 1, as in the reference)"},
    {"prune.init_log_alpha_std", EP_DECK_FLOAT, "0.01", 0, 1000, NULL,
     "standard deviation of the initial mask log_alphas"},
    {"prune.seed", EP_DECK_INT, "0", 0, 9.007199254740992e15, NULL,
     "seed of the mask noise, log_alpha init and data order"},
    {"run.out_dir", EP_DECK_STRING, "out", NO_RANGE, NULL, "output folder (circuit.h5)"},
    {"run.log_every", EP_DECK_INT, "10", 1, BIG, NULL, "progress line every N steps"},
    {"run.val_every", EP_DECK_INT, "500", 0, BIG, NULL, "validation every N steps (0: only at the end)"},
    {"run.val_examples", EP_DECK_INT, "256", 0, BIG, NULL, "validation examples used (0: all)"},
    {"run.checkpoint_every", EP_DECK_INT, "500", 0, BIG, NULL,
     "write run.out_dir/checkpoints/ckpt-STEP.h5 every N steps and after the last (0: only when stopped "
     "early by a signal, stop file or wall time)"},
    {"run.checkpoint_keep", EP_DECK_INT, "2", 1, 1000, NULL, "checkpoints kept (older ones are deleted)"},
    {"run.max_wall_time", EP_DECK_FLOAT, "0", 0, BIG, NULL,
     "seconds: checkpoint and stop before this much wall time has passed (0: no limit)"},
    {"run.restart", EP_DECK_CHOICE, "auto", NO_RANGE, "auto|never",
     "auto: continue from the newest valid checkpoint in run.out_dir/checkpoints (refused when written "
     "by another deck or rank grid); never: start over, moving existing checkpoints aside to "
     "checkpoints.old-TIME"},
    {"run.stop_exit_status", EP_DECK_INT, "0", 0, 125, NULL,
     "exit status after a graceful stop (signal, stop file, wall time) once its checkpoint is written; "
     "job scripts set 3 to tell 'stopped, resubmit' from 'finished' (0)"},
    {"run.backend", EP_DECK_CHOICE, "auto", NO_RANGE, "auto|cpu|cuda",
     "engine backend: cuda (one GPU per MPI rank, by node-local rank), cpu, or auto (cuda when a device can "
     "be used, else cpu)"},
    {"run.precision", EP_DECK_CHOICE, "fp32", NO_RANGE, "fp32|tf32|bf16",
     "CUDA backend arithmetic: fp32, TF32 tensor-core GEMMs, or bf16 difference stack with fp32 accumulation "
     "(masks, norms and losses stay fp32)"},
    {"run.device_cache_mb", EP_DECK_FLOAT, "4096", 0, BIG, NULL,
     "CUDA backend: device memory (MiB) for the clean targets and corrupted writer outputs of examples seen "
     "before, so repeated examples skip both plain runs (0: recompute every step; training uses it only when "
     "prune.steps goes past one epoch, validation never)"},
    {"debug.exit_after_step", EP_DECK_INT, "-1", -1, BIG, NULL,
     "testing only: end the process after this step as a crash would (-1: never)"},
    {"debug.inject_nan_step", EP_DECK_INT, "-1", -1, BIG, NULL,
     "testing only: make the loss NaN at this step (-1: never)"},
    {"debug.step_delay", EP_DECK_FLOAT, "0", 0, 60, NULL,
     "testing only: seconds to sleep after every step (to catch a run mid-way)"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};

static void fill(ep_prune_config *c, const ep_deck *d) {
  c->model_path = deck_string(d, "model.path");
  c->data_path = deck_string(d, "data.path");
  c->train_split = deck_string(d, "data.train_split");
  c->val_split = deck_string(d, "data.val_split");
  c->out_dir = deck_string(d, "run.out_dir");
  c->steps = deck_int(d, "prune.steps");
  c->batch_size = deck_int(d, "prune.batch_size");
  c->lr[0] = deck_float(d, "prune.edge_lr");
  c->lr[1] = deck_float(d, "prune.node_lr");
  c->lr[2] = deck_float(d, "prune.edge_lambda_lr");
  c->lr[3] = deck_float(d, "prune.node_lambda_lr");
  c->lr_warmup = deck_int(d, "prune.lr_warmup");
  c->sparsity_warmup = deck_int(d, "prune.sparsity_warmup");
  c->start_edge = deck_float(d, "prune.start_edge_sparsity");
  c->target_edge = deck_float(d, "prune.target_edge_sparsity");
  c->start_node = deck_float(d, "prune.start_node_sparsity");
  c->target_node = deck_float(d, "prune.target_node_sparsity");
  c->node_loss = deck_bool(d, "prune.node_loss");
  c->node_masks = deck_bool(d, "prune.node_masks");
  c->embedding_nodes = deck_bool(d, "prune.embedding_nodes");
  const char *a = deck_string(d, "prune.ablation");
  c->ablation = !strcmp(a, "zero")   ? EP_ABLATE_ZERO
                : !strcmp(a, "mean") ? EP_ABLATE_MEAN
                                     : EP_ABLATE_INTERCHANGE;
  const char *l = deck_string(d, "prune.loss");
  c->loss = !strcmp(l, "kl_sum")        ? EP_LOSS_KL_SUM
            : !strcmp(l, "position_kl") ? EP_LOSS_POSITION_KL
            : !strcmp(l, "mse")         ? EP_LOSS_MSE
                                        : EP_LOSS_KL;
  c->log_schedule = !strcmp(deck_string(d, "prune.schedule"), "log");
  c->max_grad_norm = deck_float(d, "prune.max_grad_norm");
  c->init_mean = deck_float(d, "prune.init_log_alpha_mean");
  c->init_std = deck_float(d, "prune.init_log_alpha_std");
  c->seed = deck_int(d, "prune.seed");
  c->log_every = deck_int(d, "run.log_every");
  c->val_every = deck_int(d, "run.val_every");
  c->val_examples = deck_int(d, "run.val_examples");
  c->inject_nan_step = deck_int(d, "debug.inject_nan_step");
  c->exit_after_step = deck_int(d, "debug.exit_after_step");
  c->checkpoint_every = deck_int(d, "run.checkpoint_every");
  c->checkpoint_keep = deck_int(d, "run.checkpoint_keep");
  c->max_wall_time = deck_float(d, "run.max_wall_time");
  c->restart = !strcmp(deck_string(d, "run.restart"), "auto");
  const char *bk = deck_string(d, "run.backend"), *pr = deck_string(d, "run.precision");
  c->backend.kind = !strcmp(bk, "cpu") ? EP_BACKEND_CPU : !strcmp(bk, "cuda") ? EP_BACKEND_CUDA : EP_BACKEND_AUTO;
  c->backend.compute = !strcmp(pr, "tf32") ? EP_COMPUTE_TF32 : !strcmp(pr, "bf16") ? EP_COMPUTE_BF16 : EP_COMPUTE_FP32;
  c->backend.cache_mb = deck_float(d, "run.device_cache_mb");
  c->stop_exit_status = (int)deck_int(d, "run.stop_exit_status");
  c->step_delay = deck_float(d, "debug.step_delay");
  /* run.* (output, logging, checkpoint cadence) and debug.* do not change the result */
  static const char *const exclude[] = {"run.", "debug.", NULL};
  c->config_hash = deck_hash(d, exclude);
  c->deck = d;
}

void prune_config_from_deck(ep_prune_config *c, const ep_deck *d, const char *deck_path) {
  memset(c, 0, sizeof *c);
  fill(c, d);
  const char *f = deck_path ? deck_path : "(deck)";
  if (c->target_edge < c->start_edge)
    ep_fatal("%s: prune.target_edge_sparsity = %g is below prune.start_edge_sparsity = %g", f, c->target_edge,
             c->start_edge);
  if (c->target_node < c->start_node)
    ep_fatal("%s: prune.target_node_sparsity = %g is below prune.start_node_sparsity = %g", f, c->target_node,
             c->start_node);
  if (c->log_schedule && (c->target_edge >= 1 || c->target_node >= 1))
    ep_fatal(
        "%s: prune.schedule = log needs prune.target_edge_sparsity and prune.target_node_sparsity below 1 "
        "(got %g and %g): log-linear in (1 - t) is undefined at t >= 1",
        f, c->target_edge, c->target_node);
  if (c->lr_warmup > c->steps)
    ep_fatal("%s: prune.lr_warmup = %lld exceeds prune.steps = %lld", f, (long long)c->lr_warmup,
             (long long)c->steps);
}

void prune_config_defaults(ep_prune_config *c) {
  memset(c, 0, sizeof *c);
  c->model_path = c->data_path = "";
  c->train_split = "train";
  c->val_split = "validation";
  c->out_dir = "out";
  c->steps = 3000;
  c->batch_size = 32;
  for (int i = 0; i < 4; i++)
    c->lr[i] = 0.8;
  c->lr_warmup = 200;
  c->sparsity_warmup = 2500;
  c->start_edge = 0;
  c->target_edge = 0.98;
  c->start_node = 0;
  c->target_node = 0.72;
  c->node_loss = c->node_masks = c->embedding_nodes = 1;
  c->ablation = EP_ABLATE_INTERCHANGE;
  c->loss = EP_LOSS_KL;
  c->max_grad_norm = 1.0;
  c->init_mean = EP_HC_INIT_MEAN;
  c->init_std = EP_HC_INIT_STD;
  c->log_every = 10;
  c->val_every = 500;
  c->val_examples = 256;
  c->inject_nan_step = -1;
  c->exit_after_step = -1;
  c->checkpoint_every = 0;
  c->checkpoint_keep = 2;
  c->restart = 0;
  /* tests drive the reference backend unless they ask for another */
  c->backend = (ep_backend_choice){EP_BACKEND_CPU, EP_COMPUTE_FP32, 0};
}
