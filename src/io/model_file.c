/* model_file.c — the HDF5 model file (layout in model_file.h). */
#define _POSIX_C_SOURCE 200809L
#include "edgeprune/model_file.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "edgeprune/core.h"
#include "edgeprune/h5io.h"

/* ---- enum <-> attribute strings ------------------------------------------------- */

static const char *norm_names[] = {"none", "layernorm", "rmsnorm"};
static const char *act_names[] = {"gelu_tanh", "relu", "silu_glu"};
static const char *pos_names[] = {"learned", "rope", "none"};
static const char *output_names[] = {"logits", "numeric"};
#define N_OF(a) ((int)(sizeof a / sizeof *a))

static int enum_from_attr(hid_t f, const char *attr, const char **names, int n, const char *path) {
  char *s = h5io_get_attr_str(f, attr, path);
  for (int i = 0; i < n; i++)
    if (!strcmp(s, names[i])) {
      free(s);
      return i;
    }
  ep_fatal("%s: attribute '%s' has unknown value \"%s\"", path, attr, s);
}

/* ---- atomic output: a temporary that is removed if the process dies ------------- */

static char pending_tmp[4096];
static int cleanup_registered = 0;

static void remove_pending_tmp(void) {
  if (pending_tmp[0]) ep_atomic_abort(pending_tmp);
  pending_tmp[0] = '\0';
}

/* Integer config fields, in attribute order. */
typedef struct {
  const char *name;
  size_t offset;
} int_field;

static const int_field int_fields[] = {
    {"n_layer", offsetof(ep_model_config, n_layer)},
    {"n_head", offsetof(ep_model_config, n_head)},
    {"n_kv_head", offsetof(ep_model_config, n_kv_head)},
    {"d_model", offsetof(ep_model_config, d_model)},
    {"d_head", offsetof(ep_model_config, d_head)},
    {"d_mlp", offsetof(ep_model_config, d_mlp)},
    {"vocab", offsetof(ep_model_config, vocab)},
    {"vocab_out", offsetof(ep_model_config, vocab_out)},
    {"n_ctx", offsetof(ep_model_config, n_ctx)},
    {"causal", offsetof(ep_model_config, causal)},
    {"tied_unembed", offsetof(ep_model_config, tied_unembed)},
    {"attn_bias", offsetof(ep_model_config, attn_bias)},
    {"mlp_bias", offsetof(ep_model_config, mlp_bias)},
    {"final_norm", offsetof(ep_model_config, final_norm)},
    {"bos_token", offsetof(ep_model_config, bos_token)},
    {"pad_token", offsetof(ep_model_config, pad_token)},
};

static void write_config(hid_t f, const ep_model_config *c) {
  h5io_attr_str(f, "format", EP_MODEL_FORMAT);
  h5io_attr_i64(f, "format_version", EP_MODEL_FORMAT_VERSION);
  h5io_attr_str(f, "arch", c->arch);
  for (int i = 0; i < N_OF(int_fields); i++)
    h5io_attr_i64(f, int_fields[i].name, *(const int *)((const char *)c + int_fields[i].offset));
  h5io_attr_f64(f, "norm_eps", c->norm_eps);
  h5io_attr_f64(f, "rope_theta", c->rope_theta);
  h5io_attr_str(f, "norm", norm_names[c->norm]);
  h5io_attr_str(f, "act", act_names[c->act]);
  h5io_attr_str(f, "pos", pos_names[c->pos]);
  h5io_attr_str(f, "output", output_names[c->output]);
  int32_t ha[EP_MAX_LAYERS], hm[EP_MAX_LAYERS];
  for (int l = 0; l < c->n_layer; l++) {
    ha[l] = c->has_attn[l];
    hm[l] = c->has_mlp[l];
  }
  h5io_attr_i32s(f, "has_attn", c->n_layer, ha);
  h5io_attr_i32s(f, "has_mlp", c->n_layer, hm);
}

