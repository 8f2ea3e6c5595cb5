/* test_cuda_backend.c — every entry point of backend_cuda() against backend_cpu().
 *
 * Random tiny GPT-2-shaped models (four sizes, one with GPT-2's 12 heads) and a
 * Tracr-shaped model (no norms, ReLU, bidirectional, numeric head, a layer without MLP);
 * embedding nodes on/off, node masks on/off, interchange/zero/mean ablation, every loss
 * kind; a full-size batch and a smaller one in the same workspace. Compared:
 * writer_outputs, prepare's P and full outputs, faith's loss and masked outputs (forward
 * only and with backward), dz_edge and dz_node; the same bits with kept activations
 * instead of recomputation and with prepare served by the device cache; masks drawn on
 * the device (faith_sampled) against the host's draw, also queued with another batch
 * prepared behind it (faith_sampled_start / _end); TF32 steps within 1e-2 of fp32 (not
 * on the D96 model, see main), bf16 steps within 1e-1 (see lowp_cmp).
 *
 * Tolerance. Both backends compute in fp32 with different summation orders (cuBLAS
 * blocking, float attention scores on the device, double ones on the host), so each
 * element carries an error of a few fp32 ulps of the terms it sums: of the largest
 * values of its array, not of itself. Relative error is therefore measured against the
 * array's largest magnitude M: element i passes when
 *   |cuda - cpu32| <= rtol * max(|cpu32|, M) + 4 |cpu32 - cpu64|
 * with rtol 1e-5 for forward values and the loss, 1e-4 for gradients (a single value,
 * the loss, is relative to itself). The last term, the fp32 reference's own distance
 * from the fp64 reference, only matters for scalars with cancellation. For information
 * the test also prints the largest element-wise relative error over elements above
 * 1e-6 (gradients) or 1e-3 M (forward values), and the same for cpu32 against cpu64,
 * which shows the fp32 reference has element-wise errors of the same size. Any wrong
 * term (an edge, a sign, a mask, a position) shows up at 1e-3 or more. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgeprune/backend_cuda.h"
#include "edgeprune/prune.h"
#include "engine/fixture.h"
#include "test_util.h"

typedef struct {
  double max_norm;    /* max |cuda - cpu32| / M */
  double max_rel;     /* element-wise, over |cpu32| above the floor */
  double max_rel_ref; /* the same for cpu32 against cpu64 */
  long n;
} cmp_stat;

static cmp_stat st_fwd, st_grad;

static void stat_merge(cmp_stat *s, const cmp_stat *c) {
  s->max_norm = fmax(s->max_norm, c->max_norm);
  s->max_rel = fmax(s->max_rel, c->max_rel);
  s->max_rel_ref = fmax(s->max_rel_ref, c->max_rel_ref);
  s->n += c->n;
}

/* Compare n values; got/ref32/ref64 as double. */
static void cmp(const char *label, const char *what, size_t n, const double *got, const double *r32,
                const double *r64, int grad) {
  const double rtol = grad ? 1e-4 : 1e-5;
  double M = 0;
  for (size_t i = 0; i < n; i++) M = fmax(M, fabs(r32[i]));
  const double floor = grad ? 1e-6 : 1e-3 * M;
  cmp_stat c = {0, 0, 0, (long)n};
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < n; i++) {
    const double d = fabs(got[i] - r32[i]), a = fabs(r32[i]), dref = fabs(r32[i] - r64[i]);
    if (M > 0) c.max_norm = fmax(c.max_norm, d / M);
    if (a > floor) {
      c.max_rel = fmax(c.max_rel, d / a);
      c.max_rel_ref = fmax(c.max_rel_ref, dref / a);
    }
    if (!(d <= rtol * fmax(a, M) + 4 * dref)) {
      if (!bad) first = i;
      bad++;
    }
  }
  T_CHECK(bad == 0, "%s %s: %zu of %zu values off (first [%zu]: cuda %.9g cpu32 %.9g cpu64 %.9g, max %.3g)", label,
          what, bad, n, first, n ? got[first] : 0, n ? r32[first] : 0, n ? r64[first] : 0, M);
  stat_merge(grad ? &st_grad : &st_fwd, &c);
  printf("  %-44s %-10s n %7zu  |d|/M %.2e  elem rel %.2e (cpu32 vs cpu64 %.2e)\n", label, what, n, c.max_norm,
         c.max_rel, c.max_rel_ref);
}

