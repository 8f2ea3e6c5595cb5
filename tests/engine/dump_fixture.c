/* dump_fixture.c — writes DIR/model.h5 (a random GPT-2-shaped model file) and DIR/data.h5
 * (a train split of 24 examples of lengths 5..7, two loss positions each) for the
 * step-dump parity test (test_dump_oracle.sh). */
#include <stdio.h>

#include "edgeprune/core.h"
#include "edgeprune/dataset.h"
#include "edgeprune/model_file.h"
#include "fixture.h"

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: dump_fixture DIR\n");
    return 2;
  }
  ep_model m;
  fx_gpt2_tiny(&m, 3, 4, 32, 60, 8);
  char *mp = ep_path_join(argv[1], "model.h5"), *dp = ep_path_join(argv[1], "data.h5");
  model_file_write(&m, NULL, "random", mp);
  model_free(&m);
  ep_dataset d;
  dataset_alloc(&d, 24, 7);
  for (int64_t i = 0; i < d.n; i++) {
    d.length[i] = 7 - (int)(i % 3);
    d.loss_start[i] = d.length[i] - 2;
    d.loss_end[i] = d.length[i];
    for (int t = 0; t < 7; t++) {
      uint32_t w[4];
      ep_rng_words(6, 50, (uint64_t)i, (uint32_t)t, w);
      d.clean[i * 7 + t] = t < d.length[i] ? (int32_t)(w[0] % 60u) : 59;
      d.corrupted[i * 7 + t] = t < d.length[i] ? (int32_t)(w[1] % 60u) : 59;
    }
  }
  dataset_write(&d, dp, "train", NULL);
  dataset_free(&d);
  free(mp);
  free(dp);
  return 0;
}
