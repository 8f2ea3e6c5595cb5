/* core.c — fatal errors, check-macro back ends, logging, memory, files. */
#define _POSIX_C_SOURCE 200809L
#include "edgeprune/core.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <mpi.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int ep_rank = 0;
int ep_size = 1;
static int ep_mpi_started = 0;

void ep_mpi_init(int *argc, char ***argv) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    EP_CHECK_MPI(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
  }
  ep_mpi_started = 1;
  EP_CHECK_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &ep_rank));
  EP_CHECK_MPI(MPI_Comm_size(MPI_COMM_WORLD, &ep_size));
  /* Errors come back as return codes so EP_CHECK_MPI can report them. */
  EP_CHECK_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
}

void ep_mpi_finalize(void) {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (ep_mpi_started && !finalized) MPI_Finalize();
  ep_mpi_started = 0;
}

int ep_mpi_active(void) {
  int finalized = 0;
  MPI_Finalized(&finalized);
  return ep_mpi_started && !finalized;
}

static EP_NORETURN void ep_abort(void) {
  fflush(stdout);
  fflush(stderr);
  if (ep_mpi_active() && ep_size > 1) MPI_Abort(MPI_COMM_WORLD, 1);
  if (ep_mpi_active()) MPI_Finalize();
  exit(1);
}

void ep_fatal_at(const char *file, int line, const char *func, const char *fmt, ...) {
  fflush(stdout);
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "[%d] %s:%d %s: ", ep_rank, file, line, func);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  ep_abort();
}

void ep_mpi_fail(const char *file, int line, const char *func, const char *expr, int err) {
  char msg[MPI_MAX_ERROR_STRING + 1] = {0};
  int len = 0;
  if (MPI_Error_string(err, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "error %d", err);
  ep_fatal_at(file, line, func, "MPI call failed: %s: %s", expr, msg);
}

void ep_h5_fail(const char *file, int line, const char *func, const char *expr) {
  fflush(stdout);
  fprintf(stderr, "[%d] %s:%d %s: HDF5 call failed: %s\n", ep_rank, file, line, func, expr);
  H5Eprint2(H5E_DEFAULT, stderr);
  ep_abort();
}

void *ep_malloc_at(size_t n, const char *file, int line, const char *func) {
  void *p = malloc(n ? n : 1);
  if (!p) ep_fatal_at(file, line, func, "out of memory allocating %zu bytes", n);
  return p;
}

void *ep_calloc_at(size_t count, size_t size, const char *file, int line, const char *func) {
  void *p = calloc(count ? count : 1, size ? size : 1);
  if (!p) ep_fatal_at(file, line, func, "out of memory allocating %zu x %zu bytes", count, size);
  return p;
}

void *ep_realloc_at(void *p, size_t n, const char *file, int line, const char *func) {
  void *q = realloc(p, n ? n : 1);
  if (!q) ep_fatal_at(file, line, func, "out of memory reallocating %zu bytes", n);
  return q;
}

char *ep_strdup_at(const char *s, const char *file, int line, const char *func) {
  size_t n = strlen(s) + 1;
  char *d = ep_malloc_at(n, file, line, func);
  memcpy(d, s, n);
  return d;
}

static void ep_vlog(FILE *f, int tag, const char *fmt, va_list ap) {
  if (tag) fprintf(f, "[%d] ", ep_rank);
  vfprintf(f, fmt, ap);
  fputc('\n', f);
  fflush(f);
}

void ep_log(const char *fmt, ...) {
  if (ep_rank != 0) return;
  va_list ap;
  va_start(ap, fmt);
  ep_vlog(stdout, 0, fmt, ap);
  va_end(ap);
}

void ep_log_all(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ep_vlog(stdout, 1, fmt, ap);
  va_end(ap);
}

void ep_warn(const char *fmt, ...) {
  if (ep_rank != 0) return;
  va_list ap;
  va_start(ap, fmt);
  fputs("warning: ", stderr);
  ep_vlog(stderr, 0, fmt, ap);
  va_end(ap);
}

double ep_time_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

char *ep_try_read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 1 << 16, n = 0;
  char *buf = ep_malloc(cap);
  for (;;) {
    if (n + 1 >= cap) buf = ep_realloc(buf, cap *= 2);
    size_t got = fread(buf + n, 1, cap - n - 1, f);
    n += got;
    if (got == 0) break;
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    free(buf);
    errno = EIO;
    return NULL;
  }
  buf[n] = '\0';
  if (len) *len = n;
  return buf;
}

char *ep_read_file(const char *path, size_t *len) {
  char *buf = ep_try_read_file(path, len);
  if (!buf) ep_fatal("cannot read file '%s': %s", path, strerror(errno));
  return buf;
}

void ep_atomic_tmpname(const char *path, char *out, size_t out_size) {
  int n = snprintf(out, out_size, "%s.tmp.%ld", path, (long)getpid());
  EP_CHECK(n > 0 && (size_t)n < out_size, "path too long: '%s'", path);
}

void ep_atomic_commit(const char *tmp, const char *path) {
  int fd = open(tmp, O_RDONLY);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
  if (rename(tmp, path) != 0)
    ep_fatal("cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
}

void ep_atomic_abort(const char *tmp) { unlink(tmp); }

char *ep_path_join(const char *dir, const char *name) {
  size_t a = strlen(dir), b = strlen(name);
  char *p = ep_malloc(a + b + 2);
  memcpy(p, dir, a);
  size_t k = a;
  if (a > 0 && dir[a - 1] != '/') p[k++] = '/';
  memcpy(p + k, name, b + 1);
  return p;
}
