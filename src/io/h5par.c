/* h5par.c — see h5par.h. */
#include "edgeprune/h5par.h"

#include <stdlib.h>
#include <string.h>

#include "edgeprune/core.h"
#include "edgeprune/h5io.h"

static hid_t h5par_fapl(MPI_Comm comm) {
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  EP_CHECK_H5(fapl);
  EP_CHECK_H5(H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL));
  /* Metadata reads by one rank + broadcast, metadata writes collective: the SWIFT
   * setting that keeps thousands of ranks off the metadata server. */
  EP_CHECK_H5(H5Pset_all_coll_metadata_ops(fapl, 1));
  EP_CHECK_H5(H5Pset_coll_metadata_write(fapl, 1));
  /* 1.8 format or newer: attributes over 64 KiB (a long resolved deck) go to dense
   * storage instead of failing. */
  EP_CHECK_H5(H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST));
  return fapl;
}

hid_t h5par_create(const char *path, MPI_Comm comm) {
  hid_t fapl = h5par_fapl(comm);
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  if (f < 0) ep_fatal("cannot create HDF5 file '%s' (parallel)", path);
  EP_CHECK_H5(H5Pclose(fapl));
  return f;
}

hid_t h5par_open(const char *path, MPI_Comm comm, int writable) {
  hid_t fapl = h5par_fapl(comm);
  hid_t f = -1;
  H5E_BEGIN_TRY {
    f = H5Fopen(path, writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY, fapl);
  }
  H5E_END_TRY;
  if (f < 0) ep_fatal("cannot open '%s' as an HDF5 file (missing, unreadable or not HDF5)", path);
  EP_CHECK_H5(H5Pclose(fapl));
  return f;
}

void h5par_close(hid_t file) {
  EP_CHECK_H5(H5Fclose(file));
}

static hid_t h5par_dxpl(void) {
  hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
  EP_CHECK_H5(dxpl);
  EP_CHECK_H5(H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE));
  return dxpl;
}

static hid_t h5par_create_dataset(hid_t loc, const char *name, hid_t type, hid_t space) {
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  EP_CHECK_H5(lcpl);
  EP_CHECK_H5(H5Pset_create_intermediate_group(lcpl, 1));
  hid_t ds = H5Dcreate2(loc, name, type, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
  if (ds < 0) ep_fatal("cannot create dataset '%s'", name);
  EP_CHECK_H5(H5Pclose(lcpl));
  return ds;
}

int64_t h5par_write_rows(hid_t loc, const char *name, hid_t mem_type, int64_t rows, int64_t cols,
                         const void *data, MPI_Comm comm) {
  EP_CHECK(rows >= 0 && cols >= 0, "dataset '%s': negative shape (%lld rows, %lld cols)", name,
           (long long)rows, (long long)cols);
  int rank = 0;
  EP_CHECK_MPI(MPI_Comm_rank(comm, &rank));
  long long mine = rows, offset = 0, total = 0, c[2] = {cols, -cols}, cmax[2];
  EP_CHECK_MPI(MPI_Exscan(&mine, &offset, 1, MPI_LONG_LONG, MPI_SUM, comm));
  if (rank == 0) offset = 0; /* MPI_Exscan leaves rank 0's result undefined */
  EP_CHECK_MPI(MPI_Allreduce(&mine, &total, 1, MPI_LONG_LONG, MPI_SUM, comm));
  EP_CHECK_MPI(MPI_Allreduce(c, cmax, 2, MPI_LONG_LONG, MPI_MAX, comm));
  EP_CHECK(cmax[0] == -cmax[1], "dataset '%s': ranks disagree on the row length (%lld vs %lld)", name,
           cmax[0], -cmax[1]);

  int ndim = cols > 0 ? 2 : 1;
  hsize_t fdims[2] = {(hsize_t)total, (hsize_t)cols}, mdims[2] = {(hsize_t)rows, (hsize_t)cols};
  hid_t fspace = H5Screate_simple(ndim, fdims, NULL);
  EP_CHECK_H5(fspace);
  hid_t ds = h5par_create_dataset(loc, name, mem_type, fspace);
  hid_t mspace = H5Screate_simple(ndim, mdims, NULL);
  EP_CHECK_H5(mspace);
  if (rows > 0) {
    hsize_t start[2] = {(hsize_t)offset, 0}, count[2] = {(hsize_t)rows, (hsize_t)cols};
    EP_CHECK_H5(H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL));
  } else {
    /* Nothing to write, but the collective transfer needs every rank. */
    EP_CHECK_H5(H5Sselect_none(fspace));
    EP_CHECK_H5(H5Sselect_none(mspace));
  }
  static const char dummy[16];
  /* An empty dataset has no storage to write to; every rank knows total, so all skip. */
  if (total * (cols > 0 ? cols : 1) > 0) {
    hid_t dxpl = h5par_dxpl();
    EP_CHECK_H5(H5Dwrite(ds, mem_type, mspace, fspace, dxpl, rows > 0 ? data : dummy));
    EP_CHECK_H5(H5Pclose(dxpl));
  }
  EP_CHECK_H5(H5Sclose(mspace));
  EP_CHECK_H5(H5Sclose(fspace));
  EP_CHECK_H5(H5Dclose(ds));
  return (int64_t)total;
}

