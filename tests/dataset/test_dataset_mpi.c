/* test_dataset_mpi.c — collective hyperslab reads: each rank reads its own rows
 * (one rank reads none) and gets exactly what a serial read gives; scattered rows in any
 * order (with repeats) through an open split, read collectively over a union of
 * hyperslabs, land in the requested order, and HDF5 reports the transfers collective.
 *   mpirun -n 2 test_dataset_mpi TMPDIR */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgeprune/core.h"
#include "edgeprune/dataset.h"
#include "test_util.h"

int main(int argc, char **argv) {
  ep_mpi_init(&argc, &argv);
  EP_CHECK(argc >= 2, "usage: test_dataset_mpi TMPDIR");
  char *path = ep_path_join(argv[1], "mpi_test.h5");
  const int64_t n = 23;
  const int T = 6;
  if (ep_rank == 0) {
    remove(path);
    ep_dataset d;
    dataset_alloc(&d, n, T);
    snprintf(d.task, sizeof d.task, "ioi");
    d.pad_id = 50256;
    for (int64_t i = 0; i < n; i++) {
      for (int t = 0; t < T; t++) {
        d.clean[i * T + t] = (int32_t)(100 * i + t);
        d.corrupted[i * T + t] = (int32_t)(-100 * i - t);
      }
      d.length[i] = T;
      d.loss_start[i] = T - 1;
      d.loss_end[i] = T;
      d.target[i] = (int32_t)i;
      d.distractor[i] = (int32_t)(i + 1);
    }
    dataset_write(&d, path, "train", NULL);
    dataset_free(&d);
  }
  EP_CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));
  /* pass 1: rank 0 reads everything, the others nothing; pass 2: an uneven split */
  for (int pass = 0; pass < 2; pass++) {
    int64_t first, count;
    if (pass == 0) {
      first = 0;
      count = ep_rank == 0 ? n : 0;
    } else {
      int64_t per = n / ep_size, extra = n % ep_size;
      first = ep_rank * per + (ep_rank < extra ? ep_rank : extra);
      count = per + (ep_rank < extra);
    }
    ep_dataset r;
    dataset_read_rows(&r, path, "train", first, count, 1);
    int ok = r.n == count && r.max_len == T && !strcmp(r.task, "ioi") && r.pad_id == 50256;
    for (int64_t i = 0; i < count && ok; i++) {
      int64_t g = first + i;
      for (int t = 0; t < T; t++)
        ok = ok && r.clean[i * T + t] == 100 * g + t && r.corrupted[i * T + t] == -100 * g - t;
      ok = ok && r.target[i] == g && r.distractor[i] == g + 1 && r.loss_start[i] == T - 1 && r.aux[i] == -1;
    }
    T_CHECK(ok, "rank %d pass %d rows [%lld, %lld)", ep_rank, pass, (long long)first,
            (long long)(first + count));
    dataset_free(&r);
  }
  /* scattered rows through one open file, several reads: pass 0 gives rank 0 everything
   * and the others nothing, later passes a seeded shuffle split over the ranks */
  ep_dataset_file *df = dataset_file_open(path, "train", MPI_COMM_WORLD);
  T_CHECK(dataset_file_n(df) == n && dataset_file_max_len(df) == T, "open split shape");
  ep_dataset r;
  memset(&r, 0, sizeof r);
  int64_t rows[2 * 23];
  for (int pass = 0; pass < 4; pass++) {
    int64_t cnt = 0;
    if (pass == 0) {
      if (ep_rank == 0)
        for (int64_t i = 0; i < n; i++)
          rows[cnt++] = n - 1 - i;
    } else {
      int64_t perm[23];
      for (int64_t i = 0; i < n; i++)
        perm[i] = i;
      for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (i * 7 + pass * 13) % (i + 1), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
      }
      for (int64_t i = ep_rank; i < n; i += ep_size)
        rows[cnt++] = perm[i];
      if (pass == 3) rows[cnt++] = rows[0]; /* a repeat */
    }
    dataset_file_read_indices(df, rows, cnt, &r);
    int ok = r.n == cnt && r.max_len == T && !strcmp(r.task, "ioi") && r.pad_id == 50256;
    for (int64_t i = 0; i < cnt && ok; i++) {
      int64_t g = rows[i];
      for (int t = 0; t < T; t++)
        ok = ok && r.clean[i * T + t] == 100 * g + t && r.corrupted[i * T + t] == -100 * g - t;
      ok = ok && r.target[i] == g && r.distractor[i] == g + 1 && r.length[i] == T && r.aux[i] == -1;
    }
    T_CHECK(ok, "rank %d scattered pass %d (%lld rows)", ep_rank, pass, (long long)cnt);
  }
  T_CHECK(dataset_file_all_collective(df), "rank %d: every transfer was collective MPI-IO", ep_rank);
  dataset_free(&r);
  dataset_file_close(df);
  free(path);
  int status = t_done();
  int worst;
  EP_CHECK_MPI(MPI_Allreduce(&status, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
  ep_mpi_finalize();
  return worst;
}
