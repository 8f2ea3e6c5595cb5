/* cuda_internal.h — the CUDA backend's workspace and the launchers of its kernels.
 *
 * The layout of every buffer is the CPU reference's (src/backend/cpu/cpu_impl.inc), so
 * the two can be read side by side: row-major, token rows n = b*T + t, per-head arrays
 * [H, N, dh], writer stacks [W, N, D]. Kernels live in one .cu file per operation
 * family (embed, layernorm, mixing, attention, mlp, logits); cuda_backend.cu strings
 * them together with cuBLAS. All launchers run on the workspace's stream. */
#pragma once

#include <stdint.h>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cuda_check.h"

extern "C" {
#include "edgeprune/backend.h"
#include "edgeprune/graph.h"
#include "edgeprune/model.h"
}

/* Optional phase timing (environment EP_CUDA_PROFILE=1): cu_mark(ws, ph) records an event
 * on the stream and attributes the device time since the previous mark to phase ph;
 * the totals are printed when the workspace is destroyed. */
typedef enum {
  CU_PH_PLAIN,   /* plain forwards (prepare, writer_outputs) */
  CU_PH_PREP,    /* ablation values, base points, clean log-sum-exp */
  CU_PH_MIX,     /* reader-mixing GEMMs Z x delta */
  CU_PH_NORM,    /* per-reader LN forward / backward */
  CU_PH_ATTN,    /* attention core (scores, softmax, values) */
  CU_PH_MLP,     /* MLP forward, delta */
  CU_PH_HEAD,    /* resid_post, loss, and their backward */
  CU_PH_NODE,    /* head outputs again and node gradients in the backward */
  CU_PH_ATTN_B,  /* attention core backward */
  CU_PH_MLP_B,   /* MLP backward GEMMs and activation */
  CU_PH_EDGE,    /* edge gradients <dY, delta> */
  CU_PH_DDELTA,  /* ddelta += Z^T dY */
  CU_PH_QKV,     /* per-head q/k/v projections */
  CU_PH_HOUT,    /* head outputs (W_O) and their delta */
  CU_PH_LOGITS,  /* final norm and unembedding at the loss positions, and their backward */
  CU_PH_N
} cu_phase;
#define CU_PROF_MAX 2048

/* Attention kernels keep one example's K/V (and Q, dO in the backward) of one head in
 * shared memory: short sequences only. */
#define CU_T_MAX 128
/* Launch shapes and choices a captured step graph is keyed by (cu_faith_graph). */
#define CU_GRAPH_KEY 13
/* Captured step graphs kept at once: a training run's batches are padded to their
 * longest example, so consecutive steps alternate between a few row lengths (IOI
 * batches of 32: 19 to 24 tokens), and with prepare on its own stream between the two
 * batch states (cu_bset); each keeps its own graph instead of capturing again. */
#define CU_GRAPH_SLOTS 16

typedef struct {
  cudaGraphExec_t exec;    /* the captured step, or NULL */
  int key[CU_GRAPH_KEY];   /* what it was captured for */
  uint64_t used;           /* ws->graph_clock at its last launch (least recently used goes) */
} cu_graph_slot;

typedef struct {
  const float *ln1_w, *ln1_b, *w_q, *b_q, *w_k, *b_k, *w_v, *b_v, *w_o, *b_o;
  const float *ln2_w, *ln2_b, *w_fc, *b_fc, *w_proj, *b_proj;
  /* the q/k/v projections with the reader norm's weight and bias folded in (cu_fold_weights):
   * W'_c = diag(ln1_w) W_c, b'_c = ln1_b W_c + b_c, so that q = xhat W'_q + b'_q */
  const float *fw_q, *fw_k, *fw_v, *fb_q, *fb_k, *fb_v;
  const __half *hw_q, *hw_k, *hw_v; /* the folded W'_c in fp16, for xhat stored in fp16 */
  /* the plain forward's row layout (cu_rows_weights): W_q | W_k | W_v as one [D, 3 Q], and
   * W_O as [H (dh + 4), D]: head i's dh rows, then its bias b_O / H split into a part exact
   * in TF32 and the rest (two rows), then a zero row */
  const float *w_qkv, *w_oa;
} cu_lw;

/* One source of a ddelta update (cu_ddelta_add): R reader gradients dY [R, N, D] and their
 * masks, Z[r * ldz + w] for the updated writers w. */
typedef struct {
  const float *Z, *dY;
  int R, ldz;
} cu_dd_src;

/* A layer's forward state that the backward reads: the working pointers of cu_ws point
 * either at shared scratch (recomputed in the backward, the CPU reference's way) or, with
 * keep_acts, at per-layer storage filled by the forward (no recomputation). */
