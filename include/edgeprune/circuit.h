/* circuit.h — from trained mask parameters to a circuit; the circuit file; exports.
 *
 * Extraction follows the reference Edge Pruning code:
 *  1. Deterministic masks: value = sigmoid(log_alpha / beta * 0.8) (hardconcrete.h).
 *  2. Within each mask group the k = round(sum over the group of P(z = 0)) smallest
 *     values are set to 0. Edge groups, per layer: the q readers of all heads together,
 *     the k readers, the v readers, the MLP reader; then the resid_post reader. Node
 *     (writer) groups: tok_embeds, pos_embeds, per layer its heads together, per layer
 *     its MLP. Ties are broken by the lower index (the reference leaves ties to
 *     torch.topk). A group holds only real edges. (The reference's per-layer parameter
 *     arrays also hold slots for writers a reader cannot read; they get no gradient, so
 *     near their initial log_alpha ~ 10 they change nothing, but AdamW's weight decay
 *     pulls them toward 0 over a long run, and then each adds ~0.17 to its array's
 *     expected zero count. Our masks have no such slots.)
 *  3. A threshold gives a binary mask kept = value > threshold (compared in float32).
 *     Default rule (EP_THRESHOLD_COUNT): keep the k = round((1 - requested) * n) largest
 *     values exactly (the threshold is the (k+1)-th largest value), so the circuit the
 *     masks describe is the circuit stored. The reference's rule (EP_THRESHOLD_BISECT):
 *     bisection on [0, 1] to 1e-5, returning the last midpoint, within one mask of the
 *     request when values are more than 1e-5 apart; but when the request falls between
 *     two counts (the default request below is such a case whenever kept values are a
 *     little under 1) that midpoint lands on either side of the smallest kept value and
 *     can drop it. It stays available for comparisons with the reference's circuits. Default request: the deterministic masks' own
 *     sparsity 1 - mean(value), as the reference evaluation does, so the circuit is the
 *     one the trained masks describe; the same for nodes. mean P(z = 0) is recorded as
 *     the expected sparsity.
 *  4. The circuit is the kept edges whose writer node is kept (edges into a removed
 *     node stay, as in the reference). With prune_dangling (off by default), edges into
 *     a node that has no kept path to resid_post are dropped as well, and such nodes
 *     are marked removed (they cannot affect the output).
 * Edges are in graph order (edge index = reader.edge_offset + writer) and nodes are the
 * writers in graph order, here and in the file. */
#pragma once

#include <stdint.h>
#include <stdio.h>

#include "edgeprune/graph.h"
#include "edgeprune/model.h"

/* Version of the circuit file layout written by circuit_write. */
#define EP_CIRCUIT_FORMAT "edgeprune-circuit"
#define EP_CIRCUIT_FORMAT_VERSION 1

typedef enum {
  EP_THRESHOLD_COUNT = 0, /* keep exactly round((1 - requested) * n) masks (default) */
  EP_THRESHOLD_BISECT = 1 /* the reference's bisection, last midpoint */
} ep_threshold_rule;

typedef struct {
  double edge_sparsity; /* requested edge sparsity in [0, 1]; < 0: the masks' own (default) */
  double node_sparsity; /* requested node sparsity in [0, 1]; < 0: the masks' own (default) */
  int prune_dangling;   /* 1: also drop edges into nodes without a kept path to resid_post */
  ep_threshold_rule rule;
} ep_extract_options;

