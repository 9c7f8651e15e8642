/*
 * reface-fcgi: the FastCGI server's entry point. Reads the configuration,
 * reads the model file, opens the listening socket and hands over to the
 * master, which forks the workers.
 */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"
#include "core/predict.h"
#include "fcgi/listen.h"
#include "fcgi/master.h"

static void usage(FILE *out)
{
    fprintf(out,
        "usage: reface-fcgi [-c FILE] [--KEY VALUE]...\n"
        "\n"
        "Serves age, gender and emotion predictions over FastCGI with a\n"
        "pool of pre-forked workers. Each setting comes from its default,\n"
        "then the config file (-c, lines of \"key = value\"), then the\n"
        "command line (--key value, with - or _ in the key).\n"
        "\n"
        "  -c, --config FILE   read settings from FILE first\n"
        "  -s ADDR, -w N, -m PATH, -t N\n"
        "                      short for --socket, --workers, --model,\n"
        "                      --threads\n"
        "  -h, --help          print this help\n"
        "\n"
        "Settings:\n%s"
        "\n"
        "Signals (to the master):\n"
        "  SIGTERM          graceful stop: workers finish the request in\n"
        "                   hand, then exit (stop_timeout, then SIGKILL);\n"
        "                   another SIGTERM changes nothing\n"
        "  SIGINT, SIGQUIT  fast stop: workers are killed at once\n"
        "  SIGHUP           rolling reload: re-read the model file and card,\n"
        "                   replace the workers one at a time (a new one is\n"
        "                   ready before an old one leaves, between requests)\n"
        "  SIGUSR1          reopen log_file (after logrotate); a logged\n"
        "                   no-op when logging to stderr. Sandboxed workers\n"
        "                   may not open files: each finishes its request\n"
        "                   and is replaced by one writing to the new file\n"
        "\n"
        "Under spawn-fcgi, leave the socket unset: the listening socket is\n"
        "inherited on fd 0. Under systemd socket activation ($LISTEN_PID,\n"
        "$LISTEN_FDS) it is fd 3, used instead of any socket setting. With\n"
        "$NOTIFY_SOCKET set (Type=notify) the master sends READY=1 once a\n"
        "worker has loaded the model, WATCHDOG=1 while one is ready\n"
        "($WATCHDOG_USEC), RELOADING=1 and READY=1 around a reload, and\n"
        "STOPPING=1.\n"
        "\n"
        "Exit status: 0 after a stop by signal; 1 if the model, the socket\n"
        "or the user switch fails, or a worker cannot start with the\n"
        "model (the reason is logged); 2 for a bad command line or\n"
        "config file.\n",
        config_help);
}

/*
 * When started as root with a user configured, hands the unix socket to
 * that user and group and switches to them for good, before any worker
 * exists. Returns 0, or -1 with a reason in `err`.
 */
static int drop_privileges(const struct config *cfg,
                           enum listen_origin origin, char *err,
                           size_t errlen)
{
    struct passwd *pw;
    struct group *gr;
    gid_t gid;

    if (geteuid() != 0) {
        return 0;
    }
    if (cfg->user[0] == '\0') {
        rlog(RLOG_WARN, "master", "running as root: set \"user\" to run "
             "the workers unprivileged");
        return 0;
    }
    pw = getpwnam(cfg->user);
    if (pw == NULL) {
        snprintf(err, errlen, "unknown user \"%s\"", cfg->user);
        return -1;
    }
    gid = pw->pw_gid;
    if (cfg->group[0] != '\0') {
        gr = getgrnam(cfg->group);
        if (gr == NULL) {
            snprintf(err, errlen, "unknown group \"%s\"", cfg->group);
            return -1;
        }
        gid = gr->gr_gid;
    }
    /* socket_group, when set, already chose the socket's group. */
    if (origin == LISTEN_BOUND && strncmp(cfg->socket, "unix:", 5) == 0 &&
        chown(cfg->socket + 5, pw->pw_uid,
              cfg->socket_group[0] ? (gid_t)-1 : gid) != 0) {
        snprintf(err, errlen, "chown %s: %s", cfg->socket + 5,
                 strerror(errno));
        return -1;
    }
    if (setgroups(1, &gid) != 0 || setgid(gid) != 0 ||
        setuid(pw->pw_uid) != 0) {
        snprintf(err, errlen, "cannot switch to %s: %s", cfg->user,
                 strerror(errno));
        return -1;
    }
    /* Make sure there is no way back. */
    if (setuid(0) == 0) {
        snprintf(err, errlen, "privileges could be regained after the "
                 "switch to %s", cfg->user);
        return -1;
    }
    rlog(RLOG_NOTICE, "master", "running as user %s (uid %ld, gid %ld)",
         cfg->user, (long)pw->pw_uid, (long)gid);
    return 0;
}

