/* h5io.c — see h5io.h. */
#include "edgeprune/h5io.h"

#include <stdlib.h>
#include <string.h>

#include "edgeprune/core.h"

hid_t h5io_create(const char *path) {
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0) ep_fatal("cannot create HDF5 file '%s'", path);
  return f;
}

hid_t h5io_open_read(const char *path) {
  hid_t f = -1;
  H5E_BEGIN_TRY { f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT); }
  H5E_END_TRY;
  if (f < 0) ep_fatal("cannot open '%s' as an HDF5 file (missing, unreadable or not HDF5)", path);
  return f;
}

void h5io_close(hid_t file) { EP_CHECK_H5(H5Fclose(file)); }

hid_t h5io_group(hid_t loc, const char *name) {
  if (h5io_exists(loc, name)) {
    hid_t g = H5Gopen2(loc, name, H5P_DEFAULT);
    EP_CHECK_H5(g);
    return g;
  }
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  EP_CHECK_H5(lcpl);
  EP_CHECK_H5(H5Pset_create_intermediate_group(lcpl, 1));
  hid_t g = H5Gcreate2(loc, name, lcpl, H5P_DEFAULT, H5P_DEFAULT);
  EP_CHECK_H5(g);
  EP_CHECK_H5(H5Pclose(lcpl));
  return g;
}

