/* checkpoint.c — see checkpoint.h and docs/checkpoint-format.md. */
#define _POSIX_C_SOURCE 200809L
#include "edgeprune/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "edgeprune/core.h"
#include "edgeprune/h5io.h"
#include "edgeprune/h5par.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "checkpoint checksums hash the in-memory bytes and assume a little-endian host"
#endif

enum { CKPT_PATH_MAX = 4096 };

static size_t ckpt_elem_size(ep_ckpt_type t) {
  return t == EP_CKPT_F32 ? 4 : 8;
}

static hid_t ckpt_h5_type(ep_ckpt_type t) {
  switch (t) {
  case EP_CKPT_F32:
    return H5T_NATIVE_FLOAT;
  case EP_CKPT_F64:
    return H5T_NATIVE_DOUBLE;
  case EP_CKPT_I64:
    return H5T_NATIVE_INT64;
  case EP_CKPT_U64:
    return H5T_NATIVE_UINT64;
  }
  return H5T_NATIVE_DOUBLE;
}

static const char *ckpt_type_name(ep_ckpt_type t) {
  static const char *const names[] = {"float32", "float64", "int64", "uint64"};
  return (unsigned)t < 4 ? names[t] : "?";
}

static uint64_t ckpt_fnv1a(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) {
    h ^= b[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

uint64_t checkpoint_array_hash(const char *name, ep_ckpt_type type, int64_t n, const void *data) {
  uint64_t h = 0xcbf29ce484222325ULL;
  unsigned char code = (unsigned char)type, zero = 0;
  h = ckpt_fnv1a(h, name, strlen(name));
  h = ckpt_fnv1a(h, &zero, 1);
  h = ckpt_fnv1a(h, &code, 1);
  return ckpt_fnv1a(h, data, (size_t)n * ckpt_elem_size(type));
}

/* ---- file names ------------------------------------------------------------ */

/* Step of "ckpt-<digits>.h5", or -1 for any other name (temporaries included). */
static int64_t ckpt_parse_name(const char *name) {
  if (strncmp(name, "ckpt-", 5) != 0) return -1;
  const char *p = name + 5;
  int64_t step = 0;
  int digits = 0;
  while (*p >= '0' && *p <= '9' && digits < 18)
    step = step * 10 + (*p++ - '0'), digits++;
  if (digits == 0 || strcmp(p, ".h5") != 0) return -1;
  return step;
}

typedef struct {
  int64_t step;
  char *path;
} ckpt_entry;

static int ckpt_cmp_desc(const void *a, const void *b) {
  int64_t x = ((const ckpt_entry *)a)->step, y = ((const ckpt_entry *)b)->step;
  return x < y ? 1 : x > y ? -1 : 0;
}

/* Checkpoints in dir, newest first. A missing dir is an empty list. */
static ckpt_entry *ckpt_list(const char *dir, int *n_out) {
  *n_out = 0;
  DIR *d = opendir(dir);
  if (!d) return NULL;
  ckpt_entry *e = NULL;
  int n = 0;
  for (struct dirent *de; (de = readdir(d));) {
    int64_t step = ckpt_parse_name(de->d_name);
    if (step < 0) continue;
    e = ep_realloc(e, (size_t)(n + 1) * sizeof *e);
    e[n].step = step;
    e[n++].path = ep_path_join(dir, de->d_name);
  }
  closedir(d);
  qsort(e, (size_t)n, sizeof *e, ckpt_cmp_desc);
  *n_out = n;
  return e;
}

static void ckpt_list_free(ckpt_entry *e, int n) {
  for (int i = 0; i < n; i++)
    free(e[i].path);
  free(e);
}

/* Broadcast a string (or NULL) from rank 0; returns a malloc'd copy on every rank. */
static char *ckpt_bcast_str(const char *s, MPI_Comm comm) {
  int rank = 0;
  EP_CHECK_MPI(MPI_Comm_rank(comm, &rank));
  long long len = (rank == 0 && s) ? (long long)strlen(s) : -1;
  EP_CHECK_MPI(MPI_Bcast(&len, 1, MPI_LONG_LONG, 0, comm));
  if (len < 0) return NULL;
  EP_CHECK(len < (1LL << 30), "string of %lld bytes is too long to broadcast", len);
  char *out = ep_malloc((size_t)len + 1);
  if (rank == 0) memcpy(out, s, (size_t)len + 1);
  EP_CHECK_MPI(MPI_Bcast(out, (int)len + 1, MPI_CHAR, 0, comm));
  return out;
}

static void ckpt_fsync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY);
  if (fd < 0) return;
  /* Makes the rename durable; some file systems refuse fsync on a directory, which
   * only weakens durability, so its result is not an error. */
  (void)fsync(fd);
  close(fd);
}