static const struct option long_options[] = {
    { "config", required_argument, NULL, 'c' },
    { "help", no_argument, NULL, 'h' },
    { "socket", required_argument, NULL, 's' },
    { "workers", required_argument, NULL, 'w' },
    { "model", required_argument, NULL, 'm' },
    { "threads", required_argument, NULL, 't' },
    { "card", required_argument, NULL, 0 },
    { "socket-mode", required_argument, NULL, 0 },
    { "backlog", required_argument, NULL, 0 },
    { "max-body", required_argument, NULL, 0 },
    { "max-pixels", required_argument, NULL, 0 },
    { "max-parts", required_argument, NULL, 0 },
    { "max-header", required_argument, NULL, 0 },
    { "crop", required_argument, NULL, 0 },
    { "detector", required_argument, NULL, 0 },
    { "detect-score", required_argument, NULL, 0 },
    { "face-margin", required_argument, NULL, 0 },
    { "detect-retry", required_argument, NULL, 0 },
    { "log-level", required_argument, NULL, 0 },
    { "user", required_argument, NULL, 0 },
    { "group", required_argument, NULL, 0 },
    { "socket-group", required_argument, NULL, 0 },
    { "log-file", required_argument, NULL, 0 },
    { "request-timeout", required_argument, NULL, 0 },
    { "max-requests", required_argument, NULL, 0 },
    { "max-requests-jitter", required_argument, NULL, 0 },
    { "crash-storm-exits", required_argument, NULL, 0 },
    { "crash-storm-window", required_argument, NULL, 0 },
    { "stop-timeout", required_argument, NULL, 0 },
    { "sandbox", required_argument, NULL, 0 },
    { NULL, 0, NULL, 0 },
};

/* Applies the command line to `cfg`; returns 0, 1 for --help, -1 on error. */
static int parse_args(int argc, char **argv, struct config *cfg)
{
    char err[CONFIG_PATH_MAX + 128];
    int opt, index;

    /* First pass: only the config file, so flags override it. */
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "c:hs:w:m:t:", long_options,
                              &index)) != -1) {
        if (opt == 'h') {
            return 1;
        }
        if (opt == 'c' && config_load_file(cfg, optarg, err,
                                           sizeof(err)) != RF_OK) {
            fprintf(stderr, "reface-fcgi: %s\n", err);
            return -1;
        }
    }

    optind = 1;
    opterr = 1;
    while ((opt = getopt_long(argc, argv, "c:hs:w:m:t:", long_options,
                              &index)) != -1) {
        char key[32];
        const char *name;

        switch (opt) {
        case 'c':
            continue;
        case 's':
        case 'w':
        case 'm':
        case 't':
            for (index = 0; long_options[index].val != opt; index++) {
            }
            break;
        case 0:
            break;
        default:
            return -1;
        }
        name = long_options[index].name;
        snprintf(key, sizeof(key), "%s", name);
        for (char *k = key; *k; k++) {
            *k = *k == '-' ? '_' : *k;
        }
        if (config_set(cfg, key, optarg, err, sizeof(err)) != RF_OK) {
            fprintf(stderr, "reface-fcgi: --%s: %s\n", name, err);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "reface-fcgi: unexpected argument \"%s\"\n",
                argv[optind]);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct config cfg;
    char err[CONFIG_PATH_MAX + 128];
    struct predictor_source src;
    enum listen_origin origin = LISTEN_BOUND;
    sigset_t mask;
    int fd, rc;

    master_take_signals(&mask);
    config_defaults(&cfg);
    rc = parse_args(argc, argv, &cfg);
    if (rc != 0) {
        usage(rc > 0 ? stdout : stderr);
        return rc > 0 ? 0 : 2;
    }
    rlog_setup("master", (enum rlog_level)rlog_level_parse(cfg.log_level));
    if (cfg.log_file[0] != '\0' && rlog_reopen(cfg.log_file) != 0) {
        rlog_errno(RLOG_ERROR, "master", errno, "cannot open log_file %s",
                   cfg.log_file);
        return 1;
    }

    /* Read before dropping privileges: the files may be root's alone. */
    if (predictor_source_read(&cfg, &src, err, sizeof(err)) != RF_OK) {
        rlog(RLOG_ERROR, "master", "%s", err);
        predictor_source_release(&src);
        return 1;
    }

    fd = listen_open(&cfg, &origin, err, sizeof(err));
    if (fd < 0 || drop_privileges(&cfg, origin, err, sizeof(err)) != 0) {
        rlog(RLOG_ERROR, "master", "%s", err);
        if (fd >= 0) {
            close(fd);
            listen_cleanup(&cfg, origin);
        }
        predictor_source_release(&src);
        return 1;
    }
    rlog(RLOG_NOTICE, "master", "listening on %s, model %s (%zu bytes, "
         "card %s)", origin == LISTEN_SYSTEMD ? "systemd socket fd 3"
                     : origin == LISTEN_INHERITED ? "inherited fd 0"
                     : cfg.socket,
         cfg.model, src.model_len, src.card_found ? "found" : "missing");

    rc = master_run(&cfg, fd, &src, &mask);

    close(fd);
    listen_cleanup(&cfg, origin);
    predictor_source_release(&src);
    return rc;
}
