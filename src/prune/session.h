/* session.h — what prune, eval and step-dump share: argument parsing around the input
 * deck, the resolved configuration, the model and the dataset splits. */
#pragma once

#include "edgeprune/circuit.h"
#include "edgeprune/cli.h"
#include "edgeprune/dataset.h"
#include "edgeprune/deck.h"
#include "edgeprune/model.h"
#include "edgeprune/train.h"

typedef struct {
  const char *deck_path;
  ep_deck *deck;
  ep_prune_config c;
  ep_model m;
  char **ov, **rest;
  int n_rest;
} ep_session;

/* Parse "DECK.yml [-P k=v ...] [--flag VALUE ...]": flags[i] (NULL-terminated list of
 * "--name") get their values in values[i] (NULL when absent). Returns 0, or the exit
 * status of a usage error (printed). On 0 the deck is loaded and resolved. */
int session_parse(const ep_command *cmd, int argc, char **argv, const char *const *flags, const char **values,
                  ep_session *s);
/* Print the resolved deck (rank 0) and load the model. */
void session_load_model(ep_session *s);
/* Read a split, checked against the model; returns 0 when optional and absent. */
int session_read_split(ep_session *s, const char *split, int optional, ep_dataset *d);
/* Record the run in a circuit: the model's one-line summary and the resolved deck text. */
void session_describe_circuit(const ep_session *s, ep_circuit *circ);
void session_free(ep_session *s);
