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
 *   /<split>/aux         int32 [N]      task-specific integer (-1 when unused): Greater-Than:
 *                                       the start year's last two digits YY (0..99); generated
 *                                       IOI: the template index (0..14 BABA, 15..29 ABBA)
 *   /<split>/answer_tokens int32 [K]    optional: token ids a task metric ranges over;
 *                                       Greater-Than: the ids of "00".."99" (K = 100)
 * plus attributes on the split group: task, n, max_len, pad_id, and those of attrs_json
 * (seed, tokenizer, generator parameters). */
#pragma once

#include <mpi.h>
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
  int32_t *aux;           /* [n], -1 where unused (Greater-Than: YY; IOI: template) */
  int n_answer_tokens;    /* K, 0 when the task has none */
  int32_t *answer_tokens; /* [K] or NULL */
} ep_dataset;

/* Set up d (any previous contents are ignored, not freed) with n zeroed rows of length T:
 * task "", pad_id 0, target/distractor/aux -1, no answer tokens. */
void dataset_alloc(ep_dataset *d, int64_t n, int max_len);
void dataset_free(ep_dataset *d);

/* Read a whole split (serial). Fatal error naming file, split and dataset on problems. */
void dataset_read(ep_dataset *d, const char *path, const char *split);
/* Number of examples and padded length of a split without reading it. */
void dataset_shape(const char *path, const char *split, int64_t *n, int *max_len);
/* Read rows [first, first+count) of a split into d (allocated here). With comm_parallel
 * != 0 the file is opened with MPI-IO and the read is collective over MPI_COMM_WORLD:
 * every rank must call it (count may be 0). */
void dataset_read_rows(ep_dataset *d, const char *path, const char *split, int64_t first, int64_t count,
                       int comm_parallel);
/* An open split for repeated collective reads of scattered rows (the training loop reads
 * each step's shard through it; the file stays open between steps). Every function on it
 * is collective over the communicator given to dataset_file_open. */
typedef struct ep_dataset_file ep_dataset_file;
/* Open a split with MPI-IO on every rank of comm and check the shapes of its datasets.
 * Fatal, naming file and split, when the file, the split or a dataset is missing or
 * has the wrong shape. */
ep_dataset_file *dataset_file_open(const char *path, const char *split, MPI_Comm comm);
void dataset_file_close(ep_dataset_file *f);
/* Examples in the split and their padded length T. */
int64_t dataset_file_n(const ep_dataset_file *f);
int dataset_file_max_len(const ep_dataset_file *f);
/* Read the examples rows[0..count) (any order; repeats allowed; each in [0, n)) into out:
 * out row i = file row rows[i]. One collective H5Dread per array over a union of
 * hyperslabs (runs of consecutive rows); a rank with count 0 joins with an empty
 * selection. out is a zeroed struct or the result of an earlier call (its arrays are
 * reused); it receives task, pad_id and answer tokens too. */
void dataset_file_read_indices(ep_dataset_file *f, const int64_t *rows, int64_t count, ep_dataset *out);
/* 1 when every transfer so far ran as collective MPI-IO on this rank (HDF5's own
 * report, H5Pget_mpio_actual_io_mode), 0 when one fell back to independent I/O. */
int dataset_file_all_collective(const ep_dataset_file *f);

/* Write a split to path (creating or adding to the file; an existing split of that name
 * is replaced). Always atomic: the new file is written to a temporary (a copy of the
 * old one when adding) and renamed over path. attrs_json is NULL or a JSON object whose
 * members become attributes of the split group (strings, integers, numbers; anything
 * else is stored as its JSON text). Serial: call from one rank. */
void dataset_write(const ep_dataset *d, const char *path, const char *split, const char *attrs_json);
/* A string attribute of a split group (malloc'd), or NULL when absent. */
char *dataset_attr_str(const char *path, const char *split, const char *name);
