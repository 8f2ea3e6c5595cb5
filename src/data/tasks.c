/* tasks.c — task descriptions and task metrics (see tasks.h). */
#include "edgeprune/tasks.h"

#include <math.h>
#include <string.h>

#include "edgeprune/core.h"

static const ep_task_info tasks[] = {
    {"ioi", "Indirect Object Identification, 15 BABA + 15 ABBA templates", EP_METRIC_LOGIT_DIFF, "logit_diff",
     1, 0},
    {"ioi-t1", "Indirect Object Identification, one template", EP_METRIC_LOGIT_DIFF, "logit_diff", 1, 0},
    {"gt", "Greater-Than: \"The N lasted from XXYY to XX\"", EP_METRIC_GT_PROB_DIFF, "prob_diff", 1, 0},
    {"gp", "Gendered Pronoun: \"So NAME ..., isn't\" -> he/she", EP_METRIC_LOGIT_DIFF, "logit_diff", 1, 0},
    {"boolexpr", "Boolean Expressions (few-shot or instruction prompt)", EP_METRIC_LOGIT_DIFF, "logit_diff",
     1, 0},
    {"reverse", "Tracr: reverse a sequence of tokens 1..3", EP_METRIC_NONE, "none", 0, 1},
    {"xproportion", "Tracr: running fraction of 'x' tokens", EP_METRIC_NONE, "none", 0, 1},
    {"jsonl", "custom prompts from JSONL (<predict>target</predict>)", EP_METRIC_LOGIT_DIFF, "logit_diff", 1,
     0},
};

const ep_task_info *task_list(int *n) {
  *n = (int)(sizeof tasks / sizeof *tasks);
  return tasks;
}

const ep_task_info *task_find(const char *name) {
  for (size_t i = 0; i < sizeof tasks / sizeof *tasks; i++)
    if (!strcmp(tasks[i].name, name)) return &tasks[i];
  return NULL;
}

static void check_id(int id, int vocab, const char *what) {
  EP_CHECK(id >= 0 && id < vocab, "%s token %d outside the vocabulary [0, %d)", what, id, vocab);
}

/* log sum exp over one position, in double */
static double log_sum_exp(const float *logits, int vocab) {
  double m = -INFINITY;
  for (int v = 0; v < vocab; v++)
    if (logits[v] > m) m = logits[v];
  double s = 0;
  for (int v = 0; v < vocab; v++)
    s += exp((double)logits[v] - m);
  return m + log(s);
}

double task_logit_diff(const float *logits, int vocab, int target, int distractor) {
  check_id(target, vocab, "target");
  check_id(distractor, vocab, "distractor");
  return (double)logits[target] - (double)logits[distractor];
}

double task_target_logprob(const float *logits, int vocab, int target) {
  check_id(target, vocab, "target");
  return (double)logits[target] - log_sum_exp(logits, vocab);
}

double task_gt_prob_diff(const float *logits, int vocab, const int32_t *year_tokens, int yy) {
  EP_CHECK(yy >= 0 && yy <= 99, "Greater-Than year %d outside 0..99", yy);
  double lse = log_sum_exp(logits, vocab);
  double above = 0, below = 0;
  for (int y = 0; y < 100; y++) {
    check_id(year_tokens[y], vocab, "year");
    double p = exp((double)logits[year_tokens[y]] - lse);
    if (y > yy)
      above += p;
    else
      below += p;
  }
  return above - below;
}

ep_metric_kind task_metric_kind(const ep_task_info *t, const ep_dataset *d, int64_t i) {
  if (!strcmp(t->name, "jsonl"))
    return d->distractor[i] >= 0 ? EP_METRIC_LOGIT_DIFF : EP_METRIC_TARGET_LOGPROB;
  return t->metric;
}

double task_metric(const ep_task_info *t, const ep_dataset *d, int64_t i, const float *logits, int n_pos,
                   int vocab) {
  EP_CHECK(i >= 0 && i < d->n, "example %lld outside the dataset of %lld", (long long)i, (long long)d->n);
  EP_CHECK(n_pos >= 1, "no loss positions for example %lld", (long long)i);
  const float *last = logits + (size_t)(n_pos - 1) * (size_t)vocab;
  switch (task_metric_kind(t, d, i)) {
  case EP_METRIC_LOGIT_DIFF:
    return task_logit_diff(last, vocab, d->target[i], d->distractor[i]);
  case EP_METRIC_TARGET_LOGPROB:
    return task_target_logprob(last, vocab, d->target[i]);
  case EP_METRIC_GT_PROB_DIFF:
    EP_CHECK(d->n_answer_tokens == 100, "Greater-Than split without its 100 year tokens");
    return task_gt_prob_diff(last, vocab, d->answer_tokens, d->aux[i]);
  case EP_METRIC_NONE:
    break;
  }
  return NAN;
}
