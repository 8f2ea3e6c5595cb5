/* test_util.h — a tiny assertion kit for the C tests.
 *
 * T_CHECK(cond, fmt, ...) records a failure (and keeps going); T_CLOSE compares two
 * doubles with an absolute and relative tolerance; t_done() prints
 * "N passed, N failed" and returns the exit status. */
#pragma once

#include <stddef.h>

extern int t_passed, t_failed;

void t_check_at(int ok, const char *file, int line, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
#define T_CHECK(cond, ...) t_check_at(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

/* |a-b| <= atol + rtol*|b| */
int t_close(double a, double b, double atol, double rtol);
#define T_CLOSE(a, b, atol, rtol, what)                                                            \
  T_CHECK(t_close((a), (b), (atol), (rtol)), "%s: got %.9g expected %.9g", (what), (double)(a),     \
          (double)(b))

/* Largest |a[i]-b[i]| over n values. */
double t_max_abs_diff(const float *a, const float *b, size_t n);
/* Largest |a[i]-b[i]| over n values relative to the largest |b[i]| (the absolute
 * difference when b is all zero); INFINITY when a difference is NaN. */
double t_max_rel_diff(const double *a, const double *b, size_t n);

/* Run a shell command, capture up to cap-1 bytes of its stdout (NUL-terminated) and
 * return its exit status (-1 when it could not run). */
int t_run_capture(const char *cmd, char *out, size_t cap);

/* Print the summary line and return 0 when nothing failed. */
int t_done(void);
