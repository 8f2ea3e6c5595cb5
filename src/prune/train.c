/* train.c — the Edge Pruning training loop (train.h).
 *
 * Data parallel over MPI ranks when more than one is running: every rank takes a
 * contiguous shard of each global batch (from a file source it reads only those rows,
 * collectively; train_file.h), the faithfulness loss and d/dz are summed over
 * the ranks weighted by shard size, and every rank then applies the same regulariser
 * and AdamW update, so the parameters stay identical everywhere. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>
#include <sys/stat.h>

#include "edgeprune/checkpoint.h"
#include "edgeprune/core.h"
#include "edgeprune/grid.h"
#include "edgeprune/hardconcrete.h"
#include "edgeprune/rng.h"
#include "edgeprune/stopper.h"
#include "edgeprune/train.h"
#include "prune/train_file.h"

void prune_check_dataset(const ep_dataset *d, const ep_model_config *cfg, const char *file,
                         const char *split) {
  if (d->n < 1) ep_fatal("%s: split '%s' has no examples", file, split);
  prune_check_rows(d, 0, cfg, file, split);
}

void prune_check_rows(const ep_dataset *d, int64_t first, const ep_model_config *cfg, const char *file,
                      const char *split) {
  int longest = 0;
  for (int64_t i = 0; i < d->n; i++)
    longest = d->length[i] > longest ? d->length[i] : longest;
  if (cfg->pos == EP_POS_LEARNED && longest > cfg->n_ctx)
    ep_fatal("%s: split '%s' has a sequence of length %d, longer than the model's context of %d positions",
             file, split, longest, cfg->n_ctx);
  for (int64_t i = 0; i < d->n; i++) {
    const int len = d->length[i], T = d->max_len;
    if (len < 1 || len > T)
      ep_fatal("%s: split '%s' example %lld has length %d (rows of %d)", file, split, (long long)(first + i),
               len, T);
    if (!(0 <= d->loss_start[i] && d->loss_start[i] < d->loss_end[i] && d->loss_end[i] <= len))
      ep_fatal("%s: split '%s' example %lld: loss positions [%d, %d) are not inside [0, %d)", file, split,
               (long long)(first + i), d->loss_start[i], d->loss_end[i], len);
    if (cfg->bos_token >= 0 && d->loss_start[i] == 0 && d->clean[i * T] == cfg->bos_token)
      ep_fatal("%s: split '%s' example %lld scores position 0, the BOS token: loss positions must exclude it",
               file, split, (long long)(first + i));
    for (int t = 0; t < len; t++) {
      int a = d->clean[i * T + t], b = d->corrupted[i * T + t];
      if (a < 0 || a >= cfg->vocab || b < 0 || b >= cfg->vocab)
        ep_fatal("%s: split '%s' example %lld position %d: token id %d is outside the model vocabulary of %d",
                 file, split, (long long)(first + i), t, (a < 0 || a >= cfg->vocab) ? a : b, cfg->vocab);
    }
  }
}

void prune_batch_gather(ep_batch_buf *bb, const ep_dataset *d, const int64_t *idx, int n) {
  const int Td = d->max_len;
  int T = 1; /* the batch's longest example: the rest of d's padding is dropped */
  for (int i = 0; i < n; i++)
    if (d->length[idx[i]] > T) T = d->length[idx[i]];
  if (T > Td) T = Td;
  bb->clean = ep_realloc(bb->clean, (size_t)n * T * sizeof(int32_t) + 1);
  bb->corrupted = ep_realloc(bb->corrupted, (size_t)n * T * sizeof(int32_t) + 1);
  int32_t **cols[5] = {&bb->length, &bb->loss_start, &bb->loss_end, &bb->target, &bb->distractor};
  const int32_t *src[5] = {d->length, d->loss_start, d->loss_end, d->target, d->distractor};
  for (int k = 0; k < 5; k++)
    *cols[k] = ep_realloc(*cols[k], (size_t)n * sizeof(int32_t) + 1);
  for (int i = 0; i < n; i++) {
    memcpy(bb->clean + (size_t)i * T, d->clean + idx[i] * Td, (size_t)T * sizeof(int32_t));
    memcpy(bb->corrupted + (size_t)i * T, d->corrupted + idx[i] * Td, (size_t)T * sizeof(int32_t));
    for (int k = 0; k < 5; k++)
      (*cols[k])[i] = src[k] ? src[k][idx[i]] : -1;
  }
  bb->b = (ep_batch){n, T, bb->clean, bb->corrupted, bb->length, bb->loss_start, bb->loss_end};
}

