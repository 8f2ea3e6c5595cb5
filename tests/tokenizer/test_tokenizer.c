/* test_tokenizer.c — GPT-2 BPE against golden ids and hand-checked facts.
 *
 *   test_tokenizer basic  TOKDIR CASES.json            always-on checks
 *   test_tokenizer golden TOKDIR CASES.json EXPECTED.json
 * The golden mode compares every case with the ids of the reference GPT2Tokenizer
 * (tools/make_tokenizer_vectors.py); it skips (77) when EXPECTED.json is absent. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgeprune/core.h"
#include "edgeprune/tokenizer.h"
#include "test_util.h"

static cJSON *load_json(const char *path) {
  size_t len;
  char *text = ep_read_file(path, &len);
  cJSON *j = cJSON_ParseWithLength(text, len);
  free(text);
  EP_CHECK(j && cJSON_IsArray(j), "%s: expected a JSON list", path);
  return j;
}

static int ids_equal(const ep_tokenizer *t, const char *s, const int32_t *want, size_t n_want) {
  int32_t *ids;
  size_t n = tokenizer_encode(t, s, strlen(s), &ids);
  int ok = n == n_want && (n == 0 || !memcmp(ids, want, n * sizeof *ids));
  free(ids);
  return ok;
}

static void print_ids(const char *what, const int32_t *ids, size_t n) {
  fprintf(stderr, "  %s:", what);
  for (size_t i = 0; i < n; i++)
    fprintf(stderr, " %d", ids[i]);
  fprintf(stderr, "\n");
}

static void check_basic(const ep_tokenizer *t, cJSON *cases) {
  T_CHECK(tokenizer_vocab_size(t) == 50257, "vocab size %d", tokenizer_vocab_size(t));
  T_CHECK(tokenizer_eot_id(t) == 50256, "eot id %d", tokenizer_eot_id(t));
  T_CHECK(ids_equal(t, "Hello world", (int32_t[]){15496, 995}, 2), "Hello world -> 15496 995");
  T_CHECK(ids_equal(t, "<|endoftext|>", (int32_t[]){50256}, 1), "<|endoftext|> -> 50256");
  T_CHECK(ids_equal(t, "", NULL, 0), "empty string -> no ids");
  /* Ids below were read off vocab.json by hand ("Ġ" is the space byte, "Ċ" the newline). */
  T_CHECK(tokenizer_token_id(t, "Ġthe") == 262, "Ġthe is 262");
  T_CHECK(tokenizer_token_id(t, "!") == 0, "! is 0");
  T_CHECK(tokenizer_token_id(t, "<|endoftext|>") == 50256, "token_id of <|endoftext|>");
  T_CHECK(tokenizer_token_id(t, "no-such-token-xyz") == -1, "unknown token -> -1");
  T_CHECK(ids_equal(t, " the", (int32_t[]){262}, 1), "' the' -> 262");
  T_CHECK(ids_equal(t, "\n", (int32_t[]){198}, 1), "newline -> 198 (Ċ)");
  T_CHECK(ids_equal(t, " ", (int32_t[]){220}, 1), "space -> 220 (Ġ)");
  T_CHECK(ids_equal(t, "it's", (int32_t[]){270, 338}, 2), "it's -> it + 's");
  T_CHECK(ids_equal(t, " Mary and John", (int32_t[]){5335, 290, 1757}, 3), "' Mary and John'");
  /* three spaces before a word: "  " then " word" (\s+(?!\S) leaves one space) */
  T_CHECK(ids_equal(t, "a   b", (int32_t[]){64, 220, 220, 275}, 4), "a   b");
  T_CHECK(ids_equal(t, "Hello<|endoftext|>world", (int32_t[]){15496, 50256, 6894}, 3),
          "special token splits the text");
  size_t len;
  const char *b = tokenizer_token_bytes(t, 262, &len);
  T_CHECK(len == 4 && !memcmp(b, " the", 4), "bytes of 262 are ' the'");

  /* decode(encode(s)) == s for every case */
  int n_bad = 0;
  const cJSON *c;
  cJSON_ArrayForEach(c, cases) {
    const char *s = cJSON_GetStringValue(c);
    EP_CHECK(s, "cases must be strings");
    int32_t *ids;
    size_t n = tokenizer_encode(t, s, strlen(s), &ids);
    char *back = tokenizer_decode(t, ids, n);
    if (strcmp(back, s)) {
      if (n_bad++ < 5) fprintf(stderr, "round trip failed for \"%s\" -> \"%s\"\n", s, back);
    }
    free(back);
    free(ids);
  }
  T_CHECK(n_bad == 0, "decode(encode(s)) == s failed for %d of %d cases", n_bad, cJSON_GetArraySize(cases));
}

static void check_golden(const ep_tokenizer *t, cJSON *cases, cJSON *expect) {
  int n = cJSON_GetArraySize(cases);
  T_CHECK(cJSON_GetArraySize(expect) == n, "expected.json has %d lists for %d cases",
          cJSON_GetArraySize(expect), n);
  if (cJSON_GetArraySize(expect) != n) return;
  int n_bad = 0;
  for (int i = 0; i < n; i++) {
    const char *s = cJSON_GetStringValue(cJSON_GetArrayItem(cases, i));
    const cJSON *e = cJSON_GetArrayItem(expect, i);
    int m = cJSON_GetArraySize(e);
    int32_t *want = ep_malloc(((size_t)m + 1) * sizeof *want);
    for (int k = 0; k < m; k++)
      want[k] = (int32_t)cJSON_GetArrayItem(e, k)->valuedouble;
    if (!ids_equal(t, s, want, (size_t)m)) {
      if (n_bad++ < 10) {
        int32_t *ids;
        size_t got = tokenizer_encode(t, s, strlen(s), &ids);
        fprintf(stderr, "case %d \"%s\":\n", i, s);
        print_ids("got", ids, got);
        print_ids("expected", want, (size_t)m);
        free(ids);
      }
    }
    free(want);
  }
  T_CHECK(n_bad == 0, "%d of %d cases differ from the reference tokenizer", n_bad, n);
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: test_tokenizer basic|golden TOKDIR CASES.json [EXPECTED.json]\n");
    return 2;
  }
  if (!strcmp(argv[1], "golden")) {
    FILE *f = argc > 4 ? fopen(argv[4], "r") : NULL;
    if (!f) {
      printf("SKIP: %s not present (run tools/make_tokenizer_vectors.py on a GPU node)\n",
             argc > 4 ? argv[4] : "expected.json");
      return 77;
    }
    fclose(f);
  }
  ep_tokenizer *t = tokenizer_load(argv[2]);
  cJSON *cases = load_json(argv[3]);
  if (!strcmp(argv[1], "golden")) {
    cJSON *expect = load_json(argv[4]);
    check_golden(t, cases, expect);
    cJSON_Delete(expect);
  } else {
    check_basic(t, cases);
  }
  cJSON_Delete(cases);
  tokenizer_free(t);
  return t_done();
}