typedef struct {
  float *Y, *mu, *rs, *q, *k, *v, *ob, *att; /* attention readers and core (Y: the readers' inputs,
                                                or their normed rows xhat where lfold) */
  float *hx;                                 /* head outputs [H, N, D] (node gradients) */
  float *ym, *mmu, *mrs, *hpre, *xo;         /* MLP reader and core */
} cu_lstate;

/* The batch state prepare writes and the masked step reads (device). With prepare on its
 * own stream (cu_ws.side) there are two: a queued step reads one while the next batch is
 * prepared into the other; cu_ws's pointers of the same names are the current one's. */
typedef struct {
  int32_t *len_d;      /* [2 Bmax] example lengths (twice: cu_plain_pair) */
  int32_t *prow_d;     /* [Bmax Tmax] token row of each loss position */
  float *c;            /* [W, N, D] ablated (corrupted) writer outputs */
  float *base;         /* [2L + 1, N, D] base points */
  float *xtok, *xpos;  /* [N, D] clean embeddings */
  float *tgt_d;        /* [N, Vo] clean logits at the loss positions (device kl losses) */
  double *lse_d;       /* [N] their log-sum-exp */
  double *wrow_d;      /* [N] loss weight of each position */
} cu_bset;

/* What prepare runs with besides the batch state: its stream and cuBLAS handle, the
 * output head's scratch (yf .. klpart) and the paired forward's (pscr, pscr_cap floats).
 * cu_ws holds the step's; a prepare beside a queued step swaps in its own (side_ctx,
 * cu_pctx_swap). */
typedef struct {
  cudaStream_t st;
  cublasHandle_t blas;
  float *yf, *xf, *fmu, *frs, *logits;
  double *klpart;
  float *pscr;
  size_t pscr_cap;
} cu_pctx;

