/* taskgen.c — task dataset generators and JSONL readers (see taskgen.h). */
#include "edgeprune/taskgen.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/task_words.h"
#include "edgeprune/core.h"
#include "edgeprune/rng.h"

/* ---- example builder ----------------------------------------------------------------------- */

/* Examples accumulate here before being packed into a padded ep_dataset. Example e's
 * clean ids are tok[off[e], off[e]+len[e]) and its corrupted ids follow them. */
typedef struct {
  int64_t n, cap;
  int32_t *tok;
  size_t ntok, tokcap;
  size_t *off;
  int32_t *len, *loss_start, *loss_end, *target, *distractor, *aux;
} builder;

static void builder_add(builder *b, const int32_t *clean, const int32_t *corr, int len, int loss_start,
                        int loss_end, int target, int distractor, int aux) {
  if (b->n == b->cap) {
    b->cap = b->cap ? 2 * b->cap : 1024;
    b->off = ep_realloc(b->off, (size_t)b->cap * sizeof *b->off);
    int32_t **f[] = {&b->len, &b->loss_start, &b->loss_end, &b->target, &b->distractor, &b->aux};
    for (size_t k = 0; k < sizeof f / sizeof *f; k++)
      *f[k] = ep_realloc(*f[k], (size_t)b->cap * sizeof(int32_t));
  }
  while (b->ntok + 2 * (size_t)len > b->tokcap) {
    b->tokcap = b->tokcap ? 2 * b->tokcap : 1 << 16;
    b->tok = ep_realloc(b->tok, b->tokcap * sizeof *b->tok);
  }
  int64_t e = b->n++;
  b->off[e] = b->ntok;
  memcpy(b->tok + b->ntok, clean, (size_t)len * sizeof *clean);
  memcpy(b->tok + b->ntok + (size_t)len, corr, (size_t)len * sizeof *corr);
  b->ntok += 2 * (size_t)len;
  b->len[e] = len;
  b->loss_start[e] = loss_start;
  b->loss_end[e] = loss_end;
  b->target[e] = target;
  b->distractor[e] = distractor;
  b->aux[e] = aux;
}

/* Pack into d (rows padded with pad_id) and release the builder. */
static void builder_finish(builder *b, ep_dataset *d, const char *task, int pad_id) {
  int T = 0;
  for (int64_t e = 0; e < b->n; e++)
    if (b->len[e] > T) T = b->len[e];
  dataset_alloc(d, b->n, T);
  snprintf(d->task, sizeof d->task, "%s", task);
  d->pad_id = pad_id;
  for (int64_t e = 0; e < b->n; e++) {
    int32_t *rc = d->clean + (size_t)e * (size_t)T, *rx = d->corrupted + (size_t)e * (size_t)T;
    int L = b->len[e];
    memcpy(rc, b->tok + b->off[e], (size_t)L * sizeof *rc);
    memcpy(rx, b->tok + b->off[e] + (size_t)L, (size_t)L * sizeof *rx);
    for (int t = L; t < T; t++)
      rc[t] = rx[t] = pad_id;
    d->length[e] = L;
    d->loss_start[e] = b->loss_start[e];
    d->loss_end[e] = b->loss_end[e];
    d->target[e] = b->target[e];
    d->distractor[e] = b->distractor[e];
    d->aux[e] = b->aux[e];
  }
  free(b->tok);
  free(b->off);
  free(b->len);
  free(b->loss_start);
  free(b->loss_end);
  free(b->target);
  free(b->distractor);
  free(b->aux);
  memset(b, 0, sizeof *b);
}

/* ---- randomness ---------------------------------------------------------------------------- */

/* Draws for one example: counter (example index, draw number). Redraws after a rejected
 * attempt simply continue the draw numbers, so everything stays a function of the seed. */
typedef struct {
  uint64_t seed;
  int64_t example;
  uint32_t k;
} draws;

static uint32_t draw_u32(draws *r) {
  uint32_t w[4];
  ep_rng_words(r->seed, EP_RNG_STREAM_TASK, (uint64_t)r->example, r->k++, w);
  return w[0];
}

/* Uniform in [0, m) (multiply-shift; bias below 2^-32 * m, negligible for our lists). */
static int draw_below(draws *r, int m) {
  return (int)(((uint64_t)draw_u32(r) * (uint64_t)m) >> 32);
}

#define MAX_ATTEMPTS 10000

/* ---- tokenizer helpers --------------------------------------------------------------------- */

/* The id of text when it is exactly one token, else -1. */
static int single_token(const ep_tokenizer *tok, const char *text) {
  int32_t *ids;
  size_t n = tokenizer_encode(tok, text, strlen(text), &ids);
  int id = n == 1 ? ids[0] : -1;
  free(ids);
  return id;
}

static int must_single_token(const ep_tokenizer *tok, const char *text) {
  int id = single_token(tok, text);
  EP_CHECK(id >= 0, "'%s' is not a single token for this tokenizer", text);
  return id;
}

/* A word list restricted to the entries that are one token with a leading space. */
typedef struct {
  int n;
  const char **word;
  int32_t *id; /* id of " word" */
} word_list;

static void word_list_build(word_list *w, const ep_tokenizer *tok, const char *const *words, int n,
                            const char *const *exclude, int n_exclude) {
  w->word = ep_malloc((size_t)n * sizeof *w->word);
  w->id = ep_malloc((size_t)n * sizeof *w->id);
  w->n = 0;
  char buf[256];
  for (int i = 0; i < n; i++) {
    int skip = 0;
    for (int j = 0; j < i && !skip; j++)
      skip = !strcmp(words[j], words[i]); /* duplicates */
    for (int j = 0; j < n_exclude && !skip; j++)
      skip = !strcmp(exclude[j], words[i]);
    if (skip) continue;
    snprintf(buf, sizeof buf, " %s", words[i]);
    int id = single_token(tok, buf);
    if (id < 0) continue;
    w->word[w->n] = words[i];
    w->id[w->n] = id;
    w->n++;
  }
}

static void word_list_free(word_list *w) {
  free(w->word);
  free(w->id);
}

/* Tokenize clean and corrupted prompts; returns the common length or -1 when they differ.
 * ids buffers are (re)allocated. */
