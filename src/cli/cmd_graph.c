/* cmd_graph.c — `edgeprune graph`: the computation graph's size for a model. */
#include <stdio.h>
#include <string.h>

#include "edgeprune/cli.h"
#include "edgeprune/core.h"
#include "edgeprune/graph.h"
#include "edgeprune/model.h"
#include "edgeprune/model_io.h"

static int graph_run(int argc, char **argv);

const ep_command ep_cmd_graph = {
    "graph",
    "count the writers, readers, edges and nodes of a model's graph",
    "usage: edgeprune graph --model MODEL [--embedding-nodes]\n"
    "\n"
    "Prints the model summary and the size of the computation graph Edge Pruning masks:\n"
    "writers (token/position embeddings when --embedding-nodes, every attention head,\n"
    "every MLP), readers (the q, k and v input of every head, every MLP, resid_post),\n"
    "edges (writer -> reader connections that can be pruned) and nodes (the writers,\n"
    "which carry the node masks).\n"
    "\n"
    "MODEL is anything 'edgeprune convert --from' accepts, or a model file. Only the\n"
    "config is read: a Hugging Face folder holding just config.json is enough.\n"
    "\n"
    "options:\n"
    "  --model MODEL       the model (required)\n"
    "  --embedding-nodes   make the token and position embeddings masked writers\n"
    "  -h, --help          this text\n"
    "\n"
    "Output lines (one 'name count (breakdown)' each): writers, readers, edges, nodes.\n",
    60,
    graph_run,
};

static int graph_run(int argc, char **argv) {
  const char *model = NULL, *v;
  int emb = 0;
  for (int i = 1; i < argc; i++) {
    if ((v = cli_option(argc, argv, &i, "--model")))
      model = v;
    else if (!strcmp(argv[i], "--embedding-nodes"))
      emb = 1;
    else
      return cli_usage_error(&ep_cmd_graph, "unexpected argument '%s'", argv[i]);
  }
  if (!model) return cli_usage_error(&ep_cmd_graph, "--model MODEL is required");
  ep_model_config cfg;
  model_load_config(&cfg, model);
  int nw = 0, nr = 0;
  int64_t ne = 0;
  graph_count(&cfg, emb, &nw, &nr, &ne);
  int heads = 0, mlps = 0;
  for (int l = 0; l < cfg.n_layer; l++) {
    heads += cfg.has_attn[l] ? cfg.n_head : 0;
    mlps += cfg.has_mlp[l];
  }
  if (ep_rank == 0) {
    char summary[1024];
    model_describe(&cfg, summary, sizeof summary);
    printf("%s\n", summary);
    printf("embedding nodes: %s\n", emb ? "on" : "off (embeddings feed every reader unmasked)");
    printf("writers %d (%d embeddings, %d attention heads, %d MLPs)\n", nw, emb ? 2 : 0, heads, mlps);
    printf("readers %d (%d attention q/k/v and resid_post, %d MLP)\n", nr, 3 * heads + 1, mlps);
    printf("edges %lld\n", (long long)ne);
    printf("nodes %d\n", nw);
  }
  EP_CHECK(nw == (emb ? 2 : 0) + heads + mlps && nr == 3 * heads + mlps + 1,
           "internal: graph counts disagree with the config");
  return 0;
}
