/* dataset.c — task datasets in memory and in HDF5 (see dataset.h for the layout). */
#include "edgeprune/dataset.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgeprune/core.h"
#include "edgeprune/h5io.h"

/* Per-example 1-D arrays, in file order. */
#define N_ROW_FIELDS 6
static const char *const row_field_names[N_ROW_FIELDS] = {"length", "loss_start", "loss_end",
                                                          "target", "distractor", "aux"};

static void row_field_ptrs(ep_dataset *d, int32_t **out[N_ROW_FIELDS]) {
  out[0] = &d->length;
  out[1] = &d->loss_start;
  out[2] = &d->loss_end;
  out[3] = &d->target;
  out[4] = &d->distractor;
  out[5] = &d->aux;
}

void dataset_alloc(ep_dataset *d, int64_t n, int max_len) {
  EP_CHECK(n >= 0 && max_len >= 0, "bad dataset shape [%lld, %d]", (long long)n, max_len);
  memset(d, 0, sizeof *d);
  d->n = n;
  d->max_len = max_len;
  size_t cells = (size_t)n * (size_t)max_len;
  d->clean = ep_calloc(cells ? cells : 1, sizeof *d->clean);
  d->corrupted = ep_calloc(cells ? cells : 1, sizeof *d->corrupted);
  int32_t **f[N_ROW_FIELDS];
  row_field_ptrs(d, f);
  for (int k = 0; k < N_ROW_FIELDS; k++)
    *f[k] = ep_calloc(n ? (size_t)n : 1, sizeof(int32_t));
  for (int64_t i = 0; i < n; i++)
    d->target[i] = d->distractor[i] = d->aux[i] = -1;
}

void dataset_free(ep_dataset *d) {
  if (!d) return;
  free(d->clean);
  free(d->corrupted);
  int32_t **f[N_ROW_FIELDS];
  row_field_ptrs(d, f);
  for (int k = 0; k < N_ROW_FIELDS; k++)
    free(*f[k]);
  free(d->answer_tokens);
  memset(d, 0, sizeof *d);
}

/* ---- reading ------------------------------------------------------------------------------ */

static hid_t open_split(hid_t file, const char *path, const char *split) {
  if (!h5io_exists(file, split)) ep_fatal("%s: no split '%s' in the dataset file", path, split);
  hid_t g = H5Gopen2(file, split, H5P_DEFAULT);
  if (g < 0) ep_fatal("%s: '%s' is not a group", path, split);
  return g;
}

static void split_shape(hid_t g, const char *path, const char *split, int64_t *n, int *max_len) {
  int64_t dims[8];
  char name[256];
  snprintf(name, sizeof name, "%s/clean", split);
  if (!h5io_exists(g, "clean")) ep_fatal("%s: dataset '%s' is missing", path, name);
  int nd = h5io_dims(g, "clean", dims, path);
  if (nd != 2) ep_fatal("%s: dataset '%s' has rank %d, expected 2", path, name, nd);
  *n = dims[0];
  *max_len = (int)dims[1];
}

void dataset_shape(const char *path, const char *split, int64_t *n, int *max_len) {
  hid_t f = h5io_open_read(path);
  hid_t g = open_split(f, path, split);
  split_shape(g, path, split, n, max_len);
  EP_CHECK_H5(H5Gclose(g));
  h5io_close(f);
}

/* Attributes and answer tokens shared by both readers. */
static void read_split_meta(ep_dataset *d, hid_t g, const char *path) {
  char *task = h5io_get_attr_str(g, "task", path);
  snprintf(d->task, sizeof d->task, "%s", task);
  free(task);
  d->pad_id = (int)h5io_get_attr_i64(g, "pad_id", path);
}

static void read_answer_tokens(ep_dataset *d, hid_t g, const char *path) {
  if (!h5io_exists(g, "answer_tokens")) return;
  int64_t dims[1];
  d->answer_tokens = h5io_read(g, "answer_tokens", H5T_NATIVE_INT32, 1, NULL, dims, path);
  d->n_answer_tokens = (int)dims[0];
}

