/* bench_cuda.c — time full Edge Pruning training steps of the CUDA backend on a
 * GPT-2-small-shaped random model (12 layers, 12 heads, D 768, V 50257, embedding and
 * node masks on), IOI-length rows of T tokens (default 20), interchange ablation, KL loss.
 *
 * A step is what training does per batch: prepare (clean and corrupted plain runs, base
 * points) + prune_step_sample_faith (hard-concrete masks drawn on the device, masked
 * forward/backward, loss) + prune_step_finish and prune_adamw_step on the host; under
 * MPI also the all-reduce of the mask gradients over the ranks, as the training loop
 * does. Timed twice: the parts one after another (their times), and in the training
 * loop's order, where the step is queued on the device, the next batch is prepared behind
 * it, and its prepare runs while the host finishes the step ("overlapped", the step time
 * the steps/s, TFLOP/s and ratio are of). Per precision (fp32, tf32, bf16; activations
 * kept) it prints ms/step with
 * prepare computed every step ("cold") and with prepare served by the device cache
 * (every example seen before: the IOI splits after the first epoch), steps/s, achieved
 * TFLOP/s and device memory, and what the host would spend drawing the masks itself.
 *
 * FLOP count of a step (multiply-add = 2), N = B*T token rows, P loss positions:
 *   dense  = L (8 N D^2 + 4 N T D + 4 N D F)   one plain forward (q/k/v/O, attention, MLP)
 *   prepare: 2 dense + 2 P D V                 clean and corrupted runs, clean logits
 *   masked:  2 dense + 4 P D V                 forward, backward (input gradients only)
 *   mixing:  6 N D E                           Z x delta, <dY, delta>, Z^T dY over all edges
 * A cached step counts masked + mixing only (the work actually done).
 *
 * Multi-GPU (mpirun -n K, one rank per GPU by node-local rank): each rank runs
 * global_batch / K examples; rank 0 first times the whole global batch alone on its GPU,
 * then all ranks time the data-parallel step; scaling efficiency = t_1 / (K t_K).
 *
 * usage: bench_cuda [steps [fp32|tf32|bf16|all [global_batch [T | DATA.h5[:split]]]]]
 *        (default 20 all 32 20)
 * T: every row T tokens, one batch for every step. T = 20 is a short IOI batch: batches
 * of 32 from `edgeprune dataset --task ioi` are padded to their longest prompt, 19 to 24
 * GPT-2 tokens, 21.7 on average. DATA.h5[:split] (split default train): the split's first
 * steps x global_batch examples as `steps` batches, each padded to its longest example as
 * training pads them (prune_batch_gather), one after another; a rank pads its share of
 * the batch as training does. Every batch is seen in the warm-up steps, so the cached run
 * serves each from the cache and no step graph is captured while timing (the line
 * "graphs" says how many were).
 * With EP_CUDA_PROFILE=1 the backend prints device time per phase at destroy (without the
 * CUDA graph); EP_CUDA_GRAPH=0, EP_CUDA_MIXNORM=0|2 and EP_CUDA_MIXNORM_SPLIT=1 select the
 * variants compared in docs/cuda-backend.md. With EP_BENCH_PROFILE=1 the first timed step
 * of each run (cold, cached) lies between cudaProfilerStart and cudaProfilerStop, for
 * `ncu --profile-from-start off` (per-kernel times of exactly those steps). */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_batch.h"
#include "edgeprune/backend_cuda.h"
#include "edgeprune/backend_select.h"
#include "edgeprune/core.h"
#include "edgeprune/graph.h"
#include "edgeprune/model.h"
#include "edgeprune/prune.h"
#include "edgeprune/rng.h"
#include "edgeprune/dataset.h"
#include "edgeprune/train.h"

#define REF_MS_PER_STEP 575.0

typedef struct {
  double prep, faith, host, step; /* ms per step, the parts one after another, and their sum */
  double pipe;                    /* ms per step in the training loop's order */
} timing;

