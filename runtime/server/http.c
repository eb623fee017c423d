/*
 * http.c - the HTTP side of `lamina serve`, on libmicrohttpd (one thread
 * per connection).
 *
 * Every request goes through, in order:
 *   1. the route (exact path, or the /v1/models/ prefix; GET also answers
 *      HEAD): unknown path 404, known path with another method 405;
 *   2. the browser origin: a request carrying Origin must name one of
 *      [server] cors_origins (403 otherwise); an OPTIONS preflight from an
 *      allowed origin is answered 204 here, before authentication;
 *   3. the API key when one is set: Authorization: Bearer KEY, compared in
 *      constant time (401 otherwise); GET / (liveness) is exempt;
 *   4. the body: at most [server] max_body_kib (413, checked against
 *      Content-Length before reading and again while reading), then JSON
 *      with at most max_json_depth levels (400);
 *   5. the endpoint handler, which queues one reply.
 * Each reply is counted in the metrics by route label and status, and
 * logged (unless quiet) when the connection is done with it.
 */
#include "config.h"

#include <ctype.h>

#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server.h"

#define IDLE_TIMEOUT_S 120u

typedef struct route {
    const char *method;
    const char *path;
    int      prefix;              /* path is a prefix (ends in '/') */
    int      flavor;
    int      body;                /* takes a JSON object body */
    int      open;                /* no API key needed */
    int    (*fn)(srv_call *);
} route;

static int api_root(srv_call *c)
{
    static const char alive[] = "lamina is running";
    return srv_reply_text(c, 200, "text/plain; charset=utf-8", alive, sizeof alive - 1);
}

static const route routes[] = {
    { "GET",  "/",                    0, SRV_PLAIN,  0, 1, api_root },
    { "GET",  "/health",              0, SRV_PLAIN,  0, 1, srv_health },
    { "GET",  "/healthz",             0, SRV_PLAIN,  0, 1, srv_health },
    { "GET",  "/readyz",              0, SRV_PLAIN,  0, 1, srv_ready },
    { "GET",  "/api/version",         0, SRV_OLLAMA, 0, 0, srv_api_version },
    { "GET",  "/api/tags",            0, SRV_OLLAMA, 0, 0, srv_api_tags },
    { "POST", "/api/show",            0, SRV_OLLAMA, 1, 0, srv_api_show },
    { "GET",  "/api/ps",              0, SRV_OLLAMA, 0, 0, srv_api_ps },
    { "POST", "/api/generate",        0, SRV_OLLAMA, 1, 0, srv_api_generate },
    { "POST", "/api/chat",            0, SRV_OLLAMA, 1, 0, srv_api_chat },
    { "POST", "/api/embed",           0, SRV_OLLAMA, 1, 0, srv_api_embed },
    { "POST", "/api/embeddings",      0, SRV_OLLAMA, 1, 0, srv_api_embeddings },
    { "GET",  "/v1/models",           0, SRV_OPENAI, 0, 0, srv_oai_models },
    { "GET",  "/v1/models/",          1, SRV_OPENAI, 0, 0, srv_oai_model },
    { "POST", "/v1/chat/completions", 0, SRV_OPENAI, 1, 0, srv_oai_chat },
    { "POST", "/v1/completions",      0, SRV_OPENAI, 1, 0, srv_oai_completions },
    { "POST", "/v1/embeddings",       0, SRV_OPENAI, 1, 0, srv_oai_embeddings },
    { "POST", "/v1/rerank",           0, SRV_OPENAI, 1, 0, srv_rerank },
    { "POST", "/v1/reranking",        0, SRV_OPENAI, 1, 0, srv_rerank },
    { "POST", "/rerank",              0, SRV_OPENAI, 1, 0, srv_rerank },
    { "POST", "/reranking",           0, SRV_OPENAI, 1, 0, srv_rerank },
    { "POST", "/apply-template",      0, SRV_OPENAI, 1, 0, srv_llama_apply_template },
    { "POST", "/tokenize",            0, SRV_OPENAI, 1, 0, srv_llama_tokenize },
    { "POST", "/detokenize",          0, SRV_OPENAI, 1, 0, srv_llama_detokenize },
    { "GET",  "/metrics",             0, SRV_PLAIN,  0, 0, srv_metrics_handler },
};
#define N_ROUTES (sizeof routes / sizeof routes[0])

/* What one request carries between libmicrohttpd's calls. */
typedef struct conn_state {
    const route *rt;
    char     endpoint[48];
    int      flavor;
    char    *body;
    size_t   n, cap;
    int      too_big;
    int      replied;
    int      status;
    double   t0;
    char     origin[256];         /* allowed origin to echo; "" none */
    char     log[256];
} conn_state;

