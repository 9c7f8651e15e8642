/*
 * The listening socket: bound here, inherited on fd 0 from spawn-fcgi, or
 * passed by systemd socket activation on fd 3.
 */
#ifndef REFACE_FCGI_LISTEN_H
#define REFACE_FCGI_LISTEN_H

#include <stddef.h>

#include "core/config.h"

/*
 * Returns the socket for cfg->socket: "unix:/path" (a stale socket file
 * there is replaced; the mode is cfg->socket_mode, the group
 * cfg->socket_group), "host:port" (IPv4 or IPv6, "[::1]:9000"), or, when
 * empty, the socket systemd passed ($LISTEN_PID is us, $LISTEN_FDS >= 1:
 * fd 3), else fd 0 if it is a listening socket (as spawn-fcgi and
 * systemd's StandardInput=socket leave it). The descriptor is
 * close-on-exec. A socket bound here is not listening yet: the first
 * worker with its model loaded calls listen_start(), so that until then
 * nginx is refused at once instead of waiting. Returns -1 with a reason in
 * `err` otherwise.
 */
int listen_open(const struct config *cfg, char *err, size_t errlen);

/*
 * Worker, once ready: makes `fd` listen if it does not yet (idempotent;
 * an inherited socket keeps its own backlog). Returns 0 or -1 (errno).
 */
int listen_start(int fd, int backlog);

/* Removes the unix socket file listen_open() created, if any. */
void listen_cleanup(const struct config *cfg);

#endif