void prune_batch_free(ep_batch_buf *bb) {
  free(bb->clean);
  free(bb->corrupted);
  free(bb->length);
  free(bb->loss_start);
  free(bb->loss_end);
  free(bb->target);
  free(bb->distractor);
  memset(bb, 0, sizeof *bb);
}

void prune_epoch_order(uint64_t seed, int64_t epoch, int64_t n, int64_t *perm) {
  for (int64_t i = 0; i < n; i++)
    perm[i] = i;
  for (int64_t i = n - 1; i > 0; i--) { /* Fisher-Yates with the counter RNG */
    uint32_t w[4];
    ep_rng_words(seed, EP_RNG_STREAM_DATA, (uint64_t)epoch, (uint32_t)i, w);
    uint64_t r = ((uint64_t)w[0] << 32 | w[1]) % (uint64_t)(i + 1);
    int64_t t = perm[i];
    perm[i] = perm[r];
    perm[r] = t;
  }
}

void prune_expected_masks(const double *la, int64_t n, double *z) {
  const double l = EP_PRUNE_HC_L, r = EP_PRUNE_HC_R;
  for (int64_t i = 0; i < n; i++) {
    double s = 1.0 / (1.0 + exp(-la[i]));
    double v = s * (r - l) + l;
    z[i] = v < 0 ? 0 : v > 1 ? 1 : v;
  }
}

void prune_mean_writers_accumulate(const ep_backend_ops *be, void *ws, const ep_graph *g,
                                   const ep_model_config *cfg, const ep_dataset *d, int64_t batch,
                                   double *sum, int64_t *cnt) {
  const int T = d->max_len, D = cfg->d_model, W = g->n_writers;
  float *wo = ep_malloc((size_t)W * batch * T * D * sizeof *wo);
  for (int64_t first = 0; first < d->n; first += batch) {
    int n = (int)(d->n - first < batch ? d->n - first : batch);
    be->writer_outputs(ws, d->corrupted + first * T, d->length + first, n, T, wo);
    for (int b = 0; b < n; b++) {
      const int len = d->length[first + b];
      for (int t = 0; t < len; t++) {
        for (int w = 0; w < W; w++) {
          const float *src = wo + (((size_t)w * n + b) * T + t) * D;
          double *dst = sum + ((size_t)w * T + t) * D;
          for (int k = 0; k < D; k++)
            dst[k] += src[k];
        }
      }
      for (int t = 0; t < len; t++)
        cnt[t]++;
    }
  }
  free(wo);
}

void prune_mean_writers_finish(const ep_graph *g, const ep_model_config *cfg, int T, const double *sum,
                               const int64_t *cnt, float *out) {
  const int D = cfg->d_model, W = g->n_writers;
  for (int w = 0; w < W; w++)
    for (int t = 0; t < T; t++)
      for (int k = 0; k < D; k++) {
        size_t i = ((size_t)w * T + t) * D + k;
        out[i] = cnt[t] ? (float)(sum[i] / (double)cnt[t]) : 0.0f;
      }
}

void prune_mean_writers(const ep_backend_ops *be, void *ws, const ep_graph *g, const ep_model_config *cfg,
                        const ep_dataset *d, int64_t batch, float *out) {
  const int T = d->max_len;
  double *sum = ep_calloc((size_t)g->n_writers * T * cfg->d_model, sizeof *sum);
  int64_t *cnt = ep_calloc((size_t)T, sizeof *cnt);
  prune_mean_writers_accumulate(be, ws, g, cfg, d, batch, sum, cnt);
  prune_mean_writers_finish(g, cfg, T, sum, cnt, out);
  free(sum);
  free(cnt);
}

