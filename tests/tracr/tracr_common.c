/* tracr_common.c — see tracr_common.h. */
#include "tracr_common.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgeprune/core.h"
#include "edgeprune/model_io.h"

static int token_id(const ep_model_tokens *tok, const char *name, const char *path) {
  for (int i = 0; i < tok->n_in; i++)
    if (!strcmp(tok->in[i], name)) return i;
  ep_fatal("%s: the vocabulary has no token '%s'", path, name);
}

void tracr_task_init(tracr_task *t, const char *task, const char *config_path, ep_precision prec) {
  memset(t, 0, sizeof *t);
  if (!strcmp(task, "reverse"))
    t->xprop = 0;
  else if (!strcmp(task, "xproportion"))
    t->xprop = 1;
  else
    ep_fatal("unknown Tracr task '%s' (reverse, xproportion)", task);
  model_load(&t->m, config_path);
  EP_CHECK(!strcmp(t->m.cfg.arch, "tracr"), "%s: not a Tracr model", config_path);
  graph_init(&t->g, &t->m.cfg, 1);
  ep_model_tokens tok;
  model_load_tokens(&tok, config_path);
  static const char *const rev_sym[] = {"1", "2", "3"}, *const xp_sym[] = {"a", "b", "c", "x"};
  t->L = t->xprop ? 4 : 3;
  t->n_sym = t->xprop ? 4 : 3;
  for (int s = 0; s < t->n_sym; s++) {
    const char *name = t->xprop ? xp_sym[s] : rev_sym[s];
    t->sym_id[s] = token_id(&tok, name, config_path);
    t->out_of_sym[s] = -1;
    for (int o = 0; o < tok.n_out; o++)
      if (!strcmp(tok.out[o], name)) t->out_of_sym[s] = o;
    if (!t->xprop && t->out_of_sym[s] < 0) ep_fatal("%s: no output row named '%s'", config_path, name);
  }
  model_tokens_free(&tok);
  EP_CHECK(t->m.cfg.bos_token >= 0, "%s: the model has no BOS token", config_path);
  EP_CHECK(t->xprop ? t->m.cfg.output == EP_OUTPUT_NUMERIC : t->m.cfg.output == EP_OUTPUT_LOGITS,
           "%s: unexpected output kind for task %s", config_path, task);

  t->T = t->L + 1;
  t->B = 1;
  for (int i = 0; i < t->L; i++)
    t->B *= t->n_sym;
  t->tokens = ep_malloc((size_t)t->B * t->T * sizeof *t->tokens);
  t->length = ep_malloc((size_t)t->B * sizeof *t->length);
  t->loss_start = ep_malloc((size_t)t->B * sizeof *t->loss_start);
  t->loss_end = ep_malloc((size_t)t->B * sizeof *t->loss_end);
  for (int b = 0; b < t->B; b++) { /* input b: base-n_sym digits, t1 most significant */
    t->tokens[(size_t)b * t->T] = t->m.cfg.bos_token;
    for (int i = 0, x = b; i < t->L; i++, x /= t->n_sym)
      t->tokens[(size_t)b * t->T + t->L - i] = t->sym_id[x % t->n_sym];
    t->length[b] = t->T;
    t->loss_start[b] = 1;
    t->loss_end[b] = t->T;
  }
  t->P = (int64_t)t->B * t->L;
  t->Vo = t->m.cfg.vocab_out;

  t->be = backend_cpu();
  ep_engine_opts o = {t->xprop ? EP_LOSS_POSITION_KL : EP_LOSS_KL_SUM, EP_ABLATE_ZERO, 0, prec};
  t->ws = t->be->create(&t->m, &t->g, &o, t->B, t->T);
  ep_batch batch = {t->B, t->T, t->tokens, t->tokens, t->length, t->loss_start, t->loss_end};
  int64_t P = t->be->prepare(t->ws, &batch, NULL);
  EP_CHECK(P == t->P, "prepare returned %lld loss positions, expected %lld", (long long)P, (long long)t->P);
  t->full = ep_malloc((size_t)t->P * t->Vo * sizeof *t->full);
  t->be->full_outputs(t->ws, t->full);
}

void tracr_task_free(tracr_task *t) {
  t->be->destroy(t->ws);
  free(t->full);
  free(t->tokens);
  free(t->length);
  free(t->loss_start);
  free(t->loss_end);
  graph_free(&t->g);
  model_free(&t->m);
  memset(t, 0, sizeof *t);
}

double tracr_task_run(tracr_task *t, const double *z_edge, float *out) {
  t->be->faith(t->ws, z_edge, NULL, NULL, NULL, out);
  double worst = 0;
  for (int64_t i = 0; i < t->P * t->Vo; i++) {
    double d = fabs((double)out[i] - (double)t->full[i]);
    if (!(d <= worst)) worst = d; /* NaN sticks */
  }
  return worst;
}

int tracr_task_wrong(const tracr_task *t, const float *out, double tol) {
  int wrong = 0;
  for (int b = 0; b < t->B; b++) {
    int ok = 1, xs = 0;
    for (int i = 1; i <= t->L; i++) {
      const float *row = out + ((size_t)b * t->L + (i - 1)) * t->Vo;
      if (!t->xprop) {
        /* reverse: position i predicts t_{L+1-i} */
        int want_sym = -1;
        for (int s = 0; s < t->n_sym; s++)
          if (t->tokens[(size_t)b * t->T + t->L + 1 - i] == t->sym_id[s]) want_sym = s;
        int best = 0;
        for (int v = 1; v < t->Vo; v++)
          if (row[v] > row[best]) best = v;
        /* a tie is not a prediction */
        for (int v = 0; v < t->Vo; v++)
          if (v != best && row[v] == row[best]) best = -1;
        ok &= best == t->out_of_sym[want_sym];
      } else {
        xs += t->tokens[(size_t)b * t->T + i] == t->sym_id[3];
        ok &= fabs((double)row[0] - (double)xs / i) <= tol;
      }
    }
    wrong += !ok;
  }
  return wrong;
}

int64_t tracr_edge_by_names(const ep_graph *g, const char *writer, const char *reader) {
  int w = graph_find_writer(g, writer), r = graph_find_reader(g, reader);
  if (w < 0 || r < 0) return -1;
  return graph_edge_index(g, w, r);
}

int64_t tracr_read_edges_json(const ep_graph *g, const char *path, uint8_t *kept) {
  size_t len;
  char *text = ep_read_file(path, &len);
  cJSON *j = cJSON_ParseWithLength(text, len);
  free(text);
  if (!cJSON_IsArray(j)) ep_fatal("%s: not a JSON list of [writer, reader] pairs", path);
  memset(kept, 0, (size_t)g->n_edges);
  int64_t n = 0;
  const cJSON *pair;
  cJSON_ArrayForEach(pair, j) {
    const char *w = cJSON_GetStringValue(cJSON_GetArrayItem(pair, 0));
    const char *r = cJSON_GetStringValue(cJSON_GetArrayItem(pair, 1));
    if (!cJSON_IsArray(pair) || cJSON_GetArraySize(pair) != 2 || !w || !r)
      ep_fatal("%s: entry %lld is not a [writer, reader] pair of strings", path, (long long)n);
    int64_t e = tracr_edge_by_names(g, w, r);
    if (e < 0)
      ep_fatal("%s: entry %lld: [%s, %s] is not an edge of the model's graph", path, (long long)n, w, r);
    if (kept[e]) ep_fatal("%s: entry %lld: [%s, %s] appears twice", path, (long long)n, w, r);
    kept[e] = 1;
    n++;
  }
  cJSON_Delete(j);
  return n;
}
