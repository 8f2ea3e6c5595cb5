/* cuda_backend.cu — the CUDA backend (backend_cuda.h): workspace, plain forward,
 * prepare, masked forward/backward. Mirrors src/backend/cpu/cpu_impl.inc step by step
 * (same buffers, same order of reader groups); see that file for the method. fp32
 * storage and fp32 cuBLAS compute (no TF32). */
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"

extern "C" {
#include "edgeprune/backend_cuda.h"
}

/* ---- workspace ------------------------------------------------------------------------- */

static const float *cu_wdev(const cu_ws *ws, const float *host) {
  if (!host) return NULL;
  const ep_model *m = ws->m;
  EP_CHECK(host >= m->mem && host < m->mem + m->n_floats, "a model tensor lies outside the model's allocation");
  return ws->wmem + (host - m->mem);
}

static void *cu_host_pinned(size_t bytes) {
  void *p = NULL;
  EP_CHECK_CUDA(cudaMallocHost(&p, bytes ? bytes : 1));
  return p;
}

/* ---- phase timing (EP_CUDA_PROFILE=1) --------------------------------------------------- */

extern "C" void cu_mark(cu_ws *ws, cu_phase ph) {
  if (!ws->prof || ws->prof_n == 0) return; /* outside a profiled entry point */
  EP_CHECK(ws->prof_n < CU_PROF_MAX, "too many profiling marks in one call");
  EP_CHECK_CUDA(cudaEventRecord(ws->prof_ev[ws->prof_n], ws->st));
  ws->prof_ph[ws->prof_n++] = (int)ph;
}

/* Start of a profiled entry point of the given kind (0 prepare, 1 faith, 2 faith + backward). */
static void cu_prof_start(cu_ws *ws, int kind) {
  if (!ws->prof) return;
  ws->prof_kind = kind;
  ws->prof_t0 = ep_time_now();
  EP_CHECK_CUDA(cudaEventRecord(ws->prof_ev[0], ws->st));
  ws->prof_n = 1;
}

/* End: wait for the stream, add the time between consecutive marks to their phases. */
static void cu_prof_end(cu_ws *ws) {
  if (!ws->prof || ws->prof_n == 0) return;
  EP_CHECK_CUDA(cudaStreamSynchronize(ws->st));
  for (int i = 1; i < ws->prof_n; i++) {
    float ms = 0;
    EP_CHECK_CUDA(cudaEventElapsedTime(&ms, ws->prof_ev[i - 1], ws->prof_ev[i]));
    ws->prof_ms[ws->prof_kind][ws->prof_ph[i]] += ms;
  }
  ws->prof_calls[ws->prof_kind]++;
  ws->prof_wall[ws->prof_kind] += 1e3 * (ep_time_now() - ws->prof_t0);
  ws->prof_n = 0;
}

static void cu_prof_report(cu_ws *ws) {
  if (!ws->prof) return;
  static const char *names[CU_PH_N] = {"plain forward",      "ablation/base/lse",   "reader mixing (+ norm)",
                                       "reader LN",          "attention core",      "MLP",
                                       "resid_post, loss",   "node gradients",      "attention core bwd",
                                       "MLP backward",       "edge gradients",      "ddelta += Z^T dY",
                                       "q/k/v proj fwd+bwd", "W_O, head delta, bwd", "final LN, unembed, bwd"};
  static const char *kinds[3] = {"prepare", "faith (forward)", "faith (fwd+bwd)"};
  ep_log("CUDA backend phase times (device ms per call; EP_CUDA_PROFILE)");
  ep_log("  %-24s %12s %16s %16s", "phase", kinds[0], kinds[1], kinds[2]);
  double sum[3] = {0, 0, 0};
  for (int ph = 0; ph < CU_PH_N; ph++) {
    double v[3];
    for (int k = 0; k < 3; k++) {
      v[k] = ws->prof_calls[k] ? ws->prof_ms[k][ph] / ws->prof_calls[k] : 0;
      sum[k] += v[k];
    }
    ep_log("  %-24s %12.3f %16.3f %16.3f", names[ph], v[0], v[1], v[2]);
  }
  ep_log("  %-24s %12.3f %16.3f %16.3f", "sum (device timeline)", sum[0], sum[1], sum[2]);
  double w[3];
  for (int k = 0; k < 3; k++) w[k] = ws->prof_calls[k] ? ws->prof_wall[k] / ws->prof_calls[k] : 0;
  ep_log("  %-24s %12.3f %16.3f %16.3f", "host wall per call", w[0], w[1], w[2]);
  ep_log("  calls: %d prepare, %d faith, %d faith with backward", ws->prof_calls[0], ws->prof_calls[1],
         ws->prof_calls[2]);
}

/* The kl / kl_sum losses run on the device (no [P, Vo] round trip per step); the others
 * (Tracr's position_kl and mse, small Vo) in the shared host code backend_loss. */
static int cu_device_kl(const cu_ws *ws) { return ws->o.loss == EP_LOSS_KL || ws->o.loss == EP_LOSS_KL_SUM; }

/* An integer environment switch, or dflt when unset. */
static int cu_env_int(const char *name, int dflt) {
  const char *v = getenv(name);
  return v ? atoi(v) : dflt;
}

/* The base slots in the order the writers reach them: (slot s, writers before its reader
 * group, graph_slot_reader); slots without a reader group are skipped. Uploaded once to
 * ws->slots_d. */
static void cu_base_slots(cu_ws *ws) {
  const ep_graph *g = ws->g;
  int2 *h = (int2 *)ep_calloc((size_t)(2 * ws->L + 1), sizeof(int2));
  int K = 0, done = 0;
  for (int s = 0; s <= 2 * ws->L; s++) {
    const int r = graph_slot_reader(g, s);
    if (r < 0) continue;
    const int n = g->readers[r].n_in;
    if (n > done) done = n;
    h[K++] = make_int2(s, done);
  }
  EP_CHECK(done <= ws->W, "base slots reach writer %d of %d", done, ws->W);
  ws->slots_d = (int2 *)cu_dalloc(ws, (size_t)K, sizeof(int2));
  EP_CHECK_CUDA(cudaMemcpy(ws->slots_d, h, (size_t)K * sizeof(int2), cudaMemcpyHostToDevice));
  ws->n_slots = K;
  free(h);
}

/* Floats of the 2B-row plain forward's buffers in cu_plain_pair's order (sizes[18]), and
 * their total with each piece rounded up to 64 floats. In the row layout (ws->rows_ok) q
 * holds q | k | v [N, 3Q] and ob the [N, H (dh + 4)] head outputs; k, v and hx are unused. */
static size_t pair_sizes(const cu_ws *ws, size_t B, size_t T, size_t sizes[18]) {
  const size_t N2 = 2 * B * T, D = (size_t)ws->D, H = (size_t)ws->H, dh = (size_t)ws->dh, F = (size_t)ws->F;
  const size_t Q = H * dh, r = (size_t)ws->rows_ok;
  const size_t s[18] = {N2 * D,     N2 * D,     N2 * D,     N2 * D,     N2,
                        N2,         N2 * (r ? 3 * Q : Q),   r ? 0 : N2 * Q, r ? 0 : N2 * Q,
                        H * N2 * T, N2 * (r ? H * (dh + 4) : Q), r ? 0 : H * N2 * D,
                        N2 * D,     N2,         N2,         N2 * F,     N2 * F,     N2 * D};
  size_t total = 0;
  for (int i = 0; i < 18; i++) {
    sizes[i] = s[i];
    total += (s[i] + 63) / 64 * 64;
  }
  return total;
}

/* The plain forward's row-layout weights (cu_lw's w_qkv, w_oa) of every attention layer,
 * composed on the host: for heads of width a multiple of 4 with all four projections. */
static void cu_rows_weights(cu_ws *ws) {
  const ep_model *m = ws->m;
  const ep_model_config *c = &m->cfg;
  const size_t D = (size_t)ws->D, H = (size_t)ws->H, dh = (size_t)ws->dh, Q = H * dh, hp = dh + 4;
  if (dh % 4 || !cu_env_int("EP_CUDA_ROWS", 1)) return;
  for (int l = 0; l < ws->L; l++) {
    const ep_layer_weights *s = &m->layers[l];
    if (c->has_attn[l] && (!s->w_q || !s->w_k || !s->w_v || !s->w_o)) return;
  }
  float *hq = (float *)ep_malloc(D * 3 * Q * sizeof(float)), *ho = (float *)ep_calloc(H * hp * D, sizeof(float));
  float *dq = (float *)cu_dalloc(ws, D * 3 * Q * (size_t)ws->L, sizeof(float));
  float *dout = (float *)cu_dalloc(ws, H * hp * D * (size_t)ws->L, sizeof(float));
  EP_CHECK_CUDA(cudaDeviceSynchronize()); /* zeroing ran on the legacy stream */
  const float inv_h = (float)(1.0 / ws->H); /* the bias share of a head, as cu_head_sum scales it */
  for (int l = 0; l < ws->L; l++) {
    if (!c->has_attn[l]) continue;
    const ep_layer_weights *s = &m->layers[l];
    for (size_t i = 0; i < D; i++) {
      memcpy(hq + i * 3 * Q, s->w_q + i * Q, Q * sizeof(float));
      memcpy(hq + i * 3 * Q + Q, s->w_k + i * Q, Q * sizeof(float));
      memcpy(hq + i * 3 * Q + 2 * Q, s->w_v + i * Q, Q * sizeof(float));
    }
    for (size_t h = 0; h < H; h++) {
      memcpy(ho + h * hp * D, s->w_o + h * dh * D, dh * D * sizeof(float));
      float *hi = ho + (h * hp + dh) * D, *lo = hi + D;
      for (size_t e = 0; e < D; e++) {
        const float v = s->b_o ? inv_h * s->b_o[e] : 0.0f;
        uint32_t u;
        memcpy(&u, &v, sizeof u);
        u &= 0xffffe000u; /* 10 mantissa bits: exact in TF32 */
        memcpy(&hi[e], &u, sizeof u);
        lo[e] = v - hi[e]; /* exact; TF32 rounds it by 2^-11 of itself */
      }
    }
    float *wq = dq + D * 3 * Q * (size_t)l, *wo = dout + H * hp * D * (size_t)l;
    EP_CHECK_CUDA(cudaMemcpy(wq, hq, D * 3 * Q * sizeof(float), cudaMemcpyHostToDevice));
    EP_CHECK_CUDA(cudaMemcpy(wo, ho, H * hp * D * sizeof(float), cudaMemcpyHostToDevice));
    ws->lw[l].w_qkv = wq;
    ws->lw[l].w_oa = wo;
  }
  free(hq);
  free(ho);
  ws->rows_ok = 1;
}

/* Device buffers of batch state i. */
static void cu_bset_alloc(cu_ws *ws, int i) {
  const size_t N = (size_t)ws->Bmax * ws->Tmax, D = (size_t)ws->D, W = (size_t)ws->W, Vo = (size_t)ws->Vo;
  cu_bset *bs = &ws->bset[i];
  bs->len_d = (int32_t *)cu_dalloc(ws, 2 * (size_t)ws->Bmax, sizeof(int32_t));
  bs->prow_d = (int32_t *)cu_dalloc(ws, N, sizeof(int32_t));
  bs->c = (float *)cu_dalloc(ws, W * N * D, sizeof(float));
  bs->base = (float *)cu_dalloc(ws, (2 * (size_t)ws->L + 1) * N * D, sizeof(float));
  bs->xtok = (float *)cu_dalloc(ws, N * D, sizeof(float));
  bs->xpos = (float *)cu_dalloc(ws, N * D, sizeof(float));
  if (cu_device_kl(ws)) {
    bs->tgt_d = (float *)cu_dalloc(ws, N * Vo, sizeof(float));
    bs->lse_d = (double *)cu_dalloc(ws, N, sizeof(double));
    bs->wrow_d = (double *)cu_dalloc(ws, N, sizeof(double));
  }
}

/* A cuBLAS workspace of the handle's own (set after cublasSetStream, which resets it):
 * cuBLAS then allocates nothing while a step is captured as a graph. */
static void cu_blas_workspace(cu_ws *ws, cublasHandle_t h) {
  const size_t bytes = (size_t)32 << 20;
  EP_CHECK_CUBLAS(cublasSetWorkspace(h, cu_dalloc(ws, bytes, 1), bytes));
}

/* What prepare needs on its own stream, allocated when it first runs there (a workspace
 * that never queues a step, as validation's, does without): the second batch state, the
 * paired forward's scratch, the output head's scratch, a cuBLAS workspace. */
