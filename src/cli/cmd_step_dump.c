/* cmd_step_dump.c — `edgeprune step-dump DECK.yml --out STEP.h5`: one training step,
 * fully dumped, for gradient parity against independent implementations. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgeprune/cli.h"
#include "edgeprune/core.h"
#include "edgeprune/h5io.h"
#include "prune/session.h"

static int run(int argc, char **argv);

const ep_command ep_cmd_step_dump = {
    .name = "step-dump",
    .summary = "run one training step and dump every mask, noise, loss term and gradient",
    .help = "usage: edgeprune step-dump DECK.yml --out STEP.h5 [--step N] [--precision f32|f64]\n"
            "                           [--init-mean M --init-std S] [-P section.key=value ...]\n"
            "\n"
            "Runs training step N (default 0) from the deck's state: log_alphas initialised from\n"
            "prune.seed as N(prune.init_log_alpha_mean, prune.init_log_alpha_std) (default\n"
            "N(10, 0.01)); --init-mean / --init-std override those keys (e.g. so that the masks are\n"
            "not all saturated); lambdas 0, the batch of step N in the seeded data order of\n"
            "data.train_split. Writes (HDF5):\n"
            "  /edges/writer, /edges/reader   names (graph order)\n"
            "  /edges/log_alpha, u, z          the state, the uniform noise and the sampled mask\n"
            "  /edges/dfaith_dz                d(faithfulness loss)/dz\n"
            "  /edges/grad                     d(total loss)/d(log_alpha)\n"
            "  /nodes/...                      the same for node masks (names always)\n"
            "  /lambdas/value, /lambdas/grad   [edge l1, edge l2, node l1, node l2], d(total)/d(lambda)\n"
            "  /batch/index                    the examples of the step\n"
            "  root attributes: step, seed, faith, reg_edge, reg_node, total, edge_sparsity,\n"
            "  node_sparsity, t_edge, t_node, precision, deck, and model_path, data_path,\n"
            "  train_split, ablation, loss, node_masks, embedding_nodes, node_loss\n"
            "--precision f64 runs the CPU engine in double (the gradient-check build); otherwise\n"
            "run.backend / run.precision choose the engine (attributes backend, compute).\n",
    .order = 90,
    .run = run,
};

static void names(hid_t g, const char *ds, int64_t n, const char *(*get)(const ep_graph *, int64_t, char *),
                  const ep_graph *gr) {
  char **v = ep_malloc((size_t)n * sizeof *v);
  char buf[64];
  for (int64_t i = 0; i < n; i++)
    v[i] = ep_strdup(get(gr, i, buf));
  h5io_write_strings(g, ds, n, (const char *const *)v);
  for (int64_t i = 0; i < n; i++)
    free(v[i]);
  free(v);
}
static const char *edge_writer(const ep_graph *g, int64_t e, char *buf) {
  int w, r;
  graph_edge_ends(g, e, &w, &r);
  snprintf(buf, 64, "%s", g->writers[w].name);
  return buf;
}
static const char *edge_reader(const ep_graph *g, int64_t e, char *buf) {
  int w, r;
  graph_edge_ends(g, e, &w, &r);
  snprintf(buf, 64, "%s", g->readers[r].name);
  return buf;
}
static const char *node_name(const ep_graph *g, int64_t i, char *buf) {
  snprintf(buf, 64, "%s", g->writers[i].name);
  return buf;
}

static int run(int argc, char **argv) {
  static const char *const flags[] = {"--out", "--step", "--precision", "--init-mean", "--init-std", NULL};
  const char *val[5];
  ep_session s;
  int st = session_parse(&ep_cmd_step_dump, argc, argv, flags, val, &s);
  if (st) return st;
  if (!val[0]) return cli_usage_error(&ep_cmd_step_dump, "--out STEP.h5 is required");
  char *end;
  long long step = val[1] ? strtoll(val[1], &end, 10) : 0;
  if (val[1] && (*end || step < 0))
    return cli_usage_error(&ep_cmd_step_dump, "--step must be an integer >= 0, got '%s'", val[1]);
  ep_precision prec = EP_PREC_F32;
  if (val[2]) {
    if (!strcmp(val[2], "f64"))
      prec = EP_PREC_F64;
    else if (strcmp(val[2], "f32"))
      return cli_usage_error(&ep_cmd_step_dump, "--precision must be f32 or f64, got '%s'", val[2]);
  }
  /* the options override prune.init_log_alpha_mean / _std (same ranges as the keys) */
  double im = s.c.init_mean, is = s.c.init_std;
  if (val[3]) {
    im = strtod(val[3], &end);
    if (*end || val[3] == end || !(fabs(im) <= 1000))
      return cli_usage_error(&ep_cmd_step_dump, "--init-mean must be a number in [-1000, 1000], got '%s'", val[3]);
  }
  if (val[4]) {
    is = strtod(val[4], &end);
    if (*end || val[4] == end || !(is >= 0 && is <= 1000))
      return cli_usage_error(&ep_cmd_step_dump, "--init-std must be a number in [0, 1000], got '%s'", val[4]);
  }
  session_load_model(&s);
  const ep_prune_config *c = &s.c;
  ep_dataset train;
  session_read_split(&s, c->train_split, 0, &train);
  if (train.n < c->batch_size)
    ep_fatal("prune.batch_size = %lld is larger than split '%s' of %s (%lld examples)",
             (long long)c->batch_size, c->train_split, c->data_path, (long long)train.n);
  ep_graph g;
  graph_init(&g, &s.m.cfg, c->embedding_nodes);
  ep_mask_params p;
  prune_params_init_normal(&p, g.n_edges, c->node_masks ? g.n_writers : 0, (uint64_t)c->seed, (float)im,
                           (float)is);
  /* the batch of this step in the training order */
  const int64_t per_epoch = train.n / c->batch_size;
  int64_t *perm = ep_malloc((size_t)train.n * sizeof *perm);
  prune_epoch_order((uint64_t)c->seed, step / per_epoch, train.n, perm);
  int64_t *idx = perm + (step % per_epoch) * c->batch_size;
  ep_batch_buf bb = {0};
  prune_batch_gather(&bb, &train, idx, (int)c->batch_size);
  /* fp64 is the CPU reference's gradient-check build */
  if (prec == EP_PREC_F64 && c->backend.kind == EP_BACKEND_CUDA)
    ep_fatal("%s: --precision f64 runs the CPU engine, but run.backend = cuda", s.deck_path);
  const ep_backend_ops *be = prec == EP_PREC_F64 ? backend_cpu() : backend_choose(&c->backend);
  ep_engine_opts eo = {c->loss, c->ablation, c->node_masks, prec};
  void *ws = backend_open(be, &c->backend, &s.m, &g, &eo, (int)c->batch_size, train.max_len);
  float *mean = NULL;
  if (c->ablation == EP_ABLATE_MEAN) {
    mean = ep_malloc((size_t)g.n_writers * train.max_len * s.m.cfg.d_model * sizeof *mean);
    prune_mean_writers(be, ws, &g, &s.m.cfg, &train, c->batch_size, mean);
  }
  be->prepare(ws, &bb.b, mean);
  ep_step_targets tg = {
      prune_target(c->start_edge, c->target_edge, step, c->sparsity_warmup, c->log_schedule),
      prune_target(c->start_node, c->target_node, step, c->sparsity_warmup, c->log_schedule), c->node_loss};
  ep_step_out o;
  prune_step_out_init(&o, &p);
  prune_step(be, ws, &p, (uint64_t)c->seed, step, &tg, &o);
  if (ep_rank == 0) {
    char tmp[4096];
    ep_atomic_tmpname(val[0], tmp, sizeof tmp);
    hid_t f = h5io_create(tmp);
    h5io_attr_i64(f, "step", step);
    h5io_attr_i64(f, "seed", c->seed);
    h5io_attr_f64(f, "faith", o.faith);
    h5io_attr_f64(f, "reg_edge", o.reg_edge);
    h5io_attr_f64(f, "reg_node", o.reg_node);
    h5io_attr_f64(f, "total", o.total);
    h5io_attr_f64(f, "edge_sparsity", o.s_edge);
    h5io_attr_f64(f, "node_sparsity", o.s_node);
    h5io_attr_f64(f, "t_edge", tg.t_edge);
    h5io_attr_f64(f, "t_node", tg.t_node);
    h5io_attr_str(f, "precision", prec == EP_PREC_F64 ? "f64" : "f32");
    h5io_attr_str(f, "backend", be->name);
    h5io_attr_str(f, "compute", prec == EP_PREC_F64 ? "fp64" : backend_compute_name(c->backend.compute));
    /* what an independent implementation needs to redo the step (tools/oracle_masked.py --check-dump) */
    static const char *abl_names[] = {"interchange", "zero", "mean"};
    static const char *loss_names[] = {"kl", "kl_sum", "position_kl", "mse"};
    h5io_attr_str(f, "model_path", c->model_path);
    h5io_attr_str(f, "data_path", c->data_path);
    h5io_attr_str(f, "train_split", c->train_split);
    h5io_attr_str(f, "ablation", abl_names[c->ablation]);
    h5io_attr_str(f, "loss", loss_names[c->loss]);
    h5io_attr_i64(f, "node_masks", c->node_masks);
    h5io_attr_i64(f, "embedding_nodes", c->embedding_nodes);
    h5io_attr_i64(f, "node_loss", c->node_loss);
    char *yaml = deck_resolved_yaml(s.deck);
    h5io_attr_str(f, "deck", yaml);
    free(yaml);
    int64_t E = g.n_edges, W = g.n_writers, Nn = p.n_nodes;
    hid_t ge = h5io_group(f, "edges");
    names(ge, "writer", E, edge_writer, &g);
    names(ge, "reader", E, edge_reader, &g);
    h5io_write_f64(ge, "log_alpha", 1, &E, p.la_edge);
    h5io_write_f64(ge, "u", 1, &E, o.u_edge);
    h5io_write_f64(ge, "z", 1, &E, o.z_edge);
    h5io_write_f64(ge, "dfaith_dz", 1, &E, o.dz_edge);
    h5io_write_f64(ge, "grad", 1, &E, o.grad);
    EP_CHECK_H5(H5Gclose(ge));
    hid_t gn = h5io_group(f, "nodes");
    names(gn, "name", W, node_name, &g);
    if (Nn) {
      h5io_write_f64(gn, "log_alpha", 1, &Nn, p.la_node);
      h5io_write_f64(gn, "u", 1, &Nn, o.u_node);
      h5io_write_f64(gn, "z", 1, &Nn, o.z_node);
      h5io_write_f64(gn, "dfaith_dz", 1, &Nn, o.dz_node);
      h5io_write_f64(gn, "grad", 1, &Nn, o.grad + E);
    }
    EP_CHECK_H5(H5Gclose(gn));
    hid_t gl = h5io_group(f, "lambdas");
    int64_t four = 4;
    h5io_write_f64(gl, "value", 1, &four, p.lam_edge);
    h5io_write_f64(gl, "grad", 1, &four, o.grad + E + Nn);
    EP_CHECK_H5(H5Gclose(gl));
    hid_t gb = h5io_group(f, "batch");
    int64_t nb = c->batch_size;
    h5io_write_i64(gb, "index", 1, &nb, idx);
    EP_CHECK_H5(H5Gclose(gb));
    h5io_close(f);
    ep_atomic_commit(tmp, val[0]);
    ep_log("step %lld: faithfulness %.8g, edge regulariser %.6g, node regulariser %.6g, total %.8g -> %s",
           step, o.faith, o.reg_edge, o.reg_node, o.total, val[0]);
  }
  prune_step_out_free(&o);
  free(mean);
  be->destroy(ws);
  prune_batch_free(&bb);
  free(perm);
  prune_params_free(&p);
  graph_free(&g);
  dataset_free(&train);
  session_free(&s);
  return 0;
}
