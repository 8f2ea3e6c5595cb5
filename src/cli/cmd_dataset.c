/* cmd_dataset.c — `edgeprune dataset`: generate a task dataset or convert JSONL to HDF5. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgeprune/cli.h"
#include "edgeprune/core.h"
#include "edgeprune/dataset.h"
#include "edgeprune/taskgen.h"
#include "edgeprune/tasks.h"
#include "edgeprune/tokenizer.h"

static int run(int argc, char **argv);

const ep_command ep_cmd_dataset = {
    .name = "dataset",
    .summary = "generate a task dataset (or convert JSONL) into an HDF5 dataset file",
    .help = "usage: edgeprune dataset --task T --n N --seed S --tokenizer DIR --out DATA.h5\n"
            "                         [--split NAME] [--from FILE.jsonl] [options]\n"
            "\n"
            "Writes one split of a task dataset: clean and corrupted token ids of equal length\n"
            "per example, loss positions, answer tokens (layout in include/edgeprune/dataset.h).\n"
            "Generation is deterministic in (task, n, seed, options, tokenizer). Adding a split\n"
            "to an existing file keeps its other splits (a split of the same name is replaced);\n"
            "the file is replaced atomically. Only rank 0 works.\n"
            "\n"
            "tasks:\n"
            "  ioi          Indirect Object Identification: the 15 BABA + 15 ABBA templates,\n"
            "               single-token names, balanced BABA/ABBA; corrupted prompt = same\n"
            "               template with three fresh names; target = indirect object,\n"
            "               distractor = subject; loss at the last prompt token\n"
            "  ioi-t1       IOI with one template (--template K, default 0)\n"
            "  gt           Greater-Than \"The NOUN lasted from XXYY to XX\"; aux = YY,\n"
            "               answer_tokens = the ids of \"00\"..\"99\"\n"
            "  gp           Gendered Pronoun (\"So NAME ..., isn't\"): target he/she\n"
            "  boolexpr     Boolean Expressions, --form fewshot (default) or instruction;\n"
            "               corrupted = every literal flipped; target True/False\n"
            "  reverse      Tracr reverse: BOS + 3 tokens over 1..3 (no tokenizer needed)\n"
            "  xproportion  Tracr xproportion: BOS + 4 tokens over a,b,c,x (no tokenizer needed)\n"
            "  jsonl        custom prompts from --from FILE.jsonl, one object a line:\n"
            "               {\"clean\": \"... <predict>x</predict>\", \"corrupted\": \"...\",\n"
            "                \"split\": \"...\" (optional; default --split)}\n"
            "\n"
            "options:\n"
            "  --task T             the task (above)\n"
            "  --n N                number of examples (with --from on a paper file: the first\n"
            "                       N lines, default all; not used by task jsonl)\n"
            "  --seed S             generator seed, 0 <= S < 2^53 (default 0)\n"
            "  --tokenizer DIR      GPT-2 tokenizer directory (vocab.json, merges.txt); not needed\n"
            "                       for reverse and xproportion\n"
            "  --out DATA.h5        output file (created, or a split added)\n"
            "  --split NAME         split name (default train)\n"
            "  --from FILE.jsonl    read examples instead of generating: the paper's IOI,\n"
            "                       Greater-Than, Gendered Pronoun and Boolean Expressions files\n"
            "                       as they are (format detected from the fields; must match\n"
            "                       --task), or the custom format for --task jsonl\n"
            "  --strict             with --from on a paper file: reject (file:line) an example\n"
            "                       whose corrupted prompt has another token length; by default it\n"
            "                       is cut or padded to the clean length (the paper's IOI files\n"
            "                       have such rows) and counted in the attribute corrupted_fitted\n"
            "  --form F             boolexpr prompt: fewshot (default) or instruction\n"
            "  --template K         ioi-t1: template 0..29 (0..14 BABA, 15..29 ABBA; default 0)\n"
            "  --tracr-config FILE  reverse/xproportion: take the vocabulary from a Tracr\n"
            "                       *.config.json (default: the paper's compiled models)\n"
            "  -h, --help           this text\n",
    .order = 20,
    .run = run,
};

static int parse_i64(const char *s, int64_t *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end) return 0;
  *out = v;
  return 1;
}

/* Generator attributes plus the tokenizer directory. Nothing time-dependent goes in, so
 * the same command writes the same bytes. */
static char *make_attrs(const char *gen_attrs, const char *tok_dir) {
  cJSON *a = gen_attrs ? cJSON_Parse(gen_attrs) : cJSON_CreateObject();
  EP_CHECK(a, "internal: bad generator attributes");
  cJSON_AddStringToObject(a, "tokenizer", tok_dir ? tok_dir : "");
  char *s = cJSON_PrintUnformatted(a);
  cJSON_Delete(a);
  return s;
}

