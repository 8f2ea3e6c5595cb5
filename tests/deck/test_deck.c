/* test_deck.c — the input deck: values, defaults, overrides, resolved text, hash, and
 * every error path. Errors are fatal, so they are checked by running deck_tool (argv[1])
 * on small YAML files in a temporary directory and reading its exit status and stderr. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deck_test_keys.h"
#include "edgeprune/core.h"
#include "test_util.h"

static char tmpdir[256];
static const char *tool;

static char *write_deck(const char *name, const char *text) {
  char *p = ep_path_join(tmpdir, name);
  FILE *f = fopen(p, "w");
  if (!f) {
    perror(p);
    exit(2);
  }
  fputs(text, f);
  fclose(f);
  return p;
}

/* Run deck_tool on `text` (written to `name`) with extra args; expect failure whose
 * message names the file, "file:line" and the key. */
static void expect_error(const char *name, const char *text, const char *args, int line, const char *key,
                         const char *also) {
  char *p = write_deck(name, text);
  char cmd[2048], out[8192], fl[600];
  snprintf(cmd, sizeof cmd, "'%s' '%s' %s 2>&1 >/dev/null", tool, p, args ? args : "");
  int rc = t_run_capture(cmd, out, sizeof out);
  T_CHECK(rc == 1, "%s: exit status %d (expected 1); output: %s", name, rc, out);
  snprintf(fl, sizeof fl, "%s:%d", p, line);
  T_CHECK(strstr(out, fl) != NULL, "%s: message lacks '%s': %s", name, fl, out);
  T_CHECK(strstr(out, key) != NULL, "%s: message lacks key '%s': %s", name, key, out);
  if (also) T_CHECK(strstr(out, also) != NULL, "%s: message lacks '%s': %s", name, also, out);
  free(p);
}

/* An override error: no file line, but the -P argument and the key. */
static void expect_override_error(const char *args, const char *key, const char *also) {
  char *p = write_deck("ok_for_override.yml", "model:\n  path: m.h5\n  layers: 2\n");
  char cmd[2048], out[8192];
  snprintf(cmd, sizeof cmd, "'%s' '%s' %s 2>&1 >/dev/null", tool, p, args);
  int rc = t_run_capture(cmd, out, sizeof out);
  T_CHECK(rc == 1, "override %s: exit status %d; output: %s", args, rc, out);
  T_CHECK(strstr(out, "-P") != NULL, "override %s: message lacks -P: %s", args, out);
  T_CHECK(strstr(out, key) != NULL, "override %s: message lacks key '%s': %s", args, key, out);
  if (also) T_CHECK(strstr(out, also) != NULL, "override %s: lacks '%s': %s", args, also, out);
  free(p);
}

static void test_values(void) {
  char *p = write_deck("good.yml", "# a comment\n"
                                   "run:\n"
                                   "  steps: 250\n"
                                   "  lr: 8e-1\n"
                                   "  verbose: yes\n"
                                   "  name: \"a: b # not a comment\"\n"
                                   "model:\n"
                                   "  path: /data/m.h5\n"
                                   "  layers: 12\n"
                                   "prune:\n");
  char *ov[] = {"run.schedule=cosine", "run.steps=300"};
  ep_deck *d = deck_load(p, deck_test_keys, 2, ov);
  T_CHECK(deck_int(d, "run.steps") == 300, "override beats file: %lld", (long long)deck_int(d, "run.steps"));
  T_CLOSE(deck_float(d, "run.lr"), 0.8, 0, 0, "run.lr");
  T_CHECK(deck_bool(d, "run.verbose") == 1, "run.verbose");
  T_CHECK(strcmp(deck_string(d, "run.name"), "a: b # not a comment") == 0, "run.name '%s'",
          deck_string(d, "run.name"));
  T_CHECK(strcmp(deck_string(d, "run.schedule"), "cosine") == 0, "run.schedule");
  T_CHECK(strcmp(deck_string(d, "model.path"), "/data/m.h5") == 0, "model.path");
  T_CHECK(deck_int(d, "model.layers") == 12, "model.layers");
  T_CLOSE(deck_float(d, "model.layers"), 12.0, 0, 0, "int read as float");
  T_CLOSE(deck_float(d, "prune.target_edge_sparsity"), 0.98, 0, 0, "default float");
  T_CHECK(deck_is_set(d, "run.lr") && deck_is_set(d, "run.schedule"), "set flags");
  T_CHECK(!deck_is_set(d, "prune.target_edge_sparsity"), "defaulted key reported as set");

  char *y = deck_resolved_yaml(d);
  T_CHECK(strstr(y, "  lr: 0.8\n") != NULL, "normalised float in resolved deck:\n%s", y);
  T_CHECK(strstr(y, "  steps: 300\n") != NULL, "override in resolved deck:\n%s", y);
  T_CHECK(strstr(y, "  target_edge_sparsity: 0.98  # default\n") != NULL, "default marked:\n%s", y);
  T_CHECK(strstr(y, "  layers: 12\n") != NULL, "set key not marked default:\n%s", y);
  T_CHECK(strstr(y, "  verbose: true\n") != NULL, "bool normalised:\n%s", y);
  int n_default = 0;
  for (const char *q = y; (q = strstr(q, "# default")); q++)
    n_default++;
  T_CHECK(n_default == 1, "exactly one defaulted key, found %d:\n%s", n_default, y);
  T_CHECK(strstr(y, "run:\n") < strstr(y, "model:\n") && strstr(y, "model:\n") < strstr(y, "prune:\n"),
          "sections in table order:\n%s", y);

  /* The resolved text is itself a valid deck with the same values and hash. */
  char *p2 = write_deck("resolved.yml", y);
  ep_deck *d2 = deck_load(p2, deck_test_keys, 0, NULL);
  T_CHECK(deck_hash(d2, NULL) == deck_hash(d, NULL), "hash of re-read resolved deck differs");
  T_CHECK(strcmp(deck_string(d2, "run.name"), "a: b # not a comment") == 0, "quoted string round trip '%s'",
          deck_string(d2, "run.name"));

  /* The hash sees values, ignores spelling, and honours exclusions. */
  char *ov3[] = {"run.name=other", "run.schedule=cosine", "run.steps=300", "run.lr=0.80"};
  ep_deck *d3 = deck_load(p, deck_test_keys, 4, ov3);
  T_CHECK(deck_hash(d3, NULL) != deck_hash(d, NULL), "hash ignores run.name");
  const char *excl[] = {"run.name", NULL};
  T_CHECK(deck_hash(d3, excl) == deck_hash(d, excl), "hash with run.name excluded differs");
  const char *excl_run[] = {"run.", NULL};
  char *ov4[] = {"run.steps=7", "run.lr=0.8", "run.verbose=0"};
  ep_deck *d4 = deck_load(p, deck_test_keys, 3, ov4);
  T_CHECK(deck_hash(d4, excl_run) == deck_hash(d, excl_run), "prefix exclusion of run.*");
  T_CHECK(deck_hash(d4, NULL) != deck_hash(d, NULL), "hash sees run.steps");

  free(y);
  deck_free(d);
  deck_free(d2);
  deck_free(d3);
  deck_free(d4);
  free(p);
  free(p2);
}

