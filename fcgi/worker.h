/*
 * A worker process: loads the model after fork(), then accepts FastCGI
 * requests on the inherited listening socket and serves them one at a time.
 */
#ifndef REFACE_FCGI_WORKER_H
#define REFACE_FCGI_WORKER_H

#include <stddef.h>

#include "core/config.h"
#include "core/predict.h"
#include "fcgi/scoreboard.h"

/* Exit code of a worker that cannot start (bad model, card or contract). */
#define WORKER_EXIT_CANNOT_START 78

/*
 * Runs in the child right after fork(), never returns: exits 0 after a
 * graceful stop (SIGTERM: the request in hand is finished first), after
 * max_requests, or on SIGUSR1 with a log_file under the sandbox (these two
 * with its slot marked recycling), or
 * WORKER_EXIT_CANNOT_START if the model cannot be loaded. `src` is what
 * the master read from disk before forking; `sb` the shared scoreboard,
 * where this worker owns slot `slot`.
 */
void worker_main(const struct config *cfg, int listen_fd,
                 const struct predictor_source *src, struct scoreboard *sb,
                 int slot)
    __attribute__((noreturn));

#endif
