/* test_limits.c — the masked forward at its two ends, against the independent plain
 * forward of forward.h:
 *   all z = 1 (edges and nodes): the masked output equals the plain model on the clean
 *     input, for every ablation (the ablation values cancel exactly), fp32 and fp64;
 *   all z = 0, interchange ablation, embedding nodes on: every reader sees only the
 *     corrupted run, so the output equals the plain model on the corrupted input. */
#include <math.h>
#include <stdio.h>

#include "edgeprune/forward.h"
#include "fixture.h"
#include "test_util.h"

/* Plain-forward outputs at the batch's loss positions, rows ordered like the engine's. */
static float *plain_at_loss(const ep_model *m, const fx_batch *f, const int32_t *tok, int64_t *P_out) {
  int B = f->b.B, T = f->b.T, Vo = m->cfg.vocab_out, Pmax = T;
  int32_t *pos = calloc((size_t)B * Pmax, sizeof *pos);
  float *lg = calloc((size_t)B * Pmax * Vo, sizeof *lg);
  for (int b = 0; b < B; b++)
    for (int j = 0; j < Pmax; j++)
      pos[b * Pmax + j] = f->ls[b] + j < f->le[b] ? f->ls[b] + j : -1;
  forward_logits(m, tok, f->len, B, T, pos, Pmax, lg);
  int64_t P = 0;
  float *out = malloc((size_t)B * Pmax * Vo * sizeof *out);
  for (int b = 0; b < B; b++)
    for (int j = 0; j < f->le[b] - f->ls[b]; j++)
      memcpy(out + P++ * Vo, lg + ((size_t)b * Pmax + j) * Vo, Vo * sizeof *out);
  free(pos);
  free(lg);
  *P_out = P;
  return out;
}

static double max_diff(const float *a, const float *b, size_t n, double *scale) {
  double d = 0, s = 0;
  for (size_t i = 0; i < n; i++) {
    d = fmax(d, fabs((double)a[i] - b[i]));
    s = fmax(s, fabs((double)b[i]));
  }
  *scale = s;
  return d;
}

static void run(const char *label, ep_model *m, int emb, ep_ablation abl, int nm, ep_precision prec, double z,
                const float *expect, const float *expect_full, int64_t Pexp, const fx_batch *f) {
  const ep_backend_ops *be = backend_cpu();
  ep_graph g;
  graph_init(&g, &m->cfg, emb);
  ep_engine_opts eo = {m->cfg.output == EP_OUTPUT_NUMERIC ? EP_LOSS_MSE : EP_LOSS_KL, abl, nm, prec};
  void *ws = be->create(m, &g, &eo, f->b.B, f->b.T);
  float *mean = abl == EP_ABLATE_MEAN ? fx_mean_writers(be, ws, &g, m->cfg.d_model, f) : NULL;
  int64_t P = be->prepare(ws, &f->b, mean);
  T_CHECK(P == Pexp, "%s: P %lld vs %lld", label, (long long)P, (long long)Pexp);
  double *ze = malloc((size_t)g.n_edges * sizeof *ze), *zn = malloc((size_t)g.n_writers * sizeof *zn);
  for (int64_t e = 0; e < g.n_edges; e++)
    ze[e] = z;
  for (int w = 0; w < g.n_writers; w++)
    zn[w] = z;
  size_t n = (size_t)P * m->cfg.vocab_out;
  float *out = malloc(n * sizeof *out), *full = malloc(n * sizeof *full);
  double loss = be->faith(ws, ze, nm ? zn : NULL, NULL, NULL, out);
  be->full_outputs(ws, full);
  double s1, s2;
  double d_out = max_diff(out, expect, n, &s1), d_full = max_diff(full, expect_full, n, &s2);
  double tol = prec == EP_PREC_F64 ? 1e-5 : 2e-4; /* forward.h is fp32 */
  T_CHECK(d_out <= tol * (1 + s1), "%s: masked output vs plain forward max diff %.3g (scale %.3g)", label,
          d_out, s1);
  T_CHECK(d_full <= tol * (1 + s2), "%s: prepared full outputs vs plain forward max diff %.3g", label,
          d_full);
  if (z == 1)
    T_CHECK(fabs(loss) < (prec == EP_PREC_F64 ? 1e-9 : 1e-5), "%s: loss at z=1 is %.3g", label, loss);
  printf("%-40s max |masked - plain| %.2e (scale %.2e) loss %.3g\n", label, d_out, s1, loss);
  free(out);
  free(full);
  free(ze);
  free(zn);
  free(mean);
  be->destroy(ws);
  graph_free(&g);
}

int main(void) {
  ep_model m;
  char label[96];
  const char *an[] = {"interchange", "zero", "mean"};
  const char *mname[] = {"gpt2", "tracr", "llama"};
  for (int model = 0; model < 3; model++) {
    if (model == 0)
      fx_gpt2_tiny(&m, 3, 4, 32, 100, 5);
    else if (model == 1)
      fx_tracr_tiny(&m, 6);
    else
      fx_llama_tiny(&m, 7);
    fx_batch f;
    fx_batch_make(&f, 3, model == 1 ? 5 : 8, m.cfg.vocab, 2, 13);
    int64_t Pc, Pk;
    float *clean = plain_at_loss(&m, &f, f.clean, &Pc);
    float *corr = plain_at_loss(&m, &f, f.corrupted, &Pk);
    for (int a = 0; a < 3; a++)
      for (int emb = 0; emb < 2; emb++)
        for (int prec = 0; prec < 2; prec++) {
          snprintf(label, sizeof label, "%s z=1 %s emb=%d %s", mname[model], an[a], emb,
                   prec ? "f64" : "f32");
          run(label, &m, emb, (ep_ablation)a, 1, (ep_precision)prec, 1.0, clean, clean, Pc, &f);
        }
    for (int prec = 0; prec < 2; prec++) {
      snprintf(label, sizeof label, "%s z=0 interchange emb=1 %s", mname[model], prec ? "f64" : "f32");
      run(label, &m, 1, EP_ABLATE_INTERCHANGE, 1, (ep_precision)prec, 0.0, corr, clean, Pk, &f);
      snprintf(label, sizeof label, "%s z=0 edges only %s", mname[model], prec ? "f64" : "f32");
      run(label, &m, 1, EP_ABLATE_INTERCHANGE, 0, (ep_precision)prec, 0.0, corr, clean, Pk, &f);
    }
    free(clean);
    free(corr);
    fx_batch_free(&f);
    model_free(&m);
  }
  return t_done();
}
