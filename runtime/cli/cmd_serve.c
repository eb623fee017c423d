/* cmd_serve.c - `lamina serve`: settings, the listening socket and its
 * security rules, the server's life (signals, idle unloads, shutdown).
 *
 * The listen address comes from [server] listen, then $LAMINA_HOST, then
 * --listen, each overriding the one before.  A loopback address needs
 * nothing; any other address needs an API key ([server] api_key,
 * api_key_file or $LAMINA_API_KEY) unless [server] allow_unauthenticated
 * is true, and the start-up message says which applies. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "conf.h"
#include "server/server.h"

static void serve_usage(FILE *fp)
{
    fputs("usage: lamina serve [options]\n"
          "  --listen HOST:PORT   address to bind (default [server] listen, then $LAMINA_HOST;\n"
          "                       127.0.0.1:11434); PORT 0 picks a free port\n"
          "  --parallel N         sequences decoded together per model ([server] parallel)\n"
          "  --ctx N              positions per sequence ([server] n_ctx)\n"
          "  --preload MODEL      load this model at start\n"
          "  -q, --quiet          no access log\n"
          "The API (Ollama /api/*, OpenAI /v1/*, /metrics), the [server] keys and the\n"
          "deployment files: lamina-serve(1).\n", fp);
}

static void log_line(srv *s, const char *fmt, ...)
{
    (void)s;
    char msg[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n') msg[--n] = 0;
    char when[48];
    srv_time_rfc3339(srv_wall(), when, sizeof when);
    when[19] = 0;                                  /* to the second */
    for (char *line = msg, *nl; line; line = nl) {
        nl = strchr(line, '\n');
        if (nl) *nl++ = 0;
        fprintf(stderr, "%s lamina serve: %s\n", when, line);
    }
}

static void rt_log(void *ctx, int level, const char *msg)
{
    const cli_globals *g = ctx;
    if (level <= LAMINA_LOG_WARN || (g && g->verbose)) fprintf(stderr, "lamina: %s\n", msg);
}

/* "HOST:PORT", "[v6]:PORT", "HOST", ":PORT", optionally after "http://".
 * A missing part keeps its previous value. */
static int parse_listen(const char *v, char *host, size_t host_size, int *port, char *err, size_t es)
{
    if (!strncmp(v, "http://", 7)) v += 7;
    char buf[300];
    snprintf(buf, sizeof buf, "%s", v);
    size_t n = strlen(buf);
    while (n && buf[n - 1] == '/') buf[--n] = 0;
    char *h = buf, *p = NULL;
    if (buf[0] == '[') {
        char *close = strchr(buf, ']');
        if (!close) { snprintf(err, es, "'%s': missing ']'", v); return -1; }
        *close = 0;
        h = buf + 1;
        if (close[1] == ':') p = close + 2;
        else if (close[1]) { snprintf(err, es, "'%s': expected [ADDRESS]:PORT", v); return -1; }
    } else {
        char *colon = strrchr(buf, ':');
        if (colon && strchr(buf, ':') != colon) colon = NULL;   /* a bare IPv6 address */
        if (colon) { *colon = 0; p = colon + 1; }
    }
    if (p) {
        char *end;
        long x = strtol(p, &end, 10);
        if (!*p || *end || x < 0 || x > 65535) { snprintf(err, es, "'%s': port must be 0 to 65535", v); return -1; }
        *port = (int)x;
    }
    if (*h) {
        if (strlen(h) >= host_size) { snprintf(err, es, "'%s': host name too long", v); return -1; }
        snprintf(host, host_size, "%s", h);
    }
    return 0;
}

static int is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_LOOPBACK(&a->sin6_addr)) return 1;
        if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) return a->sin6_addr.s6_addr[12] == 127;
    }
    return 0;
}

/* Bind and listen on the first address the host resolves to that works.
 * The security rule is applied to each address before binding it: a
 * non-loopback address is not even bound unless `open_ok` (a key is set
 * or allow_unauthenticated).  Returns the socket or -1 (*refused = 1 when
 * the rule was the reason). */