typedef struct {
  const ep_model *m;
  const ep_graph *g;
  ep_engine_opts o;
  int Bmax, Tmax;
  int B, T;
  size_t N; /* B*T */
  int D, H, dh, F, Vo, L, W;
  int64_t E;
  /* device and libraries: every launcher runs on st with blas (prepare switches them to
   * st_prep / blas_prep while it runs there) */
  cudaStream_t st;
  cublasHandle_t blas;
  /* prepare on its own stream (side; EP_CUDA_SIDE=0: off): with interchange ablation and the
   * device kl losses, a prepare behind a queued step runs on st_prep (lower priority) into
   * the batch state that step does not read (cu_prepare) */
  int side;
  int side_ready;         /* its buffers exist (cu_side_alloc, on first use) */
  cudaStream_t st_main, st_prep;
  cublasHandle_t blas_main, blas_prep;
  cu_bset bset[2];
  int cur;                /* the current batch state (bset[cur]) */
  cudaEvent_t rel_ev[2];  /* on st_main after the last work that may read bset[i] */
  float *pscr;            /* cu_plain_pair's scratch: ddelta, or on st_prep side_ctx's */
  size_t pscr_cap;        /* its floats */
  cu_pctx side_ctx;       /* prepare's own on st_prep (cu_side_alloc; logits: the
                             targets of the state it fills) */
  /* GEMM element and compute types: fp32 storage with CUBLAS_COMPUTE_32F (no TF32).
   * One place to switch to TF32 / bf16 later. */
  cudaDataType_t gemm_type;
  cublasComputeType_t gemm_compute;
  size_t attn_smem_fwd, attn_smem_bwd; /* dynamic shared memory per attention block */
  int attn_nw;                          /* warps per attention block: 8 (EP_CUDA_ATTN_WARPS=16: 16) */
  /* weights on the device (one copy of m->mem) */
  float *wmem;
  cu_lw *lw; /* [L] host array of device pointers */
  const float *wte, *wpe, *lnf_w, *lnf_b, *unembed;
  /* prepared batch (host) */
  int32_t *len_h;  /* [Bmax] */
  int32_t *npos_h; /* [Bmax] */
  int32_t *prow_h; /* [Bmax*Tmax] token row of each loss position */
  int32_t *tok_h;  /* [2, Bmax*Tmax] pinned staging for token ids (clean, corrupted) */
  int64_t P;
  double *target;  /* [P, Vo] full-model outputs at the loss positions */
  double *mlog, *dlog; /* [P, Vo] masked outputs and loss gradient, double (host) */
  float *h_logits;     /* [Bmax*Tmax, Vo] pinned staging */
  float *h_z;          /* [E + W] pinned staging: z_edge then z_node as float */
  double *h_dz;        /* [3 (E + W)] pinned staging: dz (edges, nodes); with dev_sample then
                          the drawn masks z and their dz/dlog_alpha (cu_hc_sample) */
  double *h_la;        /* [2 + E + W] pinned staging of a device draw: seed, step (their bits),
                          log-alphas of the edges then the nodes */
  /* device buffers (float unless noted); len_d, prow_d, c, base, xtok, xpos, tgt_d, lse_d
   * and wrow_d are the current batch state's (cu_bset) */
  int32_t *len_d, *prow_d, *tok_d; /* tok_d [2, Bmax*Tmax] */
  float *c, *base, *xtok, *xpos, *delta, *ddelta;
  size_t ddelta_cap; /* floats of ddelta: [W, N, D], or more for cu_plain_pair's scratch */
  int2 *slots_d; /* [n_slots] base slots in writer order: (slot 2l + part, writers before it) */
  int n_slots;
  float *Y, *Xn, *mu, *rs;
  float *q, *k, *v, *ob, *dob, *dq, *dk, *dv, *att;
  float *hx;              /* [H, N, D] head writer outputs (later their gradients) */
  float *tmp, *tmp2, *res; /* [N, D] */
  float *ym, *mn, *mmu, *mrs, *hpre, *hact;
  float *mpart;    /* [N, D] the MLP reader's input over the writers before its layer */
  const float **qkv_ptr; /* device [3][3H]: A, B, C pointers of the batched q/k/v projections */
  int mpart_layer; /* the layer whose mpart the forward just computed, or -1 */
  int folded_ok;   /* the folded q/k/v weights exist (cu_fold_weights) */
  int rows_ok;     /* the row-layout weights exist (cu_rows_weights) */
  int plain_rows;  /* the plain forward runs in the row layout (set by cu_plain_pair) */
  int *lfold;      /* [L] 1: the layer's forward kept the q/k/v readers' normed rows xhat in Y (no
                      Xn) and projected them with the folded weights; 2: the same with xhat in
                      fp16 (Y then holds [3H, N, D] halves) */
  float *gchunk; /* [Bmax*Tmax, 3H + 1, W] edge-gradient partials per chunk of token rows */
  float *yf, *xf, *fmu, *frs, *logits;
  float *zd;     /* [E + W] z_edge, z_node */
  float *meanc;  /* [W, Tmax, D] */
  float *h_mean; /* [W, Tmax, D] pinned: the means meanc holds (allocated by the first mean prepare) */
  int mean_up;   /* meanc holds h_mean */
  double *dzd;   /* [3 (E + W)] dz_edge, dz_node; then z and dz/dlog_alpha of a device draw */
  double *la_d;  /* [2 + E + W] h_la on the device */
  int dev_sample; /* 1: this step's masks are drawn on the device (cu_faith_sampled) */
  double *part;  /* [W, CU_RED_BLOCKS] reduction partials */
  float *xo;     /* [N, D] MLP writer output */
  int keep_acts;       /* 1: per-layer forward state kept for the backward */
  cu_lstate shared;    /* the scratch versions of the working pointers */
  cu_lstate *kept;     /* [L] per-layer storage (allocated when keep_acts is first set) */
  /* KL losses on the device: clean logits, their log-sum-exp, per-row weights and KLs */
  float *tgt_d;     /* [N, Vo] */
  double *lse_d;    /* [N] */
  double *wrow_d;   /* [N] weight of each loss position's KL */
  double *klrow_d;  /* [N] */
  double *klpart;   /* [3 N KL_MAX_CHUNKS] chunk partials of the rows' log-sum-exp and KL */
  double *wrow_h, *klrow_h; /* [N] host, pinned */
  /* a step queued by faith_sampled_start, finished by faith_sampled_end: a prepare() in
   * between may rewrite P and wrow_h, so the step keeps its own */
  int pending;       /* 0 none, 1 queued (wait for step_ev), 2 already finished (fin_loss) */
  int pending_nm;    /* it has node masks */
  int64_t fin_P;     /* its loss positions */
  int fin_B, fin_T, fin_cur; /* its batch shape and state (cu_bset) */
  double *fin_wrow;  /* [N] host: its row weights */
  double fin_loss;   /* its loss when pending = 2 */
  cudaEvent_t step_ev; /* after its last copy to the host */
  cudaEvent_t prep_ev; /* after the last prepare's work (its staging buffers are free) */
  size_t dev_bytes;
  /* precision (backend_select.h ep_compute): 0 fp32, 1 TF32 GEMMs, 2 bf16 difference
   * stack (delta_bf, written next to delta) and reader gradients (dy_bf) for the mixing,
   * edge-gradient and ddelta GEMMs, fp32 accumulation; TF32 elsewhere */
  int compute;
  __nv_bfloat16 *delta_bf; /* [W, N, D] (allocated when bf16 is first chosen) */
  __nv_bfloat16 *dy_bf;    /* [3H + 1, N, D] */
  const float *dy_bf_of;   /* the reader gradients dy_bf was last converted from */
  __nv_bfloat16 *z_bf;     /* [E] edge masks */
  int delta16;             /* 1: TF32 keeps delta_h next to delta, each value rounded to TF32 and
                              stored in fp16 (the same 10 mantissa bits), for the TF32 mixing and
                              edge-gradient kernels: half the bytes of their largest operand
                              (EP_CUDA_DELTA16=0: off; off for good once a value exceeds fp16's
                              range, cu_delta16_overflowed) */
  __half *delta_h;         /* [W, N, D] (allocated when TF32 is first chosen with delta16) */
  int xhat16;              /* 1: with delta16 and folded readers, the mixing kernel stores xhat in
                              fp16 (|xhat| <= sqrt(D)), the q/k/v projections multiply it by the
                              folded weights in fp16 (f16 tensor cores: the 10 mantissa bits TF32
                              keeps) and the norm backward reads it (EP_CUDA_XHAT16=0: off) */
  int *ovf_d, *ovf_h;      /* a step's flag: some delta_h value left fp16's range (host: pinned) */
  int delta32;             /* this step writes fp32 delta (else only delta_h: every reader takes
                              the fp16 copy; cu_delta32_needed) */
  int delta32_force;       /* EP_CUDA_DELTA32=1: always write fp32 delta */
  int mixnorm;              /* reader mixing fused with the reader norms (mixnorm.cu): 0 never,
                               1 in fp32 and bf16 (TF32 mixes through cuBLAS), 2 in every precision */
  int mixnorm_split;        /* 1: the q/k/v readers in groups of 12 (see cu_mix_norm) */
  int tc_split;             /* 1: the TF32 mixing kernel in blocks of <= 16 readers (cu_mix_norm_tc) */
  int tc_persist;           /* 1: the TF32 mixing kernel persistent, rows in turn (EP_CUDA_TC_PERSIST) */
  int merge_fwd;            /* 1: the MLP reader's mixing over the writers before its layer in
                               the q/k/v readers' pass (TF32 kernel, kept activations) */
  int merge;                /* 1: a layer's q/k/v and MLP readers share one edge-gradient and
                               ddelta pass over the writers before the layer (EP_CUDA_MERGE=0: off) */
  int ddelta_kernel;        /* 1: ddelta += Z^T dY in k_ddelta (EP_CUDA_DDELTA=0: cuBLAS GEMM) */
  int dd_pipe;              /* 1: k_ddelta loads the next writers' ddelta while it sums
                               (EP_CUDA_DDPIPE=0: off) */
  int ddelta_tc;            /* 1: the ddelta update in k_ddelta_tc where it covers the shape
                               (EP_CUDA_DDELTA_TC=0: k_ddelta's fp32 FMAs) */
  int dd_pair;              /* 1: two layers' q/k/v reader groups update the writers before
                               both in one k_ddelta_tc pass (cu_layer_ddelta; EP_CUDA_DDPAIR=0: off) */
  cu_dd_src dd_pend;        /* the upper layer's group of a pair, waiting (R = 0: none) */
  float *xn_buf[2];         /* the reader-gradient buffers ws->Xn alternates between in the
                               backward (one holds dd_pend's dY); xn_buf[1] NULL without pairs */
  int edge_tc;              /* 1: edge gradients in k_edge_tc (EP_CUDA_EDGE_TC=0: cuBLAS over row chunks) */
  int sm_count;             /* multiprocessors of the device */
  int smem_optin;           /* shared memory a block may opt in to (bytes) */
  int edge_rows;            /* token rows per edge-gradient chunk (EP_CUDA_EDGE_ROWS; 0: automatic) */
  int fold;                 /* 1: the TF32 kernel's readers folded (cu_fold_weights; EP_CUDA_FOLD=0: off) */
  int pair;                 /* 1: prepare's two runs as one forward (cu_plain_pair; EP_CUDA_PAIR=0) */
  int graphs;               /* 1: the device-KL step replayed as a CUDA graph (EP_CUDA_GRAPH=0: off) */
  cu_graph_slot graph[CU_GRAPH_SLOTS]; /* captured steps by key (cu_faith_graph) */
  uint64_t graph_clock;     /* graph launches so far */
  int64_t graph_captures;   /* graphs captured so far */
  int64_t graph_kernels;    /* kernel nodes in the last graph captured */
  struct cu_cache *cache;  /* prepare outputs of examples seen before (cache.cu), or NULL */
  /* phase timing */
  int prof;
  cudaEvent_t prof_ev[CU_PROF_MAX];
  int prof_ph[CU_PROF_MAX];
  int prof_n;
  int prof_kind;                /* 0 prepare, 1 faith forward only, 2 faith with backward */
  double prof_ms[3][CU_PH_N];    /* device time per call kind and phase */
  int prof_calls[3];
  double prof_wall[3];           /* host wall time per call kind */
  double prof_t0;
  void *dbufs[128]; /* every device allocation, for destroy */
  int n_dbufs;
} cu_ws;

