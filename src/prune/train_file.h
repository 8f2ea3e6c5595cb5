/* train_file.h — the training split read from its file, shard by shard (train.c's helper).
 *
 * No rank holds the whole training split: at the start every replica that has a share
 * of the batch reads a contiguous block of the split once (collectively), checks it
 * against the model and, for mean ablation, adds up its writer outputs (the sums are
 * then all-reduced over dp); during the run every rank reads only its rows of each
 * step's batch (dataset_file_read_indices). */
#pragma once

#include <mpi.h>
#include <stdint.h>

#include "edgeprune/backend.h"
#include "edgeprune/dataset.h"
#include "edgeprune/graph.h"
#include "edgeprune/model.h"
#include "edgeprune/train.h"

/* The one pass over the split. Collective over the ranks of f (every rank calls).
 * replica/n_replicas: this rank's place in dp, whose ranks all share f's communicator;
 * count: this replica's share of the global batch (0: it takes part in the reads with
 * nothing, ws is NULL). mean [W, T, D] or NULL (no mean ablation): on return the mean
 * over the whole split, identical on every rank. dp_comm: where the sums are reduced
 * (MPI_COMM_NULL with one rank). Fatal, naming the file, split and global example
 * index, on the first bad example. */
void train_file_prepass(const ep_prune_config *c, const ep_backend_ops *be, void *ws, const ep_graph *g,
                        const ep_model_config *cfg, ep_dataset_file *f, int replica, int n_replicas,
                        int64_t count, MPI_Comm dp_comm, float *mean);

/* debug.step_delay: sleep this many seconds (tests that must catch a run mid-way). */
void train_debug_delay(double seconds);