static int encode_pair(const ep_tokenizer *tok, const char *clean, const char *corr, int32_t **a,
                       int32_t **b) {
  free(*a);
  free(*b);
  size_t na = tokenizer_encode(tok, clean, strlen(clean), a);
  size_t nb = tokenizer_encode(tok, corr, strlen(corr), b);
  return na == nb ? (int)na : -1;
}

/* ---- IOI ---------------------------------------------------------------------------------- */

/* The 15 BABA templates of the IOI paper (Wang et al. 2022, appendix E), in its order,
 * written with the placeholders of the paper's reference splits ({B} = subject S, {A} =
 * indirect object IO; the last {A} is the answer). The reference splits (ioi-*.jsonl)
 * use 13 of them; the two "long argument" templates, which have no place or object,
 * complete the set from the paper. The ABBA set swaps the first {B} and {A}. */
static const char *const ioi_baba[15] = {
    "Then, {B} and {A} went to the {PLACE}. {B} gave a {OBJECT} to {A}",
    "Then, {B} and {A} had a lot of fun at the {PLACE}. {B} gave a {OBJECT} to {A}",
    "Then, {B} and {A} were working at the {PLACE}. {B} decided to give a {OBJECT} to {A}",
    "Then, {B} and {A} were thinking about going to the {PLACE}. {B} wanted to give a {OBJECT} to {A}",
    "Then, {B} and {A} had a long argument, and afterwards {B} said to {A}",
    "After {B} and {A} went to the {PLACE}, {B} gave a {OBJECT} to {A}",
    "When {B} and {A} got a {OBJECT} at the {PLACE}, {B} decided to give it to {A}",
    "When {B} and {A} got a {OBJECT} at the {PLACE}, {B} decided to give the {OBJECT} to {A}",
    "While {B} and {A} were working at the {PLACE}, {B} gave a {OBJECT} to {A}",
    "While {B} and {A} were commuting to the {PLACE}, {B} gave a {OBJECT} to {A}",
    "After the lunch, {B} and {A} went to the {PLACE}. {B} gave a {OBJECT} to {A}",
    "Afterwards, {B} and {A} went to the {PLACE}. {B} gave a {OBJECT} to {A}",
    "Then, {B} and {A} had a long argument. Afterwards {B} said to {A}",
    "The {PLACE} {B} and {A} went to had a {OBJECT}. {B} gave it to {A}",
    "Friends {B} and {A} found a {OBJECT} at the {PLACE}. {B} gave it to {A}",
};
static const char *const ioi_abba[15] = {
    "Then, {A} and {B} went to the {PLACE}. {B} gave a {OBJECT} to {A}",
    "Then, {A} and {B} had a lot of fun at the {PLACE}. {B} gave a {OBJECT} to {A}",
    "Then, {A} and {B} were working at the {PLACE}. {B} decided to give a {OBJECT} to {A}",
    "Then, {A} and {B} were thinking about going to the {PLACE}. {B} wanted to give a {OBJECT} to {A}",
    "Then, {A} and {B} had a long argument, and afterwards {B} said to {A}",
    "After {A} and {B} went to the {PLACE}, {B} gave a {OBJECT} to {A}",
    "When {A} and {B} got a {OBJECT} at the {PLACE}, {B} decided to give it to {A}",
    "When {A} and {B} got a {OBJECT} at the {PLACE}, {B} decided to give the {OBJECT} to {A}",
    "While {A} and {B} were working at the {PLACE}, {B} gave a {OBJECT} to {A}",
    "While {A} and {B} were commuting to the {PLACE}, {B} gave a {OBJECT} to {A}",
    "After the lunch, {A} and {B} went to the {PLACE}. {B} gave a {OBJECT} to {A}",
    "Afterwards, {A} and {B} went to the {PLACE}. {B} gave a {OBJECT} to {A}",
    "Then, {A} and {B} had a long argument. Afterwards {B} said to {A}",
    "The {PLACE} {A} and {B} went to had a {OBJECT}. {B} gave it to {A}",
    "Friends {A} and {B} found a {OBJECT} at the {PLACE}. {B} gave it to {A}",
};

/* Places and objects of the reference splits (all 20 of each that occur there). */
static const char *const ioi_places[20] = {
    "bar",    "beach",    "cafe",   "cave", "desert", "forest", "gym",  "home",  "lake",    "library",
    "market", "mountain", "museum", "park", "river",  "school", "shop", "store", "theater", "zoo"};
static const char *const ioi_objects[20] = {"apple",     "banana",  "blackberry", "blueberry",  "cantaloupe",
                                            "cherry",    "coconut", "grape",      "honeydew",   "kiwi",
                                            "mango",     "orange",  "papaya",     "peach",      "pear",
                                            "pineapple", "plum",    "raspberry",  "strawberry", "watermelon"};

int taskgen_ioi_n_templates(void) {
  return 30;
}

const char *taskgen_ioi_template(int i) {
  EP_CHECK(i >= 0 && i < 30, "IOI template %d outside 0..29", i);
  return i < 15 ? ioi_baba[i] : ioi_abba[i - 15];
}

/* Fill an IOI template up to (not including) its final " {A}": a fills {A}, the first
 * {B} gets b1 and later ones b2. */
static void ioi_fill(char *out, size_t cap, const char *tmpl, const char *a, const char *b1, const char *b2,
                     const char *place, const char *object) {
  const char *end = tmpl + strlen(tmpl) - strlen(" {A}");
  EP_ASSERT(!strcmp(end, " {A}"));
  size_t k = 0;
  int n_b = 0;
  for (const char *s = tmpl; s < end;) {
    const char *rep = NULL;
    size_t skip = 1;
    if (!strncmp(s, "{A}", 3)) {
      rep = a;
      skip = 3;
    } else if (!strncmp(s, "{B}", 3)) {
      rep = n_b++ ? b2 : b1;
      skip = 3;
    } else if (!strncmp(s, "{PLACE}", 7)) {
      rep = place;
      skip = 7;
    } else if (!strncmp(s, "{OBJECT}", 8)) {
      rep = object;
      skip = 8;
    }
    if (rep) {
      size_t l = strlen(rep);
      EP_CHECK(k + l < cap, "IOI prompt too long");
      memcpy(out + k, rep, l);
      k += l;
    } else {
      EP_CHECK(k + 1 < cap, "IOI prompt too long");
      out[k++] = *s;
    }
    s += skip;
  }
  out[k] = '\0';
}