/* ws->delta_h is written and read (TF32 with delta16, allocated). */
static inline int cu_delta16_on(const cu_ws *ws) { return ws->compute == 1 && ws->delta16 && ws->delta_h; }

/* fp32 delta, for a reader the fp16 copy does not serve: the step must have written it
 * (ws->delta32, decided by cu_delta32_needed at the step's start). */
static inline const float *cu_delta32(const cu_ws *ws) {
  EP_CHECK(ws->delta32, "cuda: fp32 differences read in a step that wrote only their fp16 copy (a shape the "
                        "fp16 kernels do not cover; EP_CUDA_DELTA32=1 writes both)");
  return ws->delta;
}

/* Edge-gradient chunk partials up to this many are summed a thread an output, more by
 * groups of threads (mixing.cu k_sum_chunks_g); both orders fixed: deterministic sums. */
#define CU_CHUNK_ONE_PASS 128
/* Fewest token-row chunks of the cuBLAS edge-gradient GEMM (cu_edge_grad: bf16, shapes
 * edge_tc.cu does not cover, EP_CUDA_EDGE_TC=0): 256 gives 320 chunks
 * of 2 rows at 32 x 20 tokens (measured on an H200: 13.9 ms a TF32 step against 14.1 with
 * 128 chunks of 5 rows). */
