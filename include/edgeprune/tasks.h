/* tasks.h — what each task is and how its task metric is computed (for `edgeprune
 * eval`), from the logits at an example's loss positions.
 *
 * Metrics (higher = the model does the task better):
 *   EP_METRIC_LOGIT_DIFF    logit[target] - logit[distractor] at the last loss position
 *                           (IOI: indirect object vs subject; Gendered Pronoun: the
 *                           right pronoun vs the other; Boolean Expressions: the right
 *                           truth value vs the other; custom JSONL with a distractor)
 *   EP_METRIC_GT_PROB_DIFF  Greater-Than: sum of p(y) over the two-digit year tokens
 *                           y > YY minus the sum over y <= YY, p = softmax over the whole
 *                           vocabulary at the last loss position; YY is the example's
 *                           `aux`, the year tokens are the split's `answer_tokens`
 *                           ("00".."99", index = year)
 *   EP_METRIC_TARGET_LOGPROB log p(target) at the last loss position (custom JSONL
 *                           without a distractor)
 *   EP_METRIC_NONE          no task metric (Tracr tasks: judged by KL and output match) */
#pragma once

#include <stdint.h>

#include "edgeprune/dataset.h"

typedef enum {
  EP_METRIC_NONE = 0,
  EP_METRIC_LOGIT_DIFF,
  EP_METRIC_GT_PROB_DIFF,
  EP_METRIC_TARGET_LOGPROB
} ep_metric_kind;

typedef struct {
  const char *name;        /* as in `--task`: "ioi", "ioi-t1", "gt", ... */
  const char *summary;     /* one line */
  ep_metric_kind metric;   /* the default metric of the task (jsonl: see task_metric_kind) */
  const char *metric_name; /* "logit_diff", "prob_diff", "target_logprob", "none" */
  int needs_tokenizer;     /* 0 for the Tracr tasks */
  int all_positions;       /* loss at every non-BOS position (Tracr) rather than the last */
} ep_task_info;

/* The task called name (a dataset's `task` attribute or a `--task` value), or NULL. */
const ep_task_info *task_find(const char *name);
/* All tasks; *n gets their count. */
const ep_task_info *task_list(int *n);

/* The metric used for example i of d: the task's, except that a custom JSONL example
 * uses the logit difference when it has a distractor and the target log-probability
 * otherwise. */
ep_metric_kind task_metric_kind(const ep_task_info *t, const ep_dataset *d, int64_t i);

/* Task metric of example i of d. logits is [n_pos, vocab], the logits at the example's
 * loss positions loss_start..loss_end-1 (n_pos of them; the metric reads the last).
 * Returns NAN when the task has no metric. Fatal error on ids outside the vocabulary. */
double task_metric(const ep_task_info *t, const ep_dataset *d, int64_t i, const float *logits, int n_pos,
                   int vocab);

/* The pieces, for direct use and tests. logits is one position's [vocab]. */
double task_logit_diff(const float *logits, int vocab, int target, int distractor);
double task_target_logprob(const float *logits, int vocab, int target);
/* year_tokens[y] is the id of the token for the two digits y (y = 0..99). */
double task_gt_prob_diff(const float *logits, int vocab, const int32_t *year_tokens, int yy);