/* ---- write ----------------------------------------------------------------- */

char *checkpoint_write(const char *dir, const ep_ckpt_meta *meta, int n_arrays, const ep_ckpt_array *arrays,
                       int keep, MPI_Comm comm) {
  int rank = 0;
  EP_CHECK_MPI(MPI_Comm_rank(comm, &rank));
  EP_CHECK(meta->step >= 0, "checkpoint step must be >= 0, got %lld", (long long)meta->step);
  EP_CHECK(meta->n_seeds >= 0 && meta->n_seeds <= EP_CKPT_MAX_SEEDS, "checkpoint: %d seeds (max %d)",
           meta->n_seeds, EP_CKPT_MAX_SEEDS);
  char name[64], final_path[CKPT_PATH_MAX], tmp_local[CKPT_PATH_MAX];
  snprintf(name, sizeof name, "ckpt-%08lld.h5", (long long)meta->step);
  int n = snprintf(final_path, sizeof final_path, "%s/%s", dir, name);
  EP_CHECK(n > 0 && (size_t)n < sizeof final_path, "checkpoint directory path too long: '%s'", dir);
  if (rank == 0) {
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
      ep_fatal("cannot create checkpoint directory '%s': %s", dir, strerror(errno));
    ep_atomic_tmpname(final_path, tmp_local, sizeof tmp_local);
  }
  /* The temporary's name carries rank 0's pid; every rank must open the same file. */
  char *tmp = ckpt_bcast_str(rank == 0 ? tmp_local : NULL, comm);

  hid_t f = h5par_create(tmp, comm);
  hid_t g = h5io_group(f, "arrays");
  uint64_t total = 0;
  for (int i = 0; i < n_arrays; i++) {
    const ep_ckpt_array *a = &arrays[i];
    EP_CHECK(a->n >= 0 && (unsigned)a->type < 4, "checkpoint array '%s': bad shape or type", a->name);
    for (int j = 0; j < i; j++)
      EP_CHECK(strcmp(arrays[j].name, a->name) != 0, "checkpoint array '%s' given twice", a->name);
    int64_t dims[1] = {a->n};
    h5par_write_replicated(g, a->name, ckpt_h5_type(a->type), 1, dims, a->data, comm);
    uint64_t h = rank == 0 ? checkpoint_array_hash(a->name, a->type, a->n, a->data) : 0;
    EP_CHECK_MPI(MPI_Bcast(&h, 1, MPI_UINT64_T, 0, comm));
    total += h;
    hid_t ds = H5Dopen2(g, a->name, H5P_DEFAULT);
    EP_CHECK_H5(ds);
    h5par_attr_u64(ds, "fnv1a64", h, comm);
    EP_CHECK_H5(H5Dclose(ds));
  }
  EP_CHECK_H5(H5Gclose(g));
  h5par_attr_str(f, "signature", EP_CKPT_SIGNATURE, comm);
  h5par_attr_i64(f, "format_version", EP_CKPT_FORMAT_VERSION, comm);
  h5par_attr_i64(f, "step", meta->step, comm);
  h5par_attr_i64(f, "data_cursor", meta->data_cursor, comm);
  h5par_attr_u64(f, "config_hash", meta->config_hash, comm);
  h5par_attr_i64(f, "pp", meta->pp, comm);
  h5par_attr_i64(f, "dp", meta->dp, comm);
  h5par_attr_i64(f, "n_seeds", meta->n_seeds, comm);
  if (meta->n_seeds > 0) h5par_attr_u64_array(f, "seeds", meta->n_seeds, meta->seeds, comm);
  h5par_attr_str(f, "deck", meta->deck ? meta->deck : "", comm);
  h5par_attr_i64(f, "n_arrays", n_arrays, comm);
  h5par_attr_u64(f, "checksum", total, comm);
  h5par_attr_str(f, "end_marker", EP_CKPT_END_MARKER, comm); /* last: its presence means complete */
  h5par_close(f);

  if (rank == 0) {
    ep_atomic_commit(tmp, final_path); /* fsync + rename */
    ckpt_fsync_dir(dir);
    if (keep > 0) {
      int n_list = 0, kept = 0;
      ckpt_entry *e = ckpt_list(dir, &n_list);
      for (int i = 0; i < n_list; i++) {
        if (e[i].step > meta->step) continue; /* not ours to judge */
        if (++kept <= keep) continue;
        if (unlink(e[i].path) != 0)
          ep_warn("cannot remove old checkpoint '%s': %s", e[i].path, strerror(errno));
      }
      ckpt_list_free(e, n_list);
    }
  }
  free(tmp);
  EP_CHECK_MPI(MPI_Barrier(comm));
  return ep_strdup(final_path);
}

