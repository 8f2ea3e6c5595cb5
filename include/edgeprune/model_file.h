/* model_file.h — the edgeprune model file (HDF5), written by `edgeprune convert`.
 *
 * Root attributes (the whole ep_model_config, readable with h5dump / h5py):
 *   format "edgeprune-model", format_version 1, arch (string),
 *   n_layer n_head n_kv_head d_model d_head d_mlp vocab vocab_out n_ctx causal
 *   tied_unembed attn_bias mlp_bias final_norm bos_token pad_token (int64),
 *   norm_eps rope_theta (float64; float32 values, so they round-trip exactly),
 *   norm "none"|"layernorm"|"rmsnorm", act "gelu_tanh"|"relu"|"silu_glu",
 *   pos "learned"|"rope"|"none", output "logits"|"numeric" (strings),
 *   has_attn has_mlp (int32 [n_layer], 1/0),
 *   source (string: what the file was converted from),
 *   tokens (string [vocab], optional: the name of each input id, "" when unused),
 *   output_tokens (string [vocab_out], optional: the name of each output row).
 * Datasets: one float32 dataset per tensor of model_tensor_list, at the root, named
 * exactly as listed ("wte", "wpe", "h.0.w_q", ..., "lnf_w", "unembed"), with the
 * listed shape ([rows, cols] in the x @ W orientation, or [n]). No timestamps are
 * stored, so converting the same input twice gives identical files. */
#pragma once

#include "edgeprune/model.h"
#include "edgeprune/model_io.h"

#define EP_MODEL_FORMAT "edgeprune-model"
#define EP_MODEL_FORMAT_VERSION 1

/* Write m (and tok when non-NULL with names) to path atomically: a temporary next to
 * it, renamed over path when complete; on failure no file is left. */
void model_file_write(const ep_model *m, const ep_model_tokens *tok, const char *source, const char *path);

/* Read a whole model / just its config / its token names (counts 0 when it has none). */
void model_file_read(ep_model *m, const char *path);
void model_file_read_config(ep_model_config *cfg, const char *path);
void model_file_read_tokens(ep_model_tokens *tok, const char *path);

/* 1 when path is a readable HDF5 file. */
int model_file_is_hdf5(const char *path);
