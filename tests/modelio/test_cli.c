/* test_cli.c — `edgeprune convert` and `edgeprune graph` as a user runs them: bad inputs
 * fail with a message naming the file and the tensor/key and leave no output; good
 * inputs convert to a model file that loads bit-identically; graph counts.
 * usage: test_cli EDGEPRUNE_BINARY INPUTS_DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include "edgeprune/model.h"
#include "edgeprune/model_io.h"
#include "fixture.h"
#include "test_util.h"

static const fx_gpt2 G = {2, 2, 16, 50, 12};
static const char *bin, *root;
static char out[65536];

/* Run `edgeprune ARGS` with stderr folded into out; returns the exit status. */
static int run(const char *args) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", bin, args);
  return t_run_capture(cmd, out, sizeof out);
}

/* A fresh GPT-2 folder root/name with config.json and model.safetensors (damaged as
 * told); returns its path in dir. */
static void make_gpt2(char *dir, size_t n, const char *name, const fx_damage *dmg, const char *cfg_extra,
                      const char *cfg_drop) {
  snprintf(dir, n, "%s/%s", root, name);
  fx_mkdir(dir);
  fx_set s;
  fx_gpt2_tensors(&s, &G, 99, "", 0, 0);
  char p[700];
  snprintf(p, sizeof p, "%s/model.safetensors", dir);
  fx_write_safetensors(p, &s, "F32", dmg, NULL, NULL);
  snprintf(p, sizeof p, "%s/config.json", dir);
  fx_write_gpt2_config(p, &G, cfg_extra, cfg_drop);
  fx_set_free(&s);
}

/* convert must fail, mention every needle, and leave neither output nor temporary. */
static void expect_failure(const char *what, const char *dir, const char *const *needles) {
  char args[2048], target[800];
  snprintf(target, sizeof target, "%s/out.h5", dir);
  snprintf(args, sizeof args, "convert --from '%s' --to '%s'", dir, target);
  int rc = run(args);
  T_CHECK(rc != 0, "%s: exit status %d, expected failure", what, rc);
  for (const char *const *k = needles; *k; k++)
    T_CHECK(strstr(out, *k) != NULL, "%s: message lacks \"%s\": %s", what, *k, out);
  T_CHECK(strchr(out, '\n') == strrchr(out, '\n'), "%s: one-line message: %s", what, out);
  T_CHECK(!fx_exists(target), "%s: output file left behind", what);
  T_CHECK(fx_count_matching(dir, ".tmp.") == 0, "%s: temporary file left behind", what);
}

