/*
 * The listening socket: bound here, inherited on fd 0 from spawn-fcgi, or
 * passed by systemd socket activation on fd 3.
 */
#ifndef REFACE_FCGI_LISTEN_H
#define REFACE_FCGI_LISTEN_H

#include <stddef.h>

#include "core/config.h"

/* Where the listening socket came from. */
enum listen_origin {
    LISTEN_BOUND,     /* bound here from cfg->socket */
    LISTEN_SYSTEMD,   /* systemd socket activation, fd 3 */
    LISTEN_INHERITED  /* fd 0, from spawn-fcgi or StandardInput=socket */
};

/*
 * Returns the listening socket. A socket systemd passed ($LISTEN_PID is
 * us, $LISTEN_FDS >= 1: fd 3) comes first, whatever cfg->socket says, so
 * that enabling a .socket unit needs no other change. Otherwise
 * cfg->socket: "unix:/path" (a stale socket file there is replaced; the
 * mode is cfg->socket_mode, the group cfg->socket_group), "host:port"
 * (IPv4 or IPv6, "[::1]:9000"), or, when empty, fd 0 if it is a listening
 * socket (as spawn-fcgi leaves it). The descriptor is close-on-exec and
 * `*origin` says where it came from. A socket bound here is not listening
 * yet: the first worker with its model loaded calls listen_start(), so
 * that until then nginx is refused at once instead of waiting. Returns -1
 * with a reason in `err` otherwise.
 */
int listen_open(const struct config *cfg, enum listen_origin *origin,
                char *err, size_t errlen);

/*
 * Worker, once ready: makes `fd` listen if it does not yet (idempotent;
 * an inherited socket keeps its own backlog). Returns 0 or -1 (errno).
 */
int listen_start(int fd, int backlog);

/*
 * Removes the unix socket file listen_open() bound, if any; a socket
 * systemd or spawn-fcgi made is theirs to remove.
 */
void listen_cleanup(const struct config *cfg, enum listen_origin origin);

#endif
