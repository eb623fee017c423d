/* probe.c - spawn lamina-probe on one plugin and read its report (probe.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "log.h"
#include "probe.h"
#include "report.h"

extern char **environ;

#define REPORT_MAX  ((size_t)32 << 20)  /* a report larger than this is malformed */
#define STDERR_KEEP 4096               /* bytes of stderr kept while reading */

const char *lamina_signal_name(int sig, char *buf, size_t size)
{
    switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGABRT: return "SIGABRT";
    case SIGBUS:  return "SIGBUS";
    case SIGFPE:  return "SIGFPE";
    case SIGILL:  return "SIGILL";
    case SIGKILL: return "SIGKILL";
    case SIGTERM: return "SIGTERM";
    case SIGTRAP: return "SIGTRAP";
    case SIGSYS:  return "SIGSYS";
    case SIGPIPE: return "SIGPIPE";
    case SIGINT:  return "SIGINT";
    case SIGQUIT: return "SIGQUIT";
    case SIGHUP:  return "SIGHUP";
    case SIGALRM: return "SIGALRM";
    case SIGXCPU: return "SIGXCPU";
    case SIGXFSZ: return "SIGXFSZ";
    case SIGUSR1: return "SIGUSR1";
    case SIGUSR2: return "SIGUSR2";
    default:
        snprintf(buf, size, "signal %d", sig);
        return buf;
    }
}

void lamina_probe_files_free(lamina_probe_files *f)
{
    for (int i = 0; i < f->n; i++)
        free(f->path[i]);
    free(f->path);
    f->path = NULL;
    f->n = 0;
}

static int files_add(lamina_probe_files *f, const char *path)
{
    if (path == NULL || path[0] == '\0')
        return 0;
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->path[i], path) == 0)
            return 0;
    if (f->n >= 4096)
        return 0;
    char **n = realloc(f->path, (size_t)(f->n + 1) * sizeof(*n));
    if (n == NULL)
        return LAMINA_ENOMEM;
    f->path = n;
    if ((f->path[f->n] = strdup(path)) == NULL)
        return LAMINA_ENOMEM;
    f->n++;
    return 0;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* A growable byte buffer. */
typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

static int buf_add(buf *b, const char *data, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 4096;
        while (nc < b->len + n + 1)
            nc *= 2;
        char *np = realloc(b->p, nc);
        if (np == NULL)
            return -1;
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

/* Build the helper's environment: ours, with the backend's NAME=VALUE
 * entries replacing or adding.  The array and strings point into environ
 * and bc; only the array is allocated. */
static char **build_env(const lamina_backend_config *bc)
{
    size_t n = 0;
    while (environ != NULL && environ[n] != NULL)
        n++;
    int extra = bc ? bc->n_env : 0;
    char **env = calloc(n + (size_t)extra + 1, sizeof(*env));
    if (env == NULL)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int overridden = 0;
        for (int k = 0; k < extra && !overridden; k++) {
            const char *eq = strchr(bc->env[k], '=');
            size_t nl = eq ? (size_t)(eq - bc->env[k]) : strlen(bc->env[k]);
            overridden = strncmp(environ[i], bc->env[k], nl) == 0 && environ[i][nl] == '=';
        }
        if (!overridden)
            env[o++] = environ[i];
    }
    for (int k = 0; k < extra; k++)
        env[o++] = (char *)bc->env[k];
    env[o] = NULL;
    return env;
}

/* The last `max` bytes of stderr, as whole lines, control chars removed. */
static void stderr_tail(const buf *b, char *out, size_t size)
{
    out[0] = '\0';
    if (b->len == 0 || size == 0)
        return;
    size_t start = b->len > size - 1 ? b->len - (size - 1) : 0;
    if (start > 0) {
        const char *nl = memchr(b->p + start, '\n', b->len - start);
        if (nl != NULL && (size_t)(nl - b->p) + 1 < b->len)
            start = (size_t)(nl - b->p) + 1;
    }
    size_t len = b->len - start;
    char *tmp = malloc(len + 1);
    if (tmp == NULL)
        return;
    memcpy(tmp, b->p + start, len);
    tmp[len] = '\0';
    while (len > 0 && (tmp[len - 1] == '\n' || tmp[len - 1] == '\r'))
        tmp[--len] = '\0';
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)tmp[i] < 0x20 && tmp[i] != '\n')
            tmp[i] = ' ';
    lamina_report_str(out, size, tmp);
    free(tmp);
}

