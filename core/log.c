/* The one-line, one-write() logger described in core/log.h. */
#define _POSIX_C_SOURCE 200809L
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static const char *log_role = "reface";
static enum rlog_level log_max = RLOG_INFO;

static const char *const level_names[] = {
    "ERROR", "WARN", "NOTICE", "INFO", "DEBUG"
};

void rlog_setup(const char *role, enum rlog_level max_level)
{
    log_role = role;
    log_max = max_level;
}

int rlog_reopen(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    int saved;

    if (fd < 0) {
        return -1;
    }
    /* dup2 swaps fd 2 in one step: no line is lost or half-written. */
    if (fd != 2 && dup2(fd, 2) < 0) {
        saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    if (fd != 2) {
        close(fd);
    }
    return 0;
}

int rlog_level_parse(const char *name)
{
    for (int i = 0; i <= RLOG_DEBUG; i++) {
        if (strcasecmp(name, level_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

static void log_emit(enum rlog_level level, const char *module, int err,
                     const char *fmt, va_list ap)
{
    char line[1280];
    size_t off = 0;
    struct timespec ts;
    struct tm tm;
    int n;

    if (level > log_max) {
        return;
    }

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    off = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    n = snprintf(line + off, sizeof(line) - off, ".%03ldZ %s[%ld] %s %s: ",
                 ts.tv_nsec / 1000000, log_role, (long)getpid(),
                 level_names[level], module);
    if (n > 0 && (size_t)n < sizeof(line) - off) {
        off += (size_t)n;
    }

    /* The message gets at most 1 KiB; the rest is for the errno suffix. */
    if (off < sizeof(line) - 1024 - 100) {
        n = vsnprintf(line + off, 1024, fmt, ap);
        if (n > 0) {
            off += (size_t)n < 1024 ? (size_t)n : 1023;
        }
    }

    if (err != 0) {
        n = snprintf(line + off, sizeof(line) - off - 1, ": %s (errno %d)",
                     strerror(err), err);
        if (n > 0 && (size_t)n < sizeof(line) - off - 1) {
            off += (size_t)n;
        }
    }
    line[off++] = '\n';

    /* A short write to stderr is not worth a retry loop: nothing to do. */
    ssize_t w = write(STDERR_FILENO, line, off);
    (void)w;
}

void rlog(enum rlog_level level, const char *module, const char *fmt, ...)
{
    int saved = errno;
    va_list ap;

    va_start(ap, fmt);
    log_emit(level, module, 0, fmt, ap);
    va_end(ap);
    errno = saved;
}

void rlog_errno(enum rlog_level level, const char *module, int err,
                const char *fmt, ...)
{
    int saved = errno;
    va_list ap;

    va_start(ap, fmt);
    log_emit(level, module, err, fmt, ap);
    va_end(ap);
    errno = saved;
}
