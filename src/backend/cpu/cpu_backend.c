/* cpu_backend.c — the CPU reference backend (backend.h), in fp32 and fp64.
 * The engine itself is cpu_impl.inc, instantiated here once per real type. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "edgeprune/backend.h"
#include "edgeprune/core.h"

#define R float
#define SFX f32
#define EPC_IS_DOUBLE 0
#define GEMM(...) cblas_sgemm(CblasRowMajor, __VA_ARGS__)
#define GEMV(...) cblas_sgemv(CblasRowMajor, __VA_ARGS__)
#include "cpu_impl.inc"
#undef R
#undef SFX
#undef EPC_IS_DOUBLE
#undef GEMM
#undef GEMV

#define R double
#define SFX f64
#define EPC_IS_DOUBLE 1
#define GEMM(...) cblas_dgemm(CblasRowMajor, __VA_ARGS__)
#define GEMV(...) cblas_dgemv(CblasRowMajor, __VA_ARGS__)
#include "cpu_impl.inc"
#undef R
#undef SFX
#undef EPC_IS_DOUBLE
#undef GEMM
#undef GEMV

/* The workspace remembers its precision in a small header so one ops table serves both. */
typedef struct {
  ep_precision prec;
  void *impl;
} cpu_handle;

static void *cpu_create(const ep_model *m, const ep_graph *g, const ep_engine_opts *o, int B, int T) {
  cpu_handle *h = ep_malloc(sizeof *h);
  h->prec = o->precision;
  h->impl = o->precision == EP_PREC_F64 ? cpu_create_f64(m, g, o, B, T) : cpu_create_f32(m, g, o, B, T);
  return h;
}

static void cpu_destroy(void *p) {
  cpu_handle *h = p;
  if (!h) return;
  if (h->prec == EP_PREC_F64)
    cpu_destroy_f64(h->impl);
  else
    cpu_destroy_f32(h->impl);
  free(h);
}

static void cpu_writer_outputs(void *p, const int32_t *tok, const int32_t *len, int B, int T, float *out) {
  cpu_handle *h = p;
  if (h->prec == EP_PREC_F64)
    cpu_writer_outputs_f64(h->impl, tok, len, B, T, out);
  else
    cpu_writer_outputs_f32(h->impl, tok, len, B, T, out);
}

static int64_t cpu_prepare(void *p, const ep_batch *b, const float *mean_c) {
  cpu_handle *h = p;
  return h->prec == EP_PREC_F64 ? cpu_prepare_f64(h->impl, b, mean_c) : cpu_prepare_f32(h->impl, b, mean_c);
}

static double cpu_faith(void *p, const double *z_edge, const double *z_node, double *dz_edge, double *dz_node,
                        float *out) {
  cpu_handle *h = p;
  return h->prec == EP_PREC_F64 ? cpu_faith_f64(h->impl, z_edge, z_node, dz_edge, dz_node, out)
                                : cpu_faith_f32(h->impl, z_edge, z_node, dz_edge, dz_node, out);
}

static void cpu_full_outputs(void *p, float *out) {
  cpu_handle *h = p;
  if (h->prec == EP_PREC_F64)
    cpu_full_outputs_f64(h->impl, out);
  else
    cpu_full_outputs_f32(h->impl, out);
}

static const ep_backend_ops cpu_ops = {
    .name = "cpu",
    .create = cpu_create,
    .destroy = cpu_destroy,
    .writer_outputs = cpu_writer_outputs,
    .prepare = cpu_prepare,
    .faith = cpu_faith,
    .full_outputs = cpu_full_outputs,
};

const ep_backend_ops *backend_cpu(void) {
  return &cpu_ops;
}
