/* cmd_circuit.c — `edgeprune circuit`: summarise or export a circuit file. */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgeprune/circuit.h"
#include "edgeprune/cli.h"
#include "edgeprune/core.h"

static int circuit_run(int argc, char **argv);

const ep_command ep_cmd_circuit = {
    .name = "circuit",
    .summary = "summarise a circuit file or export it as edges.json, Graphviz DOT or SVG",
    .help =
        "usage: edgeprune circuit CIRCUIT.h5 [--format summary|json|dot|svg] [--out FILE]\n"
        "\n"
        "Reads a circuit file written by 'edgeprune prune' and writes it in another form.\n"
        "\n"
        "options:\n"
        "  --format summary  (default) counts, sparsities, thresholds, model and metrics as text\n"
        "  --format json     the reference Edge Pruning edges.json: a JSON list of\n"
        "                    [writer, reader] name pairs of the kept edges, e.g.\n"
        "                    [[\"a0.h1\", \"a3.h7.q\"], [\"m2\", \"resid_post\"]]\n"
        "  --format dot      Graphviz DOT: one node per head (a3.h7), MLP (m2), embedding and\n"
        "                    resid_post, clustered by layer; an edge into a3.h7.q/.k/.v is drawn\n"
        "                    into a3.h7, coloured and styled by q (red solid), k (green dashed),\n"
        "                    v (blue bold)\n"
        "  --format svg      the DOT graph laid out by Graphviz 'dot' (needs a build with\n"
        "                    Graphviz; otherwise use '--format dot | dot -Tsvg > c.svg')\n"
        "  --out FILE        write to FILE (atomically) instead of standard output\n"
        "  -h, --help        this text\n"
        "\n"
        "Exit status 0 on success; non-zero with a one-line reason on stderr otherwise\n"
        "(missing file, not a circuit file, unknown format).\n",
    .order = 70,
    .run = circuit_run,
};

static void print_summary(const ep_circuit *c, const char *path, FILE *f) {
  fprintf(f, "circuit file   %s\n", path);
  fprintf(f, "model          %s\n", c->model[0] ? c->model : "(not recorded)");
  fprintf(f, "graph          %d layers, %d heads, embedding nodes %s\n", c->n_layer, c->n_head,
          c->embedding_nodes ? "on" : "off");
  fprintf(f, "edges          %lld of %lld kept, sparsity %.6f (requested %.6f, threshold %.6f, expected %.6f)\n",
          (long long)c->n_kept_edges, (long long)c->n_edges, c->edge_sparsity, c->requested_edge_sparsity,
          c->edge_threshold, c->expected_edge_sparsity);
  if (c->node_masks)
    fprintf(f, "nodes          %d of %d kept, sparsity %.6f (requested %.6f, threshold %.6f, expected %.6f)\n",
            c->n_kept_nodes, c->n_nodes, c->node_sparsity, c->requested_node_sparsity, c->node_threshold,
            c->expected_node_sparsity);
  else
    fprintf(f, "nodes          %d of %d kept, sparsity %.6f (no node masks)\n", c->n_kept_nodes, c->n_nodes,
            c->node_sparsity);
  fprintf(f, "dangling       %s\n", c->prune_dangling ? "pruned" : "kept");
  if (c->n_metrics) {
    fprintf(f, "metrics        %-22s %14s %14s\n", "", "full", "circuit");
    for (int i = 0; i < c->n_metrics; i++) {
      fprintf(f, "               %-22s", c->metric_name[i]);
      if (isnan(c->metric_full[i])) fprintf(f, " %14s", "-");
      else fprintf(f, " %14.6g", c->metric_full[i]);
      if (isnan(c->metric_circuit[i])) fprintf(f, " %14s\n", "-");
      else fprintf(f, " %14.6g\n", c->metric_circuit[i]);
    }
  } else {
    fprintf(f, "metrics        (none recorded)\n");
  }
}

static int circuit_run_rank0(int argc, char **argv) {
  const char *path = NULL, *format = "summary", *out = NULL;
  for (int i = 1; i < argc; i++) {
    const char *v;
    if ((v = cli_option(argc, argv, &i, "--format"))) format = v;
    else if ((v = cli_option(argc, argv, &i, "--out"))) out = v;
    else if (argv[i][0] == '-' && argv[i][1] != '\0')
      return cli_usage_error(&ep_cmd_circuit, "unknown option '%s'", argv[i]);
    else if (path)
      return cli_usage_error(&ep_cmd_circuit, "more than one circuit file ('%s' and '%s')", path, argv[i]);
    else path = argv[i];
  }
  if (!path) return cli_usage_error(&ep_cmd_circuit, "no circuit file given");
  int fmt = !strcmp(format, "summary") ? 0
            : !strcmp(format, "json")  ? 1
            : !strcmp(format, "dot")   ? 2
            : !strcmp(format, "svg")   ? 3
                                       : -1;
  if (fmt < 0)
    return cli_usage_error(&ep_cmd_circuit, "unknown format '%s' (one of summary, json, dot, svg)", format);
  if (fmt == 3 && !circuit_svg_available()) {
    fprintf(stderr,
            "edgeprune circuit: SVG export needs Graphviz (libgvc), which this build does not have; "
            "use 'edgeprune circuit %s --format dot | dot -Tsvg > circuit.svg'\n",
            path);
    return 1;
  }

  ep_circuit c;
  circuit_read(&c, path);
  char tmp[4096];
  FILE *f = stdout;
  if (out) {
    ep_atomic_tmpname(out, tmp, sizeof tmp);
    f = fopen(tmp, "w");
    if (!f) ep_fatal("cannot write '%s'", out);
  }
  switch (fmt) {
  case 0:
    print_summary(&c, path, f);
    break;
  case 1:
    circuit_export_json(&c, f);
    break;
  case 2:
    circuit_export_dot(&c, f);
    break;
  default:
    circuit_export_svg(&c, f);
    break;
  }
  if (out) {
    if (fclose(f) != 0) {
      ep_atomic_abort(tmp);
      ep_fatal("cannot finish writing '%s'", out);
    }
    ep_atomic_commit(tmp, out);
  } else if (fflush(stdout) != 0) {
    ep_fatal("cannot write to standard output");
  }
  circuit_free(&c);
  return 0;
}

static int circuit_run(int argc, char **argv) {
  /* Rank 0 reads and writes; the others learn its exit status. */
  int status = 0;
  if (ep_rank == 0) status = circuit_run_rank0(argc, argv);
  if (ep_mpi_active() && ep_size > 1) EP_CHECK_MPI(MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD));
  return status;
}
