/* dataset.h — a task dataset as the engine sees it, and its HDF5 file.
 *
 * File layout (one group per split, e.g. /train, /validation):
 *   /<split>/clean       int32 [N, T]   token ids, padded with pad_id after len
 *   /<split>/corrupted   int32 [N, T]   same length per example as clean
 *   /<split>/length      int32 [N]      tokens per example
 *   /<split>/loss_start  int32 [N]      loss positions are [loss_start, loss_end)
 *   /<split>/loss_end    int32 [N]
 *   /<split>/target      int32 [N]      answer token (-1 when the task has none)
 *   /<split>/distractor  int32 [N]      distractor token (-1 when none)
 * plus attributes: task, seed, n, pad_id, generator parameters, tokenizer. */
#pragma once

#include <stdint.h>

#define EP_TASK_MAX 32

typedef struct {
  char task[EP_TASK_MAX]; /* "ioi", "gt", "gp", "boolexpr", "reverse", "xproportion", "jsonl" */
  int64_t n;              /* examples held */
  int max_len;            /* T: padded row length */
  int pad_id;
  int32_t *clean;         /* [n, T] */
  int32_t *corrupted;     /* [n, T] */
  int32_t *length;        /* [n] */
  int32_t *loss_start;    /* [n] */
  int32_t *loss_end;      /* [n] */
  int32_t *target;        /* [n], -1 where absent */
  int32_t *distractor;    /* [n], -1 where absent */
} ep_dataset;

/* Allocate n rows of length T (zeroed, target/distractor -1). */
void dataset_alloc(ep_dataset *d, int64_t n, int max_len);
void dataset_free(ep_dataset *d);

/* Read a whole split (serial). Fatal error naming file, split and dataset on problems. */
void dataset_read(ep_dataset *d, const char *path, const char *split);
/* Number of examples and padded length of a split without reading it. */
void dataset_shape(const char *path, const char *split, int64_t *n, int *max_len);
/* Read rows [first, first+count) of a split into d (allocated here). With comm_parallel
 * != 0 the file is opened with MPI-IO and the read is collective over MPI_COMM_WORLD:
 * every rank must call it (count may be 0). */
void dataset_read_rows(ep_dataset *d, const char *path, const char *split, int64_t first,
                       int64_t count, int comm_parallel);
/* Write a split to path (creating or adding to the file; atomic when creating). */
void dataset_write(const ep_dataset *d, const char *path, const char *split, const char *attrs_json);
