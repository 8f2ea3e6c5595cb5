/* grid.h — the pp × dp grid of MPI ranks.
 *
 * MPI_COMM_WORLD holds pp pipeline stages × dp data-parallel replicas. Layout:
 *   world rank = stage * dp + replica
 * so the ranks of one stage are contiguous (a stage's replicas sit on the same
 * nodes when ranks are packed by node, which keeps the dp all-reduce of mask
 * gradients inside a node). `dp` joins the dp replicas of one stage, `pp` joins the
 * pp stages of one replica. Every call here is collective over the communicator it
 * names. */
#pragma once

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
  MPI_Comm world; /* MPI_COMM_WORLD (not owned) */
  MPI_Comm dp;    /* same stage, all replicas; rank in it = replica */
  MPI_Comm pp;    /* same replica, all stages; rank in it = stage */
  int rank, size; /* in world */
  int n_stages;   /* pp */
  int n_replicas; /* dp */
  int stage, replica;
} ep_grid;

/* Split MPI_COMM_WORLD into n_stages stages (fatal, with a clear message, when the
 * number of ranks is not a multiple of n_stages or n_stages < 1). Collective. */
void grid_init(ep_grid *g, int n_stages);
void grid_free(ep_grid *g);

/* World rank of (stage, replica). */
int grid_world_rank(const ep_grid *g, int stage, int replica);

/* In-place sums over the replicas of this stage (dp) or the stages of this replica (pp).
 * n may exceed INT_MAX (done in chunks). */
void grid_allreduce_dp_f32(const ep_grid *g, float *x, size_t n);
void grid_allreduce_dp_f64(const ep_grid *g, double *x, size_t n);
void grid_allreduce_pp_f32(const ep_grid *g, float *x, size_t n);
void grid_allreduce_pp_f64(const ep_grid *g, double *x, size_t n);

/* Broadcast `bytes` bytes from world rank 0 to every rank (chunked past INT_MAX). */
void grid_bcast(const ep_grid *g, void *buf, size_t bytes);

/* The shard of a global batch of `batch` examples that replica r of dp gets:
 * contiguous [*first, *first + *count), sizes differ by at most one, the first
 * batch % dp replicas get one extra; a replica gets zero when batch < dp. */
void grid_batch_shard(int64_t batch, int dp, int r, int64_t *first, int64_t *count);
