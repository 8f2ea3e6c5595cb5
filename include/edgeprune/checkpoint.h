/* checkpoint.h — restart files: named replicated arrays plus run metadata.
 *
 * The engine's state is replicated across data-parallel replicas, so a checkpoint
 * holds one copy of each array, written by rank 0 inside a collective parallel-HDF5
 * open. A checkpoint is DIR/ckpt-NNNNNNNN.h5 (NNNNNNNN = step, zero-padded to at
 * least 8 digits), written as a temporary, fsync'ed and renamed, so a crash leaves
 * either the old set or the new file, never a half-written ckpt-*.h5. Integrity
 * checks on read: signature, format version, end marker, and an FNV-1a 64 checksum
 * of every array. The format is described in docs/checkpoint-format.md. */
#pragma once

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#define EP_CKPT_SIGNATURE "edgeprune-checkpoint"
#define EP_CKPT_END_MARKER "edgeprune-checkpoint-end"
#define EP_CKPT_FORMAT_VERSION 1
#define EP_CKPT_MAX_SEEDS 8
#define EP_CKPT_KEEP_DEFAULT 2 /* checkpoints kept by rotation unless the deck says otherwise */

typedef enum { EP_CKPT_F32 = 0, EP_CKPT_F64 = 1, EP_CKPT_I64 = 2, EP_CKPT_U64 = 3 } ep_ckpt_type;

typedef struct {
  const char *name; /* dataset name under /arrays ("log_alpha", "adam_m"); may hold '/' */
  ep_ckpt_type type;
  int64_t n;  /* number of elements (stored 1-D) */
  void *data; /* write: the values (only rank 0's are used); read: n elements, filled */
} ep_ckpt_array;

typedef struct {
  int64_t step;         /* steps completed */
  int64_t data_cursor;  /* position in the training data stream */
  uint64_t config_hash; /* deck_hash of the run's deck */
  int pp, dp;           /* rank grid that wrote it */
  int n_seeds;
  uint64_t seeds[EP_CKPT_MAX_SEEDS];
  char *deck; /* resolved deck text; borrowed on write, malloc'd by the readers */
} ep_ckpt_meta;

/* Write DIR/ckpt-<step>.h5 atomically (collective over comm; DIR is created when
 * missing), then delete older checkpoints so that `keep` remain with step <= this one
 * (keep <= 0 keeps all). Files with a larger step (from an abandoned later run) are
 * left alone. Returns the final path (caller frees). */
char *checkpoint_write(const char *dir, const ep_ckpt_meta *meta, int n_arrays, const ep_ckpt_array *arrays,
                       int keep, MPI_Comm comm);

/* The newest valid checkpoint in dir (collective; rank 0 scans and validates, then
 * broadcasts). Each unusable one gets a warning naming it and the reason, and the
 * previous one is tried; nothing is deleted. Returns NULL when none is usable. */
char *checkpoint_find_latest(const char *dir, MPI_Comm comm);

/* Starting over (run.restart: never) in a directory that holds checkpoints: rename dir to
 * "<dir>.old-YYYYmmdd-HHMMSS" (collective; rank 0 renames), so nothing is lost and a
 * later automatic restart cannot pick up the abandoned run. Returns the new name
 * (caller frees), or NULL when dir held no checkpoint (then nothing is moved). */
char *checkpoint_set_aside(const char *dir, MPI_Comm comm);

/* Full integrity check of one file without MPI (signature, version, end marker, every
 * array's checksum, the file checksum). Returns 1 when good; else 0 with a reason. */
int checkpoint_validate(const char *path, char *reason, size_t reason_cap);

/* Metadata only (collective: rank 0 reads, all get it). Callers compare
 * config_hash and pp/dp with their own and refuse a mismatch. */
void checkpoint_info(const char *path, ep_ckpt_meta *meta, MPI_Comm comm);

/* Read metadata and the named arrays (collective; every rank gets every array).
 * Fatal, naming the file and array, when an array is missing, has another type or
 * length, or fails its checksum, or the file lacks signature/version/end marker. */
void checkpoint_read(const char *path, ep_ckpt_meta *meta, int n_arrays, ep_ckpt_array *arrays,
                     MPI_Comm comm);

/* Free the reader-allocated parts of meta (the deck text). */
void checkpoint_meta_free(ep_ckpt_meta *meta);

/* FNV-1a 64 of one array as stored: name bytes, a 0 byte, the type code byte, then
 * the n element bytes in little-endian order. */
uint64_t checkpoint_array_hash(const char *name, ep_ckpt_type type, int64_t n, const void *data);
