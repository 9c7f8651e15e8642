/* sd_notify over a datagram socket (fcgi/notify.h). Master only. */
#define _DEFAULT_SOURCE
#include "fcgi/notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int notify_send(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un addr;
    size_t plen;
    socklen_t alen;
    ssize_t sent;
    int fd, saved;

    if (path == NULL || path[0] == '\0') {
        return 0;
    }
    plen = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || plen >= sizeof(addr.sun_path)) {
        errno = EINVAL;
        return -1;
    }
    memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    memcpy(addr.sun_path, path, plen);
    /* '@' names a socket in the abstract namespace: a leading NUL. */
    if (path[0] == '@') {
        addr.sun_path[0] = '\0';
    }
    alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen +
                       (path[0] == '/'));

    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    sent = sendto(fd, state, strlen(state), MSG_NOSIGNAL,
                  (struct sockaddr *)&addr, alen);
    saved = errno;
    close(fd);
    errno = saved;
    return sent < 0 ? -1 : 0;
}

double notify_watchdog_interval(void)
{
    const char *usec = getenv("WATCHDOG_USEC");
    const char *pid = getenv("WATCHDOG_PID");
    char *end;
    double v;

    if (usec == NULL || (pid != NULL && atol(pid) != (long)getpid())) {
        return 0.0;
    }
    v = strtod(usec, &end);
    return end != usec && v > 0 ? v / 1e6 : 0.0;
}
