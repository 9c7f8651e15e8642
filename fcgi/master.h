/*
 * The master process, the way php-fpm runs its pool: it forks the workers,
 * reaps and replaces those that die, kills those stuck past the request
 * deadline, backs off in a crash storm, replaces workers one by one on a
 * reload, and stops them on a signal. It never touches libtorch, so
 * forking stays safe.
 */
#ifndef REFACE_FCGI_MASTER_H
#define REFACE_FCGI_MASTER_H

#include <stddef.h>

#include "core/config.h"
#include "core/predict.h"

/*
 * Runs the pool until SIGTERM (graceful: each worker finishes the request
 * in hand), SIGINT or SIGQUIT (fast). `src` is the model file and card,
 * read once before forking and shared with the children copy-on-write; a
 * SIGHUP reload re-reads it in place (the caller still owns and releases
 * it). Returns the process exit code: 0 after a stop, 1 if a worker could
 * not start with the model the master started with, or if the scoreboard
 * cannot be mapped.
 */
int master_run(const struct config *cfg, int listen_fd,
               struct predictor_source *src);

#endif
