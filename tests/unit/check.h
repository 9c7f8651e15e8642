/*
 * A minimal test harness: each test binary defines test functions, runs them
 * with RUN(), and ends with check_summary(), which prints one line the
 * top-level runner adds up ("RESULT <name> <passed> <failed>").
 */
#ifndef REFACE_TESTS_CHECK_H
#define REFACE_TESTS_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct check_state {
    int passed;
    int failed;
    int current_failed;
};

static struct check_state check_state;

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "  FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
            check_state.current_failed = 1;                                 \
        }                                                                   \
    } while (0)

#define CHECK_INT_EQ(a, b)                                                  \
    do {                                                                    \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);     \
        if (check_a_ != check_b_) {                                         \
            fprintf(stderr, "  FAIL %s:%d: %s == %s (%lld != %lld)\n",       \
                    __FILE__, __LINE__, #a, #b, check_a_, check_b_);        \
            check_state.current_failed = 1;                                 \
        }                                                                   \
    } while (0)

#define CHECK_STR_EQ(a, b)                                                  \
    do {                                                                    \
        const char *check_a_ = (a), *check_b_ = (b);                        \
        if (check_a_ == NULL || check_b_ == NULL ||                         \
            strcmp(check_a_, check_b_) != 0) {                              \
            fprintf(stderr, "  FAIL %s:%d: %s == %s (\"%s\" != \"%s\")\n",   \
                    __FILE__, __LINE__, #a, #b,                             \
                    check_a_ ? check_a_ : "(null)",                         \
                    check_b_ ? check_b_ : "(null)");                        \
            check_state.current_failed = 1;                                 \
        }                                                                   \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                               \
    do {                                                                    \
        double check_a_ = (a), check_b_ = (b);                              \
        if (!(fabs(check_a_ - check_b_) <= (tol))) {                        \
            fprintf(stderr, "  FAIL %s:%d: %s ~ %s (%g vs %g, tol %g)\n",    \
                    __FILE__, __LINE__, #a, #b, check_a_, check_b_,         \
                    (double)(tol));                                         \
            check_state.current_failed = 1;                                 \
        }                                                                   \
    } while (0)

#define RUN(fn)                                                             \
    do {                                                                    \
        check_state.current_failed = 0;                                     \
        fn();                                                               \
        if (check_state.current_failed) {                                   \
            check_state.failed++;                                           \
            fprintf(stderr, "not ok %s\n", #fn);                            \
        } else {                                                            \
            check_state.passed++;                                           \
            fprintf(stderr, "ok %s\n", #fn);                                \
        }                                                                   \
    } while (0)

/*
 * Reads a whole file into a new heap buffer of exactly its size, so that
 * ASan catches a read past its end. Returns NULL, with a line on stderr, if
 * the file cannot be read; the caller frees the buffer.
 */
static inline unsigned char *check_read_file(const char *path, size_t *len)
{
    unsigned char *buf;
    long n;
    FILE *f = fopen(path, "rb");

    *len = 0;
    if (f == NULL) {
        fprintf(stderr, "  cannot open %s\n", path);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static inline int check_summary(const char *suite)
{
    printf("RESULT %s %d %d\n", suite, check_state.passed, check_state.failed);
    return check_state.failed ? 1 : 0;
}

#endif