static int open_listener(const char *host, int port, int open_ok, int *loopback, int *refused,
                         char *shown, size_t shown_size, char *err, size_t es)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    int rc = getaddrinfo(host, ps, &hints, &res);
    if (rc != 0) { snprintf(err, es, "listen address '%s': %s", host, gai_strerror(rc)); return -1; }
    int fd = -1;
    char why[256] = "no address";
    *refused = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (!open_ok && !is_loopback(ai->ai_addr)) {
            char addr[INET6_ADDRSTRLEN] = "?";
            if (ai->ai_family == AF_INET)
                inet_ntop(AF_INET, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, addr, sizeof addr);
            else if (ai->ai_family == AF_INET6)
                inet_ntop(AF_INET6, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, addr, sizeof addr);
            snprintf(shown, shown_size, ai->ai_family == AF_INET6 ? "[%s]:%d" : "%s:%d", addr, port);
            *refused = 1;
            continue;
        }
        *refused = 0;
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) { snprintf(why, sizeof why, "socket: %s", strerror(errno)); continue; }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (ai->ai_family == AF_INET6) {
            /* "::" serves IPv4 too; a specific v6 address only itself */
            int v6only = 0;
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
        }
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 128) == 0) {
            struct sockaddr_storage ss;
            socklen_t sl = sizeof ss;
            getsockname(fd, (struct sockaddr *)&ss, &sl);
            *loopback = is_loopback((struct sockaddr *)&ss);
            char addr[INET6_ADDRSTRLEN] = "?";
            int bound_port = 0;
            if (ss.ss_family == AF_INET) {
                inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, addr, sizeof addr);
                bound_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
                snprintf(shown, shown_size, "%s:%d", addr, bound_port);
            } else {
                inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, addr, sizeof addr);
                bound_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
                snprintf(shown, shown_size, "[%s]:%d", addr, bound_port);
            }
            freeaddrinfo(res);
            return fd;
        }
        snprintf(why, sizeof why, "%s", strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (!*refused) snprintf(err, es, "cannot listen on %s:%d: %s", host, port, why);
    return -1;
}

/* The first line of a key file. */
static int read_key_file(const char *path, char *key, size_t size, char *err, size_t es)
{
    FILE *fp = fopen(path, "r");
    if (!fp) { snprintf(err, es, "[server] api_key_file %s: %s", path, strerror(errno)); return -1; }
    char line[512] = "";
    if (!fgets(line, sizeof line, fp)) line[0] = 0;
    fclose(fp);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ')) line[--n] = 0;
    if (!n) { snprintf(err, es, "[server] api_key_file %s: empty", path); return -1; }
    if (n >= size) { snprintf(err, es, "[server] api_key_file %s: key longer than %zu characters", path, size - 1); return -1; }
    snprintf(key, size, "%s", line);
    return 0;
}

/* A comma-separated [server] list into out[LAMINA_MAX_LIST][256]: items
 * trimmed (and of `strip` trailing characters), each checked by ok();
 * `what` names the items in messages. */
static int split_list(const char *list, const char *key, const char *what, const char *strip,
                      int (*ok)(const char *), const char *expect, char out[][256], int *n_out,
                      char *err, size_t es)
{
    char buf[2048];
    snprintf(buf, sizeof buf, "%s", list);
    *n_out = 0;
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        while (*tok == ' ' || *tok == '\t') tok++;
        size_t n = strlen(tok);
        while (n && (tok[n - 1] == ' ' || tok[n - 1] == '\t' || strchr(strip, tok[n - 1]))) tok[--n] = 0;
        if (!n) continue;
        if (!ok(tok)) {
            snprintf(err, es, "[server] %s: '%s' is not %s", key, tok, expect);
            return -1;
        }
        if (*n_out == LAMINA_MAX_LIST || n >= 256) {
            snprintf(err, es, "[server] %s: at most %d %s of up to 255 characters", key, LAMINA_MAX_LIST, what);
            return -1;
        }
        snprintf(out[(*n_out)++], 256, "%s", tok);
    }
    return 0;
}

static int host_ok(const char *t) { return !strchr(t, '/') && !strchr(t, ' '); }

static int origin_ok(const char *t)
{
    return !strcmp(t, "*") || !strncmp(t, "http://", 7) || !strncmp(t, "https://", 8);
}

/* [server] allowed_hosts: host names (no scheme, no port), or "*". */
static int split_hosts(const char *list, srv_settings *st, char *err, size_t es)
{
    return split_list(list, "allowed_hosts", "names", "", host_ok,
                      "a host name (expected a name such as lamina.internal, or *)", st->hosts, &st->n_hosts, err, es);
}

static int split_origins(const char *list, srv_settings *st, char *err, size_t es)
{
    return split_list(list, "cors_origins", "origins", "/", origin_ok,
                      "an origin (expected http://HOST[:PORT], https://HOST[:PORT] or *)", st->cors, &st->n_cors,
                      err, es);
}

