/* main.c — edgeprune: find circuits in transformer language models with Edge Pruning.
 * Dispatches to the sub-commands of src/cli/. */
#include <stdio.h>
#include <string.h>

#include "edgeprune/cli.h"
#include "edgeprune/core.h"
#include "edgeprune/version.h"

static void print_main_help(FILE *f) {
  fprintf(f,
          "edgeprune %s — circuit discovery in transformers with Edge Pruning\n"
          "(Bhaskar et al., NeurIPS 2024), MPI-parallel.\n\n"
          "usage: edgeprune COMMAND [ARGS...]\n"
          "       mpirun -n N edgeprune COMMAND [ARGS...]\n\n"
          "commands:\n",
          EP_VERSION);
  for (int i = 0; i < ep_n_commands; i++)
    fprintf(f, "  %-10s %s\n", ep_command_table()[i]->name, ep_command_table()[i]->summary);
  fprintf(f, "\n'edgeprune COMMAND --help' describes one command.\n");
}

int main(int argc, char **argv) {
  ep_mpi_init(&argc, &argv);
  int status = 0;
  if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
    if (ep_rank == 0) print_main_help(argc < 2 ? stderr : stdout);
    status = argc < 2 ? 2 : 0;
  } else if (!strcmp(argv[1], "--version")) {
    if (ep_rank == 0) printf("edgeprune %s\n", EP_VERSION);
  } else {
    const ep_command *cmd = NULL;
    for (int i = 0; i < ep_n_commands; i++)
      if (!strcmp(argv[1], ep_command_table()[i]->name)) cmd = ep_command_table()[i];
    if (!cmd) {
      if (ep_rank == 0) fprintf(stderr, "edgeprune: unknown command '%s' (see 'edgeprune --help')\n", argv[1]);
      status = 2;
    } else if (cli_wants_help(argc - 1, argv + 1)) {
      if (ep_rank == 0) fputs(cmd->help, stdout);
    } else {
      status = cmd->run(argc - 1, argv + 1);
    }
  }
  fflush(stdout);
  ep_mpi_finalize();
  return status;
}
