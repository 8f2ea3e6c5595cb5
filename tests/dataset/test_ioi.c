/* test_ioi.c — the IOI generator: every prompt follows one of the 30 templates with the
 * right roles, BABA/ABBA balance, duplicates no more than chance, equal lengths.
 *   test_ioi TOKDIR N */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgeprune/core.h"
#include "edgeprune/dataset.h"
#include "edgeprune/taskgen.h"
#include "edgeprune/tokenizer.h"
#include "test_util.h"

/* Match text against the prompt part of a template (up to its final " {A}"), binding
 * {A}, {B} (first and second occurrence separately), {PLACE}, {OBJECT} to single words.
 * Written independently of the generator's filler. Returns 1 on a match. */
typedef struct {
  char a[64], b1[64], b2[64], place[64], object[64];
} ioi_slots;

static int match_template(const char *tmpl, const char *text, ioi_slots *m, int clean) {
  size_t tl = strlen(tmpl) - 4; /* drop " {A}" */
  const char *t = tmpl, *tend = tmpl + tl, *s = text;
  int nb = 0;
  char object2[64] = "";
  memset(m, 0, sizeof *m);
  while (t < tend) {
    if (*t == '{') {
      const char *close = strchr(t, '}');
      size_t k = 0;
      char word[64];
      while ((s[k] >= 'A' && s[k] <= 'Z') || (s[k] >= 'a' && s[k] <= 'z')) {
        if (k + 1 >= sizeof word) return 0;
        word[k] = s[k];
        k++;
      }
      if (k == 0) return 0;
      word[k] = '\0';
      char *dst = !strncmp(t, "{A}", 3)        ? m->a
                  : !strncmp(t, "{B}", 3)      ? (nb++ ? m->b2 : m->b1)
                  : !strncmp(t, "{PLACE}", 7)  ? m->place
                  : !strncmp(t, "{OBJECT}", 8) ? (m->object[0] ? object2 : m->object)
                                               : NULL;
      if (!dst) return 0;
      strcpy(dst, word);
      s += k;
      t = close + 1;
    } else {
      if (*s != *t) return 0;
      s++;
      t++;
    }
  }
  if (*s) return 0;
  if (object2[0] && strcmp(object2, m->object)) return 0;
  /* a clean prompt repeats the subject and names the indirect object once */
  return !clean || (!strcmp(m->b1, m->b2) && strcmp(m->a, m->b1) != 0);
}