static void gen_ioi(builder *b, const ep_taskgen_params *p, const ep_tokenizer *tok, cJSON *attrs) {
  int one = !strcmp(p->task, "ioi-t1");
  if (one) EP_CHECK(p->template_index >= 0 && p->template_index < 30, "--template must be in 0..29");
  const char *const *names_src[2] = {tw_girls, tw_boys};
  const char **all = ep_malloc((TW_GIRLS_N + TW_BOYS_N) * sizeof *all);
  for (int i = 0; i < TW_GIRLS_N; i++)
    all[i] = names_src[0][i];
  for (int i = 0; i < TW_BOYS_N; i++)
    all[TW_GIRLS_N + i] = names_src[1][i];
  word_list names;
  word_list_build(&names, tok, all, TW_GIRLS_N + TW_BOYS_N, NULL, 0);
  free(all);
  EP_CHECK(names.n >= 5, "fewer than 5 single-token names for this tokenizer");
  char clean[512], corr[512];
  int32_t *ci = NULL, *xi = NULL;
  for (int64_t e = 0; e < p->n; e++) {
    draws r = {p->seed, e, 0};
    int done = 0;
    for (int attempt = 0; attempt < MAX_ATTEMPTS && !done; attempt++) {
      /* BABA for even examples, ABBA for odd ones: balanced by construction */
      int t = one ? p->template_index : (int)(e % 2) * 15 + draw_below(&r, 15);
      int na = draw_below(&r, names.n), nb;
      do
        nb = draw_below(&r, names.n);
      while (nb == na);
      /* three fresh names for the corrupted prompt: its IO, S1 and S2 are all different */
      int c[3];
      for (int j = 0; j < 3; j++) {
        int ok;
        do {
          c[j] = draw_below(&r, names.n);
          ok = c[j] != na && c[j] != nb;
          for (int q = 0; q < j; q++)
            ok = ok && c[j] != c[q];
        } while (!ok);
      }
      const char *place = ioi_places[draw_below(&r, 20)];
      const char *object = ioi_objects[draw_below(&r, 20)];
      const char *tmpl = taskgen_ioi_template(t);
      ioi_fill(clean, sizeof clean, tmpl, names.word[na], names.word[nb], names.word[nb], place, object);
      ioi_fill(corr, sizeof corr, tmpl, names.word[c[0]], names.word[c[1]], names.word[c[2]], place, object);
      int len = encode_pair(tok, clean, corr, &ci, &xi);
      if (len < 0) continue;
      builder_add(b, ci, xi, len, len - 1, len, names.id[na], names.id[nb], t);
      done = 1;
    }
    EP_CHECK(done, "IOI example %lld: no equal-length prompt pair in %d attempts", (long long)e,
             MAX_ATTEMPTS);
  }
  free(ci);
  free(xi);
  cJSON_AddNumberToObject(attrs, "n_names", names.n);
  cJSON_AddNumberToObject(attrs, "n_templates", one ? 1 : 30);
  if (one) cJSON_AddNumberToObject(attrs, "template_index", p->template_index);
  cJSON_AddStringToObject(attrs, "aux", "template index 0..29 (0..14 BABA, 15..29 ABBA)");
  cJSON_AddStringToObject(attrs, "balance", "even examples BABA, odd examples ABBA");
  word_list_free(&names);
}

/* ---- Greater-Than ------------------------------------------------------------------------- */

#define GT_CENTURY_MIN 10
#define GT_CENTURY_MAX 20
#define GT_YY_MIN 2
#define GT_YY_MAX 98

/* The 100 ids of the two-digit tokens "00".."99". */
static int32_t *gt_year_tokens(const ep_tokenizer *tok) {
  int32_t *y = ep_malloc(100 * sizeof *y);
  char buf[4];
  for (int i = 0; i < 100; i++) {
    snprintf(buf, sizeof buf, "%02d", i);
    y[i] = must_single_token(tok, buf);
  }
  return y;
}

/* 1 when " XXYY" tokenizes as " XX" then "YY", so the prompt's last token is the century
 * and the answer is one two-digit token. */
static int gt_year_splits(const ep_tokenizer *tok, int century, int yy, const int32_t *years) {
  char buf[16];
  snprintf(buf, sizeof buf, " %02d%02d", century, yy);
  int32_t *ids;
  size_t n = tokenizer_encode(tok, buf, strlen(buf), &ids);
  snprintf(buf, sizeof buf, " %02d", century);
  int ok = n == 2 && ids[1] == years[yy] && ids[0] == single_token(tok, buf);
  free(ids);
  return ok;
}

static void gen_gt(builder *b, const ep_taskgen_params *p, const ep_tokenizer *tok, cJSON *attrs,
                   int32_t **answer_tokens) {
  int32_t *years = gt_year_tokens(tok);
  /* which (century, YY) pairs tokenize cleanly, decided once */
  static const int nc = GT_CENTURY_MAX - GT_CENTURY_MIN + 1;
  unsigned char ok[GT_CENTURY_MAX - GT_CENTURY_MIN + 1][100];
  for (int c = 0; c < nc; c++)
    for (int y = 0; y < 100; y++)
      ok[c][y] = (unsigned char)gt_year_splits(tok, GT_CENTURY_MIN + c, y, years);
  char clean[256], corr[256];
  int32_t *ci = NULL, *xi = NULL;
  for (int64_t e = 0; e < p->n; e++) {
    draws r = {p->seed, e, 0};
    int done = 0;
    for (int attempt = 0; attempt < MAX_ATTEMPTS && !done; attempt++) {
      const char *noun = tw_gt_nouns[draw_below(&r, TW_GT_NOUNS_N)];
      int c1 = draw_below(&r, nc), y1 = GT_YY_MIN + draw_below(&r, GT_YY_MAX - GT_YY_MIN + 1);
      int c2 = draw_below(&r, nc), y2 = GT_YY_MIN + draw_below(&r, GT_YY_MAX - GT_YY_MIN + 1);
      if (!ok[c1][y1] || !ok[c2][y2]) continue;
      int xx1 = GT_CENTURY_MIN + c1, xx2 = GT_CENTURY_MIN + c2;
      snprintf(clean, sizeof clean, "The %s lasted from %02d%02d to %02d", noun, xx1, y1, xx1);
      snprintf(corr, sizeof corr, "The %s lasted from %02d%02d to %02d", noun, xx2, y2, xx2);
      int len = encode_pair(tok, clean, corr, &ci, &xi);
      if (len < 0) continue;
      builder_add(b, ci, xi, len, len - 1, len, -1, -1, y1);
      done = 1;
    }
    EP_CHECK(done, "Greater-Than example %lld: no valid prompt pair in %d attempts", (long long)e,
             MAX_ATTEMPTS);
  }
  free(ci);
  free(xi);
  *answer_tokens = years;
  cJSON_AddNumberToObject(attrs, "century_min", GT_CENTURY_MIN);
  cJSON_AddNumberToObject(attrs, "century_max", GT_CENTURY_MAX);
  cJSON_AddNumberToObject(attrs, "yy_min", GT_YY_MIN);
  cJSON_AddNumberToObject(attrs, "yy_max", GT_YY_MAX);
  cJSON_AddNumberToObject(attrs, "n_nouns", TW_GT_NOUNS_N);
  cJSON_AddStringToObject(attrs, "aux", "YY, the last two digits of the start year");
  cJSON_AddStringToObject(attrs, "answer_tokens", "ids of the tokens \"00\"..\"99\"");
}

