/* floor.c: the floor of `run` on this host, for make bench (scripts/bench.sh).
 *
 * usage: floor ROOTFS CGROUP_PATH
 *
 * Runs /bin/true in ROOTFS as a container of the bench's bundle (spec-fixtures/bundles/default.json)
 * with only the system calls that bundle needs, in the cheapest order this host allows, and no
 * config to read, no state to record, no error reporting beyond an exit status:
 *   - a cgroup in every mounted hierarchy (cpuset copied from the parent, v1 device rules: deny
 *     all, then runc's default devices), removed after the wait;
 *   - clone3 with the bundle's namespaces (pid, net, ipc, uts, mount), straight into the v2 cgroup
 *     (CLONE_INTO_CGROUP); the child moves itself into each v1 cgroup by writing 0 to `tasks`
 *     (one thread, so no wait for the global threadgroup lock and its RCU grace period);
 *   - the bundle's mounts (proc, /dev tmpfs, devpts, shm, mqueue, sysfs, the cgroup hierarchies
 *     bound read-only into a tmpfs), device nodes and links, pivot_root, the masked and read-only
 *     paths, the read-only root;
 *   - hostname, lo up, session keyring, rlimit, capabilities, no_new_privs, execve, wait.
 *
 * With SKIFF_TRACE=FILE it appends "EVENT WALL_NS CPU_NS PID" lines to FILE as skiff does
 * (src/trace.rs), with the event names skiff uses for the same points, so scripts/bench/phases.c can put the two side by
 * side. Not a runtime: it trusts its arguments and this bundle.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/keyctl.h>
#include <linux/sched.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int trace_fd = -1;

static void trace(const char *event) {
    if (trace_fd < 0) return;
    struct timespec t, c;
    clock_gettime(CLOCK_MONOTONIC, &t);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c);
    char line[128];
    int n = snprintf(line, sizeof line, "%s %lld %lld %d\n", event, (long long)t.tv_sec * 1000000000LL + t.tv_nsec,
                     (long long)c.tv_sec * 1000000000LL + c.tv_nsec, (int)getpid());
    if (write(trace_fd, line, n) < 0) {}
}

static void die(const char *what) {
    fprintf(stderr, "floor: %s: %s\n", what, strerror(errno));
    exit(1);
}

#define MAXH 16
struct hier {
    char mnt[256];   /* mount point */
    char name[64];   /* its last component: the directory name in the container's /sys/fs/cgroup */
    int v2;
    int devices, cpuset;
    char leaf[512];  /* the container's cgroup in it */
    char made[4][512]; /* directories made, parents first */
    int nmade;
};
static struct hier hs[MAXH];
static int nh;

static void hierarchies(const char *path) {
    FILE *f = fopen("/proc/self/mountinfo", "r");
    if (!f) die("open mountinfo");
    char line[1024];
    while (fgets(line, sizeof line, f) && nh < MAXH) {
        char *sep = strstr(line, " - ");
        if (!sep) continue;
        char mnt[256], fstype[32], src[64], opts[512];
        if (sscanf(line, "%*s %*s %*s %*s %255s", mnt) != 1) continue;
        if (sscanf(sep + 3, "%31s %63s %511s", fstype, src, opts) != 3) continue;
        int v2 = strcmp(fstype, "cgroup2") == 0;
        if (!v2 && strcmp(fstype, "cgroup") != 0) continue;
        struct hier *h = &hs[nh++];
        memset(h, 0, sizeof *h);
        snprintf(h->mnt, sizeof h->mnt, "%s", mnt);
        snprintf(h->name, sizeof h->name, "%s", strrchr(mnt, '/') + 1);
        h->v2 = v2;
        h->devices = !v2 && strstr(opts, "devices") != NULL;
        h->cpuset = !v2 && strstr(opts, "cpuset") != NULL;
        snprintf(h->leaf, sizeof h->leaf, "%s%s", mnt, path);
    }
    fclose(f);
}

static void write_file(const char *dir, const char *file, const char *value) {
    char p[768];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    int fd = open(p, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, value, strlen(value)) < 0) die(p);
    close(fd);
}

static void copy_cpuset(const char *dir) {
    char parent[512], buf[256], p[768];
    snprintf(parent, sizeof parent, "%s", dir);
    *strrchr(parent, '/') = 0;
    for (int i = 0; i < 2; i++) {
        const char *file = i ? "cpuset.mems" : "cpuset.cpus";
        snprintf(p, sizeof p, "%s/%s", parent, file);
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
        if (n < 0) die(p);
        close(fd);
        buf[n] = 0;
        write_file(dir, file, buf);
    }
}

