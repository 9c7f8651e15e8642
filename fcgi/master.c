/*
 * The pool manager (fcgi/master.h). Signals are taken synchronously with
 * sigtimedwait(), so the master has no signal handlers and no state outside
 * `struct pool`.
 */
#define _DEFAULT_SOURCE
#include "fcgi/master.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "fcgi/worker.h"

#define POOL_MAX 256
/* A worker that dies within this many seconds of its start "crashed early". */
#define EARLY_DEATH_S 2.0
/* Respawn delay after early deaths doubles up to this cap. */
#define BACKOFF_MAX_S 30.0
/* How long SIGTERM waits for in-flight requests before SIGKILL. */
#define GRACEFUL_TIMEOUT_S 30.0

struct slot {
    pid_t pid;          /* 0: empty */
    double started;     /* monotonic seconds */
    double respawn_at;  /* when an empty slot may be refilled */
};

enum stop_mode { RUNNING, STOP_GRACEFUL, STOP_FAST };

struct pool {
    const struct config *cfg;
    int listen_fd;
    const struct predictor_source *src;
    int size;
    struct slot slots[POOL_MAX];
    enum stop_mode stop;
    double stop_deadline;
    double backoff;     /* current respawn delay after an early death */
    int fatal;          /* a worker could not start: exit 1 */
};

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int live_workers(const struct pool *p)
{
    int n = 0;

    for (int i = 0; i < p->size; i++) {
        n += p->slots[i].pid != 0;
    }
    return n;
}

static void signal_all(const struct pool *p, int sig)
{
    for (int i = 0; i < p->size; i++) {
        if (p->slots[i].pid != 0) {
            kill(p->slots[i].pid, sig);
        }
    }
}

static void spawn(struct pool *p, int i, const sigset_t *old_mask)
{
    pid_t pid = fork();

    if (pid < 0) {
        rlog_errno(RLOG_ERROR, "master", errno, "fork failed, retry in 1 s");
        p->slots[i].respawn_at = now_s() + 1.0;
        return;
    }
    if (pid == 0) {
        /* Child: from here on this is a worker, never the master. */
        sigprocmask(SIG_SETMASK, old_mask, NULL);
        worker_main(p->cfg, p->listen_fd, p->src);
    }
    p->slots[i].pid = pid;
    p->slots[i].started = now_s();
    rlog(RLOG_NOTICE, "master", "started worker slot=%d pid=%ld", i,
         (long)pid);
}

static void describe_exit(int status, char *out, size_t outsz)
{
    if (WIFEXITED(status)) {
        snprintf(out, outsz, "exited with code %d", WEXITSTATUS(status));
    } else if (WIFSIGNALED(status)) {
        snprintf(out, outsz, "killed by signal %d (%s)%s", WTERMSIG(status),
                 strsignal(WTERMSIG(status)),
                 WCOREDUMP(status) ? ", core dumped" : "");
    } else {
        snprintf(out, outsz, "ended with status 0x%x", status);
    }
}

static void reap(struct pool *p)
{
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        char why[128];
        double now = now_s();
        int i;

        for (i = 0; i < p->size && p->slots[i].pid != pid; i++) {
        }
        if (i == p->size) {
            continue;
        }
        p->slots[i].pid = 0;
        describe_exit(status, why, sizeof(why));

        if (p->stop != RUNNING) {
            rlog(RLOG_NOTICE, "master", "worker pid=%ld %s", (long)pid, why);
            continue;
        }
        if (WIFEXITED(status) &&
            WEXITSTATUS(status) == WORKER_EXIT_CANNOT_START) {
            rlog(RLOG_ERROR, "master", "worker pid=%ld could not start "
                 "(see its log line above); stopping", (long)pid);
            p->fatal = 1;
            continue;
        }

        if (now - p->slots[i].started < EARLY_DEATH_S) {
            p->backoff = p->backoff == 0.0 ? 0.5 : p->backoff * 2.0;
            if (p->backoff > BACKOFF_MAX_S) {
                p->backoff = BACKOFF_MAX_S;
            }
        } else {
            p->backoff = 0.0;
        }
        p->slots[i].respawn_at = now + p->backoff;
        rlog(WIFEXITED(status) && WEXITSTATUS(status) == 0 ? RLOG_NOTICE
                                                           : RLOG_WARN,
             "master", "worker pid=%ld %s; respawning in %.1f s", (long)pid,
             why, p->backoff);
    }
}

