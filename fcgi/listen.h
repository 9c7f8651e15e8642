/* The listening socket: bound here, or inherited on fd 0 from spawn-fcgi. */
#ifndef REFACE_FCGI_LISTEN_H
#define REFACE_FCGI_LISTEN_H

#include <stddef.h>

#include "core/config.h"

/*
 * Returns a listening socket for cfg->socket: "unix:/path" (a stale socket
 * file there is replaced; the mode is cfg->socket_mode), "host:port" (IPv4
 * or IPv6, "[::1]:9000"), or, when empty, fd 0 if it is a listening socket
 * (as spawn-fcgi and systemd's StandardInput=socket leave it). Returns -1
 * with a reason in `err` otherwise.
 */
int listen_open(const struct config *cfg, char *err, size_t errlen);

/* Removes the unix socket file listen_open() created, if any. */
void listen_cleanup(const struct config *cfg);

#endif
