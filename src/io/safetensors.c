/* safetensors.c — see safetensors.h. */
#define _POSIX_C_SOURCE 200809L
#include "edgeprune/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "edgeprune/core.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c reads little-endian data in place; add byte swapping for this host"
#endif

/* The format caps the JSON header at 100 MB; a larger value means a corrupt file. */
#define ST_MAX_HEADER ((uint64_t)100 << 20)
/* Bytes converted per read while streaming a non-F32 tensor. */
#define ST_CHUNK ((size_t)1 << 20)

typedef struct {
  const char *name;
  ep_st_dtype dtype;
  int size;
} st_dtype_info;

/* Every dtype the safetensors format defines; only the first four are converted. */
static const st_dtype_info st_dtypes[] = {
    {"F32", EP_ST_F32, 4},    {"F16", EP_ST_F16, 2},       {"BF16", EP_ST_BF16, 2},
    {"F64", EP_ST_F64, 8},    {"I64", EP_ST_OTHER, 8},     {"U64", EP_ST_OTHER, 8},
    {"I32", EP_ST_OTHER, 4},  {"U32", EP_ST_OTHER, 4},     {"I16", EP_ST_OTHER, 2},
    {"U16", EP_ST_OTHER, 2},  {"I8", EP_ST_OTHER, 1},      {"U8", EP_ST_OTHER, 1},
    {"BOOL", EP_ST_OTHER, 1}, {"F8_E4M3", EP_ST_OTHER, 1}, {"F8_E5M2", EP_ST_OTHER, 1},
};

float safetensors_bf16_to_f32(uint16_t b) {
  uint32_t u = (uint32_t)b << 16;
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

float safetensors_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, u;
  if (exp == 0x1f) { /* inf / nan, payload kept */
    u = sign | 0x7f800000u | (man << 13);
  } else if (exp != 0) { /* normal: rebias 15 -> 127 */
    u = sign | ((exp + 112u) << 23) | (man << 13);
  } else if (man == 0) { /* signed zero */
    u = sign;
  } else { /* subnormal: normalise the mantissa */
    int e = -1;
    do {
      e++;
      man <<= 1;
    } while (!(man & 0x400u));
    u = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ffu) << 13);
  }
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

static int cmp_tensor_name(const void *a, const void *b) {
  return strcmp(((const ep_st_tensor *)a)->name, ((const ep_st_tensor *)b)->name);
}

/* A JSON number that is a non-negative integer representable exactly in a double. */
static int json_uint(const cJSON *j, uint64_t *out) {
  if (!cJSON_IsNumber(j)) return 0;
  double v = j->valuedouble;
  if (!(v >= 0) || v > 9007199254740992.0 || floor(v) != v) return 0;
  *out = (uint64_t)v;
  return 1;
}

static uint64_t file_size_or_die(const char *path) {
  struct stat sb;
  if (stat(path, &sb) != 0) ep_fatal("cannot open safetensors file '%s': %s", path, strerror(errno));
  if (!S_ISREG(sb.st_mode)) ep_fatal("'%s' is not a regular file", path);
  return (uint64_t)sb.st_size;
}

/* Parse one file's header and append its tensors. With `only` (a weight_map), tensors
 * it does not assign to this file are skipped. */