static double *to_d(const float *x, size_t n) {
  double *d = malloc((n ? n : 1) * sizeof *d);
  for (size_t i = 0; i < n; i++) d[i] = x[i];
  return d;
}

static void cmp_f(const char *label, const char *what, size_t n, const float *got, const float *r32,
                  const float *r64) {
  double *a = to_d(got, n), *b = to_d(r32, n), *c = to_d(r64, n);
  cmp(label, what, n, a, b, c, 0);
  free(a);
  free(b);
  free(c);
}

/* largest loss / output / gradient error of a TF32 [0] and a bf16 [1] step */
static double lowp_worst[2][3];

/* A TF32 / bf16 step against the fp32 CPU reference: loss, masked outputs, dz_edge and
 * dz_node (when dzn != NULL) within tol (relative to each array's largest value; the loss
 * relative to itself).
 *
 * TF32 meets 1e-2. bf16 rounds the difference stack, the reader gradients and the masks
 * in the mixing GEMMs to 8-bit mantissas: the rounding is relative to the writer outputs,
 * while the loss and its gradients measure the masked model's small distance from the
 * full one, so on these tiny models (D 8-32, few terms per sum, Tracr's numeric heads)
 * the step moves by up to ~5e-2 (measured on an H200: loss 1.5e-2, outputs 1.5e-2,
 * gradients 5.2e-2). The bf16 check is therefore 1e-1: a wrong term (edge, mask, sign,
 * position) still moves values by O(1). */
static void lowp_cmp(const char *lb, const char *prec, double loss, double loss_ref, const float *mo,
                     const float *mo_ref, size_t PV, const double *dze, const double *dze_ref, size_t E,
                     const double *dzn, const double *dzn_ref, size_t W) {
  const double el = fabs(loss - loss_ref) / fmax(fabs(loss_ref), 1e-6);
  double *a = to_d(mo, PV), *b = to_d(mo_ref, PV);
  const double eo = t_max_rel_diff(a, b, PV), ee = t_max_rel_diff(dze, dze_ref, E),
               en = dzn ? t_max_rel_diff(dzn, dzn_ref, W) : 0;
  free(a);
  free(b);
  const double tol = strcmp(prec, "bf16") ? 1e-2 : 1e-1;
  T_CHECK(el <= tol && eo <= tol && ee <= tol && en <= tol,
          "%s %s: loss %.3g, outputs %.3g, dz_edge %.3g, dz_node %.3g relative (tolerance %g)", lb, prec, el, eo, ee,
          en, tol);
  double *worst = lowp_worst[strcmp(prec, "bf16") ? 0 : 1];
  worst[0] = fmax(worst[0], el);
  worst[1] = fmax(worst[1], eo);
  worst[2] = fmax(worst[2], fmax(ee, en));
}

/* Masks in [0, 1] with exact 0s and 1s mixed in. */
static void fill_masks(double *z, size_t n, uint64_t seed) {
  for (size_t i = 0; i < n; i++) {
    const double u = ep_rng_uniform(seed, 5, i, 0);
    z[i] = u < 0.1 ? 0.0 : u > 0.85 ? 1.0 : (u - 0.1) / 0.75;
  }
}

typedef struct {
  const char *name;
  ep_model *m;
  int B, T, npos;
  ep_loss_kind loss[2]; /* alternated over cases */
  int check_tf32;       /* 0: the TF32 step is not compared (see main) */
} model_case;

