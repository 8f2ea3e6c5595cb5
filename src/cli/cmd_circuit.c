/* cmd_circuit.c — `edgeprune circuit`: summarise or export a circuit file. */
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
    .help = "usage: edgeprune circuit CIRCUIT.h5 [--format summary|edges|json|dot|svg|h5] [--out FILE]\n"
            "                         [--edge-sparsity S] [--node-sparsity S] [--prune-dangling]\n"
            "                         [--threshold-rule count|bisect]\n"
            "\n"
            "Reads a circuit file written by 'edgeprune prune' or 'edgeprune baseline' and writes\n"
            "it in another form, optionally after extracting the circuit again from its stored\n"
            "masks (Edge Pruning circuits only: a baseline's file holds scores, not masks).\n"
            "\n"
            "options:\n"
            "  --format summary  (default) counts, sparsities, thresholds, model and metrics as text\n"
            "  --format edges    the kept edges as text, one 'writer -> reader' a line\n"
            "  --format json     the reference Edge Pruning edges.json: a JSON list of\n"
            "                    [writer, reader] name pairs of the kept edges, e.g.\n"
            "                    [[\"a0.h1\", \"a3.h7.q\"], [\"m2\", \"resid_post\"]]\n"
            "  --format dot      Graphviz DOT: one node per head (a3.h7), MLP (m2), embedding and\n"
            "                    resid_post, clustered by layer; an edge into a3.h7.q/.k/.v is drawn\n"
            "                    into a3.h7, coloured and styled by q (red solid), k (green dashed),\n"
            "                    v (blue bold)\n"
            "  --format svg      the DOT graph laid out by Graphviz 'dot' (needs a build with\n"
            "                    Graphviz; otherwise use '--format dot | dot -Tsvg > c.svg')\n"
            "  --format h5       a new circuit file (needs --out); useful with the options below\n"
            "  --out FILE        write to FILE (atomically) instead of standard output\n"
            "  --edge-sparsity S extract again at edge sparsity S in [0, 1], keeping the\n"
            "                    round((1-S)*n) largest deterministic masks (default: the file's\n"
            "                    circuit as stored)\n"
            "  --node-sparsity S extract again at node sparsity S (runs with node masks only)\n"
            "  --threshold-rule R  extract again with rule R: count (default: exactly the requested\n"
            "                    number of masks) or bisect (the reference code's bisection, whose\n"
            "                    last midpoint can drop a mask at the edge of the request)\n"
            "  --prune-dangling  extract again, dropping edges into nodes that have no kept path to\n"
            "                    resid_post (and marking those nodes removed)\n"
            "                    Settings not given keep the file's values. Re-extracted circuits\n"
            "                    carry no metrics (those described the stored circuit).\n"
            "  -h, --help        this text\n"
            "\n"
            "Exit status 0 on success; non-zero with a one-line reason on stderr otherwise\n"
            "(missing file, not a circuit file, unknown format).\n",
    .order = 70,
    .run = circuit_run,
};

/* A sparsity given on the command line: a number in [0, 1]. */
static int parse_sparsity(const char *flag, const char *v, double *out) {
  char *end = NULL;
  double x = strtod(v, &end);
  if (!end || end == v || *end != '\0' || !(x >= 0.0 && x <= 1.0)) {
    cli_usage_error(&ep_cmd_circuit, "%s needs a number in [0, 1], got '%s'", flag, v);
    return 0;
  }
  *out = x;
  return 1;
}

static int circuit_run_rank0(int argc, char **argv) {
  const char *path = NULL, *format = "summary", *out = NULL;
  ep_extract_options opt;
  extract_options_default(&opt);
  int reextract = 0, edge_given = 0, node_given = 0;
  for (int i = 1; i < argc; i++) {
    const char *v;
    if ((v = cli_option(argc, argv, &i, "--format")))
      format = v;
    else if ((v = cli_option(argc, argv, &i, "--out")))
      out = v;
    else if ((v = cli_option(argc, argv, &i, "--edge-sparsity"))) {
      if (!parse_sparsity("--edge-sparsity", v, &opt.edge_sparsity)) return 2;
      reextract = edge_given = 1;
    } else if ((v = cli_option(argc, argv, &i, "--node-sparsity"))) {
      if (!parse_sparsity("--node-sparsity", v, &opt.node_sparsity)) return 2;
      reextract = node_given = 1;
    } else if ((v = cli_option(argc, argv, &i, "--threshold-rule"))) {
      if (!strcmp(v, "count"))
        opt.rule = EP_THRESHOLD_COUNT;
      else if (!strcmp(v, "bisect"))
        opt.rule = EP_THRESHOLD_BISECT;
      else
        return cli_usage_error(&ep_cmd_circuit, "--threshold-rule must be count or bisect, not '%s'", v);
      reextract = 1;
    } else if (!strcmp(argv[i], "--prune-dangling")) {
      opt.prune_dangling = 1;
      reextract = 1;
    } else if (argv[i][0] == '-' && argv[i][1] != '\0')
      return cli_usage_error(&ep_cmd_circuit, "unknown option '%s'", argv[i]);
    else if (path)
      return cli_usage_error(&ep_cmd_circuit, "more than one circuit file ('%s' and '%s')", path, argv[i]);
    else
      path = argv[i];
  }
  if (!path) return cli_usage_error(&ep_cmd_circuit, "no circuit file given");
  int fmt = !strcmp(format, "summary") ? 0
            : !strcmp(format, "json")  ? 1
            : !strcmp(format, "dot")   ? 2
            : !strcmp(format, "svg")   ? 3
            : !strcmp(format, "h5")    ? 4
            : !strcmp(format, "edges") ? 5
                                       : -1;
  if (fmt < 0)
    return cli_usage_error(&ep_cmd_circuit, "unknown format '%s' (one of summary, edges, json, dot, svg, h5)",
                           format);
  if (fmt == 4 && !out) return cli_usage_error(&ep_cmd_circuit, "--format h5 needs --out FILE");
  if (fmt == 3 && !circuit_svg_available()) {
    fprintf(stderr,
            "edgeprune circuit: SVG export needs Graphviz (libgvc), which this build does not have; "
            "use 'edgeprune circuit %s --format dot | dot -Tsvg > circuit.svg'\n",
            path);
    return 1;
  }

  ep_circuit c;
  circuit_read(&c, path);
  if (reextract) {
    /* What is not given stays as the file has it. */
    if (!edge_given) opt.edge_sparsity = c.requested_edge_sparsity;
    if (!node_given && c.node_masks) opt.node_sparsity = c.requested_node_sparsity;
    if (node_given && !c.node_masks)
      ep_fatal("%s: --node-sparsity given but the circuit was trained without node masks", path);
    opt.prune_dangling |= c.prune_dangling;
    ep_circuit fresh;
    circuit_reextract(&c, path, &opt, &fresh);
    circuit_free(&c);
    c = fresh;
  }
  if (fmt == 4) {
    circuit_write(&c, out);
    circuit_free(&c);
    return 0;
  }
  char tmp[4096];
  FILE *f = stdout;
  if (out) {
    ep_atomic_tmpname(out, tmp, sizeof tmp);
    f = fopen(tmp, "w");
    if (!f) ep_fatal("cannot write '%s'", out);
  }
  switch (fmt) {
  case 0:
    circuit_print_summary(&c, path, f);
    break;
  case 1:
    circuit_export_json(&c, f);
    break;
  case 2:
    circuit_export_dot(&c, f);
    break;
  case 5:
    circuit_export_edges(&c, f);
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
