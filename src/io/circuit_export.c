/* circuit_export.c — a circuit as the reference's edges.json, Graphviz DOT or SVG. */
#define _POSIX_C_SOURCE 200809L /* open_memstream */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgeprune/circuit.h"
#include "edgeprune/core.h"

#ifdef EP_HAVE_GRAPHVIZ
#include <gvc.h>
#endif

/* What a name denotes. Writer names: tok_embeds, pos_embeds, a{l}.h{i}, m{l}; reader
 * names: a{l}.h{i}.q|k|v, m{l}, resid_post. */
typedef enum { NAME_EMBED, NAME_HEAD, NAME_QKV, NAME_MLP, NAME_RESID, NAME_UNKNOWN } name_kind;

typedef struct {
  name_kind kind;
  int layer, head, qkv; /* qkv: 0 q, 1 k, 2 v */
} name_info;

static name_info parse_name(const char *s) {
  name_info n = {NAME_UNKNOWN, -1, -1, -1};
  int l, h, used = 0;
  char c;
  if (!strcmp(s, "tok_embeds") || !strcmp(s, "pos_embeds")) {
    n.kind = NAME_EMBED;
  } else if (!strcmp(s, "resid_post")) {
    n.kind = NAME_RESID;
  } else if (sscanf(s, "a%d.h%d.%c%n", &l, &h, &c, &used) == 3 && s[used] == '\0' && strchr("qkv", c)) {
    n = (name_info){NAME_QKV, l, h, (int)(strchr("qkv", c) - "qkv")};
  } else if (sscanf(s, "a%d.h%d%n", &l, &h, &used) == 2 && s[used] == '\0') {
    n = (name_info){NAME_HEAD, l, h, -1};
  } else if (sscanf(s, "m%d%n", &l, &used) == 1 && s[used] == '\0') {
    n = (name_info){NAME_MLP, l, -1, -1};
  }
  return n;
}

/* The node a reader belongs to: a3.h7.q -> a3.h7; m2 -> m2; resid_post -> resid_post.
 * out holds EP_NAME_MAX bytes or more. */
static void reader_node_name(const char *reader, char *out, size_t size) {
  snprintf(out, size, "%s", reader);
  if (parse_name(reader).kind == NAME_QKV) out[strlen(out) - 2] = '\0';
}

/* ---- JSON -------------------------------------------------------------------------- */

static void json_string(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\')
      fprintf(f, "\\%c", *p);
    else if (*p < 0x20)
      fprintf(f, "\\u%04x", *p);
    else
      fputc(*p, f);
  }
  fputc('"', f);
}

typedef struct {
  int layer, cls, writer, qkv, head;
  int64_t e;
} edge_key;

static int edge_key_cmp(const void *a, const void *b) {
  const edge_key *x = a, *y = b;
  int dx[5] = {x->layer, x->cls, x->writer, x->qkv, x->head};
  int dy[5] = {y->layer, y->cls, y->writer, y->qkv, y->head};
  for (int i = 0; i < 5; i++)
    if (dx[i] != dy[i]) return dx[i] < dy[i] ? -1 : 1;
  return x->e < y->e ? -1 : (x->e > y->e);
}

void circuit_export_json(const ep_circuit *c, FILE *f) {
  edge_key *keys = ep_malloc((size_t)(c->n_kept_edges + 1) * sizeof *keys);
  int64_t n = 0, start = 0;
  for (int64_t e = 0; e < c->n_edges; e++) {
    if (e > 0 && strcmp(c->edge_reader[e], c->edge_reader[e - 1]) != 0) start = e;
    if (!c->edge_kept[e]) continue;
    EP_CHECK(n < c->n_kept_edges, "more kept edges than n_kept (%lld)", (long long)c->n_kept_edges);
    name_info r = parse_name(c->edge_reader[e]);
    edge_key k = {0, 0, (int)(e - start), 0, 0, e};
    switch (r.kind) {
    case NAME_QKV:
      k.layer = r.layer, k.qkv = r.qkv, k.head = r.head;
      break;
    case NAME_MLP:
      k.layer = r.layer, k.cls = 1;
      break;
    case NAME_RESID:
      k.layer = INT_MAX;
      break;
    default:
      ep_fatal("circuit has an edge into '%s', which is not a reader name", c->edge_reader[e]);
    }
    keys[n++] = k;
  }
  qsort(keys, (size_t)n, sizeof *keys, edge_key_cmp);
  fputs("[", f);
  for (int64_t i = 0; i < n; i++) {
    fputs(i ? ",\n  [" : "\n  [", f);
    json_string(f, c->edge_writer[keys[i].e]);
    fputs(", ", f);
    json_string(f, c->edge_reader[keys[i].e]);
    fputs("]", f);
  }
  fputs(n ? "\n]\n" : "]\n", f);
  free(keys);
}

/* ---- DOT --------------------------------------------------------------------------- */

static const char *const QKV_COLOR[3] = {"#c0392b", "#1e8449", "#2e6fd8"};
static const char *const QKV_STYLE[3] = {"solid", "dashed", "bold"};

