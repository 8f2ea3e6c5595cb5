/* test_hf_golden.c — checkpoints written by Hugging Face transformers itself
 * (tools/make_hf_gpt2_fixture.py, run on a GPU node) load to exactly the weights the
 * script computed under our names: float32, float16, bfloat16, sharded, untied.
 * usage: test_hf_golden DATA_DIR   (DATA_DIR/hf-gpt2-tiny; skipped with 77 when absent) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgeprune/core.h"
#include "edgeprune/h5io.h"
#include "edgeprune/model.h"
#include "edgeprune/model_io.h"
#include "fixture.h"
#include "test_util.h"

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: test_hf_golden DATA_DIR\n");
    return 2;
  }
  char dir[1024], expected[1100];
  snprintf(dir, sizeof dir, "%s/hf-gpt2-tiny", argv[1]);
  snprintf(expected, sizeof expected, "%s/expected.h5", dir);
  if (!fx_exists(expected)) {
    printf("SKIP: %s is absent (generate it with tools/make_hf_gpt2_fixture.py on a GPU node)\n", expected);
    return 77;
  }
  const char *variants[] = {"f32", "f16", "bf16", "sharded", "untied"};
  hid_t f = h5io_open_read(expected);
  for (size_t v = 0; v < sizeof variants / sizeof *variants; v++) {
    char src[1200];
    snprintf(src, sizeof src, "%s/%s", dir, variants[v]);
    ep_model m;
    model_load(&m, src);
    hid_t g = h5io_group(f, variants[v]);
    T_CHECK(m.cfg.n_layer == h5io_get_attr_i64(g, "n_layer", expected) &&
                m.cfg.d_mlp == h5io_get_attr_i64(g, "d_mlp", expected) &&
                m.cfg.tied_unembed == h5io_get_attr_i64(g, "tied_unembed", expected) &&
                m.cfg.norm_eps == (float)h5io_get_attr_f64(g, "norm_eps", expected),
            "%s: config (n_layer %d, d_mlp %d, tied %d, eps %g)", variants[v], m.cfg.n_layer, m.cfg.d_mlp,
            m.cfg.tied_unembed, (double)m.cfg.norm_eps);
    int n = 0;
    ep_tensor_ref *t = model_tensor_list(&m, &n);
    for (int i = 0; i < n; i++) {
      int64_t want[2] = {t[i].shape[0], t[i].shape[1]};
      float *e = h5io_read(g, t[i].name, H5T_NATIVE_FLOAT, t[i].ndim, want, NULL, expected);
      size_t numel = (size_t)want[0] * (size_t)(t[i].ndim == 2 ? want[1] : 1);
      T_CHECK(!memcmp(e, *t[i].slot, numel * sizeof(float)),
              "%s: tensor %s differs from transformers' (max |diff| %g)", variants[v], t[i].name,
              t_max_abs_diff(e, *t[i].slot, numel));
      free(e);
    }
    T_CHECK(m.cfg.tied_unembed ? m.unembed == m.wte : h5io_exists(g, "unembed"), "%s: unembedding",
            variants[v]);
    free(t);
    EP_CHECK_H5(H5Gclose(g));
    model_free(&m);
  }
  h5io_close(f);
  return t_done();
}