static int path_match(const route *r, const char *url)
{
    if (r->prefix) return strncmp(url, r->path, strlen(r->path)) == 0 && url[strlen(r->path)] != 0;
    return strcmp(url, r->path) == 0;
}

/* ------------------------------------------------------------------ */
/* Replies                                                            */

static void add_common(const srv_call *c, struct MHD_Response *resp)
{
    if (c->origin && c->origin[0]) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", c->origin);
        MHD_add_response_header(resp, "Vary", "Origin");
    }
}

static int queue(srv_call *c, int status, struct MHD_Response *resp)
{
    add_common(c, resp);
    int rc = MHD_queue_response(c->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    c->status = status;
    return rc;
}

int srv_reply_text(srv_call *c, int status, const char *content_type, const char *text, size_t len)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", content_type);
    return queue(c, status, resp);
}

int srv_reply_json(srv_call *c, int status, json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text) return srv_reply_text(c, 500, "application/json", "{\"error\":\"out of memory\"}", 25);
    struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!resp) { free(text); return MHD_NO; }
    MHD_add_response_header(resp, "Content-Type", "application/json; charset=utf-8");
    return queue(c, status, resp);
}

static const char *oai_type(int status)
{
    switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 503: return "overloaded_error";
    case 504: return "timeout_error";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

/* The error body in the call's flavour. */
static json_t *error_json(int flavor, int status, const char *msg)
{
    if (flavor == SRV_OPENAI)
        return json_pack("{s:{s:s, s:s, s:n, s:n}}", "error", "message", msg, "type", oai_type(status),
                         "param", "code");
    return json_pack("{s:s}", "error", msg);
}

int srv_reply_error(srv_call *c, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(c->log, sizeof c->log, "%s", msg);
    json_t *j = error_json(c->flavor, status, msg);
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!text) return MHD_NO;
    struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!resp) { free(text); return MHD_NO; }
    MHD_add_response_header(resp, "Content-Type", "application/json; charset=utf-8");
    if (status == 503) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", c->retry_after > 0 ? c->retry_after : 1);
        MHD_add_response_header(resp, "Retry-After", ra);
    }
    if (status == 401) MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"lamina\"");
    return queue(c, status, resp);
}

/* ---- streamed replies ---- */

typedef struct stream_ctx {
    srv_stream_next_fn next;
    srv_stream_free_fn fin;
    void    *ctx;
    struct MHD_Connection *conn;
    char    *buf;
    size_t   n, off;
    int      ended;
} stream_ctx;

static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
    stream_ctx *sc = cls;
    (void)pos;
    for (;;) {
        if (sc->off < sc->n) {
            size_t k = sc->n - sc->off < max ? sc->n - sc->off : max;
            memcpy(out, sc->buf + sc->off, k);
            sc->off += k;
            return (ssize_t)k;
        }
        free(sc->buf);
        sc->buf = NULL;
        sc->n = sc->off = 0;
        if (sc->ended) return MHD_CONTENT_READER_END_OF_STREAM;
        int rc = sc->next(sc->ctx, &sc->buf, &sc->n);
        if (rc < 0) return MHD_CONTENT_READER_END_WITH_ERROR;
        if (rc == 1) sc->ended = 1;
    }
}

static void stream_free(void *cls)
{
    stream_ctx *sc = cls;
    if (sc->fin) sc->fin(sc->ctx);
    free(sc->buf);
    free(sc);
}

int srv_reply_stream(srv_call *c, const char *content_type, srv_stream_next_fn next,
                     srv_stream_free_fn fin, void *ctx)
{
    stream_ctx *sc = calloc(1, sizeof *sc);
    if (!sc) { if (fin) fin(ctx); return srv_reply_error(c, 500, "out of memory"); }
    sc->next = next;
    sc->fin = fin;
    sc->ctx = ctx;
    sc->conn = c->conn;
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_read,
                                                                  sc, stream_free);
    if (!resp) { stream_free(sc); return MHD_NO; }
    MHD_add_response_header(resp, "Content-Type", content_type);
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    return queue(c, 200, resp);
}

/* ------------------------------------------------------------------ */
/* Checks                                                             */

static int origin_allowed(const srv *s, const char *origin)
{
    for (int i = 0; i < s->set.n_cors; i++)
        if (!strcmp(s->set.cors[i], "*") || !strcmp(s->set.cors[i], origin)) return 1;
    return 0;
}

/* While listening on loopback, the Host a browser was pointed at must be a
 * loopback name or address (or one of [server] allowed_hosts): a page of
 * another site whose name resolves to 127.0.0.1 (DNS rebinding) is refused.
 * No Host (HTTP/1.0) passes. */