static void run_case(const model_case *mc, int emb, ep_ablation abl, int nm, ep_loss_kind loss) {
  ep_model *m = mc->m;
  ep_graph g;
  graph_init(&g, &m->cfg, emb);
  static const char *abl_name[] = {"interchange", "zero", "mean"};
  char label[128];
  snprintf(label, sizeof label, "%s emb%d %s nodes%d loss%d", mc->name, emb, abl_name[abl], nm, (int)loss);
  const ep_backend_ops *cu = backend_cuda(), *cpu = backend_cpu();
  ep_engine_opts o32 = {loss, abl, nm, EP_PREC_F32}, o64 = {loss, abl, nm, EP_PREC_F64};
  void *wc = cu->create(m, &g, &o32, mc->B, mc->T);
  void *w32 = cpu->create(m, &g, &o32, mc->B, mc->T);
  void *w64 = cpu->create(m, &g, &o64, mc->B, mc->T);
  const size_t W = (size_t)g.n_writers, E = (size_t)g.n_edges, D = (size_t)m->cfg.d_model;
  const int Vo = m->cfg.vocab_out;

  /* two batches in the same workspaces: full size, then smaller */
  const int shapes[2][2] = {{mc->B, mc->T}, {mc->B > 1 ? mc->B - 1 : 1, mc->T > 3 ? mc->T - 2 : mc->T}};
  for (int s = 0; s < 2; s++) {
    const int B = shapes[s][0], T = shapes[s][1];
    char lb[160];
    snprintf(lb, sizeof lb, "%s B%dT%d", label, B, T);
    fx_batch f;
    fx_batch_make(&f, B, T, m->cfg.vocab, mc->npos, 31 + (uint64_t)s);
    const size_t N = (size_t)B * T;

    /* writer_outputs (plain forward of the corrupted tokens) */
    float *wo[3];
    for (int i = 0; i < 3; i++) wo[i] = malloc(W * N * D * sizeof(float));
    cu->writer_outputs(wc, f.corrupted, f.len, B, T, wo[0]);
    cpu->writer_outputs(w32, f.corrupted, f.len, B, T, wo[1]);
    cpu->writer_outputs(w64, f.corrupted, f.len, B, T, wo[2]);
    cmp_f(lb, "writers", W * N * D, wo[0], wo[1], wo[2]);
    for (int i = 0; i < 3; i++) free(wo[i]);

    /* mean ablation: the batch's per-position means, laid out [W, T_max, D] (backend.h) */
    float *mean = NULL;
    if (abl == EP_ABLATE_MEAN) {
      float *mb = fx_mean_writers(cpu, w32, &g, (int)D, &f); /* [W, T, D] */
      mean = calloc(W * (size_t)mc->T * D, sizeof(float));
      for (size_t w = 0; w < W; w++) memcpy(mean + w * mc->T * D, mb + w * T * D, (size_t)T * D * sizeof(float));
      free(mb);
    }
    const int64_t P = cu->prepare(wc, &f.b, mean);
    const int64_t P32 = cpu->prepare(w32, &f.b, mean);
    const int64_t P64 = cpu->prepare(w64, &f.b, mean);
    T_CHECK(P == P32 && P == P64, "%s: P %lld vs %lld / %lld", lb, (long long)P, (long long)P32, (long long)P64);
    const size_t PV = (size_t)P32 * Vo;
    float *fo[3];
    for (int i = 0; i < 3; i++) fo[i] = malloc((PV ? PV : 1) * sizeof(float));
    cu->full_outputs(wc, fo[0]);
    cpu->full_outputs(w32, fo[1]);
    cpu->full_outputs(w64, fo[2]);
    cmp_f(lb, "full", PV, fo[0], fo[1], fo[2]);

    double *ze = malloc(E * sizeof(double)), *zn = nm ? malloc(W * sizeof(double)) : NULL;
    fill_masks(ze, E, 100 + (uint64_t)s);
    if (nm) fill_masks(zn, W, 200 + (uint64_t)s);
    double *dze[3], *dzn[3], loss_fwd[3], loss_bwd[3];
    for (int i = 0; i < 3; i++) {
      dze[i] = malloc(E * sizeof(double));
      dzn[i] = malloc(W * sizeof(double));
    }
    const ep_backend_ops *bes[3] = {cu, cpu, cpu};
    void *wss[3] = {wc, w32, w64};
    float *mo[3];
    for (int i = 0; i < 3; i++) {
      mo[i] = malloc((PV ? PV : 1) * sizeof(float));
      loss_fwd[i] = bes[i]->faith(wss[i], ze, zn, NULL, NULL, mo[i]);
    }
    cmp_f(lb, "masked fwd", PV, mo[0], mo[1], mo[2]);
    for (int i = 0; i < 3; i++) loss_bwd[i] = bes[i]->faith(wss[i], ze, zn, dze[i], nm ? dzn[i] : NULL, mo[i]);
    cmp_f(lb, "masked", PV, mo[0], mo[1], mo[2]);
    cmp(lb, "loss", 1, &loss_fwd[0], &loss_fwd[1], &loss_fwd[2], 0);
    cmp(lb, "loss(bwd)", 1, &loss_bwd[0], &loss_bwd[1], &loss_bwd[2], 0);
    T_CHECK(loss_fwd[0] == loss_bwd[0], "%s: loss with and without backward differ (%.17g, %.17g)", lb,
            loss_fwd[0], loss_bwd[0]);
    cmp(lb, "dz_edge", E, dze[0], dze[1], dze[2], 1);
    if (nm) cmp(lb, "dz_node", W, dzn[0], dzn[1], dzn[2], 1);
    /* kept activations instead of recomputation: the same kernels on the same data, so
     * the same bits */
    backend_cuda_set_keep_activations(wc, 1);
    double *dze_k = malloc(E * sizeof(double)), *dzn_k = malloc(W * sizeof(double));
    float *mo_k = malloc((PV ? PV : 1) * sizeof(float));
    const double loss_k = cu->faith(wc, ze, zn, dze_k, nm ? dzn_k : NULL, mo_k);
    backend_cuda_set_keep_activations(wc, 0);
    T_CHECK(loss_k == loss_bwd[0], "%s: kept activations: loss %.17g vs %.17g", lb, loss_k, loss_bwd[0]);
    T_CHECK(!memcmp(mo_k, mo[0], PV * sizeof(float)), "%s: kept activations: masked outputs differ", lb);
    T_CHECK(!memcmp(dze_k, dze[0], E * sizeof(double)), "%s: kept activations: dz_edge differs", lb);
    T_CHECK(!nm || !memcmp(dzn_k, dzn[0], W * sizeof(double)), "%s: kept activations: dz_node differs", lb);
    /* the prepare cache: the same batch again comes from the cache (kl losses), and the
     * step is the same bits as with prepare computed */
    backend_cuda_set_prepare_cache(wc, (size_t)64 << 20);
    T_CHECK(cu->prepare(wc, &f.b, mean) == P, "%s: cache: P differs", lb);
    T_CHECK(cu->prepare(wc, &f.b, mean) == P, "%s: cache: P differs", lb);
    int64_t ce, ch, cm;
    size_t cb;
    backend_cuda_cache_stats(wc, &ce, &ch, &cm, &cb);
    const int kl = loss == EP_LOSS_KL || loss == EP_LOSS_KL_SUM;
    T_CHECK(!kl || (ch == 1 && cm == 1 && ce == B), "%s: cache: %lld entries, %lld hits, %lld misses", lb,
            (long long)ce, (long long)ch, (long long)cm);
    const double loss_c = cu->faith(wc, ze, zn, dze_k, nm ? dzn_k : NULL, mo_k);
    T_CHECK(loss_c == loss_bwd[0], "%s: cached prepare: loss %.17g vs %.17g", lb, loss_c, loss_bwd[0]);
    T_CHECK(!memcmp(mo_k, mo[0], PV * sizeof(float)), "%s: cached prepare: masked outputs differ", lb);
    T_CHECK(!memcmp(dze_k, dze[0], E * sizeof(double)), "%s: cached prepare: dz_edge differs", lb);
    T_CHECK(!nm || !memcmp(dzn_k, dzn[0], W * sizeof(double)), "%s: cached prepare: dz_node differs", lb);
    backend_cuda_set_prepare_cache(wc, 0);
    /* masks drawn on the device against the host's draw of the same (seed, step):
     * log-alphas ~ N(1, 2) give masks at 0, at 1 and between */
    {
      ep_mask_params mp;
      prune_params_init_normal(&mp, (int64_t)E, nm ? (int)W : 0, 9 + (uint64_t)s, 1.0f, 2.0f);
      ep_step_out oh, od;
      prune_step_out_init(&oh, &mp);
      prune_step_out_init(&od, &mp);
      prune_sample_masks(&mp, 77, 3 + s, &oh);
      prune_step_faith(cu, wc, &mp, &oh);
      prune_step_sample_faith(cu, wc, &mp, 77, 3 + s, &od);
      const size_t nmask = E + (nm ? W : 0);
      double dz_max = 0, dz_ref = 0, dl_max = 0, g_max = 0, g_ref = 0;
      size_t n0 = 0, n1 = 0, nmid = 0;
      for (size_t i = 0; i < nmask; i++) {
        const int node = i >= E;
        const double zh = node ? oh.z_node[i - E] : oh.z_edge[i], zd = node ? od.z_node[i - E] : od.z_edge[i];
        const double ah = node ? oh.dzdla_node[i - E] : oh.dzdla_edge[i];
        const double ad = node ? od.dzdla_node[i - E] : od.dzdla_edge[i];
        const double gh = node ? oh.dz_node[i - E] : oh.dz_edge[i],
                     gd = node ? od.dz_node[i - E] : od.dz_edge[i];
        dz_max = fmax(dz_max, fabs(zd - zh));
        dl_max = fmax(dl_max, fabs(ad - ah));
        dz_ref = fmax(dz_ref, fabs(ah));
        g_max = fmax(g_max, fabs(gd - gh));
        g_ref = fmax(g_ref, fabs(gh));
        n0 += zh == 0.0;
        n1 += zh == 1.0;
        nmid += zh > 0.0 && zh < 1.0;
      }
      T_CHECK(n0 > 0 && n1 > 0 && nmid > 0, "%s: device masks: the draw has %zu zeros, %zu ones, %zu between",
              lb, n0, n1, nmid);
      T_CHECK(dz_max <= 1e-12, "%s: device masks: z differs from the host's by %.3g", lb, dz_max);
      T_CHECK(dl_max <= 1e-12 * fmax(dz_ref, 1.0), "%s: device masks: dz/dlog_alpha differs by %.3g", lb,
              dl_max);
      T_CHECK(fabs(od.faith - oh.faith) <= 1e-6 * fmax(fabs(oh.faith), 1e-30),
              "%s: device masks: loss %.17g vs %.17g", lb, od.faith, oh.faith);
      T_CHECK(g_ref > 0 && g_max <= 1e-5 * g_ref, "%s: device masks: dz differs by %.3g (largest %.3g)", lb,
              g_max, g_ref);
      /* in the training loop's order: the step queued, another batch (other tokens, other
       * loss positions and so other row weights) prepared behind it, then the step
       * finished: the bits of the step run at once; then the other batch is the one
       * prepared (its step equals a step prepared afresh) */
      {
        fx_batch f2;
        fx_batch_make(&f2, B, T, m->cfg.vocab, mc->npos > 1 ? 1 : 2, 57 + (uint64_t)s);
        ep_step_out oq, o2, o2r;
        prune_step_out_init(&oq, &mp);
        prune_step_out_init(&o2, &mp);
        prune_step_out_init(&o2r, &mp);
        prune_step_sample_faith_start(cu, wc, &mp, 77, 3 + s);
        cu->prepare(wc, &f2.b, mean);
        prune_step_sample_faith_end(cu, wc, &mp, &oq);
        const size_t nE = E * sizeof(double), nW = W * sizeof(double);
        T_CHECK(oq.faith == od.faith && !memcmp(oq.z_edge, od.z_edge, nE) && !memcmp(oq.dz_edge, od.dz_edge, nE) &&
                    !memcmp(oq.dzdla_edge, od.dzdla_edge, nE) &&
                    (!nm || (!memcmp(oq.z_node, od.z_node, nW) && !memcmp(oq.dz_node, od.dz_node, nW))),
                "%s: queued step: loss %.17g vs %.17g, or the masks or gradients differ from the step run at once",
                lb, oq.faith, od.faith);
        prune_step_sample_faith(cu, wc, &mp, 78, 3 + s, &o2);
        cu->prepare(wc, &f2.b, mean);
        prune_step_sample_faith(cu, wc, &mp, 78, 3 + s, &o2r);
        T_CHECK(o2.faith == o2r.faith && !memcmp(o2.dz_edge, o2r.dz_edge, nE),
                "%s: queued step: the batch prepared behind it gives loss %.17g, prepared afresh %.17g", lb,
                o2.faith, o2r.faith);
        cu->prepare(wc, &f.b, mean); /* back to this case's batch */
        prune_step_out_free(&oq);
        prune_step_out_free(&o2);
        prune_step_out_free(&o2r);
        fx_batch_free(&f2);
      }
      prune_step_out_free(&oh);
      prune_step_out_free(&od);
      prune_params_free(&mp);
    }
    /* TF32 and bf16: the whole step within 1e-2 of the fp32 reference (relative to each
     * array's largest value; the loss relative to itself) */
    /* TF32 also with kept activations: the MLP reader merged into the q/k/v mixing, and
     * (GPT-2 shapes) only the fp16 copy of delta written */
    for (int pr = mc->check_tf32 ? 1 : 2; pr <= 2; pr++)
      for (int keep = 0; keep < (pr == 1 ? 2 : 1); keep++) {
        backend_cuda_set_precision(wc, pr);
        backend_cuda_set_keep_activations(wc, keep);
        const double loss_p = cu->faith(wc, ze, zn, dze_k, nm ? dzn_k : NULL, mo_k);
        backend_cuda_set_keep_activations(wc, 0);
        backend_cuda_set_precision(wc, 0);
        lowp_cmp(lb, pr == 1 ? (keep ? "tf32 kept" : "tf32") : "bf16", loss_p, loss_bwd[1], mo_k, mo[1], PV, dze_k,
                 dze[1], E, nm ? dzn_k : NULL, dzn[1], W);
      }
    free(dze_k);
    free(dzn_k);
    free(mo_k);
    double gmax = 0;
    for (size_t e = 0; e < E; e++) gmax = fmax(gmax, fabs(dze[1][e]));
    T_CHECK(gmax > 0, "%s: all edge gradients are zero (the comparison would be empty)", lb);

    for (int i = 0; i < 3; i++) {
      free(fo[i]);
      free(mo[i]);
      free(dze[i]);
      free(dzn[i]);
    }
    free(ze);
    free(zn);
    free(mean);
    fx_batch_free(&f);
  }
  cu->destroy(wc);
  cpu->destroy(w32);
  cpu->destroy(w64);
  graph_free(&g);
}