static void st_add_file(ep_safetensors *st, const char *path, const cJSON *only, const char *only_name) {
  uint64_t fsize = file_size_or_die(path);
  if (fsize < 8)
    ep_fatal("%s: truncated safetensors file (%llu bytes, shorter than the 8-byte header length)", path,
             (unsigned long long)fsize);
  FILE *f = fopen(path, "rb");
  if (!f) ep_fatal("cannot open safetensors file '%s': %s", path, strerror(errno));
  unsigned char lenb[8];
  if (fread(lenb, 1, 8, f) != 8) ep_fatal("%s: cannot read the header length", path);
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--)
    hlen = (hlen << 8) | lenb[i];
  if (hlen > fsize - 8)
    ep_fatal("%s: header length %llu exceeds the file size (%llu bytes): truncated or not a safetensors file",
             path, (unsigned long long)hlen, (unsigned long long)fsize);
  if (hlen > ST_MAX_HEADER || hlen < 2)
    ep_fatal("%s: implausible header length %llu (not a safetensors file?)", path, (unsigned long long)hlen);
  char *hdr = ep_malloc((size_t)hlen + 1);
  if (fread(hdr, 1, (size_t)hlen, f) != (size_t)hlen)
    ep_fatal("%s: cannot read the %llu-byte header", path, (unsigned long long)hlen);
  hdr[hlen] = '\0';
  fclose(f);
  const uint64_t data_size = fsize - 8 - hlen;

  cJSON *root = cJSON_ParseWithLength(hdr, (size_t)hlen);
  if (!root)
    ep_fatal("%s: the header is not valid JSON (near byte %ld of the header)", path,
             (long)(cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() - hdr : -1));
  if (!cJSON_IsObject(root)) ep_fatal("%s: the header is not a JSON object", path);

  int fi = st->n_files++;
  st->files = ep_realloc(st->files, (size_t)st->n_files * sizeof *st->files);
  st->data_start = ep_realloc(st->data_start, (size_t)st->n_files * sizeof *st->data_start);
  st->files[fi] = ep_strdup(path);
  st->data_start[fi] = 8 + hlen;

  const cJSON *e;
  cJSON_ArrayForEach(e, root) {
    const char *name = e->string;
    if (!strcmp(name, "__metadata__")) continue;
    if (only) {
      const cJSON *where = cJSON_GetObjectItemCaseSensitive(only, name);
      if (!cJSON_IsString(where) || strcmp(where->valuestring, only_name) != 0) continue;
    }
    if (!cJSON_IsObject(e)) ep_fatal("%s: tensor '%s': entry is not a JSON object", path, name);
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(jd)) ep_fatal("%s: tensor '%s': 'dtype' missing or not a string", path, name);
    if (!cJSON_IsArray(js)) ep_fatal("%s: tensor '%s': 'shape' missing or not an array", path, name);
    if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2)
      ep_fatal("%s: tensor '%s': 'data_offsets' missing or not a [begin, end] pair", path, name);

    ep_st_tensor t;
    memset(&t, 0, sizeof t);
    const st_dtype_info *di = NULL;
    for (size_t k = 0; k < sizeof st_dtypes / sizeof *st_dtypes; k++)
      if (!strcmp(jd->valuestring, st_dtypes[k].name)) di = &st_dtypes[k];
    if (!di) ep_fatal("%s: tensor '%s': unknown dtype '%s'", path, name, jd->valuestring);
    snprintf(t.dtype_name, sizeof t.dtype_name, "%s", di->name);
    t.dtype = di->dtype;
    t.elem_size = di->size;

    t.ndim = cJSON_GetArraySize(js);
    if (t.ndim > EP_ST_MAX_DIMS)
      ep_fatal("%s: tensor '%s': rank %d (at most %d supported)", path, name, t.ndim, EP_ST_MAX_DIMS);
    uint64_t numel = 1;
    for (int d = 0; d < t.ndim; d++) {
      uint64_t v;
      if (!json_uint(cJSON_GetArrayItem(js, d), &v) || v > ((uint64_t)1 << 40))
        ep_fatal("%s: tensor '%s': shape entry %d is not a valid size", path, name, d);
      t.shape[d] = (int64_t)v;
      if (v && numel > UINT64_MAX / v / 8) ep_fatal("%s: tensor '%s': shape too large", path, name);
      numel *= v;
    }
    t.numel = (int64_t)numel;
    if (!json_uint(cJSON_GetArrayItem(jo, 0), &t.begin) || !json_uint(cJSON_GetArrayItem(jo, 1), &t.end))
      ep_fatal("%s: tensor '%s': data_offsets must be non-negative integers", path, name);
    if (t.begin > t.end || t.end > data_size)
      ep_fatal("%s: tensor '%s': data_offsets [%llu, %llu] out of bounds of the %llu-byte data section", path,
               name, (unsigned long long)t.begin, (unsigned long long)t.end, (unsigned long long)data_size);
    if (t.end - t.begin != numel * (uint64_t)t.elem_size)
      ep_fatal("%s: tensor '%s': data_offsets span %llu bytes but shape x %s needs %llu", path, name,
               (unsigned long long)(t.end - t.begin), t.dtype_name,
               (unsigned long long)(numel * (uint64_t)t.elem_size));
    t.file = fi;
    t.name = ep_strdup(name);
    st->tensors = ep_realloc(st->tensors, (size_t)(st->n_tensors + 1) * sizeof *st->tensors);
    st->tensors[st->n_tensors++] = t;
  }
  cJSON_Delete(root);
  free(hdr);
}

