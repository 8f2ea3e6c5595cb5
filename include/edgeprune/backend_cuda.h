/* backend_cuda.h — the CUDA backend of the Edge Pruning engine (backend.h).
 *
 * Same entry points and semantics as backend_cpu() (opts.precision must be EP_PREC_F32;
 * TF32 / bf16 through backend_cuda_set_precision). The model's weights are copied to the device once in create; per call
 * only tokens, masks, mask gradients and per-position losses cross the bus. The kl and
 * kl_sum losses run on the device; position_kl and mse (Tracr's numeric heads) in the
 * shared host code backend_loss on the [P, Vo] outputs. Sequences up to 128 tokens;
 * GPT-2 and Tracr kinds (no RoPE, gated MLP or grouped-query attention yet).
 *
 * On a machine without a usable CUDA device backend_cuda_available() returns 0, and
 * nothing else here may be called. Plain C interface: no CUDA headers needed. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "edgeprune/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when at least one CUDA device can be used by this process, else 0 (never fails). */
int backend_cuda_available(void);

/* Bind this process to a device: node-local rank (MPI_Comm_split_type SHARED over
 * MPI_COMM_WORLD when MPI is running, else 0) modulo the node's device count.
 * Returns the device index. Call before create. */
int backend_cuda_select_device(void);

/* Mark the start (on) or end (off) of a region for a profiler started with
 * --profile-from-start off (cudaProfilerStart / cudaProfilerStop). */
void backend_cuda_profiler_range(int on);

/* Free and total memory of the current device in bytes (cudaMemGetInfo). */
void backend_cuda_mem_info(size_t *free_bytes, size_t *total_bytes);

/* Arithmetic of workspace ws (backend_select.h ep_compute): 0 fp32 (the default),
 * 1 TF32 tensor-core GEMMs (the difference stack and the normed reader rows also kept in
 * fp16, which holds their TF32-rounded values exactly: backend_cuda_delta16), 2 bf16 difference stack and reader gradients in the
 * edge-gradient and ddelta GEMMs (fp32 accumulation; the reader mixing in fp32, TF32 for
 * the other GEMMs; masks, mask gradients, norms and losses in fp32/double). bf16 moves a
 * step's gradients by up to ~1e-2 relative to their scale (the test allows 1e-1). */
void backend_cuda_set_precision(void *ws, int compute);

/* 1 while workspace ws's TF32 steps keep the difference stack's fp16 copy for their mixing
 * and edge-gradient kernels (each value rounded to TF32, which fp16 holds exactly: the
 * same products at half the bytes). It goes to 0 for good when a value passes fp16's
 * range (65504); the step that saw it runs again on fp32 differences. Environment
 * EP_CUDA_DELTA16=0 turns it off from the start. */
int backend_cuda_delta16(const void *ws);

/* GEMMs of workspace ws (from backend_cuda()->create) in TF32 tensor-core mode
 * (CUBLAS_COMPUTE_32F_FAST_TF32; storage and everything else stay fp32) when on, plain
 * fp32 (the default) when off. For speed measurements: TF32 rounds GEMM inputs to 10-bit
 * mantissas, so results move by ~1e-3 relative and the fp32 comparison test does not
 * apply. */
void backend_cuda_set_tf32(void *ws, int on);

/* Keep every layer's forward state of the masked run on the device for the backward
 * (on) instead of recomputing it layer by layer in the backward (off, the default, the
 * CPU reference's memory-saving way). Same results bit for bit; on costs about
 * L * (3H + 4) * B*T*D floats of device memory and saves the recomputation. */
void backend_cuda_set_keep_activations(void *ws, int on);

/* Device bytes backend_cuda_set_keep_activations(ws, 1) would add (0 once kept). */
size_t backend_cuda_keep_bytes(const void *ws);

/* Device bytes held by the workspace: its buffers and the prepare cache. */
size_t backend_cuda_workspace_bytes(const void *ws);

/* Cache prepare()'s per-example outputs (clean logits at the loss positions, corrupted
 * writer outputs) on the device, up to bytes (0: none, the default; drops the cache).
 * Keyed by example content (tokens, length, loss range): a batch whose examples are all
 * cached skips both plain runs. kl / kl_sum losses only (others always recompute). */
void backend_cuda_set_prepare_cache(void *ws, size_t bytes);
/* Cached examples, batches served from the cache, batches computed, cache bytes. */
void backend_cuda_cache_stats(const void *ws, int64_t *entries, int64_t *hits, int64_t *misses, size_t *bytes);

/* Wait for the work the workspace has queued on its device (prepare returns with its
 * work queued). */
void backend_cuda_wait(void *ws);

/* Masked steps launched as a CUDA graph, graphs captured for them (one per launch shape
 * and option set, CU_GRAPH_SLOTS kept; a capture costs about a step), and the kernels
 * in the last graph captured (0 before any). */
void backend_cuda_graph_stats(const void *ws, int64_t *launches, int64_t *captures, int64_t *kernels);

/* The CUDA backend's operations. */
const ep_backend_ops *backend_cuda(void);

#ifdef __cplusplus
}
#endif
