/* cache.cu — prepare() outputs of examples seen before, kept on the device.
 *
 * Training revisits the same examples every epoch (the IOI splits have 200-400), and
 * what prepare computes per example does not depend on the masks: the clean model's
 * logits at its loss positions (with their log-sum-exp) and, for interchange ablation,
 * every writer's output on its corrupted tokens. Entries are keyed by the example's
 * content (length, loss range, clean and corrupted tokens up to its length), compared
 * exactly, and hold its first `length` positions, so an example is found again whatever
 * its batch is padded to. Positions at or past an example's length cannot reach the loss
 * (they are masked as keys, and only loss positions are scored) and get a gradient of
 * exactly 0, so a hit gathers zeros there and the step's loss and gradients are the bits
 * recomputation gives. Entries live in
 * device chunks of at most CACHE_CHUNK bytes allocated on demand up to the budget; once
 * the budget is used, further examples are recomputed every time (no eviction: the
 * cached set stays fixed and the hit pattern deterministic). Only the kl / kl_sum losses
 * (clean logits on the device) use the cache. */
#include <string.h>

#include <type_traits>

#include "cuda_internal.h"
#include "cuda_util.cuh"

#define CACHE_CHUNK ((size_t)256 << 20)

typedef struct {
  int len, ls, le;
  int32_t *tok; /* host copy [2, len]: clean, corrupted (exact match check) */
  float *c;     /* device [W, len, D] corrupted writer outputs (interchange), or NULL */
  float *tgt;   /* device [le - ls, Vo] clean logits at the loss positions */
  double *lse;  /* device [le - ls] */
} cache_entry;

struct cu_cache {
  size_t budget, used;     /* bytes of device chunks allowed / allocated */
  char *chunk;             /* current chunk */
  size_t chunk_size, chunk_off;
  void **chunks;
  int n_chunks;
  cache_entry *ent;
  int64_t n_ent, cap_ent;
  int64_t *slot; /* hash table of entry indices (-1 empty), open addressing */
  uint64_t *key;
  int64_t n_slot;
  int full;           /* the budget is used: stop storing */
  int64_t hits, misses;
  const void **hptr; /* pinned [Bmax + 2 Bmax Tmax]: a fetch's source pointers (c per example,
                        then clean-logit rows and lse per loss position) */
  const void **dptr; /* device copy */
};

static uint64_t mix64(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  h *= 0xff51afd7ed558ccdull;
  return h ^ (h >> 33);
}

static uint64_t example_key(const ep_batch *bt, int b) {
  const int T = bt->T, len = bt->length[b];
  uint64_t h = mix64(0x51ed270b27ull, (uint64_t)len);
  h = mix64(h, ((uint64_t)(uint32_t)bt->loss_start[b] << 32) | (uint32_t)bt->loss_end[b]);
  for (int t = 0; t < len; t++) h = mix64(h, (uint32_t)bt->clean[(size_t)b * T + t]);
  if (bt->corrupted)
    for (int t = 0; t < len; t++) h = mix64(h, (uint32_t)bt->corrupted[(size_t)b * T + t]);
  return h;
}

static int entry_matches(const cache_entry *e, const ep_batch *bt, int b) {
  const int T = bt->T, len = e->len;
  if (len != bt->length[b] || e->ls != bt->loss_start[b] || e->le != bt->loss_end[b]) return 0;
  if (memcmp(e->tok, bt->clean + (size_t)b * T, (size_t)len * sizeof(int32_t))) return 0;
  return !bt->corrupted || !memcmp(e->tok + len, bt->corrupted + (size_t)b * T, (size_t)len * sizeof(int32_t));
}

/* Entry index of example b, or -1; *pos gets the table slot (where to insert on a miss). */
static int64_t cache_find(const cu_cache *cc, const ep_batch *bt, int b, uint64_t k, int64_t *pos) {
  int64_t i = (int64_t)(k & (uint64_t)(cc->n_slot - 1));
  while (cc->slot[i] >= 0) {
    if (cc->key[i] == k && entry_matches(&cc->ent[cc->slot[i]], bt, b)) {
      *pos = i;
      return cc->slot[i];
    }
    i = (i + 1) & (cc->n_slot - 1);
  }
  *pos = i;
  return -1;
}