/* A workspace for batches of B x T; with cache = 0 without the CUDA prepare cache
 * (run.device_cache_mb), which only pays when examples come back to the same workspace. */
static void *make_ws(const ep_prune_config *c, const ep_backend_ops *be, const ep_model *m, const ep_graph *g,
                     int B, int T, int cache) {
  ep_engine_opts eo = {c->loss, c->ablation, c->node_masks, EP_PREC_F32};
  ep_backend_choice ch = c->backend;
  if (!cache) ch.cache_mb = 0;
  return backend_open(be, &ch, m, g, &eo, B, T);
}

double prune_eval_masks(const ep_prune_config *c, const ep_model *m, const ep_graph *g, const ep_dataset *d,
                        const double *z_edge, const double *z_node, float *out_masked, float *out_full) {
  const ep_backend_ops *be = backend_choose(&c->backend);
  const int64_t B = c->batch_size < d->n ? c->batch_size : d->n;
  void *ws = make_ws(c, be, m, g, (int)B, d->max_len, 0); /* each example once */
  float *mean = NULL;
  if (c->ablation == EP_ABLATE_MEAN) {
    mean = ep_malloc((size_t)g->n_writers * d->max_len * m->cfg.d_model * sizeof *mean);
    prune_mean_writers(be, ws, g, &m->cfg, d, B, mean);
  }
  ep_batch_buf bb = {0};
  int64_t *idx = ep_malloc((size_t)B * sizeof *idx);
  double total = 0;
  int64_t pos = 0;
  const int Vo = m->cfg.vocab_out;
  for (int64_t first = 0; first < d->n; first += B) {
    int n = (int)(d->n - first < B ? d->n - first : B);
    for (int i = 0; i < n; i++)
      idx[i] = first + i;
    prune_batch_gather(&bb, d, idx, n);
    int64_t P = be->prepare(ws, &bb.b, mean);
    double loss = be->faith(ws, z_edge, c->node_masks ? z_node : NULL, NULL, NULL,
                            out_masked ? out_masked + pos * Vo : NULL);
    if (out_full) be->full_outputs(ws, out_full + pos * Vo);
    pos += P;
    total += loss * n;
  }
  free(idx);
  prune_batch_free(&bb);
  free(mean);
  be->destroy(ws);
  return total / (double)d->n;
}

static void fmt_eta(double s, char *buf, size_t n) {
  if (!isfinite(s) || s < 0) s = 0;
  long t = (long)(s + 0.5);
  if (t >= 3600)
    snprintf(buf, n, "%ldh%02ldm", t / 3600, (t / 60) % 60);
  else
    snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
}

/* Validation: the deterministic masks on (a prefix of) the validation split. */
static double validate(const ep_prune_config *c, const ep_model *m, const ep_graph *g, const ep_dataset *val,
                       const ep_mask_params *p) {
  ep_dataset sub = *val;
  if (c->val_examples > 0 && sub.n > c->val_examples) sub.n = c->val_examples;
  double *ze = ep_malloc((size_t)p->n_edges * sizeof *ze);
  double *zn = ep_malloc((size_t)(p->n_nodes + 1) * sizeof *zn);
  prune_expected_masks(p->la_edge, p->n_edges, ze);
  prune_expected_masks(p->la_node, p->n_nodes, zn);
  double kl = prune_eval_masks(c, m, g, &sub, ze, zn, NULL, NULL);
  free(ze);
  free(zn);
  return kl;
}

/* The arrays of a checkpoint: every trainable value and the AdamW state. */
static void ckpt_arrays(ep_ckpt_array *a, ep_mask_params *p, ep_adamw *opt, int64_t *t) {
  a[0] = (ep_ckpt_array){"theta", EP_CKPT_F64, p->n, p->theta};
  a[1] = (ep_ckpt_array){"adam_m", EP_CKPT_F64, p->n, opt->m};
  a[2] = (ep_ckpt_array){"adam_v", EP_CKPT_F64, p->n, opt->v};
  a[3] = (ep_ckpt_array){"adam_t", EP_CKPT_I64, 1, t};
}

