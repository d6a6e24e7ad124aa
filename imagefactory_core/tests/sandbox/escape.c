/* Break-out attempts the sandbox tests run inside a sandbox (busybox has no such applets).
 * Usage: escape MODE [ARG]; prints "MODE denied: <errno text>" (exit 1) or "MODE ALLOWED"
 * (exit 0), except hog and forks, which report how far they got. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static int report(const char *what, long result) {
    if (result < 0) {
        printf("%s denied: %s (errno %d)\n", what, strerror(errno), errno);
        return 1;
    }
    printf("%s ALLOWED\n", what);
    return 0;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    long arg = argc > 2 ? atol(argv[2]) : 0;
    char buffer[256] = {0};
    setvbuf(stdout, NULL, _IONBF, 0);
    if (!strcmp(mode, "open_by_handle_at")) {
        struct file_handle *handle = (struct file_handle *)buffer;
        handle->handle_bytes = 8;
        handle->handle_type = 1;
        int root = open("/", O_RDONLY | O_DIRECTORY);
        return report(mode, syscall(SYS_open_by_handle_at, root, handle, O_RDONLY));
    }
    if (!strcmp(mode, "name_to_handle_at")) {
        struct file_handle *handle = (struct file_handle *)buffer;
        int mount_id;
        handle->handle_bytes = 128;
        return report(mode, syscall(SYS_name_to_handle_at, AT_FDCWD, "/", handle, &mount_id, 0));
    }
    if (!strcmp(mode, "keyctl"))
        return report(mode, syscall(SYS_keyctl, 0, -3, 1));
    if (!strcmp(mode, "add_key"))
        return report(mode, syscall(SYS_add_key, "user", "escape", "x", 1, -3));
    if (!strcmp(mode, "bpf"))
        return report(mode, syscall(SYS_bpf, 0, buffer, 64));
    if (!strcmp(mode, "unshare_user"))
        return report(mode, syscall(SYS_unshare, CLONE_NEWUSER));
    if (!strcmp(mode, "clone_user")) {
        long pid = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
        if (pid == 0)
            _exit(0);
        return report(mode, pid);
    }
    if (!strcmp(mode, "clone3"))
        return report(mode, syscall(SYS_clone3, buffer, 88));
    if (!strcmp(mode, "ptrace"))
        return report(mode, ptrace(PTRACE_ATTACH, (pid_t)arg, 0, 0));
    if (!strcmp(mode, "kill"))
        return report(mode, kill((pid_t)arg, SIGKILL));
    if (!strcmp(mode, "mount"))
        return report(mode, mount("none", "/tmp", "tmpfs", 0, NULL));
    if (!strcmp(mode, "mknod"))
        return report(mode, mknod("/tmp/disk", S_IFBLK | 0600, makedev(8, 0)));
    if (!strcmp(mode, "perf_event_open"))
        return report(mode, syscall(SYS_perf_event_open, buffer, 0, -1, -1, 0));
    if (!strcmp(mode, "userfaultfd"))
        return report(mode, syscall(SYS_userfaultfd, 0));
    if (!strcmp(mode, "io_uring_setup"))
        return report(mode, syscall(SYS_io_uring_setup, 1, buffer));
    if (!strcmp(mode, "finit_module"))
        return report(mode, syscall(SYS_finit_module, 0, "", 0));
    if (!strcmp(mode, "tiocsti"))
        return report(mode, ioctl(0, TIOCSTI, "x"));
    if (!strcmp(mode, "hog")) {
        long mib = 0;
        for (;;) {
            char *block = malloc(1 << 20);
            if (!block) {
                printf("hog: malloc failed after %ld MiB\n", mib);
                return 3;
            }
            memset(block, 1, 1 << 20);
            mib++;
            if (mib % 16 == 0)
                printf("hog: %ld MiB\n", mib);
        }
    }
    if (!strcmp(mode, "forks")) {
        long forked = 0;
        for (;;) {
            pid_t pid = fork();
            if (pid == 0) {
                pause();
                _exit(0);
            }
            if (pid < 0) {
                printf("forks: %ld, then %s\n", forked, strerror(errno));
                return 0;
            }
            forked++;
        }
    }
    fprintf(stderr, "escape: unknown mode %s\n", mode);
    return 2;
}