/* N token rows in batches of T-token rows */
static double dense_flops(const ep_model_config *c, double N, double T) {
  const double D = c->d_model, F = c->d_mlp;
  return c->n_layer * (8 * N * D * D + 4 * N * T * D + 4 * N * D * F);
}

/* The batches a run cycles through: rows [first, first + count) of each global batch of
 * GB consecutive examples of d, padded to their longest example. */
typedef struct {
  ep_batch_buf *b;
  int n;
} batch_set;

static void batch_set_make(batch_set *s, const ep_dataset *d, int n, int GB, int first, int count) {
  s->n = n;
  s->b = ep_calloc((size_t)n, sizeof *s->b);
  int64_t *idx = ep_malloc((size_t)count * sizeof *idx);
  for (int k = 0; k < n; k++) {
    for (int i = 0; i < count; i++) idx[i] = (int64_t)k * GB + first + i;
    prune_batch_gather(&s->b[k], d, idx, count);
  }
  free(idx);
}

static void batch_set_free(batch_set *s) {
  for (int k = 0; k < s->n; k++) prune_batch_free(&s->b[k]);
  free(s->b);
}

/* Time `steps` steps of workspace ws, step s on batch s mod bs->n, after max(3, bs->n)
 * warm-up steps (every batch seen once); with comm, the gradients are all-reduced over
 * it. Twice: one part after another (prepare waited for, then the masked step, then the
 * host: the prep / faith / host columns), then in the training loop's order (the step
 * queued, the next batch prepared behind it, the host's part while that prepare runs:
 * t.pipe). *captures gets the step graphs captured in the timed steps of both (not in
 * the warm-up steps). */
static timing run_steps(const ep_backend_ops *be, void *ws, const ep_graph *g, const batch_set *bs, int steps,
                        MPI_Comm comm, double share, int64_t *captures) {
  ep_mask_params p;
  prune_params_init(&p, g->n_edges, g->n_writers, 3);
  ep_step_out o;
  prune_step_out_init(&o, &p);
  ep_adamw opt;
  const double lr[4] = {0.8, 0.8, 0.8, 0.8};
  prune_adamw_init(&opt, &p, lr);
  timing t = {0, 0, 0, 0, 0};
  const int warm = bs->n > 3 ? bs->n : 3;
  int64_t launches, cap0 = 0, cap1, kernels, timed_captures = 0;
  const char *pe = getenv("EP_BENCH_PROFILE");
  const int prof = pe && atoi(pe);
  for (int queued = 0; queued < 2; queued++) {
    if (queued) be->prepare(ws, &bs->b[0].b, NULL);
    for (int s = 0; s < warm + steps; s++) {
      if (comm != MPI_COMM_NULL) EP_CHECK_MPI(MPI_Barrier(comm));
      if (prof && !queued && s == warm) backend_cuda_profiler_range(1);
      if (s == warm) backend_cuda_graph_stats(ws, &launches, &cap0, &kernels);
      const double a = ep_time_now();
      double b = a;
      if (queued) { /* as training does: the next batch prepared while the device runs this step */
        prune_step_sample_faith_start(be, ws, &p, 5, s);
        be->prepare(ws, &bs->b[(s + 1) % bs->n].b, NULL);
        prune_step_sample_faith_end(be, ws, &p, &o);
      } else {
        be->prepare(ws, &bs->b[s % bs->n].b, NULL);
        backend_cuda_wait(ws);
        b = ep_time_now();
        prune_step_sample_faith(be, ws, &p, 5, s, &o); /* masks drawn on the device, as training does */
      }
      const double c = ep_time_now();
      ep_step_targets tg = {prune_target(0, 0.94, s, 2500, 0), prune_target(0, 0.72, s, 2500, 0), 1};
      if (comm != MPI_COMM_NULL) {
        /* the training loop's data-parallel reduction: loss and gradients weighted by share */
        o.reduce[0] = o.faith;
        for (size_t i = 0; i < o.n_reduce; i++) o.reduce[i] *= share;
        EP_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, o.reduce, (int)o.n_reduce, MPI_DOUBLE, MPI_SUM, comm));
        o.faith = o.reduce[0];
      }
      prune_step_finish(&p, &tg, &o);
      prune_adamw_step(&opt, &p, o.grad, 1.0, prune_lr_factor(s, 200, 3000));
      const double d = ep_time_now();
      if (prof && !queued && s == warm) backend_cuda_profiler_range(0);
      if (s < warm) continue;
      if (queued) {
        t.pipe += d - a;
      } else {
        t.prep += b - a;
        t.faith += c - b;
        t.host += d - c;
      }
    }
    if (queued) backend_cuda_wait(ws); /* the unused last prepare */
    backend_cuda_graph_stats(ws, &launches, &cap1, &kernels);
    timed_captures += cap1 - cap0;
  }
  t.prep *= 1e3 / steps;
  t.faith *= 1e3 / steps;
  t.host *= 1e3 / steps;
  t.step = t.prep + t.faith + t.host;
  t.pipe *= 1e3 / steps;
  *captures = timed_captures;
  if (comm != MPI_COMM_NULL) {
    /* a step is as slow as the slowest rank */
    EP_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, &t, 5, MPI_DOUBLE, MPI_MAX, comm));
  }
  prune_adamw_free(&opt);
  prune_step_out_free(&o);
  prune_params_free(&p);
  return t;
}

