/* backend_select.c — see backend_select.h. */
#include "edgeprune/backend_select.h"

#include "edgeprune/core.h"
#ifdef EP_HAVE_CUDA
#include "edgeprune/backend_cuda.h"
#endif

const char *backend_kind_name(ep_backend_kind k) {
  return k == EP_BACKEND_CPU ? "cpu" : k == EP_BACKEND_CUDA ? "cuda" : "auto";
}

const char *backend_compute_name(ep_compute c) {
  return c == EP_COMPUTE_TF32 ? "tf32" : c == EP_COMPUTE_BF16 ? "bf16" : "fp32";
}

#ifdef EP_HAVE_CUDA
static int cuda_bound = -1; /* device bound by this process, -1: none yet */
#endif

const ep_backend_ops *backend_choose(const ep_backend_choice *ch) {
  if (ch->kind == EP_BACKEND_CPU) return backend_cpu();
#ifdef EP_HAVE_CUDA
  if (backend_cuda_available()) {
    if (cuda_bound < 0) {
      cuda_bound = backend_cuda_select_device();
      ep_log("backend: cuda (%s), node-local device %d on rank 0", backend_compute_name(ch->compute), cuda_bound);
    }
    return backend_cuda();
  }
  if (ch->kind == EP_BACKEND_CUDA)
    ep_fatal("run.backend = cuda, but no CUDA device can be used on this node (use run.backend: auto or cpu)");
#else
  if (ch->kind == EP_BACKEND_CUDA)
    ep_fatal("run.backend = cuda, but this edgeprune was built without the CUDA backend (configure with "
             "-DEP_CUDA=ON on a machine with the CUDA toolkit, or use run.backend: auto or cpu)");
#endif
  return backend_cpu();
}

void *backend_open(const ep_backend_ops *be, const ep_backend_choice *ch, const ep_model *m, const ep_graph *g,
                   const ep_engine_opts *o, int B_max, int T_max) {
#ifdef EP_HAVE_CUDA
  if (be == backend_cuda()) {
    EP_CHECK(o->precision == EP_PREC_F32, "the CUDA backend computes in fp32/tf32/bf16, not fp64");
    void *ws = be->create(m, g, o, B_max, T_max);
    backend_cuda_set_precision(ws, (int)ch->compute);
    size_t free_b = 0;
    backend_cuda_mem_info(&free_b, NULL);
    const size_t margin = (size_t)1 << 30, cache = (size_t)(ch->cache_mb * 1048576.0);
    const size_t keep = backend_cuda_keep_bytes(ws);
    /* the prepare cache first (it saves more per step), then kept activations */
    const size_t cache_fit = cache < (free_b > margin ? free_b - margin : 0) ? cache : 0;
    if (cache > 0 && !cache_fit)
      ep_warn("run.device_cache_mb = %g does not fit in the free device memory (%.0f MiB): no cache", ch->cache_mb,
              (double)free_b / 1048576.0);
    backend_cuda_set_prepare_cache(ws, cache_fit);
    if (free_b > margin + cache_fit + keep) backend_cuda_set_keep_activations(ws, 1);
    return ws;
  }
#endif
  if (ch->compute != EP_COMPUTE_FP32 && be == backend_cpu() && o->precision == EP_PREC_F32)
    ep_log("run.precision = %s applies to the CUDA backend; the CPU backend computes in fp32",
           backend_compute_name(ch->compute));
  return be->create(m, g, o, B_max, T_max);
}
