/* An outside program, as a user brings it: `progress_leak RATE ITERATIONS`.
 * Each iteration handles a request: it keeps RATE bytes from remember_request() (a
 * leak when RATE > 0; RATE 0 keeps nothing), appends a line to segments/journal in its
 * working directory (which must already hold segments/), and prints its own progress,
 * "Iteration N finished, cache=BYTES", flushed. It knows nothing of leaklab. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void *volatile kept;

__attribute__((noinline)) static char *remember_request(size_t bytes) {
    char *block = malloc(bytes);
    if (block)
        memset(block, 7, bytes);
    kept = block;
    return block;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s RATE ITERATIONS\n", argv[0]);
        return 2;
    }
    size_t rate = (size_t)atol(argv[1]);
    long iterations = atol(argv[2]);
    FILE *journal = fopen("segments/journal", "a");
    if (!journal) {
        perror("segments/journal");
        return 3;
    }
    struct timespec pause = {0, 40 * 1000 * 1000};
    size_t cache = 0;
    for (long i = 1; i <= iterations; i++) {
        char *scratch = malloc(1 << 20);  /* work that is freed: no leak */
        memset(scratch, 1, 1 << 20);
        free(scratch);
        if (rate) {
            remember_request(rate);
            cache += rate;
        }
        fprintf(journal, "%ld\n", i);
        fflush(journal);
        nanosleep(&pause, NULL);
        printf("Iteration %ld finished, cache=%zu\n", i, cache);
        fflush(stdout);
    }
    fclose(journal);
    return 0;
}