/* ---- Gendered Pronoun ---------------------------------------------------------------------- */

static void gp_fill(char *out, size_t cap, const char *tmpl, const char *name) {
  const char *at = strstr(tmpl, "{name}");
  EP_CHECK(at, "Gendered Pronoun template without {name}: %s", tmpl);
  int n = snprintf(out, cap, "%.*s%s%s", (int)(at - tmpl), tmpl, name, at + 6);
  EP_CHECK(n > 0 && (size_t)n < cap, "Gendered Pronoun prompt too long");
}

static void gen_gp(builder *b, const ep_taskgen_params *p, const ep_tokenizer *tok, cJSON *attrs) {
  /* names on both lists have no definite pronoun: left out */
  word_list girls, boys;
  word_list_build(&girls, tok, tw_girls, TW_GIRLS_N, tw_boys, TW_BOYS_N);
  word_list_build(&boys, tok, tw_boys, TW_BOYS_N, tw_girls, TW_GIRLS_N);
  EP_CHECK(girls.n > 0 && boys.n > 0, "no single-token names for this tokenizer");
  int he = must_single_token(tok, " he"), she = must_single_token(tok, " she");
  char clean[512], corr[512];
  int32_t *ci = NULL, *xi = NULL;
  for (int64_t e = 0; e < p->n; e++) {
    draws r = {p->seed, e, 0};
    int male = (int)(e % 2 == 0); /* alternate: he/she balanced */
    const word_list *own = male ? &boys : &girls, *other = male ? &girls : &boys;
    int done = 0;
    for (int attempt = 0; attempt < MAX_ATTEMPTS && !done; attempt++) {
      const char *tmpl = tw_gp_templates[draw_below(&r, TW_GP_TEMPLATES_N)];
      gp_fill(clean, sizeof clean, tmpl, own->word[draw_below(&r, own->n)]);
      gp_fill(corr, sizeof corr, tmpl, other->word[draw_below(&r, other->n)]);
      int len = encode_pair(tok, clean, corr, &ci, &xi);
      if (len < 0) continue;
      builder_add(b, ci, xi, len, len - 1, len, male ? he : she, male ? she : he, -1);
      done = 1;
    }
    EP_CHECK(done, "Gendered Pronoun example %lld: no equal-length pair", (long long)e);
  }
  free(ci);
  free(xi);
  cJSON_AddNumberToObject(attrs, "n_girls_names", girls.n);
  cJSON_AddNumberToObject(attrs, "n_boys_names", boys.n);
  cJSON_AddNumberToObject(attrs, "n_templates", TW_GP_TEMPLATES_N);
  cJSON_AddStringToObject(attrs, "balance", "even examples he, odd examples she");
  word_list_free(&girls);
  word_list_free(&boys);
}

/* ---- Boolean Expressions ------------------------------------------------------------------- */

/* Three solved examples in the format of the reference splits, for the few-shot form. */
static const char *const bool_shots = "( True and False ) or ( False and True ) is False\n"
                                      "( True or ( not True ) ) and False is False\n"
                                      "( not ( True and False ) ) or ( False and True ) is True\n";
static const char *const bool_instruction =
    "[INST] <<SYS>>\nEvaluate the following boolean expression as either 'True' or 'False'.\n"
    "<</SYS>>\n\n";

typedef struct {
  char *s;
  size_t k, cap;
  int literals;
} sbuf;

static void sb_put(sbuf *b, const char *t) {
  size_t l = strlen(t);
  EP_CHECK(b->k + l + 1 < b->cap, "boolean expression too long");
  memcpy(b->s + b->k, t, l + 1);
  b->k += l;
}

/* Render a random expression of at most `depth` operator levels; returns its value.
 * Operands that are not literals are parenthesised, as in the reference splits. */
static int bool_gen(draws *r, sbuf *b, int depth);

static int bool_operand(draws *r, sbuf *b, int depth) {
  int kind = depth == 0 ? 0 : draw_below(r, 10); /* 0-1 literal, 2-4 not, 5-9 binary */
  if (kind < 2) {
    int v = draw_below(r, 2);
    sb_put(b, v ? "True" : "False");
    b->literals++;
    return v;
  }
  sb_put(b, "( ");
  int v;
  if (kind < 5) {
    sb_put(b, "not ");
    v = !bool_operand(r, b, depth - 1);
  } else {
    v = bool_gen(r, b, depth);
  }
  sb_put(b, " )");
  return v;
}

static int bool_gen(draws *r, sbuf *b, int depth) {
  int l = bool_operand(r, b, depth - 1);
  int is_and = draw_below(r, 2);
  sb_put(b, is_and ? " and " : " or ");
  int rv = bool_operand(r, b, depth - 1);
  return is_and ? (l && rv) : (l || rv);
}