static void test_defaults_only_and_collect(void) {
  /* No file: required keys from -P, every other key from its default. */
  char *argv[] = {"prune",           "-P",    "model.path=x.h5", "deck.yml", "-Pmodel.layers=3", "--set",
                  "run.verbose=off", "--keep"};
  char **ov = NULL, **rest = NULL;
  int n_rest = 0;
  int n = deck_collect_overrides(8, argv, &ov, &rest, &n_rest);
  T_CHECK(n == 3, "collected %d overrides", n);
  T_CHECK(n == 3 && strcmp(ov[1], "model.layers=3") == 0, "-Pkey=value form");
  T_CHECK(n_rest == 3 && strcmp(rest[0], "prune") == 0 && strcmp(rest[1], "deck.yml") == 0 &&
              strcmp(rest[2], "--keep") == 0,
          "rest in order (%d)", n_rest);
  ep_deck *d = deck_load(NULL, deck_test_keys, n, ov);
  T_CHECK(deck_int(d, "run.steps") == 100, "default int");
  T_CHECK(strcmp(deck_string(d, "run.name"), "demo") == 0, "default string");
  T_CHECK(strcmp(deck_string(d, "run.schedule"), "linear") == 0, "default choice");
  T_CHECK(deck_int(d, "model.layers") == 3 && deck_bool(d, "run.verbose") == 0, "override values");
  deck_free(d);
  free(ov);
  free(rest);

  /* An empty file is a valid deck when overrides supply the required keys. */
  char *p = write_deck("empty.yml", "# nothing here\n");
  char *ov2[] = {"model.path=a", "model.layers=1e1"};
  d = deck_load(p, deck_test_keys, 2, ov2);
  T_CHECK(deck_int(d, "model.layers") == 10, "integral real accepted for an int: %lld",
          (long long)deck_int(d, "model.layers"));
  deck_free(d);
  free(p);

  /* --help table mentions every key, its type and default. */
  char buf[4096] = {0};
  FILE *f = fmemopen(buf, sizeof buf - 1, "w");
  deck_print_keys(deck_test_keys, f);
  fclose(f);
  T_CHECK(strstr(buf, "prune.target_edge_sparsity") && strstr(buf, "linear|cosine|constant") &&
              strstr(buf, "required") && strstr(buf, "default 0.98") && strstr(buf, "[1, 96]"),
          "print_keys output:\n%s", buf);
}

