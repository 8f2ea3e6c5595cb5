/* test_bcast.c — model_load_bcast gives every rank the model rank 0 read, bit for bit.
 * usage (under mpirun): test_bcast INPUTS_DIR */
#include <stdio.h>
#include <string.h>

#include "edgeprune/core.h"
#include "edgeprune/model.h"
#include "edgeprune/model_io.h"
#include "test_util.h"

int main(int argc, char **argv) {
  ep_mpi_init(&argc, &argv);
  if (argc < 2) {
    fprintf(stderr, "usage: test_bcast INPUTS_DIR\n");
    return 2;
  }
  const char *names[2] = {"reverse.safetensors", "xproportion.config.json"};
  for (int i = 0; i < 2; i++) {
    char p[1024];
    snprintf(p, sizeof p, "%s/tracr/%s", argv[1], names[i]);
    ep_model b, d;
    model_load_bcast(&b, p, MPI_COMM_WORLD);
    model_load(&d, p);
    T_CHECK(!memcmp(&b.cfg, &d.cfg, sizeof b.cfg), "rank %d: %s config", ep_rank, names[i]);
    T_CHECK(b.n_floats == d.n_floats && !memcmp(b.mem, d.mem, b.n_floats * sizeof(float)),
            "rank %d: %s weights", ep_rank, names[i]);
    T_CHECK(b.cfg.tied_unembed || b.unembed != b.wte, "rank %d: pointers set", ep_rank);
    model_free(&b);
    model_free(&d);
  }
  int status = t_done();
  ep_mpi_finalize();
  return status;
}
