/* deck.c — the YAML input deck (see deck.h).
 *
 * The file is read with libyaml's event parser: the grammar we accept is tiny
 * (a mapping of section names to mappings of scalars), so walking events keeps every
 * error next to the libyaml mark (line/column) that explains it. Values are checked
 * and normalised once, at load time; getters only look them up. */
#define _POSIX_C_SOURCE 200809L
#include "edgeprune/deck.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "edgeprune/core.h"

typedef struct {
  char *text; /* normalised value (what the resolved deck prints) */
  int64_t i;  /* EP_DECK_INT */
  double f;   /* EP_DECK_INT and EP_DECK_FLOAT */
  int b;      /* EP_DECK_BOOL */
  int set;    /* given in the file or by -P */
  int line;   /* line in the file (0 when from -P or the default) */
} deck_value;

struct ep_deck {
  char *path;              /* NULL when no file was given */
  const ep_deck_key *keys; /* the caller's table */
  int n_keys;
  deck_value *vals; /* [n_keys] */
};

/* Where a value came from, for error messages: "deck.yml:12" or "-P 'a.b=1'". */
typedef struct {
  char where[512];
} deck_origin;

static const char *deck_type_name(ep_deck_type t) {
  switch (t) {
  case EP_DECK_STRING:
    return "string";
  case EP_DECK_INT:
    return "integer";
  case EP_DECK_FLOAT:
    return "real number";
  case EP_DECK_BOOL:
    return "boolean";
  case EP_DECK_CHOICE:
    return "choice";
  }
  return "?";
}

/* Levenshtein distance, two rows; names are short so O(n*m) is nothing. */
static int deck_edit_distance(const char *a, const char *b) {
  size_t n = strlen(a), m = strlen(b);
  int *prev = ep_malloc((m + 1) * sizeof *prev), *cur = ep_malloc((m + 1) * sizeof *cur);
  for (size_t j = 0; j <= m; j++)
    prev[j] = (int)j;
  for (size_t i = 1; i <= n; i++) {
    cur[0] = (int)i;
    for (size_t j = 1; j <= m; j++) {
      int sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
      int del = prev[j] + 1, ins = cur[j - 1] + 1;
      cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
    }
    int *t = prev;
    prev = cur;
    cur = t;
  }
  int d = prev[m];
  free(prev);
  free(cur);
  return d;
}

/* " (did you mean 'x'?)" for the closest candidate, or "" when nothing is close.
 * "Close" is generous (a third of the name, at least 3 edits) because a misspelt
 * key is usually a typo or a wrong section, not a different word. */
static void deck_suggest(const char *word, const char *const *cands, int n, char *out, size_t cap) {
  out[0] = '\0';
  int best = -1, best_d = 1 << 30;
  for (int i = 0; i < n; i++) {
    int d = deck_edit_distance(word, cands[i]);
    if (d < best_d) best_d = d, best = i;
  }
  int limit = (int)strlen(word) / 3;
  if (limit < 3) limit = 3;
  if (best >= 0 && best_d <= limit) snprintf(out, cap, " (did you mean '%s'?)", cands[best]);
}

static int deck_find(const ep_deck_key *keys, int n, const char *name) {
  for (int i = 0; i < n; i++)
    if (strcmp(keys[i].name, name) == 0) return i;
  return -1;
}

/* Length of the section part of "section.key". */
static size_t deck_section_len(const char *name) {
  const char *dot = strchr(name, '.');
  return dot ? (size_t)(dot - name) : strlen(name);
}

static int deck_has_section(const ep_deck_key *keys, int n, const char *sec) {
  size_t l = strlen(sec);
  for (int i = 0; i < n; i++)
    if (deck_section_len(keys[i].name) == l && strncmp(keys[i].name, sec, l) == 0) return 1;
  return 0;
}

/* " (did you mean 'x'?)" over full key names. */
static void deck_suggest_key(const ep_deck *d, const char *name, char *out, size_t cap) {
  const char **c = ep_malloc((size_t)d->n_keys * sizeof *c);
  for (int i = 0; i < d->n_keys; i++)
    c[i] = d->keys[i].name;
  deck_suggest(name, c, d->n_keys, out, cap);
  free(c);
}

