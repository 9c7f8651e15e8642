/*
 * One-line log events on stderr, each written with a single write() so that
 * the lines of concurrent workers never interleave:
 *   2026-12-03T20:15:04Z worker[1234] NOTICE model: loaded name=... ms=...
 */
#ifndef REFACE_CORE_LOG_H
#define REFACE_CORE_LOG_H

enum rlog_level {
    RLOG_ERROR,  /* we failed */
    RLOG_WARN,   /* degraded but handled */
    RLOG_NOTICE, /* life cycle: start, stop, respawn, model loaded */
    RLOG_INFO,   /* one summary line per request, client errors */
    RLOG_DEBUG
};

/*
 * Sets the role printed before the pid ("master", "worker") and the most
 * verbose level written. The logger's settings are the only process-wide
 * state of Reface; each process sets them once, right after it starts or
 * forks. `role` must outlive the process (a string literal).
 */
void rlog_setup(const char *role, enum rlog_level max_level);

/*
 * Points stderr (fd 2) at `path`, opened for appending (created 0640),
 * so that every later line goes there; used at start-up and on SIGUSR1
 * after logrotate moved the file. Returns 0, or -1 with errno set and
 * stderr unchanged.
 */
int rlog_reopen(const char *path);

/* Parses "error".."debug"; returns -1 for anything else. */
int rlog_level_parse(const char *name);

/* Writes one event. The message is truncated, never split, at 1 KiB. */
void rlog(enum rlog_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like rlog(), with ": <strerror> (errno N)" appended for a failed call. */
void rlog_errno(enum rlog_level level, const char *module, int err,
                const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
