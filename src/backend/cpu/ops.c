/* ops.c — see ops.h. */
#include "backend/cpu/ops.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "edgeprune/core.h"

/* Norm statistics are accumulated in double: the result is the correctly rounded float
 * that torch's float32 kernels approximate, so parity does not hinge on summation order. */
void ops_layernorm(float *out, const float *x, const float *w, const float *b, size_t N, int D, float eps) {
  for (size_t r = 0; r < N; r++) {
    const float *xr = x + r * (size_t)D;
    float *o = out + r * (size_t)D;
    double mean = 0, var = 0;
    for (int i = 0; i < D; i++)
      mean += xr[i];
    mean /= D;
    for (int i = 0; i < D; i++) {
      double d = xr[i] - mean;
      var += d * d;
    }
    var /= D;
    double rstd = 1.0 / sqrt(var + (double)eps);
    for (int i = 0; i < D; i++) {
      float n = (float)((xr[i] - mean) * rstd);
      o[i] = n * w[i] + (b ? b[i] : 0.0f);
    }
  }
}

void ops_rmsnorm(float *out, const float *x, const float *w, size_t N, int D, float eps) {
  for (size_t r = 0; r < N; r++) {
    const float *xr = x + r * (size_t)D;
    float *o = out + r * (size_t)D;
    double ss = 0;
    for (int i = 0; i < D; i++)
      ss += (double)xr[i] * xr[i];
    double rr = 1.0 / sqrt(ss / D + (double)eps);
    for (int i = 0; i < D; i++)
      o[i] = w[i] * (float)(xr[i] * rr);
  }
}

void ops_matmul(float *out, const float *x, const float *W, const float *bias, size_t N, int n_in, int n_out,
                float beta) {
  if (N == 0) return;
  EP_CHECK(N <= (size_t)INT32_MAX, "matmul with %zu rows exceeds the BLAS int range", N);
  if (bias) {
    /* Put the bias in first (added to what is kept) so one GEMM with beta 1 finishes the job. */
    for (size_t r = 0; r < N; r++) {
      float *o = out + r * (size_t)n_out;
      if (beta == 0.0f)
        memcpy(o, bias, (size_t)n_out * sizeof *o);
      else
        for (int j = 0; j < n_out; j++)
          o[j] = beta * o[j] + bias[j];
    }
    beta = 1.0f;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, n_out, n_in, 1.0f, x, n_in, W, n_out, beta,
              out, n_out);
}

void ops_unembed(float *out, const float *x, const float *U, size_t N, int D, int V) {
  if (N == 0) return;
  EP_CHECK(N <= (size_t)INT32_MAX, "unembed with %zu rows exceeds the BLAS int range", N);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, V, D, 1.0f, x, D, U, D, 0.0f, out, V);
}

void ops_gelu_tanh(float *x, size_t n) {
  const float s = 0.7978845608028654f; /* sqrt(2/pi) */
  for (size_t i = 0; i < n; i++) {
    float v = x[i];
    x[i] = 0.5f * v * (1.0f + tanhf(s * (v + 0.044715f * v * v * v)));
  }
}

void ops_relu(float *x, size_t n) {
  for (size_t i = 0; i < n; i++)
    x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void ops_silu_mul(float *gate, const float *up, size_t n) {
  for (size_t i = 0; i < n; i++) {
    float g = gate[i];
    gate[i] = g / (1.0f + expf(-g)) * up[i];
  }
}

void ops_rope_tables(float *cos_t, float *sin_t, int T, int dh, float theta) {
  int half = dh / 2;
  for (int i = 0; i < half; i++) {
    /* float32 steps exactly as HF: exponent, power, reciprocal, then angle = pos * inv_freq */
    float expo = (float)(2 * i) / (float)dh;
    float inv_freq = 1.0f / (float)pow((double)theta, (double)expo);
    for (int t = 0; t < T; t++) {
      float ang = (float)t * inv_freq;
      cos_t[(size_t)t * half + i] = (float)cos((double)ang);
      sin_t[(size_t)t * half + i] = (float)sin((double)ang);
    }
  }
}

void ops_rope_apply(float *x, const float *cos_t, const float *sin_t, size_t B, int T, int n_heads, int dh) {
  int half = dh / 2;
  size_t stride = (size_t)n_heads * dh;
  for (size_t row = 0; row < B * (size_t)T; row++) {
    size_t t = row % (size_t)T;
    const float *c = cos_t + t * half, *s = sin_t + t * half;
    for (int h = 0; h < n_heads; h++) {
      float *xh = x + row * stride + (size_t)h * dh;
      for (int i = 0; i < half; i++) {
        float a = xh[i], b = xh[i + half];
        xh[i] = a * c[i] - b * s[i];
        xh[i + half] = b * c[i] + a * s[i];
      }
    }
  }
}

void ops_attention(float *out, const float *q, const float *k, const float *v, const int32_t *lengths, int B,
                   int T, int H, int Hkv, int dh, int causal, float *scores) {
  const int qs = H * dh, ks = Hkv * dh, rep = H / Hkv;
  const float scale = 1.0f / sqrtf((float)dh);
  for (int b = 0; b < B; b++) {
    /* Keys at or beyond the length are never visible, so only the first nk take part. */
    int nk = lengths ? lengths[b] : T;
    const size_t base = (size_t)b * T;
    for (int h = 0; h < H; h++) {
      int g = h / rep;
      const float *qb = q + base * qs + (size_t)h * dh;
      const float *kb = k + base * ks + (size_t)g * dh;
      const float *vb = v + base * ks + (size_t)g * dh;
      float *ob = out + base * qs + (size_t)h * dh;
      /* scores[T, nk] = scale * q_h[T, dh] @ k_g[nk, dh]^T */
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, nk, dh, scale, qb, qs, kb, ks, 0.0f, scores,
                  nk);
      for (int i = 0; i < T; i++) {
        float *s = scores + (size_t)i * nk;
        int n = causal && i + 1 < nk ? i + 1 : nk; /* visible keys 0..n-1 */
        float mx = s[0];
        for (int j = 1; j < n; j++)
          mx = s[j] > mx ? s[j] : mx;
        float sum = 0.0f;
        for (int j = 0; j < n; j++) {
          s[j] = expf(s[j] - mx);
          sum += s[j];
        }
        float inv = 1.0f / sum;
        for (int j = 0; j < n; j++)
          s[j] *= inv;
        for (int j = n; j < nk; j++)
          s[j] = 0.0f;
      }
      /* out_h[T, dh] = probs[T, nk] @ v_g[nk, dh] */
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, dh, nk, 1.0f, scores, nk, vb, ks, 0.0f, ob,
                  qs);
    }
  }
}