/* Flip every literal: the corrupted expression of the reference splits. */
static void bool_flip(const char *in, char *out, size_t cap) {
  size_t k = 0;
  for (const char *s = in; *s;) {
    const char *rep = NULL;
    size_t skip = 1;
    if (!strncmp(s, "True", 4)) {
      rep = "False";
      skip = 4;
    } else if (!strncmp(s, "False", 5)) {
      rep = "True";
      skip = 5;
    }
    if (rep) {
      size_t l = strlen(rep);
      EP_CHECK(k + l < cap, "boolean expression too long");
      memcpy(out + k, rep, l);
      k += l;
    } else {
      EP_CHECK(k + 1 < cap, "boolean expression too long");
      out[k++] = *s;
    }
    s += skip;
  }
  out[k] = '\0';
}

static int bool_form_instruction(const char *form) {
  if (!form || !strcmp(form, "fewshot")) return 0;
  if (!strcmp(form, "instruction")) return 1;
  ep_fatal("unknown Boolean Expressions form '%s' (fewshot or instruction)", form);
}

/* The prompt for an expression that ends in " is" (the reference format). */
static void bool_prompt(char *out, size_t cap, const char *expr_is, int instruction) {
  int n;
  if (instruction) {
    size_t l = strlen(expr_is);
    if (l >= 3 && !strcmp(expr_is + l - 3, " is")) l -= 3;
    n = snprintf(out, cap, "%s%.*s [/INST] '", bool_instruction, (int)l, expr_is);
  } else {
    n = snprintf(out, cap, "%s%s", bool_shots, expr_is);
  }
  EP_CHECK(n > 0 && (size_t)n < cap, "boolean prompt too long");
}

/* Answer tokens: " True"/" False" after "... is", "True"/"False" after the quote. */
static void bool_answers(const ep_tokenizer *tok, int instruction, int *t_true, int *t_false) {
  *t_true = must_single_token(tok, instruction ? "True" : " True");
  *t_false = must_single_token(tok, instruction ? "False" : " False");
}

static void gen_boolexpr(builder *b, const ep_taskgen_params *p, const ep_tokenizer *tok, cJSON *attrs) {
  int instr = bool_form_instruction(p->form);
  int t_true, t_false;
  bool_answers(tok, instr, &t_true, &t_false);
  char expr[512], flipped[512], clean[1024], corr[1024];
  int32_t *ci = NULL, *xi = NULL;
  for (int64_t e = 0; e < p->n; e++) {
    draws r = {p->seed, e, 0};
    int want = (int)(e % 2 == 0); /* answers alternate True/False: balanced */
    int done = 0;
    for (int attempt = 0; attempt < MAX_ATTEMPTS && !done; attempt++) {
      sbuf sb = {expr, 0, sizeof expr, 0};
      expr[0] = '\0';
      int v = bool_gen(&r, &sb, 3);
      if (v != want || sb.literals < 2 || sb.literals > 6) continue;
      sb_put(&sb, " is");
      bool_flip(expr, flipped, sizeof flipped);
      bool_prompt(clean, sizeof clean, expr, instr);
      bool_prompt(corr, sizeof corr, flipped, instr);
      int len = encode_pair(tok, clean, corr, &ci, &xi);
      if (len < 0) continue;
      builder_add(b, ci, xi, len, len - 1, len, v ? t_true : t_false, v ? t_false : t_true, -1);
      done = 1;
    }
    EP_CHECK(done, "Boolean Expressions example %lld: no valid expression", (long long)e);
  }
  free(ci);
  free(xi);
  cJSON_AddStringToObject(attrs, "form", instr ? "instruction" : "fewshot");
  cJSON_AddNumberToObject(attrs, "max_depth", 3);
  cJSON_AddStringToObject(attrs, "literals", "2..6");
  cJSON_AddStringToObject(attrs, "corrupted", "every literal flipped");
  cJSON_AddStringToObject(attrs, "balance", "even examples True, odd examples False");
}

/* ---- Tracr ------------------------------------------------------------------------------ */

typedef struct {
  int bos, pad;
  int n_in;
  int in_id[16];
  char in_name[16][16];
} tracr_vocab;

static void tracr_vocab_default(tracr_vocab *v, int xprop) {
  /* the vocabularies of the paper's compiled reverse and xproportion models */
  memset(v, 0, sizeof *v);
  if (!xprop) {
    v->bos = 3;
    v->pad = 4;
    v->n_in = 3;
    const char *nm[] = {"1", "2", "3"};
    for (int i = 0; i < 3; i++) {
      v->in_id[i] = i;
      snprintf(v->in_name[i], sizeof v->in_name[i], "%s", nm[i]);
    }
  } else {
    v->bos = 0;
    v->pad = 4;
    v->n_in = 4;
    const char *nm[] = {"a", "b", "c", "x"};
    const int id[] = {1, 2, 3, 5};
    for (int i = 0; i < 4; i++) {
      v->in_id[i] = id[i];
      snprintf(v->in_name[i], sizeof v->in_name[i], "%s", nm[i]);
    }
  }
}

static int cmp_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void tracr_vocab_load(tracr_vocab *v, const char *path) {
  size_t len;
  char *text = ep_read_file(path, &len);
  cJSON *j = cJSON_ParseWithLength(text, len);
  free(text);
  if (!j) ep_fatal("%s: not valid JSON", path);
  const cJSON *voc = cJSON_GetObjectItemCaseSensitive(j, "vocab");
  const char *bos = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "bos"));
  const char *pad = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "pad"));
  if (!cJSON_IsObject(voc) || !bos || !pad) ep_fatal("%s: needs \"vocab\", \"bos\" and \"pad\"", path);
  memset(v, 0, sizeof *v);
  v->bos = v->pad = -1;
  const char *names[16];
  int n = 0;
  const cJSON *e;
  cJSON_ArrayForEach(e, voc) {
    if (!cJSON_IsNumber(e)) ep_fatal("%s: vocab key \"%s\": id is not a number", path, e->string);
    if (!strcmp(e->string, bos))
      v->bos = (int)e->valuedouble;
    else if (!strcmp(e->string, pad))
      v->pad = (int)e->valuedouble;
    else {
      if (n >= 16 || strlen(e->string) >= 16) ep_fatal("%s: vocabulary too large for a Tracr task", path);
      names[n++] = e->string;
    }
  }
  if (v->bos < 0 || v->pad < 0) ep_fatal("%s: vocab lacks the bos or pad token", path);
  qsort(names, (size_t)n, sizeof *names, cmp_name); /* a fixed order, independent of the file's */
  for (int i = 0; i < n; i++) {
    snprintf(v->in_name[i], sizeof v->in_name[i], "%s", names[i]);
    v->in_id[i] = (int)cJSON_GetObjectItemCaseSensitive(voc, names[i])->valuedouble;
  }
  v->n_in = n;
  cJSON_Delete(j);
  if (n < 2) ep_fatal("%s: fewer than two input tokens", path);
}