void h5io_write(hid_t loc, const char *name, hid_t mem_type, int ndim, const int64_t *dims,
                const void *data) {
  hsize_t hd[8];
  EP_CHECK(ndim >= 1 && ndim <= 8, "bad rank %d for dataset %s", ndim, name);
  for (int i = 0; i < ndim; i++) hd[i] = (hsize_t)dims[i];
  hid_t space = H5Screate_simple(ndim, hd, NULL);
  EP_CHECK_H5(space);
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  EP_CHECK_H5(lcpl);
  EP_CHECK_H5(H5Pset_create_intermediate_group(lcpl, 1));
  hid_t ds = H5Dcreate2(loc, name, mem_type, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
  if (ds < 0) ep_fatal("cannot create dataset '%s'", name);
  EP_CHECK_H5(H5Dwrite(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data));
  EP_CHECK_H5(H5Dclose(ds));
  EP_CHECK_H5(H5Pclose(lcpl));
  EP_CHECK_H5(H5Sclose(space));
}

static hid_t vlen_string_type(void) {
  hid_t t = H5Tcopy(H5T_C_S1);
  EP_CHECK_H5(t);
  EP_CHECK_H5(H5Tset_size(t, H5T_VARIABLE));
  EP_CHECK_H5(H5Tset_cset(t, H5T_CSET_UTF8));
  return t;
}

void h5io_write_strings(hid_t loc, const char *name, int64_t n, const char *const *strs) {
  hid_t t = vlen_string_type();
  hsize_t d = (hsize_t)n;
  hid_t space = H5Screate_simple(1, &d, NULL);
  EP_CHECK_H5(space);
  hid_t ds = H5Dcreate2(loc, name, t, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (ds < 0) ep_fatal("cannot create dataset '%s'", name);
  if (n > 0) EP_CHECK_H5(H5Dwrite(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, strs));
  EP_CHECK_H5(H5Dclose(ds));
  EP_CHECK_H5(H5Sclose(space));
  EP_CHECK_H5(H5Tclose(t));
}

int h5io_exists(hid_t loc, const char *name) {
  /* Check each path component so a missing intermediate group is not an error. */
  char buf[512];
  size_t n = strlen(name);
  EP_CHECK(n < sizeof buf, "object name too long: %s", name);
  memcpy(buf, name, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (buf[i] == '/' || buf[i] == '\0') {
      char c = buf[i];
      buf[i] = '\0';
      htri_t e = H5Lexists(loc, buf, H5P_DEFAULT);
      buf[i] = c;
      if (e <= 0) return 0;
    }
  }
  return 1;
}

static hid_t open_dataset(hid_t loc, const char *name, const char *file) {
  if (!h5io_exists(loc, name)) ep_fatal("%s: dataset '%s' is missing", file, name);
  hid_t ds = H5Dopen2(loc, name, H5P_DEFAULT);
  if (ds < 0) ep_fatal("%s: '%s' is not a dataset", file, name);
  return ds;
}

int h5io_dims(hid_t loc, const char *name, int64_t *dims, const char *file) {
  hid_t ds = open_dataset(loc, name, file);
  hid_t sp = H5Dget_space(ds);
  EP_CHECK_H5(sp);
  int nd = H5Sget_simple_extent_ndims(sp);
  EP_CHECK_H5(nd);
  if (nd > 8) ep_fatal("%s: dataset '%s' has rank %d (at most 8 supported)", file, name, nd);
  hsize_t hd[8];
  EP_CHECK_H5(H5Sget_simple_extent_dims(sp, hd, NULL));
  for (int i = 0; i < nd; i++) dims[i] = (int64_t)hd[i];
  EP_CHECK_H5(H5Sclose(sp));
  EP_CHECK_H5(H5Dclose(ds));
  return nd;
}

void *h5io_read(hid_t loc, const char *name, hid_t mem_type, int ndim, const int64_t *expect,
                int64_t *dims_out, const char *file) {
  int64_t dims[8];
  int nd = h5io_dims(loc, name, dims, file);
  if (nd != ndim) ep_fatal("%s: dataset '%s' has rank %d, expected %d", file, name, nd, ndim);
  size_t count = 1;
  for (int i = 0; i < nd; i++) {
    if (expect && expect[i] >= 0 && dims[i] != expect[i])
      ep_fatal("%s: dataset '%s' has dimension %d of size %lld, expected %lld", file, name, i,
               (long long)dims[i], (long long)expect[i]);
    if (dims_out) dims_out[i] = dims[i];
    count *= (size_t)dims[i];
  }
  size_t esize = H5Tget_size(mem_type);
  void *buf = ep_malloc(count * esize);
  hid_t ds = open_dataset(loc, name, file);
  if (count > 0 && H5Dread(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
    ep_fatal("%s: cannot read dataset '%s' (corrupt file or wrong type)", file, name);
  EP_CHECK_H5(H5Dclose(ds));
  return buf;
}

char **h5io_read_strings(hid_t loc, const char *name, int64_t *n, const char *file) {
  int64_t dims[8];
  int nd = h5io_dims(loc, name, dims, file);
  if (nd != 1) ep_fatal("%s: dataset '%s' should be a 1-D list of strings", file, name);
  char **out = ep_calloc((size_t)dims[0] + 1, sizeof *out);
  hid_t ds = open_dataset(loc, name, file);
  hid_t t = vlen_string_type();
  if (dims[0] > 0 && H5Dread(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0)
    ep_fatal("%s: cannot read strings '%s'", file, name);
  for (int64_t i = 0; i < dims[0]; i++) { /* move into our allocator's ownership */
    char *s = ep_strdup(out[i] ? out[i] : "");
    H5free_memory(out[i]);
    out[i] = s;
  }
  EP_CHECK_H5(H5Tclose(t));
  EP_CHECK_H5(H5Dclose(ds));
  *n = dims[0];
  return out;
}

static void write_attr(hid_t loc, const char *name, hid_t type, const void *value) {
  if (H5Aexists(loc, name) > 0) EP_CHECK_H5(H5Adelete(loc, name));
  hid_t space = H5Screate(H5S_SCALAR);
  EP_CHECK_H5(space);
  hid_t a = H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
  EP_CHECK_H5(a);
  EP_CHECK_H5(H5Awrite(a, type, value));
  EP_CHECK_H5(H5Aclose(a));
  EP_CHECK_H5(H5Sclose(space));
}

void h5io_attr_str(hid_t loc, const char *name, const char *value) {
  hid_t t = vlen_string_type();
  write_attr(loc, name, t, &value);
  EP_CHECK_H5(H5Tclose(t));
}
void h5io_attr_i64(hid_t loc, const char *name, int64_t value) {
  write_attr(loc, name, H5T_NATIVE_INT64, &value);
}
void h5io_attr_f64(hid_t loc, const char *name, double value) {
  write_attr(loc, name, H5T_NATIVE_DOUBLE, &value);
}
int h5io_has_attr(hid_t loc, const char *name) { return H5Aexists(loc, name) > 0; }

static hid_t open_attr(hid_t loc, const char *name, const char *file) {
  if (H5Aexists(loc, name) <= 0) ep_fatal("%s: attribute '%s' is missing", file, name);
  hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
  EP_CHECK_H5(a);
  return a;
}

char *h5io_get_attr_str(hid_t loc, const char *name, const char *file) {
  hid_t a = open_attr(loc, name, file);
  hid_t ft = H5Aget_type(a);
  EP_CHECK_H5(ft);
  if (H5Tget_class(ft) != H5T_STRING) ep_fatal("%s: attribute '%s' should be a string", file, name);
  char *out = NULL;
  if (H5Tis_variable_str(ft) > 0) {
    hid_t t = vlen_string_type();
    char *s = NULL;
    EP_CHECK_H5(H5Aread(a, t, &s));
    out = ep_strdup(s ? s : "");
    H5free_memory(s);
    EP_CHECK_H5(H5Tclose(t));
  } else {
    size_t n = H5Tget_size(ft);
    out = ep_calloc(n + 1, 1);
    hid_t t = H5Tcopy(H5T_C_S1);
    EP_CHECK_H5(H5Tset_size(t, n + 1));
    EP_CHECK_H5(H5Aread(a, t, out));
    EP_CHECK_H5(H5Tclose(t));
  }
  EP_CHECK_H5(H5Tclose(ft));
  EP_CHECK_H5(H5Aclose(a));
  return out;
}

int64_t h5io_get_attr_i64(hid_t loc, const char *name, const char *file) {
  hid_t a = open_attr(loc, name, file);
  int64_t v = 0;
  if (H5Aread(a, H5T_NATIVE_INT64, &v) < 0) ep_fatal("%s: attribute '%s' should be an integer", file, name);
  EP_CHECK_H5(H5Aclose(a));
  return v;
}

double h5io_get_attr_f64(hid_t loc, const char *name, const char *file) {
  hid_t a = open_attr(loc, name, file);
  double v = 0;
  if (H5Aread(a, H5T_NATIVE_DOUBLE, &v) < 0) ep_fatal("%s: attribute '%s' should be a number", file, name);
  EP_CHECK_H5(H5Aclose(a));
  return v;
}

static void write_attr_1d(hid_t loc, const char *name, hid_t type, int64_t n, const void *values) {
  if (H5Aexists(loc, name) > 0) EP_CHECK_H5(H5Adelete(loc, name));
  hsize_t d = (hsize_t)n;
  hid_t space = n > 0 ? H5Screate_simple(1, &d, NULL) : H5Screate(H5S_NULL);
  EP_CHECK_H5(space);
  hid_t a = H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
  if (a < 0)
    ep_fatal("cannot create attribute '%s' (%lld values; too large for an attribute?)", name, (long long)n);
  if (n > 0) EP_CHECK_H5(H5Awrite(a, type, values));
  EP_CHECK_H5(H5Aclose(a));
  EP_CHECK_H5(H5Sclose(space));
}

void h5io_attr_strs(hid_t loc, const char *name, int64_t n, const char *const *strs) {
  hid_t t = vlen_string_type();
  write_attr_1d(loc, name, t, n, strs);
  EP_CHECK_H5(H5Tclose(t));
}

void h5io_attr_i32s(hid_t loc, const char *name, int64_t n, const int32_t *values) {
  write_attr_1d(loc, name, H5T_NATIVE_INT32, n, values);
}

/* Open a 1-D (or empty) attribute; *n gets its length. */
static hid_t open_attr_1d(hid_t loc, const char *name, int64_t *n, const char *file) {
  hid_t a = open_attr(loc, name, file);
  hid_t sp = H5Aget_space(a);
  EP_CHECK_H5(sp);
  H5S_class_t cls = H5Sget_simple_extent_type(sp);
  if (cls == H5S_NULL) {
    *n = 0;
  } else {
    int nd = H5Sget_simple_extent_ndims(sp);
    if (cls != H5S_SIMPLE || nd != 1) ep_fatal("%s: attribute '%s' should be a 1-D array", file, name);
    hsize_t d = 0;
    EP_CHECK_H5(H5Sget_simple_extent_dims(sp, &d, NULL));
    *n = (int64_t)d;
  }
  EP_CHECK_H5(H5Sclose(sp));
  return a;
}

char **h5io_get_attr_strs(hid_t loc, const char *name, int64_t *n, const char *file) {
  hid_t a = open_attr_1d(loc, name, n, file);
  hid_t ft = H5Aget_type(a);
  EP_CHECK_H5(ft);
  if (H5Tget_class(ft) != H5T_STRING || H5Tis_variable_str(ft) <= 0)
    ep_fatal("%s: attribute '%s' should be an array of variable-length strings", file, name);
  char **out = ep_calloc((size_t)*n + 1, sizeof *out);
  hid_t t = vlen_string_type();
  if (*n > 0 && H5Aread(a, t, out) < 0) ep_fatal("%s: cannot read attribute '%s'", file, name);
  for (int64_t i = 0; i < *n; i++) { /* move into our allocator's ownership */
    char *s = ep_strdup(out[i] ? out[i] : "");
    H5free_memory(out[i]);
    out[i] = s;
  }
  EP_CHECK_H5(H5Tclose(t));
  EP_CHECK_H5(H5Tclose(ft));
  EP_CHECK_H5(H5Aclose(a));
  return out;
}

int32_t *h5io_get_attr_i32s(hid_t loc, const char *name, int64_t *n, const char *file) {
  hid_t a = open_attr_1d(loc, name, n, file);
  hid_t ft = H5Aget_type(a);
  EP_CHECK_H5(ft);
  if (H5Tget_class(ft) != H5T_INTEGER) ep_fatal("%s: attribute '%s' should be an integer array", file, name);
  int32_t *out = ep_calloc((size_t)*n + 1, sizeof *out);
  if (*n > 0 && H5Aread(a, H5T_NATIVE_INT32, out) < 0) ep_fatal("%s: cannot read attribute '%s'", file, name);
  EP_CHECK_H5(H5Tclose(ft));
  EP_CHECK_H5(H5Aclose(a));
  return out;
}