static void test_bad_inputs(void) {
  char dir[700];
  fx_damage d;
#define CASE(name, init, extra, drop, ...)                                                                   \
  do {                                                                                                       \
    memset(&d, 0, sizeof d);                                                                                 \
    init;                                                                                                    \
    make_gpt2(dir, sizeof dir, name, &d, extra, drop);                                                       \
    const char *needles[] = {__VA_ARGS__, NULL};                                                             \
    expect_failure(name, dir, needles);                                                                      \
  } while (0)
  CASE("truncated", d.truncate_to = 5, NULL, NULL, "model.safetensors", "truncated");
  CASE("truncated_data", d.truncate_to = -10, NULL, NULL, "model.safetensors", "ln_f.bias", "out of bounds");
  CASE("header_beyond_file", d.header_len = 1u << 30, NULL, NULL, "model.safetensors", "header length");
  CASE("offsets_oob", d.oob_of = "h.1.mlp.c_fc.weight", NULL, NULL, "model.safetensors",
       "'h.1.mlp.c_fc.weight'", "out of bounds");
  CASE("offsets_span", d.span_of = "wpe.weight", NULL, NULL, "model.safetensors", "'wpe.weight'");
  CASE("wrong_shape", d.shape_of = "h.0.mlp.c_fc.weight", NULL, NULL, "model.safetensors",
       "'h.0.mlp.c_fc.weight'", "[16, 65]", "[16, 64]");
  CASE("missing_tensor", d.skip = "h.1.ln_2.bias", NULL, NULL, "model.safetensors", "'h.1.ln_2.bias'",
       "missing");
  CASE("unknown_dtype", (d.dtype_of = "h.0.attn.c_proj.bias", d.dtype = "Q7"), NULL, NULL,
       "model.safetensors", "'h.0.attn.c_proj.bias'", "Q7");
  CASE("integer_dtype", (d.dtype_of = "wte.weight", d.dtype = "I32"), NULL, NULL, "model.safetensors",
       "'wte.weight'", "I32");
  CASE("missing_key", (void)0, NULL, "n_head", "config.json", "'n_head'");
  CASE("wrong_activation", (void)0, "\"activation_function\": \"relu\"", "activation_function", "config.json",
       "'activation_function'", "relu");
  CASE("wrong_type", (void)0, "\"n_layer\": \"2\"", "n_layer", "config.json", "'n_layer'");
  CASE("not_divisible", (void)0, "\"n_head\": 3", "n_head", "config.json", "'n_embd'", "'n_head'");
#undef CASE

  /* Malformed config.json: the JSON itself is broken (line named). */
  make_gpt2(dir, sizeof dir, "malformed_config", NULL, NULL, NULL);
  char p[800];
  snprintf(p, sizeof p, "%s/config.json", dir);
  fx_write_text(p, "{\n  \"model_type\": \"gpt2\",\n  \"n_layer\": 2,\n  \"n_head\" 2\n}\n");
  const char *n1[] = {"config.json:4", "malformed", NULL};
  expect_failure("malformed_config", dir, n1);

  /* A folder with config.json but no weights. */
  snprintf(dir, sizeof dir, "%s/no_weights", root);
  fx_mkdir(dir);
  snprintf(p, sizeof p, "%s/config.json", dir);
  fx_write_gpt2_config(p, &G, NULL, NULL);
  const char *n2[] = {"no_weights", "no weights", NULL};
  expect_failure("no_weights", dir, n2);

  /* A shard index promising a tensor its shard lacks. */
  make_gpt2(dir, sizeof dir, "bad_index", NULL, NULL, NULL);
  snprintf(p, sizeof p, "%s/model.safetensors", dir);
  char q[800];
  snprintf(q, sizeof q, "%s/model-00001-of-00001.safetensors", dir);
  T_CHECK(rename(p, q) == 0, "rename shard");
  snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
  fx_write_text(p, "{\"weight_map\": {\"wte.weight\": \"model-00001-of-00001.safetensors\", "
                   "\"h.7.ln_1.weight\": \"model-00001-of-00001.safetensors\"}}");
  const char *n3[] = {"model.safetensors.index.json", "'h.7.ln_1.weight'", NULL};
  expect_failure("bad_index", dir, n3);

  /* A Tracr config with LayerNorm (unsupported) and one missing a key. */
  const char *tracr_cfgs[2][2] = {
      {"{\"num_heads\": 1, \"num_layers\": 1, \"mlp_hidden_size\": 1, \"layer_norm\": true, \"causal\": "
       "false, "
       "\"max_seq_len\": 5, \"bos\": \"BOS\", \"pad\": \"pad\", \"vocab\": {\"BOS\": 0, \"pad\": 1}}",
       "'layer_norm'"},
      {"{\"num_layers\": 1, \"mlp_hidden_size\": 1, \"layer_norm\": false, \"causal\": false, "
       "\"max_seq_len\": 5, \"bos\": \"BOS\", \"pad\": \"pad\", \"vocab\": {\"BOS\": 0, \"pad\": 1}}",
       "'num_heads'"},
  };
  for (int i = 0; i < 2; i++) {
    snprintf(dir, sizeof dir, "%s/tracr_bad%d", root, i);
    fx_mkdir(dir);
    snprintf(p, sizeof p, "%s/m.config.json", dir);
    fx_write_text(p, tracr_cfgs[i][0]);
    fx_set s;
    memset(&s, 0, sizeof s);
    snprintf(q, sizeof q, "%s/m.safetensors", dir);
    fx_write_safetensors(q, &s, "F32", NULL, NULL, NULL);
    char args[2048];
    snprintf(args, sizeof args, "convert --from '%s' --to '%s/out.h5'", p, dir);
    int rc = run(args);
    T_CHECK(rc != 0 && strstr(out, "m.config.json") && strstr(out, tracr_cfgs[i][1]),
            "tracr bad config %d: rc %d: %s", i, rc, out);
    T_CHECK(fx_count_matching(dir, "out.h5") == 0, "tracr bad config %d left output", i);
  }

  /* Synthetic Tracr models with a value width other than the key width, and with a
   * tensor beyond num_layers. */
  const char *tracr_needles[3] = {NULL, "'transformer/layer_0/attn/value_w'", "transformer/layer_2/"};
  for (int v = 1; v <= 2; v++) {
    snprintf(dir, sizeof dir, "%s/tracr_variant%d", root, v);
    fx_mkdir(dir);
    fx_set s;
    fx_write_tracr(&s, dir, "m", v);
    fx_set_free(&s);
    char args[2048];
    snprintf(args, sizeof args, "convert --from '%s/m.safetensors' --to '%s/out.h5'", dir, dir);
    int rc = run(args);
    T_CHECK(rc != 0 && strstr(out, "m.safetensors") && strstr(out, tracr_needles[v]),
            "tracr variant %d: rc %d: %s", v, rc, out);
    T_CHECK(fx_count_matching(dir, "out.h5") == 0, "tracr variant %d left output", v);
  }

  /* Llama configs: an unsupported activation, RoPE scaling, a missing size. */
  const char *llama_bad[3][3] = {
      {"\"hidden_act\": \"gelu\"", "'hidden_act'", "hidden_act"},
      {"\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0}", "'rope_scaling'", NULL},
      {"\"num_hidden_layers\": null", "'num_hidden_layers'", "num_hidden_layers"}};
  for (int i = 0; i < 3; i++) {
    snprintf(dir, sizeof dir, "%s/llama_bad%d", root, i);
    fx_mkdir(dir);
    fx_llama lg = {1, 2, 1, 8, 12, 20};
    fx_set s;
    fx_write_llama(&s, dir, &lg, llama_bad[i][0], llama_bad[i][2]);
    fx_set_free(&s);
    const char *needles[] = {"config.json", llama_bad[i][1], NULL};
    expect_failure(llama_bad[i][1], dir, needles);
  }

  T_CHECK(run("convert --from x") == 2 && strstr(out, "--to"), "missing --to is a usage error: %s", out);
  T_CHECK(run("convert --help") == 0 && strstr(out, "--from SOURCE") && strstr(out, "index.json"),
          "convert --help");
}

