/* grid.c — see grid.h. */
#include "edgeprune/grid.h"

#include <limits.h>

#include "edgeprune/core.h"

void grid_init(ep_grid *g, int n_stages) {
  g->world = MPI_COMM_WORLD;
  EP_CHECK_MPI(MPI_Comm_rank(g->world, &g->rank));
  EP_CHECK_MPI(MPI_Comm_size(g->world, &g->size));
  if (n_stages < 1) ep_fatal("the number of pipeline stages (pp) must be at least 1, got %d", n_stages);
  if (g->size % n_stages != 0)
    ep_fatal("cannot arrange %d MPI ranks as %d pipeline stages: the number of ranks must be a "
             "multiple of pp (for example %d ranks, or change pp)",
             g->size, n_stages, n_stages * ((g->size + n_stages - 1) / n_stages));
  g->n_stages = n_stages;
  g->n_replicas = g->size / n_stages;
  g->stage = g->rank / g->n_replicas;
  g->replica = g->rank % g->n_replicas;
  EP_CHECK_MPI(MPI_Comm_split(g->world, g->stage, g->replica, &g->dp));
  EP_CHECK_MPI(MPI_Comm_split(g->world, g->replica, g->stage, &g->pp));
  EP_CHECK_MPI(MPI_Comm_set_errhandler(g->dp, MPI_ERRORS_RETURN));
  EP_CHECK_MPI(MPI_Comm_set_errhandler(g->pp, MPI_ERRORS_RETURN));
}

void grid_free(ep_grid *g) {
  if (g->dp != MPI_COMM_NULL) EP_CHECK_MPI(MPI_Comm_free(&g->dp));
  if (g->pp != MPI_COMM_NULL) EP_CHECK_MPI(MPI_Comm_free(&g->pp));
}

int grid_world_rank(const ep_grid *g, int stage, int replica) {
  EP_ASSERT(stage >= 0 && stage < g->n_stages && replica >= 0 && replica < g->n_replicas);
  return stage * g->n_replicas + replica;
}

/* MPI counts are int: split large arrays into chunks. */
static void grid_allreduce(void *x, size_t n, size_t elem, MPI_Datatype t, MPI_Comm comm) {
  const size_t chunk = (size_t)INT_MAX / 2;
  char *p = x;
  for (size_t off = 0; off < n; off += chunk) {
    size_t c = n - off < chunk ? n - off : chunk;
    EP_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, p + off * elem, (int)c, t, MPI_SUM, comm));
  }
}

void grid_allreduce_dp_f32(const ep_grid *g, float *x, size_t n) {
  grid_allreduce(x, n, sizeof *x, MPI_FLOAT, g->dp);
}
void grid_allreduce_dp_f64(const ep_grid *g, double *x, size_t n) {
  grid_allreduce(x, n, sizeof *x, MPI_DOUBLE, g->dp);
}
void grid_allreduce_pp_f32(const ep_grid *g, float *x, size_t n) {
  grid_allreduce(x, n, sizeof *x, MPI_FLOAT, g->pp);
}
void grid_allreduce_pp_f64(const ep_grid *g, double *x, size_t n) {
  grid_allreduce(x, n, sizeof *x, MPI_DOUBLE, g->pp);
}

void grid_bcast(const ep_grid *g, void *buf, size_t bytes) {
  const size_t chunk = (size_t)INT_MAX / 2;
  char *p = buf;
  for (size_t off = 0; off < bytes; off += chunk) {
    size_t c = bytes - off < chunk ? bytes - off : chunk;
    EP_CHECK_MPI(MPI_Bcast(p + off, (int)c, MPI_BYTE, 0, g->world));
  }
}

void grid_batch_shard(int64_t batch, int dp, int r, int64_t *first, int64_t *count) {
  EP_CHECK(dp >= 1 && r >= 0 && r < dp && batch >= 0, "bad batch shard request: batch %lld, dp %d, r %d",
           (long long)batch, dp, r);
  int64_t base = batch / dp, extra = batch % dp;
  *count = base + (r < extra ? 1 : 0);
  *first = (int64_t)r * base + (r < extra ? r : extra);
}
