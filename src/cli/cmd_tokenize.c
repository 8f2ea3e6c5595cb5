/* cmd_tokenize.c — `edgeprune tokenize`: GPT-2 token ids of each stdin line. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgeprune/cli.h"
#include "edgeprune/core.h"
#include "edgeprune/tokenizer.h"

static int run(int argc, char **argv);

const ep_command ep_cmd_tokenize = {
    .name = "tokenize",
    .summary = "print the GPT-2 token ids of each line of stdin",
    .help = "usage: edgeprune tokenize --tokenizer DIR\n"
            "\n"
            "Reads text from standard input one line at a time, strips the line's\n"
            "trailing newline (\"\\n\" or \"\\r\\n\"), and prints the line's token ids\n"
            "separated by single spaces, one output line per input line (an empty line\n"
            "gives an empty line). The literal text <|endoftext|> is the special token\n"
            "50256. Only rank 0 reads and prints.\n"
            "\n"
            "options:\n"
            "  --tokenizer DIR   directory holding vocab.json and merges.txt (GPT-2 byte-level\n"
            "                    BPE, e.g. inputs/gpt2-tokenizer)\n"
            "  -h, --help        this text\n",
    .order = 80,
    .run = run,
};

static int run(int argc, char **argv) {
  const char *dir = NULL;
  for (int i = 1; i < argc; i++) {
    const char *v;
    if ((v = cli_option(argc, argv, &i, "--tokenizer")))
      dir = v;
    else
      return cli_usage_error(&ep_cmd_tokenize, "unknown argument '%s'", argv[i]);
  }
  if (!dir) return cli_usage_error(&ep_cmd_tokenize, "--tokenizer DIR is required");
  if (ep_rank != 0) return 0;
  ep_tokenizer *t = tokenizer_load(dir);
  char *line = NULL;
  size_t cap = 0;
  size_t n;
  /* getline keeps embedded NUL bytes countable, unlike fgets */
  ssize_t got;
  while ((got = getline(&line, &cap, stdin)) >= 0) {
    n = (size_t)got;
    if (n > 0 && line[n - 1] == '\n') n--;
    if (n > 0 && line[n - 1] == '\r') n--;
    int32_t *ids;
    size_t k = tokenizer_encode(t, line, n, &ids);
    for (size_t j = 0; j < k; j++)
      printf(j ? " %d" : "%d", ids[j]);
    putchar('\n');
    free(ids);
  }
  free(line);
  tokenizer_free(t);
  return 0;
}