static int same_model(const ep_model *a, const ep_model *b) {
  return !memcmp(&a->cfg, &b->cfg, sizeof a->cfg) && a->n_floats == b->n_floats &&
         !memcmp(a->mem, b->mem, a->n_floats * sizeof(float));
}

static void test_convert_gpt2(void) {
  char dir[700], p[800], args[2048];
  snprintf(dir, sizeof dir, "%s/good_bf16", root);
  fx_mkdir(dir);
  fx_set s;
  fx_gpt2_tensors(&s, &G, 4242, "transformer.", 1, 1);
  snprintf(p, sizeof p, "%s/model.safetensors", dir);
  fx_write_safetensors(p, &s, "BF16", NULL, NULL, NULL);
  snprintf(p, sizeof p, "%s/config.json", dir);
  fx_write_gpt2_config(p, &G, NULL, NULL);
  fx_set_free(&s);
  snprintf(p, sizeof p, "%s/model.h5", root);
  snprintf(args, sizeof args, "convert --from '%s' --to '%s'", dir, p);
  int rc = run(args);
  T_CHECK(rc == 0, "convert good GPT-2: rc %d: %s", rc, out);
  /* 2 layers x (4*16 + 16*48+48 + 16*16+16 + 16*64+64 + 64*16+16) + 50*16 + 12*16 + 2*16 = 7584 */
  T_CHECK(strstr(out, "gpt2 model: 2 layers") && strstr(out, "7,584 parameters"), "convert summary: %s", out);
  ep_model a, b;
  model_load(&a, dir);
  model_load(&b, p);
  T_CHECK(same_model(&a, &b), "converted file loads bit-identical to the safetensors source");
  model_free(&a);
  model_free(&b);
  /* A damaged model file: each fails naming the file and the missing piece. */
  const char *damage[3][2] = {{"h.1.w_fc", "dataset 'h.1.w_fc' is missing"},
                              {"@n_head", "attribute 'n_head' is missing"},
                              {"@format", "not an edgeprune model file"}};
  for (int i = 0; i < 3; i++) {
    char bad[800], cmd[2048];
    snprintf(bad, sizeof bad, "%s/damaged%d.h5", root, i);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", p, bad);
    T_CHECK(system(cmd) == 0, "copy model file");
    hid_t f = H5Fopen(bad, H5F_ACC_RDWR, H5P_DEFAULT);
    herr_t e =
        damage[i][0][0] == '@' ? H5Adelete(f, damage[i][0] + 1) : H5Ldelete(f, damage[i][0], H5P_DEFAULT);
    T_CHECK(f >= 0 && e >= 0 && H5Fclose(f) >= 0, "damage %s", damage[i][0]);
    snprintf(args, sizeof args, "convert --from '%s' --to '%s/never.h5'", bad, root);
    rc = run(args);
    T_CHECK(rc != 0 && strstr(out, bad) && strstr(out, damage[i][1]), "damaged model file %d: rc %d: %s", i,
            rc, out);
    T_CHECK(fx_count_matching(root, "never.h5") == 0, "damaged model file %d: no output", i);
  }
  /* A truncated model file. */
  char cut[800];
  snprintf(cut, sizeof cut, "%s/truncated.h5", root);
  size_t len = 0;
  unsigned char *bytes = fx_slurp(p, &len);
  FILE *tf = fopen(cut, "wb");
  T_CHECK(bytes && tf && fwrite(bytes, 1, len / 2, tf) == len / 2, "write truncated copy");
  if (tf) fclose(tf);
  free(bytes);
  snprintf(args, sizeof args, "graph --model '%s'", cut);
  rc = run(args);
  T_CHECK(rc != 0 && strstr(out, cut), "truncated model file: rc %d: %s", rc, out);
  snprintf(args, sizeof args, "convert --from '%s' --to '%s/never.h5'", cut, root);
  T_CHECK(run(args) != 0 && fx_count_matching(root, "never.h5") == 0,
          "truncated model file: convert fails: %s", out);

  /* Tied embeddings with an lm_head.weight that differs: converted, with a warning. */
  snprintf(dir, sizeof dir, "%s/tied_differs", root);
  fx_mkdir(dir);
  fx_gpt2_tensors(&s, &G, 31, "transformer.", 1, 0);
  char q[800];
  snprintf(q, sizeof q, "%s/model.safetensors", dir);
  fx_write_safetensors(q, &s, "F32", NULL, NULL, NULL);
  fx_set_free(&s);
  snprintf(q, sizeof q, "%s/config.json", dir);
  fx_write_gpt2_config(q, &G, NULL, NULL);
  snprintf(args, sizeof args, "convert --from '%s' --to '%s/tied.h5'", dir, dir);
  rc = run(args);
  T_CHECK(rc == 0 && strstr(out, "warning") && strstr(out, "'lm_head.weight' differs"),
          "tied lm_head differs: %s", out);

  /* graph reads the converted file too */
  snprintf(args, sizeof args, "graph --model '%s'", p);
  T_CHECK(run(args) == 0 && strstr(out, "writers 6 (0 embeddings, 4 attention heads, 2 MLPs)"),
          "graph on model file: %s", out);
}

