/* cli.c — small helpers shared by the sub-commands. */
#include "edgeprune/cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "edgeprune/core.h"

int cli_wants_help(int argc, char **argv) {
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return 1;
  return 0;
}

int cli_usage_error(const ep_command *cmd, const char *fmt, ...) {
  if (ep_rank == 0) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "edgeprune %s: ", cmd->name);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see 'edgeprune %s --help')\n", cmd->name);
    va_end(ap);
  }
  return 2;
}

const char *cli_option(int argc, char **argv, int *i, const char *flag) {
  const char *a = argv[*i];
  size_t n = strlen(flag);
  if (strncmp(a, flag, n) != 0) return NULL;
  if (a[n] == '=') return a + n + 1;
  if (a[n] != '\0') return NULL;
  if (*i + 1 >= argc) ep_fatal("option %s needs a value", flag);
  (*i)++;
  return argv[*i];
}
