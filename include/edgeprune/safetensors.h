/* safetensors.h — read tensors from .safetensors files (single or sharded).
 *
 * A .safetensors file is an 8-byte little-endian header length N, N bytes of JSON
 * ({"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
 * "__metadata__": {...}}), then the data section; offsets are relative to its start.
 * A sharded checkpoint is a "*.safetensors.index.json" whose "weight_map" names the
 * file holding each tensor (paths relative to the index's folder).
 *
 * Opening parses and validates every header (header length against the file size,
 * dtype known, shape non-negative, offsets inside the data section and equal to
 * shape x dtype size, no duplicate names) and keeps only the tensor directory; data
 * is read tensor by tensor, converted to float32 in bounded chunks, so a model never
 * sits in memory twice. Every problem is a fatal error naming the file and tensor. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define EP_ST_MAX_DIMS 8

typedef enum {
  EP_ST_F32 = 0,
  EP_ST_F16,
  EP_ST_BF16,
  EP_ST_F64,
  EP_ST_OTHER /* a valid safetensors dtype we do not convert (integers, bool, fp8) */
} ep_st_dtype;

typedef struct {
  char *name;
  char dtype_name[8]; /* as written in the header, e.g. "BF16" */
  ep_st_dtype dtype;
  int elem_size; /* bytes per element */
  int ndim;
  int64_t shape[EP_ST_MAX_DIMS];
  int64_t numel;
  uint64_t begin, end; /* byte range inside the data section of its file */
  int file;            /* index into ep_safetensors.files */
} ep_st_tensor;

typedef struct {
  char *source; /* what was opened (the file or the index), for messages */
  int n_files;
  char **files;         /* [n_files] paths */
  uint64_t *data_start; /* [n_files] byte offset of each data section (8 + N) */
  int n_tensors;
  ep_st_tensor *tensors; /* [n_tensors], sorted by name */
} ep_safetensors;

/* Open a .safetensors file or a *.safetensors.index.json (decided by the name ending
 * in ".json"). Fatal error naming the file on any malformed header. */
void safetensors_open(ep_safetensors *st, const char *path);
void safetensors_close(ep_safetensors *st);

/* The tensor called name, or NULL. */
const ep_st_tensor *safetensors_find(const ep_safetensors *st, const char *name);
/* The tensor `name` with exactly this shape (ndim entries); fatal error naming the
 * file, the tensor and both shapes when it is missing or shaped otherwise. */
const ep_st_tensor *safetensors_expect(const ep_safetensors *st, const char *name, int ndim,
                                       const int64_t *shape);
/* "[a, b]" into buf. */
void safetensors_format_shape(char *buf, size_t size, int ndim, const int64_t *shape);
/* The file that holds t (for messages). */
const char *safetensors_file_of(const ep_safetensors *st, const ep_st_tensor *t);

/* Read all t->numel elements of t as float32 into out. Fatal error naming the file and
 * tensor for a dtype we do not convert or a read failure. */
void safetensors_read_f32(const ep_safetensors *st, const ep_st_tensor *t, float *out);
/* Elements [first, first + count) of t (row-major flat index) as float32 into out. */
void safetensors_read_f32_range(const ep_safetensors *st, const ep_st_tensor *t, int64_t first, int64_t count,
                                float *out);

/* Element conversions (exact: every F16/BF16 value is a float32). */
float safetensors_f16_to_f32(uint16_t h);
float safetensors_bf16_to_f32(uint16_t b);