/* ---- validate ---------------------------------------------------------------- */

typedef struct {
  char *reason;
  size_t cap;
  int bad;
  int64_t count;
  uint64_t total;
} ckpt_scan;

static void ckpt_fail(ckpt_scan *s, const char *fmt, ...) EP_PRINTF(2, 3);
static void ckpt_fail(ckpt_scan *s, const char *fmt, ...) {
  if (s->bad) return;
  s->bad = 1;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->reason, s->cap, fmt, ap);
  va_end(ap);
}

/* Read a string attribute without fatal errors; NULL when absent or unreadable. */
static char *ckpt_try_attr_str(hid_t loc, const char *name) {
  if (H5Aexists(loc, name) <= 0) return NULL;
  hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
  if (a < 0) return NULL;
  hid_t ft = H5Aget_type(a);
  char *out = NULL;
  if (ft >= 0 && H5Tget_class(ft) == H5T_STRING && H5Tis_variable_str(ft) == 0) {
    size_t n = H5Tget_size(ft);
    out = ep_calloc(n + 1, 1);
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0 || H5Tset_size(t, n + 1) < 0 || H5Aread(a, t, out) < 0) {
      free(out);
      out = NULL;
    }
    if (t >= 0) H5Tclose(t);
  }
  if (ft >= 0) H5Tclose(ft);
  H5Aclose(a);
  return out;
}

static int ckpt_try_attr(hid_t loc, const char *name, hid_t type, void *out) {
  if (H5Aexists(loc, name) <= 0) return 0;
  hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
  if (a < 0) return 0;
  int ok = H5Aread(a, type, out) >= 0;
  H5Aclose(a);
  return ok;
}

/* The ep type of a stored dataset, or -1. */
static int ckpt_stored_type(hid_t ds) {
  hid_t t = H5Dget_type(ds);
  if (t < 0) return -1;
  H5T_class_t c = H5Tget_class(t);
  size_t sz = H5Tget_size(t);
  int r = -1;
  if (c == H5T_FLOAT) r = sz == 4 ? EP_CKPT_F32 : sz == 8 ? EP_CKPT_F64 : -1;
  if (c == H5T_INTEGER && sz == 8) r = H5Tget_sign(t) == H5T_SGN_NONE ? EP_CKPT_U64 : EP_CKPT_I64;
  H5Tclose(t);
  return r;
}

/* H5Lvisit's callback takes H5L_info2_t from HDF5 1.12 on. */
#if H5_VERSION_GE(1, 12, 0)
typedef H5L_info2_t ckpt_link_info;
#else
typedef H5L_info_t ckpt_link_info;
#endif