static int host_allowed(const srv *s, const char *host)
{
    if (!s->loopback || !host) return 1;
    char h[256];
    snprintf(h, sizeof h, "%s", host);
    char *end;
    if (h[0] == '[') {                    /* [v6]:port */
        end = strchr(h, ']');
        if (end) end[1] = 0;
    } else if ((end = strchr(h, ':')) != NULL && !strchr(end + 1, ':')) {
        *end = 0;                         /* name:port */
    }
    for (char *c = h; *c; c++) *c = (char)tolower((unsigned char)*c);
    size_t n = strlen(h);
    if (n && h[n - 1] == '.') h[--n] = 0;
    if (!strcmp(h, "localhost") || (n > 10 && !strcmp(h + n - 10, ".localhost")) || !strcmp(h, "[::1]") ||
        !strcmp(h, "::1") || !strncmp(h, "127.", 4))
        return 1;
    for (int i = 0; i < s->set.n_hosts; i++)
        if (!strcmp(s->set.hosts[i], "*") || !strcasecmp(s->set.hosts[i], h)) return 1;
    return 0;
}

/* Constant-time comparison of the presented key with the configured one. */
static int key_ok(const srv *s, const char *auth)
{
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0) return 0;
    const char *k = auth + 7;
    while (*k == ' ') k++;
    size_t a = strlen(k), b = strlen(s->set.api_key);
    unsigned diff = (unsigned)(a ^ b);
    for (size_t i = 0; i < b; i++) diff |= (unsigned char)s->set.api_key[i] ^ (unsigned char)(i < a ? k[i] : 0);
    return diff == 0;
}

static int call_init(srv_call *c, srv *s, struct MHD_Connection *conn, conn_state *cs,
                     const char *method, const char *url)
{
    memset(c, 0, sizeof *c);
    c->s = s;
    c->conn = conn;
    c->method = method;
    c->url = url;
    c->endpoint = cs->endpoint;
    c->flavor = cs->flavor;
    c->origin = cs->origin;
    c->t_recv = cs->t0;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    c->fd = ci ? ci->connect_fd : -1;
    return 0;
}

static void call_done(srv_call *c, conn_state *cs)
{
    cs->replied = 1;
    cs->status = c->status;
    if (c->log[0] && !cs->log[0]) snprintf(cs->log, sizeof cs->log, "%s", c->log);
    srv_metrics_request(c->s->metrics, cs->endpoint, c->status);
}

