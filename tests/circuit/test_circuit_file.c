/* test_circuit_file.c — the circuit file round trip and `edgeprune circuit` exports.
 * usage: test_circuit_file EDGEPRUNE_BINARY WORK_DIR */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "edgeprune/circuit.h"
#include "edgeprune/core.h"
#include "edgeprune/graph.h"
#include "edgeprune/h5io.h"
#include "test_util.h"

static const char *bin, *dir;
static char out[1 << 20];

static char *path_in(const char *name) {
  return ep_path_join(dir, name);
}

/* Run the program with arguments, stdout (and stderr when merge) into `out`. */
static int run(const char *args, int merge) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "'%s' %s%s", bin, args, merge ? " 2>&1" : " 2>/dev/null");
  return t_run_capture(cmd, out, sizeof out);
}

/* A circuit on an L=2 H=3 graph with embedding and node masks: a scatter of kept
 * edges, head a0.h2 removed as a node. */
static void make_circuit(ep_graph *g, ep_circuit *c) {
  ep_model_config cfg;
  model_config_defaults(&cfg);
  cfg.n_layer = 2;
  cfg.n_head = cfg.n_kv_head = 3;
  graph_init(g, &cfg, 1);
  float *la = malloc((size_t)g->n_edges * sizeof *la);
  for (int64_t e = 0; e < g->n_edges; e++)
    la[e] = (e * 37) % 5 < 2 ? 8.0f : -8.0f;
  float *nla = malloc((size_t)g->n_writers * sizeof *nla);
  for (int w = 0; w < g->n_writers; w++)
    nla[w] = 8.0f;
  nla[graph_find_writer(g, "a0.h2")] = -8.0f;
  ep_extract_options o;
  extract_options_default(&o);
  extract_circuit(g, la, nla, &o, c);
  char summary[512];
  circuit_model_summary(&cfg, summary, sizeof summary);
  circuit_set_text(c, summary, "prune:\n  target_edge_sparsity: 0.6\n");
  const char *names[] = {"kl", "logit_diff", "accuracy"};
  const double full[] = {0.0, 3.25, 0.875}, circ[] = {0.125, 2.5, NAN};
  circuit_set_metrics(c, 3, names, full, circ);
  free(la);
  free(nla);
}

static int same_f32(const float *a, const float *b, int64_t n) {
  if (!a || !b) return a == b;
  return memcmp(a, b, (size_t)n * sizeof *a) == 0;
}

static int same_metric(double a, double b) {
  return (isnan(a) && isnan(b)) || a == b;
}

