/*
 * reface-fcgi: the FastCGI server's entry point. Reads the configuration,
 * reads the model file, opens the listening socket and hands over to the
 * master, which forks the workers.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"
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
        "  -s, --socket ADDR   same as --socket\n"
        "  -w, --workers N     same as --workers\n"
        "  -m, --model PATH    same as --model\n"
        "  -t, --threads N     same as --threads\n"
        "  -h, --help          print this help\n"
        "\n"
        "Settings:\n%s"
        "\n"
        "Signals (to the master):\n"
        "  SIGTERM          graceful stop: workers finish the request in\n"
        "                   hand, then exit (30 s limit, then SIGKILL)\n"
        "  SIGINT, SIGQUIT  fast stop: workers are killed at once\n"
        "\n"
        "Under spawn-fcgi, leave the socket unset: the listening socket is\n"
        "inherited on fd 0.\n",
        config_help);
}

/* Reads the whole model file; the master keeps it for every worker. */
static void *read_file(const char *path, size_t *len, char *err,
                       size_t errlen)
{
    struct stat st;
    void *buf = NULL;
    size_t got = 0;
    FILE *f = fopen(path, "rb");

    if (f == NULL) {
        snprintf(err, errlen, "cannot open model \"%s\": %s", path,
                 strerror(errno));
        return NULL;
    }
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) ||
        st.st_size <= 0) {
        snprintf(err, errlen, "model \"%s\" is not a non-empty file", path);
        goto out;
    }
    buf = malloc((size_t)st.st_size);
    if (buf == NULL) {
        snprintf(err, errlen, "out of memory reading \"%s\"", path);
        goto out;
    }
    got = fread(buf, 1, (size_t)st.st_size, f);
    if (got != (size_t)st.st_size) {
        snprintf(err, errlen, "short read on \"%s\"", path);
        free(buf);
        buf = NULL;
        goto out;
    }
    *len = got;

out:
    fclose(f);
    return buf;
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
    { "log-level", required_argument, NULL, 0 },
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
    void *model;
    size_t model_len = 0;
    int fd, rc;

    config_defaults(&cfg);
    rc = parse_args(argc, argv, &cfg);
    if (rc != 0) {
        usage(rc > 0 ? stdout : stderr);
        return rc > 0 ? 0 : 2;
    }
    rlog_setup("master", (enum rlog_level)rlog_level_parse(cfg.log_level));

    model = read_file(cfg.model, &model_len, err, sizeof(err));
    if (model == NULL) {
        rlog(RLOG_ERROR, "master", "%s", err);
        return 1;
    }

    fd = listen_open(&cfg, err, sizeof(err));
    if (fd < 0) {
        rlog(RLOG_ERROR, "master", "%s", err);
        free(model);
        return 1;
    }
    rlog(RLOG_NOTICE, "master", "listening on %s, model %s (%zu bytes)",
         cfg.socket[0] ? cfg.socket : "inherited fd 0", cfg.model,
         model_len);

    rc = master_run(&cfg, fd, model, model_len);

    close(fd);
    listen_cleanup(&cfg);
    free(model);
    return rc;
}
