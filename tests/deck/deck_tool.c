/* deck_tool.c — load a deck with the test key table and print what was resolved.
 * Usage: deck_tool FILE|- [-P section.key=value ...]. Errors are fatal (exit 1),
 * which is what test_deck checks from the outside. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deck_test_keys.h"

int main(int argc, char **argv) {
  char **ov = NULL, **rest = NULL;
  int n_rest = 0;
  int n_ov = deck_collect_overrides(argc - 1, argv + 1, &ov, &rest, &n_rest);
  const char *path = (n_rest > 0 && strcmp(rest[0], "-") != 0) ? rest[0] : NULL;
  ep_deck *d = deck_load(path, deck_test_keys, n_ov, ov);
  char *y = deck_resolved_yaml(d);
  fputs(y, stdout);
  printf("hash=%016" PRIx64 "\n", deck_hash(d, NULL));
  free(y);
  deck_free(d);
  free(ov);
  free(rest);
  return 0;
}