static void dot_id(FILE *f, const char *s) {
  fputc('"', f);
  for (const char *p = s; *p; p++) {
    if (*p == '"' || *p == '\\') fputc('\\', f);
    fputc(*p, f);
  }
  fputc('"', f);
}

/* One node line. A removed node (node mask off) can still appear as the target of
 * kept edges (the reference keeps edges into removed nodes); it is drawn dashed. */
static void dot_node(FILE *f, const char *name, int removed, const char *indent) {
  name_info ni = parse_name(name);
  fputs(indent, f);
  dot_id(f, name);
  const char *fill = "#ffffff";
  switch (ni.kind) {
  case NAME_EMBED:
    fill = "#e8e8e8";
    fputs(" [shape=ellipse", f);
    break;
  case NAME_HEAD:
    fill = "#cfe2f3";
    fputs(" [shape=box", f);
    break;
  case NAME_MLP:
    fill = "#fce5cd";
    fputs(removed ? " [shape=box" : " [shape=box, style=filled", f); /* square corners */
    break;
  case NAME_RESID:
    fill = "#d9ead3";
    fputs(" [shape=ellipse, penwidth=2", f);
    break;
  default:
    fputs(" [shape=box", f);
    break;
  }
  if (removed)
    fputs(", style=\"rounded,dashed\", fillcolor=\"#ffffff\", fontcolor=\"#999999\", "
          "tooltip=\"node removed\"];\n",
          f);
  else
    fprintf(f, ", fillcolor=\"%s\"];\n", fill);
}