void h5par_write_replicated(hid_t loc, const char *name, hid_t mem_type, int ndim, const int64_t *dims,
                            const void *data, MPI_Comm comm) {
  EP_CHECK(ndim >= 1 && ndim <= 8, "dataset '%s': bad rank %d", name, ndim);
  int rank = 0;
  EP_CHECK_MPI(MPI_Comm_rank(comm, &rank));
  hsize_t hd[8], n_elems = 1;
  for (int i = 0; i < ndim; i++) {
    hd[i] = (hsize_t)dims[i];
    n_elems *= hd[i];
  }
  hid_t fspace = H5Screate_simple(ndim, hd, NULL);
  EP_CHECK_H5(fspace);
  hid_t ds = h5par_create_dataset(loc, name, mem_type, fspace);
  hid_t mspace = H5Scopy(fspace);
  EP_CHECK_H5(mspace);
  if (rank != 0) {
    EP_CHECK_H5(H5Sselect_none(fspace));
    EP_CHECK_H5(H5Sselect_none(mspace));
  }
  static const char dummy[16];
  if (n_elems > 0) { /* an empty dataset has no storage to write */
    hid_t dxpl = h5par_dxpl();
    EP_CHECK_H5(H5Dwrite(ds, mem_type, mspace, fspace, dxpl, (rank == 0 && data) ? data : dummy));
    EP_CHECK_H5(H5Pclose(dxpl));
  }
  EP_CHECK_H5(H5Sclose(mspace));
  EP_CHECK_H5(H5Sclose(fspace));
  EP_CHECK_H5(H5Dclose(ds));
}

int h5par_dims(hid_t loc, const char *name, int64_t *dims, const char *file) {
  if (!h5io_exists(loc, name)) ep_fatal("%s: dataset '%s' is missing", file, name);
  hid_t ds = H5Dopen2(loc, name, H5P_DEFAULT);
  EP_CHECK_H5(ds);
  hid_t space = H5Dget_space(ds);
  EP_CHECK_H5(space);
  int nd = H5Sget_simple_extent_ndims(space);
  EP_CHECK_H5(nd);
  EP_CHECK(nd <= 8, "%s: dataset '%s' has rank %d (> 8)", file, name, nd);
  hsize_t hd[8];
  EP_CHECK_H5(H5Sget_simple_extent_dims(space, hd, NULL));
  for (int i = 0; i < nd; i++)
    dims[i] = (int64_t)hd[i];
  EP_CHECK_H5(H5Sclose(space));
  EP_CHECK_H5(H5Dclose(ds));
  return nd;
}

void h5par_read_rows(hid_t loc, const char *name, hid_t mem_type, int64_t first, int64_t count, void *out,
                     const char *file) {
  int64_t dims[8];
  int nd = h5par_dims(loc, name, dims, file);
  if (nd != 1 && nd != 2) ep_fatal("%s: dataset '%s' has rank %d, expected 1 or 2", file, name, nd);
  if (first < 0 || count < 0 || first + count > dims[0])
    ep_fatal("%s: dataset '%s': rows [%lld, %lld) are outside its %lld rows", file, name, (long long)first,
             (long long)(first + count), (long long)dims[0]);
  hid_t ds = H5Dopen2(loc, name, H5P_DEFAULT);
  EP_CHECK_H5(ds);
  hid_t fspace = H5Dget_space(ds);
  EP_CHECK_H5(fspace);
  hsize_t mdims[2] = {(hsize_t)count, nd == 2 ? (hsize_t)dims[1] : 1};
  hid_t mspace = H5Screate_simple(nd, mdims, NULL);
  EP_CHECK_H5(mspace);
  if (count > 0) {
    hsize_t start[2] = {(hsize_t)first, 0}, cnt[2] = {(hsize_t)count, mdims[1]};
    EP_CHECK_H5(H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, cnt, NULL));
  } else {
    EP_CHECK_H5(H5Sselect_none(fspace));
    EP_CHECK_H5(H5Sselect_none(mspace));
  }
  static char dummy[16];
  if (dims[0] > 0 && (nd == 1 || dims[1] > 0)) { /* same on every rank: all read or none */
    hid_t dxpl = h5par_dxpl();
    EP_CHECK_H5(H5Dread(ds, mem_type, mspace, fspace, dxpl, count > 0 ? out : dummy));
    EP_CHECK_H5(H5Pclose(dxpl));
  }
  EP_CHECK_H5(H5Sclose(mspace));
  EP_CHECK_H5(H5Sclose(fspace));
  EP_CHECK_H5(H5Dclose(ds));
}

