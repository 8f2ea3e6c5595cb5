/* deck_test_keys.h — the key table shared by the deck test and its helper program. */
#pragma once

#include "edgeprune/deck.h"

static const ep_deck_key deck_test_keys[] = {
    {"run.steps", EP_DECK_INT, "100", 1, 1e9, NULL, "optimisation steps"},
    {"run.lr", EP_DECK_FLOAT, "0.8", 0, 10, NULL, "learning rate"},
    {"run.name", EP_DECK_STRING, "demo", 1, 0, NULL, "run label"},
    {"run.verbose", EP_DECK_BOOL, "false", 1, 0, NULL, "chatty output"},
    {"run.schedule", EP_DECK_CHOICE, "linear", 1, 0, "linear|cosine|constant", "LR schedule"},
    {"model.path", EP_DECK_STRING, NULL, 1, 0, NULL, "model file"},
    {"model.layers", EP_DECK_INT, NULL, 1, 96, NULL, "number of layers"},
    {"prune.target_edge_sparsity", EP_DECK_FLOAT, "0.98", 0, 1.1, NULL, "edge sparsity target"},
    {NULL, 0, NULL, 0, 0, NULL, NULL},
};