/* Read rows [first, first+count) of dataset `name` (rank 1 or 2) into buf; xfer is the
 * transfer property list (collective under MPI-IO). count may be 0. */
static void read_rows(hid_t g, const char *name, const char *path, int64_t first, int64_t count, int64_t n,
                      int width, int ndim, hid_t xfer, int32_t *buf) {
  if (!h5io_exists(g, name)) ep_fatal("%s: dataset '%s' is missing", path, name);
  int64_t dims[8];
  int nd = h5io_dims(g, name, dims, path);
  if (nd != ndim || dims[0] != n || (ndim == 2 && dims[1] != width))
    ep_fatal("%s: dataset '%s' has the wrong shape (expected [%lld%s])", path, name, (long long)n,
             ndim == 2 ? ", T" : "");
  hid_t ds = H5Dopen2(g, name, H5P_DEFAULT);
  EP_CHECK_H5(ds);
  hid_t fspace = H5Dget_space(ds);
  EP_CHECK_H5(fspace);
  hsize_t start[2] = {(hsize_t)first, 0}, cnt[2] = {(hsize_t)count, (hsize_t)width};
  hid_t mspace = H5Screate_simple(ndim, cnt, NULL);
  EP_CHECK_H5(mspace);
  if (count > 0) {
    EP_CHECK_H5(H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, cnt, NULL));
  } else {
    /* a rank with nothing to read still joins the collective call */
    EP_CHECK_H5(H5Sselect_none(fspace));
    EP_CHECK_H5(H5Sselect_none(mspace));
  }
  if (H5Dread(ds, H5T_NATIVE_INT32, mspace, fspace, xfer, buf) < 0)
    ep_fatal("%s: cannot read rows [%lld, %lld) of '%s'", path, (long long)first, (long long)(first + count),
             name);
  EP_CHECK_H5(H5Sclose(mspace));
  EP_CHECK_H5(H5Sclose(fspace));
  EP_CHECK_H5(H5Dclose(ds));
}

void dataset_read_rows(ep_dataset *d, const char *path, const char *split, int64_t first, int64_t count,
                       int comm_parallel) {
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  EP_CHECK_H5(fapl);
  hid_t xfer = H5Pcreate(H5P_DATASET_XFER);
  EP_CHECK_H5(xfer);
  if (comm_parallel) {
    EP_CHECK_H5(H5Pset_fapl_mpio(fapl, MPI_COMM_WORLD, MPI_INFO_NULL));
    EP_CHECK_H5(H5Pset_dxpl_mpio(xfer, H5FD_MPIO_COLLECTIVE));
  }
  hid_t f = -1;
  H5E_BEGIN_TRY {
    f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
  }
  H5E_END_TRY;
  if (f < 0) ep_fatal("cannot open '%s' as an HDF5 file (missing, unreadable or not HDF5)", path);
  hid_t g = open_split(f, path, split);
  int64_t n;
  int T;
  split_shape(g, path, split, &n, &T);
  if (first < 0 || count < 0 || first + count > n)
    ep_fatal("%s: rows [%lld, %lld) requested from split '%s' of %lld examples", path, (long long)first,
             (long long)(first + count), split, (long long)n);
  dataset_alloc(d, count, T);
  read_split_meta(d, g, path);
  read_rows(g, "clean", path, first, count, n, T, 2, xfer, d->clean);
  read_rows(g, "corrupted", path, first, count, n, T, 2, xfer, d->corrupted);
  int32_t **fld[N_ROW_FIELDS];
  row_field_ptrs(d, fld);
  for (int k = 0; k < N_ROW_FIELDS; k++) {
    /* aux came later than the other fields: files without it read as -1 */
    if (k == 5 && !h5io_exists(g, "aux")) continue;
    read_rows(g, row_field_names[k], path, first, count, n, 1, 1, xfer, *fld[k]);
  }
  read_answer_tokens(d, g, path);
  EP_CHECK_H5(H5Gclose(g));
  EP_CHECK_H5(H5Fclose(f));
  EP_CHECK_H5(H5Pclose(xfer));
  EP_CHECK_H5(H5Pclose(fapl));
}