typedef struct {
  /* Edges in graph order. */
  int64_t n_edges;
  char **edge_writer;    /* [n_edges] writer names ("a3.h7", "m2", "tok_embeds") */
  char **edge_reader;    /* [n_edges] reader names ("a5.h1.q", "m2", "resid_post") */
  float *edge_log_alpha; /* [n_edges] trained log_alpha */
  float *edge_value;     /* [n_edges] deterministic mask after per-group zeroing */
  uint8_t *edge_kept;    /* [n_edges] 1: the edge is in the circuit */
  /* Nodes: the writers in graph order. */
  int n_nodes;
  char **node_name;      /* [n_nodes] */
  int node_masks;        /* 1: nodes were masked (node_log_alpha/node_value present) */
  float *node_log_alpha; /* [n_nodes] or NULL */
  float *node_value;     /* [n_nodes] or NULL */
  uint8_t *node_kept;    /* [n_nodes] 1: the node is in the circuit */
  /* Graph and model. */
  int embedding_nodes;
  int n_layer, n_head;
  char *model; /* one-line model summary (malloc'd, never NULL after extract/read) */
  char *deck;  /* resolved input deck text (malloc'd, never NULL after extract/read) */
  /* How the circuit was found: NULL or "edge-pruning" (trained masks), or a baseline of
   * baselines.h ("eap", "eap-ig": edges/log_alpha holds the signed score and edges/value
   * its absolute value; "acdc": both hold the 0/1 kept flag). malloc'd or NULL. */
  char *method;
  /* Result of the extraction. */
  int64_t n_kept_edges;
  int n_kept_nodes;
  double edge_sparsity, node_sparsity;                     /* achieved: 1 - kept / n */
  double requested_edge_sparsity, requested_node_sparsity; /* what the thresholds aimed at */
  double expected_edge_sparsity, expected_node_sparsity;   /* mean P(z = 0) of the masks */
  double edge_threshold, node_threshold;                   /* kept = value > threshold */
  int prune_dangling;
  /* Metrics of the full model and of the circuit (NAN where not measured). */
  int n_metrics;
  char **metric_name;     /* [n_metrics] */
  double *metric_full;    /* [n_metrics] */
  double *metric_circuit; /* [n_metrics] */
} ep_circuit;

/* ---- extraction (src/prune/extract.c) ---------------------------------------- */

void extract_options_default(ep_extract_options *o);

/* Deterministic masks of every edge after per-group zeroing: value[n_edges] from
 * log_alpha[n_edges]. Returns the deterministic sparsity 1 - mean(value). */
double extract_edge_values(const ep_graph *g, const float *log_alpha, float *value);
/* The same for node masks: value[n_writers] from log_alpha[n_writers]. */
double extract_node_values(const ep_graph *g, const float *log_alpha, float *value);

/* Sparsity 1 - #{value > threshold} / n (compared in float32, as the reference). */
double extract_sparsity_at(const float *value, int64_t n, double threshold);
/* The reference's threshold search: bisection on [0, 1] until the bracket is narrower
 * than 1e-5 (sparsity > target moves the upper end), returning the last midpoint. */
double extract_threshold(const float *value, int64_t n, double target);
/* The count rule: the threshold keeping the k = round((1 - target) * n) largest values
 * (fewer only when values tie across the boundary); -1 keeps everything. */
double extract_threshold_count(const float *value, int64_t n, double target);
/* The threshold of a rule. */
double extract_threshold_rule(ep_threshold_rule rule, const float *value, int64_t n, double target);

/* The circuit of trained masks. edge_log_alpha[g->n_edges]; node_log_alpha[g->n_writers]
 * or NULL when no node masks were trained (every node kept). opt may be NULL
 * (defaults). Names, values and sparsities are filled in; model and deck are "" until
 * circuit_set_text. Free with circuit_free. */
void extract_circuit(const ep_graph *g, const float *edge_log_alpha, const float *node_log_alpha,
                     const ep_extract_options *opt, ep_circuit *c);

/* Store the model summary and the resolved deck (copied; NULL means ""). */
void circuit_set_text(ep_circuit *c, const char *model_summary, const char *deck);
/* One-line model summary, e.g. "gpt2 n_layer=12 n_head=12 d_model=768 ...". */
void circuit_model_summary(const ep_model_config *cfg, char *buf, size_t size);
/* Replace the metrics: n names with the full model's and the circuit's values (either
 * array may be NULL; NAN means not measured). Copied. */
