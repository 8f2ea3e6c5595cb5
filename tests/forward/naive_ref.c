/* naive_ref.c — see naive_ref.h. */
#include "naive_ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* y[n, O] = x[n, I] @ W[I, O] + b */
static void lin(double *y, const double *x, const float *W, const float *b, int n, int I, int O) {
  for (int t = 0; t < n; t++)
    for (int o = 0; o < O; o++) {
      double s = b ? b[o] : 0.0;
      for (int i = 0; i < I; i++)
        s += x[t * I + i] * W[(size_t)i * O + o];
      y[t * O + o] = s;
    }
}

static void norm(const ep_model_config *c, double *y, const double *x, const float *w, const float *b,
                 int n) {
  int D = c->d_model;
  for (int t = 0; t < n; t++) {
    const double *xr = x + t * D;
    double *yr = y + t * D;
    if (c->norm == EP_NORM_NONE) {
      memcpy(yr, xr, sizeof(double) * D);
    } else if (c->norm == EP_NORM_LAYERNORM) {
      double mu = 0, var = 0;
      for (int i = 0; i < D; i++)
        mu += xr[i] / D;
      for (int i = 0; i < D; i++)
        var += (xr[i] - mu) * (xr[i] - mu) / D;
      for (int i = 0; i < D; i++)
        yr[i] = (xr[i] - mu) / sqrt(var + c->norm_eps) * w[i] + b[i];
    } else {
      double ms = 0;
      for (int i = 0; i < D; i++)
        ms += xr[i] * xr[i] / D;
      for (int i = 0; i < D; i++)
        yr[i] = xr[i] / sqrt(ms + c->norm_eps) * w[i];
    }
  }
}

/* HF Llama rotate_half applied to one head vector at position pos. */
static void rope(double *v, int dh, int pos, double theta) {
  for (int i = 0; i < dh / 2; i++) {
    double ang = pos * pow(theta, -2.0 * i / dh);
    double a = v[i], b = v[i + dh / 2];
    v[i] = a * cos(ang) - b * sin(ang);
    v[i + dh / 2] = b * cos(ang) + a * sin(ang);
  }
}

void naive_forward(const ep_model *m, const int32_t *tokens, int n, double *logits, double *resid) {
  const ep_model_config *c = &m->cfg;
  const int D = c->d_model, H = c->n_head, Hk = c->n_kv_head, dh = c->d_head, F = c->d_mlp;
  double *x = calloc((size_t)n * D, sizeof *x), *h = calloc((size_t)n * D, sizeof *h);
  double *q = calloc((size_t)n * H * dh, sizeof *q), *k = calloc((size_t)n * Hk * dh, sizeof *k);
  double *v = calloc((size_t)n * Hk * dh, sizeof *v), *z = calloc((size_t)n * H * dh, sizeof *z);
  double *a = calloc((size_t)n * F, sizeof *a), *g = calloc((size_t)n * F, sizeof *g);
  double *o = calloc((size_t)n * D, sizeof *o), *p = calloc((size_t)n, sizeof *p);
  for (int t = 0; t < n; t++)
    for (int i = 0; i < D; i++)
      x[t * D + i] = m->wte[(size_t)tokens[t] * D + i] + (m->wpe ? m->wpe[(size_t)t * D + i] : 0.0);
  for (int l = 0; l < c->n_layer; l++) {
    const ep_layer_weights *w = &m->layers[l];
    if (c->has_attn[l]) {
      norm(c, h, x, w->ln1_w, w->ln1_b, n);
      lin(q, h, w->w_q, w->b_q, n, D, H * dh);
      lin(k, h, w->w_k, w->b_k, n, D, Hk * dh);
      lin(v, h, w->w_v, w->b_v, n, D, Hk * dh);
      if (c->pos == EP_POS_ROPE)
        for (int t = 0; t < n; t++) {
          for (int hh = 0; hh < H; hh++)
            rope(q + (t * H + hh) * dh, dh, t, c->rope_theta);
          for (int hh = 0; hh < Hk; hh++)
            rope(k + (t * Hk + hh) * dh, dh, t, c->rope_theta);
        }
      for (int hh = 0; hh < H; hh++) {
        int kh = hh * Hk / H; /* the key/value head this query head shares */
        for (int i = 0; i < n; i++) {
          int last = c->causal ? i : n - 1;
          double mx = -INFINITY, sum = 0;
          for (int j = 0; j <= last; j++) {
            double s = 0;
            for (int d = 0; d < dh; d++)
              s += q[(i * H + hh) * dh + d] * k[(j * Hk + kh) * dh + d];
            p[j] = s / sqrt((double)dh);
            if (p[j] > mx) mx = p[j];
          }
          for (int j = 0; j <= last; j++)
            sum += (p[j] = exp(p[j] - mx));
          for (int d = 0; d < dh; d++) {
            double s = 0;
            for (int j = 0; j <= last; j++)
              s += p[j] / sum * v[(j * Hk + kh) * dh + d];
            z[(i * H + hh) * dh + d] = s;
          }
        }
      }
      lin(o, z, w->w_o, w->b_o, n, H * dh, D);
      for (int i = 0; i < n * D; i++)
        x[i] += o[i];
    }
    if (c->has_mlp[l]) {
      norm(c, h, x, w->ln2_w, w->ln2_b, n);
      lin(a, h, w->w_fc, w->b_fc, n, D, F);
      if (c->act == EP_ACT_SILU_GLU) lin(g, h, w->w_gate, NULL, n, D, F);
      for (int i = 0; i < n * F; i++) {
        double u = a[i];
        if (c->act == EP_ACT_GELU_TANH)
          a[i] = 0.5 * u * (1 + tanh(sqrt(2 / acos(-1.0)) * (u + 0.044715 * u * u * u)));
        else if (c->act == EP_ACT_RELU)
          a[i] = u > 0 ? u : 0;
        else
          a[i] = g[i] / (1 + exp(-g[i])) * u;
      }
      lin(o, a, w->w_proj, w->b_proj, n, F, D);
      for (int i = 0; i < n * D; i++)
        x[i] += o[i];
    }
  }
  if (resid) memcpy(resid, x, sizeof(double) * n * D);
  if (c->final_norm && c->norm != EP_NORM_NONE)
    norm(c, h, x, m->lnf_w, m->lnf_b, n);
  else
    memcpy(h, x, sizeof(double) * n * D);
  for (int t = 0; t < n; t++)
    for (int vv = 0; vv < c->vocab_out; vv++) {
      double s = 0;
      for (int i = 0; i < D; i++)
        s += h[t * D + i] * m->unembed[(size_t)vv * D + i];
      logits[(size_t)t * c->vocab_out + vv] = s;
    }
  free(x), free(h), free(q), free(k), free(v), free(z), free(a), free(g), free(o), free(p);
}