static herr_t ckpt_visit(hid_t g, const char *name, const ckpt_link_info *info, void *op) {
  ckpt_scan *s = op;
  (void)info;
  hid_t obj = H5Oopen(g, name, H5P_DEFAULT);
  if (obj < 0) {
    ckpt_fail(s, "object 'arrays/%s' cannot be opened", name);
    return 1;
  }
  if (H5Iget_type(obj) != H5I_DATASET) {
    H5Oclose(obj);
    return 0; /* a group on the way to a nested array */
  }
  int type = ckpt_stored_type(obj);
  hid_t space = H5Dget_space(obj);
  hssize_t n = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
  if (space >= 0) H5Sclose(space);
  uint64_t stored = 0;
  if (type < 0 || n < 0) {
    ckpt_fail(s, "array '%s' has an unsupported type or shape", name);
  } else if (!ckpt_try_attr(obj, "fnv1a64", H5T_NATIVE_UINT64, &stored)) {
    ckpt_fail(s, "array '%s' has no checksum attribute", name);
  } else {
    void *buf = ep_malloc((size_t)n * ckpt_elem_size((ep_ckpt_type)type));
    if (n > 0 && H5Dread(obj, ckpt_h5_type((ep_ckpt_type)type), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
      ckpt_fail(s, "array '%s' cannot be read", name);
    } else {
      uint64_t h = checkpoint_array_hash(name, (ep_ckpt_type)type, (int64_t)n, buf);
      if (h != stored)
        ckpt_fail(s, "array '%s' fails its checksum (stored %016llx, computed %016llx)", name,
                  (unsigned long long)stored, (unsigned long long)h);
      s->total += h;
      s->count++;
    }
    free(buf);
  }
  H5Oclose(obj);
  return s->bad ? 1 : 0;
}

int checkpoint_validate(const char *path, char *reason, size_t reason_cap) {
  ckpt_scan s = {reason, reason_cap, 0, 0, 0};
  reason[0] = '\0';
  /* Damaged files are expected here: silence HDF5's error stack printing. */
  H5E_auto2_t old_fn = NULL;
  void *old_data = NULL;
  H5Eget_auto2(H5E_DEFAULT, &old_fn, &old_data);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);

  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) {
    ckpt_fail(&s, "not a readable HDF5 file (truncated or damaged)");
  } else {
    char *sig = ckpt_try_attr_str(f, "signature");
    int64_t version = -1, n_arrays = -1;
    uint64_t checksum = 0;
    char *end = ckpt_try_attr_str(f, "end_marker");
    if (!sig || strcmp(sig, EP_CKPT_SIGNATURE) != 0)
      ckpt_fail(&s, "no '%s' signature (not a checkpoint)", EP_CKPT_SIGNATURE);
    else if (!ckpt_try_attr(f, "format_version", H5T_NATIVE_INT64, &version))
      ckpt_fail(&s, "no format_version attribute");
    else if (version != EP_CKPT_FORMAT_VERSION)
      ckpt_fail(&s, "format version %lld, this build reads version %d", (long long)version,
                EP_CKPT_FORMAT_VERSION);
    else if (!end || strcmp(end, EP_CKPT_END_MARKER) != 0)
      ckpt_fail(&s, "no end marker (the write did not finish)");
    else if (!ckpt_try_attr(f, "n_arrays", H5T_NATIVE_INT64, &n_arrays) ||
             !ckpt_try_attr(f, "checksum", H5T_NATIVE_UINT64, &checksum))
      ckpt_fail(&s, "no n_arrays/checksum attributes");
    free(sig);
    free(end);
    if (!s.bad) {
      hid_t g = H5Gopen2(f, "arrays", H5P_DEFAULT);
      if (g < 0) {
        ckpt_fail(&s, "no /arrays group");
      } else {
        if (H5Lvisit(g, H5_INDEX_NAME, H5_ITER_INC, ckpt_visit, &s) < 0)
          ckpt_fail(&s, "cannot list the arrays (damaged file)");
        H5Gclose(g);
      }
    }
    if (!s.bad && s.count != n_arrays)
      ckpt_fail(&s, "holds %lld arrays, its header says %lld", (long long)s.count, (long long)n_arrays);
    if (!s.bad && s.total != checksum)
      ckpt_fail(&s, "file checksum mismatch (stored %016llx, computed %016llx)", (unsigned long long)checksum,
                (unsigned long long)s.total);
    if (H5Fclose(f) < 0) ckpt_fail(&s, "cannot close the file cleanly (damaged)");
  }
  H5Eset_auto2(H5E_DEFAULT, old_fn, old_data);
  return !s.bad;
}