/* Device bytes from the chunks (256-byte aligned), or NULL when the budget is used. */
static void *cache_carve(cu_ws *ws, cu_cache *cc, size_t bytes) {
  bytes = (bytes + 255) / 256 * 256;
  if (cc->chunk && cc->chunk_off + bytes <= cc->chunk_size) {
    void *p = cc->chunk + cc->chunk_off;
    cc->chunk_off += bytes;
    return p;
  }
  /* chunks of 16 entries' worth (small models) up to CACHE_CHUNK */
  const size_t want = bytes > CACHE_CHUNK ? bytes : 16 * bytes < CACHE_CHUNK ? 16 * bytes : CACHE_CHUNK;
  const size_t size = cc->used + want <= cc->budget ? want : cc->budget - cc->used;
  if (size < bytes) return NULL;
  void *p = NULL;
  if (cudaMalloc(&p, size) != cudaSuccess) {
    (void)cudaGetLastError(); /* out of device memory: the cache just stops growing */
    return NULL;
  }
  cc->chunks = (void **)ep_realloc(cc->chunks, (size_t)(cc->n_chunks + 1) * sizeof *cc->chunks);
  cc->chunks[cc->n_chunks++] = p;
  cc->used += size;
  cc->chunk = (char *)p;
  cc->chunk_size = size;
  cc->chunk_off = bytes;
  return p;
}

extern "C" void cu_cache_free(cu_ws *ws) {
  cu_cache *cc = ws->cache;
  if (!cc) return;
  for (int i = 0; i < cc->n_chunks; i++) EP_CHECK_CUDA(cudaFree(cc->chunks[i]));
  EP_CHECK_CUDA(cudaFree(cc->dptr));
  EP_CHECK_CUDA(cudaFreeHost(cc->hptr));
  for (int64_t i = 0; i < cc->n_ent; i++) free(cc->ent[i].tok);
  free(cc->chunks);
  free(cc->ent);
  free(cc->slot);
  free(cc->key);
  free(cc);
  ws->cache = NULL;
}

extern "C" void cu_cache_set_budget(cu_ws *ws, size_t bytes) {
  EP_CHECK_CUDA(cudaStreamSynchronize(ws->st));
  cu_cache_free(ws);
  if (bytes == 0) return;
  cu_cache *cc = (cu_cache *)ep_calloc(1, sizeof *cc);
  cc->budget = bytes;
  cc->n_slot = 1024;
  cc->slot = (int64_t *)ep_malloc((size_t)cc->n_slot * sizeof *cc->slot);
  cc->key = (uint64_t *)ep_calloc((size_t)cc->n_slot, sizeof *cc->key);
  for (int64_t i = 0; i < cc->n_slot; i++) cc->slot[i] = -1;
  const size_t nptr = (size_t)ws->Bmax + 2 * (size_t)ws->Bmax * ws->Tmax;
  EP_CHECK_CUDA(cudaMallocHost((void **)&cc->hptr, nptr * sizeof *cc->hptr));
  EP_CHECK_CUDA(cudaMalloc((void **)&cc->dptr, nptr * sizeof *cc->dptr));
  ws->cache = cc;
}

extern "C" void cu_cache_stats(const cu_ws *ws, int64_t *entries, int64_t *hits, int64_t *misses, size_t *bytes) {
  const cu_cache *cc = ws->cache;
  *entries = cc ? cc->n_ent : 0;
  *hits = cc ? cc->hits : 0;
  *misses = cc ? cc->misses : 0;
  *bytes = cc ? cc->used : 0;
}

/* Example b's first loss-position row in the batch's [P, ...] arrays. */
static int64_t first_pos(const ep_batch *bt, int b) {
  int64_t q = 0;
  for (int i = 0; i < b; i++) q += bt->loss_end[i] - bt->loss_start[i];
  return q;
}

/* c [W, N, D] of the batch from the examples' entries src[b] [W, len[b], D], zeros at
 * positions t >= len[b] (V floats at a time), and the base points from the values as they
 * pass (cu_base_walk, as cu_base_points computes them from c): one pass instead of a copy
 * and a re-read. */
