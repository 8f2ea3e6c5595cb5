/* logits.cu — the output head at the loss positions only, and its backward from the
 * loss gradient. The loss itself (backend_loss, shared with the CPU backend) runs on the
 * host on the [P, Vo] logits: one D2H of the logits and one H2D of their gradient per
 * step (cuda_backend.c). */
#include "cuda_internal.h"

static int head_has_norm(const cu_ws *ws) { return ws->m->cfg.final_norm && ws->m->cfg.norm != EP_NORM_NONE; }

extern "C" void cu_head_logits(cu_ws *ws) {
  const int P = (int)ws->P, D = ws->D, Vo = ws->Vo;
  if (head_has_norm(ws))
    cu_norm_fwd(ws, ws->yf, NULL, 1, ws->xf, ws->fmu, ws->frs, ws->lnf_w, ws->lnf_b, (size_t)P);
  else
    EP_CHECK_CUDA(cudaMemcpyAsync(ws->xf, ws->yf, (size_t)P * D * sizeof(float), cudaMemcpyDeviceToDevice, ws->st));
  /* logits [P, Vo] = xf [P, D] unembed^T */
  cu_gemm(ws, 0, 1, P, Vo, D, 1.0f, ws->xf, D, ws->unembed, D, 0.0f, ws->logits, Vo);
}

extern "C" void cu_head_logits_bwd(cu_ws *ws) {
  const int P = (int)ws->P, D = ws->D, Vo = ws->Vo;
  /* d xf [P, D] = dlogits [P, Vo] unembed [Vo, D] */
  cu_gemm(ws, 0, 0, P, D, Vo, 1.0f, ws->logits, Vo, ws->unembed, D, 0.0f, ws->xf, D);
  if (head_has_norm(ws)) cu_norm_bwd(ws, ws->yf, ws->fmu, ws->frs, ws->lnf_w, ws->xf, ws->xf, (size_t)P);
}
