/* test_tasks_gen.c — Greater-Than, Gendered Pronoun, Boolean Expressions and Tracr
 * generators produce well-formed data; the paper's JSONL files are read token for token.
 *   test_tasks_gen TOKDIR REFDIR TMPDIR */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgeprune/core.h"
#include "edgeprune/dataset.h"
#include "edgeprune/taskgen.h"
#include "edgeprune/tokenizer.h"
#include "test_util.h"

static const ep_tokenizer *tok;

static char *row_text(const ep_dataset *d, const int32_t *rows, int64_t i) {
  return tokenizer_decode(tok, rows + (size_t)i * (size_t)d->max_len, (size_t)d->length[i]);
}

static int id_of(const char *s) {
  int32_t *ids;
  size_t n = tokenizer_encode(tok, s, strlen(s), &ids);
  int id = n == 1 ? ids[0] : -1;
  free(ids);
  return id;
}

/* Common shape checks: equal lengths, padding, last-token loss, no pad inside. */
static void check_shape(const ep_dataset *d, const char *what, int all_positions) {
  int64_t bad = 0;
  for (int64_t i = 0; i < d->n; i++) {
    int L = d->length[i];
    int ok = L >= 2 && L <= d->max_len;
    ok = ok && (all_positions ? (d->loss_start[i] == 1 && d->loss_end[i] == L)
                              : (d->loss_start[i] == L - 1 && d->loss_end[i] == L));
    for (int t = 0; t < d->max_len && ok; t++) {
      int32_t c = d->clean[(size_t)i * (size_t)d->max_len + (size_t)t];
      int32_t x = d->corrupted[(size_t)i * (size_t)d->max_len + (size_t)t];
      ok = t < L ? (c != d->pad_id && x != d->pad_id) : (c == d->pad_id && x == d->pad_id);
    }
    bad += !ok;
  }
  T_CHECK(bad == 0, "%s: %lld examples with bad lengths/padding/loss positions", what, (long long)bad);
}

static void gen(ep_dataset *d, const char *task, int64_t n, const char *form, const char *tracr) {
  ep_taskgen_params p = {.task = task, .n = n, .seed = 11, .form = form, .tracr_config = tracr};
  char *attrs;
  taskgen_generate(d, &p, tok, &attrs);
  T_CHECK(d->n == n && !strcmp(d->task, task), "%s: %lld examples", task, (long long)d->n);
  free(attrs);
}

static void test_gt(void) {
  ep_dataset d;
  gen(&d, "gt", 2000, NULL, NULL);
  check_shape(&d, "gt", 0);
  T_CHECK(d.n_answer_tokens == 100, "gt answer tokens %d", d.n_answer_tokens);
  int years_ok = d.n_answer_tokens == 100;
  for (int y = 0; y < 100 && years_ok; y++) {
    char want[3];
    snprintf(want, sizeof want, "%02d", y);
    char *s = tokenizer_decode(tok, &d.answer_tokens[y], 1);
    years_ok = !strcmp(s, want);
    free(s);
  }
  T_CHECK(years_ok, "answer_tokens are \"00\"..\"99\"");
  int64_t bad = 0;
  for (int64_t i = 0; i < d.n; i++) {
    char *c = row_text(&d, d.clean, i), *x = row_text(&d, d.corrupted, i);
    char noun[64], noun2[64];
    int y1, c1, y2, c2;
    int ok = sscanf(c, "The %63s lasted from %4d to %2d", noun, &y1, &c1) == 3 &&
             sscanf(x, "The %63s lasted from %4d to %2d", noun2, &y2, &c2) == 3;
    ok = ok && y1 / 100 == c1 && y2 / 100 == c2 && !strcmp(noun, noun2) && y1 % 100 == d.aux[i];
    ok = ok && d.aux[i] >= 2 && d.aux[i] <= 98 && c1 >= 10 && c1 <= 20 && d.target[i] == -1;
    /* the prompt's last token is the century " XX" */
    char cent[16];
    snprintf(cent, sizeof cent, " %02d", c1);
    ok = ok && d.clean[(size_t)i * (size_t)d.max_len + (size_t)d.length[i] - 1] == id_of(cent);
    if (!ok && bad++ < 3) fprintf(stderr, "gt: \"%s\" / \"%s\" aux %d\n", c, x, d.aux[i]);
    free(c);
    free(x);
  }
  T_CHECK(bad == 0, "gt: %lld malformed examples", (long long)bad);
  dataset_free(&d);
}

