/* cuda_check.h — check macros for CUDA runtime and cuBLAS calls (CUDA sources only),
 * in the style of core.h: a failing call is fatal and the message names the expression
 * and the library's own error string. */
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

extern "C" {
#include "edgeprune/core.h"
}

#define EP_CHECK_CUDA(call)                                                                        \
  do {                                                                                             \
    cudaError_t ep_cu_err_ = (call);                                                               \
    if (ep_cu_err_ != cudaSuccess)                                                                 \
      ep_fatal_at(__FILE__, __LINE__, __func__, "%s failed: %s (%s)", #call,                       \
                  cudaGetErrorString(ep_cu_err_), cudaGetErrorName(ep_cu_err_));                   \
  } while (0)

#define EP_CHECK_CUBLAS(call)                                                                      \
  do {                                                                                             \
    cublasStatus_t ep_cb_err_ = (call);                                                            \
    if (ep_cb_err_ != CUBLAS_STATUS_SUCCESS)                                                       \
      ep_fatal_at(__FILE__, __LINE__, __func__, "%s failed: %s", #call,                            \
                  cublasGetStatusString(ep_cb_err_));                                              \
  } while (0)

/* After a kernel launch: launch-configuration errors surface here, execution errors at
 * the next synchronising call (also checked). */
#define EP_CHECK_LAUNCH() EP_CHECK_CUDA(cudaGetLastError())