/* The TF32 step reads an fp16 copy of the difference stack (backend_cuda_delta16). A
 * model whose writer outputs pass fp16's range: layer 0's W_O scaled by 1e6 (heads'
 * outputs ~1e6). The backend must see the overflow, turn the copy off and run the step
 * again on fp32 differences: the step within 1e-2 of the fp32 reference, run at once and
 * queued with a batch of another shape prepared behind it (which then gives the bits of
 * the same step run at once on fp32 differences). */
static void run_delta16_overflow(void) {
  const char *env = getenv("EP_CUDA_DELTA16");
  if (env && !atoi(env)) return; /* the copy is off from the start */
  ep_model m;
  fx_gpt2_tiny(&m, 3, 4, 32, 37, 1);
  const size_t no = (size_t)m.cfg.n_head * m.cfg.d_head * m.cfg.d_model;
  for (size_t i = 0; i < no; i++) m.layers[0].w_o[i] *= 1e6f;
  ep_graph g;
  graph_init(&g, &m.cfg, 1);
  const ep_backend_ops *cu = backend_cuda(), *cpu = backend_cpu();
  const ep_engine_opts o = {EP_LOSS_KL, EP_ABLATE_INTERCHANGE, 1, EP_PREC_F32};
  const int B = 4, T = 12;
  const size_t E = (size_t)g.n_edges, W = (size_t)g.n_writers, Vo = (size_t)m.cfg.vocab_out;
  fx_batch f, f2;
  fx_batch_make(&f, B, T, m.cfg.vocab, 2, 31);
  fx_batch_make(&f2, B - 1, T - 2, m.cfg.vocab, 1, 57);
  void *w32 = cpu->create(&m, &g, &o, B, T);
  const int64_t P = cpu->prepare(w32, &f.b, NULL);
  double *ze = malloc(E * sizeof(double)), *zn = malloc(W * sizeof(double));
  double *dze[2], *dzn[2];
  float *mo[2];
  for (int i = 0; i < 2; i++) {
    dze[i] = malloc(E * sizeof(double));
    dzn[i] = malloc(W * sizeof(double));
    mo[i] = malloc((size_t)P * Vo * sizeof(float));
  }
  fill_masks(ze, E, 100);
  fill_masks(zn, W, 200);
  const double ref = cpu->faith(w32, ze, zn, dze[1], dzn[1], mo[1]);
  /* at once (faith) */
  void *wc = cu->create(&m, &g, &o, B, T);
  backend_cuda_set_precision(wc, 1);
  T_CHECK(backend_cuda_delta16(wc), "delta16 overflow: TF32 does not start with the fp16 copy");
  T_CHECK(cu->prepare(wc, &f.b, NULL) == P, "delta16 overflow: P differs");
  const double loss = cu->faith(wc, ze, zn, dze[0], dzn[0], mo[0]);
  T_CHECK(!backend_cuda_delta16(wc), "delta16 overflow: writer outputs ~1e6 left the fp16 copy on");
  lowp_cmp("delta16 overflow, at once", "tf32", loss, ref, mo[0], mo[1], (size_t)P * Vo, dze[0], dze[1], E, dzn[0],
           dzn[1], W);
  cu->destroy(wc);
  /* queued, the other batch prepared behind it, against the CPU's draw of the same step */
  ep_mask_params mp;
  prune_params_init_normal(&mp, (int64_t)E, (int)W, 9, 1.0f, 2.0f);
  ep_step_out oq, od, oc;
  prune_step_out_init(&oq, &mp);
  prune_step_out_init(&od, &mp);
  prune_step_out_init(&oc, &mp);
  prune_step_sample_faith(cpu, w32, &mp, 77, 3, &oc);
  wc = cu->create(&m, &g, &o, B, T);
  backend_cuda_set_precision(wc, 1);
  cu->prepare(wc, &f.b, NULL);
  prune_step_sample_faith_start(cu, wc, &mp, 77, 3);
  cu->prepare(wc, &f2.b, NULL);
  prune_step_sample_faith_end(cu, wc, &mp, &oq);
  T_CHECK(!backend_cuda_delta16(wc), "delta16 overflow: queued: the fp16 copy stayed on");
  lowp_cmp("delta16 overflow, queued", "tf32", oq.faith, oc.faith, NULL, NULL, 0, oq.dz_edge, oc.dz_edge, E,
           oq.dz_node, oc.dz_node, W);
  cu->prepare(wc, &f.b, NULL);
  prune_step_sample_faith(cu, wc, &mp, 77, 3, &od);
  T_CHECK(oq.faith == od.faith && !memcmp(oq.dz_edge, od.dz_edge, E * sizeof(double)) &&
              !memcmp(oq.dz_node, od.dz_node, W * sizeof(double)),
          "delta16 overflow: queued step run again gives loss %.17g, the step at once %.17g", oq.faith, od.faith);
  printf("delta16 overflow: loss %.9g (fp32 reference %.9g), queued %.9g (reference %.9g)\n", loss, ref, oq.faith,
         oc.faith);
  cu->destroy(wc);
  prune_step_out_free(&oq);
  prune_step_out_free(&od);
  prune_step_out_free(&oc);
  prune_params_free(&mp);
  for (int i = 0; i < 2; i++) {
    free(dze[i]);
    free(dzn[i]);
    free(mo[i]);
  }
  free(ze);
  free(zn);
  cpu->destroy(w32);
  fx_batch_free(&f);
  fx_batch_free(&f2);
  graph_free(&g);
  model_free(&m);
}

