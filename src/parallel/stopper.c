/* stopper.c — see stopper.h. */
#define _POSIX_C_SOURCE 200809L
#include "edgeprune/stopper.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "edgeprune/core.h"

/* Written only by the handler, read (and cleared) by stopper_should_stop. */
static volatile sig_atomic_t stopper_signal_seen = 0;

static void stopper_handler(int sig) {
  stopper_signal_seen = sig;
}

void stopper_install_signals(void) {
  static int installed = 0;
  if (installed) return;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = stopper_handler;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART; /* a signal must not make MPI or file I/O fail with EINTR */
  if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGUSR1, &sa, NULL) != 0)
    ep_fatal("cannot install signal handlers: %s", strerror(errno));
  installed = 1;
}

void stopper_init(ep_stopper *s, MPI_Comm comm, const char *out_dir, double max_wall_time,
                  double (*clock)(void)) {
  memset(s, 0, sizeof *s);
  s->comm = comm;
  s->stop_file = out_dir ? ep_path_join(out_dir, "stop") : NULL;
  s->max_wall_time = max_wall_time;
  s->clock = clock ? clock : ep_time_now;
  /* Rank 0's clock is the one that counts; starting together keeps it meaningful. */
  EP_CHECK_MPI(MPI_Barrier(comm));
  s->t_start = s->t_last = s->clock();
}

void stopper_free(ep_stopper *s) {
  free(s->stop_file);
  s->stop_file = NULL;
}

void stopper_note_checkpoint_time(ep_stopper *s, double seconds) {
  if (seconds > s->ckpt_time_max) s->ckpt_time_max = seconds;
}

double stopper_margin(const ep_stopper *s) {
  double mean = s->n_intervals ? s->step_time_sum / (double)s->n_intervals : 0.0;
  return 2.0 * mean + s->ckpt_time_max;
}

ep_stop_reason stopper_should_stop(ep_stopper *s) {
  int rank = 0;
  EP_CHECK_MPI(MPI_Comm_rank(s->comm, &rank));
  /* A signal may reach any rank (a user's kill to one process, the batch system's to
   * all): each rank contributes its flag, rank 0 adds its own checks, and the
   * reduction hands the one decision to everybody. */
  int sig = stopper_signal_seen;
  int local[2] = {sig ? EP_STOP_SIGNAL : EP_STOP_NONE, sig};
  if (rank == 0) {
    double now = s->clock();
    s->step_time_sum += now - s->t_last; /* one step since the previous check */
    s->n_intervals++;
    s->t_last = now;
    if (local[0] == EP_STOP_NONE && s->stop_file && access(s->stop_file, F_OK) == 0) local[0] = EP_STOP_FILE;
    if (local[0] == EP_STOP_NONE && s->max_wall_time > 0 &&
        now - s->t_start + stopper_margin(s) >= s->max_wall_time)
      local[0] = EP_STOP_WALL_TIME;
  }
  /* Lowest nonzero reason wins, so a signal anywhere beats rank 0's other reasons:
   * encode NONE as a large value for MPI_MIN. */
  int enc[2] = {local[0] == EP_STOP_NONE ? 1000 : local[0], local[1] ? local[1] : 1000}, dec[2];
  EP_CHECK_MPI(MPI_Allreduce(enc, dec, 2, MPI_INT, MPI_MIN, s->comm));
  ep_stop_reason r = dec[0] == 1000 ? EP_STOP_NONE : (ep_stop_reason)dec[0];
  if (r == EP_STOP_SIGNAL) s->last_signal = dec[1] == 1000 ? 0 : dec[1];
  if (r == EP_STOP_FILE && rank == 0 && unlink(s->stop_file) != 0)
    ep_warn("cannot remove stop file '%s': %s", s->stop_file, strerror(errno));
  return r;
}

const char *stopper_reason_name(ep_stop_reason r) {
  switch (r) {
  case EP_STOP_NONE:
    return "none";
  case EP_STOP_SIGNAL:
    return "signal";
  case EP_STOP_FILE:
    return "stop file";
  case EP_STOP_WALL_TIME:
    return "wall-time limit";
  }
  return "?";
}