static void test_round_trip(const ep_circuit *c, const char *path) {
  circuit_write(c, path);
  ep_circuit r;
  circuit_read(&r, path);
  T_CHECK(r.n_edges == c->n_edges && r.n_nodes == c->n_nodes, "counts");
  int names_ok = 1;
  for (int64_t e = 0; e < c->n_edges; e++)
    names_ok &= !strcmp(r.edge_writer[e], c->edge_writer[e]) && !strcmp(r.edge_reader[e], c->edge_reader[e]);
  for (int w = 0; w < c->n_nodes; w++)
    names_ok &= !strcmp(r.node_name[w], c->node_name[w]);
  T_CHECK(names_ok, "edge and node names identical");
  T_CHECK(same_f32(r.edge_log_alpha, c->edge_log_alpha, c->n_edges) &&
              same_f32(r.edge_value, c->edge_value, c->n_edges) &&
              !memcmp(r.edge_kept, c->edge_kept, (size_t)c->n_edges),
          "edge arrays identical");
  T_CHECK(r.node_masks == 1 && same_f32(r.node_log_alpha, c->node_log_alpha, c->n_nodes) &&
              same_f32(r.node_value, c->node_value, c->n_nodes) &&
              !memcmp(r.node_kept, c->node_kept, (size_t)c->n_nodes),
          "node arrays identical");
  T_CHECK(r.n_kept_edges == c->n_kept_edges && r.n_kept_nodes == c->n_kept_nodes &&
              r.edge_sparsity == c->edge_sparsity && r.node_sparsity == c->node_sparsity &&
              r.requested_edge_sparsity == c->requested_edge_sparsity &&
              r.requested_node_sparsity == c->requested_node_sparsity &&
              r.expected_edge_sparsity == c->expected_edge_sparsity &&
              r.expected_node_sparsity == c->expected_node_sparsity &&
              r.edge_threshold == c->edge_threshold && r.node_threshold == c->node_threshold &&
              r.embedding_nodes == 1 && r.prune_dangling == c->prune_dangling && r.n_layer == 2 &&
              r.n_head == 3,
          "summary attributes identical");
  T_CHECK(!strcmp(r.model, c->model) && !strcmp(r.deck, c->deck), "model summary and deck text identical");
  int m_ok = r.n_metrics == c->n_metrics;
  for (int i = 0; m_ok && i < r.n_metrics; i++)
    m_ok = !strcmp(r.metric_name[i], c->metric_name[i]) && same_metric(r.metric_full[i], c->metric_full[i]) &&
           same_metric(r.metric_circuit[i], c->metric_circuit[i]);
  T_CHECK(m_ok, "metrics identical, in order, NaN where not measured");

  /* Metrics can be replaced in place (the file is rewritten atomically). */
  const char *nn[] = {"exact_match", "kl"};
  const double nf[] = {1.0, 0.0}, nc[] = {0.5, 0.25};
  circuit_update_metrics(path, 2, nn, nf, nc);
  ep_circuit u;
  circuit_read(&u, path);
  T_CHECK(u.n_metrics == 2 && !strcmp(u.metric_name[0], "exact_match") && u.metric_circuit[1] == 0.25 &&
              u.n_kept_edges == c->n_kept_edges && !memcmp(u.edge_kept, c->edge_kept, (size_t)c->n_edges),
          "metrics updated, circuit unchanged");
  circuit_free(&u);
  circuit_free(&r);
}

/* The reference's edges.json order, from the graph: per layer, for each writer the q
 * edges over heads, the k edges, the v edges; then the MLP reader; resid_post last. */
static int64_t reference_order(const ep_graph *g, const ep_circuit *c, int64_t *order) {
  int64_t n = 0;
  int L = g->readers[g->resid_reader].layer;
  for (int l = 0; l < L; l++) {
    int q0 = g->layer_q_reader[l], H = 3;
    for (int w = 0; q0 >= 0 && w < g->readers[q0].n_in; w++)
      for (int k = 0; k < 3; k++)
        for (int h = 0; h < H; h++) {
          int64_t e = graph_edge_index(g, w, q0 + 3 * h + k);
          if (c->edge_kept[e]) order[n++] = e;
        }
    int m = g->layer_mlp_reader[l];
    for (int w = 0; m >= 0 && w < g->readers[m].n_in; w++)
      if (c->edge_kept[graph_edge_index(g, w, m)]) order[n++] = graph_edge_index(g, w, m);
  }
  for (int w = 0; w < g->n_writers; w++)
    if (c->edge_kept[graph_edge_index(g, w, g->resid_reader)])
      order[n++] = graph_edge_index(g, w, g->resid_reader);
  return n;
}