static int token_of(const ep_tokenizer *tok, const char *word) {
  char buf[80];
  snprintf(buf, sizeof buf, " %s", word);
  int32_t *ids;
  size_t n = tokenizer_encode(tok, buf, strlen(buf), &ids);
  int id = n == 1 ? ids[0] : -1;
  free(ids);
  return id;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: test_ioi TOKDIR N\n");
    return 2;
  }
  ep_tokenizer *tok = tokenizer_load(argv[1]);
  int64_t n = atoll(argv[2]);
  ep_taskgen_params p = {.task = "ioi", .n = n, .seed = 7};
  ep_dataset d;
  char *attrs;
  double t0 = ep_time_now();
  taskgen_generate(&d, &p, tok, &attrs);
  printf("generated %lld IOI examples in %.2f s\n", (long long)n, ep_time_now() - t0);
  T_CHECK(d.n == n, "n %lld", (long long)d.n);
  T_CHECK(!strcmp(d.task, "ioi"), "task %s", d.task);
  T_CHECK(d.pad_id == 50256, "pad id %d", d.pad_id);

  int64_t bad_template = 0, bad_roles = 0, bad_corr = 0, bad_len = 0, n_baba = 0;
  int64_t per_template[30] = {0};
  uint64_t *hash = ep_malloc((size_t)n * sizeof *hash);
  int T = d.max_len;
  for (int64_t i = 0; i < n; i++) {
    const int32_t *c = d.clean + (size_t)i * (size_t)T, *x = d.corrupted + (size_t)i * (size_t)T;
    int L = d.length[i];
    /* equal lengths: both rows hold real tokens up to L and padding after */
    int ok = L > 1 && L <= T && d.loss_start[i] == L - 1 && d.loss_end[i] == L;
    for (int t = 0; t < T && ok; t++)
      ok = t < L ? (c[t] != d.pad_id && x[t] != d.pad_id) : (c[t] == d.pad_id && x[t] == d.pad_id);
    if (!ok) bad_len++;
    char *text = tokenizer_decode(tok, c, (size_t)L);
    char *ctext = tokenizer_decode(tok, x, (size_t)L);
    int found = -1;
    ioi_slots m, cm;
    for (int k = 0; k < 30 && found < 0; k++)
      if (match_template(taskgen_ioi_template(k), text, &m, 1)) found = k;
    if (found < 0 || found != d.aux[i]) {
      if (bad_template++ < 3) fprintf(stderr, "no template for \"%s\" (aux %d)\n", text, d.aux[i]);
    } else {
      per_template[found]++;
      if (found < 15) n_baba++;
      /* IO and S: the answer is the name said once, the distractor the repeated one */
      if (d.target[i] != token_of(tok, m.a) || d.distractor[i] != token_of(tok, m.b1)) bad_roles++;
      if (!match_template(taskgen_ioi_template(found), ctext, &cm, 0) || strcmp(cm.place, m.place) ||
          strcmp(cm.object, m.object) || !strcmp(cm.a, cm.b1) || !strcmp(cm.a, cm.b2) ||
          !strcmp(cm.b1, cm.b2) || !strcmp(cm.a, m.a) || !strcmp(cm.a, m.b1) || !strcmp(cm.b1, m.a) ||
          !strcmp(cm.b1, m.b1) || !strcmp(cm.b2, m.a) || !strcmp(cm.b2, m.b1)) {
        if (bad_corr++ < 3) fprintf(stderr, "corrupted \"%s\" for \"%s\"\n", ctext, text);
      }
    }
    uint64_t h = 1469598103934665603ull;
    for (int t = 0; t < L; t++)
      h = (h ^ (uint32_t)c[t]) * 1099511628211ull;
    hash[i] = h;
    free(text);
    free(ctext);
  }
  T_CHECK(bad_template == 0, "%lld prompts match no template", (long long)bad_template);
  T_CHECK(bad_roles == 0, "%lld examples with wrong IO/S roles or answer tokens", (long long)bad_roles);
  T_CHECK(bad_corr == 0, "%lld corrupted prompts are not the template with three fresh names",
          (long long)bad_corr);
  T_CHECK(bad_len == 0, "%lld examples with unequal lengths, bad padding or loss positions",
          (long long)bad_len);
  double frac = (double)n_baba / (double)n;
  T_CHECK(frac > 0.495 && frac < 0.505, "BABA fraction %.4f not within 1%% of 0.5", frac);
  int used = 0;
  for (int k = 0; k < 30; k++)
    used += per_template[k] > 0;
  T_CHECK(used == 30, "only %d of 30 templates used", used);

  /* Duplicates: expected number of equal pairs by chance is sum_t C(n_t,2)/K_t, with K_t the
   * number of distinct prompts of template t (names x names x places x objects). */
  int n_names = 0;
  {
    const char *at = strstr(attrs, "\"n_names\":");
    T_CHECK(at != NULL, "attributes name the name count: %s", attrs);
    if (at) n_names = atoi(at + 10);
  }
  double expected = 0;
  for (int k = 0; k < 30; k++) {
    const char *tm = taskgen_ioi_template(k);
    double K = (double)n_names * (n_names - 1) * (strstr(tm, "{PLACE}") ? 400.0 : 1.0);
    expected += (double)per_template[k] * (per_template[k] - 1) / 2.0 / K;
  }
  qsort(hash, (size_t)n, sizeof *hash, cmp_u64);
  int64_t dups = 0;
  for (int64_t i = 1; i < n; i++)
    dups += hash[i] == hash[i - 1];
  printf("duplicate prompts: %lld (expected by chance %.1f)\n", (long long)dups, expected);
  T_CHECK(dups <= 2 * expected + 10, "%lld duplicate prompts, chance gives %.1f", (long long)dups, expected);

  /* ioi-t1: one template only */
  ep_taskgen_params p1 = {.task = "ioi-t1", .n = 200, .seed = 7, .template_index = 17};
  ep_dataset d1;
  char *attrs1;
  taskgen_generate(&d1, &p1, tok, &attrs1);
  int all17 = 1;
  for (int64_t i = 0; i < d1.n; i++) {
    char *text = tokenizer_decode(tok, d1.clean + (size_t)i * (size_t)d1.max_len, (size_t)d1.length[i]);
    ioi_slots m;
    all17 = all17 && match_template(taskgen_ioi_template(17), text, &m, 1);
    free(text);
  }
  T_CHECK(all17, "ioi-t1 --template 17 uses template 17 only");
  free(attrs1);
  dataset_free(&d1);
  free(hash);
  free(attrs);
  dataset_free(&d);
  tokenizer_free(tok);
  return t_done();
}
