/*
 * The pool manager (fcgi/master.h). Signals are taken synchronously with
 * sigtimedwait(), so the master has no signal handlers and no state outside
 * `struct pool`; it wakes at least every TICK to check deadlines, reloads
 * and the watchdog. What the workers do is read from the shared
 * scoreboard; the master is the only writer of restarts and slots.
 */
#define _DEFAULT_SOURCE
#include "fcgi/master.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "fcgi/digest.h"
#include "fcgi/notify.h"
#include "fcgi/scoreboard.h"
#include "fcgi/worker.h"

/* The master's wake-up period: the resolution of the request deadline. */
#define TICK_NS 250000000L
/* A worker that dies within this many seconds of its start "crashed early". */
#define EARLY_DEATH_S 2.0
/* Respawn delay after early deaths or a crash storm doubles up to this. */
#define BACKOFF_MAX_S 30.0
/* crash_storm_exits is at most this (core/config.c). */
#define STORM_MAX 1000

struct slot {
    pid_t pid;          /* 0: empty */
    double started;     /* monotonic seconds */
    unsigned gen;       /* model generation it was forked with */
    int retiring;       /* sent SIGTERM by a reload: not replaced */
    int deadline_killed;/* SIGKILLed by us for an overdue request */
};

enum stop_mode { RUNNING, STOP_GRACEFUL, STOP_FAST };

struct pool {
    const struct config *cfg;
    int listen_fd;
    struct scoreboard *sb;
    int size;
    struct slot slots[SB_SLOTS];
    enum stop_mode stop;
    double stop_deadline;
    int fatal;          /* a worker could not start: exit 1 */

    /* The model: the generation now rolled out, and during a reload the
     * one before, kept to go back to if the new one cannot start. */
    struct predictor_source *src;
    unsigned gen, last_gen;
    int gen_ok;         /* a worker of `gen` has been ready */
    struct predictor_source prev;
    unsigned prev_gen;
    int prev_ok;        /* a worker of prev_gen had been ready */
    int have_prev;
    int reloading;      /* told systemd RELOADING=1 */

    /* Crash storms: times of the latest abnormal exits, a ring. */
    double exits[STORM_MAX];
    int exit_next;
    double backoff;     /* current respawn delay */
    double spawn_after; /* no fork before this time */

    int told_ready;
    double watchdog_every, watchdog_next;
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

    for (int i = 0; i < SB_SLOTS; i++) {
        n += p->slots[i].pid != 0;
    }
    return n;
}

static void signal_all(const struct pool *p, int sig)
{
    for (int i = 0; i < SB_SLOTS; i++) {
        if (p->slots[i].pid != 0) {
            kill(p->slots[i].pid, sig);
        }
    }
}

static int slot_ready(const struct pool *p, int i)
{
    return atomic_load(&p->sb->slot[i].ready);
}

/* Publishes the current model's name (made safe as a label) and hash. */
static void publish_model(struct pool *p)
{
    char name[SB_NAME_MAX], sha[DIGEST_HEX_SIZE];
    size_t i;

    snprintf(name, sizeof(name), "%.*s", (int)sizeof(name) - 1,
             p->src->card.name);
    for (i = 0; name[i] != '\0'; i++) {
        if (name[i] == '"' || name[i] == '\\' || (unsigned char)name[i] < 32
            || (unsigned char)name[i] >= 127) {
            name[i] = '_';
        }
    }
    digest_sha256_hex(p->src->model, p->src->model_len, sha);
    sb_set_model(p->sb, p->gen, name, sha);
    rlog(RLOG_NOTICE, "master", "model generation=%u name=%s sha256=%s "
         "bytes=%zu", p->gen, name, sha, p->src->model_len);
}

