/* graph.c — writers, readers and edges of a model (see graph.h for the layout). */
#include "edgeprune/graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgeprune/core.h"

/* The one place the graph is enumerated: with g == NULL it only counts. */
static void graph_walk(const ep_model_config *cfg, int embedding_nodes, ep_graph *g, int *nw_out,
                       int *nr_out, int64_t *ne_out) {
  int nw = 0, nr = 0;
  int64_t ne = 0;
  if (embedding_nodes) {
    if (g) {
      g->writers[nw] = (ep_writer){EP_WRITER_TOK, -1, -1, "tok_embeds"};
      g->writers[nw + 1] = (ep_writer){EP_WRITER_POS, -1, -1, "pos_embeds"};
    }
    nw += 2;
  }
  for (int l = 0; l < cfg->n_layer; l++) {
    if (g) g->layer_q_reader[l] = g->layer_head_writer[l] = g->layer_mlp_reader[l] = g->layer_mlp_writer[l] = -1;
    if (cfg->has_attn[l]) {
      if (g) g->layer_q_reader[l] = nr;
      for (int h = 0; h < cfg->n_head; h++)
        for (int k = 0; k < 3; k++) {
          if (g) {
            ep_reader *r = &g->readers[nr];
            r->kind = (ep_reader_kind)(EP_READER_Q + k);
            r->layer = l;
            r->head = h;
            r->n_in = nw;
            r->edge_offset = ne;
            snprintf(r->name, EP_NAME_MAX, "a%d.h%d.%c", l, h, "qkv"[k]);
          }
          nr++;
          ne += nw;
        }
      if (g) {
        g->layer_head_writer[l] = nw;
        for (int h = 0; h < cfg->n_head; h++) {
          ep_writer *w = &g->writers[nw + h];
          w->kind = EP_WRITER_HEAD;
          w->layer = l;
          w->head = h;
          snprintf(w->name, EP_NAME_MAX, "a%d.h%d", l, h);
        }
      }
      nw += cfg->n_head;
    }
    if (cfg->has_mlp[l]) {
      if (g) {
        ep_reader *r = &g->readers[nr];
        r->kind = EP_READER_MLP;
        r->layer = l;
        r->head = -1;
        r->n_in = nw;
        r->edge_offset = ne;
        snprintf(r->name, EP_NAME_MAX, "m%d", l);
        g->layer_mlp_reader[l] = nr;
        ep_writer *w = &g->writers[nw];
        w->kind = EP_WRITER_MLP;
        w->layer = l;
        w->head = -1;
        snprintf(w->name, EP_NAME_MAX, "m%d", l);
        g->layer_mlp_writer[l] = nw;
      }
      nr++;
      ne += nw;
      nw++;
    }
  }
  if (g) {
    ep_reader *r = &g->readers[nr];
    r->kind = EP_READER_RESID;
    r->layer = cfg->n_layer;
    r->head = -1;
    r->n_in = nw;
    r->edge_offset = ne;
    snprintf(r->name, EP_NAME_MAX, "resid_post");
    g->resid_reader = nr;
  }
  nr++;
  ne += nw;
  if (nw_out) *nw_out = nw;
  if (nr_out) *nr_out = nr;
  if (ne_out) *ne_out = ne;
}

void graph_count(const ep_model_config *cfg, int embedding_nodes, int *n_writers, int *n_readers,
                 int64_t *n_edges) {
  graph_walk(cfg, embedding_nodes, NULL, n_writers, n_readers, n_edges);
}

void graph_init(ep_graph *g, const ep_model_config *cfg, int embedding_nodes) {
  memset(g, 0, sizeof *g);
  g->embedding_nodes = embedding_nodes ? 1 : 0;
  graph_count(cfg, g->embedding_nodes, &g->n_writers, &g->n_readers, &g->n_edges);
  g->writers = ep_calloc((size_t)g->n_writers, sizeof *g->writers);
  g->readers = ep_calloc((size_t)g->n_readers, sizeof *g->readers);
  size_t L = (size_t)cfg->n_layer;
  g->layer_head_writer = ep_calloc(4 * L, sizeof(int));
  g->layer_mlp_writer = g->layer_head_writer + L;
  g->layer_q_reader = g->layer_head_writer + 2 * L;
  g->layer_mlp_reader = g->layer_head_writer + 3 * L;
  graph_walk(cfg, g->embedding_nodes, g, NULL, NULL, NULL);
}

void graph_free(ep_graph *g) {
  free(g->writers);
  free(g->readers);
  free(g->layer_head_writer);
  memset(g, 0, sizeof *g);
}

void graph_edge_ends(const ep_graph *g, int64_t e, int *w, int *r) {
  EP_CHECK(e >= 0 && e < g->n_edges, "edge index %lld out of range", (long long)e);
  int lo = 0, hi = g->n_readers - 1;
  while (lo < hi) { /* last reader with edge_offset <= e */
    int mid = (lo + hi + 1) / 2;
    if (g->readers[mid].edge_offset <= e) lo = mid;
    else hi = mid - 1;
  }
  *r = lo;
  *w = (int)(e - g->readers[lo].edge_offset);
}

int graph_find_writer(const ep_graph *g, const char *name) {
  for (int i = 0; i < g->n_writers; i++)
    if (strcmp(g->writers[i].name, name) == 0) return i;
  return -1;
}

int graph_find_reader(const ep_graph *g, const char *name) {
  for (int i = 0; i < g->n_readers; i++)
    if (strcmp(g->readers[i].name, name) == 0) return i;
  return -1;
}