/* The last non-empty line of the stderr tail, for one-line reasons. */
static void last_line(const char *tail, char *out, size_t size)
{
    const char *end = tail + strlen(tail);
    while (end > tail && (end[-1] == '\n' || end[-1] == ' '))
        end--;
    const char *start = end;
    while (start > tail && start[-1] != '\n')
        start--;
    size_t n = (size_t)(end - start);
    if (n >= size)
        n = size - 1;
    memcpy(out, start, n);
    out[n] = '\0';
}

/* The parsed state of the report stream. */
typedef struct stream {
    lamina_plugin_report *rep;
    lamina_probe_files *files;
    char stage[32];
    int stage_device;
    int hello, done;
    char err_kind[16];
    char err_msg[512];
    char bad[200];              /* first malformed line, shown escaped */
    size_t bad_at;
} stream;

static void set_component(lamina_plugin_report *p, const json_t *c)
{
    if (!json_is_object(c))
        return;
    const char *name = json_string_value(json_object_get(c, "name"));
    if (name == NULL)
        return;
    lamina_component_report *cr = NULL;
    for (int i = 0; i < p->n_components; i++)
        if (strcmp(p->components[i].name, name) == 0)
            cr = &p->components[i];
    if (cr == NULL) {
        if (p->n_components >= (int)(sizeof(p->components) / sizeof(p->components[0])))
            return;
        cr = &p->components[p->n_components++];
        memset(cr, 0, sizeof(*cr));
        lamina_report_str(cr->name, sizeof(cr->name), name);
    }
    const char *s;
    if ((s = json_string_value(json_object_get(c, "found"))) != NULL)
        lamina_report_str(cr->found, sizeof(cr->found), s);
    if ((s = json_string_value(json_object_get(c, "built"))) != NULL)
        lamina_report_str(cr->built, sizeof(cr->built), s);
    if ((s = json_string_value(json_object_get(c, "path"))) != NULL)
        lamina_report_str(cr->path, sizeof(cr->path), s);
    json_t *r = json_object_get(c, "rule");
    if (json_is_integer(r) && json_integer_value(r) >= 0 && json_integer_value(r) <= 100)
        cr->rule = (uint32_t)json_integer_value(r);
}