static void deck_suggest_section(const ep_deck *d, const char *sec, char *out, size_t cap) {
  char **c = ep_malloc((size_t)d->n_keys * sizeof *c);
  int n = 0;
  for (int i = 0; i < d->n_keys; i++) {
    size_t l = deck_section_len(d->keys[i].name);
    char *s = ep_malloc(l + 1);
    memcpy(s, d->keys[i].name, l);
    s[l] = '\0';
    c[n++] = s;
  }
  deck_suggest(sec, (const char *const *)c, n, out, cap);
  for (int i = 0; i < n; i++)
    free(c[i]);
  free(c);
}

/* Shortest "%.{15,16,17}g" that reads back to the same double, so 0.8 prints as 0.8
 * and the hash does not depend on how the user spelt the number. */
static void deck_format_double(double x, char *out, size_t cap) {
  for (int p = 15; p <= 17; p++) {
    snprintf(out, cap, "%.*g", p, x);
    if (strtod(out, NULL) == x) break;
  }
  /* Keep a marker that it is real, so the resolved YAML reads back as a float. */
  if (!strpbrk(out, ".eEn")) strncat(out, ".0", cap - strlen(out) - 1);
}

static int deck_parse_bool(const char *s, int *out) {
  static const char *const yes[] = {"true", "yes", "on", "1"};
  static const char *const no[] = {"false", "no", "off", "0"};
  for (int i = 0; i < 4; i++) {
    if (strcasecmp(s, yes[i]) == 0) return *out = 1, 1;
    if (strcasecmp(s, no[i]) == 0) return *out = 0, 1;
  }
  return 0;
}

/* Is `s` one of the '|'-separated words in `choices`? */
static int deck_choice_ok(const char *choices, const char *s) {
  size_t l = strlen(s);
  const char *p = choices;
  while (p && *p) {
    const char *bar = strchr(p, '|');
    size_t wl = bar ? (size_t)(bar - p) : strlen(p);
    if (wl == l && strncmp(p, s, l) == 0) return 1;
    p = bar ? bar + 1 : NULL;
  }
  return 0;
}

static void deck_choice_suggest(const char *choices, const char *s, char *out, size_t cap) {
  char *copy = ep_strdup(choices);
  const char *words[64];
  int n = 0;
  for (char *tok = strtok(copy, "|"); tok && n < 64; tok = strtok(NULL, "|"))
    words[n++] = tok;
  deck_suggest(s, words, n, out, cap);
  free(copy);
}

/* Check `text` against key k and store it normalised. Fatal with `where` on error. */
static void deck_set_value(ep_deck *d, int k, const char *text, const char *where, int line, int set) {
  const ep_deck_key *key = &d->keys[k];
  deck_value *v = &d->vals[k];
  char buf[128], hint[256];
  const char *norm = text;
  int ranged = key->min <= key->max;
  errno = 0;
  switch (key->type) {
  case EP_DECK_STRING:
    break;
  case EP_DECK_INT: {
    char *end = NULL;
    long long x = strtoll(text, &end, 10);
    int ok = *text && end && *end == '\0' && errno == 0;
    if (!ok) {
      /* Accept integral reals such as 1e6 (common for step counts) when exact. */
      errno = 0;
      double r = strtod(text, &end);
      ok = *text && *end == '\0' && errno == 0 && isfinite(r) && r == floor(r) && fabs(r) < 9.0e15;
      x = (long long)r;
    }
    if (!ok) ep_fatal("%s: key '%s' expects an integer, got '%s'", where, key->name, text);
    if (ranged && ((double)x < key->min || (double)x > key->max))
      ep_fatal("%s: key '%s' = %lld is out of range [%.17g, %.17g]", where, key->name, x, key->min, key->max);
    v->i = (int64_t)x;
    v->f = (double)x;
    snprintf(buf, sizeof buf, "%lld", x);
    norm = buf;
    break;
  }
  case EP_DECK_FLOAT: {
    char *end = NULL;
    double x = strtod(text, &end);
    if (!*text || *end != '\0' || errno == ERANGE || !isfinite(x))
      ep_fatal("%s: key '%s' expects a finite real number, got '%s'", where, key->name, text);
    if (ranged && (x < key->min || x > key->max))
      ep_fatal("%s: key '%s' = %.17g is out of range [%.17g, %.17g]", where, key->name, x, key->min,
               key->max);
    v->f = x;
    deck_format_double(x, buf, sizeof buf);
    norm = buf;
    break;
  }
  case EP_DECK_BOOL:
    if (!deck_parse_bool(text, &v->b))
      ep_fatal("%s: key '%s' expects a boolean (true/false/yes/no/on/off/1/0), got '%s'", where, key->name,
               text);
    norm = v->b ? "true" : "false";
    break;
  case EP_DECK_CHOICE:
    EP_CHECK(key->choices, "deck key '%s' is a choice without choices", key->name);
    if (!deck_choice_ok(key->choices, text)) {
      deck_choice_suggest(key->choices, text, hint, sizeof hint);
      ep_fatal("%s: key '%s' must be one of %s, got '%s'%s", where, key->name, key->choices, text, hint);
    }
    break;
  }
  free(v->text);
  v->text = ep_strdup(norm);
  v->set = set;
  v->line = line;
}

