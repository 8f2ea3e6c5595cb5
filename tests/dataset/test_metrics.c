/* test_metrics.c — task metrics on hand-made logits. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgeprune/core.h"
#include "edgeprune/tasks.h"
#include "test_util.h"

int main(void) {
  enum { V = 300 };
  float *lg = ep_calloc(2 * V, sizeof *lg); /* two positions; the metric reads the last */
  float *last = lg + V;

  /* logit difference */
  last[10] = 3.5f;
  last[20] = -1.25f;
  T_CLOSE(task_logit_diff(last, V, 10, 20), 4.75, 1e-12, 0, "logit diff");
  T_CLOSE(task_logit_diff(last, V, 20, 10), -4.75, 1e-12, 0, "logit diff reversed");

  /* target log-probability: all logits 0 except one -> closed form */
  memset(last, 0, V * sizeof *last);
  last[7] = 2.0f;
  double want = 2.0 - log(exp(2.0) + (V - 1));
  T_CLOSE(task_target_logprob(last, V, 7), want, 1e-12, 1e-12, "target log-prob");

  /* Greater-Than: year tokens at 100..199; put all mass on three years */
  int32_t years[100];
  for (int y = 0; y < 100; y++)
    years[y] = 100 + y;
  for (int v = 0; v < V; v++)
    last[v] = -1e4f;
  last[100 + 60] = 0.0f;          /* y = 60 */
  last[100 + 30] = 0.0f;          /* y = 30 */
  last[100 + 45] = (float)log(2); /* y = 45: twice the mass */
  /* p(60) = 1/4, p(30) = 1/4, p(45) = 1/2 */
  T_CLOSE(task_gt_prob_diff(last, V, years, 40), (0.25 + 0.5) - 0.25, 1e-9, 0, "gt yy=40");
  T_CLOSE(task_gt_prob_diff(last, V, years, 45), 0.25 - 0.75, 1e-9, 0, "gt yy=45 counts 45 as not greater");
  T_CLOSE(task_gt_prob_diff(last, V, years, 99), -1.0, 1e-9, 0, "gt yy=99");
  T_CLOSE(task_gt_prob_diff(last, V, years, 0), 1.0, 1e-9, 0, "gt yy=0");
  /* mass outside the year tokens counts for neither side */
  last[5] = (float)log(4);
  T_CLOSE(task_gt_prob_diff(last, V, years, 40), 0.5 * 0.5, 1e-9, 0, "gt with non-year mass");

  /* dispatch through task_metric */
  ep_dataset d;
  dataset_alloc(&d, 2, 4);
  snprintf(d.task, sizeof d.task, "gt");
  d.aux[1] = 40;
  d.n_answer_tokens = 100;
  d.answer_tokens = ep_malloc(100 * sizeof(int32_t));
  memcpy(d.answer_tokens, years, sizeof years);
  T_CLOSE(task_metric(task_find("gt"), &d, 1, lg, 2, V), 0.25, 1e-9, 0,
          "task_metric gt reads the last position");
  last[5] = -1e4f;
  d.target[0] = 160;
  d.distractor[0] = 130;
  last[130] = -2.0f;
  T_CLOSE(task_metric(task_find("ioi"), &d, 0, lg, 2, V), 2.0, 1e-9, 0, "task_metric ioi");
  T_CLOSE(task_metric(task_find("gp"), &d, 0, lg, 2, V), 2.0, 1e-9, 0, "task_metric gp");
  T_CHECK(task_metric_kind(task_find("jsonl"), &d, 0) == EP_METRIC_LOGIT_DIFF, "jsonl with distractor");
  d.distractor[1] = -1;
  d.target[1] = 160;
  T_CHECK(task_metric_kind(task_find("jsonl"), &d, 1) == EP_METRIC_TARGET_LOGPROB,
          "jsonl without distractor");
  T_CHECK(isnan(task_metric(task_find("reverse"), &d, 0, lg, 2, V)), "reverse has no metric");
  T_CHECK(task_find("nope") == NULL, "unknown task");
  int nt;
  const ep_task_info *all = task_list(&nt);
  T_CHECK(nt == 8 && !strcmp(all[0].name, "ioi"), "%d tasks", nt);
  T_CHECK(!task_find("reverse")->needs_tokenizer && task_find("reverse")->all_positions, "Tracr flags");
  dataset_free(&d);
  free(lg);
  return t_done();
}
