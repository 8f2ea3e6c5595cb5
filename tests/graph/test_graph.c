/* test_graph.c — graph counts and layout against hand-computed values. */
#include <string.h>

#include "edgeprune/graph.h"
#include "test_util.h"

/* Edges by direct enumeration of the rules in DESIGN section 1 (independent of the
 * prefix formulation graph.c uses). */
static long long brute_edges(int L, int H, int emb) {
  long long e = 0;
  for (int l = 0; l < L; l++) {
    long long before = (emb ? 2 : 0) + (long long)l * (H + 1);
    e += 3LL * H * before; /* q, k, v of every head */
    e += before + H;       /* the MLP also reads this layer's heads */
  }
  e += (emb ? 2 : 0) + (long long)L * (H + 1); /* resid_post */
  return e;
}

int main(void) {
  ep_model_config c;
  model_config_defaults(&c); /* GPT-2 small */
  int nw, nr;
  int64_t ne;
  graph_count(&c, 1, &nw, &nr, &ne);
  T_CHECK(nw == 158, "gpt2-small writers %d", nw);
  T_CHECK(nr == 445, "gpt2-small readers %d (432 q/k/v + 12 MLP + resid_post)", nr);
  T_CHECK(ne == 32936, "gpt2-small edges %lld", (long long)ne);
  graph_count(&c, 0, &nw, &nr, &ne);
  T_CHECK(nw == 156 && ne == brute_edges(12, 12, 0), "no-embedding counts %d %lld", nw, (long long)ne);

  int shapes[][2] = {{1, 1}, {2, 3}, {4, 4}, {6, 8}};
  for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
    c.n_layer = shapes[s][0];
    c.n_head = c.n_kv_head = shapes[s][1];
    for (int emb = 0; emb < 2; emb++) {
      ep_graph g;
      graph_init(&g, &c, emb);
      T_CHECK(g.n_edges == brute_edges(c.n_layer, c.n_head, emb), "edges L=%d H=%d emb=%d", c.n_layer,
              c.n_head, emb);
      /* every edge maps back to its ends */
      int ok = 1;
      for (int64_t e = 0; e < g.n_edges; e++) {
        int w, r;
        graph_edge_ends(&g, e, &w, &r);
        if (graph_edge_index(&g, w, r) != e) ok = 0;
      }
      T_CHECK(ok, "edge index round trip L=%d H=%d", c.n_layer, c.n_head);
      T_CHECK(!strcmp(g.readers[g.n_readers - 1].name, "resid_post"), "last reader name");
      T_CHECK(graph_find_reader(&g, "a0.h0.k") == 1, "a0.h0.k is reader 1");
      int m0 = graph_find_reader(&g, "m0");
      T_CHECK(m0 >= 0 && g.readers[m0].n_in == (emb ? 2 : 0) + c.n_head, "m0 reads heads of layer 0");
      T_CHECK(graph_find_writer(&g, "tok_embeds") == (emb ? 0 : -1), "tok_embeds presence");
      graph_free(&g);
    }
  }
  /* A Tracr-like layer without an MLP has neither the writer nor the reader. */
  c.n_layer = 2;
  c.n_head = c.n_kv_head = 1;
  c.has_mlp[1] = 0;
  ep_graph g;
  graph_init(&g, &c, 1);
  T_CHECK(graph_find_reader(&g, "m1") == -1 && graph_find_writer(&g, "m1") == -1, "m1 absent");
  T_CHECK(g.n_writers == 2 + 1 + 1 + 1, "writers with one MLP missing: %d", g.n_writers);
  graph_free(&g);
  return t_done();
}