static double write_checkpoint(const ep_prune_config *c, const char *dir, int64_t step, int dp,
                               ep_mask_params *p, ep_adamw *opt) {
  double t0 = ep_time_now();
  if (ep_rank == 0 && mkdir(c->out_dir, 0777) != 0 && errno != EEXIST)
    ep_fatal("cannot create run.out_dir '%s': %s", c->out_dir, strerror(errno));
  EP_CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));
  char *deck = c->deck ? deck_resolved_yaml(c->deck) : NULL;
  ep_ckpt_meta meta = {step, step * c->batch_size, c->config_hash, 1, dp, 1, {(uint64_t)c->seed}, deck};
  int64_t t = opt->t;
  ep_ckpt_array a[4];
  ckpt_arrays(a, p, opt, &t);
  char *path = checkpoint_write(dir, &meta, 4, a, (int)c->checkpoint_keep, MPI_COMM_WORLD);
  ep_log("checkpoint %s (step %lld)", path, (long long)step);
  free(path);
  free(deck);
  return ep_time_now() - t0;
}

/* Continue from the newest valid checkpoint of this configuration; returns its step. */
static int64_t read_checkpoint(const ep_prune_config *c, const char *dir, int dp, ep_mask_params *p,
                               ep_adamw *opt) {
  char *latest = checkpoint_find_latest(dir, MPI_COMM_WORLD);
  if (!latest) return 0;
  ep_ckpt_meta meta;
  checkpoint_info(latest, &meta, MPI_COMM_WORLD);
  if (meta.config_hash != c->config_hash)
    ep_fatal("%s was written by another configuration (deck hash %016llx, this deck %016llx): use another "
             "run.out_dir, remove the checkpoint, or set run.restart: never",
             latest, (unsigned long long)meta.config_hash, (unsigned long long)c->config_hash);
  if (meta.dp != dp || meta.pp != 1)
    ep_fatal(
        "%s was written on a grid of %d x %d ranks (pp x dp), this run has 1 x %d: restart on the same grid "
        "for an identical continuation",
        latest, meta.pp, meta.dp, dp);
  if (meta.step > c->steps)
    ep_fatal("%s is at step %lld, beyond prune.steps = %lld", latest, (long long)meta.step,
             (long long)c->steps);
  checkpoint_meta_free(&meta);
  int64_t t = 0;
  ep_ckpt_array a[4];
  ckpt_arrays(a, p, opt, &t);
  checkpoint_read(latest, &meta, 4, a, MPI_COMM_WORLD);
  opt->t = t;
  ep_log("restarting from %s at step %lld", latest, (long long)meta.step);
  int64_t step = meta.step;
  checkpoint_meta_free(&meta);
  free(latest);
  return step;
}

/* Where a rank's batches come from: the split in memory or its shard of each batch read
 * from the file, in the epoch order of (seed, epoch). */
typedef struct {
  const ep_backend_ops *be;
  void *ws;                   /* NULL: this rank has no share of the batch */
  const ep_dataset *train;    /* the split in memory, or NULL */
  ep_dataset_file *file;      /* else the split's file */
  const float *mean;          /* mean ablation's writer means, or NULL */
  uint64_t seed;
  int64_t n_train, batch, per_epoch, first, count, epoch;
  int64_t *perm, *shard_idx;  /* [n_train], [count + 1] */
  ep_dataset shard;           /* this rank's rows of the batch (file source) */
  ep_batch_buf bb;
} batch_feed;

/* Read (file source: collective, a rank without a share joins with nothing) and prepare
 * this rank's share of step's batch. */