char *checkpoint_find_latest(const char *dir, MPI_Comm comm) {
  int rank = 0;
  EP_CHECK_MPI(MPI_Comm_rank(comm, &rank));
  const char *found = NULL;
  int n = 0;
  ckpt_entry *e = NULL;
  if (rank == 0) {
    e = ckpt_list(dir, &n);
    for (int i = 0; i < n && !found; i++) {
      char reason[512];
      if (checkpoint_validate(e[i].path, reason, sizeof reason))
        found = e[i].path;
      else
        ep_warn("checkpoint '%s' is unusable: %s; %s", e[i].path, reason,
                i + 1 < n ? "trying the previous one" : "no older checkpoint left");
    }
  }
  char *out = ckpt_bcast_str(found, comm);
  ckpt_list_free(e, n);
  return out;
}

char *checkpoint_set_aside(const char *dir, MPI_Comm comm) {
  int rank = 0;
  EP_CHECK_MPI(MPI_Comm_rank(comm, &rank));
  char moved[CKPT_PATH_MAX];
  const char *done = NULL;
  if (rank == 0) {
    int n = 0;
    ckpt_entry *e = ckpt_list(dir, &n);
    ckpt_list_free(e, n);
    if (n > 0) {
      time_t now = time(NULL);
      struct tm tmv;
      char stamp[32];
      strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", localtime_r(&now, &tmv));
      /* a second start-over within the same second gets a suffix */
      for (int k = 0; k < 1000 && !done; k++) {
        if (k == 0)
          snprintf(moved, sizeof moved, "%s.old-%s", dir, stamp);
        else
          snprintf(moved, sizeof moved, "%s.old-%s-%d", dir, stamp, k);
        if (access(moved, F_OK) == 0) continue;
        if (rename(dir, moved) != 0)
          ep_fatal("run.restart = never: cannot move the existing checkpoints '%s' aside to '%s': %s", dir,
                   moved, strerror(errno));
        done = moved;
      }
      if (!done) ep_fatal("run.restart = never: no free name to move '%s' aside", dir);
      ep_warn("run.restart = never: %d earlier checkpoint(s) moved aside from '%s' to '%s'", n, dir, moved);
    }
  }
  return ckpt_bcast_str(done, comm);
}

/* ---- read -------------------------------------------------------------------- */

static void ckpt_read_meta(hid_t f, const char *path, ep_ckpt_meta *m) {
  memset(m, 0, sizeof *m);
  char *sig = h5io_has_attr(f, "signature") ? h5io_get_attr_str(f, "signature", path) : NULL;
  if (!sig || strcmp(sig, EP_CKPT_SIGNATURE) != 0) ep_fatal("'%s' is not an edgeprune checkpoint", path);
  free(sig);
  int64_t version = h5io_get_attr_i64(f, "format_version", path);
  if (version != EP_CKPT_FORMAT_VERSION)
    ep_fatal("'%s': checkpoint format version %lld, this build reads version %d", path, (long long)version,
             EP_CKPT_FORMAT_VERSION);
  char *end = h5io_has_attr(f, "end_marker") ? h5io_get_attr_str(f, "end_marker", path) : NULL;
  if (!end || strcmp(end, EP_CKPT_END_MARKER) != 0)
    ep_fatal("'%s': checkpoint has no end marker (its write did not finish)", path);
  free(end);
  m->step = h5io_get_attr_i64(f, "step", path);
  m->data_cursor = h5io_get_attr_i64(f, "data_cursor", path);
  if (!ckpt_try_attr(f, "config_hash", H5T_NATIVE_UINT64, &m->config_hash))
    ep_fatal("'%s': attribute 'config_hash' is missing", path);
  m->pp = (int)h5io_get_attr_i64(f, "pp", path);
  m->dp = (int)h5io_get_attr_i64(f, "dp", path);
  int64_t ns = h5io_get_attr_i64(f, "n_seeds", path);
  if (ns < 0 || ns > EP_CKPT_MAX_SEEDS) ep_fatal("'%s': bad n_seeds %lld", path, (long long)ns);
  m->n_seeds = (int)ns;
  if (ns > 0 && !ckpt_try_attr(f, "seeds", H5T_NATIVE_UINT64, m->seeds))
    ep_fatal("'%s': attribute 'seeds' is missing", path);
  m->deck = h5io_get_attr_str(f, "deck", path);
}