void dataset_read(ep_dataset *d, const char *path, const char *split) {
  int64_t n;
  int T;
  dataset_shape(path, split, &n, &T);
  dataset_read_rows(d, path, split, 0, n, 0);
}

/* ---- an open split: scattered rows, collective reads ----------------------------------- */

#define N_FILE_ARRAYS (2 + N_ROW_FIELDS) /* clean, corrupted, then the row fields */

struct ep_dataset_file {
  char *path, *split;
  hid_t file, group, xfer;
  hid_t ds[N_FILE_ARRAYS]; /* -1 for an absent aux */
  int64_t n;
  int T;
  char task[EP_TASK_MAX];
  int pad_id;
  int n_answer;
  int32_t *answer; /* [n_answer] or NULL */
  int all_collective, warned;
  /* scratch, grown as needed */
  int64_t cap;
  int64_t *key;  /* [cap, 2] (row, position in the request) pairs, sorted */
  int64_t *uniq; /* [cap] distinct rows, ascending */
  int64_t *slot; /* [cap] output row i comes from uniq[slot[i]] */
  int32_t *buf;  /* [cap * T] */
};

static const char *file_array_name(int k) {
  return k == 0 ? "clean" : k == 1 ? "corrupted" : row_field_names[k - 2];
}

ep_dataset_file *dataset_file_open(const char *path, const char *split, MPI_Comm comm) {
  ep_dataset_file *f = ep_calloc(1, sizeof *f);
  f->path = ep_strdup(path);
  f->split = ep_strdup(split);
  f->all_collective = 1;
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  EP_CHECK_H5(fapl);
  EP_CHECK_H5(H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL));
  /* metadata read once and broadcast instead of by every rank */
  EP_CHECK_H5(H5Pset_all_coll_metadata_ops(fapl, 1));
  H5E_BEGIN_TRY {
    f->file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
  }
  H5E_END_TRY;
  if (f->file < 0) ep_fatal("cannot open '%s' as an HDF5 file (missing, unreadable or not HDF5)", path);
  EP_CHECK_H5(H5Pclose(fapl));
  f->group = open_split(f->file, path, split);
  split_shape(f->group, path, split, &f->n, &f->T);
  for (int k = 0; k < N_FILE_ARRAYS; k++) {
    const char *name = file_array_name(k);
    f->ds[k] = -1;
    if (k == N_FILE_ARRAYS - 1 && !h5io_exists(f->group, name)) continue; /* aux: optional */
    if (!h5io_exists(f->group, name)) ep_fatal("%s: dataset '%s/%s' is missing", path, split, name);
    int64_t dims[8];
    int nd = h5io_dims(f->group, name, dims, path), want = k < 2 ? 2 : 1;
    if (nd != want || dims[0] != f->n || (want == 2 && dims[1] != f->T))
      ep_fatal("%s: dataset '%s/%s' has the wrong shape (expected [%lld%s])", path, split, name,
               (long long)f->n, want == 2 ? ", T" : "");
    f->ds[k] = H5Dopen2(f->group, name, H5P_DEFAULT);
    EP_CHECK_H5(f->ds[k]);
  }
  ep_dataset meta;
  memset(&meta, 0, sizeof meta);
  read_split_meta(&meta, f->group, path);
  read_answer_tokens(&meta, f->group, path);
  memcpy(f->task, meta.task, sizeof f->task);
  f->pad_id = meta.pad_id;
  f->n_answer = meta.n_answer_tokens;
  f->answer = meta.answer_tokens;
  f->xfer = H5Pcreate(H5P_DATASET_XFER);
  EP_CHECK_H5(f->xfer);
  EP_CHECK_H5(H5Pset_dxpl_mpio(f->xfer, H5FD_MPIO_COLLECTIVE));
  return f;
}