void h5par_read_all(hid_t loc, const char *name, hid_t mem_type, void *out, const char *file) {
  if (!h5io_exists(loc, name)) ep_fatal("%s: dataset '%s' is missing", file, name);
  hid_t ds = H5Dopen2(loc, name, H5P_DEFAULT);
  EP_CHECK_H5(ds);
  hid_t space = H5Dget_space(ds);
  EP_CHECK_H5(space);
  hssize_t n = H5Sget_simple_extent_npoints(space);
  EP_CHECK_H5(n);
  EP_CHECK_H5(H5Sclose(space));
  if (n > 0) { /* an empty dataset has no storage to read */
    hid_t dxpl = h5par_dxpl();
    if (H5Dread(ds, mem_type, H5S_ALL, H5S_ALL, dxpl, out) < 0)
      ep_fatal("%s: cannot read dataset '%s' (corrupt file or wrong type)", file, name);
    EP_CHECK_H5(H5Pclose(dxpl));
  }
  EP_CHECK_H5(H5Dclose(ds));
}

/* Create (or replace) attribute `name` of type `type` and shape [n] (n = 0: scalar). */
static void h5par_attr_write(hid_t loc, const char *name, hid_t type, hsize_t n, const void *value) {
  if (h5io_has_attr(loc, name)) EP_CHECK_H5(H5Adelete(loc, name));
  hid_t space = n ? H5Screate_simple(1, &n, NULL) : H5Screate(H5S_SCALAR);
  EP_CHECK_H5(space);
  hid_t a = H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
  if (a < 0) ep_fatal("cannot create attribute '%s'", name);
  EP_CHECK_H5(H5Awrite(a, type, value));
  EP_CHECK_H5(H5Aclose(a));
  EP_CHECK_H5(H5Sclose(space));
}

void h5par_attr_i64(hid_t loc, const char *name, int64_t value, MPI_Comm comm) {
  EP_CHECK_MPI(MPI_Bcast(&value, 1, MPI_INT64_T, 0, comm));
  h5par_attr_write(loc, name, H5T_NATIVE_INT64, 0, &value);
}

void h5par_attr_u64(hid_t loc, const char *name, uint64_t value, MPI_Comm comm) {
  EP_CHECK_MPI(MPI_Bcast(&value, 1, MPI_UINT64_T, 0, comm));
  h5par_attr_write(loc, name, H5T_NATIVE_UINT64, 0, &value);
}

void h5par_attr_f64(hid_t loc, const char *name, double value, MPI_Comm comm) {
  EP_CHECK_MPI(MPI_Bcast(&value, 1, MPI_DOUBLE, 0, comm));
  h5par_attr_write(loc, name, H5T_NATIVE_DOUBLE, 0, &value);
}

void h5par_attr_u64_array(hid_t loc, const char *name, int n, const uint64_t *values, MPI_Comm comm) {
  EP_CHECK(n >= 1, "attribute '%s': empty array", name);
  uint64_t *v = ep_malloc((size_t)n * sizeof *v);
  memcpy(v, values, (size_t)n * sizeof *v);
  EP_CHECK_MPI(MPI_Bcast(v, n, MPI_UINT64_T, 0, comm));
  h5par_attr_write(loc, name, H5T_NATIVE_UINT64, (hsize_t)n, v);
  free(v);
}

void h5par_attr_str(hid_t loc, const char *name, const char *value, MPI_Comm comm) {
  int rank = 0;
  EP_CHECK_MPI(MPI_Comm_rank(comm, &rank));
  long long len = rank == 0 ? (long long)strlen(value) : 0;
  EP_CHECK_MPI(MPI_Bcast(&len, 1, MPI_LONG_LONG, 0, comm));
  char *s = ep_malloc((size_t)len + 1);
  if (rank == 0) memcpy(s, value, (size_t)len + 1);
  /* Strings are broadcast in pieces MPI's int count can hold. */
  for (long long off = 0; off < len + 1; off += 1 << 30) {
    long long c = len + 1 - off < (1 << 30) ? len + 1 - off : (1 << 30);
    EP_CHECK_MPI(MPI_Bcast(s + off, (int)c, MPI_CHAR, 0, comm));
  }
  /* A fixed-length string type of the exact size (variable-length strings cannot be
   * written in parallel). */
  hid_t t = H5Tcopy(H5T_C_S1);
  EP_CHECK_H5(t);
  EP_CHECK_H5(H5Tset_size(t, (size_t)len + 1));
  EP_CHECK_H5(H5Tset_strpad(t, H5T_STR_NULLTERM));
  h5par_attr_write(loc, name, t, 0, s);
  EP_CHECK_H5(H5Tclose(t));
  free(s);
}