static void spawn(struct pool *p, int i, const sigset_t *old_mask)
{
    pid_t master = getpid();
    pid_t pid = fork();

    if (pid < 0) {
        rlog_errno(RLOG_ERROR, "master", errno, "fork failed, retry in 1 s");
        p->spawn_after = now_s() + 1.0;
        return;
    }
    if (pid == 0) {
        /* Child: from here on this is a worker, never the master. */
        sigprocmask(SIG_SETMASK, old_mask, NULL);
        /*
         * A master killed outright (SIGKILL, the OOM killer) cannot stop
         * its workers, and they would go on holding the socket: the kernel
         * sends them SIGTERM, the graceful stop, when it dies. If it died
         * before this line, leave now. The master never changes its
         * credentials after forking, which would clear this setting.
         */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != master) {
            _exit(0);
        }
        worker_main(p->cfg, p->listen_fd, p->src, p->sb, i);
    }
    memset(&p->slots[i], 0, sizeof(p->slots[i]));
    p->slots[i].pid = pid;
    p->slots[i].started = now_s();
    p->slots[i].gen = p->gen;
    sb_slot_claim(p->sb, i, pid, p->gen);
    rlog(RLOG_NOTICE, "master", "started worker slot=%d pid=%ld "
         "generation=%u", i, (long)pid, p->gen);
}

static int free_slot(const struct pool *p)
{
    for (int i = 0; i < SB_SLOTS; i++) {
        if (p->slots[i].pid == 0) {
            return i;
        }
    }
    return -1;
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

/* Goes back to the previous model after the new one failed to start. */
static void revert_reload(struct pool *p)
{
    rlog(RLOG_ERROR, "master", "reload failed: generation %u cannot start "
         "(see the worker's line above); keeping generation %u", p->gen,
         p->prev_gen);
    predictor_source_release(p->src);
    *p->src = p->prev;
    memset(&p->prev, 0, sizeof(p->prev));
    p->have_prev = 0;
    p->gen = p->prev_gen;
    /* A SIGHUP during start-up: the first model is still unproven, and a
     * worker that cannot start with it must still stop the master. */
    p->gen_ok = p->prev_ok;
    p->reloading = 0;
    if (p->told_ready) {
        notify_send("READY=1\nSTATUS=reload failed, serving the previous "
                    "model");
    }
}

/*
 * Records an abnormal exit; returns 1 when it completes a crash storm
 * (crash_storm_exits of them within crash_storm_window seconds).
 */
static int storm(struct pool *p, double now)
{
    int n = p->cfg->crash_storm_exits;
    double oldest;

    if (n > STORM_MAX) {
        n = STORM_MAX;
    }
    p->exits[p->exit_next] = now;
    p->exit_next = (p->exit_next + 1) % n;
    /* The slot we overwrite next holds the n-th latest exit. */
    oldest = p->exits[p->exit_next];
    return oldest > 0.0 && now - oldest <= p->cfg->crash_storm_window;
}

static void back_off(struct pool *p, double now, int in_storm)
{
    p->backoff = p->backoff == 0.0 ? 0.5 : p->backoff * 2.0;
    if (p->backoff > BACKOFF_MAX_S) {
        p->backoff = BACKOFF_MAX_S;
    }
    p->spawn_after = now + p->backoff;
    if (in_storm) {
        atomic_fetch_add(&p->sb->backoffs, 1);
        rlog(RLOG_WARN, "master", "crash storm: %d abnormal worker exits "
             "within %.0f s; respawning in %.1f s", p->cfg->crash_storm_exits,
             p->cfg->crash_storm_window, p->backoff);
    }
}

/* Why a worker that was running ended, and whether that is a crash. */
static enum sb_cause cause_of(const struct pool *p, int i, int status,
                              int *abnormal)
{
    *abnormal = 0;
    if (p->slots[i].deadline_killed) {
        return SB_CAUSE_DEADLINE;
    }
    if (p->slots[i].retiring) {
        return SB_CAUSE_RELOAD;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
        atomic_load(&p->sb->slot[i].recycling)) {
        return SB_CAUSE_RECYCLE;
    }
    *abnormal = 1;
    return WIFSIGNALED(status) ? SB_CAUSE_SIGNAL : SB_CAUSE_EXIT;
}

static void reaped(struct pool *p, int i, pid_t pid, int status)
{
    struct slot dead = p->slots[i];
    double now = now_s();
    enum sb_cause cause;
    char why[128];
    int abnormal;

    describe_exit(status, why, sizeof(why));
    cause = cause_of(p, i, status, &abnormal);
    p->slots[i].pid = 0;
    sb_slot_clear(p->sb, i);

    if (p->stop != RUNNING) {
        rlog(RLOG_NOTICE, "master", "worker pid=%ld %s", (long)pid, why);
        return;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == WORKER_EXIT_CANNOT_START
        && dead.gen == p->gen && !p->gen_ok) {
        if (p->have_prev) {
            revert_reload(p);
            return;
        }
        rlog(RLOG_ERROR, "master", "worker pid=%ld could not start "
             "(see its log line above); stopping", (long)pid);
        p->fatal = 1;
        return;
    }

    atomic_fetch_add(&p->sb->restarts[cause], 1);
    if (abnormal) {
        int in_storm = storm(p, now);

        if (in_storm || now - dead.started < EARLY_DEATH_S) {
            back_off(p, now, in_storm);
        } else {
            p->backoff = 0.0;
        }
    }
    rlog(abnormal ? RLOG_WARN : RLOG_NOTICE, "master", "worker pid=%ld %s "
         "cause=%s served=%llu; %s", (long)pid, why, sb_cause_name(cause),
         (unsigned long long)atomic_load(&p->sb->slot[i].served),
         cause == SB_CAUSE_RELOAD    ? "replaced by a new generation"
         : cause == SB_CAUSE_RECYCLE ? "replaced when it stopped accepting"
                                     : "respawning");
}

static void reap(struct pool *p)
{
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (int i = 0; i < SB_SLOTS; i++) {
            if (p->slots[i].pid == pid) {
                reaped(p, i, pid, status);
                break;
            }
        }
    }
}

