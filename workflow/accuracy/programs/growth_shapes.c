/* Growth of a known shape, for the accuracy benchmark's real tier:
 * `growth_shapes SHAPE STEPS [WINDOW]`.  WINDOW (default STEPS) is the run the shapes are
 * drawn for: a confirmation runs the program for several windows (STEPS = horizon x
 * WINDOW) and the shape must stay the one the window saw, as the synthetic tier's
 * series run on past their window.  Each step allocates (and touches) what its shape asks,
 * sleeps 100 ms (two readings of the 50 ms sampler per step) and appends one line to
 * $LEAKLAB_UNITS (leaklab's unit protocol).
 * The rates are relative to R = 256 KiB per step, twice the 128 KiB/step threshold the
 * accuracy config sets for this experiment.  Blocks are 64 KiB, under glibc's mmap
 * threshold, so that freed ones stay in the heap and are reused, as an allocator does.
 *   late_onset        nothing for the first half of the window, then 4 R per step
 *   transient_leak    16 R in each of the first 4 steps (a cache filling), R per step throughout
 *   allocator_reuse   4 R per step, 3/4 of it released every 10 steps: RSS grows fast, then at R
 *   stairs            10 R every 10 steps
 *   random_increments on each step with probability 1/2, an exponential amount of mean 2 R
 *   fill_then_flat    4 R per step into a cache of 20 steps' worth, then the oldest evicted
 *   slow_saturation   4 R x exp(-i / (3 WINDOW)) per step: levels off three windows later */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BLOCK (64 * 1024)
#define R (256 * 1024)

static void **kept, **garbage;
static long n_kept, n_garbage;

static void *block(void) {
    void *p = malloc(BLOCK);
    memset(p, 1, BLOCK);
    return p;
}

static void keep(double bytes) {
    for (long b = 0; b < (long)(bytes / BLOCK + 0.5); b++)
        kept[n_kept++] = block();
}

int main(int argc, char **argv) {
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: %s SHAPE STEPS [WINDOW]\n", argv[0]);
        return 2;
    }
    const char *shape = argv[1];
    long steps = atol(argv[2]);
    long window = argc == 4 ? atol(argv[3]) : steps;
    kept = calloc((size_t)steps * 64 + 1024, sizeof *kept);
    garbage = calloc((size_t)steps * 64 + 1024, sizeof *garbage);
    const char *path = getenv("LEAKLAB_UNITS");
    FILE *units = path ? fopen(path, "a") : NULL;
    struct timespec pause = {0, 100 * 1000 * 1000};
    srand(7);
    for (long i = 1; i <= steps; i++) {
        if (!strcmp(shape, "late_onset")) {
            if (i > window / 2)
                keep(4.0 * R);
        } else if (!strcmp(shape, "transient_leak")) {
            keep(i <= 4 ? 17.0 * R : 1.0 * R);
        } else if (!strcmp(shape, "allocator_reuse")) {
            for (int b = 0; b < 16; b++) {
                if (b % 4 == 0)
                    kept[n_kept++] = block();
                else
                    garbage[n_garbage++] = block();
            }
            if (i % 10 == 0) {
                while (n_garbage > 0)
                    free(garbage[--n_garbage]);
            }
        } else if (!strcmp(shape, "stairs")) {
            if (i % 10 == 0)
                keep(10.0 * R);
        } else if (!strcmp(shape, "random_increments")) {
            double u = (rand() + 1.0) / (RAND_MAX + 2.0), v = (rand() + 1.0) / (RAND_MAX + 2.0);
            if (u < 0.5)
                keep(-2.0 * R * log(v));
        } else if (!strcmp(shape, "fill_then_flat")) {
            if (i <= 20) {
                keep(4.0 * R);
            } else {  /* evict the oldest step's blocks, insert as many: the cache stays full */
                for (long b = 0; b < 16; b++) {
                    free(kept[(i * 16 + b) % n_kept]);
                    kept[(i * 16 + b) % n_kept] = block();
                }
            }
        } else if (!strcmp(shape, "slow_saturation")) {
            keep(4.0 * R * exp(-(double)i / (3.0 * window)));
        } else {
            fprintf(stderr, "unknown shape %s\n", shape);
            return 2;
        }
        nanosleep(&pause, NULL);
        if (units) {
            fprintf(units, "%ld\n", i);
            fflush(units);
        }
    }
    return 0;
}