int cmd_serve(const cli_globals *g, int argc, char **argv)
{
    const char *o_listen = NULL, *o_preload = NULL;
    int o_parallel = 0, o_ctx = 0, quiet = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((!strcmp(a, "--listen") || !strcmp(a, "--preload") || !strcmp(a, "--parallel") || !strcmp(a, "--ctx")) &&
            i + 1 >= argc) {
            cli_error("serve: %s needs a value", a);
            return 2;
        }
        if (!strcmp(a, "--listen")) o_listen = argv[++i];
        else if (!strncmp(a, "--listen=", 9)) o_listen = a + 9;
        else if (!strcmp(a, "--preload")) o_preload = argv[++i];
        else if (!strcmp(a, "--parallel") || !strcmp(a, "--ctx")) {
            char *end;
            long x = strtol(argv[i + 1], &end, 10);
            if (*end || x < 1 || x > (a[2] == 'p' ? 256 : 1 << 24)) {
                cli_error("serve: %s: bad value '%s'", a, argv[i + 1]);
                return 2;
            }
            if (a[2] == 'p') o_parallel = (int)x; else o_ctx = (int)x;
            i++;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) quiet = 1;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) { serve_usage(stdout); return 0; }
        else { cli_error("serve: unexpected argument '%s'", a); serve_usage(stderr); return 2; }
    }

    /* signals: handled by sigwait on this thread only */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    srv *s = calloc(1, sizeof *s);
    if (!s) { cli_error("out of memory"); return 1; }
    s->log = log_line;
    s->verbose = g->verbose;
    s->t_start = srv_now();
    pthread_mutex_init(&s->pool_mu, NULL);
    pthread_cond_init(&s->pool_cv, NULL);
    char err[1024] = "";
    int ret = 1, listen_fd = -1;

    lamina_runtime_options ro;
    memset(&ro, 0, sizeof ro);
    ro.struct_size = sizeof ro;
    ro.config_path = g->config_path;
    ro.reprobe = g->reprobe;
    ro.log = rt_log;
    ro.log_ctx = (void *)g;
    if (lamina_runtime_open(&ro, &s->rt, err, sizeof err) < 0) { cli_error("%s", err); goto out; }
    s->cfg = *lamina_runtime_config(s->rt);
    if (srv_metrics_create(&s->metrics) < 0) { cli_error("out of memory"); goto out; }

    /* settings: [server], then the environment, then the command line */
    srv_settings *st = &s->set;
    const lamina_config *c = &s->cfg;
    snprintf(st->host, sizeof st->host, "127.0.0.1");
    st->port = 11434;
    if (parse_listen(c->server_listen, st->host, sizeof st->host, &st->port, err, sizeof err) < 0) {
        cli_error("%s: [server] listen: %s", c->source[0] ? c->source : "lamina.ini", err);
        goto out;
    }
    const char *eh = lamina_env_get("LAMINA_HOST");
    if (eh && *eh && parse_listen(eh, st->host, sizeof st->host, &st->port, err, sizeof err) < 0) {
        cli_error("$LAMINA_HOST: %s", err);
        goto out;
    }
    if (o_listen && parse_listen(o_listen, st->host, sizeof st->host, &st->port, err, sizeof err) < 0) {
        cli_error("serve: --listen %s", err);
        goto out;
    }
    st->parallel = o_parallel ? o_parallel : c->server_parallel;
    st->queue = c->server_queue;
    st->n_ctx = o_ctx ? o_ctx : c->server_n_ctx;
    st->prompt_chunk = c->server_prompt_chunk;
    st->request_timeout = c->server_request_timeout;
    st->keep_alive = c->server_keep_alive;
    if (c->server_memory_mib > 0) st->memory_budget = (uint64_t)c->server_memory_mib << 20;
    else {
        struct sysinfo si;
        st->memory_budget = sysinfo(&si) == 0 ? (uint64_t)si.totalram * si.mem_unit / 4 * 3 : (uint64_t)8 << 30;
    }
    st->max_models = c->server_max_models;
    st->allow_unauthenticated = c->server_allow_unauthenticated;
    st->max_body = (size_t)c->server_max_body_kib << 10;
    st->max_json_depth = c->server_max_json_depth;
    st->max_connections = c->server_max_connections;
    st->quiet = quiet;
    snprintf(st->api_key, sizeof st->api_key, "%s", c->server_api_key);
    if (c->server_api_key_file[0] && read_key_file(c->server_api_key_file, st->api_key, sizeof st->api_key,
                                                   err, sizeof err) < 0) {
        cli_error("%s", err);
        goto out;
    }
    const char *ek = lamina_env_get("LAMINA_API_KEY");
    if (ek && *ek) snprintf(st->api_key, sizeof st->api_key, "%s", ek);
    if (split_origins(c->server_cors_origins, st, err, sizeof err) < 0 ||
        split_hosts(c->server_allowed_hosts, st, err, sizeof err) < 0) {
        cli_error("%s", err);
        goto out;
    }

    int loopback = 0, refused = 0;
    char shown[300] = "";
    listen_fd = open_listener(st->host, st->port, st->api_key[0] || st->allow_unauthenticated, &loopback,
                              &refused, shown, sizeof shown, err, sizeof err);
    if (listen_fd < 0 && refused) {
        cli_error("serve: refusing to listen on %s without an API key: it is not a loopback address.\n"
                  "  Set [server] api_key_file (or api_key, or $LAMINA_API_KEY) so that clients must send\n"
                  "  Authorization: Bearer KEY, or set [server] allow_unauthenticated = true in the INI file\n"
                  "  to accept anyone who can reach the port.", shown);
        goto out;
    }
    if (listen_fd < 0) { cli_error("serve: %s", err); goto out; }
    s->loopback = loopback;
    s->preloading = o_preload != NULL;
    if (srv_http_start(s, listen_fd, err, sizeof err) < 0) { cli_error("serve: %s", err); goto out; }
    listen_fd = -1;                 /* the daemon owns it now */

    const char *how = loopback ? (st->api_key[0] ? "loopback only; API key required"
                                                 : "loopback only; no API key")
                               : (st->api_key[0] ? "reachable from the network; API key required (Authorization: Bearer)"
                                                 : "reachable from the network WITHOUT authentication "
                                                   "([server] allow_unauthenticated = true)");
    log_line(s, "listening on http://%s (%s)", shown, how);
    log_line(s, "%d sequences per model, queue %d, request timeout %g s, keep-alive %g s, memory budget %llu MiB%s%s",
             st->parallel, st->queue, st->request_timeout, st->keep_alive,
             (unsigned long long)(st->memory_budget >> 20), st->n_cors ? ", browser origins: " : "",
             st->n_cors ? c->server_cors_origins : "");

    if (o_preload) {
        srv_model *m;
        double load_s;
        int http;
        if (srv_pool_acquire(s, o_preload, &m, &load_s, &http, err, sizeof err) < 0) {
            cli_error("serve: --preload %s: %s", o_preload, err);
            goto stop;
        }
        srv_pool_release(s, m, st->keep_alive);
        s->preloading = 0;
    }

    /* the main thread: signals and idle unloads */
    for (;;) {
        struct timespec ts = { 1, 0 };
        int sig = sigtimedwait(&sigs, NULL, &ts);
        if (sig > 0) {
            log_line(s, "%s: shutting down", strsignal(sig));
            break;
        }
        srv_pool_reap(s);
    }
    /* drain: new requests get 503 (and /readyz says so) while those in
     * flight finish, for [server] drain_timeout seconds or until a second
     * signal; then whatever is left is cancelled */
    srv_start_drain(s);
    if (c->server_drain_timeout > 0 && srv_in_flight(s) > 0) {
        log_line(s, "draining: %d requests in flight, at most %d s (a second signal stops at once)",
                 srv_in_flight(s), c->server_drain_timeout);
        struct timespec t0, now;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (;;) {
            struct timespec ts = { 0, 100 * 1000 * 1000 };
            if (sigtimedwait(&sigs, NULL, &ts) > 0) { log_line(s, "second signal: stopping now"); break; }
            if (srv_in_flight(s) == 0) { log_line(s, "drained"); break; }
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (now.tv_sec - t0.tv_sec >= c->server_drain_timeout) {
                log_line(s, "drain timeout: cancelling %d requests", srv_in_flight(s));
                break;
            }
        }
    }
    ret = 0;
stop: {
        int lfd = srv_http_quiesce(s);
        srv_pool_stop(s);           /* requests in flight end, cancelled */
        srv_http_stop(s);
        if (lfd >= 0) close(lfd);
        srv_pool_free(s);
    }
out:
    if (listen_fd >= 0) close(listen_fd);
    srv_metrics_free(s->metrics);
    lamina_runtime_close(s->rt);
    pthread_mutex_destroy(&s->pool_mu);
    pthread_cond_destroy(&s->pool_cv);
    free(s);
    return ret;
}