#define CU_EDGE_CHUNKS 256
/* Column slices of the tensor-core edge-gradient kernel (fixed: deterministic sums). */
#define CU_EDGE_SPLITS 256
/* Blocks per writer in the node-gradient reductions: this for one writer, a quarter with
 * eight or more (fixed: deterministic sums). */
#define CU_RED_BLOCKS 256
/* KL rows: chunks of about KL_CHUNK logits, at most KL_MAX_CHUNKS per row (logits.cu) */
#define KL_CHUNK 4096
#define KL_MAX_CHUNKS 32

/* Phase timing mark (no-op unless profiling); defined in cuda_backend.cu. */
extern "C" void cu_mark(cu_ws *ws, cu_phase ph);

/* ---- embed.cu ---- */
/* xt[n] = wte[tok[n]], xp[n] = wpe[t] (0 without a positional table), n < N. */
extern "C" void cu_embed(cu_ws *ws, const int32_t *tok_d, float *xt, float *xp);
/* out = a + b over n floats. */
extern "C" void cu_add2(cu_ws *ws, float *out, const float *a, const float *b, size_t n);
/* c[w, b, t, :] = mean[w, t, :] for every writer and example. */
/* c [W, N, D] from the first T positions of mean [W, Tmax, D] */
extern "C" void cu_mean_broadcast(cu_ws *ws, const float *mean, float *c);
/* ws->base [2L + 1, N, D]: every base slot's running corrupted residual from ws->c (and
 * the embeddings xtok + xpos without embedding nodes), one pass (ws->slots_d). */
extern "C" void cu_base_points(cu_ws *ws);

/* ---- layernorm.cu ---- */
/* Rows x [rows, D] -> y; mu/rs get mean and reciprocal std. With add != NULL, first
 * x[i] += add[i mod add_rows] (x is overwritten: it is the reader input). */
extern "C" void cu_norm_fwd(cu_ws *ws, float *x, const float *add, size_t add_rows, float *y, float *mu,
                            float *rs, const float *w, const float *b, size_t rows);
/* Backward: dy -> dx (may alias). */
extern "C" void cu_norm_bwd(cu_ws *ws, const float *x, const float *mu, const float *rs, const float *w,
                            const float *dy, float *dx, size_t rows);
/* The same from the normed rows xhat = (x - mu) rs themselves and no weight (the folded
 * readers: dy is d/d xhat); _h: xhat in fp16. */
extern "C" void cu_norm_bwd_xhat_h(cu_ws *ws, const __half *xhat, const float *rs, const float *dy, float *dx,
                                   size_t rows);
extern "C" void cu_norm_bwd_xhat(cu_ws *ws, const float *xhat, const float *rs, const float *dy, float *dx,
                                 size_t rows);

/* ---- mixing.cu ---- */
/* Row-major C[M, N] = alpha op(A) op(B) + beta C through cuBLAS (column-major). */
extern "C" void cu_gemm(cu_ws *ws, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                        const float *B, int ldb, float beta, float *C, int ldc);
/* Row-major C[i] = op(A[i]) op(B[i]) for i < batch, pointer arrays in device memory. */
extern "C" void cu_gemm_ptr_batched(cu_ws *ws, int ta, int tb, int M, int N, int K, const float *const *A, int lda,
                                    const float *const *B, int ldb, float *const *C, int ldc, int batch);