/* ms per step the host would spend drawing the masks (prune_sample_masks and the
 * hard-concrete samples of prune_step_faith) without the backend's device draw. */
static double host_draw_ms(const ep_graph *g, int steps) {
  ep_mask_params p;
  prune_params_init(&p, g->n_edges, g->n_writers, 3);
  ep_step_out o;
  prune_step_out_init(&o, &p);
  const double a = ep_time_now();
  for (int s = 0; s < steps; s++) {
    prune_sample_masks(&p, 5, s, &o);
    prune_hc_masks(&p, &o);
  }
  const double ms = 1e3 * (ep_time_now() - a) / steps;
  prune_step_out_free(&o);
  prune_params_free(&p);
  return ms;
}

static void print_timing(const char *what, const timing *t, double gflop) {
  printf("  %-8s prepare %6.2f + masked fwd+bwd %6.2f + host/reduce %4.2f = %6.2f ms; overlapped %6.2f ms/step  "
         "%6.1f steps/s  %5.1f TFLOP/s (%.0f GFLOP)  %5.1fx vs %.0f ms\n",
         what, t->prep, t->faith, t->host, t->step, t->pipe, 1e3 / t->pipe, gflop / t->pipe, gflop,
         REF_MS_PER_STEP / t->pipe, REF_MS_PER_STEP);
}