static void feed_batch(batch_feed *f, int64_t step) {
  const int64_t e = step / f->per_epoch, k = step % f->per_epoch;
  if (e != f->epoch) {
    prune_epoch_order(f->seed, e, f->n_train, f->perm);
    f->epoch = e;
  }
  const int64_t *rows = f->perm + k * f->batch + f->first;
  if (f->file) {
    dataset_file_read_indices(f->file, rows, f->count, &f->shard);
    for (int64_t i = 0; i < f->count; i++)
      f->shard_idx[i] = i;
  }
  if (!f->ws) return;
  if (f->file)
    prune_batch_gather(&f->bb, &f->shard, f->shard_idx, (int)f->count);
  else
    prune_batch_gather(&f->bb, f->train, rows, (int)f->count);
  f->be->prepare(f->ws, &f->bb.b, f->mean);
}

/* The loop over one of two sources: the split in memory (train) or in its file (file),
 * where every rank reads only its shard of each batch. With a backend that can queue a
 * step (faith_sampled_start / _end), the next batch is read and prepared while the device
 * runs the current step, and its prepare runs on the device while the host finishes the
 * step (all-reduce, regulariser, AdamW). */
static int train_loop(const ep_prune_config *c, const ep_model *m, const ep_graph *g, const ep_dataset *train,
                      ep_dataset_file *file, const ep_dataset *val, ep_mask_params *p, ep_train_result *res) {
  const ep_backend_ops *be = backend_choose(&c->backend);
  const int64_t n_train = train ? train->n : dataset_file_n(file);
  /* before the first long phase (the pass over the data): a signal from here on stops
   * the run cleanly instead of killing it */
  if (ep_mpi_active()) stopper_install_signals();
  memset(res, 0, sizeof *res);
  res->val_kl = NAN;
  EP_CHECK(g->embedding_nodes == c->embedding_nodes, "graph and config disagree on embedding nodes");
  EP_CHECK(p->n_edges == g->n_edges && p->n_nodes == (c->node_masks ? g->n_writers : 0),
           "mask parameters do not match the graph");
  if (n_train < c->batch_size)
    ep_fatal("prune.batch_size = %lld is larger than the training split (%lld examples)",
             (long long)c->batch_size, (long long)n_train);
  /* data parallelism when running under several MPI ranks */
  ep_grid grid;
  int dp = 1, replica = 0, use_grid = ep_mpi_active() && ep_size > 1;
  if (use_grid) {
    grid_init(&grid, 1);
    dp = grid.n_replicas;
    replica = grid.replica;
  }
  int64_t first, count;
  grid_batch_shard(c->batch_size, dp, replica, &first, &count);
  const int T = train ? train->max_len : dataset_file_max_len(file);
  /* the prepare cache only when some example is drawn again: past the first epoch */
  const int64_t per_epoch = n_train / c->batch_size;
  const int recur = c->steps > per_epoch;
  if (!recur && c->backend.cache_mb > 0 && !strcmp(be->name, "cuda"))
    ep_log("run.device_cache_mb: no training example comes back within prune.steps (%lld steps of %lld from "
           "%lld examples), so the prepare cache is off",
           (long long)c->steps, (long long)c->batch_size, (long long)n_train);
  void *ws = count > 0 ? make_ws(c, be, m, g, (int)count, T, recur) : NULL;
  /* masks drawn by the backend on its device when it can and every replica has a share:
   * the replicas must all compute the same masks, and one without a share draws on the
   * host (the same formulas, but another libm could round a last bit differently) */
  const int dev_masks = be->faith_sampled && c->batch_size >= dp;
  float *mean = NULL;
  if (c->ablation == EP_ABLATE_MEAN && (ws || file))
    mean = ep_malloc((size_t)g->n_writers * T * m->cfg.d_model * sizeof *mean);
  if (train && mean) prune_mean_writers(be, ws, g, &m->cfg, train, count, mean);
  if (file)
    train_file_prepass(c, be, ws, g, &m->cfg, file, replica, dp, count, use_grid ? grid.dp : MPI_COMM_NULL,
                       mean);
  ep_adamw opt;
  prune_adamw_init(&opt, p, c->lr);
  ep_step_out o;
  prune_step_out_init(&o, p);
  batch_feed feed;
  memset(&feed, 0, sizeof feed);
  feed.be = be;
  feed.ws = ws;
  feed.train = train;
  feed.file = file;
  feed.mean = mean;
  feed.seed = (uint64_t)c->seed;
  feed.n_train = n_train;
  feed.batch = c->batch_size;
  feed.per_epoch = per_epoch;
  feed.first = first;
  feed.count = count;
  feed.epoch = -1;
  feed.perm = ep_malloc((size_t)n_train * sizeof *feed.perm);
  feed.shard_idx = ep_malloc((size_t)(count + 1) * sizeof *feed.shard_idx);
  const int queued = ws && dev_masks && be->faith_sampled_start && be->faith_sampled_end;
  double t0 = ep_time_now(), t_last = t0;
  int status = 0;
  const int use_mpi = ep_mpi_active();
  char *ckdir = ep_path_join(c->out_dir, "checkpoints");
  if (use_mpi && !c->restart) free(checkpoint_set_aside(ckdir, MPI_COMM_WORLD));
  int64_t start = use_mpi && c->restart ? read_checkpoint(c, ckdir, dp, p, &opt) : 0;
  res->start_step = res->steps_done = start;
  int64_t step_last = start;
  ep_stopper stp;
  if (use_mpi) {
    stopper_init(&stp, MPI_COMM_WORLD, c->out_dir, c->max_wall_time, NULL);
  }
  ep_log("prune: %lld edges, %d nodes%s, %lld training examples (T = %d), batch %lld over %d replica(s), "
         "%lld steps",
         (long long)g->n_edges, g->n_writers, c->node_masks ? " (masked)" : " (unmasked)", (long long)n_train,
         T, (long long)c->batch_size, dp, (long long)c->steps);
  if (start < c->steps) feed_batch(&feed, start);
  for (int64_t step = start; step < c->steps; step++) {
    const int next = step + 1 < c->steps; /* the next batch is read and prepared in this step */
    ep_step_targets tg = {
        prune_target(c->start_edge, c->target_edge, step, c->sparsity_warmup, c->log_schedule),
        prune_target(c->start_node, c->target_node, step, c->sparsity_warmup, c->log_schedule), c->node_loss};
    if (queued) {
      /* the device runs this step while the host reads and queues the next batch */
      prune_step_sample_faith_start(be, ws, p, (uint64_t)c->seed, step);
      if (next) feed_batch(&feed, step + 1);
      prune_step_sample_faith_end(be, ws, p, &o);
    } else if (ws) {
      if (dev_masks) {
        prune_step_sample_faith(be, ws, p, (uint64_t)c->seed, step, &o);
      } else {
        prune_sample_masks(p, (uint64_t)c->seed, step, &o);
        prune_step_faith(be, ws, p, &o);
      }
      if (next) feed_batch(&feed, step + 1);
    } else {
      prune_sample_masks(p, (uint64_t)c->seed, step, &o);
      o.faith = 0;
      memset(o.dz_edge, 0, (size_t)p->n_edges * sizeof *o.dz_edge);
      if (p->n_nodes) memset(o.dz_node, 0, (size_t)p->n_nodes * sizeof *o.dz_node);
      prune_hc_masks(p, &o);
      if (next) feed_batch(&feed, step + 1); /* the collective read of the next batch */
    }
    if (step == c->inject_nan_step) o.faith = NAN;
    if (use_grid) {
      /* the loss is a mean over examples: weight each replica by its share */
      const double w = (double)count / (double)c->batch_size;
      o.reduce[0] = o.faith;
      for (size_t i = 0; i < o.n_reduce; i++)
        o.reduce[i] *= w;
      grid_allreduce_dp_f64(&grid, o.reduce, o.n_reduce); /* faith, dz_edge, dz_node at once */
      o.faith = o.reduce[0];
    }
    prune_step_finish(p, &tg, &o);
    if (!isfinite(o.total)) {
      if (ep_rank == 0)
        fprintf(stderr,
                "edgeprune prune: the loss is not finite at step %lld (faithfulness %g, edge regulariser %g, "
                "node "
                "regulariser %g); stopping with the masks of step %lld, no output written\n",
                (long long)step, o.faith, o.reg_edge, o.reg_node, (long long)step - 1);
      res->stopped_nan = 1;
      status = 1;
      break;
    }
    prune_adamw_step(&opt, p, o.grad, c->max_grad_norm, prune_lr_factor(step, c->lr_warmup, c->steps));
    res->steps_done = step + 1;
    res->last_faith = o.faith;
    res->last_edge_sparsity = o.s_edge;
    res->last_node_sparsity = o.s_node;
    const int last = step + 1 == c->steps;
    if ((step + 1) % c->log_every == 0 || last) {
      double now = ep_time_now();
      double rate = (double)(step + 1 - step_last) / fmax(now - t_last, 1e-9);
      char eta[32];
      fmt_eta((double)(c->steps - step - 1) / rate, eta, sizeof eta);
      static const char *loss_names[] = {"kl", "kl_sum", "position_kl", "mse"};
      ep_log("step %6lld/%lld  %s %.6g  edges %.4f (target %.4f)  nodes %.4f (target %.4f)  "
             "lambda_e %.3f %.3f  lambda_n %.3f %.3f  %.2f steps/s  ETA %s",
             (long long)step + 1, (long long)c->steps, loss_names[c->loss], o.faith, o.s_edge, tg.t_edge,
             o.s_node, tg.t_node, p->lam_edge[0], p->lam_edge[1], p->n_nodes ? p->lam_node[0] : 0.0,
             p->n_nodes ? p->lam_node[1] : 0.0, rate, eta);
      t_last = now;
      step_last = step + 1;
    }
    if (val && ((c->val_every > 0 && (step + 1) % c->val_every == 0) || last)) {
      res->val_kl = validate(c, m, g, val, p);
      ep_log("validation at step %lld: loss %.6g with deterministic masks", (long long)step + 1, res->val_kl);
    }
    if (c->step_delay > 0) train_debug_delay(c->step_delay);
    /* the last step's state too, so an ended run can write its circuit again */
    const int periodic =
        use_mpi && c->checkpoint_every > 0 && ((step + 1) % c->checkpoint_every == 0 || last);
    if (periodic) stopper_note_checkpoint_time(&stp, write_checkpoint(c, ckdir, step + 1, dp, p, &opt));
    if (step == c->exit_after_step)
      ep_fatal("debug.exit_after_step: ending the process after step %lld as a crash would",
               (long long)step + 1);
    if (use_mpi && !last) {
      ep_stop_reason why = stopper_should_stop(&stp);
      if (why != EP_STOP_NONE) {
        if (!periodic) write_checkpoint(c, ckdir, step + 1, dp, p, &opt);
        ep_log("stopping after step %lld (%s); run the same command again to continue", (long long)step + 1,
               stopper_reason_name(why));
        res->stopped_early = (int)why;
        break;
      }
    }
  }
  if (use_mpi) stopper_free(&stp);
  free(ckdir);
  free(feed.perm);
  free(feed.shard_idx);
  if (file) dataset_free(&feed.shard);
  prune_batch_free(&feed.bb);
  prune_step_out_free(&o);
  prune_adamw_free(&opt);
  free(mean);
  if (ws) be->destroy(ws);
  if (use_grid) grid_free(&grid);
  return status;
}

int prune_train(const ep_prune_config *c, const ep_model *m, const ep_graph *g, const ep_dataset *train,
                const ep_dataset *val, ep_mask_params *p, ep_train_result *res) {
  return train_loop(c, m, g, train, NULL, val, p, res);
}

int prune_train_file(const ep_prune_config *c, const ep_model *m, const ep_graph *g, ep_dataset_file *train,
                     const ep_dataset *val, ep_mask_params *p, ep_train_result *res) {
  EP_CHECK(ep_mpi_active(), "prune_train_file needs MPI");
  return train_loop(c, m, g, NULL, train, val, p, res);
}
