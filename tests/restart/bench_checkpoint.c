/* bench_checkpoint.c — size and write/validate/read time of a checkpoint holding a
 * GPT-2-small mask state: 32,936 edge + 158 node log_alphas + 4 lambdas (theta) with
 * their AdamW moments, plus a resolved deck of typical length. Built with the tests,
 * never run by ctest (it times things).
 *   [mpirun -n R] bench_checkpoint DIR [REPEATS]  */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "edgeprune/checkpoint.h"
#include "edgeprune/core.h"

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  ep_mpi_init(&argc, &argv);
  EP_CHECK(argc >= 2, "usage: bench_checkpoint DIR [REPEATS]");
  const int reps = argc > 2 ? atoi(argv[2]) : 20;
  const int64_t n = 32936 + 158 + 4;
  double *theta = ep_malloc((size_t)n * sizeof *theta), *m = ep_malloc((size_t)n * sizeof *m),
         *v = ep_malloc((size_t)n * sizeof *v);
  for (int64_t i = 0; i < n; i++) {
    theta[i] = 10.0 - 1e-4 * (double)i;
    m[i] = 1e-3 * (double)(i % 97);
    v[i] = 1e-6 * (double)(i % 89);
  }
  int64_t t = 1234;
  char deck[6000];
  memset(deck, 'x', sizeof deck - 1); /* about the length of a resolved prune deck */
  deck[sizeof deck - 1] = '\0';
  ep_ckpt_meta meta = {0, 0, 0x1234abcdULL, 1, ep_size, 1, {7}, deck};
  ep_ckpt_array a[4] = {{"theta", EP_CKPT_F64, n, theta},
                        {"adam_m", EP_CKPT_F64, n, m},
                        {"adam_v", EP_CKPT_F64, n, v},
                        {"adam_t", EP_CKPT_I64, 1, &t}};
  double *tw = ep_malloc((size_t)reps * sizeof *tw), *tv = ep_malloc((size_t)reps * sizeof *tv),
         *tr = ep_malloc((size_t)reps * sizeof *tr);
  char *last = NULL;
  for (int r = 0; r < reps; r++) {
    meta.step = r + 1;
    EP_CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));
    double t0 = ep_time_now();
    free(last);
    last = checkpoint_write(argv[1], &meta, 4, a, 2, MPI_COMM_WORLD);
    tw[r] = ep_time_now() - t0;
    t0 = ep_time_now();
    char *found = checkpoint_find_latest(argv[1], MPI_COMM_WORLD); /* validates every checksum */
    tv[r] = ep_time_now() - t0;
    EP_CHECK(found && !strcmp(found, last), "the checkpoint just written is not the newest valid one");
    free(found);
    ep_ckpt_meta back;
    t0 = ep_time_now();
    checkpoint_read(last, &back, 4, a, MPI_COMM_WORLD);
    tr[r] = ep_time_now() - t0;
    checkpoint_meta_free(&back);
  }
  if (ep_rank == 0) {
    struct stat st;
    EP_CHECK(stat(last, &st) == 0, "cannot stat %s", last);
    qsort(tw, (size_t)reps, sizeof *tw, cmp_d);
    qsort(tv, (size_t)reps, sizeof *tv, cmp_d);
    qsort(tr, (size_t)reps, sizeof *tr, cmp_d);
    printf("checkpoint of a GPT-2-small mask state (%lld values x 3 arrays + deck), %d rank(s), %d repeats\n",
           (long long)n, ep_size, reps);
    printf("  file size        %lld bytes (%.1f KiB; arrays alone %lld bytes)\n", (long long)st.st_size,
           (double)st.st_size / 1024.0, (long long)(3 * n * 8 + 8));
    printf("  write (median)   %.4f s  (min %.4f, max %.4f): parallel HDF5 + fsync + rename + rotation\n",
           tw[reps / 2], tw[0], tw[reps - 1]);
    printf("  find+validate    %.4f s  (median)\n", tv[reps / 2]);
    printf("  read             %.4f s  (median)\n", tr[reps / 2]);
  }
  free(last);
  free(theta);
  free(m);
  free(v);
  free(tw);
  free(tv);
  free(tr);
  ep_mpi_finalize();
  return 0;
}