/* mkdir -p of the leaf, remembering what was made */
static void make_cgroup(struct hier *h) {
    char p[512];
    size_t base = strlen(h->mnt);
    snprintf(p, sizeof p, "%s", h->leaf);
    for (char *s = p + base + 1;; s++) {
        if (*s != '/' && *s != 0) continue;
        char c = *s;
        *s = 0;
        if (mkdir(p, 0755) == 0) {
            snprintf(h->made[h->nmade++], sizeof h->made[0], "%s", p);
            if (h->cpuset) copy_cpuset(p);
        } else if (errno != EEXIST) {
            die(p);
        }
        *s = c;
        if (!c) break;
    }
    if (h->devices) {
        /* the bundle's deny-all, then runc's default devices */
        static const char *allow[] = {"c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",
                                      "c 5:0 rwm", "c 5:2 rwm", "c 136:* rwm"};
        write_file(h->leaf, "devices.deny", "a");
        for (size_t i = 0; i < sizeof allow / sizeof *allow; i++) write_file(h->leaf, "devices.allow", allow[i]);
    }
}

static void mnt(const char *src, const char *dst, const char *type, unsigned long flags, const char *data) {
    if (mount(src, dst, type, flags, data) < 0) die(dst);
}

static void mkdir_p(const char *p) {
    if (mkdir(p, 0755) < 0 && errno != EEXIST) die(p);
}

