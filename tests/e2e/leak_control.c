/*
 * The positive control of tests/e2e/test_leaks.sh: a forked child loses a
 * 4242-byte block and exits, as a worker does. Built with the same
 * sanitizer flags and run with the same settings as the server, it must
 * get a LeakSanitizer report, or the check of the server proves nothing.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Loses its block: the only pointer is overwritten. */
__attribute__((noinline)) static void lose(void)
{
    volatile char *p = malloc(4242);

    p[0] = 1;
    p = NULL;
}

/* Overwrites the stack where lose() kept its pointer. */
__attribute__((noinline)) static void scrub(void)
{
    volatile char junk[4096];

    memset((char *)junk, 0, sizeof(junk));
}

int main(void)
{
    pid_t pid = fork();

    if (pid == 0) {
        lose();
        scrub();
        exit(0);
    }
    waitpid(pid, NULL, 0);
    return 0;
}
