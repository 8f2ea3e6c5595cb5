/* test_cuda_train.c — a 300-step Edge Pruning run on the CUDA backend (fp32) reaches the
 * same circuit as the same run on the CPU reference.
 *
 * A tiny random GPT-2-shaped model (3 layers, 4 heads, D 32: 302 edges, 17 writers),
 * interchange ablation, KL loss, edge and node masks, the prepare cache on: the CUDA run
 * takes the device-KL path with its CUDA graph and the merged reader-group backward. Both
 * runs draw the same hard-concrete samples (host RNG), so they differ only by the
 * backends' rounding (about 1e-5 relative per step, docs/cuda-backend.md); the test
 * requires the circuits extracted at the target sparsity (edges and nodes) to be
 * identical and prints how far the trained log_alpha drifted apart.
 * Skips (77) without a CUDA device. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgeprune/backend_cuda.h"
#include "edgeprune/circuit.h"
#include "edgeprune/core.h"
#include "edgeprune/train.h"
#include "engine/fixture.h"
#include "test_util.h"

#define T_LEN 8
#define VOCAB 37

/* Train from the same initial masks on one backend; the circuit at the targets. */
static void train_on(ep_backend_kind kind, const ep_model *m, const ep_graph *g, const ep_dataset *train,
                     const ep_dataset *val, ep_mask_params *p, ep_circuit *circ) {
  ep_prune_config c;
  prune_config_defaults(&c);
  c.steps = 300;
  c.batch_size = 16;
  c.lr_warmup = 20;
  c.sparsity_warmup = 150;
  c.target_edge = 0.8;
  c.target_node = 0.3;
  c.lr[2] = c.lr[3] = 0.01; /* lambda LRs for 302 edges (see test_e2e.c) */
  c.node_masks = 1;
  c.log_every = 100;
  c.val_every = 0;
  c.backend.kind = kind;
  c.backend.compute = EP_COMPUTE_FP32;
  c.backend.cache_mb = 16; /* every training example served from the cache after epoch 1 */
  prune_params_init(p, g->n_edges, g->n_writers, (uint64_t)c.seed);
  ep_train_result res;
  const int st = prune_train(&c, m, g, train, val, p, &res);
  T_CHECK(st == 0 && res.steps_done == c.steps, "%s run finished (%d, %lld steps)", backend_kind_name(kind), st,
          (long long)res.steps_done);
  float *la_e = malloc((size_t)g->n_edges * sizeof *la_e), *la_n = malloc((size_t)g->n_writers * sizeof *la_n);
  for (int64_t e = 0; e < g->n_edges; e++)
    la_e[e] = (float)p->la_edge[e];
  for (int w = 0; w < g->n_writers; w++)
    la_n[w] = (float)p->la_node[w];
  ep_extract_options eo;
  extract_options_default(&eo);
  eo.edge_sparsity = c.target_edge;
  eo.node_sparsity = c.target_node;
  extract_circuit(g, la_e, la_n, &eo, circ);
  printf("%s: %lld of %lld edges, %d of %d nodes kept\n", backend_kind_name(kind), (long long)circ->n_kept_edges,
         (long long)g->n_edges, circ->n_kept_nodes, g->n_writers);
  free(la_e);
  free(la_n);
}

int main(void) {
  if (!backend_cuda_available()) {
    printf("SKIP: no CUDA device\n");
    return 77;
  }
  ep_model m;
  fx_gpt2_tiny(&m, 3, 4, 32, VOCAB, 7);
  ep_dataset train, val;
  /* the corrupted prompts swap the tokens at positions 1 and 3 for fresh ones */
  fx_dataset_random(&train, 96, T_LEN, VOCAB, 3, 60, (1u << 1) | (1u << 3));
  fx_dataset_random(&val, 32, T_LEN, VOCAB, 4, 60, (1u << 1) | (1u << 3));
  ep_graph g;
  graph_init(&g, &m.cfg, 1);
  prune_check_dataset(&train, &m.cfg, "(memory)", "train");

  ep_mask_params pc, pg;
  ep_circuit cc, cg;
  train_on(EP_BACKEND_CPU, &m, &g, &train, &val, &pc, &cc);
  train_on(EP_BACKEND_CUDA, &m, &g, &train, &val, &pg, &cg);

  double dmax = 0, amax = 0;
  for (int64_t e = 0; e < g.n_edges; e++) {
    dmax = fmax(dmax, fabs(pc.la_edge[e] - pg.la_edge[e]));
    amax = fmax(amax, fabs(pc.la_edge[e]));
  }
  double dnode = 0;
  for (int w = 0; w < g.n_writers; w++)
    dnode = fmax(dnode, fabs(pc.la_node[w] - pg.la_node[w]));
  int64_t diff_e = 0;
  for (int64_t e = 0; e < g.n_edges; e++)
    diff_e += cc.edge_kept[e] != cg.edge_kept[e];
  int diff_n = 0;
  for (int w = 0; w < g.n_writers; w++)
    diff_n += cc.node_kept[w] != cg.node_kept[w];
  printf("log_alpha after 300 steps: max |cuda - cpu| %.3g on edges (largest |log_alpha| %.3g), %.3g on nodes\n",
         dmax, amax, dnode);
  printf("circuits: %lld edges and %d nodes differ\n", (long long)diff_e, diff_n);
  T_CHECK(cc.n_kept_edges > 0 && cc.n_kept_edges < g.n_edges, "the CPU circuit is a proper subgraph (%lld edges)",
          (long long)cc.n_kept_edges);
  T_CHECK(diff_e == 0, "%lld edges differ between the CUDA and CPU circuits", (long long)diff_e);
  T_CHECK(diff_n == 0, "%d nodes differ between the CUDA and CPU circuits", diff_n);

  circuit_free(&cc);
  circuit_free(&cg);
  prune_params_free(&pc);
  prune_params_free(&pg);
  graph_free(&g);
  fx_dataset_free(&train);
  fx_dataset_free(&val);
  model_free(&m);
  return t_done();
}