/* Meta as a flat message: the fixed fields, then the deck string. */
static void ckpt_bcast_meta(ep_ckpt_meta *m, MPI_Comm comm) {
  int rank = 0;
  EP_CHECK_MPI(MPI_Comm_rank(comm, &rank));
  char *deck = m->deck;
  m->deck = NULL;
  EP_CHECK_MPI(MPI_Bcast(m, (int)sizeof *m, MPI_BYTE, 0, comm));
  m->deck = ckpt_bcast_str(rank == 0 ? deck : "", comm);
  free(deck);
}

void checkpoint_info(const char *path, ep_ckpt_meta *meta, MPI_Comm comm) {
  int rank = 0;
  EP_CHECK_MPI(MPI_Comm_rank(comm, &rank));
  memset(meta, 0, sizeof *meta);
  if (rank == 0) {
    hid_t f = h5io_open_read(path);
    ckpt_read_meta(f, path, meta);
    h5io_close(f);
  }
  ckpt_bcast_meta(meta, comm);
}

void checkpoint_read(const char *path, ep_ckpt_meta *meta, int n_arrays, ep_ckpt_array *arrays,
                     MPI_Comm comm) {
  hid_t f = h5par_open(path, comm, 0);
  ckpt_read_meta(f, path, meta);
  hid_t g = H5Gopen2(f, "arrays", H5P_DEFAULT);
  if (g < 0) ep_fatal("'%s': checkpoint has no /arrays group", path);
  for (int i = 0; i < n_arrays; i++) {
    ep_ckpt_array *a = &arrays[i];
    if (!h5io_exists(g, a->name)) ep_fatal("'%s': checkpoint has no array '%s'", path, a->name);
    int64_t dims[8];
    int nd = h5par_dims(g, a->name, dims, path);
    hid_t ds = H5Dopen2(g, a->name, H5P_DEFAULT);
    EP_CHECK_H5(ds);
    int type = ckpt_stored_type(ds);
    uint64_t stored = 0;
    int has_hash = ckpt_try_attr(ds, "fnv1a64", H5T_NATIVE_UINT64, &stored);
    EP_CHECK_H5(H5Dclose(ds));
    if (nd != 1 || dims[0] != a->n || type != (int)a->type)
      ep_fatal("'%s': array '%s' is %s[%lld], expected %s[%lld]", path, a->name,
               type >= 0 ? ckpt_type_name((ep_ckpt_type)type) : "?", (long long)dims[0],
               ckpt_type_name(a->type), (long long)a->n);
    h5par_read_all(g, a->name, ckpt_h5_type(a->type), a->data, path);
    uint64_t h = checkpoint_array_hash(a->name, a->type, a->n, a->data);
    if (!has_hash || h != stored)
      ep_fatal("'%s': array '%s' fails its checksum (stored %016llx, computed %016llx)", path, a->name,
               (unsigned long long)stored, (unsigned long long)h);
  }
  EP_CHECK_H5(H5Gclose(g));
  h5par_close(f);
}

void checkpoint_meta_free(ep_ckpt_meta *meta) {
  free(meta->deck);
  meta->deck = NULL;
}