template <int V>
static __global__ void k_gather_c(const float *const *src, const int32_t *len, const float *x0, const float *x1,
                                  const int2 *slots, int K, float *c, float *base, size_t ND, int T, int D) {
  typedef typename std::conditional<V == 4, float4, float>::type vec;
  const size_t ndv = ND / V;
  const int Dv = D / V;
  vec *cv = reinterpret_cast<vec *>(c);
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < ndv;
       i += (size_t)gridDim.x * blockDim.x) {
    const size_t row = i / Dv, dv = i % Dv, b = row / (size_t)T, t = row % (size_t)T;
    const size_t L = (size_t)len[b];
    const vec *sv = reinterpret_cast<const vec *>(src[b]) + t * Dv + dv; /* writer 0 */
    vec run, zero;
    memset(&zero, 0, sizeof zero);
    if (x0) run = cu_vadd(reinterpret_cast<const vec *>(x0)[i], reinterpret_cast<const vec *>(x1)[i]);
    else run = zero;
    cu_base_walk(
        run, slots, K,
        [&](int w) {
          const vec x = t < L ? sv[(size_t)w * L * Dv] : zero;
          cv[(size_t)w * ndv + i] = x;
          return x;
        },
        reinterpret_cast<vec *>(base), ndv, i);
  }
}

/* Clean-logit rows tgt [P, Vo] and their lse [P] from per-position sources. */
static __global__ void k_gather_tgt(const float *const *rows, const double *const *lse, int P, int Vo, float *tgt,
                                    double *lse_out) {
  const size_t nt = (size_t)P * Vo, total = nt + (size_t)P;
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
    if (i < nt) tgt[i] = rows[i / Vo][i % Vo];
    else lse_out[i - nt] = *lse[i - nt];
  }
}

extern "C" int cu_cache_has(const cu_ws *ws, const ep_batch *bt) {
  const cu_cache *cc = ws->cache;
  if (!cc) return 0;
  for (int b = 0; b < bt->B; b++) {
    int64_t pos;
    if (cache_find(cc, bt, b, example_key(bt, b), &pos) < 0) return 0;
  }
  return 1;
}

extern "C" int cu_cache_fetch(cu_ws *ws, const ep_batch *bt) {
  cu_cache *cc = ws->cache;
  if (!cc) return 0;
  int64_t *idx = (int64_t *)ep_malloc((size_t)bt->B * sizeof *idx);
  int all = 1;
  for (int b = 0; b < bt->B && all; b++) {
    int64_t pos;
    idx[b] = cache_find(cc, bt, b, example_key(bt, b), &pos);
    all = idx[b] >= 0;
  }
  if (!all) {
    cc->misses++;
    free(idx);
    return 0;
  }
  cc->hits++;
  /* source pointers: every example's c, every loss position's clean-logit row and lse; one
   * upload, then two gather kernels (a copy per example and array took ~0.3 ms of API
   * calls a batch of 32) */
  const int B = bt->B, Vo = ws->Vo, T = bt->T, D = ws->D;
  const int64_t P = ws->P;
  const int with_c = cc->ent[idx[0]].c != NULL;
  const void **hc = cc->hptr, **ht = cc->hptr + B, **hl = cc->hptr + B + P;
  int64_t q = 0;
  for (int b = 0; b < B; b++) {
    const cache_entry *e = &cc->ent[idx[b]];
    EP_CHECK(!e->c == !with_c, "prepare cache: entries with and without writer outputs");
    hc[b] = e->c;
    for (int j = 0; j < e->le - e->ls; j++, q++) {
      ht[q] = e->tgt + (size_t)j * Vo;
      hl[q] = e->lse + j;
    }
  }
  EP_CHECK(q == P, "prepare cache: %lld loss positions cached, %lld in the batch", (long long)q, (long long)P);
  free(idx);
  EP_CHECK_CUDA(cudaMemcpyAsync(cc->dptr, cc->hptr, ((size_t)B + 2 * (size_t)P) * sizeof *cc->hptr,
                                cudaMemcpyHostToDevice, ws->st));
  const float *const *dc = (const float *const *)cc->dptr;
  if (with_c) {
    const size_t ND = ws->N * (size_t)D;
    const float *x0 = ws->g->embedding_nodes ? NULL : ws->xtok, *x1 = ws->xpos;
    if (D % 4 == 0)
      k_gather_c<4><<<cu_blocks(ND / 4, 256), 256, 0, ws->st>>>(dc, ws->len_d, x0, x1, ws->slots_d, ws->n_slots,
                                                                ws->c, ws->base, ND, T, D);
    else
      k_gather_c<1><<<cu_blocks(ND, 256), 256, 0, ws->st>>>(dc, ws->len_d, x0, x1, ws->slots_d, ws->n_slots,
                                                            ws->c, ws->base, ND, T, D);
    EP_CHECK_LAUNCH();
  }
  if (P > 0) {
    k_gather_tgt<<<cu_blocks((size_t)P * Vo + P, 256), 256, 0, ws->st>>>(
        (const float *const *)(cc->dptr + B), (const double *const *)(cc->dptr + B + P), (int)P, Vo, ws->tgt_d,
        ws->lse_d);
    EP_CHECK_LAUNCH();
  }
  return 1;
}