static void gen_tracr(builder *b, const ep_taskgen_params *p, cJSON *attrs, int *pad_id) {
  int xprop = !strcmp(p->task, "xproportion");
  tracr_vocab v;
  if (p->tracr_config)
    tracr_vocab_load(&v, p->tracr_config);
  else
    tracr_vocab_default(&v, xprop);
  int L = xprop ? 4 : 3; /* input tokens after BOS */
  int32_t clean[8], corr[8];
  for (int64_t e = 0; e < p->n; e++) {
    draws r = {p->seed, e, 0};
    clean[0] = corr[0] = v.bos;
    for (int t = 1; t <= L; t++)
      clean[t] = v.in_id[draw_below(&r, v.n_in)];
    int same;
    do { /* another random input of the same length */
      same = 1;
      for (int t = 1; t <= L; t++) {
        corr[t] = v.in_id[draw_below(&r, v.n_in)];
        same = same && corr[t] == clean[t];
      }
    } while (same);
    builder_add(b, clean, corr, L + 1, 1, L + 1, -1, -1, -1);
  }
  *pad_id = v.pad;
  cJSON_AddNumberToObject(attrs, "input_length", L);
  cJSON_AddNumberToObject(attrs, "bos_id", v.bos);
  cJSON *names = cJSON_AddArrayToObject(attrs, "input_tokens");
  for (int i = 0; i < v.n_in; i++)
    cJSON_AddItemToArray(names, cJSON_CreateString(v.in_name[i]));
  cJSON_AddStringToObject(attrs, "vocabulary", p->tracr_config ? p->tracr_config : "built-in");
}

/* ---- generator entry ------------------------------------------------------------------------ */

void taskgen_generate(ep_dataset *d, const ep_taskgen_params *p, const ep_tokenizer *tok, char **attrs_json) {
  EP_CHECK(p->n >= 1, "the number of examples must be positive (got %lld)", (long long)p->n);
  int tracr = !strcmp(p->task, "reverse") || !strcmp(p->task, "xproportion");
  EP_CHECK(tracr || tok, "task '%s' needs a tokenizer", p->task);
  builder b = {0};
  cJSON *attrs = cJSON_CreateObject();
  cJSON_AddStringToObject(attrs, "generator", p->task);
  EP_CHECK(p->seed < (1ull << 53), "seed %llu too large (at most 2^53 - 1)", (unsigned long long)p->seed);
  cJSON_AddNumberToObject(attrs, "seed", (double)p->seed); /* exact below 2^53 */
  int pad_id = tok ? tokenizer_eot_id(tok) : 0;
  int32_t *answer = NULL;
  if (!strcmp(p->task, "ioi") || !strcmp(p->task, "ioi-t1"))
    gen_ioi(&b, p, tok, attrs);
  else if (!strcmp(p->task, "gt"))
    gen_gt(&b, p, tok, attrs, &answer);
  else if (!strcmp(p->task, "gp"))
    gen_gp(&b, p, tok, attrs);
  else if (!strcmp(p->task, "boolexpr"))
    gen_boolexpr(&b, p, tok, attrs);
  else if (tracr)
    gen_tracr(&b, p, attrs, &pad_id);
  else
    ep_fatal("unknown task '%s' (ioi, ioi-t1, gt, gp, boolexpr, reverse, xproportion, jsonl)", p->task);
  builder_finish(&b, d, p->task, pad_id);
  if (answer) {
    d->answer_tokens = answer;
    d->n_answer_tokens = 100;
  }
  *attrs_json = cJSON_PrintUnformatted(attrs);
  cJSON_Delete(attrs);
}

/* ---- JSONL readers ------------------------------------------------------------------------- */

typedef struct {
  char *text;
  size_t len, pos;
  long line;
  const char *path;
} jsonl_reader;

/* Next non-blank line parsed as a JSON object, or NULL at the end. */
static cJSON *jsonl_next(jsonl_reader *r) {
  while (r->pos < r->len) {
    char *s = r->text + r->pos;
    char *nl = memchr(s, '\n', r->len - r->pos);
    size_t l = nl ? (size_t)(nl - s) : r->len - r->pos;
    r->pos += l + (nl ? 1 : 0);
    r->line++;
    size_t k = 0;
    while (k < l && (s[k] == ' ' || s[k] == '\t' || s[k] == '\r'))
      k++;
    if (k == l) continue;
    cJSON *j = cJSON_ParseWithLength(s, l);
    if (!j) ep_fatal("%s:%ld: not valid JSON", r->path, r->line);
    if (!cJSON_IsObject(j)) ep_fatal("%s:%ld: expected a JSON object", r->path, r->line);
    return j;
  }
  return NULL;
}

static const char *jsonl_str(const jsonl_reader *r, const cJSON *j, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
  if (!v) ep_fatal("%s:%ld: missing field \"%s\"", r->path, r->line, key);
  if (!cJSON_IsString(v)) ep_fatal("%s:%ld: field \"%s\" is not a string", r->path, r->line, key);
  return v->valuestring;
}

static int has(const cJSON *j, const char *key) {
  return cJSON_GetObjectItemCaseSensitive(j, key) != NULL;
}

/* The first token of text (which must tokenize to at least one token). */
static int first_token(const ep_tokenizer *tok, const char *text, const jsonl_reader *r, const char *what) {
  int32_t *ids;
  size_t n = tokenizer_encode(tok, text, strlen(text), &ids);
  if (n == 0) ep_fatal("%s:%ld: %s is empty", r->path, r->line, what);
  int id = ids[0];
  free(ids);
  return id;
}

/* Strip the last space-separated word: "... gave it to Mary" -> "... gave it to". */
static char *drop_last_word(const jsonl_reader *r, const char *s, const char *field) {
  const char *sp = strrchr(s, ' ');
  if (!sp || sp == s) ep_fatal("%s:%ld: field \"%s\" has no final word to predict", r->path, r->line, field);
  size_t l = (size_t)(sp - s);
  char *out = ep_malloc(l + 1);
  memcpy(out, s, l);
  out[l] = '\0';
  return out;
}