/* SIGKILLs each worker whose request is older than request_timeout. */
static void enforce_deadlines(struct pool *p)
{
    long long limit = (long long)(p->cfg->request_timeout * 1e6);
    long long now = sb_now_us();

    if (limit <= 0) {
        return;
    }
    for (int i = 0; i < SB_SLOTS; i++) {
        struct sb_slot *s = &p->sb->slot[i];
        long long since;
        char id[SB_ID_MAX];

        if (p->slots[i].pid == 0 || p->slots[i].deadline_killed) {
            continue;
        }
        since = atomic_load_explicit(&s->busy_since_us,
                                     memory_order_acquire);
        if (since == 0 || now - since <= limit) {
            continue;
        }
        sb_slot_request_id(s, id, sizeof(id));
        /*
         * The worker may have finished that request and started another
         * while we looked: only kill it if it is still on the same one.
         * XXX: this narrows the window, it does not close it: a request
         * that starts between this load and the kill is lost with it.
         */
        if (atomic_load_explicit(&s->busy_since_us,
                                 memory_order_acquire) != since) {
            continue;
        }
        kill(p->slots[i].pid, SIGKILL);
        p->slots[i].deadline_killed = 1;
        rlog(RLOG_WARN, "master", "worker pid=%ld over request_timeout "
             "(%.1f s) on request id=%s after %.1f s; killed",
             (long)p->slots[i].pid, p->cfg->request_timeout, id,
             (double)(now - since) / 1e6);
    }
}

/*
 * Keeps `size` workers, and rolls a reload forward: while a worker of an
 * older generation is left, start one extra worker of the new generation,
 * wait until it is ready, then retire one old worker (SIGTERM: it leaves
 * between requests). At most one new worker is starting at a time, so
 * the pool never has fewer than `size` ready workers for long.
 */
