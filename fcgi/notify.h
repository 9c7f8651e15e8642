/*
 * The systemd notification protocol, written out (no libsystemd): one
 * datagram per state change to the socket named by $NOTIFY_SOCKET, for a
 * unit of Type=notify with WatchdogSec. Without that variable every call
 * is a no-op, so the master runs the same under any supervisor.
 */
#ifndef REFACE_FCGI_NOTIFY_H
#define REFACE_FCGI_NOTIFY_H

/*
 * Sends `state` ("READY=1", "WATCHDOG=1", "RELOADING=1", "STOPPING=1",
 * "STATUS=..."). Returns 0 when sent or when there is nobody to tell, -1
 * with errno set if the send failed.
 */
int notify_send(const char *state);

/*
 * The watchdog interval systemd asked for, in seconds ($WATCHDOG_USEC, when
 * $WATCHDOG_PID is unset or ours); 0 when there is no watchdog.
 */
double notify_watchdog_interval(void);

#endif