void circuit_export_dot(const ep_circuit *c, FILE *f) {
  /* Which nodes the kept edges touch (index n_nodes stands for resid_post). */
  uint8_t *used = ep_calloc((size_t)c->n_nodes + 1, 1);
  int64_t *edge_node = ep_malloc((size_t)(c->n_edges + 1) * sizeof *edge_node);
  int64_t start = 0;
  int last_node = -2;
  for (int64_t e = 0; e < c->n_edges; e++) {
    int new_reader = e == 0 || strcmp(c->edge_reader[e], c->edge_reader[e - 1]) != 0;
    if (new_reader) {
      start = e;
      char node[EP_NAME_MAX + 8];
      reader_node_name(c->edge_reader[e], node, sizeof node);
      last_node = -1;
      if (!strcmp(node, "resid_post")) last_node = c->n_nodes;
      for (int w = 0; w < c->n_nodes && last_node < 0; w++)
        if (!strcmp(c->node_name[w], node)) last_node = w;
      if (last_node < 0) ep_fatal("circuit reader '%s' belongs to no node", c->edge_reader[e]);
    }
    edge_node[e] = last_node;
    if (c->edge_kept[e]) {
      used[e - start] = 1;
      used[last_node] = 1;
    }
  }

  fprintf(f, "// edgeprune circuit: %lld of %lld edges kept, %d of %d nodes kept\n",
          (long long)c->n_kept_edges, (long long)c->n_edges, c->n_kept_nodes, c->n_nodes);
  fputs("digraph circuit {\n", f);
  fprintf(f,
          "  graph [newrank=true, rankdir=TB, ranksep=0.5, nodesep=0.2, fontname=\"Helvetica\", fontsize=12, "
          "labelloc=t,\n         label=\"%lld edges (edge sparsity %.4f), %d nodes (node sparsity %.4f)\\n"
          "edges into heads: q red solid, k green dashed, v blue bold\"];\n",
          (long long)c->n_kept_edges, c->edge_sparsity, c->n_kept_nodes, c->node_sparsity);
  fputs("  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", fontsize=11];\n", f);
  fputs("  edge [arrowsize=0.6, color=\"#555555\"];\n", f);

  /* Embeddings on one rank at the top. */
  int any_embed = 0;
  for (int w = 0; w < c->n_nodes; w++)
    if (used[w] && parse_name(c->node_name[w]).kind == NAME_EMBED) any_embed = 1;
  if (any_embed) {
    fputs("  { rank=same;\n", f);
    for (int w = 0; w < c->n_nodes; w++)
      if (used[w] && parse_name(c->node_name[w]).kind == NAME_EMBED)
        dot_node(f, c->node_name[w], !c->node_kept[w], "    ");
    fputs("  }\n", f);
  }
  /* Per layer a cluster: the heads on one rank, the MLP below them. */
  for (int l = 0; l < c->n_layer; l++) {
    int any = 0, any_head = 0;
    for (int w = 0; w < c->n_nodes; w++) {
      name_info ni = parse_name(c->node_name[w]);
      if (used[w] && ni.layer == l) any = 1, any_head |= ni.kind == NAME_HEAD;
    }
    if (!any) continue;
    fprintf(f, "  subgraph cluster_layer%d {\n", l);
    fprintf(f,
            "    label=\"layer %d\"; labeljust=l; style=dashed; color=\"#bbbbbb\"; fontcolor=\"#888888\";\n",
            l);
    if (any_head) {
      fputs("    { rank=same;\n", f);
      for (int w = 0; w < c->n_nodes; w++) {
        name_info ni = parse_name(c->node_name[w]);
        if (used[w] && ni.layer == l && ni.kind == NAME_HEAD)
          dot_node(f, c->node_name[w], !c->node_kept[w], "      ");
      }
      fputs("    }\n", f);
    }
    for (int w = 0; w < c->n_nodes; w++) {
      name_info ni = parse_name(c->node_name[w]);
      if (used[w] && ni.layer == l && ni.kind == NAME_MLP)
        dot_node(f, c->node_name[w], !c->node_kept[w], "    ");
    }
    fputs("  }\n", f);
  }
  /* Nodes whose names follow no known pattern (none in our graphs) still appear. */
  for (int w = 0; w < c->n_nodes; w++) {
    name_info ni = parse_name(c->node_name[w]);
    if (used[w] && ni.kind != NAME_EMBED && ni.layer < 0)
      dot_node(f, c->node_name[w], !c->node_kept[w], "  ");
  }
  if (used[c->n_nodes]) dot_node(f, "resid_post", 0, "  ");

  /* Keep the rows in model order (embeddings, then per layer its heads and its MLP,
   * resid_post last) with an invisible edge from one node of each row to one of the
   * next; dot otherwise ranks nodes by longest path and may put layer 10 above 6. */
  const char *prev = NULL;
  for (int w = 0; w < c->n_nodes; w++)
    if (used[w] && parse_name(c->node_name[w]).kind == NAME_EMBED) {
      prev = c->node_name[w];
      break;
    }
  for (int l = 0; l < c->n_layer; l++)
    for (int kind = NAME_HEAD; kind <= NAME_MLP; kind += NAME_MLP - NAME_HEAD) {
      const char *row = NULL;
      for (int w = 0; w < c->n_nodes && !row; w++) {
        name_info ni = parse_name(c->node_name[w]);
        if (used[w] && ni.layer == l && (int)ni.kind == kind) row = c->node_name[w];
      }
      if (!row) continue;
      if (prev) {
        fputs("  ", f);
        dot_id(f, prev);
        fputs(" -> ", f);
        dot_id(f, row);
        fputs(" [style=invis];\n", f);
      }
      prev = row;
    }
  if (prev && used[c->n_nodes]) {
    fputs("  ", f);
    dot_id(f, prev);
    fputs(" -> \"resid_post\" [style=invis];\n", f);
  }

  for (int64_t e = 0; e < c->n_edges; e++) {
    if (!c->edge_kept[e]) continue;
    int64_t rn = edge_node[e];
    const char *to = rn == c->n_nodes ? "resid_post" : c->node_name[rn];
    fputs("  ", f);
    dot_id(f, c->edge_writer[e]);
    fputs(" -> ", f);
    dot_id(f, to);
    name_info ri = parse_name(c->edge_reader[e]);
    if (ri.kind == NAME_QKV)
      fprintf(f, " [color=\"%s\", style=%s, tooltip=\"%s -> %s\"];\n", QKV_COLOR[ri.qkv], QKV_STYLE[ri.qkv],
              c->edge_writer[e], c->edge_reader[e]);
    else
      fprintf(f, " [tooltip=\"%s -> %s\"];\n", c->edge_writer[e], c->edge_reader[e]);
  }
  fputs("}\n", f);
  free(used);
  free(edge_node);
}

/* ---- SVG --------------------------------------------------------------------------- */

int circuit_svg_available(void) {
#ifdef EP_HAVE_GRAPHVIZ
  return 1;
#else
  return 0;
#endif
}

void circuit_export_svg(const ep_circuit *c, FILE *f) {
#ifdef EP_HAVE_GRAPHVIZ
  char *dot = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&dot, &len);
  if (!m) ep_fatal("cannot open a memory stream for the DOT text");
  circuit_export_dot(c, m);
  if (fclose(m) != 0) ep_fatal("cannot finish the DOT text in memory");
  GVC_t *gvc = gvContext();
  if (!gvc) ep_fatal("Graphviz: cannot create a context");
  Agraph_t *g = agmemread(dot);
  if (!g) ep_fatal("Graphviz could not parse the circuit's DOT text");
  if (gvLayout(gvc, g, "dot") != 0)
    ep_fatal("Graphviz 'dot' layout failed (is the dot layout plugin installed?)");
  if (gvRender(gvc, g, "svg", f) != 0)
    ep_fatal("Graphviz could not render SVG (is the core plugin registered? try 'dot -c' as root)");
  gvFreeLayout(gvc, g);
  agclose(g);
  gvFreeContext(gvc);
  free(dot);
#else
  (void)c;
  (void)f;
  ep_fatal("SVG export needs Graphviz (libgvc), which this build does not have; use "
           "'edgeprune circuit FILE --format dot | dot -Tsvg > circuit.svg'");
#endif
}