static void read_config(hid_t f, ep_model_config *c, const char *path) {
  if (!h5io_has_attr(f, "format"))
    ep_fatal("%s: not an edgeprune model file (no 'format' attribute; convert it with 'edgeprune convert')",
             path);
  char *fmt = h5io_get_attr_str(f, "format", path);
  if (strcmp(fmt, EP_MODEL_FORMAT) != 0)
    ep_fatal("%s: attribute 'format' is \"%s\", expected \"%s\"", path, fmt, EP_MODEL_FORMAT);
  free(fmt);
  int64_t ver = h5io_get_attr_i64(f, "format_version", path);
  if (ver < 1 || ver > EP_MODEL_FORMAT_VERSION)
    ep_fatal("%s: format_version %lld is not supported (this build reads 1..%d)", path, (long long)ver,
             EP_MODEL_FORMAT_VERSION);
  model_config_defaults(c);
  char *arch = h5io_get_attr_str(f, "arch", path);
  if (strlen(arch) >= EP_ARCH_MAX) ep_fatal("%s: attribute 'arch' is too long", path);
  strcpy(c->arch, arch);
  free(arch);
  for (int i = 0; i < N_OF(int_fields); i++) {
    int64_t v = h5io_get_attr_i64(f, int_fields[i].name, path);
    if (v < -1 || v > 2147483647)
      ep_fatal("%s: attribute '%s' = %lld is out of range", path, int_fields[i].name, (long long)v);
    *(int *)((char *)c + int_fields[i].offset) = (int)v;
  }
  c->norm_eps = (float)h5io_get_attr_f64(f, "norm_eps", path);
  c->rope_theta = (float)h5io_get_attr_f64(f, "rope_theta", path);
  c->norm = (ep_norm_kind)enum_from_attr(f, "norm", norm_names, N_OF(norm_names), path);
  c->act = (ep_act_kind)enum_from_attr(f, "act", act_names, N_OF(act_names), path);
  c->pos = (ep_pos_kind)enum_from_attr(f, "pos", pos_names, N_OF(pos_names), path);
  c->output = (ep_output_kind)enum_from_attr(f, "output", output_names, N_OF(output_names), path);
  if (c->n_layer < 1 || c->n_layer > EP_MAX_LAYERS)
    ep_fatal("%s: attribute 'n_layer' = %d is out of range", path, c->n_layer);
  const char *which[2] = {"has_attn", "has_mlp"};
  uint8_t *dst[2] = {c->has_attn, c->has_mlp};
  for (int k = 0; k < 2; k++) {
    int64_t n = 0;
    int32_t *v = h5io_get_attr_i32s(f, which[k], &n, path);
    if (n != c->n_layer)
      ep_fatal("%s: attribute '%s' has %lld entries, expected n_layer = %d", path, which[k], (long long)n,
               c->n_layer);
    for (int l = 0; l < c->n_layer; l++) {
      if (v[l] != 0 && v[l] != 1)
        ep_fatal("%s: attribute '%s'[%d] = %d, expected 0 or 1", path, which[k], l, v[l]);
      dst[k][l] = (uint8_t)v[l];
    }
    free(v);
  }
  const char *bad = model_config_validate(c);
  if (bad) ep_fatal("%s: invalid model config: %s", path, bad);
}

/* Property lists that keep object modification times out of the file, so identical
 * content gives identical bytes. */
static hid_t no_times_plist(hid_t cls) {
  hid_t p = H5Pcreate(cls);
  EP_CHECK_H5(p);
  EP_CHECK_H5(H5Pset_obj_track_times(p, 0));
  return p;
}

void model_file_write(const ep_model *m, const ep_model_tokens *tok, const char *source, const char *path) {
  char tmp[sizeof pending_tmp];
  ep_atomic_tmpname(path, tmp, sizeof tmp);
  if (!cleanup_registered) {
    EP_CHECK(atexit(remove_pending_tmp) == 0, "cannot register the temporary-file cleanup");
    cleanup_registered = 1;
  }
  strcpy(pending_tmp, tmp);

  hid_t fcpl = no_times_plist(H5P_FILE_CREATE);
  hid_t f = -1;
  H5E_BEGIN_TRY {
    f = H5Fcreate(tmp, H5F_ACC_TRUNC, fcpl, H5P_DEFAULT);
  }
  H5E_END_TRY;
  if (f < 0) ep_fatal("cannot create '%s' (for %s): missing folder or no write permission?", tmp, path);
  EP_CHECK_H5(H5Pclose(fcpl));
  write_config(f, &m->cfg);
  h5io_attr_str(f, "source", source ? source : "");
  if (tok && tok->n_in > 0) {
    EP_CHECK(tok->n_in == m->cfg.vocab, "token names: %d for a vocabulary of %d", tok->n_in, m->cfg.vocab);
    h5io_attr_strs(f, "tokens", tok->n_in, (const char *const *)tok->in);
  }
  if (tok && tok->n_out > 0) {
    EP_CHECK(tok->n_out == m->cfg.vocab_out, "output names: %d for %d outputs", tok->n_out, m->cfg.vocab_out);
    h5io_attr_strs(f, "output_tokens", tok->n_out, (const char *const *)tok->out);
  }

  hid_t dcpl = no_times_plist(H5P_DATASET_CREATE);
  int n = 0;
  ep_tensor_ref *t = model_tensor_list((ep_model *)m, &n);
  for (int i = 0; i < n; i++) {
    hsize_t dims[2] = {(hsize_t)t[i].shape[0], (hsize_t)t[i].shape[1]};
    hid_t space = H5Screate_simple(t[i].ndim, dims, NULL);
    EP_CHECK_H5(space);
    hid_t ds = H5Dcreate2(f, t[i].name, H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (ds < 0) ep_fatal("%s: cannot create dataset '%s'", tmp, t[i].name);
    if (H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, *t[i].slot) < 0)
      ep_fatal("%s: cannot write dataset '%s' (disk full?)", tmp, t[i].name);
    EP_CHECK_H5(H5Dclose(ds));
    EP_CHECK_H5(H5Sclose(space));
  }
  free(t);
  EP_CHECK_H5(H5Pclose(dcpl));
  if (H5Fclose(f) < 0) ep_fatal("cannot close '%s' (disk full?)", tmp);
  ep_atomic_commit(tmp, path);
  pending_tmp[0] = '\0';
}

