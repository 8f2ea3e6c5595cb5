/* model_io.h — where models come from: Hugging Face GPT-2 and Llama checkpoints, Tracr-compiled
 * models and edgeprune model files, behind one entry point (model_load in model.h).
 *
 * Sources model_load / model_load_config accept:
 *   DIR                         Hugging Face folder: DIR/config.json and
 *                               DIR/model.safetensors or DIR/model.safetensors.index.json
 *                               (config only: config.json alone is enough).
 *   FILE.safetensors            Tracr when FILE.config.json exists next to it, otherwise
 *                               Hugging Face with config.json in the same folder.
 *   X.safetensors.index.json    Hugging Face sharded checkpoint (config.json alongside).
 *   NAME.config.json            Tracr config (a JSON without "model_type"); weights are
 *                               NAME.safetensors. A JSON with "model_type" is a Hugging
 *                               Face config.json; its folder is the source.
 *   MODEL.h5                    edgeprune model file (model_file.h), by HDF5 signature. */
#pragma once

#include <mpi.h>
#include <stddef.h>

#include "edgeprune/model.h"

typedef enum { EP_SRC_MODEL_FILE = 0, EP_SRC_HF = 1, EP_SRC_TRACR = 2 } ep_model_source_kind;

typedef struct {
  ep_model_source_kind kind;
  char *config;  /* HF config.json or Tracr config JSON; the HDF5 path for a model file */
  char *weights; /* safetensors file or index JSON, the HDF5 path, or NULL when absent */
} ep_model_source;

/* Work out what path is. With need_weights, a source without weights is a fatal error. */
void model_source_resolve(ep_model_source *s, const char *path, int need_weights);
void model_source_free(ep_model_source *s);

/* Collective over comm: rank 0 runs model_load(path), then the config and every
 * weight are broadcast, so a large checkpoint is read from disk once per job. */
void model_load_bcast(ep_model *m, const char *path, MPI_Comm comm);

/* Only the config of any source (reads headers, never weights). */
void model_load_config(ep_model_config *cfg, const char *path);

/* Token names a model carries (Tracr): input ids -> strings and output rows -> strings.
 * in[id] is "" for ids the vocabulary map leaves unused. Both counts are 0 for models
 * without names (GPT-2, Llama: use the tokenizer). */
typedef struct {
  int n_in;
  char **in; /* [n_in] == cfg.vocab entries */
  int n_out;
  char **out; /* [n_out] == cfg.vocab_out entries */
} ep_model_tokens;

void model_load_tokens(ep_model_tokens *t, const char *path);
void model_tokens_free(ep_model_tokens *t);

/* Parameters of a config (tied unembedding counted once). */
int64_t model_param_count(const ep_model_config *cfg);
/* One-paragraph human summary of a config (arch, layers, heads, widths, vocab,
 * parameter count) into buf. */
void model_describe(const ep_model_config *cfg, char *buf, size_t size);

/* ---- Hugging Face (src/io/hf_config.c, src/io/hf_load.c) ------------------------ */

/* Parse a config.json text; `path` names the file in errors. model_type selects the
 * architecture ("gpt2" or "llama"). */
void hf_config_parse(ep_model_config *cfg, const char *json, size_t len, const char *path);
void hf_config_read(ep_model_config *cfg, const char *path);
/* Fill an allocated m (m->cfg from hf_config_*) from a safetensors file or index. */
void hf_load_weights(ep_model *m, const char *weights);

/* ---- Tracr (src/io/tracr.c) ------------------------------------------------------ */

/* Config (and, when tok != NULL, token names) from a Tracr config JSON and its
 * safetensors file; widths come from the tensor shapes. */
void tracr_load_config(ep_model_config *cfg, ep_model_tokens *tok, const char *config_path,
                       const char *weights);
/* Fill an allocated m (m->cfg from tracr_load_config). */
void tracr_load_weights(ep_model *m, const char *weights);
