/* stopper.h — when to stop a run, decided by rank 0 and shared by all.
 *
 * Three reasons to stop: a signal (SIGTERM from the batch system before the job's
 * time is up, or SIGUSR1 from the user) caught on any rank; a file named `stop` in
 * the output directory; and a wall-clock limit (run.max_wall_time), checked with a
 * margin so the final checkpoint still fits: stop when
 *   elapsed + 2 × (mean step time) + (longest checkpoint write) >= max_wall_time.
 * stopper_should_stop is called once per step by every rank of the communicator; it
 * is collective and returns the same answer on every rank, so all ranks stop after
 * the same step. */
#pragma once

#include <mpi.h>

typedef enum {
  EP_STOP_NONE = 0,
  EP_STOP_SIGNAL = 1,   /* SIGTERM or SIGUSR1 */
  EP_STOP_FILE = 2,     /* OUT_DIR/stop exists */
  EP_STOP_WALL_TIME = 3 /* run.max_wall_time would be exceeded by another step */
} ep_stop_reason;

typedef struct {
  MPI_Comm comm;
  char *stop_file;       /* "<out_dir>/stop" (NULL: no stop file) */
  double max_wall_time;  /* seconds; <= 0 disables the limit */
  double (*clock)(void); /* seconds; ep_time_now unless a test substitutes its own */
  double t_start;        /* clock() at stopper_init */
  double t_last;         /* clock() at the previous check */
  double step_time_sum;  /* over the intervals between checks */
  long n_intervals;
  double ckpt_time_max; /* longest checkpoint write reported */
  int last_signal;      /* the signal number behind EP_STOP_SIGNAL */
} ep_stopper;

/* Install the SIGTERM and SIGUSR1 handlers (once per process; they only set a flag). */
void stopper_install_signals(void);

/* Collective over comm. out_dir may be NULL (no stop file). clock may be NULL. */
void stopper_init(ep_stopper *s, MPI_Comm comm, const char *out_dir, double max_wall_time,
                  double (*clock)(void));
void stopper_free(ep_stopper *s);

/* Record how long the last checkpoint took (rank 0's value is the one used). */
void stopper_note_checkpoint_time(ep_stopper *s, double seconds);

/* Collective, once per step: the stop decision, identical on every rank. A stop file
 * that triggered the stop is removed by rank 0, so a restarted job does not stop at
 * once. */
ep_stop_reason stopper_should_stop(ep_stopper *s);

/* "signal", "stop file", "wall-time limit" or "none". */
const char *stopper_reason_name(ep_stop_reason r);

/* The margin currently reserved before max_wall_time (seconds). */
double stopper_margin(const ep_stopper *s);