/* Handle one record.  0 ok, -1 malformed. */
static int record(stream *st, json_t *o)
{
    lamina_plugin_report *p = st->rep;
    char err[256];
    json_t *v;
    if (!json_is_object(o))
        return -1;
    if ((v = json_object_get(o, "stage")) != NULL) {
        if (!json_is_string(v))
            return -1;
        snprintf(st->stage, sizeof(st->stage), "%s", json_string_value(v));
        json_t *d = json_object_get(o, "device");
        st->stage_device = json_is_integer(d) ? (int)json_integer_value(d) : -1;
        return 0;
    }
    if (json_object_size(o) != 1)
        return -1;
    const char *key = json_object_iter_key(json_object_iter(o));
    v = json_object_iter_value(json_object_iter(o));
    if (strcmp(key, "hello") == 0) {
        st->hello = 1;
    } else if (strcmp(key, "plugin") == 0) {
        if (!json_is_object(v))
            return -1;
        const char *s;
        if ((s = json_string_value(json_object_get(v, "name"))) != NULL)
            lamina_report_str(p->name, sizeof(p->name), s);
        if ((s = json_string_value(json_object_get(v, "version"))) != NULL)
            lamina_report_str(p->version, sizeof(p->version), s);
        if ((s = json_string_value(json_object_get(v, "description"))) != NULL)
            lamina_report_str(p->description, sizeof(p->description), s);
        p->abi_major = (uint32_t)json_integer_value(json_object_get(v, "abi_major"));
        p->abi_minor = (uint32_t)json_integer_value(json_object_get(v, "abi_minor"));
        p->desc_size = (uint32_t)json_integer_value(json_object_get(v, "desc_size"));
        p->flags = (uint32_t)json_integer_value(json_object_get(v, "flags"));
        json_t *a = json_object_get(v, "built_against"), *e;
        size_t i;
        if (json_is_array(a)) {
            json_array_foreach(a, i, e) {
                const char *n = json_string_value(json_object_get(e, "name"));
                const char *ver = json_string_value(json_object_get(e, "version"));
                if (n == NULL)
                    continue;
                json_t *c = json_pack("{s:s,s:s?,s:i}", "name", n, "built", ver, "rule", 0);
                if (c != NULL)
                    set_component(p, c);
                json_decref(c);
            }
        }
        a = json_object_get(v, "code_targets");
        if (json_is_array(a)) {
            json_array_foreach(a, i, e) {
                if (p->n_code_targets >= 32 || !json_is_string(e))
                    break;
                lamina_report_str(p->code_targets[p->n_code_targets++],
                                  sizeof(p->code_targets[0]), json_string_value(e));
            }
        }
    } else if (strcmp(key, "component") == 0) {
        set_component(p, v);
        const char *path = json_string_value(json_object_get(v, "path"));
        if (files_add(st->files, path) < 0)
            return -1;
    } else if (strcmp(key, "file") == 0) {
        if (!json_is_string(v))
            return -1;
        if (files_add(st->files, json_string_value(v)) < 0)
            return -1;
    } else if (strcmp(key, "device") == 0) {
        lamina_device_report *d = lamina_report_add_device(p);
        if (d == NULL || lamina_report_device_parse(v, d, err, sizeof(err)) < 0)
            return -1;
        d->status = LAMINA_STATUS_ACCEPTED;
    } else if (strcmp(key, "note") == 0) {
        if (!json_is_string(v))
            return -1;
        if (p->n_notes < 8)
            lamina_report_str(p->notes[p->n_notes++], sizeof(p->notes[0]), json_string_value(v));
    } else if (strcmp(key, "probe_done") == 0) {
        json_t *ms = json_object_get(v, "ms");
        if (json_is_number(ms))
            p->probe_ms = json_number_value(ms);
    } else if (strcmp(key, "selftest") == 0) {
        json_t *dev = json_object_get(v, "device");
        if (!json_is_integer(dev))
            return -1;
        lamina_device_report *d = NULL;
        for (int i = 0; i < p->n_devices; i++)
            if ((json_int_t)p->devices[i].info.index == json_integer_value(dev))
                d = &p->devices[i];
        if (d == NULL)
            return -1;
        /* Reuse the device parser on a {"selftest": v} wrapper. */
        json_t *w = json_object();
        if (w == NULL)
            return -1;
        json_object_set(w, "selftest", v);
        lamina_device_report tmp;
        memset(&tmp, 0, sizeof(tmp));
        int rc = lamina_report_device_parse(w, &tmp, err, sizeof(err));
        json_decref(w);
        if (rc < 0) {
            lamina_report_device_clear(&tmp);
            return -1;
        }
        lamina_report_device_clear(d);
        d->selftest_run = tmp.selftest_run;
        d->selftest_passed = tmp.selftest_passed;
        d->selftest_cases = tmp.selftest_cases;
        d->selftest_unsupported = tmp.selftest_unsupported;
        d->selftest_ms = tmp.selftest_ms;
        d->score = tmp.score;
        memcpy(d->selftest_msg, tmp.selftest_msg, sizeof(d->selftest_msg));
        d->cases = tmp.cases;
        d->n_cases = tmp.n_cases;
    } else if (strcmp(key, "error") == 0) {
        const char *k = json_string_value(json_object_get(v, "kind"));
        const char *m = json_string_value(json_object_get(v, "message"));
        if (k == NULL)
            return -1;
        snprintf(st->err_kind, sizeof(st->err_kind), "%s", k);
        lamina_report_str(st->err_msg, sizeof(st->err_msg), m ? m : "");
    } else if (strcmp(key, "done") == 0) {
        st->done = 1;
    } else {
        return -1;
    }
    return 0;
}