typedef enum { FMT_IOI, FMT_GT, FMT_GP, FMT_BOOL } paper_format;

static const char *format_task(paper_format f) {
  return f == FMT_IOI ? "ioi" : f == FMT_GT ? "gt" : f == FMT_GP ? "gp" : "boolexpr";
}

void taskgen_from_paper_jsonl(ep_dataset *d, const char *task, const char *path, const char *form,
                              const ep_tokenizer *tok, int strict, int64_t max_n, char **attrs_json) {
  jsonl_reader r = {0};
  r.path = path;
  r.text = ep_read_file(path, &r.len);
  builder b = {0};
  int instr = bool_form_instruction(form);
  int t_true = -1, t_false = -1;
  int he = -1, she = -1;
  int32_t *years = NULL;
  int32_t *ci = NULL, *xi = NULL;
  int pad = tokenizer_eot_id(tok);
  int64_t fitted = 0;
  long first_fitted = 0;
  int fmt = -1;
  cJSON *j;
  while ((max_n < 0 || b.n < max_n) && (j = jsonl_next(&r))) {
    if (fmt < 0) {
      fmt = has(j, "ioi_sentences") ? FMT_IOI
            : has(j, "digits")      ? FMT_GT
            : has(j, "pronoun")     ? FMT_GP
            : has(j, "input")       ? FMT_BOOL
                                    : -1;
      if (fmt < 0)
        ep_fatal("%s:%ld: not a known paper format (IOI: ioi_sentences; Greater-Than: prefix, "
                 "digits; Gendered Pronoun: prefix, pronoun; Boolean Expressions: input, target)",
                 path, r.line);
      const char *want = format_task((paper_format)fmt);
      int agrees = !strcmp(task, want) || (fmt == FMT_IOI && !strcmp(task, "ioi-t1"));
      if (!agrees) ep_fatal("%s:%ld: this is a %s file, not %s", path, r.line, want, task);
      if (fmt == FMT_BOOL) bool_answers(tok, instr, &t_true, &t_false);
      if (fmt == FMT_GP) {
        he = must_single_token(tok, " he");
        she = must_single_token(tok, " she");
      }
      if (fmt == FMT_GT) years = gt_year_tokens(tok);
    }
    char *clean = NULL, *corr = NULL;
    int target = -1, distractor = -1, aux = -1;
    char buf[512];
    if (fmt == FMT_IOI) {
      const char *s = jsonl_str(&r, j, "ioi_sentences");
      const char *cs = jsonl_str(&r, j, "corr_ioi_sentences");
      const char *a = jsonl_str(&r, j, "a");
      const char *bn = jsonl_str(&r, j, "b");
      size_t ls = strlen(s), la = strlen(a);
      if (ls <= la + 1 || strcmp(s + ls - la, a) || s[ls - la - 1] != ' ')
        ep_fatal("%s:%ld: \"ioi_sentences\" does not end with the indirect object \"%s\"", path, r.line, a);
      clean = drop_last_word(&r, s, "ioi_sentences");
      corr = drop_last_word(&r, cs, "corr_ioi_sentences");
      snprintf(buf, sizeof buf, " %s", a);
      target = first_token(tok, buf, &r, "the indirect object");
      snprintf(buf, sizeof buf, " %s", bn);
      distractor = first_token(tok, buf, &r, "the subject");
    } else if (fmt == FMT_GT) {
      clean = ep_strdup(jsonl_str(&r, j, "prefix"));
      corr = ep_strdup(jsonl_str(&r, j, "corr_prefix"));
      const char *dg = jsonl_str(&r, j, "digits");
      if (strlen(dg) != 2 || dg[0] < '0' || dg[0] > '9' || dg[1] < '0' || dg[1] > '9')
        ep_fatal("%s:%ld: \"digits\" must be two digits, got \"%s\"", path, r.line, dg);
      aux = (dg[0] - '0') * 10 + (dg[1] - '0');
    } else if (fmt == FMT_GP) {
      clean = ep_strdup(jsonl_str(&r, j, "prefix"));
      corr = ep_strdup(jsonl_str(&r, j, "corr_prefix"));
      const char *pr = jsonl_str(&r, j, "pronoun");
      if (strcmp(pr, "he") && strcmp(pr, "she"))
        ep_fatal("%s:%ld: \"pronoun\" must be \"he\" or \"she\", got \"%s\"", path, r.line, pr);
      target = !strcmp(pr, "he") ? he : she;
      distractor = target == he ? she : he;
    } else {
      const char *in = jsonl_str(&r, j, "input");
      const char *cin = jsonl_str(&r, j, "corr_input");
      const char *tg = jsonl_str(&r, j, "target");
      if (strcmp(tg, "True") && strcmp(tg, "False"))
        ep_fatal("%s:%ld: \"target\" must be \"True\" or \"False\", got \"%s\"", path, r.line, tg);
      char p1[1024], p2[1024];
      bool_prompt(p1, sizeof p1, in, instr);
      bool_prompt(p2, sizeof p2, cin, instr);
      clean = ep_strdup(p1);
      corr = ep_strdup(p2);
      target = !strcmp(tg, "True") ? t_true : t_false;
      distractor = target == t_true ? t_false : t_true;
    }
    free(ci);
    free(xi);
    size_t nc = tokenizer_encode(tok, clean, strlen(clean), &ci);
    size_t nx = tokenizer_encode(tok, corr, strlen(corr), &xi);
    if (nc == 0) ep_fatal("%s:%ld: empty prompt", path, r.line);
    if (nc != nx) {
      if (strict)
        ep_fatal("%s:%ld: clean and corrupted prompts have %zu and %zu tokens (must be equal)", path, r.line,
                 nc, nx);
      if (!fitted++) first_fitted = r.line;
      xi = ep_realloc(xi, nc * sizeof *xi);
      for (size_t t = nx; t < nc; t++)
        xi[t] = pad;
    }
    builder_add(&b, ci, xi, (int)nc, (int)nc - 1, (int)nc, target, distractor, aux);
    free(clean);
    free(corr);
    cJSON_Delete(j);
  }
  free(ci);
  free(xi);
  free(r.text);
  if (b.n == 0) ep_fatal("%s: no examples", path);
  if (max_n >= 0 && b.n < max_n)
    ep_fatal("%s: %lld examples requested, the file has %lld", path, (long long)max_n, (long long)b.n);
  if (fitted)
    ep_warn("%s: %lld of %lld examples have corrupted prompts of another token length (first at "
            "line %ld); cut or padded to the clean length",
            path, (long long)fitted, (long long)b.n, first_fitted);
  builder_finish(&b, d, task, pad);
  if (years) {
    d->answer_tokens = years;
    d->n_answer_tokens = 100;
  }
  cJSON *attrs = cJSON_CreateObject();
  cJSON_AddStringToObject(attrs, "source", path);
  cJSON_AddStringToObject(attrs, "format", format_task((paper_format)fmt));
  if (fmt == FMT_BOOL) cJSON_AddStringToObject(attrs, "form", instr ? "instruction" : "fewshot");
  cJSON_AddNumberToObject(attrs, "corrupted_fitted", (double)fitted);
  *attrs_json = cJSON_PrintUnformatted(attrs);
  cJSON_Delete(attrs);
}

