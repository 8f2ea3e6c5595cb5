/* test_stopper.c — the stop decision on every rank.
 * Usage: test_stopper MODE DIR (under mpirun), MODE one of
 *   signal  : the last rank raises SIGUSR1 during step 3; all ranks stop at step 3
 *   sigterm : rank 0 raises SIGTERM during step 5; all ranks stop at step 5
 *   file    : rank 0 creates DIR/stop during step 4; all stop at step 4, file removed
 *   wall    : fake clock, 1 s per step, limit 10 s, checkpoint 1.5 s: margin 3.5 s,
 *             so the check after step 6 (7 s elapsed + 3.5 s >= 10 s) stops
 *   none    : no limit, no file, no signal: 30 steps, no stop. */
#define _POSIX_C_SOURCE 200809L
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "edgeprune/core.h"
#include "edgeprune/stopper.h"
#include "test_util.h"

static double fake_now = 100.0;
static double fake_clock(void) {
  return fake_now;
}

int main(int argc, char **argv) {
  ep_mpi_init(&argc, &argv);
  if (argc < 3) ep_fatal("usage: test_stopper MODE DIR");
  const char *mode = argv[1], *dir = argv[2];
  if (ep_rank == 0) {
    mkdir(dir, 0777);
    char *stop = ep_path_join(dir, "stop");
    unlink(stop); /* left over from an earlier run of this test */
    free(stop);
  }
  stopper_install_signals();
  int wall = strcmp(mode, "wall") == 0;
  ep_stopper s;
  stopper_init(&s, MPI_COMM_WORLD, dir, wall ? 10.0 : 0.0, wall ? fake_clock : NULL);

  int expect_step = -1;
  ep_stop_reason expect = EP_STOP_NONE;
  if (strcmp(mode, "signal") == 0) expect_step = 3, expect = EP_STOP_SIGNAL;
  if (strcmp(mode, "sigterm") == 0) expect_step = 5, expect = EP_STOP_SIGNAL;
  if (strcmp(mode, "file") == 0) expect_step = 4, expect = EP_STOP_FILE;
  /* Check after step k sees k+1 seconds elapsed and a 3.5 s margin (2 x 1 s mean step
   * + 1.5 s checkpoint): (k+1) + 3.5 >= 10 first holds at k = 6. */
  if (wall) expect_step = 6, expect = EP_STOP_WALL_TIME;

  int stopped_at = -1;
  ep_stop_reason why = EP_STOP_NONE;
  for (int step = 0; step < 30; step++) {
    fake_now += 1.0; /* the step's work */
    if (wall && step == 0) stopper_note_checkpoint_time(&s, 1.5);
    if (strcmp(mode, "signal") == 0 && step == 3 && ep_rank == ep_size - 1) raise(SIGUSR1);
    if (strcmp(mode, "sigterm") == 0 && step == 5 && ep_rank == 0) raise(SIGTERM);
    if (strcmp(mode, "file") == 0 && step == 4 && ep_rank == 0) {
      FILE *f = fopen(s.stop_file, "w");
      EP_CHECK(f, "cannot create %s", s.stop_file);
      fclose(f);
    }
    ep_stop_reason r = stopper_should_stop(&s);
    if (r != EP_STOP_NONE) {
      stopped_at = step, why = r;
      break;
    }
  }
  T_CHECK(stopped_at == expect_step, "rank %d (%s): stopped at step %d, expected %d", ep_rank, mode,
          stopped_at, expect_step);
  T_CHECK(why == expect, "rank %d (%s): reason '%s', expected '%s'", ep_rank, mode, stopper_reason_name(why),
          stopper_reason_name(expect));
  int lo = 0, hi = 0;
  MPI_Allreduce(&stopped_at, &lo, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  MPI_Allreduce(&stopped_at, &hi, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  T_CHECK(lo == hi, "ranks stopped at different steps (%d..%d)", lo, hi);
  if (strcmp(mode, "signal") == 0) T_CHECK(s.last_signal == SIGUSR1, "signal number %d", s.last_signal);
  if (strcmp(mode, "sigterm") == 0) T_CHECK(s.last_signal == SIGTERM, "signal number %d", s.last_signal);
  if (wall && ep_rank == 0) T_CLOSE(stopper_margin(&s), 3.5, 1e-12, 0, "wall-time margin");
  if (strcmp(mode, "file") == 0 && ep_rank == 0)
    T_CHECK(access(s.stop_file, F_OK) != 0, "stop file not removed after stopping");
  stopper_free(&s);

  int failed = t_failed, any = 0;
  EP_CHECK_MPI(MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
  int rc = t_done();
  ep_mpi_finalize();
  return any ? 1 : rc;
}