static void test_json(const ep_graph *g, const ep_circuit *c, const char *cpath) {
  char args[2048];
  snprintf(args, sizeof args, "circuit '%s' --format json", cpath);
  int rc = run(args, 0);
  T_CHECK(rc == 0, "circuit --format json exit %d", rc);
  cJSON *j = cJSON_Parse(out);
  T_CHECK(j && cJSON_IsArray(j), "json output parses as a list");
  if (!j) return;
  int64_t *order = malloc((size_t)c->n_edges * sizeof *order);
  int64_t n = reference_order(g, c, order);
  T_CHECK(n == c->n_kept_edges && cJSON_GetArraySize(j) == n, "json has %d pairs, %lld kept",
          cJSON_GetArraySize(j), (long long)c->n_kept_edges);
  int i = 0, ok = 1;
  cJSON *pair;
  cJSON_ArrayForEach(pair, j) {
    cJSON *a = cJSON_GetArrayItem(pair, 0), *b = cJSON_GetArrayItem(pair, 1);
    if (!cJSON_IsArray(pair) || cJSON_GetArraySize(pair) != 2 || !cJSON_IsString(a) || !cJSON_IsString(b) ||
        i >= n || strcmp(a->valuestring, c->edge_writer[order[i]]) ||
        strcmp(b->valuestring, c->edge_reader[order[i]]))
      ok = 0;
    i++;
  }
  T_CHECK(ok, "json pairs equal the kept [writer, reader] pairs in the reference order");
  cJSON_Delete(j);
  free(order);

  /* --out writes the same text to a file. */
  char *jpath = path_in("edges.json");
  snprintf(args, sizeof args, "circuit '%s' --format json --out '%s'", cpath, jpath);
  char *stdout_copy = strdup(out);
  rc = run(args, 0);
  size_t len = 0;
  char *text = ep_try_read_file(jpath, &len);
  T_CHECK(rc == 0 && text && !strcmp(text, stdout_copy), "--out file equals stdout output");
  free(text);
  free(stdout_copy);
  free(jpath);
}

static void test_dot(const ep_circuit *c, const char *cpath) {
  char args[2048];
  snprintf(args, sizeof args, "circuit '%s' --format dot", cpath);
  int rc = run(args, 0);
  T_CHECK(rc == 0 && strstr(out, "digraph circuit {"), "dot output is a digraph (rc %d)", rc);
  T_CHECK(strstr(out, "subgraph cluster_layer0") && strstr(out, "rank=same"),
          "layers clustered, heads on a rank");
  /* Every kept edge appears as writer -> reader's node, q/k/v coloured. */
  int missing = 0, bad_style = 0;
  for (int64_t e = 0; e < c->n_edges; e++) {
    if (!c->edge_kept[e]) continue;
    char node[64], line[256];
    snprintf(node, sizeof node, "%s", c->edge_reader[e]);
    size_t nl = strlen(node);
    const char *color = NULL;
    if (nl > 2 && node[nl - 2] == '.') {
      color = node[nl - 1] == 'q' ? "#c0392b" : node[nl - 1] == 'k' ? "#1e8449" : "#2e6fd8";
      node[nl - 2] = '\0';
    }
    snprintf(line, sizeof line, "\"%s\" -> \"%s\" [", c->edge_writer[e], node);
    char *at = strstr(out, line);
    int found = 0;
    /* Parallel q/k/v edges share a prefix: look for the one naming this reader. */
    char tip[128];
    snprintf(tip, sizeof tip, "tooltip=\"%s -> %s\"", c->edge_writer[e], c->edge_reader[e]);
    while (at) {
      char *eol = strchr(at, '\n');
      size_t span = eol ? (size_t)(eol - at) : strlen(at);
      char buf[512];
      snprintf(buf, sizeof buf, "%.*s", (int)span, at);
      if (strstr(buf, tip)) {
        found = 1;
        if (color && !strstr(buf, color)) bad_style++;
        break;
      }
      at = strstr(at + 1, line);
    }
    missing += !found;
  }
  T_CHECK(missing == 0 && bad_style == 0, "dot: %d kept edges missing, %d wrongly styled", missing,
          bad_style);
  /* Nodes: heads filled blue, MLPs orange, resid_post present; the removed head absent. */
  T_CHECK(strstr(out, "\"resid_post\" [shape=ellipse"), "resid_post node line");
  T_CHECK(strstr(out, "\"m0\" [shape=box, style=filled, fillcolor=\"#fce5cd\"];") ||
              strstr(out, "\"m1\" [shape=box, style=filled, fillcolor=\"#fce5cd\"];"),
          "an MLP node line");
  /* The removed head a0.h2 keeps edges into it (as the reference does) but none out,
   * and is drawn dashed. */
  T_CHECK(strstr(out, "\"a0.h2\" [shape=box, style=\"rounded,dashed\"") && !strstr(out, "\"a0.h2\" ->"),
          "removed node a0.h2 drawn dashed, with no outgoing edges");
  int arrows = 0, order_edges = 0;
  for (char *line = out; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
    char *eol = strchr(line, '\n');
    size_t span = eol ? (size_t)(eol - line) : strlen(line);
    char buf[512];
    snprintf(buf, sizeof buf, "%.*s", (int)span, line);
    if (strstr(buf, "style=invis"))
      order_edges++;
    else if (strstr(buf, "\" -> \""))
      arrows++;
  }
  T_CHECK(arrows == c->n_kept_edges, "dot has %d arrows for %lld kept edges", arrows,
          (long long)c->n_kept_edges);
  /* Rows: embeddings, a0 heads, m0, a1 heads, m1, resid_post -> 5 ordering edges. */
  T_CHECK(order_edges == 5, "dot has %d invisible row-ordering edges (want 5)", order_edges);
}