/* ---- YAML walking -------------------------------------------------------- */

typedef struct {
  yaml_parser_t parser;
  const char *path;
  char last_key[512]; /* last "section.key" seen, for malformed-YAML messages */
} deck_reader;

static void deck_next(deck_reader *r, yaml_event_t *ev) {
  if (!yaml_parser_parse(&r->parser, ev)) {
    const yaml_parser_t *p = &r->parser;
    char after[600] = "";
    if (r->last_key[0]) snprintf(after, sizeof after, " (after key '%s')", r->last_key);
    ep_fatal("%s:%zu:%zu: malformed YAML: %s%s%s%s", r->path, p->problem_mark.line + 1,
             p->problem_mark.column + 1, p->problem ? p->problem : "parse error", p->context ? " " : "",
             p->context ? p->context : "", after);
  }
}

static int deck_line(const yaml_event_t *ev) {
  return (int)ev->start_mark.line + 1;
}

static const char *deck_event_kind(yaml_event_type_t t) {
  switch (t) {
  case YAML_SEQUENCE_START_EVENT:
    return "a list";
  case YAML_MAPPING_START_EVENT:
    return "a map";
  case YAML_ALIAS_EVENT:
    return "an alias";
  default:
    return "not a scalar";
  }
}

/* Empty plain scalar or "~"/"null": YAML's null. */
static int deck_is_null(const yaml_event_t *ev) {
  if (ev->type != YAML_SCALAR_EVENT || ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return 0;
  const char *s = (const char *)ev->data.scalar.value;
  return s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
         strcmp(s, "NULL") == 0;
}

/* Section lines, for "missing required key" messages. */
typedef struct {
  char name[128];
  int line;
} deck_section_seen;

static void deck_read_file(ep_deck *d, deck_section_seen **secs_out, int *n_secs_out, int *end_line) {
  FILE *f = fopen(d->path, "rb");
  if (!f) ep_fatal("cannot open input deck '%s': %s", d->path, strerror(errno));
  deck_reader r;
  memset(&r, 0, sizeof r);
  r.path = d->path;
  EP_CHECK(yaml_parser_initialize(&r.parser), "libyaml: cannot initialise parser");
  yaml_parser_set_input_file(&r.parser, f);

  deck_section_seen *secs = NULL;
  int n_secs = 0;
  yaml_event_t ev;
  deck_next(&r, &ev); /* STREAM_START */
  yaml_event_delete(&ev);
  deck_next(&r, &ev);
  int docs = 0;
  while (ev.type == YAML_DOCUMENT_START_EVENT) {
    if (++docs > 1)
      ep_fatal("%s:%d: the input deck must be a single YAML document (found a second one)", d->path,
               deck_line(&ev));
    yaml_event_delete(&ev);
    deck_next(&r, &ev);
    if (deck_is_null(&ev)) {
      /* An empty document: no keys given. */
      yaml_event_delete(&ev);
    } else if (ev.type != YAML_MAPPING_START_EVENT) {
      ep_fatal("%s:%d: the input deck must be a map of sections (section: {key: value}), found %s", d->path,
               deck_line(&ev), ev.type == YAML_SCALAR_EVENT ? "a scalar" : deck_event_kind(ev.type));
    } else {
      yaml_event_delete(&ev);
      for (;;) {
        deck_next(&r, &ev);
        if (ev.type == YAML_MAPPING_END_EVENT) break;
        if (ev.type != YAML_SCALAR_EVENT)
          ep_fatal("%s:%d: a section name must be a plain word, found %s", d->path, deck_line(&ev),
                   deck_event_kind(ev.type));
        char sec[128];
        int sec_line = deck_line(&ev);
        if (strlen((const char *)ev.data.scalar.value) >= sizeof sec)
          ep_fatal("%s:%d: section name too long", d->path, sec_line);
        strcpy(sec, (const char *)ev.data.scalar.value);
        yaml_event_delete(&ev);
        if (!deck_has_section(d->keys, d->n_keys, sec)) {
          char hint[256];
          deck_suggest_section(d, sec, hint, sizeof hint);
          /* A key written at the top level, outside its section, is a common slip. */
          for (int k = 0; k < d->n_keys && !hint[0]; k++)
            if (strcmp(d->keys[k].name + deck_section_len(d->keys[k].name) + 1, sec) == 0)
              snprintf(hint, sizeof hint, " (did you mean '%s'? keys go under their section)",
                       d->keys[k].name);
          ep_fatal("%s:%d: unknown section '%s'%s", d->path, sec_line, sec, hint);
        }
        for (int s = 0; s < n_secs; s++)
          if (strcmp(secs[s].name, sec) == 0)
            ep_fatal("%s:%d: duplicate section '%s' (first at line %d)", d->path, sec_line, sec,
                     secs[s].line);
        secs = ep_realloc(secs, (size_t)(n_secs + 1) * sizeof *secs);
        strcpy(secs[n_secs].name, sec);
        secs[n_secs++].line = sec_line;

        deck_next(&r, &ev);
        if (deck_is_null(&ev)) { /* "section:" with nothing under it */
          yaml_event_delete(&ev);
          continue;
        }
        if (ev.type != YAML_MAPPING_START_EVENT)
          ep_fatal("%s:%d: section '%s' must be a map of 'key: value' lines, found %s", d->path,
                   deck_line(&ev), sec, ev.type == YAML_SCALAR_EVENT ? "a scalar" : deck_event_kind(ev.type));
        yaml_event_delete(&ev);
        for (;;) {
          deck_next(&r, &ev);
          if (ev.type == YAML_MAPPING_END_EVENT) break;
          if (ev.type != YAML_SCALAR_EVENT)
            ep_fatal("%s:%d: in section '%s': a key must be a plain word, found %s", d->path, deck_line(&ev),
                     sec, deck_event_kind(ev.type));
          char name[512];
          int line = deck_line(&ev);
          snprintf(name, sizeof name, "%s.%s", sec, (const char *)ev.data.scalar.value);
          snprintf(r.last_key, sizeof r.last_key, "%s", name);
          yaml_event_delete(&ev);
          int k = deck_find(d->keys, d->n_keys, name);
          if (k < 0) {
            char hint[256];
            deck_suggest_key(d, name, hint, sizeof hint);
            ep_fatal("%s:%d: unknown key '%s'%s", d->path, line, name, hint);
          }
          if (d->vals[k].set)
            ep_fatal("%s:%d: duplicate key '%s' (first at line %d)", d->path, line, name, d->vals[k].line);
          deck_next(&r, &ev);
          if (ev.type != YAML_SCALAR_EVENT)
            ep_fatal("%s:%d: key '%s' expects a single value (%s), found %s", d->path, deck_line(&ev), name,
                     deck_type_name(d->keys[k].type), deck_event_kind(ev.type));
          if (deck_is_null(&ev) && d->keys[k].type != EP_DECK_STRING)
            ep_fatal("%s:%d: key '%s' has no value (expects %s)", d->path, line, name,
                     deck_type_name(d->keys[k].type));
          char where[600];
          snprintf(where, sizeof where, "%s:%d", d->path, line);
          const char *val = deck_is_null(&ev) ? "" : (const char *)ev.data.scalar.value;
          deck_set_value(d, k, val, where, line, 1);
          yaml_event_delete(&ev);
        }
        yaml_event_delete(&ev); /* section MAPPING_END */
      }
      yaml_event_delete(&ev); /* top MAPPING_END */
    }
    deck_next(&r, &ev);
    if (ev.type != YAML_DOCUMENT_END_EVENT)
      ep_fatal("%s:%d: unexpected content after the sections", d->path, deck_line(&ev));
    *end_line = deck_line(&ev);
    yaml_event_delete(&ev);
    deck_next(&r, &ev);
  }
  EP_CHECK(ev.type == YAML_STREAM_END_EVENT, "%s: unexpected YAML event %d", d->path, (int)ev.type);
  if (*end_line == 0) *end_line = deck_line(&ev);
  yaml_event_delete(&ev);
  yaml_parser_delete(&r.parser);
  fclose(f);
  *secs_out = secs;
  *n_secs_out = n_secs;
}

static void deck_apply_override(ep_deck *d, const char *ov) {
  const char *eq = strchr(ov, '=');
  if (!eq || eq == ov)
    ep_fatal("-P '%s': an override must be section.key=value (for example -P run.steps=100)", ov);
  size_t nl = (size_t)(eq - ov);
  char *name = ep_malloc(nl + 1);
  memcpy(name, ov, nl);
  name[nl] = '\0';
  int k = deck_find(d->keys, d->n_keys, name);
  if (k < 0) {
    char hint[256];
    deck_suggest_key(d, name, hint, sizeof hint);
    ep_fatal("-P '%s': unknown key '%s'%s", ov, name, hint);
  }
  char where[600];
  snprintf(where, sizeof where, "-P '%s'", ov);
  deck_set_value(d, k, eq + 1, where, 0, 1);
  free(name);
}

ep_deck *deck_load(const char *path, const ep_deck_key *keys, int n_overrides, char **overrides) {
  ep_deck *d = ep_calloc(1, sizeof *d);
  d->keys = keys;
  while (keys[d->n_keys].name)
    d->n_keys++;
  d->vals = ep_calloc((size_t)(d->n_keys ? d->n_keys : 1), sizeof *d->vals);
  d->path = path ? ep_strdup(path) : NULL;
  for (int k = 0; k < d->n_keys; k++) {
    EP_CHECK(strchr(keys[k].name, '.'), "deck key '%s' is not of the form section.key", keys[k].name);
    EP_CHECK(deck_find(keys, k, keys[k].name) < 0, "deck key '%s' declared twice", keys[k].name);
    /* Defaults are checked like user input so a bad table fails in every test. */
    if (keys[k].def) deck_set_value(d, k, keys[k].def, "default", 0, 0);
  }

  deck_section_seen *secs = NULL;
  int n_secs = 0, end_line = 0;
  if (path) deck_read_file(d, &secs, &n_secs, &end_line);
  for (int i = 0; i < n_overrides; i++)
    deck_apply_override(d, overrides[i]);

  for (int k = 0; k < d->n_keys; k++) {
    if (d->vals[k].text) continue;
    const char *name = keys[k].name;
    if (!path) ep_fatal("missing required key '%s' (no input deck given; set it with -P %s=...)", name, name);
    size_t sl = deck_section_len(name);
    int line = end_line;
    for (int s = 0; s < n_secs; s++)
      if (strlen(secs[s].name) == sl && strncmp(secs[s].name, name, sl) == 0) line = secs[s].line;
    ep_fatal("%s:%d: missing required key '%s' (%s: %s)", path, line, name, deck_type_name(keys[k].type),
             keys[k].help ? keys[k].help : "");
  }
  free(secs);
  return d;
}

void deck_free(ep_deck *d) {
  if (!d) return;
  for (int k = 0; k < d->n_keys; k++)
    free(d->vals[k].text);
  free(d->vals);
  free(d->path);
  free(d);
}

static const deck_value *deck_get(const ep_deck *d, const char *name, ep_deck_type want, int strict) {
  int k = deck_find(d->keys, d->n_keys, name);
  EP_CHECK(k >= 0, "internal error: deck key '%s' is not in the key table", name);
  ep_deck_type t = d->keys[k].type;
  int ok = !strict || t == want || (want == EP_DECK_FLOAT && t == EP_DECK_INT);
  EP_CHECK(ok, "internal error: deck key '%s' is a %s, read as a %s", name, deck_type_name(t),
           deck_type_name(want));
  return &d->vals[k];
}

const char *deck_string(const ep_deck *d, const char *name) {
  return deck_get(d, name, EP_DECK_STRING, 0)->text;
}
int64_t deck_int(const ep_deck *d, const char *name) {
  return deck_get(d, name, EP_DECK_INT, 1)->i;
}
double deck_float(const ep_deck *d, const char *name) {
  return deck_get(d, name, EP_DECK_FLOAT, 1)->f;
}
int deck_bool(const ep_deck *d, const char *name) {
  return deck_get(d, name, EP_DECK_BOOL, 1)->b;
}
int deck_is_set(const ep_deck *d, const char *name) {
  return deck_get(d, name, EP_DECK_STRING, 0)->set;
}

/* ---- output -------------------------------------------------------------- */

typedef struct {
  char *s;
  size_t n, cap;
} deck_buf;

static void deck_puts(deck_buf *b, const char *s) {
  size_t l = strlen(s);
  if (b->n + l + 1 > b->cap) {
    b->cap = (b->n + l + 1) * 2;
    b->s = ep_realloc(b->s, b->cap);
  }
  memcpy(b->s + b->n, s, l + 1);
  b->n += l;
}

/* A string value as a double-quoted YAML scalar, so any text reads back unchanged. */
static void deck_put_quoted(deck_buf *b, const char *s) {
  deck_puts(b, "\"");
  char tmp[8];
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') {
      tmp[0] = '\\', tmp[1] = (char)*p, tmp[2] = '\0';
    } else if (*p == '\n') {
      strcpy(tmp, "\\n");
    } else if (*p == '\t') {
      strcpy(tmp, "\\t");
    } else if (*p < 0x20) {
      snprintf(tmp, sizeof tmp, "\\x%02x", *p);
    } else {
      tmp[0] = (char)*p, tmp[1] = '\0';
    }
    deck_puts(b, tmp);
  }
  deck_puts(b, "\"");
}

