/* model.h — one internal description of a transformer: GPT-2, Llama and Tracr.
 *
 * All weights live in one float allocation (ep_model.mem); the struct holds pointers
 * into it. Matrices are stored in the "x @ W" orientation (GPT-2's Conv1D layout):
 * a projection from width A to width B is [A, B] row-major, so y[t, :] = x[t, :] @ W.
 * Tensors a model does not have (biases of Llama, norms of Tracr, positional table
 * of a RoPE model) are NULL. */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef enum { EP_NORM_NONE = 0, EP_NORM_LAYERNORM = 1, EP_NORM_RMSNORM = 2 } ep_norm_kind;
typedef enum { EP_ACT_GELU_TANH = 0, EP_ACT_RELU = 1, EP_ACT_SILU_GLU = 2 } ep_act_kind;
typedef enum { EP_POS_LEARNED = 0, EP_POS_ROPE = 1, EP_POS_NONE = 2 } ep_pos_kind;
/* What the output head produces: logits over an output vocabulary, or (Tracr numeric
 * programs) one number per position read from the residual stream. Both are a
 * [V_out, D] unembedding matrix; a numeric head is a one-hot row. */
typedef enum { EP_OUTPUT_LOGITS = 0, EP_OUTPUT_NUMERIC = 1 } ep_output_kind;

#define EP_ARCH_MAX 32

typedef struct {
  char arch[EP_ARCH_MAX]; /* "gpt2", "llama", "tracr" */
  int n_layer;            /* L */
  int n_head;             /* H: query heads per layer */
  int n_kv_head;          /* Hkv: key/value heads (== H unless grouped-query) */
  int d_model;            /* D: residual width */
  int d_head;             /* dh: per-head query/key/value width */
  int d_mlp;              /* F: MLP hidden width */
  int vocab;              /* V: input vocabulary (token embedding rows) */
  int vocab_out;          /* V_out: output head rows (== V for language models) */
  int n_ctx;              /* maximum sequence length (positional table rows) */
  ep_norm_kind norm;
  float norm_eps;
  ep_act_kind act;
  ep_pos_kind pos;
  float rope_theta;
  int causal;           /* 1: causal attention mask; 0: bidirectional (some Tracr models) */
  int tied_unembed;     /* 1: unembed is the token embedding matrix */
  int attn_bias;        /* 1: q/k/v/o biases present */
  int mlp_bias;         /* 1: MLP biases present */
  int final_norm;       /* 1: a final norm before the head */
  int bos_token;        /* -1 when the model has no BOS convention */
  int pad_token;        /* -1 when none */
  ep_output_kind output;
  /* Per-layer presence of the attention and MLP sub-blocks (1/0). Tracr can compile
   * layers without one of them. Fixed-size so the config stays a plain value. */
#define EP_MAX_LAYERS 256
  uint8_t has_attn[EP_MAX_LAYERS];
  uint8_t has_mlp[EP_MAX_LAYERS];
} ep_model_config;

typedef struct {
  float *ln1_w, *ln1_b; /* [D], [D] (b NULL for RMSNorm) */
  float *w_q, *b_q;     /* [D, H*dh], [H*dh] */
  float *w_k, *b_k;     /* [D, Hkv*dh], [Hkv*dh] */
  float *w_v, *b_v;     /* [D, Hkv*dh], [Hkv*dh] */
  float *w_o, *b_o;     /* [H*dh, D], [D] */
  float *ln2_w, *ln2_b; /* [D], [D] */
  float *w_fc, *b_fc;   /* [D, F], [F]   (Llama: up projection) */
  float *w_gate;        /* [D, F]        (Llama only: gate projection, SiLU) */
  float *w_proj, *b_proj; /* [F, D], [D] (Llama: down projection) */
} ep_layer_weights;

typedef struct {
  ep_model_config cfg;
  float *wte;               /* [V, D] token embeddings */
  float *wpe;               /* [n_ctx, D] learned positions, or NULL */
  ep_layer_weights *layers; /* [L] */
  float *lnf_w, *lnf_b;     /* [D], [D] final norm, or NULL */
  float *unembed;           /* [V_out, D]; == wte when tied */
  float *mem;               /* the one allocation behind every pointer above */
  size_t n_floats;
} ep_model;

/* One tensor of a model, as the model file and the converters name it. */
typedef struct {
  const char *name; /* e.g. "wte", "h.3.w_q" */
  float **slot;     /* where its pointer lives in the ep_model */
  int ndim;
  int64_t shape[2];
} ep_tensor_ref;

/* Fill defaults for a config (GPT-2 style), then the caller sets what differs. */
void model_config_defaults(ep_model_config *cfg);
/* Check a config for consistency; returns NULL when fine or a static message. */
const char *model_config_validate(const ep_model_config *cfg);

/* The list of tensors this config needs, in file order; *n gets the count. The
 * returned array is owned by the caller (free) and points into m. Shapes come from the
 * config. Used by the allocator, converters and the model file. */
ep_tensor_ref *model_tensor_list(ep_model *m, int *n);

/* Allocate every tensor for m->cfg (zeroed) and set the pointers. */
void model_alloc(ep_model *m, const ep_model_config *cfg);
void model_free(ep_model *m);

/* Random initialisation for tests: N(0, std) weights, norm gains 1 and biases
 * N(0, std), deterministic in seed. */
void model_init_random(ep_model *m, uint64_t seed, float std);

/* Load a model from an HDF5 model file or a Hugging Face directory (config.json +
 * safetensors). Fatal error naming the file and tensor on any problem. */
void model_load(ep_model *m, const char *path);
