/* device.cu — device discovery and selection, memory accounting. */
#include <cuda_profiler_api.h>
#include <mpi.h>

#include "cuda_internal.h"

extern "C" {
#include "edgeprune/backend_cuda.h"
}

extern "C" int backend_cuda_available(void) {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    (void)cudaGetLastError(); /* no driver / no device: clear the sticky error, report none */
    return 0;
  }
  return n > 0;
}

extern "C" int backend_cuda_select_device(void) {
  int n = 0;
  EP_CHECK_CUDA(cudaGetDeviceCount(&n));
  EP_CHECK(n > 0, "no CUDA device on this node");
  int local = 0, inited = 0, finalized = 0;
  EP_CHECK_MPI(MPI_Initialized(&inited));
  EP_CHECK_MPI(MPI_Finalized(&finalized));
  if (inited && !finalized) {
    /* ranks that share a node share its devices: node-local rank picks one */
    MPI_Comm node;
    EP_CHECK_MPI(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node));
    EP_CHECK_MPI(MPI_Comm_rank(node, &local));
    EP_CHECK_MPI(MPI_Comm_free(&node));
  }
  const int dev = local % n;
  EP_CHECK_CUDA(cudaSetDevice(dev));
  return dev;
}

extern "C" void backend_cuda_profiler_range(int on) {
  EP_CHECK_CUDA(cudaDeviceSynchronize());
  if (on) EP_CHECK_CUDA(cudaProfilerStart());
  else EP_CHECK_CUDA(cudaProfilerStop());
}

extern "C" void backend_cuda_mem_info(size_t *free_bytes, size_t *total_bytes) {
  size_t f = 0, t = 0;
  EP_CHECK_CUDA(cudaMemGetInfo(&f, &t));
  if (free_bytes) *free_bytes = f;
  if (total_bytes) *total_bytes = t;
}

extern "C" void *cu_dalloc(cu_ws *ws, size_t count, size_t size) {
  void *p = NULL;
  const size_t n = (count ? count : 1) * size;
  EP_CHECK_CUDA(cudaMalloc(&p, n));
  EP_CHECK_CUDA(cudaMemset(p, 0, n));
  EP_CHECK(ws->n_dbufs < (int)(sizeof ws->dbufs / sizeof *ws->dbufs), "too many device buffers");
  ws->dbufs[ws->n_dbufs++] = p;
  ws->dev_bytes += n;
  return p;
}
