/* graph.h — the computation graph Edge Pruning masks: writers, readers, edges.
 *
 * Writers, in order: tok_embeds, pos_embeds (only with embedding nodes), then per layer
 * l its heads a{l}.h{i} and its MLP m{l}. Readers, in order: per layer l the q, k, v
 * inputs of every head (a{l}.h{i}.q/.k/.v, head-major), then m{l}; finally resid_post.
 *
 * Every reader reads a prefix of the writer list: attention readers of layer l read all
 * writers before layer l's heads, the MLP reader of layer l also reads layer l's heads,
 * resid_post reads everything. So a reader is (n_in, edge_offset) and the edge
 * (writer w, reader r) has index r.edge_offset + w for w < r.n_in. Layers without an
 * attention or MLP block (Tracr) simply have no such writers or readers. */
#pragma once

#include <stdint.h>

#include "edgeprune/model.h"

#define EP_NAME_MAX 32

typedef enum {
  EP_WRITER_TOK = 0,
  EP_WRITER_POS = 1,
  EP_WRITER_HEAD = 2,
  EP_WRITER_MLP = 3
} ep_writer_kind;

typedef enum {
  EP_READER_Q = 0,
  EP_READER_K = 1,
  EP_READER_V = 2,
  EP_READER_MLP = 3,
  EP_READER_RESID = 4
} ep_reader_kind;

typedef struct {
  ep_writer_kind kind;
  int layer; /* -1 for embeddings */
  int head;  /* -1 unless a head */
  char name[EP_NAME_MAX];
} ep_writer;

typedef struct {
  ep_reader_kind kind;
  int layer; /* n_layer for resid_post */
  int head;  /* -1 unless q/k/v */
  int n_in;  /* reads writers [0, n_in) */
  int64_t edge_offset;
  char name[EP_NAME_MAX];
} ep_reader;

typedef struct {
  int embedding_nodes; /* 1: tok/pos embeddings are masked writers */
  int n_writers;
  int n_readers;
  int64_t n_edges;
  ep_writer *writers; /* [n_writers] */
  ep_reader *readers; /* [n_readers] */
  /* Per layer: index of the layer's first head writer, of its MLP writer (-1 if
   * none), of its first q reader and of its MLP reader (-1 if none). */
  int *layer_head_writer, *layer_mlp_writer, *layer_q_reader, *layer_mlp_reader;
  int resid_reader; /* index of resid_post */
} ep_graph;

/* Build the graph of a model config. */
void graph_init(ep_graph *g, const ep_model_config *cfg, int embedding_nodes);
void graph_free(ep_graph *g);

/* Counts without building (the one formula); any pointer may be NULL. */
void graph_count(const ep_model_config *cfg, int embedding_nodes, int *n_writers,
                 int *n_readers, int64_t *n_edges);

/* Index of the edge (writer w, reader r), or -1 when r does not read w. */
static inline int64_t graph_edge_index(const ep_graph *g, int w, int r) {
  return (w >= 0 && w < g->readers[r].n_in) ? g->readers[r].edge_offset + w : -1;
}

/* The reader group whose input is base slot s (0 <= s <= 2 L for L layers): layer l's
 * q/k/v readers (its first, layer_q_reader) at s = 2 l, its MLP reader at 2 l + 1,
 * resid_post at 2 L; -1 where the layer has none. */
static inline int graph_slot_reader(const ep_graph *g, int s) {
  const int l = s / 2;
  if (l == g->readers[g->resid_reader].layer) return s % 2 ? -1 : g->resid_reader;
  return s % 2 ? g->layer_mlp_reader[l] : g->layer_q_reader[l];
}

/* Writer and reader of edge e (binary search over readers). */
void graph_edge_ends(const ep_graph *g, int64_t e, int *w, int *r);

/* Lookups by name; -1 when absent. */
int graph_find_writer(const ep_graph *g, const char *name);
int graph_find_reader(const ep_graph *g, const char *name);
