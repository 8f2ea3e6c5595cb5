/* core.h — errors, checks, logging and memory helpers used everywhere.
 *
 * A fatal error prints "[rank] file:line function: message", flushes, and ends the
 * whole job (MPI_Abort when MPI is running, exit otherwise). Every library call is
 * wrapped in its check macro so the message names the expression and the library's
 * own error string. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#if defined(__GNUC__)
#define EP_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define EP_NORETURN __attribute__((noreturn))
#else
#define EP_PRINTF(a, b)
#define EP_NORETURN
#endif

/* The process's place in MPI_COMM_WORLD (0 / 1 before MPI is up). */
extern int ep_rank;
extern int ep_size;

/* Start and stop MPI exactly once for the whole program. */
void ep_mpi_init(int *argc, char ***argv);
void ep_mpi_finalize(void);
int ep_mpi_active(void);

EP_NORETURN void ep_fatal_at(const char *file, int line, const char *func, const char *fmt, ...)
    EP_PRINTF(4, 5);
#define ep_fatal(...) ep_fatal_at(__FILE__, __LINE__, __func__, __VA_ARGS__)

/* Always-on check of an internal or input condition. */
#define EP_CHECK(cond, ...)                                                                        \
  do {                                                                                             \
    if (!(cond)) ep_fatal_at(__FILE__, __LINE__, __func__, __VA_ARGS__);                           \
  } while (0)

/* Debug-only invariant (never a bare assert under MPI). */
#ifndef NDEBUG
#define EP_ASSERT(cond)                                                                            \
  do {                                                                                             \
    if (!(cond)) ep_fatal_at(__FILE__, __LINE__, __func__, "assertion failed: %s", #cond);         \
  } while (0)
#else
#define EP_ASSERT(cond)                                                                            \
  do {                                                                                             \
  } while (0)
#endif

/* MPI: any return other than MPI_SUCCESS is fatal, with MPI's error string. */
void ep_mpi_fail(const char *file, int line, const char *func, const char *expr, int err)
    EP_NORETURN;
#define EP_CHECK_MPI(call)                                                                         \
  do {                                                                                             \
    int ep_mpi_err_ = (call);                                                                      \
    if (ep_mpi_err_ != 0) ep_mpi_fail(__FILE__, __LINE__, __func__, #call, ep_mpi_err_);           \
  } while (0)

/* HDF5: a negative hid_t / herr_t is an error; the HDF5 error stack is printed. */
void ep_h5_fail(const char *file, int line, const char *func, const char *expr) EP_NORETURN;
#define EP_CHECK_H5(call)                                                                          \
  do {                                                                                             \
    if ((int64_t)(call) < 0) ep_h5_fail(__FILE__, __LINE__, __func__, #call);                      \
  } while (0)

/* Memory: never returns NULL. */
void *ep_malloc_at(size_t n, const char *file, int line, const char *func);
void *ep_calloc_at(size_t count, size_t size, const char *file, int line, const char *func);
void *ep_realloc_at(void *p, size_t n, const char *file, int line, const char *func);
char *ep_strdup_at(const char *s, const char *file, int line, const char *func);
#define ep_malloc(n) ep_malloc_at((n), __FILE__, __LINE__, __func__)
#define ep_calloc(c, s) ep_calloc_at((c), (s), __FILE__, __LINE__, __func__)
#define ep_realloc(p, n) ep_realloc_at((p), (n), __FILE__, __LINE__, __func__)
#define ep_strdup(s) ep_strdup_at((s), __FILE__, __LINE__, __func__)

/* Rank 0 speaks: ep_log prints on rank 0 only; ep_log_all prints "[rank] ..." on every rank. */
void ep_log(const char *fmt, ...) EP_PRINTF(1, 2);
void ep_log_all(const char *fmt, ...) EP_PRINTF(1, 2);
/* Warnings go to stderr on rank 0. */
void ep_warn(const char *fmt, ...) EP_PRINTF(1, 2);

/* Wall-clock seconds (monotonic). */
double ep_time_now(void);

/* Read a whole file into a NUL-terminated buffer; *len gets the byte count (without the
 * NUL). Fatal error naming the file when it cannot be read. */
char *ep_read_file(const char *path, size_t *len);
/* Same, but returns NULL (and sets errno) instead of failing. */
char *ep_try_read_file(const char *path, size_t *len);

/* Atomic output: write to "<path>.tmp.<pid>", then ep_atomic_commit renames it over
 * path after fsync. ep_atomic_abort removes the temporary. */
void ep_atomic_tmpname(const char *path, char *out, size_t out_size);
void ep_atomic_commit(const char *tmp, const char *path);
void ep_atomic_abort(const char *tmp);

/* Join a directory and a file name into a freshly allocated string. */
char *ep_path_join(const char *dir, const char *name);