/* Edges by enumerating the rules of the design directly. */
static long long brute_edges(int L, int H, int emb) {
  long long e = 0;
  for (int l = 0; l < L; l++) {
    long long before = (emb ? 2 : 0) + (long long)l * (H + 1);
    e += 3LL * H * before + before + H;
  }
  return e + (emb ? 2 : 0) + (long long)L * (H + 1);
}

static void test_graph(void) {
  char dir[700], p[800], args[2048], want[128];
  snprintf(dir, sizeof dir, "%s/gpt2_small_config_only", root);
  fx_mkdir(dir);
  snprintf(p, sizeof p, "%s/config.json", dir);
  fx_gpt2 small = {12, 12, 768, 50257, 1024};
  fx_write_gpt2_config(p, &small, NULL, NULL);
  snprintf(args, sizeof args, "graph --model '%s' --embedding-nodes", dir);
  int rc = run(args);
  T_CHECK(rc == 0, "graph config-only: rc %d: %s", rc, out);
  T_CHECK(strstr(out, "\nwriters 158 (2 embeddings, 144 attention heads, 12 MLPs)\n") != NULL, "writers: %s",
          out);
  T_CHECK(strstr(out, "\nreaders 445 (433 attention q/k/v and resid_post, 12 MLP)\n") != NULL, "readers: %s",
          out);
  T_CHECK(strstr(out, "\nedges 32936\n") != NULL && brute_edges(12, 12, 1) == 32936, "edges: %s", out);
  T_CHECK(strstr(out, "\nnodes 158\n") != NULL, "nodes: %s", out);
  T_CHECK(strstr(out, "124,439,808 parameters") != NULL, "summary: %s", out);
  snprintf(args, sizeof args, "graph --model '%s'", dir);
  T_CHECK(run(args) == 0, "graph without embedding nodes");
  snprintf(want, sizeof want, "\nedges %lld\n", brute_edges(12, 12, 0));
  T_CHECK(strstr(out, want) && strstr(out, "\nwriters 156 "), "no embedding nodes: want%s in %s", want, out);
  T_CHECK(run("graph --model /nonexistent/model") != 0 && strstr(out, "/nonexistent/model"),
          "graph on a missing model");
}