/* Split "... <predict>x</predict>" into the prompt and the answer text (the prompt's
 * trailing spaces move into the answer). Both malloc'd. Returns 0 when there is no
 * well-formed <predict>...</predict> at the end. */
static int split_predict(const char *s, char **prompt, char **answer) {
  const char *open = strstr(s, "<predict>");
  if (!open) return 0;
  const char *x = open + strlen("<predict>");
  const char *close = strstr(x, "</predict>");
  if (!close || close == x) return 0;
  for (const char *t = close + strlen("</predict>"); *t; t++)
    if (*t != ' ' && *t != '\t' && *t != '\r' && *t != '\n') return 0;
  size_t pl = (size_t)(open - s);
  size_t sp = 0;
  while (sp < pl && s[pl - 1 - sp] == ' ')
    sp++;
  *prompt = ep_malloc(pl - sp + 1);
  memcpy(*prompt, s, pl - sp);
  (*prompt)[pl - sp] = '\0';
  size_t al = (size_t)(close - x);
  *answer = ep_malloc(sp + al + 1);
  memset(*answer, ' ', sp);
  memcpy(*answer + sp, x, al);
  (*answer)[sp + al] = '\0';
  return 1;
}

int taskgen_custom_jsonl(const char *path, const char *default_split, const ep_tokenizer *tok,
                         ep_dataset **splits, char ***names, char **attrs_json) {
  jsonl_reader r = {0};
  r.path = path;
  r.text = ep_read_file(path, &r.len);
  int n_split = 0, cap = 4;
  builder *bs = ep_calloc((size_t)cap, sizeof *bs);
  char **nm = ep_calloc((size_t)cap, sizeof *nm);
  int32_t *ci = NULL, *xi = NULL;
  cJSON *j;
  int64_t total = 0;
  while ((j = jsonl_next(&r))) {
    const char *clean_text = jsonl_str(&r, j, "clean");
    const char *corr_text = jsonl_str(&r, j, "corrupted");
    const char *split = default_split;
    if (has(j, "split")) split = jsonl_str(&r, j, "split");
    if (!*split) ep_fatal("%s:%ld: empty \"split\"", path, r.line);
    char *prompt, *answer, *cprompt, *canswer = NULL;
    if (!split_predict(clean_text, &prompt, &answer))
      ep_fatal("%s:%ld: \"clean\" must end with <predict>ANSWER</predict>", path, r.line);
    if (strstr(corr_text, "<predict>")) {
      if (!split_predict(corr_text, &cprompt, &canswer))
        ep_fatal("%s:%ld: malformed <predict>...</predict> in \"corrupted\"", path, r.line);
    } else {
      size_t l = strlen(corr_text);
      while (l > 0 && corr_text[l - 1] == ' ')
        l--;
      cprompt = ep_malloc(l + 1);
      memcpy(cprompt, corr_text, l);
      cprompt[l] = '\0';
    }
    free(ci);
    free(xi);
    size_t nc = tokenizer_encode(tok, prompt, strlen(prompt), &ci);
    size_t nx = tokenizer_encode(tok, cprompt, strlen(cprompt), &xi);
    if (nc == 0) ep_fatal("%s:%ld: empty prompt before <predict>", path, r.line);
    if (nc != nx)
      ep_fatal("%s:%ld: clean and corrupted prompts have %zu and %zu tokens (must be equal)", path, r.line,
               nc, nx);
    int target = single_token(tok, answer);
    if (target < 0) ep_fatal("%s:%ld: the answer \"%s\" is not a single token", path, r.line, answer);
    int distractor = -1;
    if (canswer) {
      distractor = single_token(tok, canswer);
      if (distractor < 0)
        ep_fatal("%s:%ld: the corrupted answer \"%s\" is not a single token", path, r.line, canswer);
    }
    int s = 0;
    while (s < n_split && strcmp(nm[s], split))
      s++;
    if (s == n_split) {
      if (n_split == cap) {
        cap *= 2;
        bs = ep_realloc(bs, (size_t)cap * sizeof *bs);
        nm = ep_realloc(nm, (size_t)cap * sizeof *nm);
        memset(bs + n_split, 0, (size_t)(cap - n_split) * sizeof *bs);
      }
      nm[n_split++] = ep_strdup(split);
    }
    builder_add(&bs[s], ci, xi, (int)nc, (int)nc - 1, (int)nc, target, distractor, -1);
    total++;
    free(prompt);
    free(answer);
    free(cprompt);
    free(canswer);
    cJSON_Delete(j);
  }
  free(ci);
  free(xi);
  free(r.text);
  if (total == 0) ep_fatal("%s: no examples", path);
  *splits = ep_calloc((size_t)n_split, sizeof **splits);
  for (int s = 0; s < n_split; s++)
    builder_finish(&bs[s], &(*splits)[s], "jsonl", tokenizer_eot_id(tok));
  free(bs);
  *names = nm;
  cJSON *attrs = cJSON_CreateObject();
  cJSON_AddStringToObject(attrs, "source", path);
  *attrs_json = cJSON_PrintUnformatted(attrs);
  cJSON_Delete(attrs);
  return n_split;
}
