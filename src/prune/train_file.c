/* train_file.c — see train_file.h. */
#define _POSIX_C_SOURCE 200809L
#include "train_file.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "edgeprune/core.h"
#include "edgeprune/grid.h"

/* Rows per collective read of the pass: bounded memory on big splits, and a multiple of
 * the batch share so the writer-output batches (mean ablation) are the ones a whole
 * in-memory split gives. */
enum { PREPASS_ROWS = 4096 };

void train_file_prepass(const ep_prune_config *c, const ep_backend_ops *be, void *ws, const ep_graph *g,
                        const ep_model_config *cfg, ep_dataset_file *f, int replica, int n_replicas,
                        int64_t count, MPI_Comm dp_comm, float *mean) {
  const int64_t n = dataset_file_n(f);
  const int T = dataset_file_max_len(f), D = cfg->d_model, W = g->n_writers;
  if (n < 1) ep_fatal("%s: split '%s' has no examples", c->data_path, c->train_split);
  /* the replicas with a share of the batch split the examples between them */
  const int active = (int)(c->batch_size < n_replicas ? c->batch_size : n_replicas);
  int64_t first = 0, share = 0;
  if (count > 0 && replica < active) grid_batch_shard(n, active, replica, &first, &share);
  const int64_t chunk = count > 0 ? count * (PREPASS_ROWS / count > 0 ? PREPASS_ROWS / count : 1) : 1;
  long long iters = count > 0 ? (share + chunk - 1) / chunk : 0, most = iters;
  if (dp_comm != MPI_COMM_NULL)
    EP_CHECK_MPI(MPI_Allreduce(&iters, &most, 1, MPI_LONG_LONG, MPI_MAX, dp_comm));

  const size_t WTD = (size_t)W * T * D;
  double *sum = mean ? ep_calloc(WTD ? WTD : 1, sizeof *sum) : NULL;
  int64_t *cnt = mean ? ep_calloc((size_t)T + 1, sizeof *cnt) : NULL;
  int64_t *rows = ep_malloc((size_t)chunk * sizeof *rows);
  ep_dataset part;
  memset(&part, 0, sizeof part);
  for (long long it = 0; it < most; it++) {
    int64_t lo = first + it * chunk, k = 0;
    if (it < iters) k = share - it * chunk < chunk ? share - it * chunk : chunk;
    for (int64_t i = 0; i < k; i++)
      rows[i] = lo + i;
    dataset_file_read_indices(f, rows, k, &part);
    if (k == 0) continue;
    prune_check_rows(&part, lo, cfg, c->data_path, c->train_split);
    if (mean) prune_mean_writers_accumulate(be, ws, g, cfg, &part, count, sum, cnt);
  }
  dataset_free(&part);
  free(rows);
  if (!mean) return;
  if (dp_comm != MPI_COMM_NULL) {
    EP_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, cnt, T, MPI_INT64_T, MPI_SUM, dp_comm));
    /* a deterministic reduction for a fixed number of ranks, so a restart on the same
     * grid recomputes the same mean */
    for (size_t off = 0; off < WTD; off += (size_t)1 << 28) {
      size_t m = WTD - off < ((size_t)1 << 28) ? WTD - off : ((size_t)1 << 28);
      EP_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, sum + off, (int)m, MPI_DOUBLE, MPI_SUM, dp_comm));
    }
  }
  prune_mean_writers_finish(g, cfg, T, sum, cnt, mean);
  free(sum);
  free(cnt);
}

void train_debug_delay(double seconds) {
  struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
  while (nanosleep(&ts, &ts) != 0) { /* a signal cut it short: sleep the rest */
  }
}
