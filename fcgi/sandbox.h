/*
 * The worker's seccomp filter (libseccomp): once the model is loaded and
 * the listening socket is ready, a worker gives up what serving requests
 * never needs. Forbidden calls fail with EPERM instead of killing the
 * process, so a bug that reaches one surfaces as an error in the log:
 *
 *   - running programs: execve, execveat;
 *   - new sockets: socket, socketpair (accept() on the inherited socket
 *     still works);
 *   - opening files for writing: open/openat with O_WRONLY, O_RDWR,
 *     O_CREAT or O_TRUNC, and creat (opening for reading still works);
 *     openat2, whose flags a filter cannot see, answers ENOSYS so callers
 *     fall back to openat;
 *   - changing the file system otherwise: unlink, rename, mkdir, rmdir,
 *     link, symlink, chmod, chown, truncate, mknod and their *at forms;
 *   - reaching into other processes: ptrace, process_vm_readv/writev.
 *
 * The filter covers every thread of the process (libtorch's pools may
 * already run) and is inherited by anything the worker could fork.
 */
#ifndef REFACE_FCGI_SANDBOX_H
#define REFACE_FCGI_SANDBOX_H

#include <stddef.h>

#include "core/result.h"

/*
 * Installs the filter in the calling process. Returns RF_OK, or
 * RF_ERR_IO with the reason in `err` (libseccomp missing a syscall,
 * the kernel refusing the filter); the process is unchanged then.
 */
enum rf_result sandbox_enter(char *err, size_t errlen);

#endif
