/* phases.c: where the milliseconds of a container start go, for make bench (scripts/bench.sh).
 *
 * usage: phases RUNS NAME COMMAND [NAME COMMAND ...]
 *
 * Runs each COMMAND (split on spaces, no shell; "{}" becomes a fresh id per run) RUNS times,
 * interleaved (A B A B ...), with SKIFF_TRACE set to a scratch file in which skiff (and floor.c)
 * append "EVENT NANOSECONDS" lines (CLOCK_MONOTONIC) at each step. Around each run it adds
 * "start" (before the fork) and "end" (once waitpid returned). Per run the events are sorted by
 * time and each gets the time since the one before it: the phase it ends. A runtime that traces
 * nothing (runc) gets start and end alone. A name seen twice in a run (a re-executed main) gets
 * a "#2".
 *
 * Prints, per event in order of time, the median of its phase over the runs, for each command,
 * then the median total and the median CPU time (user + system of the command and its children).
 * A failed run is reported and ends the bench with status 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXCMD 8
#define MAXEV 48
#define MAXRUNS 2000

struct event { char name[48]; long long t, cpu; int pid; };
struct series { char name[48]; double *v, *cpu; int n, ncpu; double order; };
struct cmd {
    const char *name;
    char *argv[64];
    int argc;
    char trace[256];
    struct series ev[MAXEV];
    int nev;
    double *total, *cpu;
};

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int by_time(const void *a, const void *b) {
    const struct event *x = a, *y = b;
    return (x->t > y->t) - (x->t < y->t);
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    if (n == 0) return -1;
    double *c = malloc(n * sizeof *c);
    memcpy(c, v, n * sizeof *c);
    qsort(c, n, sizeof *c, by_value);
    double m = n % 2 ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2;
    free(c);
    return m;
}

static struct series *series(struct cmd *c, const char *name, int runs) {
    for (int i = 0; i < c->nev; i++)
        if (!strcmp(c->ev[i].name, name)) return &c->ev[i];
    if (c->nev == MAXEV) return NULL;
    struct series *s = &c->ev[c->nev++];
    snprintf(s->name, sizeof s->name, "%s", name);
    s->v = calloc(runs, sizeof *s->v);
    s->cpu = calloc(runs, sizeof *s->cpu);
    return s;
}

static int run_once(struct cmd *c, int run, int runs) {
    char id[64], *argv[64];
    snprintf(id, sizeof id, "ph%d-%d", getpid(), run);
    char buf[64][256];
    for (int i = 0; i < c->argc; i++) {
        char *at = strstr(c->argv[i], "{}");
        if (at) {
            snprintf(buf[i], sizeof buf[i], "%.*s%s%s", (int)(at - c->argv[i]), c->argv[i], id, at + 2);
            argv[i] = buf[i];
        } else {
            argv[i] = c->argv[i];
        }
    }
    argv[c->argc] = NULL;
    int fd = open(c->trace, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return perror(c->trace), -1;
    close(fd);
    struct rusage before, after;
    getrusage(RUSAGE_CHILDREN, &before);
    long long t0 = now_ns();
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        setenv("SKIFF_TRACE", c->trace, 1);
        execvp(argv[0], argv);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    long long t1 = now_ns();
    getrusage(RUSAGE_CHILDREN, &after);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "phases: %s: run %d failed (status %#x)\n", c->name, run, status);
        return -1;
    }
    struct event ev[MAXEV];
    int n = 0;
    ev[n++] = (struct event){"start", t0, -1, 0};
    FILE *f = fopen(c->trace, "r");
    char line[128];
    while (f && fgets(line, sizeof line, f) && n < MAXEV - 1) {
        struct event e = {.cpu = -1, .pid = 0};
        if (sscanf(line, "%39s %lld %lld %d", e.name, &e.t, &e.cpu, &e.pid) < 2) continue;
        /* a repeated name (main of a re-executed process) gets #2, #3... */
        int seen = 0;
        for (int i = 0; i < n; i++)
            if (!strncmp(ev[i].name, e.name, strlen(e.name)) &&
                (ev[i].name[strlen(e.name)] == 0 || ev[i].name[strlen(e.name)] == '#'))
                seen++;
        if (seen) {
            char base[48];
            snprintf(base, sizeof base, "%s", e.name);
            snprintf(e.name, sizeof e.name, "%.30s#%d", base, seen + 1);
        }
        ev[n++] = e;
    }
    if (f) fclose(f);
    ev[n++] = (struct event){"end", t1, -1, 0};
    qsort(ev + 1, n - 2, sizeof *ev, by_time);
    for (int i = 1; i < n; i++) {
        struct series *s = series(c, ev[i].name, runs);
        if (!s) continue;
        s->v[s->n++] = (ev[i].t - ev[i - 1].t) / 1e6;
        /* CPU time: since this process's previous event (or its start: a forked child's clock
         * starts at 0) */
        if (ev[i].cpu >= 0) {
            long long before = 0;
            for (int j = i - 1; j > 0; j--)
                if (ev[j].pid == ev[i].pid && ev[j].cpu >= 0) {
                    before = ev[j].cpu;
                    break;
                }
            s->cpu[s->ncpu++] = (ev[i].cpu - before) / 1e6;
        }
        s->order += (double)(ev[i].t - t0) / runs;
    }
    c->total[run] = (t1 - t0) / 1e6;
    c->cpu[run] = (after.ru_utime.tv_sec - before.ru_utime.tv_sec + after.ru_stime.tv_sec - before.ru_stime.tv_sec) * 1e3 +
                  (after.ru_utime.tv_usec - before.ru_utime.tv_usec + after.ru_stime.tv_usec - before.ru_stime.tv_usec) / 1e3;
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 4 || argc % 2) {
        fprintf(stderr, "usage: phases RUNS NAME COMMAND [NAME COMMAND ...]\n");
        return 2;
    }
    int runs = atoi(argv[1]);
    if (runs < 1 || runs > MAXRUNS) return fprintf(stderr, "phases: RUNS out of range\n"), 2;
    struct cmd cmds[MAXCMD];
    int nc = 0;
    for (int i = 2; i + 1 < argc && nc < MAXCMD; i += 2) {
        struct cmd *c = &cmds[nc];
        memset(c, 0, sizeof *c);
        c->name = argv[i];
        char *s = strdup(argv[i + 1]);
        for (char *tok = strtok(s, " "); tok && c->argc < 63; tok = strtok(NULL, " ")) c->argv[c->argc++] = tok;
        snprintf(c->trace, sizeof c->trace, "/tmp/phases-%d-%d.trace", getpid(), nc);
        c->total = calloc(runs, sizeof(double));
        c->cpu = calloc(runs, sizeof(double));
        nc++;
    }
    int failed = 0;
    for (int r = 0; r < runs && !failed; r++)
        for (int i = 0; i < nc && !failed; i++) failed = run_once(&cmds[i], r, runs) < 0;
    for (int i = 0; i < nc; i++) unlink(cmds[i].trace);
    if (failed) return 1;
    /* the rows: the first command's events in their order of time; an event only another
     * command has goes right after the event that comes before it there */
    char rows[MAXEV * MAXCMD][48];
    int nr = 0;
    for (int i = 0; i < nc; i++) {
        struct series *sorted[MAXEV];
        int ns = cmds[i].nev;
        for (int j = 0; j < ns; j++) sorted[j] = &cmds[i].ev[j];
        for (int a = 0; a < ns; a++)
            for (int b = a + 1; b < ns; b++)
                if (sorted[b]->order < sorted[a]->order) {
                    struct series *t = sorted[a];
                    sorted[a] = sorted[b];
                    sorted[b] = t;
                }
        int after = -1; /* the row of the previous event of this command */
        for (int j = 0; j < ns; j++) {
            int k = 0;
            while (k < nr && strcmp(rows[k], sorted[j]->name)) k++;
            if (k == nr) {
                k = after + 1;
                memmove(rows[k + 1], rows[k], (nr - k) * sizeof rows[0]);
                snprintf(rows[k], sizeof rows[k], "%s", sorted[j]->name);
                nr++;
            }
            after = k;
        }
    }
    printf("%-18s", "phase (ends at)");
    for (int i = 0; i < nc; i++) printf(" %10s %10s", cmds[i].name, "cpu");
    printf("\n");
    for (int k = 0; k < nr; k++) {
        printf("%-18s", rows[k]);
        for (int i = 0; i < nc; i++) {
            struct series *s = NULL;
            for (int j = 0; j < cmds[i].nev; j++)
                if (!strcmp(cmds[i].ev[j].name, rows[k])) s = &cmds[i].ev[j];
            if (s && s->n) printf(" %10.3f", median(s->v, s->n));
            else printf(" %10s", "-");
            if (s && s->ncpu) printf(" %10.3f", median(s->cpu, s->ncpu));
            else printf(" %10s", "-");
        }
        printf("\n");
    }
    printf("%-18s", "total (median)");
    for (int i = 0; i < nc; i++) printf(" %10.3f %10.3f", median(cmds[i].total, runs), median(cmds[i].cpu, runs));
    printf("\n");
    return 0;
}
