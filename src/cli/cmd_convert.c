/* cmd_convert.c — `edgeprune convert`: Hugging Face / Tracr checkpoint -> model file. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <mpi.h>

#include "edgeprune/cli.h"
#include "edgeprune/core.h"
#include "edgeprune/model.h"
#include "edgeprune/model_file.h"
#include "edgeprune/model_io.h"

static int convert_run(int argc, char **argv);

const ep_command ep_cmd_convert = {
    "convert",
    "convert a Hugging Face or Tracr checkpoint to an edgeprune model file",
    "usage: edgeprune convert --from SOURCE --to MODEL.h5\n"
    "\n"
    "Reads a model and writes it as an edgeprune model file (HDF5: the config as root\n"
    "attributes, one float32 dataset per tensor; see include/edgeprune/model_file.h).\n"
    "The output appears only when complete (written to a temporary, then renamed); on\n"
    "any error nothing is written and the exit status is non-zero.\n"
    "\n"
    "SOURCE is one of:\n"
    "  DIR                       Hugging Face GPT-2 or Llama folder: config.json plus\n"
    "                            model.safetensors or model.safetensors.index.json (shards)\n"
    "  FILE.safetensors          with config.json in the same folder (Hugging Face), or\n"
    "                            with FILE.config.json next to it (Tracr)\n"
    "  NAME.config.json          a Tracr config; weights from NAME.safetensors\n"
    "  MODEL.h5                  an edgeprune model file (rewritten as is)\n"
    "Tensors may be F32, F16, BF16 or F64; they are stored as float32.\n"
    "\n"
    "options:\n"
    "  --from SOURCE   the model to read (required)\n"
    "  --to MODEL.h5   the model file to write (required; replaced if it exists)\n"
    "  -h, --help      this text\n"
    "\n"
    "Prints a one-paragraph summary of the model (architecture, layers, heads, widths,\n"
    "vocabulary, parameter count). Runs on rank 0 when started under MPI.\n",
    30,
    convert_run,
};

static int convert_run(int argc, char **argv) {
  const char *from = NULL, *to = NULL, *v;
  for (int i = 1; i < argc; i++) {
    if ((v = cli_option(argc, argv, &i, "--from")))
      from = v;
    else if ((v = cli_option(argc, argv, &i, "--to")))
      to = v;
    else
      return cli_usage_error(&ep_cmd_convert, "unexpected argument '%s'", argv[i]);
  }
  if (!from) return cli_usage_error(&ep_cmd_convert, "--from SOURCE is required");
  if (!to) return cli_usage_error(&ep_cmd_convert, "--to MODEL.h5 is required");
  if (!strcmp(from, to)) return cli_usage_error(&ep_cmd_convert, "--from and --to name the same file");
  if (ep_rank == 0) {
    /* Fail before reading a large checkpoint when the output cannot be written. */
    char *slash = strrchr(to, '/');
    char dir[4096];
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - to) + (slash == to) : 1, slash ? to : ".");
    if (access(dir, W_OK) != 0) ep_fatal("--to %s: folder '%s' is missing or not writable", to, dir);
    /* Everything is read and checked before the output is created, so bad input never
     * leaves a file behind. */
    ep_model m;
    model_load(&m, from);
    ep_model_tokens tok;
    model_load_tokens(&tok, from);
    model_file_write(&m, &tok, from, to);
    char summary[1024];
    model_describe(&m.cfg, summary, sizeof summary);
    printf("%s\nwrote %s\n", summary, to);
    model_tokens_free(&tok);
    model_free(&m);
  }
  if (ep_mpi_active()) EP_CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));
  return 0;
}