char *deck_resolved_yaml(const ep_deck *d) {
  deck_buf b = {0};
  deck_puts(&b, ""); /* an empty table still yields a valid, empty string */
  char *done = ep_calloc((size_t)(d->n_keys ? d->n_keys : 1), 1);
  /* Sections in the order they first appear in the table; keys in table order. */
  for (int k0 = 0; k0 < d->n_keys; k0++) {
    if (done[k0]) continue;
    size_t sl = deck_section_len(d->keys[k0].name);
    char sec[256];
    snprintf(sec, sizeof sec, "%.*s:\n", (int)sl, d->keys[k0].name);
    deck_puts(&b, sec);
    for (int k = k0; k < d->n_keys; k++) {
      const char *name = d->keys[k].name;
      if (done[k] || deck_section_len(name) != sl || strncmp(name, d->keys[k0].name, sl) != 0) continue;
      done[k] = 1;
      deck_puts(&b, "  ");
      deck_puts(&b, name + sl + 1);
      deck_puts(&b, ": ");
      if (d->keys[k].type == EP_DECK_STRING)
        deck_put_quoted(&b, d->vals[k].text);
      else
        deck_puts(&b, d->vals[k].text);
      if (!d->vals[k].set) deck_puts(&b, "  # default");
      deck_puts(&b, "\n");
    }
  }
  free(done);
  return b.s;
}

