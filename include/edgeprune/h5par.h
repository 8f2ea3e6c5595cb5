/* h5par.h — collective parallel HDF5 (MPI-IO driver), after SWIFT's pattern.
 *
 * Files are opened by every rank of `comm` with H5Pset_fapl_mpio and collective
 * metadata reads and writes; data transfers use H5FD_MPIO_COLLECTIVE. Every function
 * here is collective over the file's communicator: every rank calls it, in the same
 * order, with the same name (a rank with nothing to write still calls, and joins
 * with an empty selection). Datasets are 1-D [rows] or 2-D [rows, cols]. */
#pragma once

#include <hdf5.h>
#include <mpi.h>
#include <stdint.h>

/* Create (truncating) / open an existing file on every rank of comm. Fatal naming
 * the file when that fails. */
hid_t h5par_create(const char *path, MPI_Comm comm);
hid_t h5par_open(const char *path, MPI_Comm comm, int writable);
void h5par_close(hid_t file);

/* A distributed array: this rank holds `rows` rows of `cols` values (cols = 0 means a
 * 1-D dataset). Rows are stacked in rank order (offsets from MPI_Exscan); rows may be
 * 0 on some ranks. Every rank must pass the same cols. Returns the global row count. */
int64_t h5par_write_rows(hid_t loc, const char *name, hid_t mem_type, int64_t rows, int64_t cols,
                         const void *data, MPI_Comm comm);

/* A replicated array (every rank holds the same data): one copy is written, by rank 0
 * of comm, inside a collective call. dims has ndim (1..8) entries. */
void h5par_write_replicated(hid_t loc, const char *name, hid_t mem_type, int ndim, const int64_t *dims,
                            const void *data, MPI_Comm comm);

/* Dims of a dataset (up to 8); returns the rank. Fatal naming `file` when missing. */
int h5par_dims(hid_t loc, const char *name, int64_t *dims, const char *file);

/* Read rows [first, first + count) of a 1-D or 2-D dataset into out (count * cols
 * values, cols = 1 for 1-D); count may be 0. Fatal when the range is outside the
 * dataset. Collective. */
void h5par_read_rows(hid_t loc, const char *name, hid_t mem_type, int64_t first, int64_t count, void *out,
                     const char *file);
/* Read a whole dataset on every rank (collective). out must hold every element. */
void h5par_read_all(hid_t loc, const char *name, hid_t mem_type, void *out, const char *file);

/* Attributes, written collectively. The value of rank 0 of comm is broadcast first,
 * so every rank writes identical metadata even if callers disagree. */
void h5par_attr_i64(hid_t loc, const char *name, int64_t value, MPI_Comm comm);
void h5par_attr_u64(hid_t loc, const char *name, uint64_t value, MPI_Comm comm);
void h5par_attr_f64(hid_t loc, const char *name, double value, MPI_Comm comm);
void h5par_attr_str(hid_t loc, const char *name, const char *value, MPI_Comm comm);
/* A 1-D uint64 attribute of n values (n >= 1). */
void h5par_attr_u64_array(hid_t loc, const char *name, int n, const uint64_t *values, MPI_Comm comm);