static void cu_side_alloc(cu_ws *ws) {
  const size_t N = (size_t)ws->Bmax * ws->Tmax, D = (size_t)ws->D;
  size_t sz[18];
  cu_pctx *c = &ws->side_ctx;
  cu_bset_alloc(ws, 1);
  c->st = ws->st_prep;
  c->blas = ws->blas_prep;
  c->pscr_cap = pair_sizes(ws, (size_t)ws->Bmax, (size_t)ws->Tmax, sz);
  c->pscr = (float *)cu_dalloc(ws, c->pscr_cap, sizeof(float));
  c->yf = (float *)cu_dalloc(ws, N * D, sizeof(float));
  c->xf = (float *)cu_dalloc(ws, N * D, sizeof(float));
  c->fmu = (float *)cu_dalloc(ws, N, sizeof(float));
  c->frs = (float *)cu_dalloc(ws, N, sizeof(float));
  c->klpart = (double *)cu_dalloc(ws, 3 * N * (size_t)KL_MAX_CHUNKS, sizeof(double));
  cu_blas_workspace(ws, ws->blas_prep);
  EP_CHECK_CUDA(cudaDeviceSynchronize()); /* cu_dalloc zeroes on the legacy stream */
  ws->side_ready = 1;
}

/* Exchange what prepare runs with (cu_pctx) between the workspace and c. */
static void cu_pctx_swap(cu_ws *ws, cu_pctx *c) {
  const cu_pctx was = {ws->st, ws->blas, ws->yf, ws->xf, ws->fmu, ws->frs, ws->logits, ws->klpart, ws->pscr,
                       ws->pscr_cap};
  ws->st = c->st;
  ws->blas = c->blas;
  ws->yf = c->yf;
  ws->xf = c->xf;
  ws->fmu = c->fmu;
  ws->frs = c->frs;
  ws->logits = c->logits;
  ws->klpart = c->klpart;
  ws->pscr = c->pscr;
  ws->pscr_cap = c->pscr_cap;
  *c = was;
}

/* Make bset[i] the current batch state (cu_ws's pointers of the same names). */
static void cu_bset_use(cu_ws *ws, int i) {
  const cu_bset *b = &ws->bset[i];
  ws->cur = i;
  ws->len_d = b->len_d;
  ws->prow_d = b->prow_d;
  ws->c = b->c;
  ws->base = b->base;
  ws->xtok = b->xtok;
  ws->xpos = b->xpos;
  ws->tgt_d = b->tgt_d;
  ws->lse_d = b->lse_d;
  ws->wrow_d = b->wrow_d;
}

