/* bench_cuda.c — time full Edge Pruning training steps of the CUDA backend on a
 * GPT-2-small-shaped random model (12 layers, 12 heads, D 768, V 50257, embedding and
 * node masks on), batch 32 x 20 tokens (IOI length), interchange ablation, KL loss.
 *
 * A step is what training does per batch: prepare (clean and corrupted plain runs,
 * base points) + prune_step (hard-concrete sample on the host, masked forward/backward
 * on the device, loss on the host, regulariser) + prune_adamw_step. Prints ms per step
 * and its parts, steps/s, device memory and the ratio to the reference PyTorch
 * implementation's 575 ms/step. Runs the steps in fp32 and with TF32 GEMMs, each with the
 * backward recomputing layer activations (default) and keeping them.
 *
 * usage: bench_cuda [steps [fp32|tf32|fp32-keep|tf32-keep|all]]   (default: 20 timed
 * steps after 3 warm-up steps, all four modes). With EP_CUDA_PROFILE=1 the backend prints
 * device time per phase when the workspace is destroyed (run one mode for a clean table). */
#include <string.h>
#include <stdio.h>
#include <stdlib.h>

#include "edgeprune/backend_cuda.h"
#include "edgeprune/core.h"
#include "edgeprune/graph.h"
#include "edgeprune/model.h"
#include "edgeprune/prune.h"
#include "edgeprune/rng.h"

#define REF_MS_PER_STEP 575.0

int main(int argc, char **argv) {
  const int steps = argc > 1 ? atoi(argv[1]) : 20, warm = 3;
  static const char *modes[4] = {"fp32", "tf32", "fp32-keep", "tf32-keep"};
  const char *mode = argc > 2 ? argv[2] : "all";
  EP_CHECK(steps >= 1, "steps must be at least 1");
  int mode_ok = !strcmp(mode, "all");
  for (int i = 0; i < 4; i++) mode_ok |= !strcmp(mode, modes[i]);
  EP_CHECK(mode_ok, "mode %s: fp32, tf32, fp32-keep, tf32-keep or all", mode);
  if (!backend_cuda_available()) {
    printf("no CUDA device: nothing to benchmark\n");
    return 77;
  }
  const int dev = backend_cuda_select_device();
  const int B = 32, T = 20;

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
  double t0 = ep_time_now();
  model_alloc(&m, &cfg);
  model_init_random(&m, 1, 0.02f);
  ep_graph g;
  graph_init(&g, &cfg, 1);
  printf("model: GPT-2 small shape, %zu floats, %d writers, %d readers, %lld edges (init %.1f s)\n", m.n_floats,
         g.n_writers, g.n_readers, (long long)g.n_edges, ep_time_now() - t0);

  /* one IOI-shaped batch: full-length rows, loss at the last token */
  int32_t *clean = malloc((size_t)B * T * sizeof *clean), *corr = malloc((size_t)B * T * sizeof *corr);
  int32_t len[32], ls[32], le[32];
  for (int b = 0; b < B; b++) {
    len[b] = T;
    ls[b] = T - 1;
    le[b] = T;
    for (int t = 0; t < T; t++) {
      uint32_t w[4];
      ep_rng_words(7, 99, (uint64_t)b * 1000 + t, 0, w);
      clean[b * T + t] = (int32_t)(w[0] % (uint32_t)cfg.vocab);
      corr[b * T + t] = (int32_t)(w[1] % (uint32_t)cfg.vocab);
    }
  }
  ep_batch bt = {B, T, clean, corr, len, ls, le};

  const ep_backend_ops *be = backend_cuda();
  ep_engine_opts eo = {EP_LOSS_KL, EP_ABLATE_INTERCHANGE, 1, EP_PREC_F32};
  size_t free0, total, free1, free2;
  backend_cuda_mem_info(&free0, &total);
  void *ws = be->create(&m, &g, &eo, B, T);
  backend_cuda_mem_info(&free1, NULL);

  for (int cfgi = 0; cfgi < 4; cfgi++) {
    const int tf32 = cfgi & 1, keep = cfgi >> 1;
    if (strcmp(mode, "all") && strcmp(mode, modes[cfgi])) continue;
    /* the same work in every mode: fresh parameters and optimiser */
    backend_cuda_set_tf32(ws, tf32);
    backend_cuda_set_keep_activations(ws, keep);
    ep_mask_params p;
    prune_params_init(&p, g.n_edges, g.n_writers, 3);
    ep_step_out o;
    prune_step_out_init(&o, &p);
    ep_adamw opt;
    const double lr[4] = {0.8, 0.8, 0.8, 0.8};
    prune_adamw_init(&opt, &p, lr); /* betas 0.9/0.999, eps 1e-8, weight decay 0.01 */
    double t_prep = 0, t_faith = 0, t_opt = 0, t_fwd = 0;
    for (int s = 0; s < warm + steps; s++) {
      const double a = ep_time_now();
      be->prepare(ws, &bt, NULL);
      const double b = ep_time_now();
      ep_step_targets tg = {prune_target(0, 0.94, s, 2500, 0), prune_target(0, 0.72, s, 2500, 0), 1};
      prune_step(be, ws, &p, 5, s, &tg, &o);
      const double c = ep_time_now();
      prune_adamw_step(&opt, &p, o.grad, 1.0, prune_lr_factor(s, 200, 3000));
      const double d = ep_time_now();
      /* forward only (evaluation cost), same masks */
      be->faith(ws, o.z_edge, o.z_node, NULL, NULL, NULL);
      const double e = ep_time_now();
      if (s >= warm) {
        t_prep += b - a;
        t_faith += c - b;
        t_opt += d - c;
        t_fwd += e - d;
      }
      if (s == warm + steps - 1) printf("last step: faith %.9g total %.9g\n", o.faith, o.total);
    }
    backend_cuda_mem_info(&free2, NULL);
    const double ms = 1e3 * (t_prep + t_faith + t_opt) / steps;
    printf("device %d, %s, %s, batch %d x %d, %d timed steps\n", dev,
           tf32 ? "TF32 GEMMs (CUBLAS_COMPUTE_32F_FAST_TF32), fp32 elsewhere" : "fp32 (CUBLAS_COMPUTE_32F, no TF32)",
           keep ? "activations kept" : "activations recomputed", B, T, steps);
    printf("  prepare              %8.2f ms\n", 1e3 * t_prep / steps);
    printf("  masked fwd+bwd+loss  %8.2f ms   (forward + loss only: %.2f ms)\n", 1e3 * t_faith / steps,
           1e3 * t_fwd / steps);
    printf("  hard-concrete/AdamW  %8.2f ms   (host, in prune_step and prune_adamw_step)\n", 1e3 * t_opt / steps);
    printf("full training step: %.2f ms/step, %.2f steps/s, %.1fx faster than the reference %.0f ms/step\n", ms,
           1e3 / ms, REF_MS_PER_STEP / ms, REF_MS_PER_STEP);
    printf("device memory: %.1f MiB used by the workspace after create, %.1f MiB after these steps (of %.1f GiB)\n\n",
           (double)(free0 - free1) / 1048576.0, (double)(free0 - free2) / 1048576.0, (double)total / 1073741824.0);
    prune_adamw_free(&opt);
    prune_step_out_free(&o);
    prune_params_free(&p);
  }
  be->destroy(ws);
  graph_free(&g);
  model_free(&m);
  free(clean);
  free(corr);
  return 0;
}