static void begin_stop(struct pool *p, int sig)
{
    if (sig == SIGTERM && p->stop == RUNNING) {
        rlog(RLOG_NOTICE, "master", "SIGTERM: graceful stop, waiting up to "
             "%.0f s for requests in flight", GRACEFUL_TIMEOUT_S);
        p->stop = STOP_GRACEFUL;
        p->stop_deadline = now_s() + GRACEFUL_TIMEOUT_S;
        signal_all(p, SIGTERM);
    } else if (p->stop != STOP_FAST) {
        rlog(RLOG_NOTICE, "master", "%s: fast stop", strsignal(sig));
        p->stop = STOP_FAST;
        signal_all(p, SIGKILL);
    }
}

int master_run(const struct config *cfg, int listen_fd,
               const struct predictor_source *src)
{
    struct pool pool;
    struct pool *p = &pool;
    sigset_t set, old_mask;

    memset(p, 0, sizeof(*p));
    p->cfg = cfg;
    p->listen_fd = listen_fd;
    p->src = src;
    p->size = cfg->workers;
    if (p->size <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        p->size = cores > 0 ? (int)cores : 1;
    }
    if (p->size > POOL_MAX) {
        p->size = POOL_MAX;
    }

    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGQUIT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, &old_mask);
    /*
     * A signal whose action is "ignore" is dropped even while blocked, and
     * a shell starts background jobs with SIGINT and SIGQUIT ignored: put
     * every signal we wait for back to its default so none gets lost.
     */
    for (int sig = 1; sig < NSIG; sig++) {
        if (sigismember(&set, sig) == 1) {
            signal(sig, SIG_DFL);
        }
    }

    rlog(RLOG_NOTICE, "master", "starting %d workers", p->size);
    for (;;) {
        struct timespec wait = { .tv_sec = 0, .tv_nsec = 250000000 };
        siginfo_t info;
        double now = now_s();
        int sig;

        if (p->stop == RUNNING && !p->fatal) {
            for (int i = 0; i < p->size; i++) {
                if (p->slots[i].pid == 0 && p->slots[i].respawn_at <= now) {
                    spawn(p, i, &old_mask);
                }
            }
        }
        if (p->fatal && p->stop == RUNNING) {
            p->stop = STOP_FAST;
            signal_all(p, SIGKILL);
        }
        if (p->stop != RUNNING && live_workers(p) == 0) {
            break;
        }
        if (p->stop == STOP_GRACEFUL && now > p->stop_deadline) {
            rlog(RLOG_WARN, "master", "graceful stop timed out; killing "
                 "%d workers", live_workers(p));
            p->stop = STOP_FAST;
            signal_all(p, SIGKILL);
        }

        sig = sigtimedwait(&set, &info, &wait);
        if (sig == SIGCHLD) {
            reap(p);
        } else if (sig == SIGTERM || sig == SIGINT || sig == SIGQUIT) {
            begin_stop(p, sig);
        } else if (sig == SIGHUP) {
            rlog(RLOG_NOTICE, "master", "SIGHUP ignored: rolling reload "
                 "is not implemented yet");
        } else if (sig < 0 && errno != EAGAIN && errno != EINTR) {
            rlog_errno(RLOG_ERROR, "master", errno, "sigtimedwait failed");
        }
        /* A SIGCHLD can be merged with another signal: always reap. */
        reap(p);
    }

    rlog(RLOG_NOTICE, "master", "stopped");
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    return p->fatal ? 1 : 0;
}
