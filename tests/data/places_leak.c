/* places_leak: grow memory in one chosen place, one step at a time, printing "step N".
 *
 *   places_leak mmap   STEPS BYTES  -> anonymous mmap outside malloc, BYTES per step
 *   places_leak malloc STEPS BYTES  -> malloc'd blocks never freed, BYTES per step
 *   places_leak child  STEPS BYTES  -> a forked child mallocs BYTES per step; the parent waits
 *   places_leak none   STEPS BYTES  -> the same steps, nothing kept
 *   places_leak handover STEPS BYTES -> the brk heap grows BYTES per step for 7/10 of the steps,
 *                                     is then freed and trimmed (memory that falls), and
 *                                     anonymous mmap grows BYTES per step from there on
 *
 * Every byte is touched so it is resident.  Used by tests/test_mappings.py to check
 * that leaklab places each kind of growth in its layer and its process.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void *volatile sink;

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

__attribute__((noinline)) static void *mmap_here(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        exit(3);
    memset(p, 0xcd, bytes);
    return p;
}

__attribute__((noinline)) static void *malloc_here(size_t bytes)
{
    /* many small blocks: below glibc's mmap threshold, so they come from the brk heap */
    char **blocks = malloc(sizeof(char *) * (bytes / 4096 + 1));
    for (size_t i = 0; i < bytes / 4096; i++) {
        blocks[i] = malloc(4000);
        memset(blocks[i], 0xab, 4000);
    }
    return blocks;
}

static char **held; /* handover: the brk heap's blocks, freed at the handover */
static size_t n_held;

static void hold_small(size_t bytes)
{
    held = realloc(held, sizeof(char *) * (n_held + bytes / 4096));
    for (size_t i = 0; i < bytes / 4096; i++) {
        held[n_held] = malloc(4000);
        memset(held[n_held++], 0xab, 4000);
    }
}

static void free_held(void)
{
    while (n_held > 0)
        free(held[--n_held]);
    free(held);
    held = NULL;
    malloc_trim(0);
}

static void steps(const char *mode, long n, size_t bytes)
{
    for (long i = 1; i <= n; i++) {
        if (strcmp(mode, "handover") == 0) {
            if (i <= 7 * n / 10)
                hold_small(bytes);
            else {
                if (held != NULL)
                    free_held();
                sink = mmap_here(bytes);
            }
        } else if (strcmp(mode, "mmap") == 0)
            sink = mmap_here(bytes);
        else if (strcmp(mode, "malloc") == 0 || strcmp(mode, "child") == 0)
            sink = malloc_here(bytes);
        else {
            void *p = malloc(bytes);
            memset(p, 0, bytes);
            free(p);
        }
        for (int k = 0; k < 100; k++) { /* the step's own work: scratch blocks, freed */
            char *scratch = malloc(64 + k);
            memset(scratch, k, 64 + k);
            free(scratch);
        }
        printf("step %ld\n", i);
        fflush(stdout);
        pause_ms(120);
    }
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s mmap|malloc|child|none|handover STEPS BYTES\n", argv[0]);
        return 2;
    }
    long n = atol(argv[2]);
    size_t bytes = (size_t)atol(argv[3]);
    if (strcmp(argv[1], "child") == 0) {
        pid_t pid = fork();
        if (pid == 0) {
            steps("child", n, bytes);
            return 0;
        }
        int status;
        waitpid(pid, &status, 0);
        return 0;
    }
    steps(argv[1], n, bytes);
    return 0;
}
