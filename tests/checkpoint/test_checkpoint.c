/* test_checkpoint.c — restart files: round trip, rotation, and recovery from a
 * truncated file, a flipped data byte and a missing end marker (each detected, a
 * warning naming it, the previous checkpoint used, nothing deleted).
 * Usage: test_checkpoint DIR (under mpirun; DIR is wiped first). */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "edgeprune/checkpoint.h"
#include "edgeprune/core.h"
#include "test_util.h"

enum { NA = 1000, NM = 37, NC = 5, NR = 4 };

typedef struct {
  float log_alpha[NA];
  double adam_m[NM];
  int64_t cursors[NC];
  uint64_t rng[NR];
} state;

static void state_fill(state *s, int64_t step) {
  for (int i = 0; i < NA; i++)
    s->log_alpha[i] = (float)(i * 0.001 - 0.3 + step);
  for (int i = 0; i < NM; i++)
    s->adam_m[i] = 1.0 / (i + 1) + (double)step;
  for (int i = 0; i < NC; i++)
    s->cursors[i] = -i * step;
  for (int i = 0; i < NR; i++)
    s->rng[i] = 0xfedcba9876543210ULL + (uint64_t)(i + step);
}

static void state_arrays(state *s, ep_ckpt_array a[5]) {
  a[0] = (ep_ckpt_array){"log_alpha", EP_CKPT_F32, NA, s->log_alpha};
  a[1] = (ep_ckpt_array){"adam/m", EP_CKPT_F64, NM, s->adam_m};
  a[2] = (ep_ckpt_array){"cursors", EP_CKPT_I64, NC, s->cursors};
  a[3] = (ep_ckpt_array){"rng", EP_CKPT_U64, NR, s->rng};
  a[4] = (ep_ckpt_array){"empty", EP_CKPT_F32, 0, s->log_alpha};
}

static const char *deck_text = "run:\n  steps: 3000\n  name: \"x\"\n";

static char *write_step(const char *dir, int64_t step, int keep) {
  state s;
  ep_ckpt_array a[5];
  state_fill(&s, step);
  state_arrays(&s, a);
  ep_ckpt_meta m = {.step = step,
                    .data_cursor = step * 32,
                    .config_hash = 0xdeadbeefcafebabeULL,
                    .pp = 1,
                    .dp = ep_size,
                    .n_seeds = 2,
                    .seeds = {42, 7},
                    .deck = (char *)deck_text};
  return checkpoint_write(dir, &m, 5, a, keep, MPI_COMM_WORLD);
}

static int file_exists(const char *dir, const char *name) {
  char *p = ep_path_join(dir, name);
  struct stat st;
  int ok = stat(p, &st) == 0;
  free(p);
  return ok;
}

static int count_ckpts(const char *dir) {
  char cmd[2048], out[4096];
  snprintf(cmd, sizeof cmd, "ls '%s' | grep -c '^ckpt-[0-9]*\\.h5$'", dir);
  t_run_capture(cmd, out, sizeof out);
  return atoi(out);
}

static void copy_file(const char *dir, const char *from, const char *to, double fraction) {
  char *a = ep_path_join(dir, from), *b = ep_path_join(dir, to);
  size_t n = 0;
  char *buf = ep_read_file(a, &n);
  FILE *f = fopen(b, "wb");
  EP_CHECK(f, "cannot write %s", b);
  size_t keep = (size_t)((double)n * fraction);
  EP_CHECK(fwrite(buf, 1, keep, f) == keep, "short write");
  fclose(f);
  free(buf);
  free(a);
  free(b);
}

/* Flip one byte inside the data of dataset `name` (contiguous, so its file offset is known). */
static void flip_data_byte(const char *path, const char *name, size_t at) {
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  EP_CHECK_H5(f);
  hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
  EP_CHECK_H5(ds);
  haddr_t off = H5Dget_offset(ds);
  EP_CHECK(off != HADDR_UNDEF, "no offset for %s", name);
  H5Dclose(ds);
  H5Fclose(f);
  FILE *fp = fopen(path, "r+b");
  EP_CHECK(fp, "cannot open %s", path);
  fseek(fp, (long)(off + at), SEEK_SET);
  int c = fgetc(fp);
  fseek(fp, (long)(off + at), SEEK_SET);
  fputc(c ^ 0x5a, fp);
  fclose(fp);
}