/* FNV-1a 64: fixed constants, independent of platform and library versions. */
static uint64_t deck_fnv1a(uint64_t h, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)s[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

static const ep_deck_key *deck_sort_keys; /* qsort has no context argument in C17 */
static int deck_cmp_qsort(const void *a, const void *b) {
  return strcmp(deck_sort_keys[*(const int *)a].name, deck_sort_keys[*(const int *)b].name);
}

uint64_t deck_hash(const ep_deck *d, const char *const *exclude) {
  /* Hash in name order so reordering the key table does not change the hash. */
  int *idx = ep_malloc((size_t)(d->n_keys ? d->n_keys : 1) * sizeof *idx);
  for (int k = 0; k < d->n_keys; k++)
    idx[k] = k;
  deck_sort_keys = d->keys;
  qsort(idx, (size_t)d->n_keys, sizeof *idx, deck_cmp_qsort);
  uint64_t h = 0xcbf29ce484222325ULL;
  for (int i = 0; i < d->n_keys; i++) {
    const char *name = d->keys[idx[i]].name;
    int skip = 0;
    for (const char *const *e = exclude; e && *e && !skip; e++)
      skip = strncmp(name, *e, strlen(*e)) == 0;
    if (skip) continue;
    const char *v = d->vals[idx[i]].text;
    h = deck_fnv1a(h, name, strlen(name));
    h = deck_fnv1a(h, "=", 1);
    h = deck_fnv1a(h, v, strlen(v));
    h = deck_fnv1a(h, "\n", 1);
  }
  free(idx);
  return h;
}

void deck_print_keys(const ep_deck_key *keys, void *file) {
  FILE *f = file ? file : stdout;
  int w = 0;
  for (int k = 0; keys[k].name; k++)
    if ((int)strlen(keys[k].name) > w) w = (int)strlen(keys[k].name);
  for (int k = 0; keys[k].name; k++) {
    const ep_deck_key *key = &keys[k];
    char type[256], range[128] = "";
    if (key->type == EP_DECK_CHOICE)
      snprintf(type, sizeof type, "%s", key->choices ? key->choices : "?");
    else
      snprintf(type, sizeof type, "%s", deck_type_name(key->type));
    if ((key->type == EP_DECK_INT || key->type == EP_DECK_FLOAT) && key->min <= key->max)
      snprintf(range, sizeof range, " in [%g, %g]", key->min, key->max);
    if (key->def)
      fprintf(f, "  %-*s  %s%s, default %s\n", w, key->name, type, range, *key->def ? key->def : "\"\"");
    else
      fprintf(f, "  %-*s  %s%s, required\n", w, key->name, type, range);
    if (key->help) fprintf(f, "  %-*s    %s\n", w, "", key->help);
  }
}

int deck_collect_overrides(int argc, char **argv, char ***overrides, char ***rest, int *n_rest) {
  char **ov = ep_malloc((size_t)(argc + 1) * sizeof *ov);
  char **re = ep_malloc((size_t)(argc + 1) * sizeof *re);
  int n_ov = 0, n_re = 0;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "-P") == 0 || strcmp(a, "--set") == 0) {
      if (i + 1 >= argc) ep_fatal("%s needs an argument section.key=value", a);
      ov[n_ov++] = argv[++i];
    } else if (strncmp(a, "-P", 2) == 0) {
      ov[n_ov++] = argv[i] + 2;
    } else if (strncmp(a, "--set=", 6) == 0) {
      ov[n_ov++] = argv[i] + 6;
    } else {
      re[n_re++] = argv[i];
    }
  }
  ov[n_ov] = NULL;
  re[n_re] = NULL;
  *overrides = ov;
  if (rest)
    *rest = re;
  else
    free(re);
  if (n_rest) *n_rest = n_re;
  return n_ov;
}