int main(int argc, char **argv) {
  ep_mpi_init(&argc, &argv);
  const int steps = argc > 1 ? atoi(argv[1]) : 20;
  const char *mode = argc > 2 ? argv[2] : "all";
  const int GB = argc > 3 ? atoi(argv[3]) : 32;
  const char *rows = argc > 4 ? argv[4] : "20";
  static const char *modes[3] = {"fp32", "tf32", "bf16"};
  EP_CHECK(steps >= 1, "steps must be at least 1");
  EP_CHECK(GB >= ep_size && GB % ep_size == 0, "global batch %d must be a multiple of the %d ranks", GB, ep_size);
  int mode_ok = !strcmp(mode, "all");
  for (int i = 0; i < 3; i++) mode_ok |= !strcmp(mode, modes[i]);
  EP_CHECK(mode_ok, "mode %s: fp32, tf32, bf16 or all", mode);
  if (!backend_cuda_available()) {
    if (ep_rank == 0) printf("no CUDA device: nothing to benchmark\n");
    ep_mpi_finalize();
    return 77;
  }
  const ep_backend_choice choice = {EP_BACKEND_CUDA, EP_COMPUTE_FP32, 0};
  const ep_backend_ops *be = backend_choose(&choice); /* binds the node-local device */
  const int K = ep_size, B = GB / K;

  ep_model_config cfg;
  model_config_defaults(&cfg);
  cfg.n_layer = 12;
  cfg.n_head = cfg.n_kv_head = 12;
  cfg.d_model = 768;
  cfg.d_head = 64;
  cfg.d_mlp = 3072;
  cfg.vocab = cfg.vocab_out = 50257;
  cfg.n_ctx = 1024;
  const char *bad = model_config_validate(&cfg);
  EP_CHECK(!bad, "benchmark model config: %s", bad);
  ep_model m;
  model_alloc(&m, &cfg);
  model_init_random(&m, 1, 0.02f);
  ep_graph g;
  graph_init(&g, &cfg, 1);

  /* the examples: IOI-shaped rows of T tokens (full length, loss at the last token), one
   * global batch; or a dataset file's first `steps` global batches */
  bench_batch bb = {0};
  ep_dataset data;
  memset(&data, 0, sizeof data);
  const char *colon = strrchr(rows, ':');
  const int from_file = strstr(rows, ".h5") != NULL;
  int nb = 1, Tmax;
  if (from_file) {
    char *path = ep_strdup(rows);
    const char *split = "train";
    if (colon && colon > strstr(rows, ".h5")) {
      path[colon - rows] = 0;
      split = colon + 1;
    }
    dataset_read(&data, path, split);
    nb = steps;
    EP_CHECK(data.n >= (int64_t)nb * GB, "%s split %s: %lld examples, %d batches of %d need %lld", path, split,
             (long long)data.n, nb, GB, (long long)nb * GB);
    free(path);
    Tmax = data.max_len;
  } else {
    Tmax = atoi(rows);
    EP_CHECK(Tmax >= 2 && Tmax <= 128, "tokens per row %s: 2 to 128, or a dataset file DATA.h5[:split]", rows);
    bench_batch_make(&bb, GB, Tmax, cfg.vocab, 7);
    data = (ep_dataset){.n = GB, .max_len = Tmax, .clean = bb.clean, .corrupted = bb.corrupted, .length = bb.len,
                        .loss_start = bb.ls, .loss_end = bb.le};
  }
  batch_set global, mine;
  batch_set_make(&global, &data, nb, GB, 0, GB);
  batch_set_make(&mine, &data, nb, GB, ep_rank * B, B);
  double Tsum = 0, P = 0; /* mean row length and loss positions of the global batches */
  int Tlo = Tmax, Thi = 1;
  for (int k = 0; k < nb; k++) {
    const ep_batch *x = &global.b[k].b;
    Tsum += x->T;
    Tlo = x->T < Tlo ? x->T : Tlo;
    Thi = x->T > Thi ? x->T : Thi;
    for (int i = 0; i < x->B; i++) P += x->loss_end[i] - x->loss_start[i];
  }
  const double Tm = Tsum / nb;
  P /= nb;
  const double mix = 6.0 * Tm * cfg.d_model * (double)g.n_edges;
  const double PDV = (double)cfg.d_model * cfg.vocab_out; /* per loss position */
  if (ep_rank == 0) {
    printf("GPT-2 small shape: %d writers, %d readers, %lld edges; global batch %d over %d rank(s), %d timed steps\n",
           g.n_writers, g.n_readers, (long long)g.n_edges, GB, K, steps);
    if (from_file)
      printf("rows: %s, %d batches padded to their longest example: %d to %d tokens, %.2f on average\n", rows, nb,
             Tlo, Thi, Tm);
    else
      printf("rows: %d tokens, one batch\n", Tmax);
  }

  ep_engine_opts eo = {EP_LOSS_KL, EP_ABLATE_INTERCHANGE, 1, EP_PREC_F32};
  for (int pi = 0; pi < 3; pi++) {
    if (strcmp(mode, "all") && strcmp(mode, modes[pi])) continue;
    timing t1 = {0, 0, 0, 0, 0};
    if (K > 1 && ep_rank == 0) {
      /* the single-GPU reference for the scaling figure: the global batch on one GPU */
      void *w1 = be->create(&m, &g, &eo, GB, Tmax);
      backend_cuda_set_precision(w1, pi);
      backend_cuda_set_keep_activations(w1, 1);
      backend_cuda_set_prepare_cache(w1, (size_t)8 << 30);
      int64_t cap;
      t1 = run_steps(be, w1, &g, &global, steps, MPI_COMM_NULL, 1.0, &cap);
      be->destroy(w1);
    }
    size_t free0, total, free1;
    EP_CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));
    backend_cuda_mem_info(&free0, &total);
    void *ws = be->create(&m, &g, &eo, B, Tmax);
    backend_cuda_set_precision(ws, pi);
    backend_cuda_set_keep_activations(ws, 1);
    const MPI_Comm comm = K > 1 ? MPI_COMM_WORLD : MPI_COMM_NULL;
    const double share = 1.0 / K;
    int64_t cap_cold, cap_hot;
    const timing cold = run_steps(be, ws, &g, &mine, steps, comm, share, &cap_cold);
    backend_cuda_set_prepare_cache(ws, (size_t)8 << 30);
    const timing hot = run_steps(be, ws, &g, &mine, steps, comm, share, &cap_hot);
    backend_cuda_mem_info(&free1, NULL);
    int64_t ce, ch, cm;
    size_t cbytes;
    backend_cuda_cache_stats(ws, &ce, &ch, &cm, &cbytes);
    double mem[3] = {(double)(free0 - free1), (double)backend_cuda_workspace_bytes(ws) - (double)cbytes,
                     (double)cbytes};
    if (comm != MPI_COMM_NULL) EP_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, mem, 3, MPI_DOUBLE, MPI_MAX, comm));
    const double Ng = (double)GB * Tm;
    const double f_cold = 4 * dense_flops(&cfg, Ng, Tm) + 6 * P * PDV + mix * GB;
    const double f_hot = 2 * dense_flops(&cfg, Ng, Tm) + 4 * P * PDV + mix * GB;
    if (ep_rank == 0) {
      printf("%s (%s), activations kept, %d x %.2f per rank:\n", modes[pi],
             pi == 0   ? "fp32 GEMMs, CUBLAS_COMPUTE_32F"
             : pi == 1 ? "TF32 tensor-core GEMMs, fp32 storage"
                       : "bf16 delta stack / reader gradients in the edge-gradient and ddelta GEMMs, "
                         "fp32 mixing, TF32 elsewhere",
             B, Tm);
      print_timing("cold", &cold, f_cold / 1e9);
      print_timing("cached", &hot, f_hot / 1e9);
      int64_t launches, captures, kernels;
      backend_cuda_graph_stats(ws, &launches, &captures, &kernels);
      printf("  graphs: %lld step graphs captured while timing (cold), %lld (cached); %lld kernels in a step's "
             "graph\n",
             (long long)cap_cold, (long long)cap_hot, (long long)kernels);
      printf("  masks drawn on the device; the host draw they replace: %.2f ms/step on this node's CPU\n",
             host_draw_ms(&g, steps));
      printf("  device memory: %.2f GiB in use at the end (peak: nothing is freed during steps; max over ranks): "
             "workspace %.2f GiB, prepare cache %.2f GiB (%lld examples)\n",
             mem[0] / 1073741824.0, mem[1] / 1073741824.0, mem[2] / 1073741824.0, (long long)ce);
      if (K > 1) {
        print_timing("1 GPU", &t1, f_hot / 1e9);
        printf("  scaling 1 -> %d GPUs at global batch %d (cached, overlapped): %.2f -> %.2f ms/step, speed-up "
               "%.2fx, efficiency %.1f %%\n",
               K, GB, t1.pipe, hot.pipe, t1.pipe / hot.pipe, 100.0 * t1.pipe / (K * hot.pipe));
      }
      fflush(stdout);
    }
    be->destroy(ws);
  }
  batch_set_free(&global);
  batch_set_free(&mine);
  if (from_file) dataset_free(&data);
  else bench_batch_free(&bb);
  graph_free(&g);
  model_free(&m);
  ep_mpi_finalize();
  return 0;
}