static void test_svg(const ep_circuit *c, const char *cpath) {
  char args[2048];
  char *spath = path_in("circuit.svg");
  snprintf(args, sizeof args, "circuit '%s' --format svg --out '%s'", cpath, spath);
  int rc = run(args, 1);
  if (!circuit_svg_available()) {
    T_CHECK(rc != 0 && strstr(out, "needs Graphviz") && strstr(out, "dot -Tsvg"),
            "without Graphviz: a clear error suggesting dot -Tsvg");
    free(spath);
    return;
  }
  T_CHECK(rc == 0, "svg export exit %d: %s", rc, out);
  size_t len = 0;
  char *svg = ep_try_read_file(spath, &len);
  T_CHECK(svg && (!strncmp(svg, "<?xml", 5) || !strncmp(svg, "<svg", 4)), "svg starts with <?xml or <svg");
  int missing = 0;
  for (int64_t e = 0; svg && e < c->n_edges; e++) {
    if (!c->edge_kept[e]) continue;
    char node[64];
    snprintf(node, sizeof node, "<title>%s</title>", c->edge_writer[e]);
    if (!strstr(svg, node)) missing++;
    snprintf(node, sizeof node, "%s", c->edge_reader[e]);
    size_t nl = strlen(node);
    if (nl > 2 && node[nl - 2] == '.') node[nl - 2] = '\0';
    char title[96];
    snprintf(title, sizeof title, "<title>%s</title>", node);
    if (!strstr(svg, title)) missing++;
  }
  T_CHECK(svg && missing == 0 && strstr(svg, "</svg>"), "svg has every kept node (%d missing)", missing);
  free(svg);
  free(spath);
}