extern "C" void cu_gemm_batched(cu_ws *ws, int ta, int tb, int M, int N, int K, float alpha, const float *A,
                                int lda, long long sA, const float *B, int ldb, long long sB, float beta,
                                float *C, int ldc, long long sC, int batch);
/* y[rows, cols] += scale * b[cols] (no-op for b == NULL). */
extern "C" void cu_add_bias(cu_ws *ws, float *y, const float *b, size_t rows, int cols, float scale);
/* delta_w = zn[w] * (x_w - c_w) for nw consecutive writers (x, c, delta at writer 0). */
extern "C" void cu_delta_write(cu_ws *ws, const float *x, const float *c, const float *zn, float *delta, int nw);
/* The same after x[i] += scale b[i mod D] (x updated): a writer's output bias in the same pass. */
extern "C" void cu_delta_write_bias(cu_ws *ws, float *x, const float *b, float scale, const float *c,
                                    const float *zn, float *delta, int nw);
/* Node gradients of nw consecutive writers: dz[w] = <dd_w, x_w - c_w> (when dz != NULL);
 * dx_w = zn[w] * dd_w (when dx != NULL; may alias x). */
extern "C" void cu_node_grad(cu_ws *ws, const float *x, const float *c, const float *dd, const float *zn,
                             double *dz, float *dx, int nw);
/* Reader group backward over writers [w0, w0 + n): dY [R, N, D], Z [R, n] (ld n):
 * dz[j*n + w] = <dY_j, delta_{w0+w}> (fp32 over column slices in edge_tc.cu, or over chunks
 * of token rows in cuBLAS, the slices summed in double) and, with dd, ddelta[w0 : w0 + n]
 * += Z^T dY (else the caller adds it with cu_ddelta_add). */
extern "C" void cu_edge_grad(cu_ws *ws, const float *dY, int R, int w0, int n, const float *Z, double *dz,
                             int dd);
/* ddelta[w0 : w0 + n] += a.Z^T a.dY + b.Z^T b.dY (b.R = 0: a alone; Z[r * ldz + w] the mask
 * of writer w0 + w for reduction row r, dY [R, N, D]): 3xTF32 in k_ddelta_tc where it
 * covers the shape (two sources only there), else exact fp32 in k_ddelta, else a GEMM
 * (in bf16 on the dY cu_edge_grad just converted). */
extern "C" void cu_ddelta_add(cu_ws *ws, cu_dd_src a, cu_dd_src b, int w0, int n);
/* resid_post at the loss positions: yf[p] = base[prow[p]] + sum_{w<n} z[w] delta_w[prow[p]]. */
extern "C" void cu_resid_fwd(cu_ws *ws, const float *base, const float *z, int n, float *yf);
/* Its backward: dz[w] = sum_p <dy[p], delta_w[prow[p]]>, ddelta_w[prow[p]] += z[w] dy[p]. */
extern "C" void cu_resid_bwd(cu_ws *ws, const float *dy, const float *z, int n, double *dz);
/* yf[p] = x[prow[p]]. */
extern "C" void cu_gather_rows(cu_ws *ws, const float *x, float *yf);
/* Masks double -> float into the device array happen on the host; nothing here. */

/* ---- edge_tc.cu ---- */
/* Edge-gradient partials on tensor cores: part[s] [R, n] = dY[:, slice s] x
 * delta[:n, slice s]^T over S column slices of the N*D token-row space (3xTF32 with x3,
 * else TF32; with delta_h, TF32 reading those writers' fp16 copy instead of delta).
 * Returns S (the caller sums the slices), or 0 (nothing launched) for shapes it does not
 * cover. part holds CU_EDGE_SPLITS R n floats. */
extern "C" int cu_edge_tc(cu_ws *ws, const float *dY, int R, const float *delta, const __half *delta_h, int n,
                          int x3, float *part);

/* ---- ddelta_tc.cu ---- */
/* ddelta[:n] (at dd) += a.Z^T a.dY + b.Z^T b.dY on tensor cores (3xTF32), for shapes
 * cu_ddelta_tc_covers admits (up to 80 reduction rows). */
extern "C" void cu_ddelta_tc(cu_ws *ws, cu_dd_src a, cu_dd_src b, int n, float *dd);
extern "C" int cu_ddelta_tc_covers(const cu_ws *ws, int R, int n);

