/*
 * A driver for the fuzz targets when they are not linked with libFuzzer (gcc builds, the
 * test suite): runs every file of the seed corpus, then a fixed number of deterministic
 * mutations of them (bit flips, byte overwrites, insertions, truncations), so each run of the
 * suite covers the same inputs. For long, coverage-guided runs build with clang and
 * -Dfuzzing=true (see tests/fuzz/README.md).
 *
 * Usage: fuzz_X CORPUS_DIR [ITERATIONS]
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_SEEDS      256
#define FUZZ_MAX_INPUT 65536

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR [ITERATIONS]\n", argv[0]);
        return 2;
    }
    long iters = argc > 2 ? atol(argv[2]) : 2000;
    vsw_log_set_level(VSW_LOG_ERR); /* refusals are expected by the thousand here */
    static uint8_t *seeds[MAX_SEEDS];
    static size_t lens[MAX_SEEDS];
    unsigned n = 0;
    DIR *d = opendir(argv[1]);
    if (!d) {
        perror(argv[1]);
        return 2;
    }
    struct dirent *e;
    while ((e = readdir(d)) && n < MAX_SEEDS) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", argv[1], e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        seeds[n] = malloc(FUZZ_MAX_INPUT);
        lens[n] = fread(seeds[n], 1, FUZZ_MAX_INPUT, f);
        fclose(f);
        LLVMFuzzerTestOneInput(seeds[n], lens[n]);
        n++;
    }
    closedir(d);
    if (n == 0) {
        fprintf(stderr, "%s: empty corpus\n", argv[1]);
        return 1;
    }
    static uint8_t buf[FUZZ_MAX_INPUT + 64];
    for (long i = 0; i < iters; i++) {
        unsigned s = (unsigned)(next() % n);
        size_t len = lens[s];
        memcpy(buf, seeds[s], len);
        unsigned muts = 1 + (unsigned)(next() % 8);
        for (unsigned m = 0; m < muts && len; m++) {
            size_t at = (size_t)(next() % len);
            switch (next() % 4) {
            case 0:
                buf[at] ^= (uint8_t)(1u << (next() % 8));
                break;
            case 1:
                buf[at] = (uint8_t)next();
                break;
            case 2: /* interesting values: 0, 0xff, lengths */
                buf[at] = (uint8_t[]){0, 0xff, 0x7f, 0x80, 1, 16, 64}[next() % 7];
                break;
            default:
                len = at + 1; /* truncate */
            }
        }
        LLVMFuzzerTestOneInput(buf, len);
    }
    for (unsigned i = 0; i < n; i++)
        free(seeds[i]);
    printf("%s: %u seeds, %ld mutations, no crash\n", argv[0], n, iters);
    return 0;
}