static void test_errors(const char *cpath) {
  char args[2048];
  /* Not HDF5 at all. */
  char *junk = path_in("junk.h5");
  FILE *f = fopen(junk, "w");
  fputs("this is not an HDF5 file\n", f);
  fclose(f);
  snprintf(args, sizeof args, "circuit '%s' --format json", junk);
  int rc = run(args, 1);
  T_CHECK(rc != 0 && strstr(out, junk), "non-HDF5 file: error names the file (rc %d): %s", rc, out);

  /* HDF5, but not a circuit. */
  char *other = path_in("other.h5");
  hid_t h = h5io_create(other);
  int64_t d = 3;
  float x[3] = {1, 2, 3};
  h5io_write_f32(h, "wte", 1, &d, x);
  h5io_close(h);
  snprintf(args, sizeof args, "circuit '%s' --format dot", other);
  rc = run(args, 1);
  T_CHECK(rc != 0 && strstr(out, other) && strstr(out, "not an edgeprune circuit file"),
          "non-circuit HDF5: clear error naming the file (rc %d): %s", rc, out);

  /* A circuit file cut short. */
  size_t len = 0;
  char *bytes = ep_read_file(cpath, &len);
  char *cut = path_in("truncated.h5");
  f = fopen(cut, "wb");
  fwrite(bytes, 1, len / 2, f);
  fclose(f);
  snprintf(args, sizeof args, "circuit '%s'", cut);
  rc = run(args, 1);
  T_CHECK(rc != 0 && strstr(out, cut), "truncated circuit: error names the file (rc %d): %s", rc, out);

  /* Missing file, unknown format, unknown option. */
  char *none = path_in("does-not-exist.h5");
  snprintf(args, sizeof args, "circuit '%s' --format json", none);
  rc = run(args, 1);
  T_CHECK(rc != 0 && strstr(out, none), "missing file named (rc %d)", rc);
  snprintf(args, sizeof args, "circuit '%s' --format png", cpath);
  rc = run(args, 1);
  T_CHECK(rc == 2 && strstr(out, "unknown format 'png'"), "unknown format is a usage error (rc %d)", rc);
  snprintf(args, sizeof args, "circuit '%s' --bogus", cpath);
  rc = run(args, 1);
  T_CHECK(rc == 2 && strstr(out, "--bogus"), "unknown option is a usage error (rc %d)", rc);
  rc = run("circuit --help", 1);
  T_CHECK(rc == 0 && strstr(out, "--format") && strstr(out, "edges.json") && strstr(out, "--out"),
          "--help describes the options");
  free(bytes);
  free(junk);
  free(other);
  free(cut);
  free(none);
}

static void test_summary(const ep_circuit *c, const char *cpath) {
  char args[2048], want[128];
  snprintf(args, sizeof args, "circuit '%s'", cpath);
  int rc = run(args, 0);
  snprintf(want, sizeof want, "%lld of %lld kept", (long long)c->n_kept_edges, (long long)c->n_edges);
  T_CHECK(rc == 0 && strstr(out, want) && strstr(out, "exact_match") && strstr(out, "gpt2 n_layer=2"),
          "summary lists counts, model and metrics: %s", out);
}

/* Extracting again from a stored circuit (library and CLI) gives what extracting from
 * the masks directly gives; also for a Tracr-like graph with missing sub-blocks. */