/* ---- mixnorm_tc.cu ---- */
/* As cu_mix_norm, on TF32 tensor cores (masks and delta rounded to TF32, fp32
 * accumulation), for readers [0, Rn); readers [Rn, R) (same n inputs, their masks the
 * next rows of Z) are only mixed: Y2 [R - Rn, N, D] = base2 + Z delta. With fold, Y gets
 * the normed rows xhat = (x - mu) rs instead of x and Xn is not written (the norm's
 * weight and bias are in the folded projections); with yh as well, when it reads fp16
 * delta (cu_delta16_on), xhat in fp16 (Y then holds halves). Returns 0 (nothing launched)
 * for shapes it does not cover, 2 when Y got fp16 xhat, else 1. */
extern "C" int cu_mix_norm_tc(cu_ws *ws, const float *Z, int R, int Rn, int n, const float *base, float *Y,
                              float *Xn, float *mu, float *rs, const float *lw, const float *lb,
                              const float *base2, float *Y2, int fold, int yh);

/* cu_mix_norm_tc with R readers over n writers runs the persistent kernel on fp16 delta. */
extern "C" int cu_mix_norm_tc_fp16(const cu_ws *ws, int R, int n);

/* ---- mixnorm.cu ---- */
/* R readers with the same n inputs, writers [w0, w0 + n), masks Z [R, n] (ld n):
 * Y [R, N, D] = base + Z delta[w0 : w0 + n] (fp32 products, from ws->delta or TF32's
 * fp16 copy), Xn = norm(Y) with weight lw / bias lb, mu / rs [R, N] as cu_norm_fwd.
 * Returns 0 (nothing done) for shapes it does not cover (cu_mix_norm_covers: R > 48,
 * D > 768): the caller then uses the GEMM and cu_norm_fwd. */
extern "C" int cu_mix_norm_covers(const cu_ws *ws, int R);
extern "C" int cu_mix_norm(cu_ws *ws, const float *Z, int R, int w0, int n, const float *base, float *Y,
                           float *Xn, float *mu, float *rs, const float *lw, const float *lb);

/* ---- masks.cu ---- */
/* The step's hard-concrete masks drawn on the device from h_la (seed, step, log-alphas):
 * zd [E + W] as float (node masks 1 when off); dzd + (E + W) gets z, then dz/dlog_alpha
 * after it ([E + W] each, double). In stream order, so a captured graph replays it. */
extern "C" void cu_hc_sample(cu_ws *ws);

/* ---- attention.cu ---- */
/* Attention of all heads of layer l: q, k, v, o [H, N, dh] (q, k, v without their biases,
 * as cu_qkv leaves them; folded: the folded biases), probabilities p [H, B, T, T]. */
extern "C" void cu_attn_fwd(cu_ws *ws, int l, int folded, const float *q, const float *k, const float *v,
                            float *p, float *o);
/* Backward: dO [H, N, dh] -> dq, dk, dv [H, N, dh]. */
extern "C" void cu_attn_bwd(cu_ws *ws, int l, int folded, const float *q, const float *k, const float *v,
                            const float *p, const float *dO, float *dq, float *dk, float *dv);
/* Where a plain forward stores writer outputs: writer w's at out + w stride, from element
 * `off` of the forward's rows on (off = 0: all of them; a forward of the clean and the
 * corrupted rows together stores only the corrupted half). */
typedef struct {
  float *out;
  size_t stride, off;
} cu_wout;
/* Plain forward of layer l: x_i = hx_i + b_O / H (hx from cu_head_out without the bias),
 * res += sum_i x_i (head order); with wo, head i's x_i goes to writer w0 + i. */
extern "C" void cu_head_sum(cu_ws *ws, int l, const float *hx, float *res, const cu_wout *wo, int w0);
/* Plain forward in the row layout (ws->rows_ok): q | k | v of layer l as one [N, 3Q]
 * from the normed rows X [N, D] (biases left to the attention core). */
extern "C" void cu_qkv_rows(cu_ws *ws, int l, const float *X, float *qkv);
/* Attention from qkv [N, 3Q] to oa [N, H (dh + 4)]: head i's output in columns i (dh + 4)
 * ... + dh, then 1, 1, 0, 0 (the columns that meet W_O's bias rows in cu_w_oa). */
extern "C" void cu_attn_fwd_rows(cu_ws *ws, int l, const float *qkv, float *p, float *oa);
/* From oa: with wo, head i's writer output x_i = oa_i W_O[i] + b_O / H goes to writer
 * w0 + i (one strided-batched GEMM over the rows wo stores); res += sum_i x_i (one GEMM). */
extern "C" void cu_head_out_rows(cu_ws *ws, int l, const float *oa, float *res, const cu_wout *wo, int w0);
/* Shared-memory limits for the attention kernels (called once in create). */
extern "C" void cu_attn_setup(cu_ws *ws);