static void child(const char *rootfs) {
    trace("namespaces");
    /* into each v1 cgroup: "0" in `tasks` moves this one thread without the global lock */
    for (int i = 0; i < nh; i++)
        if (!hs[i].v2) write_file(hs[i].leaf, "tasks", "0");
    trace("cgroups-joined");
    if (setsid() < 0) die("setsid");
    if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, "_ses.floor") < 0) die("keyctl");

    mnt(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL);
    /* the mount the rootfs is on must not be shared */
    char up[512];
    snprintf(up, sizeof up, "%s", rootfs);
    while (mount(NULL, up, NULL, MS_SLAVE, NULL) < 0) {
        if (errno != EINVAL || !strcmp(up, "/")) die("rootfs parent");
        char *s = strrchr(up, '/');
        if (s == up) s[1] = 0; else *s = 0;
    }
    mnt(rootfs, rootfs, "bind", MS_BIND | MS_REC, NULL);
    if (chdir(rootfs) < 0) die("chdir rootfs");
    mnt("proc", "proc", "proc", 0, NULL);
    mnt("tmpfs", "dev", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k");
    mkdir_p("dev/pts");
    mnt("devpts", "dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5");
    mkdir_p("dev/shm");
    mnt("shm", "dev/shm", "tmpfs", MS_NOSUID | MS_NOEXEC | MS_NODEV, "mode=1777,size=65536k");
    mkdir_p("dev/mqueue");
    mnt("mqueue", "dev/mqueue", "mqueue", MS_NOSUID | MS_NOEXEC | MS_NODEV, NULL);
    mnt("sysfs", "sys", "sysfs", MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RDONLY, NULL);
    unsigned long base = MS_NOSUID | MS_NOEXEC | MS_NODEV;
    mnt("tmpfs", "sys/fs/cgroup", "tmpfs", base, "mode=755");
    for (int i = 0; i < nh; i++) {
        char p[512];
        snprintf(p, sizeof p, "sys/fs/cgroup/%s", hs[i].name);
        mkdir_p(p);
        mnt(hs[i].leaf, p, "bind", MS_BIND | MS_REC, NULL);
        mnt(NULL, p, NULL, MS_BIND | MS_REMOUNT | base | MS_RDONLY, NULL);
    }
    mnt(NULL, "sys/fs/cgroup", NULL, MS_REMOUNT | MS_RDONLY | base, "mode=755");
    static const struct { const char *path; int major, minor; } nodes[] = {
        {"dev/null", 1, 3}, {"dev/zero", 1, 5}, {"dev/full", 1, 7},
        {"dev/random", 1, 8}, {"dev/urandom", 1, 9}, {"dev/tty", 5, 0},
    };
    for (size_t i = 0; i < sizeof nodes / sizeof *nodes; i++) {
        if (mknod(nodes[i].path, S_IFCHR | 0666, makedev(nodes[i].major, nodes[i].minor)) < 0) die(nodes[i].path);
        if (chmod(nodes[i].path, 0666) < 0) die(nodes[i].path);
    }
    static const char *links[][2] = {{"/proc/self/fd", "dev/fd"}, {"/proc/self/fd/0", "dev/stdin"},
                                     {"/proc/self/fd/1", "dev/stdout"}, {"/proc/self/fd/2", "dev/stderr"},
                                     {"/proc/kcore", "dev/core"}, {"pts/ptmx", "dev/ptmx"}};
    for (size_t i = 0; i < sizeof links / sizeof *links; i++)
        if (symlink(links[i][0], links[i][1]) < 0) die(links[i][1]);
    trace("mounts");

    int old = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
    if (old < 0) die("open /");
    if (syscall(SYS_pivot_root, ".", ".") < 0) die("pivot_root");
    if (fchdir(old) < 0) die("fchdir");
    mnt(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL);
    if (umount2(".", MNT_DETACH) < 0) die("umount old root");
    if (chdir("/") < 0) die("chdir /");
    close(old);
    static const char *ro[] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"};
    for (size_t i = 0; i < sizeof ro / sizeof *ro; i++) {
        if (access(ro[i], F_OK) < 0) continue;
        mnt(ro[i], ro[i], "bind", MS_BIND | MS_REC, NULL);
        mnt(NULL, ro[i], NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC, NULL);
    }
    static const char *masked[] = {"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                                   "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                                   "/proc/sched_debug", "/sys/firmware", "/proc/scsi"};
    for (size_t i = 0; i < sizeof masked / sizeof *masked; i++) {
        struct stat st;
        if (stat(masked[i], &st) < 0) continue;
        if (S_ISDIR(st.st_mode)) mnt("tmpfs", masked[i], "tmpfs", MS_RDONLY, NULL);
        else mnt("/dev/null", masked[i], "bind", MS_BIND, NULL);
    }
    mnt(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL);
    trace("pivot");

    if (sethostname("runc", 4) < 0) die("sethostname");
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr = {0};
    strcpy(ifr.ifr_name, "lo");
    if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0) die("lo");
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) die("lo up");
    close(s);
    struct rlimit rl = {1024, 1024};
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0) die("setrlimit");
    uint64_t keep = (1ULL << CAP_AUDIT_WRITE) | (1ULL << CAP_KILL) | (1ULL << CAP_NET_BIND_SERVICE);
    for (int c = 0; c <= CAP_LAST_CAP; c++)
        if (!(keep & (1ULL << c)) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0) die("capbset");
    if (setgroups(0, NULL) < 0) die("setgroups");
    if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) die("setres[ug]id");
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2] = {{(uint32_t)keep, (uint32_t)keep, (uint32_t)keep}, {0, 0, 0}};
    if (syscall(SYS_capset, &hdr, data) < 0) die("capset");
    for (int c = 0; c < 64; c++)
        if ((keep & (1ULL << c)) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0) die("ambient");
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) die("no_new_privs");
    if (syscall(SYS_close_range, 3, ~0U, 4 /* CLOSE_RANGE_CLOEXEC */) < 0) die("close_range");
    trace("ready");
    char *argv[] = {"true", NULL};
    char *envp[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm", "HOME=/root", NULL};
    execve("/bin/true", argv, envp);
    die("execve /bin/true");
}

int main(int argc, char **argv) {
    const char *t = getenv("SKIFF_TRACE");
    if (t) trace_fd = open(t, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    trace("main");
    if (argc != 3) {
        fprintf(stderr, "usage: floor ROOTFS CGROUP_PATH\n");
        return 2;
    }
    hierarchies(argv[2]);
    int v2 = -1;
    for (int i = 0; i < nh; i++) {
        make_cgroup(&hs[i]);
        if (hs[i].v2) v2 = open(hs[i].leaf, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
    }
    trace("cgroups-made");
    struct clone_args ca = {0};
    ca.flags = CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNS;
    if (v2 >= 0) {
        ca.flags |= CLONE_INTO_CGROUP;
        ca.cgroup = v2;
    }
    ca.exit_signal = SIGCHLD;
    long pid = syscall(SYS_clone3, &ca, sizeof ca);
    if (pid < 0) die("clone3");
    if (pid == 0) child(argv[1]);
    int status;
    if (waitpid(pid, &status, 0) < 0) die("waitpid");
    trace("exited");
    if (v2 >= 0) close(v2);
    for (int i = 0; i < nh; i++)
        for (int j = hs[i].nmade - 1; j >= 0; j--)
            if (rmdir(hs[i].made[j]) < 0) die(hs[i].made[j]);
    trace("deleted");
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
