/* taskgen.h — build task datasets: deterministic generators and JSONL readers.
 *
 * Every example has equal-length clean and corrupted prompts (generators draw again;
 * the custom JSONL reader rejects the line). Randomness comes only from rng.h with
 * stream EP_RNG_STREAM_TASK and counter (example index, draw number), so a dataset is a
 * pure function of (task, n, seed, parameters, tokenizer). */
#pragma once

#include <stdint.h>

#include "edgeprune/dataset.h"
#include "edgeprune/tokenizer.h"

typedef struct {
  const char *task; /* ioi, ioi-t1, gt, gp, boolexpr, reverse, xproportion */
  int64_t n;        /* examples */
  uint64_t seed;
  const char *form;         /* boolexpr: "fewshot" (default) or "instruction" */
  int template_index;       /* ioi-t1: which of the 30 IOI templates (0..29) */
  const char *tracr_config; /* reverse/xproportion: a Tracr *.config.json for the vocabulary
                               (NULL: the vocabularies of the paper's compiled models) */
} ep_taskgen_params;

/* Generate p->n examples into d (allocated here). *attrs_json gets a malloc'd JSON
 * object of the generator parameters, for dataset_write. tok may be NULL for the
 * Tracr tasks. */
void taskgen_generate(ep_dataset *d, const ep_taskgen_params *p, const ep_tokenizer *tok, char **attrs_json);

/* Read one of the paper's JSONL splits as it is (the format is detected from the fields:
 * IOI, Greater-Than, Gendered Pronoun, Boolean Expressions) into d; task must agree with
 * the format (ioi-t1 reads IOI files). Examples whose clean and corrupted prompts tokenize
 * to different lengths are rejected with file:line when strict; otherwise (the paper's
 * IOI files contain such rows) the corrupted row is cut or padded with pad_id to the clean
 * length, which is what a causal model saw in the paper's right-padded batches, and the
 * number of such rows is reported. max_n < 0 reads every line. */
void taskgen_from_paper_jsonl(ep_dataset *d, const char *task, const char *path, const char *form,
                              const ep_tokenizer *tok, int strict, int64_t max_n, char **attrs_json);

/* Read a custom JSONL file: {"clean": "... <predict>x</predict>", "corrupted": "...",
 * "split": "..."(optional)}. The prompt is the text before <predict> (a trailing space
 * moves into the answer, so "to <predict>Mary</predict>" predicts " Mary"); the answer
 * must be one token. A corrupted text with its own <predict>y</predict> gives the
 * distractor y. Examples without "split" go to default_split. Returns the number of
 * splits; *splits[i] / *names[i] are allocated here (free with dataset_free / free). */
int taskgen_custom_jsonl(const char *path, const char *default_split, const ep_tokenizer *tok,
                         ep_dataset **splits, char ***names, char **attrs_json);

/* The IOI templates: 0..14 BABA, 15..29 their ABBA swaps. Each is the full sentence with
 * {A} (indirect object), {B} (subject), {PLACE}, {OBJECT}; the prompt ends before the
 * final " {A}". */
int taskgen_ioi_n_templates(void);
const char *taskgen_ioi_template(int i);
