/* test_h5par.c — collective HDF5 writes and reads on 1..N ranks, including ranks with
 * zero rows, checked by reading back in parallel and by h5dump on rank 0.
 * Rank r holds rows(r) rows: 0 for odd ranks (the empty-selection path), r + 2 else. */
#define _POSIX_C_SOURCE 200809L
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgeprune/core.h"
#include "edgeprune/h5io.h"
#include "edgeprune/h5par.h"
#include "test_util.h"

enum { COLS = 3 };

static int64_t rows_of(int r) {
  return r % 2 ? 0 : r + 2;
}
static double value(int64_t row, int col) {
  return (double)row * 10.0 + col + 0.25;
}

int main(int argc, char **argv) {
  ep_mpi_init(&argc, &argv);
  if (argc < 2) ep_fatal("usage: test_h5par OUT.h5");
  const char *path = argv[1];
  int64_t first = 0, total = 0;
  for (int r = 0; r < ep_size; r++) {
    if (r < ep_rank) first += rows_of(r);
    total += rows_of(r);
  }
  int64_t mine = rows_of(ep_rank);

  /* ---- write ---- */
  double *m = ep_malloc((size_t)(mine * COLS) * sizeof *m);
  int64_t *ids = ep_malloc((size_t)mine * sizeof *ids);
  for (int64_t i = 0; i < mine; i++) {
    ids[i] = 1000 + first + i;
    for (int c = 0; c < COLS; c++)
      m[i * COLS + c] = value(first + i, c);
  }
  float rep[2][4];
  for (int i = 0; i < 8; i++)
    rep[i / 4][i % 4] = (float)i * 0.5f;
  hid_t f = h5par_create(path, MPI_COMM_WORLD);
  hid_t g = h5io_group(f, "data");
  int64_t got_total = h5par_write_rows(g, "matrix", H5T_NATIVE_DOUBLE, mine, COLS, m, MPI_COMM_WORLD);
  T_CHECK(got_total == total, "global rows %lld expected %lld", (long long)got_total, (long long)total);
  h5par_write_rows(g, "ids", H5T_NATIVE_INT64, mine, 0, ids, MPI_COMM_WORLD);
  int64_t rdims[2] = {2, 4};
  h5par_write_replicated(f, "replicated", H5T_NATIVE_FLOAT, 2, rdims, rep, MPI_COMM_WORLD);
  /* Attribute value from rank 0 wins even if another rank passes something else. */
  h5par_attr_i64(f, "n_ranks", ep_rank == 0 ? ep_size : -1, MPI_COMM_WORLD);
  h5par_attr_str(f, "label", ep_rank == 0 ? "collective write" : "wrong", MPI_COMM_WORLD);
  h5par_attr_u64(g, "big", 18446744073709551615ULL, MPI_COMM_WORLD);
  h5par_attr_f64(g, "scale", 0.125, MPI_COMM_WORLD);
  uint64_t seeds[3] = {1, 2, 3};
  h5par_attr_u64_array(f, "seeds", 3, seeds, MPI_COMM_WORLD);
  EP_CHECK_H5(H5Gclose(g));
  h5par_close(f);

  /* ---- read back in parallel: each rank reads a different, shifted range ---- */
  f = h5par_open(path, MPI_COMM_WORLD, 0);
  int64_t dims[8];
  T_CHECK(h5par_dims(f, "data/matrix", dims, path) == 2 && dims[0] == total && dims[1] == COLS,
          "matrix dims %lld x %lld", (long long)dims[0], (long long)dims[1]);
  /* Rank r reads rows [r, r + cnt) where cnt = 2 (or 0 on the last rank). */
  int64_t rf = ep_rank < total ? ep_rank : total, rc = ep_rank == ep_size - 1 && ep_size > 1 ? 0 : 2;
  if (rf + rc > total) rc = total - rf;
  double *back = ep_malloc((size_t)(rc * COLS + 1) * sizeof *back);
  h5par_read_rows(f, "data/matrix", H5T_NATIVE_DOUBLE, rf, rc, back, path);
  int bad = 0;
  for (int64_t i = 0; i < rc; i++)
    for (int c = 0; c < COLS; c++)
      bad += back[i * COLS + c] != value(rf + i, c);
  T_CHECK(bad == 0, "rank %d: %d wrong values in rows [%lld, %lld)", ep_rank, bad, (long long)rf,
          (long long)(rf + rc));
  int64_t *idb = ep_malloc((size_t)(total + 1) * sizeof *idb);
  h5par_read_rows(f, "data/ids", H5T_NATIVE_INT64, 0, total, idb, path);
  bad = 0;
  for (int64_t i = 0; i < total; i++)
    bad += idb[i] != 1000 + i;
  T_CHECK(bad == 0, "ids: %d wrong", bad);
  float repb[8];
  h5par_read_all(f, "replicated", H5T_NATIVE_FLOAT, repb, path);
  T_CHECK(memcmp(repb, rep, sizeof repb) == 0, "replicated array differs");
  T_CHECK(h5io_get_attr_i64(f, "n_ranks", path) == ep_size, "n_ranks attribute");
  char *label = h5io_get_attr_str(f, "label", path);
  T_CHECK(strcmp(label, "collective write") == 0, "label '%s'", label);
  free(label);
  h5par_close(f);
  EP_CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));

  /* ---- independent check with h5dump on rank 0 ---- */
  if (ep_rank == 0) {
    char cmd[1024], out[16384], want[256];
    snprintf(cmd, sizeof cmd, "h5dump -H '%s' 2>&1", path);
    int st = t_run_capture(cmd, out, sizeof out);
    T_CHECK(st == 0, "h5dump -H exit %d: %s", st, out);
    snprintf(want, sizeof want, "DATASPACE  SIMPLE { ( %lld, 3 ) / ( %lld, 3 ) }", (long long)total,
             (long long)total);
    T_CHECK(strstr(out, want) != NULL, "h5dump lacks '%s':\n%s", want, out);
    T_CHECK(strstr(out, "DATASPACE  SIMPLE { ( 2, 4 ) / ( 2, 4 ) }") != NULL, "replicated dims:\n%s", out);
    snprintf(cmd, sizeof cmd, "h5dump -d /data/ids -w 1000 '%s' 2>&1", path);
    st = t_run_capture(cmd, out, sizeof out);
    char ids_text[4096] = "(0): ";
    for (int64_t i = 0; i < total; i++) {
      char one[32];
      snprintf(one, sizeof one, i ? ", %lld" : "%lld", (long long)(1000 + i));
      strcat(ids_text, one);
    }
    T_CHECK(st == 0 && strstr(out, ids_text) != NULL, "h5dump ids lacks '%s':\n%s", ids_text, out);
    snprintf(cmd, sizeof cmd, "h5dump -a /label -a /n_ranks '%s' 2>&1", path);
    st = t_run_capture(cmd, out, sizeof out);
    snprintf(want, sizeof want, "(0): %d", ep_size);
    T_CHECK(st == 0 && strstr(out, "\"collective write\"") && strstr(out, want), "h5dump attrs:\n%s", out);
    snprintf(cmd, sizeof cmd, "h5dump -d /data/matrix -w 1000 '%s' 2>&1", path);
    st = t_run_capture(cmd, out, sizeof out);
    snprintf(want, sizeof want, "(%lld,0): %g, %g, %g", (long long)(total - 1), value(total - 1, 0),
             value(total - 1, 1), value(total - 1, 2));
    T_CHECK(st == 0 && strstr(out, want), "h5dump matrix lacks '%s':\n%s", want, out);
  }
  free(m);
  free(ids);
  free(back);
  free(idb);
  int failed = t_failed, any = 0;
  EP_CHECK_MPI(MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
  int rc_all = t_done();
  ep_mpi_finalize();
  return any ? 1 : rc_all;
}
