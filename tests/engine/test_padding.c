/* test_padding.c — a batch padded to its longest example gives the step of the same rows
 * padded to the split's length:
 *   prune_batch_gather keeps T = the longest length among the rows, not the split's T;
 *   with the workspace made for the split's T, the loss, the masked outputs and the edge
 *   and node gradients of the short batch equal those of the fully padded one, for
 *   interchange, zero and mean ablation (mean_c is [W, T_max, D]: the short batch reads
 *   its first T positions of each writer), in fp32 and fp64 on the CPU engine, and in
 *   fp32 on the CUDA backend when this build and machine have one: there with the
 *   prepare cache on, so that the fully padded batch is served from the entries the
 *   short one stored (entries hold an example's own positions only).
 * Positions past an example's length never reach its loss, so only GEMM blocking (the
 * number of token rows) may move the last bits in fp32. */
#include <math.h>
#include <stdio.h>

#include "edgeprune/backend_select.h"
#include "edgeprune/train.h"
#ifdef EP_HAVE_CUDA
#include "edgeprune/backend_cuda.h"
#endif
#include "fixture.h"
#include "test_util.h"

#define TS 8 /* the split's row length */
#define NB 5 /* examples in the batch */

typedef struct {
  double loss;
  double *dze, *dzn;
  float *out;
  int64_t P;
} step_res;

/* prepare + masked forward/backward of batch b in ws, masks z. */
static step_res step(const ep_backend_ops *be, void *ws, const ep_graph *g, const ep_batch *b, const float *mean,
                     const double *ze, const double *zn, int Vo) {
  step_res r;
  r.P = be->prepare(ws, b, mean);
  r.dze = malloc((size_t)g->n_edges * sizeof *r.dze);
  r.dzn = malloc((size_t)g->n_writers * sizeof *r.dzn);
  r.out = malloc((size_t)(r.P ? r.P : 1) * Vo * sizeof *r.out);
  r.loss = be->faith(ws, ze, zn, r.dze, r.dzn, r.out);
  return r;
}

static void step_free(step_res *r) {
  free(r->dze);
  free(r->dzn);
  free(r->out);
}

/* The short batch sb against the fully padded fb on backend be (prec 1: fp64), every
 * ablation, embedding nodes off and on; with cache, the CUDA prepare cache is on. */
static void compare(const ep_backend_ops *be, const char *bname, int prec, const ep_model *m, const ep_dataset *d,
                    const ep_batch *sb, const ep_batch *fb, int cache) {
  const int D = m->cfg.d_model, Vo = m->cfg.vocab_out;
  const ep_ablation abl[3] = {EP_ABLATE_INTERCHANGE, EP_ABLATE_ZERO, EP_ABLATE_MEAN};
  const char *abl_name[3] = {"interchange", "zero", "mean"};
  for (int e = 0; e < 2; e++) {
    ep_graph g;
    graph_init(&g, &m->cfg, e);
    double *ze = malloc((size_t)g.n_edges * sizeof *ze), *zn = malloc((size_t)g.n_writers * sizeof *zn);
    for (int64_t i = 0; i < g.n_edges; i++) ze[i] = (double)((i * 37) % 101) / 100.0;
    for (int w = 0; w < g.n_writers; w++) zn[w] = (double)((w * 13) % 7 + 1) / 8.0;
    for (int a = 0; a < 3; a++) {
      ep_engine_opts eo = {EP_LOSS_KL, abl[a], 1, prec ? EP_PREC_F64 : EP_PREC_F32};
      const ep_backend_choice ch = {EP_BACKEND_AUTO, EP_COMPUTE_FP32, cache ? 64.0 : 0.0};
      void *ws = backend_open(be, &ch, m, &g, &eo, NB, TS);
      float *mean = NULL;
      if (abl[a] == EP_ABLATE_MEAN) {
        mean = malloc((size_t)g.n_writers * TS * D * sizeof *mean);
        prune_mean_writers(be, ws, &g, &m->cfg, d, 4, mean);
      }
      step_res s = step(be, ws, &g, sb, mean, ze, zn, Vo);
      step_res f = step(be, ws, &g, fb, mean, ze, zn, Vo);
#ifdef EP_HAVE_CUDA
      if (cache && abl[a] == EP_ABLATE_INTERCHANGE) {
        int64_t ce, ch_, cm;
        size_t cb;
        backend_cuda_cache_stats(ws, &ce, &ch_, &cm, &cb);
        T_CHECK(ce == NB && ch_ == 1 && cm == 1,
                "%s: the padded batch was not served from the short batch's entries: %lld entries, %lld hits, "
                "%lld misses",
                bname, (long long)ce, (long long)ch_, (long long)cm);
      }
#endif
      const double tol = prec ? 1e-12 : 1e-5;
      const size_t PV = (size_t)f.P * Vo;
      double *so = malloc(PV * sizeof *so), *fo = malloc(PV * sizeof *fo);
      for (size_t i = 0; i < PV; i++) {
        so[i] = s.out[i];
        fo[i] = f.out[i];
      }
      const double el = fabs(s.loss - f.loss) / fmax(fabs(f.loss), 1e-30), eo_ = t_max_rel_diff(so, fo, PV),
                   ee = t_max_rel_diff(s.dze, f.dze, (size_t)g.n_edges),
                   en = t_max_rel_diff(s.dzn, f.dzn, (size_t)g.n_writers);
      T_CHECK(s.P == f.P && el <= tol && eo_ <= tol && ee <= tol && en <= tol,
              "%s, embedding nodes %d, %s ablation, %s: padded to %d against %d tokens: P %lld/%lld, loss %.3g, "
              "outputs %.3g, dz_edge %.3g, dz_node %.3g relative (tolerance %g)",
              bname, e, abl_name[a], prec ? "fp64" : "fp32", sb->T, fb->T, (long long)s.P, (long long)f.P, el,
              eo_, ee, en, tol);
      T_CHECK(f.loss > 0, "%s: the step's loss is %g: the check compares nothing", abl_name[a], f.loss);
      free(so);
      free(fo);
      step_free(&s);
      step_free(&f);
      free(mean);
      be->destroy(ws);
    }
    free(ze);
    free(zn);
    graph_free(&g);
  }
}