static void test_gp(void) {
  ep_dataset d;
  gen(&d, "gp", 2000, NULL, NULL);
  check_shape(&d, "gp", 0);
  int he = id_of(" he"), she = id_of(" she");
  int64_t bad = 0, n_he = 0;
  for (int64_t i = 0; i < d.n; i++) {
    char *c = row_text(&d, d.clean, i), *x = row_text(&d, d.corrupted, i);
    char n1[64], n2[64];
    int ok = sscanf(c, "So %63s", n1) == 1 && sscanf(x, "So %63s", n2) == 1 && strcmp(n1, n2) != 0;
    /* same template: the texts agree after the name */
    ok = ok && !strcmp(c + 3 + strlen(n1), x + 3 + strlen(n2));
    ok = ok &&
         ((d.target[i] == he && d.distractor[i] == she) || (d.target[i] == she && d.distractor[i] == he));
    n_he += d.target[i] == he;
    if (!ok && bad++ < 3) fprintf(stderr, "gp: \"%s\" / \"%s\"\n", c, x);
    free(c);
    free(x);
  }
  T_CHECK(bad == 0, "gp: %lld malformed examples", (long long)bad);
  T_CHECK(n_he == d.n / 2, "gp: he/she balanced (%lld he of %lld)", (long long)n_he, (long long)d.n);
  dataset_free(&d);
}

/* Evaluate a reference-format expression ("( True and ( not False ) ) or False") by
 * recursive descent, independent of the generator. */
static const char *bp;
static int b_expr(void);
static void b_skip(void) {
  while (*bp == ' ')
    bp++;
}
static int b_atom(void) {
  b_skip();
  if (!strncmp(bp, "True", 4)) return bp += 4, 1;
  if (!strncmp(bp, "False", 5)) return bp += 5, 0;
  if (!strncmp(bp, "not ", 4)) return bp += 4, !b_atom();
  if (*bp == '(') {
    bp++;
    int v = b_expr();
    b_skip();
    if (*bp == ')')
      bp++;
    else
      return -100;
    return v;
  }
  return -100;
}
static int b_expr(void) {
  int v = b_atom();
  for (;;) {
    b_skip();
    if (!strncmp(bp, "and ", 4)) {
      bp += 4;
      int r = b_atom();
      v = v && r;
    } else if (!strncmp(bp, "or ", 3)) {
      bp += 3;
      int r = b_atom();
      v = v || r;
    } else {
      return v;
    }
  }
}