void dataset_file_close(ep_dataset_file *f) {
  if (!f) return;
  for (int k = 0; k < N_FILE_ARRAYS; k++)
    if (f->ds[k] >= 0) EP_CHECK_H5(H5Dclose(f->ds[k]));
  EP_CHECK_H5(H5Pclose(f->xfer));
  EP_CHECK_H5(H5Gclose(f->group));
  EP_CHECK_H5(H5Fclose(f->file));
  free(f->path);
  free(f->split);
  free(f->answer);
  free(f->key);
  free(f->uniq);
  free(f->slot);
  free(f->buf);
  free(f);
}

int64_t dataset_file_n(const ep_dataset_file *f) {
  return f->n;
}

int dataset_file_max_len(const ep_dataset_file *f) {
  return f->T;
}

int dataset_file_all_collective(const ep_dataset_file *f) {
  return f->all_collective;
}

static int cmp_i64_pair(const void *a, const void *b) {
  const int64_t *x = a, *y = b;
  return x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : x[1] < y[1] ? -1 : x[1] > y[1];
}

/* One collective read of array k at the distinct ascending rows uniq[0..m) into f->buf. */
static void file_read_array(ep_dataset_file *f, int k, int64_t m) {
  const int ndim = k < 2 ? 2 : 1;
  const hsize_t width = ndim == 2 ? (hsize_t)f->T : 1;
  hid_t fspace = H5Dget_space(f->ds[k]);
  EP_CHECK_H5(fspace);
  hsize_t mdims[2] = {(hsize_t)m, width};
  hid_t mspace = H5Screate_simple(ndim, mdims, NULL);
  EP_CHECK_H5(mspace);
  if (m == 0) {
    EP_CHECK_H5(H5Sselect_none(fspace));
    EP_CHECK_H5(H5Sselect_none(mspace));
  } else {
    /* one hyperslab per run of consecutive rows, OR'ed together */
    int first = 1;
    for (int64_t i = 0; i < m;) {
      int64_t j = i + 1;
      while (j < m && f->uniq[j] == f->uniq[j - 1] + 1)
        j++;
      hsize_t start[2] = {(hsize_t)f->uniq[i], 0}, cnt[2] = {(hsize_t)(j - i), width};
      EP_CHECK_H5(
          H5Sselect_hyperslab(fspace, first ? H5S_SELECT_SET : H5S_SELECT_OR, start, NULL, cnt, NULL));
      first = 0;
      i = j;
    }
  }
  static int32_t dummy[4];
  if (H5Dread(f->ds[k], H5T_NATIVE_INT32, mspace, fspace, f->xfer, m > 0 ? f->buf : dummy) < 0)
    ep_fatal("%s: cannot read %lld rows of '%s/%s'", f->path, (long long)m, f->split, file_array_name(k));
  H5D_mpio_actual_io_mode_t mode;
  EP_CHECK_H5(H5Pget_mpio_actual_io_mode(f->xfer, &mode));
  if (mode == H5D_MPIO_NO_COLLECTIVE) {
    f->all_collective = 0;
    if (!f->warned) {
      uint32_t local = 0, global = 0;
      EP_CHECK_H5(H5Pget_mpio_no_collective_cause(f->xfer, &local, &global));
      ep_log_all("%s: reading '%s/%s' fell back to independent I/O (HDF5 cause 0x%x/0x%x)", f->path, f->split,
                 file_array_name(k), (unsigned)local, (unsigned)global);
      f->warned = 1;
    }
  }
  EP_CHECK_H5(H5Sclose(mspace));
  EP_CHECK_H5(H5Sclose(fspace));
}