static void *cu_create(const ep_model *m, const ep_graph *g, const ep_engine_opts *o, int Bmax, int Tmax) {
  const ep_model_config *c = &m->cfg;
  EP_CHECK(o->precision == EP_PREC_F32, "the CUDA backend computes in fp32 only");
  EP_CHECK(c->pos != EP_POS_ROPE && c->act != EP_ACT_SILU_GLU,
           "the CUDA backend does not support %s models (RoPE / gated MLP) yet", c->arch);
  EP_CHECK(c->n_kv_head == c->n_head, "the CUDA backend does not support grouped-query attention yet");
  EP_CHECK(Bmax >= 1 && Tmax >= 1, "batch %d x %d", Bmax, Tmax);
  EP_CHECK(c->pos != EP_POS_LEARNED || Tmax <= c->n_ctx, "sequence length %d is longer than the model context %d",
           Tmax, c->n_ctx);
  EP_CHECK(backend_cuda_available(), "no CUDA device available");
  cu_ws *ws = (cu_ws *)ep_calloc(1, sizeof *ws);
  ws->m = m;
  ws->g = g;
  ws->o = *o;
  ws->Bmax = Bmax;
  ws->Tmax = Tmax;
  ws->D = c->d_model;
  ws->H = c->n_head;
  ws->dh = c->d_head;
  ws->F = c->d_mlp;
  ws->Vo = c->vocab_out;
  ws->L = c->n_layer;
  ws->W = g->n_writers;
  ws->E = g->n_edges;
  const size_t D = (size_t)ws->D, H = (size_t)ws->H, dh = (size_t)ws->dh, F = (size_t)ws->F, W = (size_t)ws->W;
  const size_t N = (size_t)Bmax * (size_t)Tmax, E = (size_t)ws->E, Vo = (size_t)ws->Vo;
  EP_CHECK(3 * H * N * D < (size_t)INT32_MAX, "batch too large for one GEMM (%zu rows)", N);

  {
    /* the masked step's stream first in the block scheduler's order, prepare's last; a
     * cuBLAS handle on each. fp32 everywhere: default math with CUBLAS_COMPUTE_32F never
     * uses TF32 tensor cores */
    int least = 0, greatest = 0;
    EP_CHECK_CUDA(cudaDeviceGetStreamPriorityRange(&least, &greatest));
    cudaStream_t *const st[2] = {&ws->st_main, &ws->st_prep};
    cublasHandle_t *const h[2] = {&ws->blas_main, &ws->blas_prep};
    for (int i = 0; i < 2; i++) {
      EP_CHECK_CUDA(cudaStreamCreateWithPriority(st[i], cudaStreamNonBlocking, i == 0 ? greatest : least));
      EP_CHECK_CUBLAS(cublasCreate(h[i]));
      EP_CHECK_CUBLAS(cublasSetStream(*h[i], *st[i]));
      EP_CHECK_CUBLAS(cublasSetMathMode(*h[i], CUBLAS_DEFAULT_MATH));
    }
  }
  ws->st = ws->st_main;
  ws->blas = ws->blas_main;
  for (int i = 0; i < 2; i++) EP_CHECK_CUDA(cudaEventCreateWithFlags(&ws->rel_ev[i], cudaEventDisableTiming));
  ws->gemm_type = CUDA_R_32F;
  ws->gemm_compute = CUBLAS_COMPUTE_32F;
  /* Environment switches, for measurements (docs/cuda-backend.md):
   * EP_CUDA_PROFILE=1 phase timing (no graph); EP_CUDA_GRAPH=0 no CUDA graph;
   * EP_CUDA_MIXNORM: 0 reader mixing as GEMMs and a separate norm, 2 the exact-fp32 fused
   * kernel in TF32 too (default 1: the fp32 kernel in fp32 and bf16, the tensor-core kernel
   * for TF32's q/k/v readers); EP_CUDA_MIXNORM_SPLIT=1 the fp32 kernel's q/k/v readers in
   * groups of 12 (measured no faster); EP_CUDA_TC_SPLIT=1 the TF32 kernel in blocks of
   * <= 16 readers (measured slower on an H200: 13.6 against 12.6 ms a masked step);
   * EP_CUDA_MERGE=0 each reader group its own edge-gradient / ddelta pass;
   * EP_CUDA_MERGE_FWD=0 the MLP reader mixed on its own in the forward; EP_CUDA_DDELTA=0
   * the ddelta update as a cuBLAS GEMM; EP_CUDA_EDGE_TC=0 the edge gradients as cuBLAS GEMMs over row
   * chunks (default: the tensor-core kernel); EP_CUDA_EDGE_ROWS=c c token rows per
   * edge-gradient chunk (c must divide B T); EP_CUDA_FOLD=0 the TF32 readers' norm
   * weights not folded into the q/k/v projections (Y and Xn both written); EP_CUDA_PAIR=0
   * prepare's clean and corrupted runs as two forwards (cu_plain_pair); EP_CUDA_ROWS=0
   * the paired forward's attention in the per-head layout (cu_rows_weights);
   * EP_CUDA_ATTN_WARPS=16 attention blocks of 16 warps instead of 8; EP_CUDA_SIDE=0 prepare
   * on the masked step's stream (one batch state); EP_CUDA_DDPIPE=0 k_ddelta without its
   * next writers' loads in flight; EP_CUDA_DDELTA_TC=0 the ddelta update in k_ddelta's fp32
   * FMAs instead of on tensor cores (k_ddelta_tc); EP_CUDA_DDPAIR=0 each layer's ddelta
   * update on its own (cu_layer_ddelta); EP_CUDA_TC_PERSIST=0 the TF32 mixing kernel one block a
   * row (k_mix_norm_tc) instead of the persistent one (k_mix_norm_tcp); EP_CUDA_DELTA16=0
   * the TF32 mixing and edge-gradient kernels read fp32 delta instead of its fp16 copy;
   * EP_CUDA_XHAT16=0 the TF32 readers' xhat kept in fp32 (fp32 q/k/v projections);
   * EP_CUDA_DELTA32=1 fp32 delta written next to the fp16 copy even when no reader needs it. */
  ws->prof = cu_env_int("EP_CUDA_PROFILE", 0) > 0;
  ws->graphs = cu_env_int("EP_CUDA_GRAPH", 1) != 0;
  ws->mixnorm = cu_env_int("EP_CUDA_MIXNORM", 1);
  ws->mixnorm_split = cu_env_int("EP_CUDA_MIXNORM_SPLIT", 0) != 0;
  ws->tc_split = cu_env_int("EP_CUDA_TC_SPLIT", 0) != 0;
  ws->tc_persist = cu_env_int("EP_CUDA_TC_PERSIST", 1) != 0 && !ws->tc_split;
  ws->merge = cu_env_int("EP_CUDA_MERGE", 1) != 0;
  ws->merge_fwd = cu_env_int("EP_CUDA_MERGE_FWD", 1) != 0;
  ws->ddelta_kernel = cu_env_int("EP_CUDA_DDELTA", 1) != 0;
  ws->dd_pipe = cu_env_int("EP_CUDA_DDPIPE", 1) != 0;
  ws->ddelta_tc = cu_env_int("EP_CUDA_DDELTA_TC", 1) != 0 && ws->ddelta_kernel;
  ws->dd_pair = cu_env_int("EP_CUDA_DDPAIR", 1) != 0 && ws->ddelta_tc;
  ws->edge_tc = cu_env_int("EP_CUDA_EDGE_TC", 1) != 0;
  ws->edge_rows = cu_env_int("EP_CUDA_EDGE_ROWS", 0);
  ws->fold = cu_env_int("EP_CUDA_FOLD", 1) != 0;
  ws->pair = cu_env_int("EP_CUDA_PAIR", 1) != 0;
  ws->attn_nw = cu_env_int("EP_CUDA_ATTN_WARPS", 8);
  ws->delta16 = cu_env_int("EP_CUDA_DELTA16", 1) != 0;
  ws->xhat16 = cu_env_int("EP_CUDA_XHAT16", 1) != 0;
  ws->delta32_force = cu_env_int("EP_CUDA_DELTA32", 0) != 0;
  ws->delta32 = 1;
  /* prepare on its own stream: its one path then is the paired forward or the cache, which
   * touch only the batch state and prepare's own scratch; the phase profile times
   * prepare and the step apart, on one stream */
  ws->side = cu_env_int("EP_CUDA_SIDE", 1) != 0 && cu_device_kl(ws) && o->ablation == EP_ABLATE_INTERCHANGE &&
             ws->pair && !ws->prof;
  ws->mpart_layer = -1;
  cu_attn_setup(ws);
  cu_base_slots(ws);
  {
    int dev = 0;
    EP_CHECK_CUDA(cudaGetDevice(&dev));
    EP_CHECK_CUDA(cudaDeviceGetAttribute(&ws->sm_count, cudaDevAttrMultiProcessorCount, dev));
    EP_CHECK_CUDA(cudaDeviceGetAttribute(&ws->smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  }
  if (ws->prof)
    for (int i = 0; i < CU_PROF_MAX; i++) EP_CHECK_CUDA(cudaEventCreate(&ws->prof_ev[i]));

  cu_blas_workspace(ws, ws->blas_main);
  /* weights: one copy of the model's single allocation, pointers by offset */
  ws->wmem = (float *)cu_dalloc(ws, m->n_floats, sizeof(float));
  EP_CHECK_CUDA(cudaMemcpy(ws->wmem, m->mem, m->n_floats * sizeof(float), cudaMemcpyHostToDevice));
  ws->wte = cu_wdev(ws, m->wte);
  ws->wpe = cu_wdev(ws, m->wpe);
  ws->lnf_w = cu_wdev(ws, m->lnf_w);
  ws->lnf_b = cu_wdev(ws, m->lnf_b);
  ws->unembed = cu_wdev(ws, m->unembed);
  ws->lw = (cu_lw *)ep_calloc((size_t)ws->L, sizeof *ws->lw);
  ws->lfold = (int *)ep_calloc((size_t)ws->L, sizeof *ws->lfold);
  for (int l = 0; l < ws->L; l++) {
    const ep_layer_weights *s = &m->layers[l];
    cu_lw *d = &ws->lw[l];
    d->ln1_w = cu_wdev(ws, s->ln1_w);
    d->ln1_b = cu_wdev(ws, s->ln1_b);
    d->w_q = cu_wdev(ws, s->w_q);
    d->b_q = cu_wdev(ws, s->b_q);
    d->w_k = cu_wdev(ws, s->w_k);
    d->b_k = cu_wdev(ws, s->b_k);
    d->w_v = cu_wdev(ws, s->w_v);
    d->b_v = cu_wdev(ws, s->b_v);
    d->w_o = cu_wdev(ws, s->w_o);
    d->b_o = cu_wdev(ws, s->b_o);
    d->ln2_w = cu_wdev(ws, s->ln2_w);
    d->ln2_b = cu_wdev(ws, s->ln2_b);
    d->w_fc = cu_wdev(ws, s->w_fc);
    d->b_fc = cu_wdev(ws, s->b_fc);
    d->w_proj = cu_wdev(ws, s->w_proj);
    d->b_proj = cu_wdev(ws, s->b_proj);
  }

  cu_rows_weights(ws);

  /* host side */
  ws->len_h = (int32_t *)ep_calloc(2 * (size_t)Bmax, sizeof(int32_t)); /* 2B: cu_plain_pair */
  ws->npos_h = (int32_t *)ep_calloc((size_t)Bmax, sizeof(int32_t));
  ws->prow_h = (int32_t *)ep_calloc(N, sizeof(int32_t));
  ws->target = (double *)ep_calloc(N * Vo, sizeof(double));
  ws->mlog = (double *)ep_calloc(N * Vo, sizeof(double));
  ws->dlog = (double *)ep_calloc(N * Vo, sizeof(double));
  ws->tok_h = (int32_t *)cu_host_pinned(2 * N * sizeof(int32_t));
  ws->h_logits = (float *)cu_host_pinned(N * Vo * sizeof(float));
  ws->h_z = (float *)cu_host_pinned((E + W) * sizeof(float));
  ws->h_dz = (double *)cu_host_pinned(3 * (E + W) * sizeof(double));
  ws->h_la = (double *)cu_host_pinned((2 + E + W) * sizeof(double));
  ws->wrow_h = (double *)cu_host_pinned(N * sizeof(double));
  ws->klrow_h = (double *)cu_host_pinned(N * sizeof(double));
  ws->ovf_h = (int *)cu_host_pinned(sizeof(int));
  ws->fin_wrow = (double *)ep_calloc(N, sizeof(double));
  EP_CHECK_CUDA(cudaEventCreateWithFlags(&ws->step_ev, cudaEventDisableTiming));
  EP_CHECK_CUDA(cudaEventCreateWithFlags(&ws->prep_ev, cudaEventDisableTiming));

  /* device side */
#define DALLOC(field, type, count) ws->field = (type *)cu_dalloc(ws, (count), sizeof(type))
  DALLOC(tok_d, int32_t, 2 * N);
  cu_bset_alloc(ws, 0);
  cu_bset_use(ws, 0);
  DALLOC(delta, float, W * N * D);
  DALLOC(ovf_d, int, 1);
  {
    /* cu_plain_pair's scratch: ddelta during prepare on the step's stream (the backward
     * clears it first), so ddelta is at least that big; with side its own */
    size_t sz[18];
    const size_t pair = pair_sizes(ws, (size_t)Bmax, (size_t)Tmax, sz);
    ws->ddelta_cap = W * N * D > pair ? W * N * D : pair;
    DALLOC(ddelta, float, ws->ddelta_cap);
    ws->pscr = ws->ddelta;
    ws->pscr_cap = ws->ddelta_cap;
  }
  DALLOC(Y, float, 3 * H * N * D);
  DALLOC(Xn, float, (3 * H + 1) * N * D); /* + the MLP reader's gradient (merged backward) */
  ws->xn_buf[0] = ws->Xn;
  if (ws->dd_pair) ws->xn_buf[1] = (float *)cu_dalloc(ws, (3 * H + 1) * N * D, sizeof(float));
  DALLOC(mu, float, 3 * H * N);
  DALLOC(rs, float, 3 * H * N);
  DALLOC(q, float, H * N * dh);
  DALLOC(k, float, H * N * dh);
  DALLOC(v, float, H * N * dh);
  DALLOC(ob, float, H * N * dh);
  DALLOC(dob, float, H * N * dh);
  DALLOC(dq, float, H * N * dh);
  DALLOC(dk, float, H * N * dh);
  DALLOC(dv, float, H * N * dh);
  DALLOC(att, float, H * N * (size_t)Tmax);
  DALLOC(hx, float, H * N * D);
  DALLOC(tmp, float, N * D);
  DALLOC(tmp2, float, N * D);
  DALLOC(res, float, N * D);
  DALLOC(xo, float, N * D);
  DALLOC(ym, float, N * D);
  DALLOC(mn, float, N * D);
  DALLOC(mpart, float, N * D);
  DALLOC(qkv_ptr, const float *, 9 * H);
  DALLOC(mmu, float, N);
  DALLOC(mrs, float, N);
  DALLOC(hpre, float, N * F);
  DALLOC(hact, float, N * F);
  DALLOC(gchunk, float, (N > CU_EDGE_SPLITS ? N : CU_EDGE_SPLITS) * (3 * H + 1) * W);
  DALLOC(yf, float, N * D);
  DALLOC(xf, float, N * D);
  DALLOC(fmu, float, N);
  DALLOC(frs, float, N);
  DALLOC(logits, float, N * Vo);
  DALLOC(zd, float, E + W);
  DALLOC(meanc, float, W * (size_t)Tmax * D);
  DALLOC(dzd, double, 3 * (E + W));
  DALLOC(la_d, double, 2 + E + W);
  DALLOC(part, double, W * CU_RED_BLOCKS);
  if (cu_device_kl(ws)) {
    DALLOC(klrow_d, double, N);
    DALLOC(klpart, double, 3 * N * (size_t)KL_MAX_CHUNKS);
  }
#undef DALLOC
  ws->shared = (cu_lstate){ws->Y,   ws->mu, ws->rs,  ws->q,   ws->k,    ws->v, ws->ob,
                           ws->att, ws->hx, ws->ym, ws->mmu, ws->mrs, ws->hpre, ws->xo};
  /* cu_dalloc zeroes on the legacy default stream, which a non-blocking stream does not
   * wait for */
  EP_CHECK_CUDA(cudaDeviceSynchronize());
  return ws;
}

static void cu_destroy(void *p) {
  cu_ws *ws = (cu_ws *)p;
  if (!ws) return;
  EP_CHECK_CUDA(cudaStreamSynchronize(ws->st_prep));
  EP_CHECK_CUDA(cudaStreamSynchronize(ws->st_main));
  if (ws->prof && ws->cache) {
    int64_t ne, nh, nm;
    size_t cb;
    cu_cache_stats(ws, &ne, &nh, &nm, &cb);
    ep_log_all("cuda prepare cache: %lld examples, %.1f MiB, %lld batches served, %lld computed", (long long)ne,
               (double)cb / 1048576.0, (long long)nh, (long long)nm);
  }
  cu_cache_free(ws);
  for (int i = 0; i < CU_GRAPH_SLOTS; i++)
    if (ws->graph[i].exec) EP_CHECK_CUDA(cudaGraphExecDestroy(ws->graph[i].exec));
  for (int i = 0; i < ws->n_dbufs; i++) EP_CHECK_CUDA(cudaFree(ws->dbufs[i]));
  cu_prof_report(ws);
  void *pinned[] = {ws->tok_h, ws->h_logits, ws->h_z, ws->h_dz, ws->h_la, ws->klrow_h, ws->wrow_h, ws->h_mean,
                    ws->ovf_h};
  free(ws->fin_wrow);
  EP_CHECK_CUDA(cudaEventDestroy(ws->step_ev));
  EP_CHECK_CUDA(cudaEventDestroy(ws->prep_ev));
  for (int i = 0; i < 2; i++) EP_CHECK_CUDA(cudaEventDestroy(ws->rel_ev[i]));
  for (size_t i = 0; i < sizeof pinned / sizeof *pinned; i++) EP_CHECK_CUDA(cudaFreeHost(pinned[i]));
  if (ws->prof)
    for (int i = 0; i < CU_PROF_MAX; i++) EP_CHECK_CUDA(cudaEventDestroy(ws->prof_ev[i]));
  EP_CHECK_CUBLAS(cublasDestroy(ws->blas_main));
  EP_CHECK_CUBLAS(cublasDestroy(ws->blas_prep));
  EP_CHECK_CUDA(cudaStreamDestroy(ws->st_main));
  EP_CHECK_CUDA(cudaStreamDestroy(ws->st_prep));
  free(ws->lw);
  free(ws->lfold);
  free(ws->kept);
  free(ws->len_h);
  free(ws->npos_h);
  free(ws->prow_h);
  free(ws->target);
  free(ws->mlog);
  free(ws->dlog);
  free(ws);
}

/* ---- shared pieces ------------------------------------------------------------------- */

static void cu_set_shape(cu_ws *ws, int B, int T, const int32_t *length) {
  EP_CHECK(B >= 1 && B <= ws->Bmax && T >= 1 && T <= ws->Tmax, "batch %d x %d exceeds the workspace %d x %d", B,
           T, ws->Bmax, ws->Tmax);
  ws->B = B;
  ws->T = T;
  ws->N = (size_t)B * T;
  for (int b = 0; b < B; b++) {
    EP_CHECK(length[b] >= 1 && length[b] <= T, "example %d has length %d (row length %d)", b, length[b], T);
    ws->len_h[b] = length[b];
  }
  EP_CHECK_CUDA(cudaMemcpyAsync(ws->len_d, ws->len_h, (size_t)B * sizeof(int32_t), cudaMemcpyHostToDevice, ws->st));
}

/* Check token ids (padding may hold anything: it becomes id 0) and copy them to slot
 * (0 clean, 1 corrupted) of tok_d; returns the device pointer. The entry points that
 * upload tokens first wait for the last prepare (the one entry point that returns with
 * work queued), and one call uses each slot once, so the pinned staging slot is free. */
static const int32_t *cu_upload_tokens(cu_ws *ws, const int32_t *tok, int slot) {
  const int V = ws->m->cfg.vocab;
  int32_t *th = ws->tok_h + (size_t)slot * ws->Bmax * ws->Tmax;
  int32_t *td = ws->tok_d + (size_t)slot * ws->Bmax * ws->Tmax;
  for (int b = 0; b < ws->B; b++)
    for (int t = 0; t < ws->T; t++) {
      const size_t row = (size_t)b * ws->T + t;
      int id = tok[row];
      if (t >= ws->len_h[b] && (id < 0 || id >= V)) id = 0;
      EP_CHECK(id >= 0 && id < V, "token id %d at example %d position %d is outside the vocabulary (%d)", id, b, t,
               V);
      th[row] = id;
    }
  EP_CHECK_CUDA(cudaMemcpyAsync(td, th, ws->N * sizeof(int32_t), cudaMemcpyHostToDevice, ws->st));
  return td;
}

/* MLP of layer l on input x (with add != NULL, x += add first: the masked reader input
 * base + Z delta); out [N, D] gets the writer output, with its bias unless bias = 0 (the
 * caller adds it). x == NULL: the normed input is already in ws->mn (cu_mix_norm). */
static void cu_mlp_core(cu_ws *ws, int l, float *x, const float *add, float *out, int bias) {
  const cu_lw *w = &ws->lw[l];
  const int N = (int)ws->N, D = ws->D, F = ws->F;
  if (x) cu_norm_fwd(ws, x, add, ws->N, ws->mn, ws->mmu, ws->mrs, w->ln2_w, w->ln2_b, ws->N);
  cu_gemm(ws, 0, 0, N, F, D, 1.0f, ws->mn, D, w->w_fc, F, 0.0f, ws->hpre, F);
  cu_bias_act(ws, ws->hpre, w->b_fc, ws->hact, ws->N, F);
  cu_gemm(ws, 0, 0, N, D, F, 1.0f, ws->hact, F, w->w_proj, D, 0.0f, out, D);
  if (bias) cu_add_bias(ws, out, w->b_proj, ws->N, D, 1.0f);
}

/* Logits at the loss positions (from ws->yf) to the host: ws->h_logits [P, Vo]. */
static void cu_logits_to_host(cu_ws *ws) {
  cu_head_logits(ws);
  EP_CHECK_CUDA(cudaMemcpyAsync(ws->h_logits, ws->logits, (size_t)ws->P * ws->Vo * sizeof(float),
                                cudaMemcpyDeviceToHost, ws->st));
  EP_CHECK_CUDA(cudaStreamSynchronize(ws->st));
}

/* Plain model from embeddings xt, xp [N, D] (ws->B/T/len set). With wo, every writer's
 * output goes there (cu_wout). With logits, ws->logits gets the outputs at the loss
 * positions, and out_pos (when non-NULL) a host copy [P, Vo]. */
static void cu_plain_fwd(cu_ws *ws, const float *xt, const float *xp, const cu_wout *wo, int logits,
                         double *out_pos) {
  const ep_graph *g = ws->g;
  const size_t ND = ws->N * (size_t)ws->D;
  cu_add2(ws, ws->res, xt, xp, ND);
  if (wo && g->embedding_nodes) {
    const size_t n = ND - wo->off;
    EP_CHECK_CUDA(
        cudaMemcpyAsync(wo->out, xt + wo->off, n * sizeof(float), cudaMemcpyDeviceToDevice, ws->st));
    EP_CHECK_CUDA(cudaMemcpyAsync(wo->out + wo->stride, xp + wo->off, n * sizeof(float),
                                  cudaMemcpyDeviceToDevice, ws->st));
  }
  for (int l = 0; l < ws->L; l++) {
    const cu_lw *w = &ws->lw[l];
    if (ws->m->cfg.has_attn[l]) {
      cu_norm_fwd(ws, ws->res, NULL, 1, ws->Xn, ws->mu, ws->rs, w->ln1_w, w->ln1_b, ws->N);
      if (ws->plain_rows) { /* q | k | v in ws->q, head outputs with bias columns in ws->ob */
        cu_qkv_rows(ws, l, ws->Xn, ws->q);
        cu_attn_fwd_rows(ws, l, ws->q, ws->att, ws->ob);
        cu_head_out_rows(ws, l, ws->ob, ws->res, wo, g->layer_head_writer[l]);
      } else {
        cu_qkv(ws, l, ws->Xn, 0, 0, 0);
        cu_attn_fwd(ws, l, 0, ws->q, ws->k, ws->v, ws->att, ws->ob);
        cu_head_out(ws, l, 0); /* cu_head_sum adds the bias */
        cu_head_sum(ws, l, ws->hx, ws->res, wo, g->layer_head_writer[l]);
      }
    }
    if (ws->m->cfg.has_mlp[l]) {
      cu_mlp_core(ws, l, ws->res, NULL, ws->xo, 0); /* cu_resid_add adds the bias */
      cu_resid_add(ws, ws->res, ws->xo, ws->lw[l].b_proj, wo, g->layer_mlp_writer[l]);
    }
  }
  if (!logits) return;
  cu_gather_rows(ws, ws->res, ws->yf);
  if (!out_pos) {
    cu_head_logits(ws);
    return;
  }
  cu_logits_to_host(ws);
  const size_t PV = (size_t)ws->P * ws->Vo;
  for (size_t i = 0; i < PV; i++) out_pos[i] = ws->h_logits[i];
}

/* The working buffers of a plain forward (the pointers cu_plain_fwd uses). */
typedef struct {
  float *res, *Xn, *mu, *rs, *q, *k, *v, *att, *ob, *hx, *mn, *mmu, *mrs, *hpre, *hact, *xo;
} cu_plain_bufs;

static cu_plain_bufs plain_bufs_get(const cu_ws *ws) {
  const cu_plain_bufs b = {ws->res, ws->Xn,  ws->mu,  ws->rs, ws->q,   ws->k,    ws->v,    ws->att,
                           ws->ob,  ws->hx,  ws->mn,  ws->mmu, ws->mrs, ws->hpre, ws->hact, ws->xo};
  return b;
}

static void plain_bufs_set(cu_ws *ws, const cu_plain_bufs *b) {
  ws->res = b->res;
  ws->Xn = b->Xn;
  ws->mu = b->mu;
  ws->rs = b->rs;
  ws->q = b->q;
  ws->k = b->k;
  ws->v = b->v;
  ws->att = b->att;
  ws->ob = b->ob;
  ws->hx = b->hx;
  ws->mn = b->mn;
  ws->mmu = b->mmu;
  ws->mrs = b->mrs;
  ws->hpre = b->hpre;
  ws->hact = b->hact;
  ws->xo = b->xo;
}

/* Prepare's clean and corrupted runs as one plain forward of 2B rows (clean first, from
 * the clean embeddings in ws->xtok / xpos and the corrupted tokens of bt): the
 * GEMMs at M = 2N token rows fill the device better than two at N (at 32 x 20 tokens one
 * wave is not full), and every small kernel runs once instead of twice. The buffers for
 * 2N rows are carved from ws->pscr: ddelta, free during a prepare on the step's stream
 * (the backward clears it first), or prepare's own scratch on its own stream.
 * ws->logits gets the clean run's outputs at the loss positions, ws->c the corrupted run's
 * writer outputs. Returns 0 (nothing done) when the scratch would not fit. */
static int cu_plain_pair(cu_ws *ws, const ep_batch *bt) {
  const size_t B = (size_t)ws->B, N = ws->N, D = (size_t)ws->D;
  size_t sizes[18];
  if (pair_sizes(ws, B, (size_t)ws->T, sizes) > ws->pscr_cap) return 0;
  float *p[18], *cur = ws->pscr; /* xt, xp, then cu_plain_bufs' order */
  for (int i = 0; i < 18; i++) {
    p[i] = cur;
    cur += (sizes[i] + 63) / 64 * 64;
  }
  /* embeddings: the clean rows (already in ws->xtok / xpos), then the corrupted rows */
  EP_CHECK_CUDA(cudaMemcpyAsync(p[0], ws->xtok, N * D * sizeof(float), cudaMemcpyDeviceToDevice, ws->st));
  EP_CHECK_CUDA(cudaMemcpyAsync(p[1], ws->xpos, N * D * sizeof(float), cudaMemcpyDeviceToDevice, ws->st));
  cu_embed(ws, cu_upload_tokens(ws, bt->corrupted, 1), p[0] + N * D, p[1] + N * D);
  for (size_t b = 0; b < B; b++) ws->len_h[B + b] = ws->len_h[b];
  EP_CHECK_CUDA(
      cudaMemcpyAsync(ws->len_d, ws->len_h, 2 * B * sizeof(int32_t), cudaMemcpyHostToDevice, ws->st));
  const cu_plain_bufs saved = plain_bufs_get(ws);
  const cu_plain_bufs pair = {p[2],  p[3],  p[4],  p[5],  p[6],  p[7],  p[8],  p[9],
                              p[10], p[11], p[12], p[13], p[14], p[15], p[16], p[17]};
  plain_bufs_set(ws, &pair);
  ws->B = (int)(2 * B);
  ws->N = 2 * N;
  const cu_wout wo = {ws->c, N * D, N * D}; /* the corrupted half */
  ws->plain_rows = ws->rows_ok;
  cu_plain_fwd(ws, p[0], p[1], &wo, 1, NULL);
  ws->plain_rows = 0;
  ws->B = (int)B;
  ws->N = N;
  plain_bufs_set(ws, &saved);
  return 1;
}

/* ---- entry points -------------------------------------------------------------------- */

static void cu_writer_outputs(void *p, const int32_t *tok, const int32_t *length, int B, int T, float *out) {
  cu_ws *ws = (cu_ws *)p;
  EP_CHECK(!ws->pending, "writer_outputs called while a step from faith_sampled_start is unfinished");
  EP_CHECK_CUDA(cudaEventSynchronize(ws->prep_ev)); /* a queued prepare's staging buffers are free */
  EP_CHECK_CUDA(cudaStreamSynchronize(ws->st));
  cu_set_shape(ws, B, T, length);
  ws->P = 0;
  cu_embed(ws, cu_upload_tokens(ws, tok, 0), ws->tmp, ws->tmp2);
  const cu_wout wo = {ws->c, ws->N * (size_t)ws->D, 0};
  cu_plain_fwd(ws, ws->tmp, ws->tmp2, &wo, 0, NULL);
  EP_CHECK_CUDA(cudaMemcpyAsync(out, ws->c, (size_t)ws->W * ws->N * ws->D * sizeof(float), cudaMemcpyDeviceToHost,
                                ws->st));
  EP_CHECK_CUDA(cudaStreamSynchronize(ws->st));
}

/* prepare's work on ws->st into the current batch state; ends by recording prep_ev. */
static int64_t cu_prepare_run(cu_ws *ws, const ep_batch *bt, const float *mean_c) {
  cu_set_shape(ws, bt->B, bt->T, bt->length);
  const size_t ND = ws->N * (size_t)ws->D;
  ws->P = 0;
  for (int b = 0; b < bt->B; b++) {
    const int s = bt->loss_start[b], e = bt->loss_end[b];
    EP_CHECK(0 <= s && s < e && e <= bt->length[b], "example %d: loss positions [%d, %d) outside [0, %d)", b, s, e,
             bt->length[b]);
    ws->npos_h[b] = e - s;
    for (int t = s; t < e; t++) ws->prow_h[ws->P++] = b * bt->T + t;
  }
  EP_CHECK_CUDA(
      cudaMemcpyAsync(ws->prow_d, ws->prow_h, (size_t)ws->P * sizeof(int32_t), cudaMemcpyHostToDevice, ws->st));
  cu_prof_start(ws, 0);
  cu_embed(ws, cu_upload_tokens(ws, bt->clean, 0), ws->xtok, ws->xpos);
  int cached = 0; /* every example's outputs came from the prepare cache */
  int paired = 0; /* the clean and corrupted runs were one forward (cu_plain_pair) */
  /* clean outputs at the loss positions: kept on the device for the device losses
   * (full_outputs copies them back on request), on the host for backend_loss */
  if (cu_device_kl(ws)) {
    /* row weights of the kl losses: 1/(n_b B) for kl, 1/B for kl_sum (backend_loss) */
    int64_t q = 0;
    for (int b = 0; b < ws->B; b++)
      for (int j = 0; j < ws->npos_h[b]; j++)
        ws->wrow_h[q++] = ws->o.loss == EP_LOSS_KL ? 1.0 / ((double)ws->npos_h[b] * ws->B) : 1.0 / ws->B;
    EP_CHECK_CUDA(cudaMemcpyAsync(ws->wrow_d, ws->wrow_h, (size_t)ws->P * sizeof(double), cudaMemcpyHostToDevice,
                                  ws->st));
    if (ws->o.ablation == EP_ABLATE_INTERCHANGE)
      EP_CHECK(bt->corrupted, "interchange ablation needs corrupted tokens"); /* the cache key reads them */
    cached = cu_cache_fetch(ws, bt);
    if (!cached) {
      paired = ws->o.ablation == EP_ABLATE_INTERCHANGE && ws->pair && cu_plain_pair(ws, bt);
      /* (prepare's own stream has its own scratch for the paired forward only) */
      EP_CHECK(paired || ws->st != ws->st_prep, "prepare on its own stream without the paired forward");
      if (!paired) cu_plain_fwd(ws, ws->xtok, ws->xpos, NULL, 1, NULL);
      cu_mark(ws, CU_PH_PLAIN);
      cu_kl_prepare(ws);
    }
    cu_mark(ws, CU_PH_PREP);
  } else {
    cu_plain_fwd(ws, ws->xtok, ws->xpos, NULL, 1, ws->target);
    cu_mark(ws, CU_PH_PLAIN);
  }
  if (ws->o.ablation == EP_ABLATE_INTERCHANGE) {
    EP_CHECK(bt->corrupted, "interchange ablation needs corrupted tokens");
    if (!cached && !paired) { /* else the cache or the paired forward filled ws->c */
      cu_embed(ws, cu_upload_tokens(ws, bt->corrupted, 1), ws->tmp, ws->tmp2);
      const cu_wout wo = {ws->c, ND, 0};
      cu_plain_fwd(ws, ws->tmp, ws->tmp2, &wo, 0, NULL);
      cu_mark(ws, CU_PH_PLAIN);
    }
  } else if (ws->o.ablation == EP_ABLATE_ZERO) {
    EP_CHECK_CUDA(cudaMemsetAsync(ws->c, 0, (size_t)ws->W * ND * sizeof(float), ws->st));
  } else {
    EP_CHECK(mean_c, "mean ablation needs the writer means");
    /* the means go up only when they changed (training passes the same ones every step),
     * through pinned staging, so prepare need not wait for the stream (a queued step) */
    const size_t bytes = (size_t)ws->W * ws->Tmax * ws->D * sizeof(float);
    if (!ws->h_mean) ws->h_mean = (float *)cu_host_pinned(bytes);
    if (!ws->mean_up || memcmp(ws->h_mean, mean_c, bytes)) {
      memcpy(ws->h_mean, mean_c, bytes); /* free: the last prepare's copies are done (prep_ev) */
      EP_CHECK_CUDA(cudaMemcpyAsync(ws->meanc, ws->h_mean, bytes, cudaMemcpyHostToDevice, ws->st));
      ws->mean_up = 1;
    }
    cu_mean_broadcast(ws, ws->meanc, ws->c);
  }
  /* base points: the running corrupted residual at each reader group (a cache hit with
   * interchange ablation made them while gathering c) */
  if (!(cached && ws->o.ablation == EP_ABLATE_INTERCHANGE)) cu_base_points(ws);
  if (!cached && cu_device_kl(ws)) cu_cache_store(ws, bt);
  cu_mark(ws, CU_PH_PREP);
  cu_prof_end(ws);
  EP_CHECK_CUDA(cudaEventRecord(ws->prep_ev, ws->st));
  return ws->P;
}

/* backend.h prepare. Returns with its work queued, not waited for (a step queued by
 * faith_sampled_start before it runs first, and keeps its own batch); the next prepare
 * waits for this one before it reuses the staging buffers.
 *
 * With a step queued and ws->side, a computed prepare runs on its own stream (st_prep,
 * with its own cuBLAS handle and scratch) into the batch state the queued step does not
 * read, alongside that step: the clean and corrupted runs fill the multiprocessors the
 * masked step leaves idle (tf32 32 x 20 rows: 11.29 -> 10.55 ms a cold step in the
 * training loop's order, an H200). The step's stream then waits for it, so whatever runs
 * there next (the next step, full_outputs) sees this batch. Otherwise (nothing queued, or
 * every example in the prepare cache) prepare runs in order on the step's stream into the
 * current batch state: a cache hit's two gathers (0.2 ms) there fill the gap while the
 * host finishes the step, where alongside the step they slowed it (9.22 -> 9.43 ms a
 * cached step). */
static int64_t cu_prepare(void *p, const ep_batch *bt, const float *mean_c) {
  cu_ws *ws = (cu_ws *)p;
  EP_CHECK_CUDA(cudaEventSynchronize(ws->prep_ev)); /* the last prepare's staging buffers are free */
  if (!ws->side || ws->pending != 1 || cu_cache_has(ws, bt)) return cu_prepare_run(ws, bt, mean_c);
  if (!ws->side_ready) cu_side_alloc(ws);
  /* everything on the step's stream so far reads the current state; the other one was last
   * read by what that stream held when it stopped being current (rel_ev, recorded then) */
  const int next = 1 - ws->cur;
  EP_CHECK_CUDA(cudaEventRecord(ws->rel_ev[ws->cur], ws->st_main));
  EP_CHECK_CUDA(cudaStreamWaitEvent(ws->st_prep, ws->rel_ev[next], 0));
  cu_bset_use(ws, next);
  ws->side_ctx.logits = ws->tgt_d; /* the clean logits straight into place (cu_kl_prepare) */
  cu_pctx_swap(ws, &ws->side_ctx);
  const int64_t P = cu_prepare_run(ws, bt, mean_c);
  cu_pctx_swap(ws, &ws->side_ctx); /* the step's stream, handle and scratch back */
  EP_CHECK_CUDA(cudaStreamWaitEvent(ws->st_main, ws->prep_ev, 0));
  return P;
}

static void cu_full_outputs(void *p, float *out) {
  cu_ws *ws = (cu_ws *)p;
  const size_t PV = (size_t)ws->P * ws->Vo;
  if (cu_device_kl(ws)) {
    EP_CHECK_CUDA(cudaMemcpyAsync(out, ws->tgt_d, PV * sizeof(float), cudaMemcpyDeviceToHost, ws->st));
    EP_CHECK_CUDA(cudaStreamSynchronize(ws->st));
    return;
  }
  for (size_t i = 0; i < PV; i++) out[i] = (float)ws->target[i];
}

/* ---- masked forward / backward ------------------------------------------------------- */

/* The fused mixing + norm kernel for this precision? TF32 keeps the cuBLAS mixing by
 * default: the fused kernel mixes in exact fp32, which moves the TF32 step's error
 * pattern (measured 1.23e-2 of the gradients' scale on the test models, over its 1e-2 check). */
static int cu_mixnorm_on(const cu_ws *ws) { return ws->mixnorm == 2 || (ws->mixnorm == 1 && ws->compute != 1); }
/* TF32: the q/k/v readers' mixing + norm on tensor cores (mixnorm_tc.cu), by default. */
static int cu_mixnorm_tc_on(const cu_ws *ws) { return ws->mixnorm == 1 && ws->compute == 1; }

/* Point the working buffers at layer l's kept state, or at the shared scratch. */
static void cu_use_layer(cu_ws *ws, int l) {
  const cu_lstate *s = ws->keep_acts ? &ws->kept[l] : &ws->shared;
  ws->Y = s->Y;
  ws->mu = s->mu;
  ws->rs = s->rs;
  ws->q = s->q;
  ws->k = s->k;
  ws->v = s->v;
  ws->ob = s->ob;
  ws->att = s->att;
  ws->hx = s->hx;
  ws->ym = s->ym;
  ws->mmu = s->mmu;
  ws->mrs = s->mrs;
  ws->hpre = s->hpre;
  ws->xo = s->xo;
}

/* Sizes (floats) of a layer's kept attention state [9] and MLP state [5]. */
static void cu_keep_sizes(const cu_ws *ws, size_t attn[9], size_t mlp[5]) {
  const size_t N = (size_t)ws->Bmax * ws->Tmax, D = (size_t)ws->D, H = (size_t)ws->H, dh = (size_t)ws->dh;
  const size_t a[9] = {3 * H * N * D, 3 * H * N, 3 * H * N, H * N * dh, H * N * dh, H * N * dh, H * N * dh,
                       H * N * (size_t)ws->Tmax, H * N * D};
  const size_t b[5] = {N * D, N, N, N * (size_t)ws->F, N * D};
  memcpy(attn, a, sizeof a);
  memcpy(mlp, b, sizeof b);
}

/* Floats of every layer's kept state (64-float aligned pieces). */
static size_t cu_keep_floats(const cu_ws *ws) {
  size_t attn[9], mlp[5], total = 0;
  cu_keep_sizes(ws, attn, mlp);
  for (int l = 0; l < ws->L; l++) {
    if (ws->m->cfg.has_attn[l])
      for (int i = 0; i < 9; i++) total += (attn[i] + 63) / 64 * 64;
    if (ws->m->cfg.has_mlp[l])
      for (int i = 0; i < 5; i++) total += (mlp[i] + 63) / 64 * 64;
  }
  return total;
}

extern "C" void backend_cuda_set_keep_activations(void *p, int on) {
  cu_ws *ws = (cu_ws *)p;
  if (on && !ws->kept) {
    /* one allocation carved into every layer's buffers (256-byte aligned pieces) */
    size_t attn[9], mlp[5];
    cu_keep_sizes(ws, attn, mlp);
    const size_t total = cu_keep_floats(ws);
    float *cur = (float *)cu_dalloc(ws, total, sizeof(float));
    ws->kept = (cu_lstate *)ep_calloc((size_t)ws->L, sizeof *ws->kept);
    for (int l = 0; l < ws->L; l++) {
      cu_lstate *s = &ws->kept[l];
      *s = ws->shared; /* parts a layer lacks (Tracr) keep valid scratch pointers, never used */
      if (ws->m->cfg.has_attn[l]) {
        float **f[9] = {&s->Y, &s->mu, &s->rs, &s->q, &s->k, &s->v, &s->ob, &s->att, &s->hx};
        for (int i = 0; i < 9; i++) {
          *f[i] = cur;
          cur += (attn[i] + 63) / 64 * 64;
        }
      }
      if (ws->m->cfg.has_mlp[l]) {
        float **f[5] = {&s->ym, &s->mmu, &s->mrs, &s->hpre, &s->xo};
        for (int i = 0; i < 5; i++) {
          *f[i] = cur;
          cur += (mlp[i] + 63) / 64 * 64;
        }
      }
    }
    EP_CHECK_CUDA(cudaDeviceSynchronize()); /* zeroing ran on the legacy stream */
  }
  ws->keep_acts = on != 0;
  cu_use_layer(ws, 0);
}

/* Does layer l merge its q/k/v and MLP reader groups? The masks of the MLP reader's first
 * n inputs (the writers before the layer) follow the 3H q/k/v rows with the same leading
 * dimension n (graph.c's edge order), so one pass over those n writers serves all 3H + 1
 * readers: in the forward (TF32 kernel, kept activations) the MLP reader's part of the
 * mixing; in the backward the edge gradients and the ddelta update, with the MLP
 * reader's gradient in Xn's slot 3H. The edges from the layer's own heads into its MLP
 * reader are done on their own. */
static int cu_merged(const cu_ws *ws, int l) {
  const ep_graph *g = ws->g;
  if (!ws->merge || !ws->m->cfg.has_attn[l] || !ws->m->cfg.has_mlp[l]) return 0;
  const ep_reader *q = &g->readers[g->layer_q_reader[l]], *m = &g->readers[g->layer_mlp_reader[l]];
  return g->layer_head_writer[l] == q->n_in && m->n_in == q->n_in + ws->H &&
         m->edge_offset == q->edge_offset + (int64_t)3 * ws->H * q->n_in;
}

/* Attention readers of layer l: Y = base + Z_l delta (one GEMM for all 3H readers),
 * per-reader LN into Xn, q/k/v and attention of every head. With store, the heads' delta. */
static void cu_attn_layer_fwd(cu_ws *ws, int l, int store) {
  const ep_graph *g = ws->g;
  const cu_lw *w = &ws->lw[l];
  const int r0 = g->layer_q_reader[l], n = g->readers[r0].n_in, R3 = 3 * ws->H, hw = g->layer_head_writer[l];
  const size_t ND = ws->N * (size_t)ws->D;
  const float *Z = ws->zd + g->readers[r0].edge_offset, *base = ws->base + (size_t)(2 * l) * ND;
  /* merged (forward with kept activations): the MLP reader's part over these n writers
   * comes along as reader R3, into ws->mpart (cu_mlp_layer_fwd adds the layer's heads) */
  const int mg = store && ws->keep_acts && ws->merge_fwd && cu_merged(ws, l);
  const int fold = ws->folded_ok; /* cu_fold_weights ran: TF32 and EP_CUDA_FOLD on */
  ws->mpart_layer = -1;
  ws->lfold[l] = 0;
  const int tc = cu_mixnorm_tc_on(ws) ? cu_mix_norm_tc(ws, Z, mg ? R3 + 1 : R3, R3, n, base, ws->Y, ws->Xn, ws->mu,
                                                        ws->rs, w->ln1_w, w->ln1_b, base + ND, ws->mpart, fold,
                                                        ws->xhat16)
                                     : 0;
  if (tc) {
    if (mg) ws->mpart_layer = l;
    ws->lfold[l] = tc == 2 ? 2 : fold;
    cu_mark(ws, CU_PH_MIX); /* TF32: mixing on tensor cores and the per-reader LN in one kernel */
  } else if (cu_mixnorm_on(ws) &&
             cu_mix_norm(ws, Z, R3, 0, n, base, ws->Y, ws->Xn, ws->mu, ws->rs, w->ln1_w, w->ln1_b)) {
    cu_mark(ws, CU_PH_MIX); /* mixing and the per-reader LN in one kernel */
  } else {
    if (n > 0 && ws->compute == 2)
      cu_gemm_bf16(ws, 0, 0, R3, (int)ND, n, 1.0f, ws->z_bf + g->readers[r0].edge_offset, n, ws->delta_bf,
                   (int)ND, 0.0f, ws->Y, (int)ND);
    else if (n > 0)
      cu_gemm(ws, 0, 0, R3, (int)ND, n, 1.0f, Z, n, cu_delta32(ws), (int)ND, 0.0f, ws->Y, (int)ND);
    else EP_CHECK_CUDA(cudaMemsetAsync(ws->Y, 0, (size_t)R3 * ND * sizeof(float), ws->st));
    cu_mark(ws, CU_PH_MIX);
    cu_norm_fwd(ws, ws->Y, base, ws->N, ws->Xn, ws->mu, ws->rs, w->ln1_w, w->ln1_b, (size_t)R3 * ws->N);
    cu_mark(ws, CU_PH_NORM);
  }
  if (ws->lfold[l] == 2) cu_qkv_h(ws, l, (const __half *)ws->Y, 3 * (long long)ND, (long long)ND);
  else cu_qkv(ws, l, ws->lfold[l] ? ws->Y : ws->Xn, 3 * (long long)ND, (long long)ND, ws->lfold[l]);
  cu_mark(ws, CU_PH_QKV);
  cu_attn_fwd(ws, l, ws->lfold[l] != 0, ws->q, ws->k, ws->v, ws->att, ws->ob);
  cu_mark(ws, CU_PH_ATTN);
  if (store) {
    cu_head_out(ws, l, 0); /* the bias in the delta pass */
    cu_delta_write_bias(ws, ws->hx, ws->lw[l].b_o, (float)(1.0 / ws->H), ws->c + (size_t)hw * ND,
                        ws->zd + ws->E + hw, ws->delta + (size_t)hw * ND, ws->H);
    cu_mark(ws, CU_PH_HOUT);
  }
}

/* ddelta += Z^T dY for layer l's q/k/v reader group (dY in ws->Xn, R rows, writers [0, n)).
 * Pairs of layers share one pass: the update streams the ddelta of every writer before
 * the layer through memory, so layer l (when layer l - 1 has a q/k/v group that
 * k_ddelta_tc covers together with this one) adds its part at once only to the writers of layer
 * l - 1, [m, n), which the backward reaches next, and leaves the rest waiting in
 * ws->dd_pend with its dY; ws->Xn moves to the other buffer. Layer l - 1 then adds both
 * groups to the writers [0, m) in one pass. Every writer's ddelta is complete before its
 * node gradient: the writers before layer l - 1's readers come after them. */
static void cu_layer_ddelta(cu_ws *ws, int l, int R, int n, const float *Z) {
  const ep_graph *g = ws->g;
  const cu_dd_src cur = {Z, ws->Xn, R, n}, none = {NULL, NULL, 0, 0};
  if (ws->dd_pend.R) { /* layer l + 1's group, over the writers [0, n) */
    cu_ddelta_add(ws, ws->dd_pend, cur, 0, n);
    ws->dd_pend = none;
    return;
  }
  const int lo = l - 1, m = lo >= 0 && ws->m->cfg.has_attn[lo] ? g->readers[g->layer_q_reader[lo]].n_in : -1;
  const int Rlo = lo >= 0 && cu_merged(ws, lo) ? 3 * ws->H + 1 : 3 * ws->H;
  if (ws->dd_pair && m >= 0 && m < n && cu_ddelta_tc_covers(ws, R + Rlo, m)) {
    const cu_dd_src now = {Z + m, ws->Xn, R, n};
    cu_ddelta_add(ws, now, none, m, n - m);
    ws->dd_pend = cur;
    ws->Xn = ws->xn_buf[ws->Xn == ws->xn_buf[0]];
    return;
  }
  cu_ddelta_add(ws, cur, none, 0, n);
}

/* Backward through layer l's attention (after cu_attn_layer_fwd(store=0) recomputed it,
 * or with its kept activations). */
static void cu_attn_layer_bwd(cu_ws *ws, int l, int node_masks) {
  const ep_graph *g = ws->g;
  const cu_lw *w = &ws->lw[l];
  const int r0 = g->layer_q_reader[l], n = g->readers[r0].n_in, R3 = 3 * ws->H, hw = g->layer_head_writer[l];
  const size_t ND = ws->N * (size_t)ws->D;
  if (!ws->keep_acts) cu_head_out(ws, l, 1); /* else hx holds the forward's head outputs */
  /* node gradients of the heads; hx becomes d x_i = z_i ddelta_i */
  cu_node_grad(ws, ws->hx, ws->c + (size_t)hw * ND, ws->ddelta + (size_t)hw * ND, ws->zd + ws->E + hw,
               node_masks ? ws->dzd + ws->E + hw : NULL, ws->hx, ws->H);
  cu_mark(ws, CU_PH_NODE);
  cu_head_out_bwd(ws, l);
  cu_mark(ws, CU_PH_HOUT);
  cu_attn_bwd(ws, l, ws->lfold[l] != 0, ws->q, ws->k, ws->v, ws->att, ws->dob, ws->dq, ws->dk, ws->dv);
  cu_mark(ws, CU_PH_ATTN_B);
  cu_qkv_bwd(ws, l, ws->lfold[l] != 0);
  cu_mark(ws, CU_PH_QKV);
  if (ws->lfold[l] == 2) cu_norm_bwd_xhat_h(ws, (const __half *)ws->Y, ws->rs, ws->Xn, ws->Xn, (size_t)R3 * ws->N);
  else if (ws->lfold[l]) cu_norm_bwd_xhat(ws, ws->Y, ws->rs, ws->Xn, ws->Xn, (size_t)R3 * ws->N);
  else cu_norm_bwd(ws, ws->Y, ws->mu, ws->rs, w->ln1_w, ws->Xn, ws->Xn, (size_t)R3 * ws->N);
  cu_mark(ws, CU_PH_NORM);
  /* merged: Xn's slot R3 holds the MLP reader's gradient (cu_mlp_layer_bwd) */
  const int R = cu_merged(ws, l) ? R3 + 1 : R3;
  cu_edge_grad(ws, ws->Xn, R, 0, n, ws->zd + g->readers[r0].edge_offset, ws->dzd + g->readers[r0].edge_offset, 0);
  cu_layer_ddelta(ws, l, R, n, ws->zd + g->readers[r0].edge_offset);
  cu_mark(ws, CU_PH_DDELTA);
}

/* MLP reader input of layer l (ws->ym = base + z delta), then the MLP into x (its output
 * bias left to the caller with bias = 0). */
static void cu_mlp_layer_fwd(cu_ws *ws, int l, float *x, int bias) {
  const ep_graph *g = ws->g;
  const int r = g->layer_mlp_reader[l], n = g->readers[r].n_in;
  const size_t ND = ws->N * (size_t)ws->D;
  const cu_lw *w = &ws->lw[l];
  const float *base = ws->base + (size_t)(2 * l + 1) * ND;
  if (ws->mpart_layer == l) {
    /* mpart = base + the inputs before the layer (cu_attn_layer_fwd): add the heads' */
    const int hw = g->layer_head_writer[l];
    const float *Zh = ws->zd + g->readers[r].edge_offset + hw;
    ws->mpart_layer = -1;
    if (cu_mix_norm(ws, Zh, 1, hw, n - hw, ws->mpart, ws->ym, ws->mn, ws->mmu, ws->mrs, w->ln2_w, w->ln2_b)) {
      cu_mark(ws, CU_PH_MIX);
      cu_mlp_core(ws, l, NULL, NULL, x, bias);
    } else {
      cu_gemm(ws, 0, 0, 1, (int)ND, n - hw, 1.0f, Zh, n - hw, cu_delta32(ws) + (size_t)hw * ND, (int)ND, 0.0f, ws->ym,
              (int)ND);
      cu_mark(ws, CU_PH_MIX);
      cu_mlp_core(ws, l, ws->ym, ws->mpart, x, bias);
    }
    return;
  }
  if (cu_mixnorm_on(ws) &&
      cu_mix_norm(ws, ws->zd + g->readers[r].edge_offset, 1, 0, n, base, ws->ym, ws->mn, ws->mmu, ws->mrs,
                  w->ln2_w, w->ln2_b)) {
    cu_mark(ws, CU_PH_MIX);
    cu_mlp_core(ws, l, NULL, NULL, x, bias);
    return;
  }
  if (n > 0 && ws->compute == 2)
    cu_gemm_bf16(ws, 0, 0, 1, (int)ND, n, 1.0f, ws->z_bf + g->readers[r].edge_offset, n, ws->delta_bf, (int)ND,
                 0.0f, ws->ym, (int)ND);
  else if (n > 0)
    cu_gemm(ws, 0, 0, 1, (int)ND, n, 1.0f, ws->zd + g->readers[r].edge_offset, n, cu_delta32(ws), (int)ND, 0.0f, ws->ym,
            (int)ND);
  else EP_CHECK_CUDA(cudaMemsetAsync(ws->ym, 0, ND * sizeof(float), ws->st));
  cu_mark(ws, CU_PH_MIX);
  cu_mlp_core(ws, l, ws->ym, base, x, bias);
}

static void cu_mlp_layer_bwd(cu_ws *ws, int l, int node_masks) {
  const ep_graph *g = ws->g;
  const cu_lw *w = &ws->lw[l];
  const int r = g->layer_mlp_reader[l], n = g->readers[r].n_in, wi = g->layer_mlp_writer[l];
  const int D = ws->D, F = ws->F, N = (int)ws->N;
  const size_t ND = ws->N * (size_t)D;
  if (!ws->keep_acts) {
    cu_mlp_layer_fwd(ws, l, ws->xo, 1);
    cu_mark(ws, CU_PH_MLP);
  }
  cu_node_grad(ws, ws->xo, ws->c + (size_t)wi * ND, ws->ddelta + (size_t)wi * ND, ws->zd + ws->E + wi,
               node_masks ? ws->dzd + ws->E + wi : NULL, ws->xo, 1);
  cu_mark(ws, CU_PH_NODE);
  /* the reader gradient: in Xn's slot 3H when the attention backward takes it along */
  const int merged = cu_merged(ws, l);
  float *dm = merged ? ws->Xn + (size_t)3 * ws->H * ND : ws->mn;
  /* dhact = dx W_proj^T; dhpre = dhact act'(hpre); dmn = dhpre W_fc^T; then the norm */
  cu_gemm(ws, 0, 1, N, F, D, 1.0f, ws->xo, D, w->w_proj, D, 0.0f, ws->hact, F);
  cu_act_bwd(ws, ws->hpre, ws->hact, ws->N * (size_t)F);
  cu_gemm(ws, 0, 1, N, D, F, 1.0f, ws->hact, F, w->w_fc, F, 0.0f, dm, D);
  cu_norm_bwd(ws, ws->ym, ws->mmu, ws->mrs, w->ln2_w, dm, dm, ws->N);
  cu_mark(ws, CU_PH_MLP_B);
  const int64_t off = g->readers[r].edge_offset;
  if (merged) { /* here only the edges from this layer's heads, writers [n - H, n) */
    const int hw = g->layer_head_writer[l];
    cu_edge_grad(ws, dm, 1, hw, n - hw, ws->zd + off + hw, ws->dzd + off + hw, 1);
  } else {
    cu_edge_grad(ws, dm, 1, 0, n, ws->zd + off, ws->dzd + off, 1);
  }
}

/* Device KL losses: wait for the stream, then the loss from the per-position KLs and the
 * outputs (when requested) from the pinned staging copies. */
static void cu_kl_finish(cu_ws *ws, float *out, double *loss) {
  EP_CHECK_CUDA(cudaStreamSynchronize(ws->st));
  if (out) memcpy(out, ws->h_logits, (size_t)ws->P * ws->Vo * sizeof(float));
  double s = 0;
  for (int64_t p = 0; p < ws->P; p++) s += ws->wrow_h[p] * ws->klrow_h[p];
  *loss = s;
}

/* Does this step need fp32 delta next to TF32's fp16 copy? Not when the copy serves every
 * reader: each layer's q/k/v readers, with the MLP reader's inputs before the layer merged
 * in (kept activations), in the persistent mixing kernel; the MLP reader's heads in the
 * fp32 mixing kernel (cu_mix_norm_covers); all edge gradients in edge_tc.cu (N D a multiple of 8);
 * resid_post in its own kernels. Then the fp32 stores (a third of the delta write's
 * bytes) are left out. Any other reader checks ws->delta32 (cu_delta32). */
static int cu_delta32_needed(const cu_ws *ws) {
  const ep_graph *g = ws->g;
  const ep_model_config *c = &ws->m->cfg;
  if (!cu_delta16_on(ws) || ws->delta32_force || !ws->keep_acts || !ws->merge || !ws->merge_fwd || !ws->edge_tc ||
      !cu_mixnorm_tc_on(ws) || (ws->N * (size_t)ws->D) % 8 || !cu_mix_norm_covers(ws, 1))
    return 1;
  for (int l = 0; l < ws->L; l++) {
    if (c->has_mlp[l] && !cu_merged(ws, l)) return 1; /* the MLP reader mixed by a GEMM */
    if (!c->has_attn[l]) continue;
    const int n = g->readers[g->layer_q_reader[l]].n_in, R = 3 * ws->H + (c->has_mlp[l] ? 1 : 0);
    if (n == 0 && c->has_mlp[l]) return 1; /* no q/k/v mixing to merge into: a GEMM over the heads */
    if (n > 0 && !cu_mix_norm_tc_fp16(ws, R, n)) return 1;
  }
  return 0;
}

/* Masked forward on the device: masks into ws->zd (from the pinned staging ws->h_z, or
 * drawn on the device from ws->h_la when ws->dev_sample), the difference stack,
 * resid_post at the loss positions in ws->yf. */
static void cu_faith_fwd_dev(cu_ws *ws) {
  const ep_graph *g = ws->g;
  const ep_model_config *c = &ws->m->cfg;
  const size_t ND = ws->N * (size_t)ws->D, E = (size_t)ws->E, W = (size_t)ws->W;
  if (ws->dev_sample) cu_hc_sample(ws);
  else
    EP_CHECK_CUDA(cudaMemcpyAsync(ws->zd, ws->h_z, (E + W) * sizeof(float), cudaMemcpyHostToDevice, ws->st));
  const float *zn = ws->zd + E;
  if (ws->compute == 2) cu_to_bf16(ws, ws->zd, ws->z_bf, E);
  if (cu_delta16_on(ws)) EP_CHECK_CUDA(cudaMemsetAsync(ws->ovf_d, 0, sizeof(int), ws->st));
  ws->delta32 = cu_delta32_needed(ws);
  if (g->embedding_nodes) {
    cu_delta_write(ws, ws->xtok, ws->c, zn, ws->delta, 1);
    cu_delta_write(ws, ws->xpos, ws->c + ND, zn + 1, ws->delta + ND, 1);
  }
  for (int l = 0; l < ws->L; l++) {
    cu_use_layer(ws, l);
    if (c->has_attn[l]) cu_attn_layer_fwd(ws, l, 1);
    if (c->has_mlp[l]) {
      const int wi = g->layer_mlp_writer[l];
      cu_mlp_layer_fwd(ws, l, ws->xo, 0); /* the output bias in the delta pass */
      cu_delta_write_bias(ws, ws->xo, ws->lw[l].b_proj, 1.0f, ws->c + (size_t)wi * ND, zn + wi,
                          ws->delta + (size_t)wi * ND, 1);
      cu_mark(ws, CU_PH_MLP);
    }
  }
  const ep_reader *rf = &g->readers[g->resid_reader];
  cu_resid_fwd(ws, ws->base + (size_t)(2 * ws->L) * ND, ws->zd + rf->edge_offset, rf->n_in, ws->yf);
  if (cu_delta16_on(ws))
    EP_CHECK_CUDA(cudaMemcpyAsync(ws->ovf_h, ws->ovf_d, sizeof(int), cudaMemcpyDeviceToHost, ws->st));
}

/* Device KL losses after the forward: outputs (when want_out) and per-position KLs into
 * the pinned staging; with grad, ws->logits becomes d loss / d logits. */
static void cu_faith_kl_dev(cu_ws *ws, int want_out, int grad) {
  cu_mark(ws, CU_PH_HEAD); /* resid_post */
  cu_head_logits(ws);
  cu_mark(ws, CU_PH_LOGITS);
  if (want_out)
    EP_CHECK_CUDA(cudaMemcpyAsync(ws->h_logits, ws->logits, (size_t)ws->P * ws->Vo * sizeof(float),
                                  cudaMemcpyDeviceToHost, ws->st));
  cu_kl_rows(ws, grad);
  EP_CHECK_CUDA(
      cudaMemcpyAsync(ws->klrow_h, ws->klrow_d, (size_t)ws->P * sizeof(double), cudaMemcpyDeviceToHost, ws->st));
  cu_mark(ws, CU_PH_HEAD);
}

/* Backward on the device from d loss / d logits in ws->logits to dz (edges, then nodes
 * when nm) in the pinned staging ws->h_dz; with ws->dev_sample, the drawn masks and
 * their dz/dlog_alpha after it (cu_hc_sample's layout). */
static void cu_faith_bwd_dev(cu_ws *ws, int nm) {
  const ep_graph *g = ws->g;
  const ep_model_config *c = &ws->m->cfg;
  const size_t ND = ws->N * (size_t)ws->D, E = (size_t)ws->E, W = (size_t)ws->W;
  const float *zn = ws->zd + E;
  const ep_reader *rf = &g->readers[g->resid_reader];
  EP_CHECK_CUDA(cudaMemsetAsync(ws->ddelta, 0, W * ND * sizeof(float), ws->st));
  EP_CHECK_CUDA(cudaMemsetAsync(ws->dzd, 0, (E + W) * sizeof(double), ws->st));
  ws->dd_pend.R = 0;
  cu_mark(ws, CU_PH_HEAD);
  cu_head_logits_bwd(ws);
  cu_mark(ws, CU_PH_LOGITS);
  cu_resid_bwd(ws, ws->xf, ws->zd + rf->edge_offset, rf->n_in, ws->dzd + rf->edge_offset);
  cu_mark(ws, CU_PH_HEAD);
  for (int l = ws->L - 1; l >= 0; l--) {
    cu_use_layer(ws, l);
    if (c->has_mlp[l]) cu_mlp_layer_bwd(ws, l, nm);
    if (c->has_attn[l]) {
      if (!ws->keep_acts) cu_attn_layer_fwd(ws, l, 0);
      cu_attn_layer_bwd(ws, l, nm);
    }
  }
  EP_CHECK(ws->dd_pend.R == 0, "a ddelta update was left waiting after the backward");
  ws->Xn = ws->xn_buf[0];
  if (g->embedding_nodes && nm) {
    cu_node_grad(ws, ws->xtok, ws->c, ws->ddelta, zn, ws->dzd + E, NULL, 1);
    cu_node_grad(ws, ws->xpos, ws->c + ND, ws->ddelta + ND, zn + 1, ws->dzd + E + 1, NULL, 1);
    cu_mark(ws, CU_PH_NODE);
  }
  const size_t nz = (ws->dev_sample ? 3 : 1) * (E + W);
  EP_CHECK_CUDA(cudaMemcpyAsync(ws->h_dz, ws->dzd, nz * sizeof(double), cudaMemcpyDeviceToHost, ws->st));
  cu_mark(ws, CU_PH_HEAD);
}

/* Kernel nodes in graph (cuBLAS's included). */
static int64_t cu_graph_kernel_nodes(cudaGraph_t graph) {
  size_t n = 0;
  EP_CHECK_CUDA(cudaGraphGetNodes(graph, NULL, &n));
  cudaGraphNode_t *nodes = (cudaGraphNode_t *)ep_malloc(n * sizeof *nodes + 1);
  EP_CHECK_CUDA(cudaGraphGetNodes(graph, nodes, &n));
  int64_t k = 0;
  for (size_t i = 0; i < n; i++) {
    cudaGraphNodeType t;
    EP_CHECK_CUDA(cudaGraphNodeGetType(nodes[i], &t));
    k += t == cudaGraphNodeTypeKernel;
  }
  free(nodes);
  return k;
}

/* The device-KL step as one CUDA graph: captured on first use of a (B, T, P, outputs,
 * backward, node masks, precision, kept activations, mixing kernel) combination and
 * replayed while it recurs; up to CU_GRAPH_SLOTS combinations are kept, the least
 * recently launched one making room. Every buffer is fixed in the workspace and the
 * kernels read batch contents (tokens, rows, weights, masks) from device memory, so
 * only those launch shapes and choices enter the key. Saves the ~700 launches a step. */
static void cu_faith_graph(cu_ws *ws, int nm, int want_out, int grad) {
  const int key[CU_GRAPH_KEY] = {ws->B,       ws->T,         (int)ws->P,        nm,
                                 want_out,    grad,          ws->compute,       ws->keep_acts,
                                 cu_mixnorm_on(ws), ws->mixnorm_split, ws->dev_sample, ws->cur,
                                 cu_delta16_on(ws)};
  static_assert(sizeof key == sizeof ws->graph[0].key, "the graph key and its copy in the workspace differ");
  cu_graph_slot *gs = NULL;
  for (int i = 0; i < CU_GRAPH_SLOTS && !gs; i++)
    if (ws->graph[i].exec && !memcmp(key, ws->graph[i].key, sizeof key)) gs = &ws->graph[i];
  if (!gs) {
    gs = &ws->graph[0]; /* an empty slot, else the least recently launched */
    for (int i = 1; i < CU_GRAPH_SLOTS && gs->exec; i++)
      if (!ws->graph[i].exec || ws->graph[i].used < gs->used) gs = &ws->graph[i];
    if (gs->exec) EP_CHECK_CUDA(cudaGraphExecDestroy(gs->exec));
    gs->exec = NULL;
    cudaGraph_t graph;
    EP_CHECK_CUDA(cudaStreamBeginCapture(ws->st, cudaStreamCaptureModeRelaxed));
    cu_faith_fwd_dev(ws);
    cu_faith_kl_dev(ws, want_out, grad);
    if (grad) cu_faith_bwd_dev(ws, nm);
    EP_CHECK_CUDA(cudaStreamEndCapture(ws->st, &graph));
    ws->graph_kernels = cu_graph_kernel_nodes(graph);
    EP_CHECK_CUDA(cudaGraphInstantiate(&gs->exec, graph, 0));
    EP_CHECK_CUDA(cudaGraphDestroy(graph));
    memcpy(gs->key, key, sizeof key);
    ws->graph_captures++;
  }
  gs->used = ++ws->graph_clock;
  EP_CHECK_CUDA(cudaGraphLaunch(gs->exec, ws->st));
}

/* After a step that ran with the fp16 copy of delta (its flag copied to ovf_h): when a
 * value was past fp16's range, so that the TF32 kernels read an infinity, delta16 goes
 * off for good and the caller runs the step again on fp32 delta (returns 1). GPT-2's and
 * Llama's activations stay far below 65504; a model whose differences do not still gets
 * right steps, at fp32 delta's speed. */
static int cu_delta16_overflowed(cu_ws *ws) {
  if (!*ws->ovf_h) return 0;
  *ws->ovf_h = 0;
  ws->delta16 = 0;
  ep_log_all("cuda: a difference-stack value exceeds fp16's range (65504); the TF32 kernels read fp32 "
             "differences from now on, and this step runs again");
  return 1;
}

/* The masked step with the masks staged (h_z) or to be drawn (h_la, dev_sample): forward,
 * loss, backward when grad; waits for the stream. Returns the loss. */
static double cu_faith_run_once(cu_ws *ws, int nm, float *out, int grad) {
  const int Vo = ws->Vo;
  double loss = 0;
  if (cu_device_kl(ws) && ws->graphs && !ws->prof) {
    /* one graph launch, one wait: the loss, outputs and gradients come back together */
    cu_faith_graph(ws, nm, out != NULL, grad);
    cu_kl_finish(ws, out, &loss);
    return loss;
  }
  cu_prof_start(ws, grad ? 2 : 1);
  cu_faith_fwd_dev(ws);
  const size_t PV = (size_t)ws->P * Vo;
  if (cu_device_kl(ws)) {
    cu_faith_kl_dev(ws, out != NULL, grad);
    /* with the backward, the stream is not waited for here: the loss is read at the
     * end, together with the gradients (nothing below writes klrow_d or h_logits) */
    if (grad) cu_faith_bwd_dev(ws, nm);
    cu_prof_end(ws);
    cu_kl_finish(ws, out, &loss); /* waits for the stream */
    return loss;
  }
  cu_logits_to_host(ws);
  for (size_t i = 0; i < PV; i++) ws->mlog[i] = ws->h_logits[i];
  if (out) memcpy(out, ws->h_logits, PV * sizeof(float));
  loss = backend_loss(ws->o.loss, ws->B, ws->npos_h, Vo, ws->target, ws->mlog, grad ? ws->dlog : NULL);
  cu_mark(ws, CU_PH_HEAD);
  if (grad) {
    for (size_t i = 0; i < PV; i++) ws->h_logits[i] = (float)ws->dlog[i];
    EP_CHECK_CUDA(
        cudaMemcpyAsync(ws->logits, ws->h_logits, PV * sizeof(float), cudaMemcpyHostToDevice, ws->st));
    cu_faith_bwd_dev(ws, nm);
  }
  cu_prof_end(ws);
  EP_CHECK_CUDA(cudaStreamSynchronize(ws->st));
  return loss;
}

/* cu_faith_run_once, again on fp32 delta if the fp16 copy overflowed. */
static double cu_faith_run(cu_ws *ws, int nm, float *out, int grad) {
  *ws->ovf_h = 0; /* no copy to it is in flight: the last step was waited for */
  const double loss = cu_faith_run_once(ws, nm, out, grad);
  return cu_delta16_overflowed(ws) ? cu_faith_run_once(ws, nm, out, grad) : loss;
}

static double cu_faith(void *p, const double *z_edge, const double *z_node, double *dz_edge, double *dz_node,
                       float *out) {
  cu_ws *ws = (cu_ws *)p;
  const size_t E = (size_t)ws->E, W = (size_t)ws->W;
  EP_CHECK(!ws->o.node_masks == !z_node, "node masks %s but z_node %s", ws->o.node_masks ? "on" : "off",
           z_node ? "given" : "missing");
  EP_CHECK(!ws->pending, "faith called while a step from faith_sampled_start is unfinished");
  /* masks as float: z_edge [E] then z_node [W] (1 when node masks are off) */
  EP_CHECK_CUDA(cudaStreamSynchronize(ws->st)); /* staging buffers free */
  for (size_t e = 0; e < E; e++) ws->h_z[e] = (float)z_edge[e];
  for (size_t w = 0; w < W; w++) ws->h_z[E + w] = z_node ? (float)z_node[w] : 1.0f;
  ws->dev_sample = 0;
  const double loss = cu_faith_run(ws, z_node != NULL, out, dz_edge != NULL);
  if (dz_edge) {
    memcpy(dz_edge, ws->h_dz, E * sizeof(double));
    if (dz_node) memcpy(dz_node, ws->h_dz + E, W * sizeof(double));
  }
  return loss;
}

/* backend.h faith_sampled_start: the log-alphas and (seed, step) staged in h_la, the
 * masks drawn on the device (cu_hc_sample), the step queued as its graph with the copy of
 * dz, the masks and dz/dlog_alpha to the host; the loss weights of its batch kept, since
 * a prepare of the next batch may come before faith_sampled_end. Without the graph (the
 * phase profile, a host loss) the step runs to the end here. */
static void cu_faith_sampled_start(void *p, uint64_t seed, int64_t step, const double *la_edge,
                                   const double *la_node) {
  cu_ws *ws = (cu_ws *)p;
  const size_t E = (size_t)ws->E, W = (size_t)ws->W;
  EP_CHECK(!ws->o.node_masks == !la_node, "node masks %s but la_node %s", ws->o.node_masks ? "on" : "off",
           la_node ? "given" : "missing");
  EP_CHECK(step >= 0, "step %lld: must be at least 0", (long long)step);
  EP_CHECK(!ws->pending, "faith_sampled_start: the previous step was not finished (faith_sampled_end)");
  /* h_la is free: the last step that read it was waited for by its faith_sampled_end */
  memcpy(ws->h_la, &seed, sizeof seed);
  memcpy(ws->h_la + 1, &step, sizeof step);
  memcpy(ws->h_la + 2, la_edge, E * sizeof(double));
  if (la_node) memcpy(ws->h_la + 2 + E, la_node, W * sizeof(double));
  ws->dev_sample = 1;
  ws->pending_nm = la_node != NULL;
  if (cu_device_kl(ws) && ws->graphs && !ws->prof) {
    ws->fin_P = ws->P;
    ws->fin_B = ws->B;
    ws->fin_T = ws->T;
    ws->fin_cur = ws->cur;
    memcpy(ws->fin_wrow, ws->wrow_h, (size_t)ws->P * sizeof(double));
    *ws->ovf_h = 0;
    cu_faith_graph(ws, ws->pending_nm, 0, 1);
    EP_CHECK_CUDA(cudaEventRecord(ws->step_ev, ws->st));
    ws->pending = 1;
  } else {
    ws->fin_loss = cu_faith_run(ws, ws->pending_nm, NULL, 1);
    ws->pending = 2;
  }
  ws->dev_sample = 0;
}

/* The queued step once more, on fp32 delta (cu_delta16_overflowed): with its batch shape
 * and state, which a prepare since may have replaced (h_la still holds its draw). */
static void cu_faith_rerun_queued(cu_ws *ws) {
  const int B = ws->B, T = ws->T, cur = ws->cur;
  const int64_t P = ws->P;
  ws->B = ws->fin_B;
  ws->T = ws->fin_T;
  ws->N = (size_t)ws->B * ws->T;
  ws->P = ws->fin_P;
  cu_bset_use(ws, ws->fin_cur);
  ws->dev_sample = 1;
  cu_faith_graph(ws, ws->pending_nm, 0, 1);
  EP_CHECK_CUDA(cudaStreamSynchronize(ws->st));
  ws->dev_sample = 0;
  ws->B = B;
  ws->T = T;
  ws->N = (size_t)B * T;
  ws->P = P;
  cu_bset_use(ws, cur);
}

/* backend.h faith_sampled_end: waits for the step and hands back what it copied. */
static double cu_faith_sampled_end(void *p, double *z_edge, double *dzdla_edge, double *z_node, double *dzdla_node,
                                   double *dz_edge, double *dz_node) {
  cu_ws *ws = (cu_ws *)p;
  const size_t E = (size_t)ws->E, W = (size_t)ws->W, n = E + W;
  EP_CHECK(ws->pending, "faith_sampled_end without faith_sampled_start");
  EP_CHECK(dz_edge && z_edge && dzdla_edge, "faith_sampled_end: dz_edge, z_edge and dzdla_edge are needed");
  EP_CHECK(!ws->pending_nm == !z_node && !ws->pending_nm == !dzdla_node && !ws->pending_nm == !dz_node,
           "node masks: z_node, dzdla_node and dz_node go with la_node");
  double loss = ws->fin_loss;
  if (ws->pending == 1) {
    EP_CHECK_CUDA(cudaEventSynchronize(ws->step_ev));
    if (cu_delta16_overflowed(ws)) cu_faith_rerun_queued(ws);
    loss = 0;
    for (int64_t q = 0; q < ws->fin_P; q++) loss += ws->fin_wrow[q] * ws->klrow_h[q];
  }
  ws->pending = 0;
  const double *dz = ws->h_dz, *z = dz + n, *dzdla = z + n;
  memcpy(dz_edge, dz, E * sizeof(double));
  memcpy(z_edge, z, E * sizeof(double));
  memcpy(dzdla_edge, dzdla, E * sizeof(double));
  if (z_node) {
    memcpy(dz_node, dz + E, W * sizeof(double));
    memcpy(z_node, z + E, W * sizeof(double));
    memcpy(dzdla_node, dzdla + E, W * sizeof(double));
  }
  return loss;
}

/* backend.h faith_sampled: the two halves back to back. */
static double cu_faith_sampled(void *p, uint64_t seed, int64_t step, const double *la_edge,
                               const double *la_node, double *z_edge, double *dzdla_edge, double *z_node,
                               double *dzdla_node, double *dz_edge, double *dz_node) {
  EP_CHECK(!la_node == !z_node && !la_node == !dzdla_node,
           "node masks: la_node, z_node, dzdla_node go together");
  EP_CHECK(dz_edge && (!la_node || dz_node), "faith_sampled runs the backward: dz_edge (and dz_node) needed");
  cu_faith_sampled_start(p, seed, step, la_edge, la_node);
  return cu_faith_sampled_end(p, z_edge, dzdla_edge, z_node, dzdla_node, dz_edge, dz_node);
}

/* The q/k/v projections with each layer's reader norm folded in (cu_lw's fw_* / fb_*), for
 * the TF32 mixing kernel, which then stores only xhat: W'_c[i, j] = g[i] W_c[i, j] and
 * b'_c[j] = sum_i b[i] W_c[i, j] + b_c[j], in double on the host. Only LayerNorm /
 * RMSNorm models with a norm weight and the shapes the kernel covers (D a multiple of 16,
 * at most 1024: at most 12 MiB a layer). */
static void cu_fold_weights(cu_ws *ws) {
  const ep_model *m = ws->m;
  const ep_model_config *c = &m->cfg;
  const size_t D = (size_t)ws->D, Q = (size_t)ws->H * ws->dh;
  if (ws->folded_ok || (c->norm != EP_NORM_LAYERNORM && c->norm != EP_NORM_RMSNORM) || D % 16 || D > 1024) return;
  for (int l = 0; l < ws->L; l++)
    if (c->has_attn[l] && !m->layers[l].ln1_w) return;
  const size_t per = 3 * D * Q + 3 * Q; /* floats a layer: W'_q, W'_k, W'_v, b'_q, b'_k, b'_v */
  float *hw = (float *)ep_calloc(per, sizeof(float));
  __half *hh = (__half *)ep_calloc(3 * D * Q, sizeof(__half)); /* W'_c in fp16 */
  float *dall = (float *)cu_dalloc(ws, per * (size_t)ws->L, sizeof(float));
  __half *hall = (__half *)cu_dalloc(ws, 3 * D * Q * (size_t)ws->L, sizeof(__half));
  EP_CHECK_CUDA(cudaDeviceSynchronize()); /* zeroing ran on the legacy stream */
  for (int l = 0; l < ws->L; l++) {
    if (!c->has_attn[l]) continue;
    const ep_layer_weights *s = &m->layers[l];
    const float *W[3] = {s->w_q, s->w_k, s->w_v}, *bc[3] = {s->b_q, s->b_k, s->b_v};
    for (int k = 0; k < 3; k++) {
      float *wf = hw + k * D * Q, *bf = hw + 3 * D * Q + k * Q;
      for (size_t j = 0; j < Q; j++) {
        double b = bc[k] ? bc[k][j] : 0.0;
        for (size_t i = 0; i < D; i++) {
          wf[i * Q + j] = (float)((double)s->ln1_w[i] * W[k][i * Q + j]);
          if (s->ln1_b) b += (double)s->ln1_b[i] * W[k][i * Q + j];
        }
        bf[j] = (float)b;
      }
    }
    float *dv = dall + per * (size_t)l;
    EP_CHECK_CUDA(cudaMemcpy(dv, hw, per * sizeof(float), cudaMemcpyHostToDevice));
    for (size_t i = 0; i < 3 * D * Q; i++) hh[i] = __float2half_rn(hw[i]);
    __half *hv = hall + 3 * D * Q * (size_t)l;
    EP_CHECK_CUDA(cudaMemcpy(hv, hh, 3 * D * Q * sizeof(__half), cudaMemcpyHostToDevice));
    cu_lw *d = &ws->lw[l];
    d->hw_q = hv;
    d->hw_k = hv + D * Q;
    d->hw_v = hv + 2 * D * Q;
    d->fw_q = dv;
    d->fw_k = dv + D * Q;
    d->fw_v = dv + 2 * D * Q;
    d->fb_q = dv + 3 * D * Q;
    d->fb_k = dv + 3 * D * Q + Q;
    d->fb_v = dv + 3 * D * Q + 2 * Q;
  }
  free(hw);
  free(hh);
  ws->folded_ok = 1;
}

extern "C" void backend_cuda_set_precision(void *p, int compute) {
  cu_ws *ws = (cu_ws *)p;
  EP_CHECK(compute >= 0 && compute <= 2, "precision %d (0 fp32, 1 tf32, 2 bf16)", compute);
  if (compute == 1 && ws->fold) cu_fold_weights(ws);
  if (compute == 1 && ws->delta16 && !ws->delta_h) {
    ws->delta_h = (__half *)cu_dalloc(ws, (size_t)ws->W * ws->Bmax * ws->Tmax * ws->D, sizeof(__half));
    EP_CHECK_CUDA(cudaDeviceSynchronize()); /* zeroing ran on the legacy stream */
  }
  if (compute == 2 && !ws->delta_bf) {
    const size_t ND = (size_t)ws->Bmax * ws->Tmax * ws->D;
    ws->delta_bf = (__nv_bfloat16 *)cu_dalloc(ws, (size_t)ws->W * ND, sizeof(__nv_bfloat16));
    ws->dy_bf = (__nv_bfloat16 *)cu_dalloc(ws, (3 * (size_t)ws->H + 1) * ND, sizeof(__nv_bfloat16));
    ws->z_bf = (__nv_bfloat16 *)cu_dalloc(ws, (size_t)ws->E, sizeof(__nv_bfloat16));
    EP_CHECK_CUDA(cudaDeviceSynchronize()); /* zeroing ran on the legacy stream */
  }
  ws->compute = compute;
  ws->gemm_compute = compute ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
}

extern "C" int backend_cuda_delta16(const void *p) { return cu_delta16_on((const cu_ws *)p); }

extern "C" void backend_cuda_set_tf32(void *p, int on) { backend_cuda_set_precision(p, on ? 1 : 0); }

extern "C" size_t backend_cuda_keep_bytes(const void *p) {
  const cu_ws *ws = (const cu_ws *)p;
  return ws->kept ? 0 : cu_keep_floats(ws) * sizeof(float);
}

extern "C" size_t backend_cuda_workspace_bytes(const void *p) {
  const cu_ws *ws = (const cu_ws *)p;
  int64_t ne, nh, nm;
  size_t cb;
  cu_cache_stats(ws, &ne, &nh, &nm, &cb);
  return ws->dev_bytes + cb;
}

extern "C" void backend_cuda_wait(void *p) { EP_CHECK_CUDA(cudaStreamSynchronize(((cu_ws *)p)->st)); }

extern "C" void backend_cuda_graph_stats(const void *p, int64_t *launches, int64_t *captures, int64_t *kernels) {
  const cu_ws *ws = (const cu_ws *)p;
  *launches = (int64_t)ws->graph_clock;
  *captures = ws->graph_captures;
  *kernels = ws->graph_kernels;
}

extern "C" void backend_cuda_set_prepare_cache(void *p, size_t bytes) {
  cu_ws *ws = (cu_ws *)p;
  /* the cache holds the device-side clean logits of the kl losses; others recompute */
  cu_cache_set_budget(ws, cu_device_kl(ws) ? bytes : 0);
}

extern "C" void backend_cuda_cache_stats(const void *p, int64_t *entries, int64_t *hits, int64_t *misses,
                                         size_t *bytes) {
  cu_cache_stats((const cu_ws *)p, entries, hits, misses, bytes);
}

static const ep_backend_ops cuda_ops = {
    "cuda",          cu_create,       cu_destroy,           cu_writer_outputs, cu_prepare, cu_faith, cu_full_outputs,
    cu_faith_sampled, cu_faith_sampled_start, cu_faith_sampled_end,
};

extern "C" const ep_backend_ops *backend_cuda(void) { return &cuda_ops; }
