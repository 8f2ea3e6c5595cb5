/* deck.h — the input deck: a YAML file of `section: {key: value}` maps.
 *
 * A command declares the keys it accepts in a table of ep_deck_key (name
 * "section.key", type, default or required, range, one-line description). deck_load
 * parses the YAML with libyaml, applies `-P section.key=value` overrides, and rejects
 * with file and line: unknown or misspelt keys (suggesting the closest known one),
 * values of the wrong type, values out of range, missing required keys, and duplicate
 * keys. The resolved deck (every key, defaults filled in) is printed by rank 0 at the
 * start of a run and stored in every HDF5 output. All ranks parse the same file. */
#pragma once

#include <stdint.h>

typedef enum {
  EP_DECK_STRING = 0, /* any scalar */
  EP_DECK_INT = 1,    /* integer (int64) */
  EP_DECK_FLOAT = 2,  /* real number (double) */
  EP_DECK_BOOL = 3,   /* true/false/yes/no/on/off/1/0 */
  EP_DECK_CHOICE = 4  /* one of the words in `choices` ("a|b|c") */
} ep_deck_type;

typedef struct {
  const char *name;        /* "section.key" */
  ep_deck_type type;
  const char *def;         /* default as text; NULL = required */
  double min, max;         /* inclusive range for INT/FLOAT (ignored when min > max) */
  const char *choices;     /* for EP_DECK_CHOICE: "linear|log" */
  const char *help;        /* one line, shown by --help and in the resolved deck */
} ep_deck_key;

typedef struct ep_deck ep_deck;

/* Parse `path` (may be NULL for "defaults + overrides only") against the key table
 * (terminated by an entry with name == NULL). overrides are "section.key=value"
 * strings from -P. Any error is fatal with file:line and the key. */
ep_deck *deck_load(const char *path, const ep_deck_key *keys, int n_overrides, char **overrides);
void deck_free(ep_deck *d);

/* Typed getters; asking for a key not in the table is an internal error (fatal). */
const char *deck_string(const ep_deck *d, const char *name);
int64_t deck_int(const ep_deck *d, const char *name);
double deck_float(const ep_deck *d, const char *name);
int deck_bool(const ep_deck *d, const char *name);
/* 1 when the key was given in the file or by -P (not defaulted). */
int deck_is_set(const ep_deck *d, const char *name);

/* The resolved deck as YAML text (sections in table order, every key, one comment
 * marking defaults). Caller frees. */
char *deck_resolved_yaml(const ep_deck *d);
/* A stable 64-bit hash of the resolved values of the keys whose name does not start
 * with one of the prefixes in `exclude` (NULL-terminated list, may be NULL). Used to
 * check that a checkpoint belongs to the same configuration. */
uint64_t deck_hash(const ep_deck *d, const char *const *exclude);
/* Print the key table (name, type, default, range, help) for a command's --help. */
void deck_print_keys(const ep_deck_key *keys, void *file /* FILE* */);

/* Collect "-P section.key=value" / "-Psection.key=value" / "--set section.key=value"
 * arguments of argv into a new array (caller frees the array, not the strings) and
 * return their count; other arguments are left for the caller, in order, in rest/n_rest. */
int deck_collect_overrides(int argc, char **argv, char ***overrides, char ***rest, int *n_rest);
