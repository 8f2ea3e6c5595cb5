/* test_oracle.c — the engine against the independent PyTorch oracle (tools/oracle_masked.py).
 *
 * Each tests/data/oracle/<case>.h5 holds random GPT-2-shaped weights, a batch, log_alphas,
 * the uniform noise u, lambdas, targets and the oracle's float64 loss terms and
 * gradients. We run one step with the same u and compare: loss within 1e-5 relative,
 * every gradient above 1e-6 in magnitude within 1e-4 relative — for the fp64 engine and
 * for the fp32 production engine. Skips (77) only when the oracle folder is absent. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "edgeprune/core.h"
#include "edgeprune/h5io.h"
#include "fixture.h"
#include "test_util.h"

static double worst_rel[2];

static void *read_ds(hid_t f, const char *name, hid_t type, int64_t n, const char *path) {
  int64_t expect[1] = {n};
  return h5io_read(f, name, type, 1, expect, NULL, path);
}

static double read_scalar(hid_t f, const char *name, const char *path) {
  int64_t dims[8];
  int nd = h5io_dims(f, name, dims, path);
  T_CHECK(nd == 0, "%s: %s is not a scalar", path, name);
  double v = 0;
  hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
  EP_CHECK_H5(d);
  EP_CHECK_H5(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v));
  H5Dclose(d);
  return v;
}

static void compare(const char *label, const double *got, const double *exp, int64_t n, int prec) {
  int bad = 0;
  for (int64_t i = 0; i < n; i++) {
    if (fabs(exp[i]) <= 1e-6) continue;
    double rel = fabs(got[i] - exp[i]) / fabs(exp[i]);
    if (rel > worst_rel[prec]) worst_rel[prec] = rel;
    if (rel > 1e-4 && bad++ < 5)
      T_CHECK(0, "%s[%lld]: got %.10g oracle %.10g (rel %.2e)", label, (long long)i, got[i], exp[i], rel);
  }
  T_CHECK(!bad, "%s: %d values off", label, bad);
}

static void run_file(const char *path) {
  hid_t f = h5io_open_read(path);
  ep_model_config c;
  model_config_defaults(&c);
  c.n_layer = (int)h5io_get_attr_i64(f, "n_layer", path);
  c.n_head = c.n_kv_head = (int)h5io_get_attr_i64(f, "n_head", path);
  c.d_model = (int)h5io_get_attr_i64(f, "d_model", path);
  c.d_head = (int)h5io_get_attr_i64(f, "d_head", path);
  c.d_mlp = (int)h5io_get_attr_i64(f, "d_mlp", path);
  c.vocab = (int)h5io_get_attr_i64(f, "vocab", path);
  c.vocab_out = (int)h5io_get_attr_i64(f, "vocab_out", path);
  c.n_ctx = (int)h5io_get_attr_i64(f, "n_ctx", path);
  c.norm_eps = (float)h5io_get_attr_f64(f, "norm_eps", path);
  int emb = (int)h5io_get_attr_i64(f, "embedding_nodes", path);
  int nm = (int)h5io_get_attr_i64(f, "node_masks", path);
  char *abl = h5io_get_attr_str(f, "ablation", path);
  ep_ablation ablation = !strcmp(abl, "zero")   ? EP_ABLATE_ZERO
                         : !strcmp(abl, "mean") ? EP_ABLATE_MEAN
                                                : EP_ABLATE_INTERCHANGE;
  ep_model m;
  model_alloc(&m, &c);
  int nt;
  ep_tensor_ref *t = model_tensor_list(&m, &nt);
  for (int i = 0; i < nt; i++) {
    char name[64];
    snprintf(name, sizeof name, "weights/%s", t[i].name);
    float *w = h5io_read(f, name, H5T_NATIVE_FLOAT, t[i].ndim, t[i].shape, NULL, path);
    memcpy(*t[i].slot, w, (size_t)t[i].shape[0] * (t[i].ndim == 2 ? t[i].shape[1] : 1) * sizeof(float));
    free(w);
  }
  free(t);
  ep_graph g;
  graph_init(&g, &c, emb);
  T_CHECK(g.n_edges == h5io_get_attr_i64(f, "n_edges", path), "%s: edge count", path);
  int64_t nw, nr;
  char **wn = h5io_read_strings(f, "writer_names", &nw, path);
  char **rn = h5io_read_strings(f, "reader_names", &nr, path);
  T_CHECK(nw == g.n_writers && nr == g.n_readers, "%s: writer/reader counts", path);
  for (int i = 0; i < nw && i < g.n_writers; i++)
    T_CHECK(!strcmp(wn[i], g.writers[i].name), "writer %d name", i);
  for (int i = 0; i < nr && i < g.n_readers; i++)
    T_CHECK(!strcmp(rn[i], g.readers[i].name), "reader %d name", i);
  for (int i = 0; i < nw; i++)
    free(wn[i]);
  for (int i = 0; i < nr; i++)
    free(rn[i]);
  free(wn);
  free(rn);

  int64_t dims[8];
  h5io_dims(f, "clean", dims, path);
  int B = (int)dims[0], T = (int)dims[1];
  fx_batch fb;
  int64_t e2[2] = {B, T}, e1[1] = {B};
  fb.clean = h5io_read(f, "clean", H5T_NATIVE_INT32, 2, e2, NULL, path);
  fb.corrupted = h5io_read(f, "corrupted", H5T_NATIVE_INT32, 2, e2, NULL, path);
  fb.len = h5io_read(f, "length", H5T_NATIVE_INT32, 1, e1, NULL, path);
  fb.ls = h5io_read(f, "loss_start", H5T_NATIVE_INT32, 1, e1, NULL, path);
  fb.le = h5io_read(f, "loss_end", H5T_NATIVE_INT32, 1, e1, NULL, path);
  fb.b = (ep_batch){B, T, fb.clean, fb.corrupted, fb.len, fb.ls, fb.le};

  ep_mask_params p;
  prune_params_init(&p, g.n_edges, nm ? g.n_writers : 0, 0);
  ep_step_out o;
  prune_step_out_init(&o, &p);
  double *la = read_ds(f, "log_alpha_edge", H5T_NATIVE_DOUBLE, g.n_edges, path);
  double *u = read_ds(f, "u_edge", H5T_NATIVE_DOUBLE, g.n_edges, path);
  memcpy(p.la_edge, la, (size_t)g.n_edges * sizeof *la);
  memcpy(o.u_edge, u, (size_t)g.n_edges * sizeof *u);
  free(la);
  free(u);
  if (nm) {
    la = read_ds(f, "log_alpha_node", H5T_NATIVE_DOUBLE, g.n_writers, path);
    u = read_ds(f, "u_node", H5T_NATIVE_DOUBLE, g.n_writers, path);
    memcpy(p.la_node, la, (size_t)g.n_writers * sizeof *la);
    memcpy(o.u_node, u, (size_t)g.n_writers * sizeof *u);
    free(la);
    free(u);
  }
  double *lam = read_ds(f, "lambdas", H5T_NATIVE_DOUBLE, 4, path);
  p.lam_edge[0] = lam[0];
  p.lam_edge[1] = lam[1];
  if (nm) {
    p.lam_node[0] = lam[2];
    p.lam_node[1] = lam[3];
  }
  free(lam);
  ep_step_targets tg = {h5io_get_attr_f64(f, "t_edge", path), h5io_get_attr_f64(f, "t_node", path),
                        (int)h5io_get_attr_i64(f, "node_loss", path)};
  double x_faith = read_scalar(f, "expect/faith", path), x_total = read_scalar(f, "expect/total", path);
  double x_rege = read_scalar(f, "expect/reg_edge", path), x_regn = read_scalar(f, "expect/reg_node", path);
  double *xz = read_ds(f, "expect/z_edge", H5T_NATIVE_DOUBLE, g.n_edges, path);
  double *xg = read_ds(f, "expect/grad_edge", H5T_NATIVE_DOUBLE, g.n_edges, path);
  double *xgl = read_ds(f, "expect/grad_lambda", H5T_NATIVE_DOUBLE, 4, path);
  double *xgn = nm ? read_ds(f, "expect/grad_node", H5T_NATIVE_DOUBLE, g.n_writers, path) : NULL;

  const ep_backend_ops *be = backend_cpu();
  for (int prec = 0; prec < 2; prec++) {
    ep_engine_opts eo = {EP_LOSS_KL, ablation, nm, (ep_precision)prec};
    void *ws = be->create(&m, &g, &eo, B, T);
    float *mean = ablation == EP_ABLATE_MEAN ? fx_mean_writers(be, ws, &g, c.d_model, &fb) : NULL;
    be->prepare(ws, &fb.b, mean);
    prune_step_given_masks(be, ws, &p, &tg, &o);
    char label[160];
    snprintf(label, sizeof label, "%s %s", strrchr(path, '/') + 1, prec ? "f64" : "f32");
    T_CLOSE(o.faith, x_faith, 0, 1e-5, label);
    T_CLOSE(o.total, x_total, 0, 1e-5, label);
    T_CLOSE(o.reg_edge, x_rege, 1e-12, 1e-6, label); /* fp32 hard-concrete constants */
    T_CLOSE(o.reg_node, x_regn, 1e-12, 1e-6, label);
    double dz = 0;
    for (int64_t e = 0; e < g.n_edges; e++)
      dz = fmax(dz, fabs(o.z_edge[e] - xz[e]));
    /* hardconcrete.h keeps the constants in fp32 (l = -0.1f, beta = 2/3f): ~1e-8 from the oracle's */
    T_CHECK(dz < 1e-6, "%s: z differs from the oracle by %.3g", label, dz);
    compare(label, o.grad, xg, g.n_edges, prec);
    if (nm) compare(label, o.grad + g.n_edges, xgn, g.n_writers, prec);
    compare(label, o.grad + g.n_edges + p.n_nodes, xgl, 4, prec);
    printf("%-40s faith %.9f (oracle %.9f) worst grad rel so far f32 %.2e f64 %.2e\n", label, o.faith,
           x_faith, worst_rel[0], worst_rel[1]);
    free(mean);
    be->destroy(ws);
  }
  free(xz);
  free(xg);
  free(xgl);
  free(xgn);
  free(abl);
  prune_step_out_free(&o);
  prune_params_free(&p);
  fx_batch_free(&fb);
  graph_free(&g);
  model_free(&m);
  h5io_close(f);
}

int main(void) {
  const char *dir = EP_TEST_DATA_DIR "/oracle";
  DIR *d = opendir(dir);
  if (!d) {
    printf("SKIP: %s is absent (run tools/oracle_masked.py to create it)\n", dir);
    return 77;
  }
  struct dirent *e;
  int n = 0;
  char path[4096];
  while ((e = readdir(d))) {
    size_t len = strlen(e->d_name);
    if (len < 4 || strcmp(e->d_name + len - 3, ".h5")) continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    run_file(path);
    n++;
  }
  closedir(d);
  T_CHECK(n > 0, "no oracle files in %s", dir);
  printf("oracle cases %d: worst gradient relative error fp32 %.3e, fp64 %.3e\n", n, worst_rel[0],
         worst_rel[1]);
  return t_done();
}
