/* test_schedule.c — the pieces of the optimiser against values computed by hand:
 * sparsity target ramps (linear and log-linear in 1 - t), the learning-rate schedule
 * (Hugging Face linear warmup/decay), AdamW with decoupled weight decay (torch.optim.AdamW
 * semantics), lambda ascent, global gradient clipping (torch clip_grad_norm_), the
 * hard-concrete sample, the log_alpha initialisation (default and from the deck keys
 * prune.init_log_alpha_mean / _std) and the per-epoch data order. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "edgeprune/deck.h"
#include "edgeprune/prune.h"
#include "edgeprune/rng.h"
#include "edgeprune/train.h"
#include "test_util.h"

int main(void) {
  /* targets */
  T_CLOSE(prune_target(0.0, 0.9, 0, 100, 0), 0.0, 1e-15, 0, "linear start");
  T_CLOSE(prune_target(0.0, 0.9, 50, 100, 0), 0.45, 1e-15, 0, "linear middle");
  T_CLOSE(prune_target(0.0, 0.9, 100, 100, 0), 0.9, 1e-15, 0, "linear end");
  T_CLOSE(prune_target(0.0, 1.1, 500, 100, 0), 1.1, 1e-15, 0, "target above 1 is legal");
  /* log-linear in (1 - t): 1 - t = (1 - start)^(1-f) (1 - target)^f */
  T_CLOSE(prune_target(0.0, 0.99, 50, 100, 1), 1 - sqrt(0.01), 1e-12, 0, "log middle");
  T_CLOSE(prune_target(0.5, 0.99, 25, 100, 1), 1 - pow(0.5, 0.75) * pow(0.01, 0.25), 1e-12, 0, "log quarter");
  T_CLOSE(prune_target(0.0, 0.99, 0, 0, 1), 0.99, 1e-15, 0, "no warmup");
  /* learning-rate factor */
  T_CLOSE(prune_lr_factor(0, 200, 3000), 0.0, 0, 0, "lr step 0");
  T_CLOSE(prune_lr_factor(100, 200, 3000), 0.5, 1e-15, 0, "lr warmup middle");
  T_CLOSE(prune_lr_factor(200, 200, 3000), 1.0, 1e-15, 0, "lr peak");
  T_CLOSE(prune_lr_factor(1600, 200, 3000), 0.5, 1e-15, 0, "lr decay middle");
  T_CLOSE(prune_lr_factor(3000, 200, 3000), 0.0, 0, 0, "lr end");

  /* AdamW, one step: theta = [edge la, node la, edge l1, edge l2, node l1, node l2] */
  ep_mask_params p;
  prune_params_init(&p, 1, 1, 0);
  T_CHECK(fabs(p.la_edge[0] - 10) < 0.05 && fabs(p.la_node[0] - 10) < 0.05, "log_alpha init near 10: %g %g",
          p.la_edge[0], p.la_node[0]);
  p.la_edge[0] = 10;
  p.la_node[0] = -2;
  double lr[4] = {0.8, 0.4, 0.2, 0.1};
  ep_adamw o;
  prune_adamw_init(&o, &p, lr);
  double g[6] = {0.3, -0.2, -0.1, 0.01, 0, 0}; /* norm < 1: no clipping */
  double norm = prune_adamw_step(&o, &p, g, 1.0, 1.0);
  T_CLOSE(norm, sqrt(0.09 + 0.04 + 0.01 + 0.0001), 1e-15, 0, "gradient norm");
  /* decay, then m_hat / (sqrt(v_hat) + eps) = sign(g) */
  T_CLOSE(p.la_edge[0], 10 - 0.8 * 0.01 * 10 - 0.8 * 0.3 / (0.3 + 1e-8), 1e-12, 0, "AdamW edge");
  T_CLOSE(p.la_node[0], -2 + 0.4 * 0.01 * 2 + 0.4 * 0.2 / (0.2 + 1e-8), 1e-12, 0, "AdamW node");
  T_CLOSE(p.lam_edge[0], -0.2 * 0.1 / (0.1 + 1e-8), 1e-12, 0, "lambda1 ascends along d/dlambda1 = -0.1");
  T_CLOSE(p.lam_edge[1], 0.2 * 0.01 / (0.01 + 1e-8), 1e-12, 0, "lambda2 ascends");
  T_CLOSE(p.lam_node[0], 0.0, 0, 0, "zero gradient leaves lambda at 0");
  /* clipping: norm 5 -> scaled to 1; with lr factor 0.5 */
  prune_adamw_free(&o);
  p.la_edge[0] = 0;
  p.la_node[0] = 0;
  prune_adamw_init(&o, &p, lr);
  double g2[6] = {3, 4, 0, 0, 0, 0};
  norm = prune_adamw_step(&o, &p, g2, 1.0, 0.5);
  T_CLOSE(norm, 5.0, 1e-15, 0, "norm before clipping");
  double c = 1.0 / (5 + 1e-6), ge = 3 * c;
  T_CLOSE(o.m[0], 0.1 * ge, 1e-15, 0, "first moment of the clipped gradient");
  T_CLOSE(o.v[1], 0.001 * (4 * c) * (4 * c), 1e-15, 0, "second moment of the clipped gradient");
  T_CLOSE(p.la_edge[0], -0.4 * ge / (ge + 1e-8), 1e-12, 0, "half learning rate");
  prune_adamw_free(&o);
  prune_params_free(&p);

  /* log_alpha init from the deck keys: the defaults give prune_params_init's values bit for
   * bit (goldens and restarts depend on it); other values are N(mean, std) on the same draws */
  {
    char *ov[] = {"model.path=m.h5", "data.path=d.h5"};
    ep_deck *dk = deck_load(NULL, prune_deck_keys, 2, ov);
    ep_prune_config cd, cf;
    prune_config_from_deck(&cd, dk, NULL);
    prune_config_defaults(&cf);
    ep_mask_params p0, p1, p2, p3;
    prune_params_init(&p0, 40, 7, 5);
    prune_params_init_normal(&p1, 40, 7, 5, (float)cd.init_mean, (float)cd.init_std);
    prune_params_init_normal(&p2, 40, 7, 5, (float)cf.init_mean, (float)cf.init_std);
    prune_params_init_normal(&p3, 40, 7, 5, 3.0f, 1.5f);
    int same = 1, normal = 1;
    for (int64_t i = 0; i < p0.n; i++) {
      same &= p0.theta[i] == p1.theta[i] && p0.theta[i] == p2.theta[i];
      double want = i < 47 ? 3.0 + 1.5 * ep_rng_normal(5, EP_RNG_STREAM_LOGALPHA, (uint64_t)i, 0) : 0.0;
      normal &= p3.theta[i] == want;
    }
    T_CHECK(cd.init_mean == 10 && cd.init_std == 0.01, "deck defaults 10 / 0.01: %g %g", cd.init_mean,
            cd.init_std);
    T_CHECK(same, "default deck keys and config defaults reproduce prune_params_init exactly");
    T_CHECK(normal, "init N(3, 1.5) on the LOGALPHA draws, lambdas 0");
    prune_params_free(&p0);
    prune_params_free(&p1);
    prune_params_free(&p2);
    prune_params_free(&p3);
    deck_free(dk);
  }

  /* hard concrete: u = 0.5 gives s = sigmoid(la / beta) */
  double d;
  double beta = EP_PRUNE_HC_BETA, l = EP_PRUNE_HC_L, r = EP_PRUNE_HC_R;
  double s = 1 / (1 + exp(-0.3 / beta));
  T_CLOSE(prune_hc_sample(0.3, 0.5, &d), s * (r - l) + l, 1e-15, 0, "hard-concrete z");
  T_CLOSE(d, (r - l) * s * (1 - s) / beta, 1e-15, 0, "dz/dlog_alpha");
  T_CHECK(prune_hc_sample(10, 0.5, &d) == 1 && d == 0, "saturated at 1 with no gradient");
  T_CHECK(prune_hc_sample(-10, 0.5, &d) == 0 && d == 0, "saturated at 0 with no gradient");
  double u = prune_hc_noise(7, 2, 3, 4);
  T_CHECK(u > 1e-6 && u < 1 - 1e-6 && u == prune_hc_noise(7, 2, 3, 4) && u != prune_hc_noise(7, 2, 4, 4),
          "noise keyed by (seed, step, index)");

  /* data order: a permutation, seeded, different per epoch */
  int64_t a[50], b[50], cnt[50] = {0};
  prune_epoch_order(3, 0, 50, a);
  prune_epoch_order(3, 1, 50, b);
  int same = 1, diff = 0;
  for (int i = 0; i < 50; i++) {
    cnt[a[i]]++;
    diff += a[i] != b[i];
  }
  for (int i = 0; i < 50; i++)
    same &= cnt[i] == 1;
  T_CHECK(same, "epoch order is a permutation");
  T_CHECK(diff > 10, "epochs differ (%d positions)", diff);
  prune_epoch_order(3, 0, 50, b);
  for (int i = 0; i < 50; i++)
    same &= a[i] == b[i];
  T_CHECK(same, "same seed and epoch, same order");
  return t_done();
}