/* Directory part of path ("." when none), malloc'd. */
static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return ep_strdup(".");
  size_t n = (size_t)(slash - path);
  if (n == 0) n = 1; /* "/file" */
  char *d = ep_malloc(n + 1);
  memcpy(d, path, n);
  d[n] = '\0';
  return d;
}

static void st_open_index(ep_safetensors *st, const char *path) {
  size_t len = 0;
  char *text = ep_read_file(path, &len);
  cJSON *root = cJSON_ParseWithLength(text, len);
  if (!root || !cJSON_IsObject(root)) ep_fatal("%s: not a valid JSON object", path);
  const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
  if (!cJSON_IsObject(map)) ep_fatal("%s: key 'weight_map' missing or not an object", path);
  char *dir = dir_of(path);
  /* Each distinct shard once, in order of first appearance. */
  const cJSON *e;
  int n_seen = 0;
  const char **seen = NULL;
  cJSON_ArrayForEach(e, map) {
    if (!cJSON_IsString(e)) ep_fatal("%s: weight_map entry '%s' is not a file name string", path, e->string);
    if (strchr(e->valuestring, '/') || !strcmp(e->valuestring, ".."))
      ep_fatal("%s: weight_map entry '%s' names '%s', which is not a plain file name", path, e->string,
               e->valuestring);
    int dup = 0;
    for (int i = 0; i < n_seen; i++)
      dup |= !strcmp(seen[i], e->valuestring);
    if (dup) continue;
    seen = ep_realloc(seen, (size_t)(n_seen + 1) * sizeof *seen);
    seen[n_seen++] = e->valuestring;
    char *shard = ep_path_join(dir, e->valuestring);
    st_add_file(st, shard, map, e->valuestring);
    free(shard);
  }
  /* Every tensor the index promises must be in its shard. */
  qsort(st->tensors, (size_t)st->n_tensors, sizeof *st->tensors, cmp_tensor_name);
  cJSON_ArrayForEach(e, map) {
    if (!safetensors_find(st, e->string)) {
      char *shard = ep_path_join(dir, e->valuestring);
      ep_fatal("%s: tensor '%s' is listed in the index but missing from %s", path, e->string, shard);
    }
  }
  free(seen);
  free(dir);
  cJSON_Delete(root);
  free(text);
}

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && !strcmp(s + a - b, suffix);
}

void safetensors_open(ep_safetensors *st, const char *path) {
  memset(st, 0, sizeof *st);
  st->source = ep_strdup(path);
  if (ends_with(path, ".json")) {
    st_open_index(st, path);
  } else {
    st_add_file(st, path, NULL, NULL);
    qsort(st->tensors, (size_t)st->n_tensors, sizeof *st->tensors, cmp_tensor_name);
  }
  for (int i = 1; i < st->n_tensors; i++)
    if (!strcmp(st->tensors[i - 1].name, st->tensors[i].name))
      ep_fatal("%s: tensor '%s' appears twice", path, st->tensors[i].name);
}

void safetensors_close(ep_safetensors *st) {
  for (int i = 0; i < st->n_tensors; i++)
    free(st->tensors[i].name);
  for (int i = 0; i < st->n_files; i++)
    free(st->files[i]);
  free(st->tensors);
  free(st->files);
  free(st->data_start);
  free(st->source);
  memset(st, 0, sizeof *st);
}

const ep_st_tensor *safetensors_find(const ep_safetensors *st, const char *name) {
  ep_st_tensor key;
  key.name = (char *)name;
  return bsearch(&key, st->tensors, (size_t)st->n_tensors, sizeof *st->tensors, cmp_tensor_name);
}