static void test_errors(void) {
  const char *ok_model = "model:\n  path: m.h5\n  layers: 2\n";
  char text[1024];
  expect_error("misspelt.yml", "run:\n  stpes: 5\nmodel:\n  path: a\n  layers: 2\n", NULL, 2, "run.stpes",
               "did you mean 'run.steps'");
  expect_error("wrongsec_key.yml", "model:\n  path: a\n  layers: 2\n  steps: 3\n", NULL, 4, "model.steps",
               "unknown key");
  expect_error("toplevel_key.yml", "model:\n  path: a\n  layers: 2\nsteps: 5\n", NULL, 4, "steps",
               "did you mean 'run.steps'");
  expect_error("unknown_section.yml", "runn:\n  steps: 5\n", NULL, 1, "runn", "did you mean 'run'");
  snprintf(text, sizeof text, "%srun:\n  steps: ten\n", ok_model);
  expect_error("bad_int.yml", text, NULL, 5, "run.steps", "integer");
  snprintf(text, sizeof text, "%srun:\n  steps: 1.5\n", ok_model);
  expect_error("frac_int.yml", text, NULL, 5, "run.steps", "integer");
  snprintf(text, sizeof text, "%srun:\n  lr: fast\n", ok_model);
  expect_error("bad_float.yml", text, NULL, 5, "run.lr", "real number");
  snprintf(text, sizeof text, "%srun:\n  lr: .nan\n", ok_model);
  expect_error("nan_float.yml", text, NULL, 5, "run.lr", "real number");
  snprintf(text, sizeof text, "%srun:\n  verbose: maybe\n", ok_model);
  expect_error("bad_bool.yml", text, NULL, 5, "run.verbose", "boolean");
  snprintf(text, sizeof text, "%srun:\n  schedule: cosin\n", ok_model);
  expect_error("bad_choice.yml", text, NULL, 5, "run.schedule", "did you mean 'cosine'");
  expect_error("range_int.yml", "model:\n  path: a\n  layers: 200\n", NULL, 3, "model.layers",
               "out of range");
  snprintf(text, sizeof text, "%sprune:\n  target_edge_sparsity: 1.5\n", ok_model);
  expect_error("range_float.yml", text, NULL, 5, "prune.target_edge_sparsity", "out of range");
  expect_error("missing.yml", "run:\n  steps: 3\nmodel:\n  path: a\n", NULL, 3, "model.layers", "missing");
  expect_error("missing_sec.yml", "run:\n  steps: 3\n", NULL, 3, "model.path", "missing");
  expect_error("dup_key.yml", "model:\n  path: a\n  layers: 2\n  path: b\n", NULL, 4, "model.path",
               "first at line 2");
  expect_error("dup_sec.yml", "model:\n  path: a\nrun:\n  steps: 2\nmodel:\n  layers: 2\n", NULL, 5, "model",
               "duplicate section");
  expect_error("list_value.yml", "model:\n  path: [a, b]\n  layers: 2\n", NULL, 2, "model.path", "a list");
  expect_error("map_value.yml", "model:\n  path:\n    x: 1\n  layers: 2\n", NULL, 3, "model.path", "a map");
  expect_error("scalar_section.yml", "model: 3\n", NULL, 1, "model", "must be a map");
  expect_error("null_int.yml", "model:\n  path: a\n  layers:\n", NULL, 3, "model.layers", "no value");
  expect_error("malformed.yml", "model:\n  path: a\n  layers: 2: 3\n", NULL, 3, "model.layers",
               "malformed YAML");
  expect_error("unclosed.yml", "model:\n  layers: 2\n  path: \"abc\n", NULL, 4, "model.path",
               "malformed YAML");
  expect_error("tab.yml", "model:\n  path: a\n\tlayers: 2\n", NULL, 3, "model.path", "malformed YAML");
  expect_error("alias.yml", "model:\n  path: &x a\n  layers: *x\n", NULL, 3, "model.layers", "alias");
  expect_error("toplist.yml", "- a\n- b\n", NULL, 1, "map of sections", NULL);

  expect_override_error("-P model.layers", "model.layers", "section.key=value");
  expect_override_error("-P model.layer=3", "model.layer", "did you mean 'model.layers'");
  expect_override_error("-Pmodel.layers=x", "model.layers", "integer");
  expect_override_error("-P run.lr=-1", "run.lr", "out of range");

  /* -P at the end of the command line, with nothing after it. */
  char cmd0[1024], out0[4096];
  snprintf(cmd0, sizeof cmd0, "'%s' - -P 2>&1", tool);
  int rc0 = t_run_capture(cmd0, out0, sizeof out0);
  T_CHECK(rc0 == 1 && strstr(out0, "-P needs"), "dangling -P: rc %d: %s", rc0, out0);

  /* A missing file names the file. */
  char cmd[1024], out[4096];
  snprintf(cmd, sizeof cmd, "'%s' '%s/nope.yml' 2>&1", tool, tmpdir);
  int rc = t_run_capture(cmd, out, sizeof out);
  T_CHECK(rc == 1 && strstr(out, "nope.yml"), "missing file: rc %d: %s", rc, out);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: test_deck PATH_TO_deck_tool\n");
    return 2;
  }
  tool = argv[1];
  snprintf(tmpdir, sizeof tmpdir, "%s/ep_deck_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (!mkdtemp(tmpdir)) {
    perror("mkdtemp");
    return 2;
  }
  test_values();
  test_defaults_only_and_collect();
  test_errors();
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (t_failed == 0 && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
  return t_done();
}
