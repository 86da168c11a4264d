/* leaky: allocate N blocks of SIZE bytes from leak_here() and (optionally) free them.
 *
 *   leaky leak    N SIZE   -> N*SIZE bytes still allocated at exit, all from leak_here
 *   leaky no_leak N SIZE   -> same allocations, all freed before exit
 *
 * Blocks are touched so the allocator cannot elide them, and a volatile sink keeps
 * the compiler from optimising the calls away.  Used by tests/test_profilers.py.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *volatile sink;

__attribute__((noinline)) void *leak_here(size_t size)
{
    void *p = malloc(size);
    if (p)
        memset(p, 0xab, size);
    sink = p;
    return p;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s leak|no_leak N SIZE\n", argv[0]);
        return 2;
    }
    int leak = strcmp(argv[1], "leak") == 0;
    long n = atol(argv[2]);
    size_t size = (size_t)atol(argv[3]);
    void **blocks = calloc((size_t)n, sizeof *blocks);
    for (long i = 0; i < n; i++)
        blocks[i] = leak_here(size);
    if (!leak)
        for (long i = 0; i < n; i++)
            free(blocks[i]);
    free(blocks);
    printf("%s: %ld x %zu bytes\n", leak ? "leaked" : "freed", n, size);
    return 0;
}