static void maintain(struct pool *p, double now, const sigset_t *old_mask)
{
    int active = 0, old = 0, starting = 0, old_idle = -1, old_any = -1;

    for (int i = 0; i < SB_SLOTS; i++) {
        const struct slot *s = &p->slots[i];

        /*
         * A worker leaving after max_requests accepts nothing more but
         * takes a while to exit (libtorch's teardown): its replacement
         * starts now rather than once it is reaped.
         */
        if (s->pid == 0 || s->retiring ||
            atomic_load(&p->sb->slot[i].recycling)) {
            continue;
        }
        active++;
        if (s->gen != p->gen) {
            old++;
            old_any = i;
            if (atomic_load(&p->sb->slot[i].busy_since_us) == 0) {
                old_idle = i;
            }
        } else if (!slot_ready(p, i)) {
            starting++;
        } else {
            p->gen_ok = 1;
        }
    }

    while (active < p->size && now >= p->spawn_after && !p->fatal) {
        int i = free_slot(p);

        if (i < 0) {
            break;
        }
        spawn(p, i, old_mask);
        active++;
        starting++;
    }

    if (old > 0 && starting == 0) {
        if (active > p->size) {
            int i = old_idle >= 0 ? old_idle : old_any;

            p->slots[i].retiring = 1;
            kill(p->slots[i].pid, SIGTERM);
            rlog(RLOG_NOTICE, "master", "reload: retiring worker pid=%ld "
                 "generation=%u (%d old left)", (long)p->slots[i].pid,
                 p->slots[i].gen, old - 1);
        } else if (now >= p->spawn_after) {
            int i = free_slot(p);

            if (i >= 0) {
                spawn(p, i, old_mask);
            }
        }
    }
    if (old == 0 && p->gen_ok && p->have_prev) {
        predictor_source_release(&p->prev);
        p->have_prev = 0;
    }
    if (old == 0 && p->gen_ok && p->reloading) {
        p->reloading = 0;
        /* /metrics and /ready name the new model once it is all served. */
        publish_model(p);
        notify_send("READY=1\nSTATUS=reload done");
        rlog(RLOG_NOTICE, "master", "reload: every worker runs "
             "generation %u", p->gen);
    }
}

static void reload(struct pool *p)
{
    struct predictor_source fresh;
    char err[CONFIG_PATH_MAX + 128];

    memset(&fresh, 0, sizeof(fresh));
    if (predictor_source_read(p->cfg, &fresh, err, sizeof(err)) != RF_OK) {
        rlog(RLOG_ERROR, "master", "SIGHUP: cannot read the model, keeping "
             "generation %u: %s", p->gen, err);
        predictor_source_release(&fresh);
        return;
    }
    /* Keep the last generation known to start, to go back to. */
    if (p->have_prev && p->gen_ok) {
        predictor_source_release(&p->prev);
        p->have_prev = 0;
    }
    if (!p->have_prev) {
        p->prev = *p->src;
        p->prev_gen = p->gen;
        p->prev_ok = p->gen_ok;
        p->have_prev = 1;
    } else {
        predictor_source_release(p->src);
    }
    *p->src = fresh;
    p->gen = ++p->last_gen;
    p->gen_ok = 0;
    p->reloading = 1;
    notify_send("RELOADING=1");
    rlog(RLOG_NOTICE, "master", "SIGHUP: rolling reload to generation %u "
         "(%s, %zu bytes, card name %s)", p->gen, p->cfg->model,
         p->src->model_len, p->src->card.name);
}

static void reopen_logs(struct pool *p)
{
    if (p->cfg->log_file[0] == '\0') {
        rlog(RLOG_NOTICE, "master", "SIGUSR1: logging to stderr, no "
             "log_file to reopen");
        return;
    }
    if (rlog_reopen(p->cfg->log_file) != 0) {
        rlog_errno(RLOG_ERROR, "master", errno, "SIGUSR1: cannot reopen %s",
                   p->cfg->log_file);
        return;
    }
    rlog(RLOG_NOTICE, "master", "SIGUSR1: reopened %s", p->cfg->log_file);
    signal_all(p, SIGUSR1);
}

/*
 * SIGTERM stops gracefully and a repeated SIGTERM changes nothing (a
 * process group kill and a supervisor may both send one); SIGINT and
 * SIGQUIT stop at once, also during a graceful stop.
 */
static void begin_stop(struct pool *p, int sig)
{
    notify_send("STOPPING=1");
    if (sig == SIGTERM && p->stop != RUNNING) {
        rlog(RLOG_NOTICE, "master", "SIGTERM: already stopping");
    } else if (sig == SIGTERM) {
        rlog(RLOG_NOTICE, "master", "SIGTERM: graceful stop, waiting up to "
             "%.1f s for requests in flight", p->cfg->stop_timeout);
        p->stop = STOP_GRACEFUL;
        p->stop_deadline = now_s() + p->cfg->stop_timeout;
        signal_all(p, SIGTERM);
    } else if (p->stop != STOP_FAST) {
        rlog(RLOG_NOTICE, "master", "%s: fast stop", strsignal(sig));
        p->stop = STOP_FAST;
        signal_all(p, SIGKILL);
    }
}