/* ---- mlp.cu ---- */
/* h = h + b (float), a = act(h) (in double, as the CPU reference). */
extern "C" void cu_bias_act(cu_ws *ws, float *h, const float *b, float *a, size_t rows, int cols);
/* dh = dh * act'(h) (dh in place). */
extern "C" void cu_act_bwd(cu_ws *ws, const float *h, float *dh, size_t n);
/* x_i = x + b (rows of D; b NULL: x), res += x_i; with wo, x_i goes to writer w. */
extern "C" void cu_resid_add(cu_ws *ws, float *res, const float *x, const float *b, const cu_wout *wo, int w);

/* ---- logits.cu ---- */
/* Output head at the loss positions: ws->yf [P, D] -> final norm ws->xf -> ws->logits [P, Vo]. */
extern "C" void cu_head_logits(cu_ws *ws);
/* Its backward: the loss gradient w.r.t. the logits, already in ws->logits, -> d yf in ws->xf. */
extern "C" void cu_head_logits_bwd(cu_ws *ws);
/* KL(p_full || p_masked) per loss position on the device (the kl / kl_sum losses):
 * cu_kl_prepare keeps the clean logits of ws->logits and their log-sum-exp (ws->wrow_d,
 * the row weights, is uploaded by prepare); cu_kl_rows gives
 * ws->klrow_d [P] and, with grad, overwrites ws->logits with w_p (q - p), the gradient
 * of sum_p w_p KL_p. Same formulas as backend_loss, in double. */
extern "C" void cu_kl_prepare(cu_ws *ws);
extern "C" void cu_kl_rows(cu_ws *ws, int grad);

/* ---- attention.cu: projections (strided-batched over heads) ---- */
/* q/k/v [H, N, dh] of layer l from normed inputs: head i's q input is X + i*sX, its k
 * input X + i*sX + offX, its v input X + i*sX + 2*offX (masked: sX = 3ND, offX = ND;
 * plain: both 0). Biases left to the attention core. folded: X holds xhat, the folded
 * weights (and, in the core, biases). */
extern "C" void cu_qkv(cu_ws *ws, int l, const float *X, long long sX, long long offX, int folded);
/* The same from xhat in fp16 (lfold 2): X [3H, N, D] halves, the fp16 folded weights. */
extern "C" void cu_qkv_h(cu_ws *ws, int l, const __half *X, long long sX, long long offX);
/* hx [H, N, D] = ob_i W_O[i] + b_O / H (the bias left out with bias = 0: the caller adds it,
 * as cu_delta_write_bias does). */
extern "C" void cu_head_out(cu_ws *ws, int l, int bias);
/* dob [H, N, dh] = hx_i (holding d x_i) W_O[i]^T. */
extern "C" void cu_head_out_bwd(cu_ws *ws, int l);
/* Xn[3i + c] = d(q/k/v)_i W_{q/k/v}[i]^T: gradients w.r.t. the normed reader inputs
 * (folded: w.r.t. xhat, through the folded weights). */
extern "C" void cu_qkv_bwd(cu_ws *ws, int l, int folded);

/* ---- cache.cu ---- */
/* Budget in bytes (0: no cache); drops what was cached. */
extern "C" void cu_cache_set_budget(cu_ws *ws, size_t bytes);
/* All examples of bt cached: ws->c and the base points ws->base (interchange), ws->tgt_d
 * and ws->lse_d filled from the cache, returns 1; else 0 and nothing written. ws->N / B /
 * T and the embeddings xtok / xpos already set for bt. */
extern "C" int cu_cache_fetch(cu_ws *ws, const ep_batch *bt);
/* Would cu_cache_fetch serve bt (every example cached)? Counts nothing. */
extern "C" int cu_cache_has(const cu_ws *ws, const ep_batch *bt);
/* After a computed prepare of bt: cache its examples not cached yet, within the budget. */
extern "C" void cu_cache_store(cu_ws *ws, const ep_batch *bt);
extern "C" void cu_cache_stats(const cu_ws *ws, int64_t *entries, int64_t *hits, int64_t *misses, size_t *bytes);
extern "C" void cu_cache_free(cu_ws *ws);

/* ---- mixing.cu: bf16 ---- */
/* dst[i] = bf16(src[i]), n elements. */
extern "C" void cu_to_bf16(cu_ws *ws, const float *src, __nv_bfloat16 *dst, size_t n);
/* Row-major C (fp32) = alpha op(A) op(B) + beta C with bf16 A and B, fp32 accumulation. */
extern "C" void cu_gemm_bf16(cu_ws *ws, int ta, int tb, int M, int N, int K, float alpha, const __nv_bfloat16 *A,
                             int lda, const __nv_bfloat16 *B, int ldb, float beta, float *C, int ldc);

/* ---- device.cu ---- */
/* Device allocation of count elements of size bytes, zeroed, counted in ws->dev_bytes. */
extern "C" void *cu_dalloc(cu_ws *ws, size_t count, size_t size);
