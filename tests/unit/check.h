/*
 * A minimal test harness: each test binary defines test functions, runs them
 * with RUN(), and ends with check_summary(), which prints one line the
 * top-level runner adds up ("RESULT <name> <passed> <failed>").
 */
#ifndef REFACE_TESTS_CHECK_H
#define REFACE_TESTS_CHECK_H

#include <math.h>
#include <stdio.h>
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

static inline int check_summary(const char *suite)
{
    printf("RESULT %s %d %d\n", suite, check_state.passed, check_state.failed);
    return check_state.failed ? 1 : 0;
}

#endif
