/* hf_config.c — Hugging Face config.json -> ep_model_config (GPT-2 and Llama).
 *
 * Structural keys (layers, heads, widths, vocabulary, context) are required: a silent
 * default there would build the wrong model. Keys Hugging Face itself defaults and
 * that rarely appear changed (GPT-2: n_inner, layer_norm_epsilon, activation_function,
 * tie_word_embeddings; Llama: num_key_value_heads, head_dim, rms_norm_eps, rope_theta,
 * hidden_act, attention_bias, tie_word_embeddings) take Hugging Face's defaults when
 * absent or null. model_type
 * picks the architecture; a new family is a new parse_<type> in hf_families. */
#include <stdlib.h>
#include <string.h>

#include "edgeprune/core.h"
#include "edgeprune/model_io.h"
#include "io/json_keys.h"

static void parse_gpt2(ep_model_config *cfg, const cJSON *root, const char *path) {
  model_config_defaults(cfg);
  strcpy(cfg->arch, "gpt2");
  cfg->n_layer = jk_req_int(root, "n_layer", 1, path);
  cfg->n_head = jk_req_int(root, "n_head", 1, path);
  cfg->n_kv_head = cfg->n_head;
  cfg->d_model = jk_req_int(root, "n_embd", 1, path);
  cfg->vocab = cfg->vocab_out = jk_req_int(root, "vocab_size", 1, path);
  if (jk_get(root, "n_positions"))
    cfg->n_ctx = jk_req_int(root, "n_positions", 1, path);
  else if (jk_get(root, "n_ctx"))
    cfg->n_ctx = jk_req_int(root, "n_ctx", 1, path);
  else
    ep_fatal("%s: key 'n_positions' is missing (expected an integer >= 1; 'n_ctx' is accepted too)", path);
  if (cfg->n_layer > EP_MAX_LAYERS)
    ep_fatal("%s: key 'n_layer' is %d; at most %d layers are supported", path, cfg->n_layer, EP_MAX_LAYERS);
  if (cfg->d_model % cfg->n_head)
    ep_fatal("%s: key 'n_embd' (%d) is not a multiple of key 'n_head' (%d)", path, cfg->d_model, cfg->n_head);
  cfg->d_head = cfg->d_model / cfg->n_head;
  cfg->d_mlp = jk_opt_int(root, "n_inner", 1, 4 * cfg->d_model, path);
  double eps = jk_opt_num(root, "layer_norm_epsilon", 1e-5, path);
  if (!(eps > 0) || eps > 1) ep_fatal("%s: key 'layer_norm_epsilon' should be in (0, 1]", path);
  cfg->norm_eps = (float)eps;
  const char *act = jk_opt_str(root, "activation_function", "gelu_new", path);
  if (strcmp(act, "gelu_new") != 0 && strcmp(act, "gelu_pytorch_tanh") != 0)
    ep_fatal("%s: key 'activation_function' is \"%s\"; supported: \"gelu_new\", \"gelu_pytorch_tanh\"", path,
             act);
  cfg->act = EP_ACT_GELU_TANH;
  cfg->tied_unembed = jk_opt_bool(root, "tie_word_embeddings", 1, path);
  /* Variants that change the attention arithmetic are refused rather than ignored. */
  if (!jk_opt_bool(root, "scale_attn_weights", 1, path))
    ep_fatal("%s: key 'scale_attn_weights' is false; only scaled attention is supported", path);
  if (jk_opt_bool(root, "scale_attn_by_inverse_layer_idx", 0, path))
    ep_fatal("%s: key 'scale_attn_by_inverse_layer_idx' is true; not supported", path);
  /* GPT-2 prompts carry no BOS (its bos_token_id is the end-of-text token); tasks that
   * want one add it in the dataset. */
  cfg->bos_token = -1;
  cfg->pad_token = -1;
  const char *bad = model_config_validate(cfg);
  if (bad) ep_fatal("%s: inconsistent config: %s", path, bad);
}

/* RoPE scaling variants change the frequencies; only plain RoPE is implemented. */
static void check_rope_kind(const cJSON *obj, const char *key, const char *path) {
  const cJSON *j = jk_get(obj, key);
  if (!j) return;
  if (!cJSON_IsObject(j)) ep_fatal("%s: key '%s' should be an object or null", path, key);
  const char *kind =
      jk_get(j, "rope_type") ? jk_req_str(j, "rope_type", path) : jk_opt_str(j, "type", "default", path);
  if (strcmp(kind, "default") != 0)
    ep_fatal("%s: key '%s' asks for RoPE scaling \"%s\"; only plain RoPE (\"default\") is supported", path,
             key, kind);
}