int main(void) {
  ep_model m;
  fx_gpt2_tiny(&m, 2, 2, 8, 23, 5);
  /* a split of rows padded to TS tokens, lengths 3..6, loss at the last two positions;
   * the padding holds tokens too (anything may sit there) */
  ep_dataset d;
  fx_dataset_random(&d, 8, TS, m.cfg.vocab, 11, 1, 0xfeu);
  for (int64_t i = 0; i < d.n; i++) {
    d.length[i] = 3 + (int)(i % 4);
    d.loss_start[i] = d.length[i] - 2;
    d.loss_end[i] = d.length[i];
  }
  const int64_t idx[NB] = {0, 1, 2, 3, 5}; /* lengths 3, 4, 5, 6, 4 */
  ep_batch_buf bb = {0};
  prune_batch_gather(&bb, &d, idx, NB);
  T_CHECK(bb.b.T == 6, "gathered batch padded to %d tokens, its longest example has 6", bb.b.T);
  for (int i = 0; i < NB; i++)
    T_CHECK(!memcmp(bb.b.clean + (size_t)i * bb.b.T, d.clean + idx[i] * TS, (size_t)bb.b.T * sizeof(int32_t)) &&
                !memcmp(bb.b.corrupted + (size_t)i * bb.b.T, d.corrupted + idx[i] * TS,
                        (size_t)bb.b.T * sizeof(int32_t)) &&
                bb.b.length[i] == d.length[idx[i]] && bb.b.loss_start[i] == d.loss_start[idx[i]],
            "row %d of the gathered batch differs from example %lld", i, (long long)idx[i]);
  /* the same rows padded to the split's length */
  int32_t *fc = malloc((size_t)NB * TS * sizeof *fc), *fr = malloc((size_t)NB * TS * sizeof *fr);
  for (int i = 0; i < NB; i++) {
    memcpy(fc + (size_t)i * TS, d.clean + idx[i] * TS, TS * sizeof *fc);
    memcpy(fr + (size_t)i * TS, d.corrupted + idx[i] * TS, TS * sizeof *fr);
  }
  const ep_batch full = {NB, TS, fc, fr, bb.b.length, bb.b.loss_start, bb.b.loss_end};

  compare(backend_cpu(), "cpu", 0, &m, &d, &bb.b, &full, 0);
  compare(backend_cpu(), "cpu", 1, &m, &d, &bb.b, &full, 0);
#ifdef EP_HAVE_CUDA
  if (backend_cuda_available()) compare(backend_cuda(), "cuda", 0, &m, &d, &bb.b, &full, 1);
  else printf("no CUDA device: the CUDA backend is not compared\n");
#endif
  free(fc);
  free(fr);
  prune_batch_free(&bb);
  fx_dataset_free(&d);
  model_free(&m);
  return t_done();
}
