/*
 * The master process, the way php-fpm runs its pool: it forks the workers,
 * reaps and replaces those that die, kills those stuck past the request
 * deadline, backs off in a crash storm, replaces workers one by one on a
 * reload, and stops them on a signal. It never touches libtorch, so
 * forking stays safe.
 */
#ifndef REFACE_FCGI_MASTER_H
#define REFACE_FCGI_MASTER_H

#include <signal.h>
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
 * cannot be mapped. `mask` is what master_take_signals() saved: the
 * workers start with it, and the master gets it back when it returns.
 */
int master_run(const struct config *cfg, int listen_fd,
               struct predictor_source *src, const sigset_t *mask);

/*
 * Blocks the signals master_run() waits for, with their default action
 * restored (a shell starts background jobs with SIGINT and SIGQUIT
 * ignored), and saves the mask they replace in `old_mask`. Called first
 * thing in main(): a stop sent as soon as the socket exists, or while the
 * model is read, then waits for master_run() instead of being lost or
 * killing the process halfway.
 */
void master_take_signals(sigset_t *old_mask);

#endif
