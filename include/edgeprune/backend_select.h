/* backend_select.h — which engine backend a command runs on, and how.
 *
 * Deck keys (prune / eval / step-dump): run.backend auto|cpu|cuda, run.precision
 * fp32|tf32|bf16, run.device_cache_mb. auto is the CUDA backend when this build has it
 * and a device can be used, else the CPU reference; cuda without a usable device is a
 * fatal error naming the key. Under MPI each rank binds the device of its node-local
 * rank (one rank per GPU). The precision applies to the CUDA backend (the CPU reference
 * computes in fp32, or fp64 for gradient checks). */
#pragma once

#include <stddef.h>

#include "edgeprune/backend.h"

typedef enum { EP_BACKEND_AUTO = 0, EP_BACKEND_CPU = 1, EP_BACKEND_CUDA = 2 } ep_backend_kind;

/* fp32:  fp32 storage and fp32 GEMMs (the CPU reference's numbers to ~1e-5).
 * tf32:  fp32 storage, GEMMs on TF32 tensor cores (inputs rounded to 10-bit mantissas).
 * bf16:  the difference stack Δ and the reader gradients stored in bf16 for the
 *        memory-bound mixing / edge-gradient / ddelta GEMMs (fp32 accumulation), TF32
 *        elsewhere; masks, their gradients, norms and losses in fp32/double. */
typedef enum { EP_COMPUTE_FP32 = 0, EP_COMPUTE_TF32 = 1, EP_COMPUTE_BF16 = 2 } ep_compute;

typedef struct {
  ep_backend_kind kind;
  ep_compute compute;
  double cache_mb; /* device memory for cached prepare() outputs (CUDA; 0: none) */
} ep_backend_choice;

/* "auto" / "cpu" / "cuda" and "fp32" / "tf32" / "bf16" (deck words). */
const char *backend_kind_name(ep_backend_kind k);
const char *backend_compute_name(ep_compute c);

/* The ops of the chosen backend (auto resolved). The first CUDA resolution in a process
 * binds the node-local device. Fatal, naming run.backend, when cuda is asked for and this
 * build or machine has no usable CUDA device. */
const ep_backend_ops *backend_choose(const ep_backend_choice *ch);

/* A workspace on be (from backend_choose) with the choice's settings applied: on the CUDA
 * backend the precision, kept activations when they fit in free device memory (with a
 * 1 GiB margin), and the prepare cache budget. */
void *backend_open(const ep_backend_ops *be, const ep_backend_choice *ch, const ep_model *m, const ep_graph *g,
                   const ep_engine_opts *o, int B_max, int T_max);
