/*
 * Tests of fcgi/sandbox: a child process installs the worker's filter and
 * tries each forbidden call and a few allowed ones; the parent checks what
 * the child reports and that it was not killed (the filter answers EPERM,
 * it never kills). A thread started before the filter must be filtered
 * too. The folder argument is a scratch directory for the test's files.
 */
#define _GNU_SOURCE

#include "fcgi/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/unit/check.h"

/* What the child reports: one line per attempt, "name result errno". */
#define REPORT_MAX 8192

static char scratch[512];

static void path_of(char *out, size_t outsz, const char *name)
{
    snprintf(out, outsz, "%s/%s", scratch, name);
}

/* Appends "name rc errno\n" to the report for one attempted call. */
static void note(char *rep, const char *name, long rc, int err)
{
    size_t n = strlen(rep);

    snprintf(rep + n, REPORT_MAX - n, "%s %ld %d\n", name, rc,
             rc < 0 ? err : 0);
}

/* The thread that exists before the filter is installed (libtorch's
 * pools do): it waits on a pipe, then tries socket(). */
struct early {
    int go[2];
    long rc;
    int err;
};

static void *early_thread(void *arg)
{
    struct early *e = arg;
    char c;

    if (read(e->go[0], &c, 1) != 1) {
        e->rc = -2;
        return NULL;
    }
    e->rc = socket(AF_INET, SOCK_STREAM, 0);
    e->err = errno;
    return NULL;
}

static void *late_thread(void *arg)
{
    long *rc = arg;

    rc[0] = socket(AF_UNIX, SOCK_STREAM, 0);
    rc[1] = errno;
    return NULL;
}

/* Records one call; errno is read only after the call has returned. */
#define TRY(rep, name, call)                                                \
    do {                                                                    \
        long try_rc_ = (long)(call);                                        \
        note((rep), (name), try_rc_, errno);                                \
    } while (0)

/* Runs in the child: everything after sandbox_enter() is under the filter. */
static void child(int out)
{
    static char rep[REPORT_MAX];
    char err[256], p[600], buf[64];
    struct early e = { .rc = -3 };
    pthread_t early_t, late_t;
    long late_rc[2] = { -3, 0 };
    int sv[2], fd;
    FILE *f;
    char *const argv[] = { "/bin/true", NULL };
    char *const envp[] = { NULL };

    if (pipe(e.go) != 0 || pthread_create(&early_t, NULL, early_thread,
                                          &e) != 0) {
        _exit(3);
    }
    note(rep, "enter", sandbox_enter(err, sizeof(err)) == RF_OK ? 0 : -1,
         0);

    /* Forbidden: each must fail with EPERM. */
    TRY(rep, "execve", execve("/bin/true", argv, envp));
    TRY(rep, "socket_inet", socket(AF_INET, SOCK_STREAM, 0));
    TRY(rep, "socket_unix", socket(AF_UNIX, SOCK_DGRAM, 0));
    TRY(rep, "socketpair", socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    path_of(p, sizeof(p), "existing");
    TRY(rep, "open_wronly", open(p, O_WRONLY));
    TRY(rep, "open_rdwr", open(p, O_RDWR));
    TRY(rep, "open_trunc", open(p, O_RDONLY | O_TRUNC));
    TRY(rep, "open_append", open(p, O_WRONLY | O_APPEND));
    TRY(rep, "openat_rdwr", openat(AT_FDCWD, p, O_RDWR));
    f = fopen(p, "a");
    TRY(rep, "fopen_a", f == NULL ? -1 : 0);
    path_of(p, sizeof(p), "created");
    TRY(rep, "open_creat", open(p, O_RDONLY | O_CREAT, 0600));
    TRY(rep, "creat", creat(p, 0600));
    f = fopen(p, "w");
    TRY(rep, "fopen_w", f == NULL ? -1 : 0);
    TRY(rep, "open_tmpfile", open(scratch, O_TMPFILE | O_RDWR, 0600));
    path_of(p, sizeof(p), "existing");
    TRY(rep, "unlink", unlink(p));
    TRY(rep, "chmod", chmod(p, 0666));
    TRY(rep, "truncate", truncate(p, 0));
    path_of(p, sizeof(p), "dir");
    TRY(rep, "mkdir", mkdir(p, 0700));

    /* Filtered threads: one started before the filter, one after. */
    TRY(rep, "write_go", write(e.go[1], "x", 1) == 1 ? 0 : -1);
    pthread_join(early_t, NULL);
    note(rep, "early_thread_socket", e.rc, e.err);
    if (pthread_create(&late_t, NULL, late_thread, late_rc) == 0) {
        pthread_join(late_t, NULL);
    }
    note(rep, "late_thread_socket", late_rc[0], (int)late_rc[1]);

    /* Allowed: reading files, and writing to descriptors already open. */
    path_of(p, sizeof(p), "existing");
    fd = open(p, O_RDONLY | O_CLOEXEC);
    note(rep, "open_rdonly", fd, errno);
    if (fd >= 0) {
        ssize_t n = read(fd, buf, sizeof(buf) - 1);

        buf[n > 0 ? n : 0] = '\0';
        note(rep, "read_content", strcmp(buf, "reface\n") == 0 ? 0 : -1, 0);
        close(fd);
    }
    f = fopen("/proc/self/status", "r");
    TRY(rep, "fopen_r", f == NULL ? -1 : 0);
    if (f != NULL) {
        char line[256];
        long mode = -1;

        while (fgets(line, sizeof(line), f) != NULL) {
            if (strncmp(line, "Seccomp:", 8) == 0) {
                mode = strtol(line + 8, NULL, 10);
            }
        }
        fclose(f);
        /* 2 is "filter mode" in /proc/PID/status. */
        note(rep, "seccomp_mode_2", mode == 2 ? 0 : -1, 0);
    }

    if (write(out, rep, strlen(rep)) != (ssize_t)strlen(rep)) {
        _exit(4);
    }
    /* _exit: skip LeakSanitizer, whose tracer needs ptrace. */
    _exit(0);
}

/* The child's report, and how the child ended. */
static char report[REPORT_MAX];
static int child_status;

/* Finds "name rc errno" in the report; returns 0 if absent. */
static int lookup(const char *name, long *rc, int *err)
{
    char key[64];
    const char *at;
    size_t kl;

    kl = (size_t)snprintf(key, sizeof(key), "%s ", name);
    for (at = report; (at = strstr(at, key)) != NULL; at++) {
        if (at == report || at[-1] == '\n') {
            return sscanf(at + kl, "%ld %d", rc, err) == 2;
        }
    }
    return 0;
}

static void run_child(void)
{
    char p[600];
    int fds[2];
    pid_t pid;
    size_t got = 0;
    ssize_t n;
    FILE *f;

    path_of(p, sizeof(p), "existing");
    f = fopen(p, "w");
    if (f != NULL) {
        fputs("reface\n", f);
        fclose(f);
    }
    path_of(p, sizeof(p), "created");
    unlink(p);
    path_of(p, sizeof(p), "dir");
    rmdir(p);

    if (pipe(fds) != 0) {
        return;
    }
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        close(fds[0]);
        child(fds[1]);
    }
    close(fds[1]);
    while (got < sizeof(report) - 1 &&
           (n = read(fds[0], report + got, sizeof(report) - 1 - got)) > 0) {
        got += (size_t)n;
    }
    report[got] = '\0';
    close(fds[0]);
    waitpid(pid, &child_status, 0);
    fprintf(stderr, "%s", report);
}

