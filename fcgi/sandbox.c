/* The worker's seccomp filter, over libseccomp (see fcgi/sandbox.h). */
#define _GNU_SOURCE
#include "fcgi/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>

/* Calls that fail with EPERM whatever their arguments. */
static const char *const denied[] = {
    "execve", "execveat",
    "socket", "socketpair",
    "creat",
    "unlink", "unlinkat", "rename", "renameat", "renameat2",
    "mkdir", "mkdirat", "rmdir", "link", "linkat", "symlink", "symlinkat",
    "chmod", "fchmod", "fchmodat", "chown", "fchown", "lchown", "fchownat",
    "truncate", "mknod", "mknodat",
    "ptrace", "process_vm_readv", "process_vm_writev",
};

/*
 * The open flags that make an open a write. O_ACCMODE is a two-bit field,
 * so write-only and read-write are two masked compares; O_APPEND and
 * O_TMPFILE need one of those too, so they are covered.
 */
static const struct {
    unsigned long mask, value;
} write_flags[] = {
    { O_ACCMODE, O_WRONLY },
    { O_ACCMODE, O_RDWR },
    { O_CREAT, O_CREAT },
    { O_TRUNC, O_TRUNC },
};

/* Adds the write-flag rules for one open call whose flags are arg `arg`. */
static int deny_open_for_write(scmp_filter_ctx ctx, const char *name,
                               unsigned arg, char *err, size_t errlen)
{
    int nr = seccomp_syscall_resolve_name(name);

    for (size_t i = 0; i < sizeof(write_flags) / sizeof(write_flags[0]);
         i++) {
        struct scmp_arg_cmp cmp = {
            .arg = arg,
            .op = SCMP_CMP_MASKED_EQ,
            .datum_a = write_flags[i].mask,
            .datum_b = write_flags[i].value,
        };
        int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 1, cmp);

        if (rc != 0) {
            snprintf(err, errlen, "seccomp rule for %s: %s", name,
                     strerror(-rc));
            return -1;
        }
    }
    return 0;
}

enum rf_result sandbox_enter(char *err, size_t errlen)
{
    enum rf_result r = RF_ERR_IO;
    scmp_filter_ctx ctx;
    int rc, nr;

    /* Everything not named below stays allowed: the filter is a deny-list
     * of what a compromised decoder would want, not a model of libtorch. */
    ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (ctx == NULL) {
        snprintf(err, errlen, "seccomp_init failed");
        return RF_ERR_IO;
    }
    /* libtorch's thread pools may already run: filter them too. */
    rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
    if (rc != 0) {
        snprintf(err, errlen, "seccomp thread sync: %s", strerror(-rc));
        goto out;
    }

    for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]); i++) {
        nr = seccomp_syscall_resolve_name(denied[i]);
        if (nr == __NR_SCMP_ERROR) {
            snprintf(err, errlen, "seccomp does not know %s", denied[i]);
            goto out;
        }
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
        if (rc != 0) {
            snprintf(err, errlen, "seccomp rule for %s: %s", denied[i],
                     strerror(-rc));
            goto out;
        }
    }

    if (deny_open_for_write(ctx, "open", 1, err, errlen) != 0 ||
        deny_open_for_write(ctx, "openat", 2, err, errlen) != 0) {
        goto out;
    }
    /* openat2 passes its flags in a struct the filter cannot read; ENOSYS
     * makes a caller fall back to openat, which is checked above. */
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS),
                          seccomp_syscall_resolve_name("openat2"), 0);
    if (rc != 0) {
        snprintf(err, errlen, "seccomp rule for openat2: %s", strerror(-rc));
        goto out;
    }

    /* Also sets no_new_privs, which an unprivileged filter needs. */
    rc = seccomp_load(ctx);
    if (rc != 0) {
        snprintf(err, errlen, "seccomp_load: %s", strerror(-rc));
        goto out;
    }
    r = RF_OK;
out:
    seccomp_release(ctx);
    return r;
}