static int run(int argc, char **argv) {
  const char *task = NULL, *tok_dir = NULL, *out = NULL, *split = "train", *from = NULL;
  const char *form = NULL, *tracr_config = NULL;
  int64_t n = -1, seed = 0, templ = 0;
  int strict = 0;
  for (int i = 1; i < argc; i++) {
    const char *v;
    if ((v = cli_option(argc, argv, &i, "--task")))
      task = v;
    else if ((v = cli_option(argc, argv, &i, "--n"))) {
      if (!parse_i64(v, &n) || n < 1)
        return cli_usage_error(&ep_cmd_dataset, "--n must be a positive integer, got '%s'", v);
    } else if ((v = cli_option(argc, argv, &i, "--seed"))) {
      if (!parse_i64(v, &seed) || seed < 0 || seed >= (1LL << 53))
        return cli_usage_error(&ep_cmd_dataset, "--seed must be an integer in [0, 2^53), got '%s'", v);
    } else if ((v = cli_option(argc, argv, &i, "--tokenizer")))
      tok_dir = v;
    else if ((v = cli_option(argc, argv, &i, "--out")))
      out = v;
    else if ((v = cli_option(argc, argv, &i, "--split")))
      split = v;
    else if ((v = cli_option(argc, argv, &i, "--from")))
      from = v;
    else if ((v = cli_option(argc, argv, &i, "--form")))
      form = v;
    else if ((v = cli_option(argc, argv, &i, "--template"))) {
      if (!parse_i64(v, &templ) || templ < 0 || templ > 29)
        return cli_usage_error(&ep_cmd_dataset, "--template must be in 0..29, got '%s'", v);
    } else if ((v = cli_option(argc, argv, &i, "--tracr-config")))
      tracr_config = v;
    else if (!strcmp(argv[i], "--strict"))
      strict = 1;
    else
      return cli_usage_error(&ep_cmd_dataset, "unknown argument '%s'", argv[i]);
  }
  if (!task) return cli_usage_error(&ep_cmd_dataset, "--task is required");
  const ep_task_info *info = task_find(task);
  if (!info) return cli_usage_error(&ep_cmd_dataset, "unknown task '%s'", task);
  if (!out) return cli_usage_error(&ep_cmd_dataset, "--out is required");
  if (!*split || strchr(split, '/')) return cli_usage_error(&ep_cmd_dataset, "bad split name '%s'", split);
  if (info->needs_tokenizer && !tok_dir)
    return cli_usage_error(&ep_cmd_dataset, "--tokenizer DIR is required for task %s", task);
  if (!strcmp(task, "jsonl") && !from)
    return cli_usage_error(&ep_cmd_dataset, "task jsonl needs --from FILE.jsonl");
  if (from && !info->needs_tokenizer)
    return cli_usage_error(&ep_cmd_dataset, "--from is not available for task %s", task);
  if (!from && n < 0) return cli_usage_error(&ep_cmd_dataset, "--n is required");
  if (!strcmp(task, "jsonl") && n >= 0)
    return cli_usage_error(&ep_cmd_dataset, "--n does not apply to task jsonl (every line is read)");
  if (form && strcmp(task, "boolexpr"))
    return cli_usage_error(&ep_cmd_dataset, "--form applies to boolexpr only");
  if (ep_rank != 0) return 0;

  ep_tokenizer *tok = tok_dir ? tokenizer_load(tok_dir) : NULL;
  double t0 = ep_time_now();
  char *gen_attrs = NULL;
  if (!strcmp(task, "jsonl")) {
    ep_dataset *splits;
    char **names;
    int ns = taskgen_custom_jsonl(from, split, tok, &splits, &names, &gen_attrs);
    double dt = ep_time_now() - t0;
    for (int s = 0; s < ns; s++) {
      char *attrs = make_attrs(gen_attrs, tok_dir);
      dataset_write(&splits[s], out, names[s], attrs);
      ep_log("dataset: %lld %s examples (split %s, %d tokens max) in %.2f s -> %s", (long long)splits[s].n,
             task, names[s], splits[s].max_len, dt, out);
      free(attrs);
      dataset_free(&splits[s]);
      free(names[s]);
    }
    free(splits);
    free(names);
  } else {
    ep_dataset d;
    if (from) {
      taskgen_from_paper_jsonl(&d, task, from, form, tok, strict, n, &gen_attrs);
    } else {
      ep_taskgen_params p = {.task = task,
                             .n = n,
                             .seed = (uint64_t)seed,
                             .form = form,
                             .template_index = (int)templ,
                             .tracr_config = tracr_config};
      taskgen_generate(&d, &p, tok, &gen_attrs);
    }
    double dt = ep_time_now() - t0;
    char *attrs = make_attrs(gen_attrs, tok_dir);
    dataset_write(&d, out, split, attrs);
    ep_log("dataset: %lld %s examples (split %s, %d tokens max) in %.2f s -> %s", (long long)d.n, task, split,
           d.max_len, dt, out);
    free(attrs);
    dataset_free(&d);
  }
  free(gen_attrs);
  tokenizer_free(tok);
  return 0;
}