/* Run find_latest with rank 0's stderr captured into `log`. */
static char *find_capturing(const char *dir, char *log, size_t cap) {
  char logpath[1200];
  snprintf(logpath, sizeof logpath, "%s/../find_%d.log", dir, ep_rank);
  fflush(stderr);
  int saved = dup(2);
  int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  dup2(fd, 2);
  close(fd);
  char *p = checkpoint_find_latest(dir, MPI_COMM_WORLD);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  size_t n = 0;
  char *text = ep_read_file(logpath, &n);
  snprintf(log, cap, "%s", text);
  free(text);
  unlink(logpath);
  return p;
}

static int ends_with(const char *s, const char *tail) {
  size_t a = s ? strlen(s) : 0, b = strlen(tail);
  return s && a >= b && strcmp(s + a - b, tail) == 0;
}

int main(int argc, char **argv) {
  ep_mpi_init(&argc, &argv);
  if (argc < 2) ep_fatal("usage: test_checkpoint DIR");
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/run", argv[1]);
  if (ep_rank == 0) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", argv[1], dir);
    EP_CHECK(system(cmd) == 0, "cannot prepare %s", argv[1]);
    FILE *f = fopen(ep_path_join(dir, "notes.txt"), "w");
    fputs("not a checkpoint\n", f);
    fclose(f);
  }
  EP_CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));

  /* ---- write three, keep two ---- */
  free(write_step(dir, 10, 2));
  free(write_step(dir, 20, 2));
  char *p30 = write_step(dir, 30, 2);
  T_CHECK(ends_with(p30, "/ckpt-00000030.h5"), "returned path %s", p30);
  if (ep_rank == 0) {
    T_CHECK(!file_exists(dir, "ckpt-00000010.h5") && file_exists(dir, "ckpt-00000020.h5") &&
                file_exists(dir, "ckpt-00000030.h5"),
            "rotation keeps 20 and 30");
    T_CHECK(count_ckpts(dir) == 2, "checkpoints left: %d", count_ckpts(dir));
    T_CHECK(file_exists(dir, "notes.txt"), "rotation removed an unrelated file");
    char cmd[2048], out[256];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -c tmp", dir);
    t_run_capture(cmd, out, sizeof out);
    T_CHECK(atoi(out) == 0, "temporaries left behind: %s", out);
  }

  /* ---- round trip ---- */
  char log[8192];
  char *latest = find_capturing(dir, log, sizeof log);
  T_CHECK(ends_with(latest, "/ckpt-00000030.h5"), "latest %s", latest ? latest : "(none)");
  T_CHECK(log[0] == '\0', "warnings for a clean directory: %s", log);
  state want, got;
  memset(&got, 0, sizeof got);
  state_fill(&want, 30);
  ep_ckpt_array a[5];
  state_arrays(&got, a);
  ep_ckpt_meta m;
  checkpoint_read(latest, &m, 5, a, MPI_COMM_WORLD);
  T_CHECK(memcmp(&got, &want, sizeof got) == 0, "arrays differ after round trip");
  T_CHECK(m.step == 30 && m.data_cursor == 960 && m.config_hash == 0xdeadbeefcafebabeULL && m.pp == 1 &&
              m.dp == ep_size && m.n_seeds == 2 && m.seeds[0] == 42 && m.seeds[1] == 7,
          "meta after round trip: step %lld cursor %lld", (long long)m.step, (long long)m.data_cursor);
  T_CHECK(m.deck && strcmp(m.deck, deck_text) == 0, "deck text '%s'", m.deck ? m.deck : "(null)");
  checkpoint_meta_free(&m);
  ep_ckpt_meta info;
  checkpoint_info(latest, &info, MPI_COMM_WORLD);
  T_CHECK(info.config_hash == 0xdeadbeefcafebabeULL && info.pp == 1 && info.dp == ep_size && info.step == 30,
          "checkpoint_info");
  T_CHECK(info.deck && strcmp(info.deck, deck_text) == 0, "checkpoint_info deck");
  checkpoint_meta_free(&info);
  free(latest);

  /* ---- a truncated newer file: warned about, skipped, kept ---- */
  if (ep_rank == 0) copy_file(dir, "ckpt-00000030.h5", "ckpt-00000040.h5", 0.5);
  EP_CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));
  latest = find_capturing(dir, log, sizeof log);
  T_CHECK(ends_with(latest, "/ckpt-00000030.h5"), "after truncation latest %s", latest ? latest : "(none)");
  if (ep_rank == 0) {
    T_CHECK(strstr(log, "ckpt-00000040.h5") && strstr(log, "truncated"), "truncation warning: %s", log);
    T_CHECK(file_exists(dir, "ckpt-00000040.h5") && file_exists(dir, "ckpt-00000020.h5") &&
                file_exists(dir, "notes.txt"),
            "find_latest removed files");
  }
  free(latest);

  /* ---- a flipped data byte: caught by the checksum ---- */
  char reason[512];
  if (ep_rank == 0) {
    copy_file(dir, "ckpt-00000030.h5", "ckpt-00000050.h5", 1.0);
    char *p50 = ep_path_join(dir, "ckpt-00000050.h5");
    T_CHECK(checkpoint_validate(p50, reason, sizeof reason), "intact copy rejected: %s", reason);
    flip_data_byte(p50, "arrays/adam/m", 100);
    T_CHECK(!checkpoint_validate(p50, reason, sizeof reason) && strstr(reason, "checksum") &&
                strstr(reason, "adam/m"),
            "flipped byte: '%s'", reason);
    free(p50);
  }
  EP_CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));
  latest = find_capturing(dir, log, sizeof log);
  T_CHECK(ends_with(latest, "/ckpt-00000030.h5"), "after corruption latest %s", latest ? latest : "(none)");
  if (ep_rank == 0) {
    T_CHECK(strstr(log, "ckpt-00000050.h5") && strstr(log, "checksum") && strstr(log, "ckpt-00000040.h5"),
            "warnings: %s", log);
    /* Newest first: 50 is reported before 40. */
    T_CHECK(strstr(log, "ckpt-00000050.h5") < strstr(log, "ckpt-00000040.h5"), "order of warnings: %s", log);
  }
  free(latest);

  /* ---- no end marker, wrong signature: detected ---- */
  if (ep_rank == 0) {
    copy_file(dir, "ckpt-00000030.h5", "ckpt-00000060.h5", 1.0);
    char *p60 = ep_path_join(dir, "ckpt-00000060.h5");
    hid_t f = H5Fopen(p60, H5F_ACC_RDWR, H5P_DEFAULT);
    EP_CHECK_H5(f);
    EP_CHECK_H5(H5Adelete(f, "end_marker"));
    EP_CHECK_H5(H5Fclose(f));
    T_CHECK(!checkpoint_validate(p60, reason, sizeof reason) && strstr(reason, "end marker"),
            "no end marker: '%s'", reason);
    copy_file(dir, "notes.txt", "ckpt-00000070.h5", 1.0);
    char *p70 = ep_path_join(dir, "ckpt-00000070.h5");
    T_CHECK(!checkpoint_validate(p70, reason, sizeof reason) && strstr(reason, "HDF5"), "text file: '%s'",
            reason);
    free(p60);
    free(p70);
  }
  EP_CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));
  latest = find_capturing(dir, log, sizeof log);
  T_CHECK(ends_with(latest, "/ckpt-00000030.h5"), "after end-marker loss latest %s",
          latest ? latest : "(none)");
  if (ep_rank == 0)
    T_CHECK(strstr(log, "ckpt-00000060.h5") && strstr(log, "end marker"), "warnings: %s", log);
  free(latest);

  /* ---- rotation with keep 3 in a fresh directory; a newer stray file is untouched ---- */
  char rot[1100];
  snprintf(rot, sizeof rot, "%s/rot", argv[1]);
  if (ep_rank == 0) {
    mkdir(rot, 0777);
    copy_file(dir, "ckpt-00000030.h5", "../rot/ckpt-00000900.h5", 1.0);
  }
  EP_CHECK_MPI(MPI_Barrier(MPI_COMM_WORLD));
  for (int s = 1; s <= 5; s++)
    free(write_step(rot, s * 100, 3));
  if (ep_rank == 0) {
    T_CHECK(count_ckpts(rot) == 4, "rotation with keep 3 left %d files", count_ckpts(rot));
    T_CHECK(file_exists(rot, "ckpt-00000300.h5") && file_exists(rot, "ckpt-00000500.h5") &&
                !file_exists(rot, "ckpt-00000200.h5") && file_exists(rot, "ckpt-00000900.h5"),
            "rotation kept the wrong files");
  }
  latest = checkpoint_find_latest(rot, MPI_COMM_WORLD);
  T_CHECK(ends_with(latest, "/ckpt-00000900.h5"), "latest in rot %s", latest ? latest : "(none)");
  free(latest);
  char empty[1100];
  snprintf(empty, sizeof empty, "%s/none", argv[1]);
  latest = checkpoint_find_latest(empty, MPI_COMM_WORLD);
  T_CHECK(latest == NULL, "missing directory gives no checkpoint");
  free(p30);

  int failed = t_failed, any = 0;
  EP_CHECK_MPI(MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
  int rc = t_done();
  ep_mpi_finalize();
  return any ? 1 : rc;
}
