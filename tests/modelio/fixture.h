/* fixture.h — test fixtures written at test time: a tiny independent safetensors
 * writer (with knobs to corrupt the file), random GPT-2 checkpoints with Hugging Face
 * tensor names, and reference float16 / bfloat16 rounding. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define FX_MAX_TENSORS 64

typedef struct {
  char name[96];
  int ndim;
  int64_t shape[2];
  float *data; /* float32 values; the file stores them in the writer's dtype */
} fx_tensor;

typedef struct {
  int n;
  fx_tensor t[FX_MAX_TENSORS];
} fx_set;

/* Ways to damage a file (all off when zeroed). Names refer to fx_tensor names. */
typedef struct {
  const char *skip;     /* leave this tensor out */
  const char *dtype_of; /* give this tensor dtype `dtype` in the header */
  const char *dtype;
  const char *shape_of; /* write this tensor's data with shape[last] + 1 columns */
  const char *span_of;  /* header claims one element more than its shape */
  const char *oob_of;   /* header offsets of this tensor past the data section */
  uint64_t header_len;  /* nonzero: write this header length instead */
  long truncate_to;     /* > 0: cut the file to this many bytes; < 0: drop that many from the end */
} fx_damage;

/* Tiny GPT-2: L layers, H heads, width D, vocab V, context C, MLP 4D. */
typedef struct {
  int L, H, D, V, C;
} fx_gpt2;

/* The Hugging Face tensors of a random GPT-2 (prefix "" or "transformer."). With
 * lm_head, an lm_head.weight [V, D] is added (equal to wte when tied_copy). */
void fx_gpt2_tensors(fx_set *s, const fx_gpt2 *g, uint64_t seed, const char *prefix, int lm_head,
                     int tied_copy);
void fx_set_free(fx_set *s);
const fx_tensor *fx_find(const fx_set *s, const char *name);

/* Write s as safetensors with one dtype ("F32", "F16", "BF16", "F64"); only tensors
 * for which keep(name, arg) is nonzero (keep NULL: all). */
void fx_write_safetensors(const char *path, const fx_set *s, const char *dtype, const fx_damage *dmg,
                          int (*keep)(const char *name, void *arg), void *arg);

/* Append one random tensor ([a] when b == 0, else [a, b]) drawn from *rng. */
void fx_add(fx_set *s, const char *name, int64_t a, int64_t b, uint64_t *rng, float base, float scale);

/* A small synthetic Tracr model DIR/NAME.{config.json,safetensors} exercising what the
 * shipped ones do not: 2 heads of width 2 (D 6), vocabulary ids {0, 1, 3} (V 4, id 2
 * unused), causal, layer 0 with an MLP narrower (3) than mlp_hidden_size (4), layer 1
 * without an MLP, no unembedding. variant 1: value_w wider than query_w; variant 2: a
 * stray layer_2 tensor. The tensors are returned in s. */
void fx_write_tracr(fx_set *s, const char *dir, const char *name, int variant);

/* Tiny Llama: L layers, H query heads, Hkv key/value heads, width D (head D/H), MLP F,
 * vocab V. Writes DIR/config.json (+ `extra` keys, may be NULL; without key `drop`) and
 * DIR/model.safetensors in F32 with Hugging Face names (untied lm_head); s gets the
 * tensors. */
typedef struct {
  int L, H, Hkv, D, F, V;
} fx_llama;
void fx_write_llama(fx_set *s, const char *dir, const fx_llama *g, const char *extra, const char *drop);

/* A GPT-2 config.json for g; `extra` (may be NULL or "") is spliced in as more keys,
 * `drop` (may be NULL) is a key left out. */
void fx_write_gpt2_config(const char *path, const fx_gpt2 *g, const char *extra, const char *drop);

/* Round a float32 to float16 / bfloat16 (round to nearest even) and back, computed
 * independently of the library's converters. */
uint16_t fx_f32_to_f16(float f);
float fx_f16_to_f32(uint16_t h);
uint16_t fx_f32_to_bf16(float f);
float fx_bf16_to_f32(uint16_t b);
/* The float32 the loader should return for v stored as dtype. */
float fx_rounded(float v, const char *dtype);

/* A fresh temporary folder (malloc'd path) and its removal. */
char *fx_tmpdir(void);
void fx_rmdir(const char *dir);
/* mkdir; 1 on success. */
int fx_mkdir(const char *path);
void fx_write_text(const char *path, const char *text);
int fx_exists(const char *path);
/* Number of entries in dir whose name contains `part`. */
int fx_count_matching(const char *dir, const char *part);
/* Whole file into a malloc'd buffer; *len gets its size; NULL when unreadable. */
unsigned char *fx_slurp(const char *path, size_t *len);