static void test_boolexpr(const char *form) {
  ep_dataset d;
  gen(&d, "boolexpr", 1000, form, NULL);
  check_shape(&d, "boolexpr", 0);
  int instr = !strcmp(form, "instruction");
  int t_true = id_of(instr ? "True" : " True"), t_false = id_of(instr ? "False" : " False");
  int64_t bad = 0, n_true = 0;
  for (int64_t i = 0; i < d.n; i++) {
    char *c = row_text(&d, d.clean, i), *x = row_text(&d, d.corrupted, i);
    /* the expression: the last line (few-shot) or between the system block and [/INST] */
    char *e = instr ? strstr(c, "<</SYS>>\n\n") : strrchr(c, '\n');
    int ok = e != NULL;
    if (ok) {
      e += instr ? 10 : 1;
      bp = e;
      int v = b_expr();
      b_skip();
      ok = v >= 0 && (instr ? !strcmp(bp, "[/INST] '") : !strcmp(bp, "is"));
      ok = ok && d.target[i] == (v ? t_true : t_false) && d.distractor[i] == (v ? t_false : t_true);
      n_true += v == 1;
    }
    /* corrupted = every literal flipped: same text length changes only at literals */
    size_t k = 0, j = 0;
    while (ok && c[k] && x[j]) {
      if (!strncmp(c + k, "True", 4) && !strncmp(x + j, "False", 5))
        k += 4, j += 5;
      else if (!strncmp(c + k, "False", 5) && !strncmp(x + j, "True", 4))
        k += 5, j += 4;
      else if (c[k] == x[j])
        k++, j++;
      else
        ok = 0;
    }
    ok = ok && !c[k] && !x[j];
    if (!ok && bad++ < 3) fprintf(stderr, "boolexpr: \"%s\" / \"%s\"\n", c, x);
    free(c);
    free(x);
  }
  T_CHECK(bad == 0, "boolexpr %s: %lld malformed examples", form, (long long)bad);
  T_CHECK(n_true == d.n / 2, "boolexpr %s: answers balanced (%lld True)", form, (long long)n_true);
  dataset_free(&d);
}

static void test_tracr(const char *task, int len, const int *allowed, int n_allowed, int bos, int pad,
                       const char *config) {
  ep_dataset d;
  gen(&d, task, 500, NULL, config);
  check_shape(&d, task, 1);
  int64_t bad = 0;
  for (int64_t i = 0; i < d.n; i++) {
    const int32_t *c = d.clean + (size_t)i * (size_t)d.max_len,
                  *x = d.corrupted + (size_t)i * (size_t)d.max_len;
    int ok = d.length[i] == len && c[0] == bos && x[0] == bos && d.pad_id == pad;
    int differ = 0;
    for (int t = 1; t < len && ok; t++) {
      int okc = 0, okx = 0;
      for (int a = 0; a < n_allowed; a++)
        okc |= c[t] == allowed[a], okx |= x[t] == allowed[a];
      ok = okc && okx;
      differ |= c[t] != x[t];
    }
    bad += !(ok && differ);
  }
  T_CHECK(bad == 0, "%s: %lld malformed examples", task, (long long)bad);
  dataset_free(&d);
}

/* --from the paper's IOI file: its 200 sentences token for token. */
static void test_from_ioi(const char *refdir) {
  char *path = ep_path_join(refdir, "ioi-train.jsonl");
  ep_dataset d;
  char *attrs;
  taskgen_from_paper_jsonl(&d, "ioi", path, NULL, tok, 0, -1, &attrs);
  T_CHECK(d.n == 200, "ioi-train.jsonl gives %lld examples", (long long)d.n);
  size_t len;
  char *text = ep_read_file(path, &len);
  int64_t i = 0, bad = 0, bad_template = 0;
  for (char *line = strtok(text, "\n"); line && i < d.n; line = strtok(NULL, "\n"), i++) {
    cJSON *j = cJSON_Parse(line);
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(j, "ioi_sentences"));
    const char *b = cJSON_GetStringValue(cJSON_GetObjectItem(j, "b"));
    /* the file's template is one of our 30, on the side of its order */
    const char *tm = cJSON_GetStringValue(cJSON_GetObjectItem(j, "template"));
    const char *order = cJSON_GetStringValue(cJSON_GetObjectItem(j, "order"));
    int k = 0;
    while (k < 30 && strcmp(taskgen_ioi_template(k), tm))
      k++;
    if (k == 30 || (k < 15) != !strcmp(order, "baba")) bad_template++;
    int32_t *full;
    size_t nf = tokenizer_encode(tok, s, strlen(s), &full);
    int L = d.length[i];
    int ok = (size_t)L < nf &&
             !memcmp(full, d.clean + (size_t)i * (size_t)d.max_len, (size_t)L * sizeof *full) &&
             d.target[i] == full[L];
    char buf[80];
    snprintf(buf, sizeof buf, " %s", b);
    int32_t *bi;
    size_t nb = tokenizer_encode(tok, buf, strlen(buf), &bi);
    ok = ok && nb >= 1 && d.distractor[i] == bi[0];
    /* the sentence minus the prompt decodes to " " + the indirect object */
    char *rest = tokenizer_decode(tok, full + L, nf - (size_t)L);
    char want[80];
    snprintf(want, sizeof want, " %s", cJSON_GetStringValue(cJSON_GetObjectItem(j, "a")));
    ok = ok && !strcmp(rest, want);
    if (!ok && bad++ < 3) fprintf(stderr, "ioi-train line %lld differs\n", (long long)i + 1);
    free(rest);
    free(bi);
    free(full);
    cJSON_Delete(j);
  }
  T_CHECK(bad_template == 0, "%lld lines of ioi-train.jsonl use a template outside our 30",
          (long long)bad_template);
  T_CHECK(bad == 0 && i == 200, "ioi-train.jsonl: %lld of %lld sentences differ", (long long)bad,
          (long long)i);
  T_CHECK(strstr(attrs, "\"corrupted_fitted\":83") != NULL, "83 corrupted rows fitted: %s", attrs);
  free(attrs);
  free(text);
  dataset_free(&d);
  free(path);
}