void circuit_set_metrics(ep_circuit *c, int n, const char *const *names, const double *full,
                         const double *circuit);
/* Binary masks of a circuit on a model's graph: edge_kept[g->n_edges] and
 * node_kept[g->n_writers] (either may be NULL). Fatal, naming `file`, when the circuit
 * was made on a different graph. */
void circuit_graph_masks(const ep_circuit *c, const ep_graph *g, const char *file, uint8_t *edge_kept,
                         uint8_t *node_kept);
/* The graph a circuit was made on, rebuilt from its layer/head counts and node names
 * (layers without attention or MLP included). Fatal, naming `file`, when the names do
 * not form such a graph. Free with graph_free. */
void circuit_graph(const ep_circuit *c, const char *file, ep_graph *g);
/* A new circuit from the masks stored in `in` with other options (e.g. another
 * requested sparsity): same graph, log_alphas, model and deck; no metrics. Fatal for a
 * baseline circuit (method other than edge-pruning): it stores scores, not masks. */
void circuit_reextract(const ep_circuit *in, const char *file, const ep_extract_options *opt,
                       ep_circuit *out);
/* Human-readable summary: counts, sparsities, thresholds, model, metrics. */
void circuit_print_summary(const ep_circuit *c, const char *path, FILE *f);
void circuit_free(ep_circuit *c);

/* ---- the circuit file (src/io/circuit_file.c) ----------------------------------
 * HDF5 layout:
 *   /edges/writer, /edges/reader   [n_edges] strings
 *   /edges/log_alpha, /edges/value [n_edges] float32
 *   /edges/kept                    [n_edges] uint8
 *   /nodes/name                    [n_nodes] strings
 *   /nodes/log_alpha, /nodes/value [n_nodes] float32 (only with node masks)
 *   /nodes/kept                    [n_nodes] uint8
 *   /metrics/full, /metrics/circuit  groups, one float64 attribute per metric
 *   root attributes: format, format_version, n_edges, n_kept, n_nodes, n_kept_nodes,
 *     edge_sparsity, node_sparsity, requested_edge_sparsity, requested_node_sparsity,
 *     expected_edge_sparsity, expected_node_sparsity, edge_threshold, node_threshold,
 *     embedding_nodes, node_masks, prune_dangling, n_layer, n_head, model, deck,
 *     edgeprune_version, method ("edge-pruning" when the circuit has none; files
 *     without the attribute read as "edge-pruning").
 * Written serially by one rank (rank 0), atomically (temporary file + rename). */
void circuit_write(const ep_circuit *c, const char *path);
/* Read and validate a circuit file; fatal with the file name when it is not one. */
void circuit_read(ep_circuit *c, const char *path);
/* Replace the metrics stored in an existing circuit file (atomically rewritten). */
void circuit_update_metrics(const char *path, int n, const char *const *names, const double *full,
                            const double *circuit);

/* ---- exports (src/io/circuit_export.c) ----------------------------------------- */

/* The reference's edges.json: a JSON list of [writer, reader] pairs of kept edges, in
 * the reference's order (per layer: attention readers by writer, q/k/v, head; then the
 * MLP reader; resid_post last). */
void circuit_export_json(const ep_circuit *c, FILE *f);
/* A readable list of the kept edges, one "writer -> reader" a line, in the same order. */
void circuit_export_edges(const ep_circuit *c, FILE *f);
/* Graphviz DOT of the kept edges: an edge goes from its writer to its reader's node
 * (a3.h7.q -> node a3.h7), coloured by q/k/v; nodes grouped per layer. */
void circuit_export_dot(const ep_circuit *c, FILE *f);
/* 1 when SVG export is available (built with Graphviz's libgvc). */
int circuit_svg_available(void);
/* SVG laid out by Graphviz "dot"; fatal when circuit_svg_available() is 0. */
void circuit_export_svg(const ep_circuit *c, FILE *f);
