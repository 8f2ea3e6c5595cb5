/* test_util.c — see test_util.h. */
#define _POSIX_C_SOURCE 200809L
#include "test_util.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/wait.h>

int t_passed = 0, t_failed = 0;

void t_check_at(int ok, const char *file, int line, const char *fmt, ...) {
  if (ok) {
    t_passed++;
    return;
  }
  t_failed++;
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "FAIL %s:%d: ", file, line);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

int t_close(double a, double b, double atol, double rtol) {
  if (isnan(a) || isnan(b)) return 0;
  return fabs(a - b) <= atol + rtol * fabs(b);
}

double t_max_abs_diff(const float *a, const float *b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - (double)b[i]);
    if (isnan(d)) return INFINITY;
    if (d > m) m = d;
  }
  return m;
}

double t_max_rel_diff(const double *a, const double *b, size_t n) {
  double d = 0, m = 0;
  for (size_t i = 0; i < n; i++) {
    const double e = fabs(a[i] - b[i]);
    if (isnan(e)) return INFINITY;
    d = fmax(d, e);
    m = fmax(m, fabs(b[i]));
  }
  return m > 0 ? d / m : d;
}

int t_run_capture(const char *cmd, char *out, size_t cap) {
  FILE *p = popen(cmd, "r");
  if (!p) return -1;
  size_t n = 0;
  if (cap) {
    size_t got;
    while (n + 1 < cap && (got = fread(out + n, 1, cap - 1 - n, p)) > 0) n += got;
    out[n] = '\0';
  }
  char sink[4096];
  while (fread(sink, 1, sizeof sink, p) > 0) {
  }
  int st = pclose(p);
  return (st >= 0 && WIFEXITED(st)) ? WEXITSTATUS(st) : -1;
}

int t_done(void) {
  printf("%d passed, %d failed\n", t_passed, t_failed);
  return t_failed ? 1 : 0;
}