int main(void) {
  if (!backend_cuda_available()) {
    printf("SKIP: no CUDA device\n");
    return 77;
  }
  const int dev = backend_cuda_select_device();
  printf("CUDA device %d\n", dev);
  ep_model g_small, g_tiny, tracr, g_wide;
  fx_gpt2_tiny(&g_small, 3, 4, 32, 37, 1);
  fx_gpt2_tiny(&g_tiny, 2, 2, 8, 11, 2);
  fx_tracr_tiny(&tracr, 3);
  /* 18 q/k/v readers a layer and D 96: the fused mixing + norm kernel (mixnorm.cu) with
   * 18 accumulators a column, or in reader groups of 12 + 6 (EP_CUDA_MIXNORM_SPLIT=1), and
   * two columns a thread. Its TF32 step (cuBLAS TF32 GEMMs, which this model's checks are
   * not about) moves by up to 1.07e-2 of the gradients' scale on an H200, over the 1e-2
   * check, so only its fp32 and bf16 steps are compared. */
  fx_gpt2_tiny(&g_wide, 2, 6, 96, 23, 4);
  /* 12 heads, as GPT-2 small: 37 q/k/v and MLP readers a layer, so the ddelta update of a
   * pair of layers (cu_layer_ddelta) takes 74 reduction rows, k_ddelta_tc's widest shape */
  ep_model g_heads;
  fx_gpt2_tiny(&g_heads, 3, 12, 48, 29, 5);
  const model_case cases[] = {
      {"gpt2 L3 H4 D32", &g_small, 4, 12, 2, {EP_LOSS_KL, EP_LOSS_KL_SUM}, 1},
      {"gpt2 L2 H2 D8", &g_tiny, 3, 7, 1, {EP_LOSS_KL_SUM, EP_LOSS_MSE}, 1},
      {"tracr", &tracr, 3, 6, 3, {EP_LOSS_POSITION_KL, EP_LOSS_MSE}, 1},
      {"gpt2 L2 H6 D96", &g_wide, 3, 5, 1, {EP_LOSS_KL, EP_LOSS_KL_SUM}, 0},
      {"gpt2 L3 H12 D48", &g_heads, 2, 6, 1, {EP_LOSS_KL_SUM, EP_LOSS_KL}, 1},
  };
  int k = 0;
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++)
    for (int emb = 0; emb < 2; emb++)
      for (int abl = 0; abl < 3; abl++)
        for (int nm = 0; nm < 2; nm++, k++) run_case(&cases[c], emb, (ep_ablation)abl, nm, cases[c].loss[k % 2]);
  run_delta16_overflow();
  printf("forward:   max |d|/M %.3e (tolerance 1e-5), element-wise rel %.3e (cpu32 vs cpu64 %.3e), %ld values\n",
         st_fwd.max_norm, st_fwd.max_rel, st_fwd.max_rel_ref, st_fwd.n);
  printf("gradients: max |d|/M %.3e (tolerance 1e-4), element-wise rel %.3e (cpu32 vs cpu64 %.3e), %ld values\n",
         st_grad.max_norm, st_grad.max_rel, st_grad.max_rel_ref, st_grad.n);
  for (int i = 0; i < 2; i++)
    printf("%s step: loss rel %.3e, outputs |d|/M %.3e, gradients |d|/M %.3e (tolerance %g)\n", i ? "bf16" : "tf32",
           lowp_worst[i][0], lowp_worst[i][1], lowp_worst[i][2], i ? 1e-1 : 1e-2);
  model_free(&g_small);
  model_free(&g_tiny);
  model_free(&tracr);
  model_free(&g_wide);
  model_free(&g_heads);
  return t_done();
}