static void test_from_others(const char *refdir) {
  const char *files[] = {"gt-train.jsonl", "gp-train.jsonl", "boolean_expressions-validation.jsonl"};
  const char *tasks[] = {"gt", "gp", "boolexpr"};
  const int64_t counts[] = {150, 150, 767};
  for (int f = 0; f < 3; f++) {
    char *path = ep_path_join(refdir, files[f]);
    ep_dataset d;
    char *attrs;
    taskgen_from_paper_jsonl(&d, tasks[f], path, NULL, tok, 1, -1, &attrs);
    T_CHECK(d.n == counts[f], "%s: %lld examples", files[f], (long long)d.n);
    check_shape(&d, files[f], 0);
    if (f == 0) {
      /* first line: "The romance lasted from 1589 to 15", digits 89 */
      char *c = row_text(&d, d.clean, 0);
      T_CHECK(!strcmp(c, "The romance lasted from 1589 to 15") && d.aux[0] == 89, "gt line 1: %s", c);
      free(c);
    }
    if (f == 1) T_CHECK(d.target[0] == id_of(" she") && d.distractor[0] == id_of(" he"), "gp line 1 is she");
    free(attrs);
    dataset_free(&d);
    free(path);
  }
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: test_tasks_gen TOKDIR REFDIR TMPDIR\n");
    return 2;
  }
  ep_tokenizer *t = tokenizer_load(argv[1]);
  tok = t;
  test_gt();
  test_gp();
  test_boolexpr("fewshot");
  test_boolexpr("instruction");
  test_tracr("reverse", 4, (const int[]){0, 1, 2}, 3, 3, 4, NULL);
  test_tracr("xproportion", 5, (const int[]){1, 2, 3, 5}, 4, 0, 4, NULL);
  /* the vocabulary from a config file */
  char *cfg = ep_path_join(argv[3], "tracr_test.config.json");
  FILE *f = fopen(cfg, "w");
  EP_CHECK(f, "cannot write %s", cfg);
  fputs("{\"bos\": \"BOS\", \"pad\": \"PAD\", \"vocab\": {\"z\": 7, \"BOS\": 9, \"y\": 2, \"PAD\": 0}}", f);
  fclose(f);
  test_tracr("reverse", 4, (const int[]){7, 2}, 2, 9, 0, cfg);
  free(cfg);
  test_from_ioi(argv[2]);
  test_from_others(argv[2]);
  tokenizer_free(t);
  return t_done();
}
