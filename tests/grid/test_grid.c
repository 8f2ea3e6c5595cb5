/* test_grid.c — the pp × dp grid: layout, sub-communicators, reductions, broadcast,
 * and the batch shards. Usage: test_grid PP (under mpirun). */
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "edgeprune/core.h"
#include "edgeprune/grid.h"
#include "test_util.h"

static void test_shards(void) {
  /* Every (batch, dp): shards tile [0, batch) in order, sizes differ by <= 1. */
  for (int64_t batch = 0; batch <= 20; batch++)
    for (int dp = 1; dp <= 7; dp++) {
      int64_t next = 0, lo = batch, hi = 0;
      int ok = 1;
      for (int r = 0; r < dp; r++) {
        int64_t first, count;
        grid_batch_shard(batch, dp, r, &first, &count);
        ok &= first == next && count >= 0;
        next = first + count;
        if (count < lo) lo = count;
        if (count > hi) hi = count;
      }
      T_CHECK(ok && next == batch && hi - lo <= 1, "shards of batch %lld over dp %d", (long long)batch, dp);
    }
  int64_t first, count;
  grid_batch_shard(10, 4, 3, &first, &count);
  T_CHECK(first == 8 && count == 2, "batch 10 dp 4 r 3: [%lld,+%lld)", (long long)first, (long long)count);
  grid_batch_shard(2, 4, 3, &first, &count);
  T_CHECK(count == 0, "batch 2 dp 4: replica 3 gets %lld", (long long)count);
}

int main(int argc, char **argv) {
  ep_mpi_init(&argc, &argv);
  int pp = argc > 1 ? atoi(argv[1]) : 1;
  ep_grid g;
  grid_init(&g, pp);
  int dp = ep_size / pp;
  T_CHECK(g.n_stages == pp && g.n_replicas == dp, "grid %d x %d", g.n_stages, g.n_replicas);
  T_CHECK(g.rank == g.stage * dp + g.replica, "layout rank %d stage %d replica %d", g.rank, g.stage,
          g.replica);
  T_CHECK(grid_world_rank(&g, g.stage, g.replica) == ep_rank, "grid_world_rank");
  int r_dp, n_dp, r_pp, n_pp;
  MPI_Comm_rank(g.dp, &r_dp);
  MPI_Comm_size(g.dp, &n_dp);
  MPI_Comm_rank(g.pp, &r_pp);
  MPI_Comm_size(g.pp, &n_pp);
  T_CHECK(r_dp == g.replica && n_dp == dp && r_pp == g.stage && n_pp == pp, "sub-communicator ranks");

  /* dp sum: x[i] = world rank * 100 + i; sum over the replicas of my stage. */
  enum { N = 5 };
  float xf[N];
  double xd[N];
  for (int i = 0; i < N; i++)
    xf[i] = (float)(ep_rank * 100 + i), xd[i] = ep_rank * 100.0 + i + 0.5;
  grid_allreduce_dp_f32(&g, xf, N);
  grid_allreduce_dp_f64(&g, xd, N);
  int ok = 1;
  for (int i = 0; i < N; i++) {
    double want = 0, wantd = 0;
    for (int r = 0; r < dp; r++) {
      want += grid_world_rank(&g, g.stage, r) * 100.0 + i;
      wantd += grid_world_rank(&g, g.stage, r) * 100.0 + i + 0.5;
    }
    ok &= xf[i] == (float)want && xd[i] == wantd;
  }
  T_CHECK(ok, "dp all-reduce");
  for (int i = 0; i < N; i++)
    xf[i] = (float)(ep_rank + i), xd[i] = ep_rank * 2.0 + i;
  grid_allreduce_pp_f32(&g, xf, N);
  grid_allreduce_pp_f64(&g, xd, N);
  ok = 1;
  for (int i = 0; i < N; i++) {
    double want = 0, wantd = 0;
    for (int s = 0; s < pp; s++) {
      want += grid_world_rank(&g, s, g.replica) + i;
      wantd += grid_world_rank(&g, s, g.replica) * 2.0 + i;
    }
    ok &= xf[i] == (float)want && xd[i] == wantd;
  }
  T_CHECK(ok, "pp all-reduce");

  char msg[32] = {0};
  if (ep_rank == 0) strcpy(msg, "from rank zero");
  grid_bcast(&g, msg, sizeof msg);
  T_CHECK(strcmp(msg, "from rank zero") == 0, "broadcast got '%s'", msg);

  if (ep_rank == 0) test_shards();
  grid_free(&g);
  int failed = t_failed, any = 0;
  EP_CHECK_MPI(MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
  int rc = t_done();
  ep_mpi_finalize();
  return any ? 1 : rc;
}