/*
 * A worker blocks SIGTERM while it serves, and one that arrives just
 * before it enters accept() would leave it waiting there: repeating the
 * signal every tick reaches it either way.
 */
static void nudge_leavers(const struct pool *p)
{
    for (int i = 0; i < SB_SLOTS; i++) {
        if (p->slots[i].pid != 0 &&
            (p->stop == STOP_GRACEFUL || p->slots[i].retiring)) {
            kill(p->slots[i].pid, SIGTERM);
        }
    }
}

static void tell_supervisor(struct pool *p, double now)
{
    int ready, busy;

    if (sb_workers(p->sb, &ready, &busy) == 0 || ready == 0) {
        return;
    }
    if (!p->told_ready) {
        p->told_ready = 1;
        notify_send("READY=1\nSTATUS=serving");
        rlog(RLOG_NOTICE, "master", "ready: a worker has loaded the model");
    }
    if (p->watchdog_every > 0.0 && now >= p->watchdog_next) {
        notify_send("WATCHDOG=1");
        p->watchdog_next = now + p->watchdog_every / 2.0;
    }
}

static int pool_size(const struct config *cfg)
{
    int n = cfg->workers;

    if (n <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        n = cores > 0 ? (int)cores : 1;
    }
    return n < SB_SLOTS - 1 ? n : SB_SLOTS - 1;
}

static const int waited_signals[] = {
    SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1,
};

static void waited_set(sigset_t *set)
{
    sigemptyset(set);
    for (size_t i = 0; i < sizeof(waited_signals) / sizeof(waited_signals[0]);
         i++) {
        sigaddset(set, waited_signals[i]);
    }
}

void master_take_signals(sigset_t *old_mask)
{
    sigset_t set;

    waited_set(&set);
    sigprocmask(SIG_BLOCK, &set, old_mask);
    /*
     * A signal whose action is "ignore" is dropped even while blocked, and
     * a shell starts background jobs with SIGINT and SIGQUIT ignored: put
     * every signal we wait for back to its default so none gets lost.
     */
    for (size_t i = 0; i < sizeof(waited_signals) / sizeof(waited_signals[0]);
         i++) {
        signal(waited_signals[i], SIG_DFL);
    }
}

int master_run(const struct config *cfg, int listen_fd,
               struct predictor_source *src, const sigset_t *mask)
{
    struct pool pool;
    struct pool *p = &pool;
    sigset_t set, old_mask = *mask;

    memset(p, 0, sizeof(*p));
    p->cfg = cfg;
    p->listen_fd = listen_fd;
    p->src = src;
    p->size = pool_size(cfg);
    p->gen = p->last_gen = 1;
    p->watchdog_every = notify_watchdog_interval();
    p->sb = sb_new();
    if (p->sb == NULL) {
        rlog_errno(RLOG_ERROR, "master", errno, "cannot map the scoreboard");
        return 1;
    }
    atomic_store(&p->sb->pool_size, p->size);
    publish_model(p);
    waited_set(&set);

    rlog(RLOG_NOTICE, "master", "starting %d workers (request_timeout=%.1f "
         "s, max_requests=%ld+%ld)", p->size, cfg->request_timeout,
         cfg->max_requests, cfg->max_requests_jitter);
    for (;;) {
        struct timespec wait = { .tv_sec = 0, .tv_nsec = TICK_NS };
        siginfo_t info;
        double now = now_s();
        int sig;

        if (p->stop == RUNNING && !p->fatal) {
            maintain(p, now, &old_mask);
            tell_supervisor(p, now);
        }
        if (p->stop != STOP_FAST) {
            enforce_deadlines(p);
            nudge_leavers(p);
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
            if (p->stop == RUNNING) {
                reload(p);
            }
        } else if (sig == SIGUSR1) {
            reopen_logs(p);
        } else if (sig < 0 && errno != EAGAIN && errno != EINTR) {
            rlog_errno(RLOG_ERROR, "master", errno, "sigtimedwait failed");
        }
        /* A SIGCHLD can be merged with another signal: always reap. */
        reap(p);
    }

    rlog(RLOG_NOTICE, "master", "stopped");
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    if (p->have_prev) {
        predictor_source_release(&p->prev);
    }
    sb_free(p->sb);
    return p->fatal ? 1 : 0;
}