void dataset_file_read_indices(ep_dataset_file *f, const int64_t *rows, int64_t count, ep_dataset *out) {
  EP_CHECK(count >= 0, "negative row count %lld", (long long)count);
  const int T = f->T;
  if (count > f->cap) {
    f->cap = count;
    f->key = ep_realloc(f->key, (size_t)count * 2 * sizeof *f->key);
    f->uniq = ep_realloc(f->uniq, (size_t)count * sizeof *f->uniq);
    f->slot = ep_realloc(f->slot, (size_t)count * sizeof *f->slot);
    f->buf = ep_realloc(f->buf, (size_t)count * (T > 0 ? T : 1) * sizeof *f->buf);
  }
  /* distinct rows in file order (a hyperslab union is read in that order), and where
   * each requested row sits among them */
  for (int64_t i = 0; i < count; i++) {
    if (rows[i] < 0 || rows[i] >= f->n)
      ep_fatal("%s: row %lld requested from split '%s' of %lld examples", f->path, (long long)rows[i],
               f->split, (long long)f->n);
    f->key[2 * i] = rows[i];
    f->key[2 * i + 1] = i;
  }
  qsort(f->key, (size_t)count, 2 * sizeof *f->key, cmp_i64_pair);
  int64_t m = 0;
  for (int64_t i = 0; i < count; i++) {
    if (m == 0 || f->uniq[m - 1] != f->key[2 * i]) f->uniq[m++] = f->key[2 * i];
    f->slot[f->key[2 * i + 1]] = m - 1;
  }

  size_t cells = (size_t)count * (size_t)T;
  out->n = count;
  out->max_len = T;
  memcpy(out->task, f->task, sizeof out->task);
  out->pad_id = f->pad_id;
  out->clean = ep_realloc(out->clean, (cells ? cells : 1) * sizeof(int32_t));
  out->corrupted = ep_realloc(out->corrupted, (cells ? cells : 1) * sizeof(int32_t));
  int32_t **fld[N_ROW_FIELDS];
  row_field_ptrs(out, fld);
  for (int k = 0; k < N_ROW_FIELDS; k++)
    *fld[k] = ep_realloc(*fld[k], (count ? (size_t)count : 1) * sizeof(int32_t));
  if (!out->answer_tokens && f->n_answer > 0) {
    out->answer_tokens = ep_malloc((size_t)f->n_answer * sizeof *out->answer_tokens);
    memcpy(out->answer_tokens, f->answer, (size_t)f->n_answer * sizeof *f->answer);
    out->n_answer_tokens = f->n_answer;
  }

  for (int k = 0; k < N_FILE_ARRAYS; k++) {
    int32_t *dst = k == 0 ? out->clean : k == 1 ? out->corrupted : *fld[k - 2];
    const size_t width = k < 2 ? (size_t)T : 1;
    if (f->ds[k] < 0) { /* a file without aux reads as -1 */
      for (int64_t i = 0; i < count; i++)
        dst[i] = -1;
      continue;
    }
    /* every rank knows n and T, so all skip a dataset without storage together */
    if (f->n == 0 || width == 0) continue;
    file_read_array(f, k, m);
    for (int64_t i = 0; i < count; i++)
      memcpy(dst + (size_t)i * width, f->buf + (size_t)f->slot[i] * width, width * sizeof *dst);
  }
}

char *dataset_attr_str(const char *path, const char *split, const char *name) {
  hid_t f = h5io_open_read(path);
  hid_t g = open_split(f, path, split);
  char *v = h5io_has_attr(g, name) ? h5io_get_attr_str(g, name, path) : NULL;
  EP_CHECK_H5(H5Gclose(g));
  h5io_close(f);
  return v;
}

/* ---- writing ------------------------------------------------------------------------------ */

static void copy_file(const char *from, const char *to) {
  FILE *in = fopen(from, "rb");
  if (!in) ep_fatal("cannot read '%s': %s", from, strerror(errno));
  FILE *out = fopen(to, "wb");
  if (!out) ep_fatal("cannot create '%s': %s", to, strerror(errno));
  char buf[1 << 16];
  size_t k;
  while ((k = fread(buf, 1, sizeof buf, in)) > 0)
    if (fwrite(buf, 1, k, out) != k) ep_fatal("cannot write '%s': %s", to, strerror(errno));
  if (ferror(in)) ep_fatal("cannot read '%s': %s", from, strerror(errno));
  fclose(in);
  if (fclose(out) != 0) ep_fatal("cannot write '%s': %s", to, strerror(errno));
}