static void test_child_exits_normally(void)
{
    /* Not killed by SIGSYS: forbidden calls return errors. */
    CHECK(WIFEXITED(child_status));
    CHECK_INT_EQ(WEXITSTATUS(child_status), 0);
}

static void test_filter_installs(void)
{
    long rc = -9;
    int err = 0;

    CHECK(lookup("enter", &rc, &err));
    CHECK_INT_EQ(rc, 0);
    CHECK(lookup("seccomp_mode_2", &rc, &err));
    CHECK_INT_EQ(rc, 0);
}

static void expect_eperm(const char *name)
{
    long rc = 0;
    int err = 0;

    if (!lookup(name, &rc, &err)) {
        fprintf(stderr, "  FAIL no report for %s\n", name);
        check_state.current_failed = 1;
        return;
    }
    if (rc != -1 || err != EPERM) {
        fprintf(stderr, "  FAIL %s: rc %ld errno %d, want -1 EPERM\n", name,
                rc, err);
        check_state.current_failed = 1;
    }
}

static void test_exec_forbidden(void)
{
    expect_eperm("execve");
}

static void test_new_sockets_forbidden(void)
{
    expect_eperm("socket_inet");
    expect_eperm("socket_unix");
    expect_eperm("socketpair");
}

static void test_open_for_write_forbidden(void)
{
    char p[600];
    struct stat st;

    expect_eperm("open_wronly");
    expect_eperm("open_rdwr");
    expect_eperm("open_trunc");
    expect_eperm("open_append");
    expect_eperm("openat_rdwr");
    expect_eperm("fopen_a");
    expect_eperm("open_creat");
    expect_eperm("creat");
    expect_eperm("fopen_w");
    expect_eperm("open_tmpfile");
    /* Nothing was created and the existing file is intact. */
    path_of(p, sizeof(p), "created");
    CHECK(stat(p, &st) != 0);
    path_of(p, sizeof(p), "existing");
    CHECK(stat(p, &st) == 0 && st.st_size == 7);
}

static void test_file_system_changes_forbidden(void)
{
    char p[600];
    struct stat st;

    expect_eperm("unlink");
    expect_eperm("chmod");
    expect_eperm("truncate");
    expect_eperm("mkdir");
    path_of(p, sizeof(p), "dir");
    CHECK(stat(p, &st) != 0);
}

static void test_threads_filtered(void)
{
    expect_eperm("early_thread_socket");
    expect_eperm("late_thread_socket");
}

static void test_reading_allowed(void)
{
    long rc = -9;
    int err = 0;

    CHECK(lookup("open_rdonly", &rc, &err));
    CHECK(rc >= 0);
    CHECK(lookup("read_content", &rc, &err));
    CHECK_INT_EQ(rc, 0);
    CHECK(lookup("fopen_r", &rc, &err));
    CHECK_INT_EQ(rc, 0);
    /* A pipe opened before the filter can still be written. */
    CHECK(lookup("write_go", &rc, &err));
    CHECK_INT_EQ(rc, 0);
}

/* The parent, which never installed the filter, is unaffected. */
static void test_parent_unfiltered(void)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    CHECK(fd >= 0);
    if (fd >= 0) {
        close(fd);
    }
}

/* Takes no fixture folder: the scratch files go under build/. */
int main(void)
{
    snprintf(scratch, sizeof(scratch), "build/test-sandbox");
    mkdir("build", 0755);
    mkdir(scratch, 0700);

    run_child();
    RUN(test_child_exits_normally);
    RUN(test_filter_installs);
    RUN(test_exec_forbidden);
    RUN(test_new_sockets_forbidden);
    RUN(test_open_for_write_forbidden);
    RUN(test_file_system_changes_forbidden);
    RUN(test_threads_filtered);
    RUN(test_reading_allowed);
    RUN(test_parent_unfiltered);
    return check_summary("sandbox");
}
