/* Binding or inheriting the FastCGI listening socket (fcgi/listen.h). */
#define _POSIX_C_SOURCE 200809L
#include "fcgi/listen.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdlib.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int is_listening(int fd)
{
    int listening = 0;
    socklen_t len = sizeof(listening);

    return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0
           && listening;
}

/*
 * systemd's socket activation: fd 3 when $LISTEN_PID names us. Returns
 * the fd, -1 when systemd passed nothing, -2 (reason in `err`) when what
 * it passed is unusable.
 */
static int activated(char *err, size_t errlen)
{
    const char *pid = getenv("LISTEN_PID");
    const char *fds = getenv("LISTEN_FDS");

    if (pid == NULL || fds == NULL || atol(pid) != (long)getpid() ||
        atoi(fds) < 1) {
        return -1;
    }
    /* The variables are for us alone, not for anything we might start. */
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    if (!is_listening(3)) {
        snprintf(err, errlen, "LISTEN_FDS is set but fd 3 is not a "
                 "listening socket");
        return -2;
    }
    return 3;
}

static int inherited(char *err, size_t errlen)
{
    if (!is_listening(0)) {
        snprintf(err, errlen, "no --socket given and fd 0 is not a "
                 "listening socket (start under spawn-fcgi, or pass "
                 "--socket unix:/path or host:port)");
        return -1;
    }
    return 0;
}

static int set_group(const char *path, const char *group, char *err,
                     size_t errlen)
{
    struct group *gr;

    if (group[0] == '\0') {
        return 0;
    }
    gr = getgrnam(group);
    if (gr == NULL) {
        snprintf(err, errlen, "unknown socket_group \"%s\"", group);
        return -1;
    }
    if (chown(path, (uid_t)-1, gr->gr_gid) != 0) {
        snprintf(err, errlen, "chgrp %s %s: %s", group, path,
                 strerror(errno));
        return -1;
    }
    return 0;
}

static int bind_unix(const char *path, const struct config *cfg, char *err,
                     size_t errlen)
{
    struct sockaddr_un addr;
    struct stat st;
    int fd;

    if (strlen(path) >= sizeof(addr.sun_path)) {
        snprintf(err, errlen, "unix socket path too long: %s", path);
        return -1;
    }
    /* Replace a socket left by a previous run, never a regular file. */
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, errlen, "%s exists and is not a socket", path);
            return -1;
        }
        unlink(path);
    }

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    memcpy(addr.sun_path, path, strlen(path) + 1);

    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        snprintf(err, errlen, "bind %s: %s", path, strerror(errno));
        goto fail;
    }
    if (chmod(path, (mode_t)cfg->socket_mode) != 0) {
        snprintf(err, errlen, "chmod %s: %s", path, strerror(errno));
        goto fail;
    }
    if (set_group(path, cfg->socket_group, err, errlen) != 0) {
        goto fail;
    }
    return fd;

fail:
    close(fd);
    return -1;
}

static int bind_tcp(const char *spec, char *err, size_t errlen)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    const char *h = spec;
    size_t hlen;
    struct addrinfo hints, *res = NULL, *ai;
    int fd = -1, one = 1, rc;

    if (colon == NULL || colon == spec || colon[1] == '\0') {
        snprintf(err, errlen, "socket \"%s\" is not unix:/path or "
                 "host:port", spec);
        return -1;
    }
    hlen = (size_t)(colon - spec);
    if (spec[0] == '[' && hlen >= 2 && colon[-1] == ']') {
        h = spec + 1;
        hlen -= 2;
    }
    if (hlen >= sizeof(host)) {
        snprintf(err, errlen, "host name too long in \"%s\"", spec);
        return -1;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    rc = getaddrinfo(host, colon + 1, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve \"%s\": %s", spec,
                 gai_strerror(rc));
        return -1;
    }

    snprintf(err, errlen, "bind %s: no usable address", spec);
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd < 0) {
            continue;
        }
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            break;
        }
        snprintf(err, errlen, "bind %s: %s", spec, strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

int listen_open(const struct config *cfg, enum listen_origin *origin,
                char *err, size_t errlen)
{
    int fd = activated(err, errlen);

    if (fd == -2) {
        return -1;
    }
    if (fd >= 0) {
        *origin = LISTEN_SYSTEMD;
    } else if (cfg->socket[0] == '\0') {
        *origin = LISTEN_INHERITED;
        fd = inherited(err, errlen);
    } else if (strncmp(cfg->socket, "unix:", 5) == 0) {
        *origin = LISTEN_BOUND;
        return bind_unix(cfg->socket + 5, cfg, err, errlen);
    } else {
        *origin = LISTEN_BOUND;
        return bind_tcp(cfg->socket, err, errlen);
    }
    if (fd >= 0 && fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
        snprintf(err, errlen, "fcntl fd %d: %s", fd, strerror(errno));
        return -1;
    }
    return fd;
}

int listen_start(int fd, int backlog)
{
    if (is_listening(fd)) {
        return 0;
    }
    return listen(fd, backlog);
}

void listen_cleanup(const struct config *cfg, enum listen_origin origin)
{
    struct stat st;
    const char *path = cfg->socket + 5;

    if (origin == LISTEN_BOUND && strncmp(cfg->socket, "unix:", 5) == 0 &&
        lstat(path, &st) == 0 &&
        S_ISSOCK(st.st_mode)) {
        unlink(path);
    }
}
