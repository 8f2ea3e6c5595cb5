/* naive_ref.h — an independent forward pass for tests: one sequence at a time, plain
 * loops in double precision, no BLAS, no padding logic (a sequence is run at its own
 * length). Written from the model definitions, not from forward.c. */
#pragma once

#include <stdint.h>

#include "edgeprune/model.h"

/* One sequence tokens[n]: logits [n, V_out] and, when resid is not NULL, the final
 * residual stream [n, D] (before the final norm). */
void naive_forward(const ep_model *m, const int32_t *tokens, int n, double *logits, double *resid);
