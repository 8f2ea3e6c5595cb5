/* bench_step.c — CPU time of one Edge Pruning step on a GPT-2-small-shaped random model.
 *
 * usage: bench_step [B T STEPS L]   (defaults 32 20 3 12: 12 layers, 12 heads, D 768,
 *                                    V 50257, embedding nodes and node masks on)
 * Prints, per step, the batch preparation (clean targets + corrupted run), the masked
 * forward + backward, and their ratio to one plain forward (forward.h) of the batch. */
#include <stdio.h>
#include <stdlib.h>

#include "bench_batch.h"
#include "edgeprune/backend.h"
#include "edgeprune/core.h"
#include "edgeprune/forward.h"
#include "edgeprune/graph.h"
#include "edgeprune/prune.h"
#include "edgeprune/rng.h"

int main(int argc, char **argv) {
  int B = argc > 1 ? atoi(argv[1]) : 32, T = argc > 2 ? atoi(argv[2]) : 20,
      steps = argc > 3 ? atoi(argv[3]) : 3;
  int L = argc > 4 ? atoi(argv[4]) : 12;
  ep_model_config c;
  model_config_defaults(&c); /* GPT-2 small */
  c.n_layer = L;
  ep_model m;
  double t0 = ep_time_now();
  model_alloc(&m, &c);
  /* weights: a cheap deterministic fill (model_init_random draws 124M normals) */
  for (size_t i = 0; i < m.n_floats; i++)
    m.mem[i] = 0.02f * (float)(ep_rng_uniform(1, 9, i >> 3, 0) - 0.5) * 3.4f;
  ep_graph g;
  graph_init(&g, &c, 1);
  printf("model: %d layers, D %d, V %d, %zu parameters; graph %d writers, %d readers, %lld edges (%.1f s "
         "setup)\n",
         c.n_layer, c.d_model, c.vocab, m.n_floats, g.n_writers, g.n_readers, (long long)g.n_edges,
         ep_time_now() - t0);
  bench_batch bb;
  bench_batch_make(&bb, B, T, c.vocab, 2);
  const ep_batch batch = bb.b;
  const ep_backend_ops *be = backend_cpu();
  ep_engine_opts eo = {EP_LOSS_KL, EP_ABLATE_INTERCHANGE, 1, EP_PREC_F32};
  void *ws = be->create(&m, &g, &eo, B, T);
  ep_mask_params p;
  prune_params_init(&p, g.n_edges, g.n_writers, 0);
  ep_step_out o;
  prune_step_out_init(&o, &p);
  ep_step_targets tg = {0.5, 0.3, 1};

  /* baseline: one plain forward of the batch (logits at the last position only) */
  int32_t *pos = malloc((size_t)B * sizeof *pos);
  for (int b = 0; b < B; b++)
    pos[b] = T - 1;
  float *lg = malloc((size_t)B * c.vocab * sizeof *lg);
  forward_logits(&m, bb.clean, bb.len, B, T, pos, 1, lg); /* warm-up */
  double tf = ep_time_now();
  forward_logits(&m, bb.clean, bb.len, B, T, pos, 1, lg);
  tf = ep_time_now() - tf;
  printf("plain forward (forward.h), B %d T %d: %.3f s\n", B, T, tf);
  double sum_prep = 0, sum_step = 0;
  for (int s = 0; s < steps; s++) {
    double a = ep_time_now();
    be->prepare(ws, &batch, NULL);
    double b2 = ep_time_now();
    prune_step(be, ws, &p, 0, s, &tg, &o);
    double e = ep_time_now();
    printf("step %d: prepare %.3f s, masked forward+backward %.3f s (loss %.4g)\n", s, b2 - a, e - b2,
           o.faith);
    if (s > 0 || steps == 1) {
      sum_prep += b2 - a;
      sum_step += e - b2;
    }
  }
  int n = steps > 1 ? steps - 1 : 1;
  printf("mean over %d step(s) after the first: prepare %.3f s (%.2fx plain forward), masked fwd+bwd %.3f s "
         "(%.2fx plain forward), total %.3f s/step\n",
         n, sum_prep / n, sum_prep / n / tf, sum_step / n, sum_step / n / tf, (sum_prep + sum_step) / n);
  prune_step_out_free(&o);
  prune_params_free(&p);
  be->destroy(ws);
  graph_free(&g);
  model_free(&m);
  bench_batch_free(&bb);
  free(pos);
  free(lg);
  return 0;
}
