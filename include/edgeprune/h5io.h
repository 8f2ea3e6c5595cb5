/* h5io.h — small helpers over the HDF5 C API shared by every file format
 * (model, dataset, circuit, checkpoint). Every call is checked; problems are fatal
 * errors naming the file and the object. Datasets are written whole from one rank
 * (serial helpers) unless noted. */
#pragma once

#include <hdf5.h>
#include <stdint.h>

/* Create a new file (truncating) / open an existing one read-only, serial driver. */
hid_t h5io_create(const char *path);
hid_t h5io_open_read(const char *path);
void h5io_close(hid_t file);

/* Create or open a group (intermediate groups created). */
hid_t h5io_group(hid_t loc, const char *name);

/* Whole-dataset writes. dims has ndim entries (ndim 1 or 2 or 3). */
void h5io_write(hid_t loc, const char *name, hid_t mem_type, int ndim, const int64_t *dims,
                const void *data);
#define h5io_write_f32(loc, name, ndim, dims, data) h5io_write(loc, name, H5T_NATIVE_FLOAT, ndim, dims, data)
#define h5io_write_f64(loc, name, ndim, dims, data) h5io_write(loc, name, H5T_NATIVE_DOUBLE, ndim, dims, data)
#define h5io_write_i32(loc, name, ndim, dims, data) h5io_write(loc, name, H5T_NATIVE_INT32, ndim, dims, data)
#define h5io_write_i64(loc, name, ndim, dims, data) h5io_write(loc, name, H5T_NATIVE_INT64, ndim, dims, data)
#define h5io_write_u8(loc, name, ndim, dims, data) h5io_write(loc, name, H5T_NATIVE_UINT8, ndim, dims, data)
/* A 1-D dataset of n variable-length strings. */
void h5io_write_strings(hid_t loc, const char *name, int64_t n, const char *const *strs);

/* 1 when loc has a link `name`. */
int h5io_exists(hid_t loc, const char *name);
/* Rank and dims of a dataset (dims: up to 8). `file` names the file in messages. */
int h5io_dims(hid_t loc, const char *name, int64_t *dims, const char *file);
/* Read a whole dataset, converting to mem_type, after checking its rank and, where
 * expect[i] >= 0, each dimension. Returns a malloc'd buffer. */
void *h5io_read(hid_t loc, const char *name, hid_t mem_type, int ndim, const int64_t *expect,
                int64_t *dims_out, const char *file);
/* Read a 1-D dataset of variable-length strings; *n gets the count; caller frees each
 * string and the array. */
char **h5io_read_strings(hid_t loc, const char *name, int64_t *n, const char *file);

/* Attributes on a file, group or dataset. */
void h5io_attr_str(hid_t loc, const char *name, const char *value);
void h5io_attr_i64(hid_t loc, const char *name, int64_t value);
void h5io_attr_f64(hid_t loc, const char *name, double value);
int h5io_has_attr(hid_t loc, const char *name);
/* Readers: fatal when missing or of the wrong kind; the string is malloc'd. */
char *h5io_get_attr_str(hid_t loc, const char *name, const char *file);
int64_t h5io_get_attr_i64(hid_t loc, const char *name, const char *file);
double h5io_get_attr_f64(hid_t loc, const char *name, const char *file);

/* 1-D array attributes (small: attributes live in the object header, 64 KiB in all). */
void h5io_attr_strs(hid_t loc, const char *name, int64_t n, const char *const *strs);
void h5io_attr_i32s(hid_t loc, const char *name, int64_t n, const int32_t *values);
/* Readers: fatal when missing, of the wrong kind or not 1-D; *n gets the count; the
 * result is malloc'd (strings: each string and the array). */
char **h5io_get_attr_strs(hid_t loc, const char *name, int64_t *n, const char *file);
int32_t *h5io_get_attr_i32s(hid_t loc, const char *name, int64_t *n, const char *file);