/* A whole int32 dataset without modification times, so equal data gives equal bytes. */
static void write_i32(hid_t g, const char *name, int ndim, const int64_t *dims, const int32_t *data) {
  hsize_t hd[2] = {(hsize_t)dims[0], ndim > 1 ? (hsize_t)dims[1] : 0};
  hid_t space = H5Screate_simple(ndim, hd, NULL);
  EP_CHECK_H5(space);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  EP_CHECK_H5(dcpl);
  EP_CHECK_H5(H5Pset_obj_track_times(dcpl, 0));
  hid_t ds = H5Dcreate2(g, name, H5T_NATIVE_INT32, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  if (ds < 0) ep_fatal("cannot create dataset '%s'", name);
  if (hd[0] > 0 && (ndim == 1 || hd[1] > 0))
    EP_CHECK_H5(H5Dwrite(ds, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, data));
  EP_CHECK_H5(H5Dclose(ds));
  EP_CHECK_H5(H5Pclose(dcpl));
  EP_CHECK_H5(H5Sclose(space));
}

static void write_json_attrs(hid_t g, const char *attrs_json) {
  cJSON *j = cJSON_Parse(attrs_json);
  EP_CHECK(j && cJSON_IsObject(j), "dataset attributes must be a JSON object: %s", attrs_json);
  const cJSON *e;
  cJSON_ArrayForEach(e, j) {
    if (cJSON_IsString(e)) {
      h5io_attr_str(g, e->string, e->valuestring);
    } else if (cJSON_IsNumber(e) && e->valuedouble == (double)(int64_t)e->valuedouble) {
      h5io_attr_i64(g, e->string, (int64_t)e->valuedouble);
    } else if (cJSON_IsNumber(e)) {
      h5io_attr_f64(g, e->string, e->valuedouble);
    } else {
      char *txt = cJSON_PrintUnformatted(e);
      h5io_attr_str(g, e->string, txt);
      free(txt);
    }
  }
  cJSON_Delete(j);
}

void dataset_write(const ep_dataset *d, const char *path, const char *split, const char *attrs_json) {
  char tmp[4096];
  ep_atomic_tmpname(path, tmp, sizeof tmp);
  FILE *probe = fopen(path, "rb");
  hid_t f;
  if (probe) {
    fclose(probe);
    copy_file(path, tmp);
    H5E_BEGIN_TRY {
      f = H5Fopen(tmp, H5F_ACC_RDWR, H5P_DEFAULT);
    }
    H5E_END_TRY;
    if (f < 0) {
      ep_atomic_abort(tmp);
      ep_fatal("'%s' exists and is not an HDF5 file; not adding split '%s' to it", path, split);
    }
    if (h5io_exists(f, split)) EP_CHECK_H5(H5Ldelete(f, split, H5P_DEFAULT));
  } else {
    f = h5io_create(tmp);
  }
  hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
  EP_CHECK_H5(gcpl);
  EP_CHECK_H5(H5Pset_obj_track_times(gcpl, 0));
  hid_t g = H5Gcreate2(f, split, H5P_DEFAULT, gcpl, H5P_DEFAULT);
  if (g < 0) ep_fatal("%s: cannot create group '%s'", path, split);
  EP_CHECK_H5(H5Pclose(gcpl));
  int64_t dims[2] = {d->n, d->max_len};
  write_i32(g, "clean", 2, dims, d->clean);
  write_i32(g, "corrupted", 2, dims, d->corrupted);
  const int32_t *rows[N_ROW_FIELDS] = {d->length, d->loss_start, d->loss_end,
                                       d->target, d->distractor, d->aux};
  for (int k = 0; k < N_ROW_FIELDS; k++)
    write_i32(g, row_field_names[k], 1, dims, rows[k]);
  if (d->n_answer_tokens > 0) {
    int64_t k = d->n_answer_tokens;
    write_i32(g, "answer_tokens", 1, &k, d->answer_tokens);
  }
  h5io_attr_str(g, "task", d->task);
  h5io_attr_i64(g, "n", d->n);
  h5io_attr_i64(g, "max_len", d->max_len);
  h5io_attr_i64(g, "pad_id", d->pad_id);
  if (attrs_json) write_json_attrs(g, attrs_json);
  EP_CHECK_H5(H5Gclose(g));
  h5io_close(f);
  ep_atomic_commit(tmp, path);
}
