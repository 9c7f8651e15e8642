/* fcgi/queue.c: reading nginx's REQUEST_START stamp into a queue wait. */
#include <time.h>

#include "fcgi/queue.h"
#include "tests/unit/check.h"

/* 2026-12-04 12:00:00.250 UTC, as CLOCK_REALTIME gives it. */
static const struct timespec noon = { 1796385600, 250000000 };

static void test_waits(void)
{
    double w = -1.0;

    CHECK_INT_EQ(queue_wait("1796385600.250", &noon, &w), 0);
    CHECK_NEAR(w, 0.0, 1e-6);
    CHECK_INT_EQ(queue_wait("1796385565.000", &noon, &w), 0);
    CHECK_NEAR(w, 35.25, 1e-6);
    /* Fewer than three digits of milliseconds are tenths or hundredths. */
    CHECK_INT_EQ(queue_wait("1796385599.5", &noon, &w), 0);
    CHECK_NEAR(w, 0.75, 1e-6);
    CHECK_INT_EQ(queue_wait("1796385599.25", &noon, &w), 0);
    CHECK_NEAR(w, 1.0, 1e-6);
    /* Whole seconds, no fraction. */
    CHECK_INT_EQ(queue_wait("1796385500", &noon, &w), 0);
    CHECK_NEAR(w, 100.25, 1e-6);
}

/* A stamp from a host whose clock is ahead must not make a negative wait. */
static void test_future_stamp(void)
{
    double w = -1.0;

    CHECK_INT_EQ(queue_wait("1796385700.000", &noon, &w), 0);
    CHECK_NEAR(w, 0.0, 0.0);
}

/* Anything but nginx's $msec is ignored, and leaves the wait untouched. */
static void test_malformed(void)
{
    static const char *const bad[] = {
        "", ".5", "1796385600.", "1796385600.1234", "-1796385600",
        "1796385600.25x", " 1796385600", "1796385600 ", "17963856e2",
        "1234567890123", "0x6b12", "nan",
    };
    double w = 42.0;

    CHECK_INT_EQ(queue_wait(NULL, &noon, &w), -1);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_INT_EQ(queue_wait(bad[i], &noon, &w), -1);
    }
    CHECK_NEAR(w, 42.0, 0.0);
}

int main(void)
{
    RUN(test_waits);
    RUN(test_future_stamp);
    RUN(test_malformed);
    return check_summary("queue");
}
