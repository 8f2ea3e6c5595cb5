/* cli.h — sub-commands of the edgeprune program.
 *
 * Each command lives in src/cli/cmd_<name>.c and defines one
 *   const ep_command ep_cmd_<name> = {...};
 * The build generates the table of all of them (cmake/commands.c.in), so adding a
 * command is adding a file. MPI is initialised before run() is called; every rank
 * runs every command. run() returns the process exit status. */
#pragma once

typedef struct {
  const char *name;    /* as typed: "prune", "step-dump" */
  const char *summary; /* one line for `edgeprune --help` */
  const char *help;    /* full text for `edgeprune NAME --help` (usage + options) */
  int order;           /* position in the command list */
  int (*run)(int argc, char **argv); /* argv[0] is the command name */
} ep_command;

/* The generated table, sorted by `order`, and its length. */
const ep_command *const *ep_command_table(void);
extern const int ep_n_commands;

/* 1 when argv holds -h or --help. */
int cli_wants_help(int argc, char **argv);

/* Print a usage error for cmd ("edgeprune NAME: message" + hint) on rank 0 and return 2. */
int cli_usage_error(const ep_command *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Value of option `flag` at argv[*i] (either "--flag VALUE" or "--flag=VALUE").
 * Returns NULL when argv[*i] is not that flag; advances *i past a separate value.
 * A missing value is a usage error (fatal, naming the flag). */
const char *cli_option(int argc, char **argv, int *i, const char *flag);
