/* A user's own reproduction, in C: `leaky_loop leak|fixed|runaway ITERATIONS BYTES`.
 * Each iteration allocates BYTES in `cache_insert` and touches them; `fixed` frees
 * them at the end of the iteration, `leak` never does. After each iteration it
 * writes one line to $LEAKLAB_UNITS (leaklab's unit protocol). `runaway` ignores
 * ITERATIONS and leaks 16 MiB per iteration without end: the memory cap must stop it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char *cache_insert(size_t bytes) {
    char *block = malloc(bytes);
    memset(block, 1, bytes);
    return block;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s leak|fixed|runaway ITERATIONS BYTES\n", argv[0]);
        return 2;
    }
    int runaway = strcmp(argv[1], "runaway") == 0;
    int leak = runaway || strcmp(argv[1], "leak") == 0;
    long iterations = atol(argv[2]);
    size_t bytes = runaway ? (size_t)16 << 20 : (size_t)atol(argv[3]);
    const char *path = getenv("LEAKLAB_UNITS");
    FILE *units = path ? fopen(path, "a") : NULL;
    struct timespec pause = {0, 50 * 1000 * 1000};
    for (long i = 1; runaway || i <= iterations; i++) {
        char *block = cache_insert(bytes);
        if (!leak)
            free(block);
        nanosleep(&pause, NULL);
        if (units) {
            fprintf(units, "%ld live_blocks=%ld\n", i, leak ? i : 0);
            fflush(units);
        }
    }
    return 0;
}
