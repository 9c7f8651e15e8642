/*
 * The master process, the way php-fpm runs its pool: it forks the workers,
 * reaps and replaces those that die, and stops them on a signal. It never
 * touches libtorch, so forking stays safe.
 */
#ifndef REFACE_FCGI_MASTER_H
#define REFACE_FCGI_MASTER_H

#include <stddef.h>

#include "core/config.h"

/*
 * Runs the pool until SIGTERM (graceful: each worker finishes the request
 * in hand), SIGINT or SIGQUIT (fast). `model_bytes` (borrowed) is the model
 * file, read once here and shared with the children copy-on-write. Returns
 * the process exit code: 0 after a stop, 1 if a worker could not start.
 */
int master_run(const struct config *cfg, int listen_fd,
               const void *model_bytes, size_t model_len);

#endif