/* ------------------------------------------------------------------ */
/* The access handler                                                 */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    srv *s = cls;
    conn_state *cs = *con_cls;
    srv_call c;
    (void)version;

    if (!cs) {
        cs = calloc(1, sizeof *cs);
        if (!cs) return MHD_NO;
        *con_cls = cs;
        cs->t0 = srv_now();
        /* no idle timeout while the request is worked on (see on_completed) */
        MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
        const char *m = !strcmp(method, "HEAD") ? "GET" : method;
        const route *known = NULL;      /* the path's route, whatever the method */
        for (size_t i = 0; i < N_ROUTES; i++) {
            if (!path_match(&routes[i], url)) continue;
            if (!known) known = &routes[i];
            if (!strcmp(routes[i].method, m)) { cs->rt = known = &routes[i]; break; }
        }
        int path_known = known != NULL;
        /* metric labels are route names only, never client-chosen text */
        snprintf(cs->endpoint, sizeof cs->endpoint, "%s%s", known ? known->path : "other",
                 known && known->prefix ? "{id}" : "");
        cs->flavor = cs->rt ? cs->rt->flavor : !strncmp(url, "/v1/", 4) ? SRV_OPENAI : SRV_OLLAMA;
        call_init(&c, s, conn, cs, method, url);

        const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host");
        if (!host_allowed(s, host)) {
            srv_metrics_event(s->metrics, "host_refused");
            int rc = srv_reply_error(&c, 403, "host '%.200s' is not allowed: the server listens on loopback "
                                              "([server] allowed_hosts)", host);
            call_done(&c, cs);
            return (enum MHD_Result)rc;
        }
        const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
        if (origin) {
            if (!origin_allowed(s, origin)) {
                int rc = srv_reply_error(&c, 403, "origin '%.200s' is not allowed ([server] cors_origins)", origin);
                call_done(&c, cs);
                return (enum MHD_Result)rc;
            }
            snprintf(cs->origin, sizeof cs->origin, "%s", origin);
            c.origin = cs->origin;
        }
        if (!strcmp(method, "OPTIONS")) {
            struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
            if (!resp) return MHD_NO;
            MHD_add_response_header(resp, "Allow", "GET, HEAD, POST, OPTIONS");
            if (origin) {
                const char *hdrs = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Access-Control-Request-Headers");
                MHD_add_response_header(resp, "Access-Control-Allow-Methods", "GET, HEAD, POST, OPTIONS");
                MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                                        hdrs && *hdrs ? hdrs : "Authorization, Content-Type");
                MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
            }
            int rc = queue(&c, 204, resp);
            call_done(&c, cs);
            return (enum MHD_Result)rc;
        }
        if (!cs->rt) {
            int rc = path_known ? srv_reply_error(&c, 405, "method %s is not allowed on %s", method, url)
                                : srv_reply_error(&c, 404, "404 page not found: %.200s", url);
            call_done(&c, cs);
            return (enum MHD_Result)rc;
        }
        if (s->draining && !cs->rt->open) {   /* health answers on; everything else is turned away */
            c.retry_after = 1;
            int rc = srv_reply_error(&c, 503, "the server is shutting down");
            call_done(&c, cs);
            return (enum MHD_Result)rc;
        }
        if (s->set.api_key[0] && !cs->rt->open &&
            !key_ok(s, MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization"))) {
            srv_metrics_event(s->metrics, "unauthorized");
            int rc = srv_reply_error(&c, 401, MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization")
                                                  ? "invalid API key"
                                                  : "missing API key: send Authorization: Bearer KEY");
            call_done(&c, cs);
            return (enum MHD_Result)rc;
        }
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl) {
            char *end;
            unsigned long long v = strtoull(cl, &end, 10);
            if (*end == 0 && v > s->set.max_body) {
                int rc = srv_reply_error(&c, 413, "request body of %llu bytes is larger than the limit of %zu "
                                                  "([server] max_body_kib)", v, s->set.max_body);
                call_done(&c, cs);
                return (enum MHD_Result)rc;
            }
        }
        return MHD_YES;
    }

    if (*upload_size > 0) {
        if (!cs->replied && !cs->too_big) {
            if (cs->n + *upload_size > s->set.max_body) {
                cs->too_big = 1;
            } else {
                if (cs->n + *upload_size + 1 > cs->cap) {
                    size_t cap = (cs->n + *upload_size + 1) * 2;
                    if (cap > s->set.max_body + 1) cap = s->set.max_body + 1;
                    char *b = realloc(cs->body, cap);
                    if (!b) return MHD_NO;
                    cs->body = b;
                    cs->cap = cap;
                }
                memcpy(cs->body + cs->n, upload_data, *upload_size);
                cs->n += *upload_size;
                cs->body[cs->n] = 0;
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (cs->replied) return MHD_YES;

    call_init(&c, s, conn, cs, method, url);
    int rc;
    if (cs->too_big) {
        rc = srv_reply_error(&c, 413, "request body is larger than the limit of %zu bytes ([server] max_body_kib)",
                             s->set.max_body);
    } else if (cs->rt->body) {
        char err[512];
        if (srv_json_parse(cs->body ? cs->body : "", cs->n, s->set.max_json_depth, &c.body, err, sizeof err) < 0)
            rc = srv_reply_error(&c, 400, "%s", err);
        else
            rc = cs->rt->fn(&c);
        json_decref(c.body);
    } else {
        rc = cs->rt->fn(&c);
    }
    call_done(&c, cs);
    return (enum MHD_Result)rc;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    srv *s = cls;
    conn_state *cs = *con_cls;
    MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, IDLE_TIMEOUT_S);
    if (!cs) return;
    if (!s->set.quiet) {
        const char *how = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? ""
                        : toe == MHD_REQUEST_TERMINATED_CLIENT_ABORT ? " (client went away)"
                        : toe == MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN ? " (shutdown)" : " (aborted)";
        s->log(s, "%s %d %.3f s%s%s%s", cs->endpoint, cs->status, srv_now() - cs->t0, how,
               cs->log[0] ? " " : "", cs->log);
    }
    free(cs->body);
    free(cs);
    *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    srv *s = cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n') msg[--n] = 0;
    if (s->verbose) s->log(s, "http: %s", msg);
}

int srv_http_start(srv *s, int listen_fd, char *err, size_t err_size)
{
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG;
    s->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
                              MHD_OPTION_LISTEN_SOCKET, (MHD_socket)listen_fd,
                              MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->set.max_connections,
                              MHD_OPTION_CONNECTION_TIMEOUT, IDLE_TIMEOUT_S,
                              MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024,
                              MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
                              MHD_OPTION_END);
    if (!s->mhd) {
        snprintf(err, err_size, "libmicrohttpd could not start on the listening socket");
        return LAMINA_EIO;
    }
    return 0;
}

int srv_http_quiesce(srv *s)
{
    return s->mhd ? (int)MHD_quiesce_daemon(s->mhd) : -1;
}

void srv_http_stop(srv *s)
{
    if (s->mhd) MHD_stop_daemon(s->mhd);
    s->mhd = NULL;
}