void model_file_read_config(ep_model_config *cfg, const char *path) {
  hid_t f = h5io_open_read(path);
  read_config(f, cfg, path);
  h5io_close(f);
}

void model_file_read(ep_model *m, const char *path) {
  hid_t f = h5io_open_read(path);
  ep_model_config cfg;
  read_config(f, &cfg, path);
  model_alloc(m, &cfg);
  int n = 0;
  ep_tensor_ref *t = model_tensor_list(m, &n);
  for (int i = 0; i < n; i++) {
    int64_t dims[8];
    int nd = h5io_dims(f, t[i].name, dims, path);
    if (nd != t[i].ndim || dims[0] != t[i].shape[0] || (nd == 2 && dims[1] != t[i].shape[1])) {
      if (nd == 1) dims[1] = 0;
      ep_fatal("%s: dataset '%s' has shape [%lld%s%lld], expected [%lld%s%lld] (rank %d vs %d)", path,
               t[i].name, (long long)dims[0], nd == 2 ? ", " : "", nd == 2 ? (long long)dims[1] : 0LL,
               (long long)t[i].shape[0], t[i].ndim == 2 ? ", " : "",
               t[i].ndim == 2 ? (long long)t[i].shape[1] : 0LL, nd, t[i].ndim);
    }
    hid_t ds = H5Dopen2(f, t[i].name, H5P_DEFAULT);
    EP_CHECK_H5(ds);
    herr_t rd = -1;
    H5E_BEGIN_TRY {
      rd = H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, *t[i].slot);
    }
    H5E_END_TRY;
    if (rd < 0) ep_fatal("%s: cannot read dataset '%s' (corrupt file or not numeric)", path, t[i].name);
    EP_CHECK_H5(H5Dclose(ds));
  }
  free(t);
  h5io_close(f);
}

void model_file_read_tokens(ep_model_tokens *tok, const char *path) {
  memset(tok, 0, sizeof *tok);
  hid_t f = h5io_open_read(path);
  ep_model_config cfg;
  read_config(f, &cfg, path);
  int64_t n = 0;
  if (h5io_has_attr(f, "tokens")) {
    tok->in = h5io_get_attr_strs(f, "tokens", &n, path);
    if (n != cfg.vocab)
      ep_fatal("%s: attribute 'tokens' has %lld names for a vocabulary of %d", path, (long long)n, cfg.vocab);
    tok->n_in = (int)n;
  }
  if (h5io_has_attr(f, "output_tokens")) {
    tok->out = h5io_get_attr_strs(f, "output_tokens", &n, path);
    if (n != cfg.vocab_out)
      ep_fatal("%s: attribute 'output_tokens' has %lld names for %d outputs", path, (long long)n,
               cfg.vocab_out);
    tok->n_out = (int)n;
  }
  h5io_close(f);
}

int model_file_is_hdf5(const char *path) {
  htri_t r = -1;
#if H5_VERSION_GE(1, 12, 0)
  H5E_BEGIN_TRY {
    r = H5Fis_accessible(path, H5P_DEFAULT);
  }
#else
  H5E_BEGIN_TRY {
    r = H5Fis_hdf5(path);
  }
#endif
  H5E_END_TRY;
  return r > 0;
}