/* Parse every complete line; a trailing partial line is left for later. */
static int parse_lines(stream *st, buf *b, size_t *pos)
{
    while (*pos < b->len) {
        char *start = b->p + *pos;
        char *nl = memchr(start, '\n', b->len - *pos);
        if (nl == NULL)
            return 0;
        size_t n = (size_t)(nl - start);
        json_error_t je;
        json_t *o = json_loadb(start, n, JSON_REJECT_DUPLICATES, &je);
        int bad = (o == NULL || st->done || (!st->hello && json_object_get(o, "hello") == NULL) ||
                   record(st, o) < 0);
        json_decref(o);
        if (bad) {
            st->bad_at = *pos;
            size_t k = 0;
            for (size_t i = 0; i < n && k + 5 < sizeof(st->bad) && i < 40; i++) {
                unsigned char c = (unsigned char)start[i];
                if (c >= 0x20 && c < 0x7f && c != '\'')
                    st->bad[k++] = (char)c;
                else
                    k += (size_t)snprintf(st->bad + k, sizeof(st->bad) - k, "\\x%02x", c);
            }
            st->bad[k] = '\0';
            return -1;
        }
        *pos += n + 1;
    }
    return 0;
}

static void kill_group(pid_t pid)
{
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
}

int lamina_probe_run(const lamina_probe_request *rq, lamina_plugin_report *out,
                     lamina_probe_files *files, int *cacheable, char *err, size_t err_size)
{
    int rc = 0;
    int rep_pipe[2] = { -1, -1 }, err_pipe[2] = { -1, -1 };
    char **env = NULL;
    buf rb = { 0 }, eb = { 0 };
    pid_t pid = -1;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int fa_init = 0, attr_init = 0;
    stream st;
    char sigbuf[32], line[300], tail[1024];
    const char *argv[8];
    int argc = 0;
    char threads[16];

    memset(&st, 0, sizeof(st));
    st.rep = out;
    st.files = files;
    st.stage_device = -1;
    snprintf(st.stage, sizeof(st.stage), "start");
    *cacheable = 0;
    snprintf(out->path, sizeof(out->path), "%s", rq->plugin_path);

    if (pipe2(rep_pipe, O_CLOEXEC) < 0 || pipe2(err_pipe, O_CLOEXEC) < 0) {
        rc = lamina_set_err(err, err_size, LAMINA_EIO, "pipe: %s", strerror(errno));
        goto spawn_failed;
    }
    if ((env = build_env(rq->bc)) == NULL) {
        rc = lamina_set_err(err, err_size, LAMINA_ENOMEM, "out of memory");
        goto spawn_failed;
    }
    if (posix_spawn_file_actions_init(&fa) != 0) {
        rc = lamina_set_err(err, err_size, LAMINA_ENOMEM, "out of memory");
        goto spawn_failed;
    }
    fa_init = 1;
    /* fd 3: the report pipe; 1 and 2: the stderr pipe; 0: /dev/null. */
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, rep_pipe[1], LAMINA_PROBE_FD);
    posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
    if (posix_spawnattr_init(&attr) != 0) {
        rc = lamina_set_err(err, err_size, LAMINA_ENOMEM, "out of memory");
        goto spawn_failed;
    }
    attr_init = 1;
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                    POSIX_SPAWN_SETSIGDEF);

    argv[argc++] = rq->helper_path;
    if (rq->no_selftest)
        argv[argc++] = "--no-selftest";
    if (rq->want_cases)
        argv[argc++] = "--cases";
    if (rq->threads > 0) {
        snprintf(threads, sizeof(threads), "%d", rq->threads);
        argv[argc++] = "--threads";
        argv[argc++] = threads;
    }
    argv[argc++] = rq->plugin_path;
    argv[argc] = NULL;

    double t0 = now_ms();
    int se = posix_spawn(&pid, rq->helper_path, &fa, &attr, (char *const *)argv, env);
    if (se != 0) {
        pid = -1;
        rc = lamina_set_err(err, err_size, LAMINA_EIO, "cannot run the probe helper %s: %s",
                            rq->helper_path, strerror(se));
        goto spawn_failed;
    }
    close(rep_pipe[1]);
    rep_pipe[1] = -1;
    close(err_pipe[1]);
    err_pipe[1] = -1;

    /* Read both pipes until the report pipe is closed and the helper has
     * exited, or the deadline passes. */
    double deadline = t0 + rq->timeout_ms;
    int timed_out = 0, malformed = 0, status = 0, reaped = 0, killed = 0;
    size_t pos = 0;
    struct pollfd pf[2];
    char chunk[65536];
    for (;;) {
        if (rep_pipe[0] < 0 && !reaped) {
            pid_t w = waitpid(pid, &status, WNOHANG);
            if (w == pid)
                reaped = 1;
        }
        if (rep_pipe[0] < 0 && reaped)
            break;
        double left = deadline - now_ms();
        if (left <= 0) {
            timed_out = !st.done;
            break;
        }
        int nf = 0;
        int idx_rep = -1, idx_err = -1;
        if (rep_pipe[0] >= 0) { pf[nf].fd = rep_pipe[0]; pf[nf].events = POLLIN; idx_rep = nf++; }
        if (err_pipe[0] >= 0) { pf[nf].fd = err_pipe[0]; pf[nf].events = POLLIN; idx_err = nf++; }
        int wait_ms = (int)left + 1;
        if (rep_pipe[0] < 0 && wait_ms > 5)
            wait_ms = 5;        /* report complete: watch for the exit */
        int pr = nf > 0 ? poll(pf, (nfds_t)nf, wait_ms) : 0;
        if (nf == 0) {
            struct timespec ts = { 0, 2 * 1000 * 1000 };
            nanosleep(&ts, NULL);
        }
        if (pr < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (idx_rep >= 0 && (pf[idx_rep].revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t r = read(rep_pipe[0], chunk, sizeof(chunk));
            if (r > 0) {
                if (rb.len + (size_t)r > REPORT_MAX || buf_add(&rb, chunk, (size_t)r) < 0) {
                    malformed = 1;
                    snprintf(st.bad, sizeof(st.bad), "more than %zu MiB", REPORT_MAX >> 20);
                    break;
                }
                if (parse_lines(&st, &rb, &pos) < 0) {
                    malformed = 1;
                    break;
                }
            } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
                close(rep_pipe[0]);
                rep_pipe[0] = -1;
                if (pos < rb.len) {
                    /* Bytes after the last newline: an unterminated record. */
                    malformed = 1;
                    size_t k = 0;
                    for (size_t i = pos; i < rb.len && k + 5 < sizeof(st.bad) && i < pos + 40; i++) {
                        unsigned char c = (unsigned char)rb.p[i];
                        if (c >= 0x20 && c < 0x7f && c != '\'')
                            st.bad[k++] = (char)c;
                        else
                            k += (size_t)snprintf(st.bad + k, sizeof(st.bad) - k, "\\x%02x", c);
                    }
                    st.bad[k] = '\0';
                    st.bad_at = pos;
                    break;
                }
            }
        }
        if (idx_err >= 0 && (pf[idx_err].revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t r = read(err_pipe[0], chunk, sizeof(chunk));
            if (r > 0) {
                buf_add(&eb, chunk, (size_t)r);
                if (eb.len > 2 * STDERR_KEEP) {     /* keep only the tail */
                    memmove(eb.p, eb.p + eb.len - STDERR_KEEP, STDERR_KEEP);
                    eb.len = STDERR_KEEP;
                    eb.p[eb.len] = '\0';
                }
            } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
                close(err_pipe[0]);
                err_pipe[0] = -1;
            }
        }
    }
    if (!reaped) {
        /* Hung, malformed, or lingering after its report: the whole group
         * goes. */
        kill_group(pid);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        killed = 1;
    } else {
        /* Anything it left behind in its group goes too. */
        kill(-pid, SIGKILL);
    }
    pid = -1;
    /* What is still buffered on stderr. */
    if (err_pipe[0] >= 0) {
        fcntl(err_pipe[0], F_SETFL, O_NONBLOCK);
        ssize_t r;
        while ((r = read(err_pipe[0], chunk, sizeof(chunk))) > 0) {
            buf_add(&eb, chunk, (size_t)r);
            if (eb.len > 2 * STDERR_KEEP) {
                memmove(eb.p, eb.p + eb.len - STDERR_KEEP, STDERR_KEEP);
                eb.len = STDERR_KEEP;
                eb.p[eb.len] = '\0';
            }
        }
    }
    double elapsed = now_ms() - t0;
    if (out->probe_ms <= 0)
        out->probe_ms = elapsed;

    stderr_tail(&eb, tail, sizeof(tail));
    snprintf(out->stderr_tail, sizeof(out->stderr_tail), "%s", tail);
    last_line(tail, line, sizeof(line));
    char where[64];
    if (strcmp(st.stage, "selftest") == 0 && st.stage_device >= 0)
        snprintf(where, sizeof(where), "self-test of device %d", st.stage_device);
    else
        snprintf(where, sizeof(where), "%s", st.stage);
    const char *name = out->name[0] ? out->name : rq->plugin_path;
#define STDERR_SUFFIX line[0] ? "; stderr: " : "", line

    if (timed_out) {
        out->probe_ms = elapsed;
        snprintf(out->failure, sizeof(out->failure), "hang");
        snprintf(out->reason, sizeof(out->reason),
                 "%s: hung: no complete report within %d ms (stage %s); process group killed%s%s",
                 name, rq->timeout_ms, where, STDERR_SUFFIX);
        *cacheable = 1;
    } else if (malformed) {
        snprintf(out->failure, sizeof(out->failure), "malformed");
        snprintf(out->reason, sizeof(out->reason),
                 "%s: malformed report on fd %d at byte %zu: '%s' (stage %s)", name,
                 LAMINA_PROBE_FD, st.bad_at, st.bad, where);
        *cacheable = 1;
    } else if (!killed && WIFSIGNALED(status) && !st.done) {
        snprintf(out->failure, sizeof(out->failure), "crash");
        snprintf(out->reason, sizeof(out->reason), "%s: crashed with %s during %s%s%s", name,
                 lamina_signal_name(WTERMSIG(status), sigbuf, sizeof(sigbuf)), where,
                 STDERR_SUFFIX);
        *cacheable = 1;
    } else if (!st.done) {
        snprintf(out->failure, sizeof(out->failure), "exit");
        if (!killed && WIFEXITED(status))
            snprintf(out->reason, sizeof(out->reason),
                     "%s: helper exited with status %d without a complete report (stage %s)%s%s",
                     name, WEXITSTATUS(status), where, STDERR_SUFFIX);
        else
            snprintf(out->reason, sizeof(out->reason),
                     "%s: helper ended without a complete report (stage %s)%s%s", name, where,
                     STDERR_SUFFIX);
        *cacheable = 1;
    } else if (st.err_kind[0] != '\0') {
        snprintf(out->failure, sizeof(out->failure), "%s", st.err_kind);
        snprintf(out->reason, sizeof(out->reason), "%s: %s", name, st.err_msg);
        /* A library that is not there yet, or a probe that failed (often
         * for the same reason), must be retried on the next start. */
        *cacheable = strcmp(st.err_kind, "dlopen") != 0 && strcmp(st.err_kind, "probe") != 0 &&
                     strcmp(st.err_kind, "entry") != 0;
    } else {
        *cacheable = 1;
        if (!killed && WIFSIGNALED(status) && out->n_notes < 8)
            snprintf(out->notes[out->n_notes++], sizeof(out->notes[0]),
                     "the probe helper died of %s after its report",
                     lamina_signal_name(WTERMSIG(status), sigbuf, sizeof(sigbuf)));
    }
    if (out->failure[0] != '\0')
        out->status = LAMINA_STATUS_REJECTED;
    rc = 0;
    goto out;

spawn_failed:
    snprintf(out->failure, sizeof(out->failure), "spawn");
    snprintf(out->reason, sizeof(out->reason), "%s: %s", rq->plugin_path,
             err && err[0] ? err : "cannot run the probe helper");
    out->status = LAMINA_STATUS_REJECTED;
out:
    if (pid > 0) {
        kill_group(pid);
        waitpid(pid, NULL, 0);
    }
    if (fa_init)
        posix_spawn_file_actions_destroy(&fa);
    if (attr_init)
        posix_spawnattr_destroy(&attr);
    for (int i = 0; i < 2; i++) {
        if (rep_pipe[i] >= 0) close(rep_pipe[i]);
        if (err_pipe[i] >= 0) close(err_pipe[i]);
    }
    free(env);
    free(rb.p);
    free(eb.p);
    return rc;
}