static void test_tracr(const char *inputs) {
  char args[2048], a[800], b[800], x[800];
  snprintf(a, sizeof a, "%s/reverse_a.h5", root);
  snprintf(b, sizeof b, "%s/reverse_b.h5", root);
  snprintf(x, sizeof x, "%s/xproportion.h5", root);
  snprintf(args, sizeof args, "convert --from '%s/tracr/reverse.safetensors' --to '%s'", inputs, a);
  T_CHECK(run(args) == 0 && strstr(out, "tracr model: 4 layers"), "convert reverse: %s", out);
  snprintf(args, sizeof args, "convert --from '%s/tracr/reverse.safetensors' --to '%s'", inputs, b);
  T_CHECK(run(args) == 0, "convert reverse again: %s", out);
  snprintf(args, sizeof args, "convert --from '%s/tracr/xproportion.config.json' --to '%s'", inputs, x);
  T_CHECK(run(args) == 0 && strstr(out, "numeric readout"), "convert xproportion: %s", out);
  size_t na = 0, nb = 0;
  unsigned char *da = fx_slurp(a, &na), *db = fx_slurp(b, &nb);
  T_CHECK(da && db && na == nb && na > 0 && !memcmp(da, db, na),
          "converting reverse twice gives identical files");
  free(da);
  free(db);

  ep_model m;
  model_load(&m, a);
  int64_t shapes_ok = m.cfg.d_model == 41 && m.cfg.n_layer == 4 && m.cfg.vocab == 5 && m.cfg.vocab_out == 3 &&
                      m.cfg.n_ctx == 6 && m.cfg.d_head == 12 && m.cfg.d_mlp == 30;
  T_CHECK(shapes_ok, "reverse model file shapes");
  T_CHECK(model_param_count(&m.cfg) == (int64_t)m.n_floats &&
              m.n_floats ==
                  5 * 41 + 6 * 41 + 4 * (4 * 41 * 12 + 3 * 12 + 41 + 41 * 30 + 30 + 30 * 41 + 41) + 3 * 41,
          "reverse parameter count %zu", m.n_floats);
  model_free(&m);
  model_load(&m, x);
  T_CHECK(m.cfg.d_model == 14 && m.cfg.n_layer == 2 && m.cfg.vocab == 6 && m.cfg.vocab_out == 1 &&
              m.cfg.d_mlp == 1 && m.cfg.output == EP_OUTPUT_NUMERIC,
          "xproportion model file shapes");
  model_free(&m);
  snprintf(args, sizeof args, "graph --model '%s' --embedding-nodes", x);
  char want[64];
  snprintf(want, sizeof want, "\nedges %lld\n", brute_edges(2, 1, 1));
  T_CHECK(run(args) == 0 && strstr(out, want) && strstr(out, "\nwriters 6 "), "graph xproportion: %s", out);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: test_cli EDGEPRUNE_BINARY INPUTS_DIR\n");
    return 2;
  }
  bin = argv[1];
  char *tmp = fx_tmpdir();
  root = tmp;
  test_bad_inputs();
  test_convert_gpt2();
  test_graph();
  test_tracr(argv[2]);
  if (getenv("KEEP"))
    printf("kept %s\n", tmp);
  else if (!t_failed)
    fx_rmdir(tmp);
  free(tmp);
  return t_done();
}