static void parse_llama(ep_model_config *cfg, const cJSON *root, const char *path) {
  model_config_defaults(cfg);
  strcpy(cfg->arch, "llama");
  cfg->n_layer = jk_req_int(root, "num_hidden_layers", 1, path);
  cfg->n_head = jk_req_int(root, "num_attention_heads", 1, path);
  cfg->n_kv_head = jk_opt_int(root, "num_key_value_heads", 1, cfg->n_head, path);
  cfg->d_model = jk_req_int(root, "hidden_size", 1, path);
  cfg->d_mlp = jk_req_int(root, "intermediate_size", 1, path);
  cfg->vocab = cfg->vocab_out = jk_req_int(root, "vocab_size", 1, path);
  cfg->n_ctx = jk_req_int(root, "max_position_embeddings", 1, path);
  if (cfg->n_layer > EP_MAX_LAYERS)
    ep_fatal("%s: key 'num_hidden_layers' is %d; at most %d layers are supported", path, cfg->n_layer,
             EP_MAX_LAYERS);
  if (cfg->n_head % cfg->n_kv_head)
    ep_fatal("%s: key 'num_key_value_heads' (%d) does not divide key 'num_attention_heads' (%d)", path,
             cfg->n_kv_head, cfg->n_head);
  if (!jk_get(root, "head_dim") && cfg->d_model % cfg->n_head)
    ep_fatal("%s: key 'hidden_size' (%d) is not a multiple of key 'num_attention_heads' (%d)", path,
             cfg->d_model, cfg->n_head);
  cfg->d_head = jk_opt_int(root, "head_dim", 1, cfg->d_model / cfg->n_head, path);
  if (cfg->d_head % 2) ep_fatal("%s: the head width %d is odd; RoPE needs an even one", path, cfg->d_head);
  double eps = jk_opt_num(root, "rms_norm_eps", 1e-6, path);
  if (!(eps > 0) || eps > 1) ep_fatal("%s: key 'rms_norm_eps' should be in (0, 1]", path);
  cfg->norm = EP_NORM_RMSNORM;
  cfg->norm_eps = (float)eps;
  cfg->final_norm = 1;
  const char *act = jk_opt_str(root, "hidden_act", "silu", path);
  if (strcmp(act, "silu") != 0) ep_fatal("%s: key 'hidden_act' is \"%s\"; supported: \"silu\"", path, act);
  cfg->act = EP_ACT_SILU_GLU;
  cfg->pos = EP_POS_ROPE;
  /* rope_theta sits at the top level, or (newer transformers) in rope_parameters. */
  const cJSON *rp = jk_get(root, "rope_parameters");
  if (rp && !cJSON_IsObject(rp)) ep_fatal("%s: key 'rope_parameters' should be an object", path);
  double theta =
      jk_opt_num(root, "rope_theta", rp ? jk_opt_num(rp, "rope_theta", 10000.0, path) : 10000.0, path);
  if (!(theta > 1)) ep_fatal("%s: key 'rope_theta' should be > 1", path);
  cfg->rope_theta = (float)theta;
  check_rope_kind(root, "rope_scaling", path);
  check_rope_kind(root, "rope_parameters", path);
  cfg->attn_bias = jk_opt_bool(root, "attention_bias", 0, path);
  if (jk_opt_bool(root, "mlp_bias", 0, path))
    ep_fatal("%s: key 'mlp_bias' is true; gated MLPs with biases are not supported", path);
  cfg->mlp_bias = 0;
  cfg->tied_unembed = jk_opt_bool(root, "tie_word_embeddings", 0, path);
  cfg->causal = 1;
  /* Llama prompts start with BOS; the id is recorded so datasets can add it. */
  const cJSON *bos = jk_get(root, "bos_token_id"), *pad = jk_get(root, "pad_token_id");
  cfg->bos_token = cJSON_IsNumber(bos) && bos->valuedouble >= 0 && bos->valuedouble < cfg->vocab
                       ? (int)bos->valuedouble
                       : -1;
  cfg->pad_token = cJSON_IsNumber(pad) && pad->valuedouble >= 0 && pad->valuedouble < cfg->vocab
                       ? (int)pad->valuedouble
                       : -1;
  const char *bad = model_config_validate(cfg);
  if (bad) ep_fatal("%s: inconsistent config: %s", path, bad);
}

typedef struct {
  const char *model_type;
  void (*parse)(ep_model_config *, const cJSON *, const char *);
} hf_family;

static const hf_family hf_families[] = {
    {"gpt2", parse_gpt2},
    {"llama", parse_llama},
};

void hf_config_parse(ep_model_config *cfg, const char *json, size_t len, const char *path) {
  cJSON *root = jk_parse(json, len, path);
  const char *mt = jk_get(root, "model_type") ? jk_req_str(root, "model_type", path) : NULL;
  if (!mt) ep_fatal("%s: key 'model_type' is missing (expected \"gpt2\" or \"llama\")", path);
  const hf_family *fam = NULL;
  for (size_t i = 0; i < sizeof hf_families / sizeof *hf_families; i++)
    if (!strcmp(mt, hf_families[i].model_type)) fam = &hf_families[i];
  if (!fam) ep_fatal("%s: key 'model_type' is \"%s\"; supported: \"gpt2\", \"llama\"", path, mt);
  fam->parse(cfg, root, path);
  cJSON_Delete(root);
}

void hf_config_read(ep_model_config *cfg, const char *path) {
  size_t len = 0;
  char *text = ep_read_file(path, &len);
  hf_config_parse(cfg, text, len, path);
  free(text);
}