extern "C" void cu_cache_store(cu_ws *ws, const ep_batch *bt) {
  cu_cache *cc = ws->cache;
  if (!cc || cc->full) return;
  const size_t D = (size_t)ws->D, N = ws->N, Vo = (size_t)ws->Vo, T = (size_t)bt->T, W = (size_t)ws->W;
  const int with_c = ws->o.ablation == EP_ABLATE_INTERCHANGE;
  for (int b = 0; b < bt->B; b++) {
    const uint64_t k = example_key(bt, b);
    int64_t pos;
    if (cache_find(cc, bt, b, k, &pos) >= 0) continue;
    const size_t np = (size_t)(bt->loss_end[b] - bt->loss_start[b]), L = (size_t)bt->length[b];
    float *c = NULL, *tgt;
    double *lse;
    if (with_c && !(c = (float *)cache_carve(ws, cc, W * L * D * sizeof(float)))) {
      cc->full = 1;
      return;
    }
    if (!(tgt = (float *)cache_carve(ws, cc, np * Vo * sizeof(float))) ||
        !(lse = (double *)cache_carve(ws, cc, np * sizeof(double)))) {
      cc->full = 1; /* the carved c stays unused: at most one entry's worth */
      return;
    }
    const int64_t q = first_pos(bt, b);
    if (c)
      EP_CHECK_CUDA(cudaMemcpy2DAsync(c, L * D * sizeof(float), ws->c + (size_t)b * T * D, N * D * sizeof(float),
                                      L * D * sizeof(float), W, cudaMemcpyDeviceToDevice, ws->st));
    EP_CHECK_CUDA(cudaMemcpyAsync(tgt, ws->tgt_d + (size_t)q * Vo, np * Vo * sizeof(float),
                                  cudaMemcpyDeviceToDevice, ws->st));
    EP_CHECK_CUDA(cudaMemcpyAsync(lse, ws->lse_d + q, np * sizeof(double), cudaMemcpyDeviceToDevice, ws->st));
    if (cc->n_ent == cc->cap_ent) {
      cc->cap_ent = cc->cap_ent ? 2 * cc->cap_ent : 256;
      cc->ent = (cache_entry *)ep_realloc(cc->ent, (size_t)cc->cap_ent * sizeof *cc->ent);
    }
    cache_entry *e = &cc->ent[cc->n_ent];
    e->len = bt->length[b];
    e->ls = bt->loss_start[b];
    e->le = bt->loss_end[b];
    e->tok = (int32_t *)ep_calloc(2 * L, sizeof(int32_t));
    memcpy(e->tok, bt->clean + (size_t)b * T, L * sizeof(int32_t));
    if (bt->corrupted) memcpy(e->tok + L, bt->corrupted + (size_t)b * T, L * sizeof(int32_t));
    e->c = c;
    e->tgt = tgt;
    e->lse = lse;
    cc->slot[pos] = cc->n_ent++;
    cc->key[pos] = k;
    if (2 * cc->n_ent > cc->n_slot) {
      /* grow the table to keep probes short: reinsert every entry */
      const int64_t ns = 2 * cc->n_slot;
      int64_t *slot = (int64_t *)ep_malloc((size_t)ns * sizeof *slot);
      uint64_t *key = (uint64_t *)ep_calloc((size_t)ns, sizeof *key);
      for (int64_t i = 0; i < ns; i++) slot[i] = -1;
      for (int64_t i = 0; i < cc->n_slot; i++)
        if (cc->slot[i] >= 0) {
          int64_t j = (int64_t)(cc->key[i] & (uint64_t)(ns - 1));
          while (slot[j] >= 0) j = (j + 1) & (ns - 1);
          slot[j] = cc->slot[i];
          key[j] = cc->key[i];
        }
      free(cc->slot);
      free(cc->key);
      cc->slot = slot;
      cc->key = key;
      cc->n_slot = ns;
    }
  }
}
