/* session.c — see session.h. */
#include "session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgeprune/core.h"
#include "edgeprune/h5io.h"
#include "edgeprune/model_io.h"

int session_parse(const ep_command *cmd, int argc, char **argv, const char *const *flags, const char **values,
                  ep_session *s) {
  memset(s, 0, sizeof *s);
  int n_ov = deck_collect_overrides(argc - 1, argv + 1, &s->ov, &s->rest, &s->n_rest);
  for (int k = 0; flags && flags[k]; k++)
    values[k] = NULL;
  for (int i = 0; i < s->n_rest; i++) {
    int matched = 0;
    for (int k = 0; flags && flags[k] && !matched; k++) {
      const char *v = cli_option(s->n_rest, s->rest, &i, flags[k]);
      if (v) {
        values[k] = v;
        matched = 1;
      }
    }
    if (matched) continue;
    if (s->rest[i][0] == '-') return cli_usage_error(cmd, "unknown option '%s'", s->rest[i]);
    if (s->deck_path)
      return cli_usage_error(cmd, "one input deck expected, got '%s' and '%s'", s->deck_path, s->rest[i]);
    s->deck_path = s->rest[i];
  }
  if (!s->deck_path) return cli_usage_error(cmd, "an input deck (DECK.yml) is required");
  s->deck = deck_load(s->deck_path, prune_deck_keys, n_ov, s->ov);
  prune_config_from_deck(&s->c, s->deck, s->deck_path);
  return 0;
}

void session_load_model(ep_session *s) {
  if (ep_rank == 0) {
    char *y = deck_resolved_yaml(s->deck);
    printf("# resolved input deck (%s)\n%s", s->deck_path, y);
    fflush(stdout);
    free(y);
  }
  /* rank 0 reads, every other rank gets the weights by broadcast */
  model_load_bcast(&s->m, s->c.model_path, MPI_COMM_WORLD);
}

void session_describe_circuit(const ep_session *s, ep_circuit *circ) {
  char summary[256];
  circuit_model_summary(&s->m.cfg, summary, sizeof summary);
  char *yaml = deck_resolved_yaml(s->deck);
  circuit_set_text(circ, summary, yaml);
  free(yaml);
}

int session_read_split(ep_session *s, const char *split, int optional, ep_dataset *d) {
  const char *path = s->c.data_path;
  if (optional) {
    if (!split[0]) return 0;
    hid_t f = h5io_open_read(path);
    int there = h5io_exists(f, split);
    h5io_close(f);
    if (!there) {
      ep_warn("%s has no split '%s' (data.val_split): validation skipped", path, split);
      return 0;
    }
  }
  dataset_read(d, path, split);
  prune_check_dataset(d, &s->m.cfg, path, split);
  return 1;
}

void session_free(ep_session *s) {
  if (s->m.mem) model_free(&s->m);
  if (s->deck) deck_free(s->deck);
  free(s->ov);
  free(s->rest);
  memset(s, 0, sizeof *s);
}