static void test_reextract(void) {
  ep_model_config cfg;
  model_config_defaults(&cfg);
  cfg.n_layer = 3;
  cfg.n_head = cfg.n_kv_head = 2;
  cfg.has_mlp[0] = 0;
  cfg.has_attn[2] = 0;
  for (int emb = 0; emb < 2; emb++) {
    ep_graph g;
    graph_init(&g, &cfg, emb);
    int64_t n = g.n_edges;
    float *la = malloc((size_t)n * sizeof *la), nla[16];
    for (int64_t e = 0; e < n; e++)
      la[e] = 2.0f + 3.0f * (float)((e * 7919) % n) / (float)n;
    for (int w = 0; w < g.n_writers; w++)
      nla[w] = 1.0f + 0.5f * (float)w;
    ep_circuit stored, direct, again;
    extract_circuit(&g, la, emb ? nla : NULL, NULL, &stored);
    circuit_set_text(&stored, "tracr-like", "deck: text");
    char *p = path_in(emb ? "tracr_emb.h5" : "tracr.h5");
    circuit_write(&stored, p);
    ep_circuit r;
    circuit_read(&r, p);
    ep_extract_options o;
    extract_options_default(&o);
    o.edge_sparsity = 0.7;
    o.node_sparsity = emb ? 0.25 : -1.0;
    o.prune_dangling = 1;
    extract_circuit(&g, la, emb ? nla : NULL, &o, &direct);
    circuit_reextract(&r, p, &o, &again);
    T_CHECK(again.n_edges == n && !memcmp(again.edge_kept, direct.edge_kept, (size_t)n) &&
                !memcmp(again.node_kept, direct.node_kept, (size_t)g.n_writers) &&
                again.edge_threshold == direct.edge_threshold && !strcmp(again.model, "tracr-like"),
            "re-extraction from the file equals direct extraction (embedding nodes %d)", emb);
    /* The same through the command line, into a new circuit file. */
    char *q = path_in("reextracted.h5"), args[2048];
    snprintf(args, sizeof args, "circuit '%s' --edge-sparsity 0.7 %s --prune-dangling --format h5 --out '%s'",
             p, emb ? "--node-sparsity 0.25" : "", q);
    int rc = run(args, 1);
    ep_circuit cli;
    if (rc == 0) circuit_read(&cli, q);
    T_CHECK(rc == 0 && !memcmp(cli.edge_kept, direct.edge_kept, (size_t)n) && cli.prune_dangling == 1 &&
                cli.n_kept_edges == direct.n_kept_edges,
            "circuit --edge-sparsity ... --format h5 (rc %d)", rc);
    if (rc == 0) circuit_free(&cli);
    circuit_free(&stored);
    circuit_free(&direct);
    circuit_free(&again);
    circuit_free(&r);
    free(la);
    free(p);
    free(q);
    graph_free(&g);
  }
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s EDGEPRUNE_BINARY WORK_DIR\n", argv[0]);
    return 2;
  }
  bin = argv[1];
  dir = argv[2];
  ep_graph g;
  ep_circuit c;
  make_circuit(&g, &c);
  T_CHECK(c.n_kept_edges > 10 && c.n_kept_edges < c.n_edges / 2, "test circuit has %lld kept edges",
          (long long)c.n_kept_edges);
  char *cpath = path_in("test_circuit.h5");
  test_round_trip(&c, cpath);
  /* The mapping back onto the model's graph. */
  uint8_t *ek = malloc((size_t)g.n_edges), nk[64];
  ep_circuit r;
  circuit_read(&r, cpath);
  circuit_graph_masks(&r, &g, cpath, ek, nk);
  T_CHECK(!memcmp(ek, c.edge_kept, (size_t)g.n_edges) && !memcmp(nk, c.node_kept, (size_t)g.n_writers),
          "graph masks from the file equal the extracted circuit");
  /* A circuit applied to another model's graph is a clear error naming the file. */
  {
    ep_model_config other;
    model_config_defaults(&other);
    other.n_layer = 3;
    other.n_head = other.n_kv_head = 2;
    ep_graph g2;
    graph_init(&g2, &other, 1);
    char *errpath = path_in("mismatch.err");
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
      if (!freopen(errpath, "w", stderr)) _exit(3);
      circuit_graph_masks(&r, &g2, cpath, NULL, NULL);
      _exit(0); /* not reached when the mismatch is caught */
    }
    int st = 0;
    waitpid(pid, &st, 0);
    size_t len = 0;
    char *msg = ep_try_read_file(errpath, &len);
    T_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1 && msg && strstr(msg, cpath) && strstr(msg, "edges"),
            "graph mismatch: exit %d, message: %s", WIFEXITED(st) ? WEXITSTATUS(st) : -1,
            msg ? msg : "(none)");
    free(msg);
    free(errpath);
    graph_free(&g2);
  }
  circuit_free(&r);
  free(ek);
  test_json(&g, &c, cpath);
  test_dot(&c, cpath);
  test_svg(&c, cpath);
  test_summary(&c, cpath);
  test_errors(cpath);
  test_reextract();
  /* h5dump reads the whole file when it is installed. */
  if (t_run_capture("command -v h5dump", out, sizeof out) == 0) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "h5dump '%s' > /dev/null 2>&1", cpath);
    T_CHECK(t_run_capture(cmd, out, sizeof out) == 0, "h5dump reads %s", cpath);
  } else {
    printf("note: h5dump not installed; skipped the h5dump check\n");
  }
  free(cpath);
  circuit_free(&c);
  graph_free(&g);
  return t_done();
}