void safetensors_format_shape(char *buf, size_t size, int ndim, const int64_t *shape) {
  size_t k = (size_t)snprintf(buf, size, "[");
  for (int i = 0; i < ndim && k < size; i++)
    k += (size_t)snprintf(buf + k, size - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
  if (k < size) snprintf(buf + k, size - k, "]");
}

const ep_st_tensor *safetensors_expect(const ep_safetensors *st, const char *name, int ndim,
                                       const int64_t *shape) {
  const ep_st_tensor *t = safetensors_find(st, name);
  if (!t) ep_fatal("%s: tensor '%s' is missing", st->source, name);
  int same = t->ndim == ndim;
  for (int i = 0; same && i < ndim; i++)
    same = t->shape[i] == shape[i];
  if (!same) {
    char got[160], want[160];
    safetensors_format_shape(got, sizeof got, t->ndim, t->shape);
    safetensors_format_shape(want, sizeof want, ndim, shape);
    ep_fatal("%s: tensor '%s' has shape %s, expected %s", st->files[t->file], name, got, want);
  }
  return t;
}

const char *safetensors_file_of(const ep_safetensors *st, const ep_st_tensor *t) {
  return st->files[t->file];
}

/* Convert n elements of dtype from src to float32. */
static void convert_chunk(ep_st_dtype dtype, const unsigned char *src, float *dst, size_t n) {
  switch (dtype) {
  case EP_ST_F16:
    for (size_t i = 0; i < n; i++) {
      uint16_t h;
      memcpy(&h, src + 2 * i, 2);
      dst[i] = safetensors_f16_to_f32(h);
    }
    break;
  case EP_ST_BF16:
    for (size_t i = 0; i < n; i++) {
      uint16_t h;
      memcpy(&h, src + 2 * i, 2);
      dst[i] = safetensors_bf16_to_f32(h);
    }
    break;
  case EP_ST_F64:
    for (size_t i = 0; i < n; i++) {
      double d;
      memcpy(&d, src + 8 * i, 8);
      dst[i] = (float)d;
    }
    break;
  default:
    ep_fatal("internal: convert_chunk called for dtype %d", (int)dtype);
  }
}

void safetensors_read_f32(const ep_safetensors *st, const ep_st_tensor *t, float *out) {
  safetensors_read_f32_range(st, t, 0, t->numel, out);
}

void safetensors_read_f32_range(const ep_safetensors *st, const ep_st_tensor *t, int64_t first, int64_t count,
                                float *out) {
  const char *path = st->files[t->file];
  if (t->dtype == EP_ST_OTHER)
    ep_fatal("%s: tensor '%s' has dtype %s; only F32, F16, BF16 and F64 can be loaded", path, t->name,
             t->dtype_name);
  EP_CHECK(first >= 0 && count >= 0 && first + count <= t->numel,
           "%s: tensor '%s': elements [%lld, %lld) requested of %lld", path, t->name, (long long)first,
           (long long)(first + count), (long long)t->numel);
  if (count == 0) return;
  FILE *f = fopen(path, "rb");
  if (!f) ep_fatal("cannot open safetensors file '%s': %s", path, strerror(errno));
  uint64_t at = st->data_start[t->file] + t->begin + (uint64_t)first * (uint64_t)t->elem_size;
  if (fseeko(f, (off_t)at, SEEK_SET) != 0)
    ep_fatal("%s: cannot seek to tensor '%s': %s", path, t->name, strerror(errno));
  size_t n = (size_t)count;
  if (t->dtype == EP_ST_F32) {
    if (fread(out, sizeof(float), n, f) != n)
      ep_fatal("%s: tensor '%s': short read (file truncated or unreadable)", path, t->name);
  } else {
    size_t per = ST_CHUNK / (size_t)t->elem_size;
    unsigned char *buf = ep_malloc(per * (size_t)t->elem_size);
    for (size_t done = 0; done < n;) {
      size_t k = n - done < per ? n - done : per;
      if (fread(buf, (size_t)t->elem_size, k, f) != k)
        ep_fatal("%s: tensor '%s': short read (file truncated or unreadable)", path, t->name);
      convert_chunk(t->dtype, buf, out + done, k);
      done += k;
    }
    free(buf);
  }
  fclose(f);
}
