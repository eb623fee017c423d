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
 *      with at most max_json_depth levels (400); a streamed-body route
 *      (SRV_BODY_STREAM: POST /api/blobs/:digest) instead hands the body
 *      to its handler's hooks piece by piece, without that limit,
 *      header_timeout counting from the latest piece;
 *   5. the endpoint handler, which queues one reply.
 * Each reply is counted in the metrics by route label and status, and
 * logged (unless quiet) when the connection is done with it.
 *
 * Connections (see "Connections" below):
 *   - libmicrohttpd accepts up to a hard cap above [server] max_connections
 *     and closes the connections beyond it unanswered (event connection_cap,
 *     read from its log message);
 *     a connection accepted while max_connections are already open is
 *     answered 503 with Retry-After and Connection: close (before the
 *     route checks), unless others closed by the time its request came;
 *   - a request must arrive whole (request line, headers, body) within
 *     [server] header_timeout seconds of the connection's accept, or of
 *     the end of the previous reply plus idle_timeout on a kept-alive
 *     connection (and never more than header_timeout after its request
 *     line); a watchdog thread answers 408 and shuts the socket down
 *     (slow clients, "slowloris");
 *   - between requests a connection may be idle idle_timeout seconds
 *     (libmicrohttpd's timeout); while a request is worked on and its reply
 *     sent (streams of any length) neither limit applies;
 *   - while a reply is sent, the client must take some of it every
 *     [server] write_timeout seconds: the watchdog looks at the socket
 *     (bytes waiting in it, bytes the client acknowledged) and resets
 *     one whose output has waited that long with nothing acknowledged (a
 *     client that stopped reading, or reads so slowly that TCP moves
 *     nothing); its generation is cancelled and its model released as for
 *     a client that went away.  Time spent waiting for the model is not
 *     counted: nothing is waiting to be sent then;
 *   - [server] rate_limit: requests per minute per API key (the bearer
 *     token a client sends) or, without one, per client address: a token
 *     bucket of rate_burst; over it, 429 with Retry-After.  Health,
 *     readiness, liveness and /metrics are exempt.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <math.h>
#include <netinet/in.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server.h"

/* Connections libmicrohttpd accepts beyond max_connections, to answer
 * them 503: a quarter of max_connections, at least 16, at most 256.
 * Beyond max_connections + this margin it closes new connections at once. */
#define OVERFLOW_MARGIN(max) ((max) / 4 < 16 ? 16u : (max) / 4 > 256 ? 256u : (unsigned)(max) / 4)
/* Rate limits: keys and addresses tracked (more share one bucket), and
 * the longest key kept (longer ones are cut). */
#define RL_SLOTS 1024
#define RL_MAX   8192
#define RL_KEY   136

typedef struct route {
    const char *method;
    const char *path;
    int      prefix;              /* path is a prefix (ends in '/') */
    int      flavor;
    int      body;                /* takes a JSON object body (1), or a streamed one
                                     (SRV_BODY_STREAM: fn starts it, see srv_upload) */
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
    { "POST", "/api/pull",            0, SRV_OLLAMA, 1, 0, srv_api_pull },
    { "GET",  "/api/blobs/",          1, SRV_OLLAMA, 0, 0, srv_api_blob_head },
    { "POST", "/api/blobs/",          1, SRV_OLLAMA, SRV_BODY_STREAM, 0, srv_api_blob_upload },
    { "POST", "/api/create",          0, SRV_OLLAMA, 1, 0, srv_api_create },
    { "POST", "/api/copy",            0, SRV_OLLAMA, 1, 0, srv_api_copy },
    { "DELETE", "/api/delete",        0, SRV_OLLAMA, 1, 0, srv_api_delete },
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
    const srv_upload *up;         /* a streamed body's hooks and state */
    void    *up_st;
    double   up_moved;            /* when its deadline was last moved */
    int      too_big;
    int      replied;
    int      status;
    int      counted;             /* in s->requests_active */
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
/* Connections: the count, request deadlines, rate limits             */

/* One open connection (libmicrohttpd's socket context). */
typedef struct track {
    struct track *prev, *next;
    int      fd;
    int      over;                /* accepted with max_connections already open */
    int      cut;                 /* shut down by the watchdog */
    double   deadline;            /* the request must be whole by then; 0: none */
    int      replying;            /* a reply is queued and not yet sent whole */
    uint64_t acked;               /* bytes the client acknowledged, at the last look */
    double   stalled;             /* since when output waits with nothing acknowledged; 0: moving */
} track;

typedef struct rl_entry {
    struct rl_entry *next;
    double   tokens, t;
    char     key[RL_KEY];
} rl_entry;

struct srv_http {
    pthread_mutex_t mu;
    pthread_cond_t  cv;           /* on CLOCK_MONOTONIC: wakes the watchdog */
    pthread_t       watchdog;
    int             started, stop;
    track          *head;
    int             open;         /* connections open */
    rl_entry       *rl[RL_SLOTS];
    int             n_rl;
    rl_entry        rl_shared;    /* for keys beyond RL_MAX */
};

static track *conn_track(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    srv *s = cls;
    struct srv_http *h = s->http;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        track *t = calloc(1, sizeof *t);
        *socket_context = t;
        if (!t) return;
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        t->fd = ci ? ci->connect_fd : -1;
        pthread_mutex_lock(&h->mu);
        h->open++;
        t->over = h->open > s->set.max_connections;
        if (s->cfg.server_header_timeout > 0) t->deadline = srv_now() + s->cfg.server_header_timeout;
        t->next = h->head;
        if (h->head) h->head->prev = t;
        h->head = t;
        pthread_cond_signal(&h->cv);
        pthread_mutex_unlock(&h->mu);
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        /* libmicrohttpd closes the socket after this call: the watchdog
         * never sees a descriptor that was reused */
        track *t = *socket_context;
        if (!t) return;
        pthread_mutex_lock(&h->mu);
        if (t->prev) t->prev->next = t->next;
        else h->head = t->next;
        if (t->next) t->next->prev = t->prev;
        h->open--;
        pthread_mutex_unlock(&h->mu);
        free(t);
        *socket_context = NULL;
    }
}

/* The request line came: the rest of the request has header_timeout. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    srv *s = cls;
    (void)uri;
    track *t = conn_track(conn);
    if (t && s->cfg.server_header_timeout > 0) {
        double d = srv_now() + s->cfg.server_header_timeout;
        pthread_mutex_lock(&s->http->mu);
        if (t->deadline <= 0 || d < t->deadline) t->deadline = d;
        pthread_mutex_unlock(&s->http->mu);
    }
    return NULL;
}

/* Set the connection's deadline (0: none); 1 when the watchdog already
 * shut it down. */
static int set_deadline(srv *s, struct MHD_Connection *conn, double deadline)
{
    track *t = conn_track(conn);
    if (!t) return 0;
    pthread_mutex_lock(&s->http->mu);
    t->deadline = deadline;
    int cut = t->cut;
    if (deadline > 0) pthread_cond_signal(&s->http->cv);
    pthread_mutex_unlock(&s->http->mu);
    return cut;
}

/* A reply is queued on the connection (1) or done with (0): while it is
 * sent, the watchdog holds the client to [server] write_timeout. */
static void set_replying(srv *s, struct MHD_Connection *conn, int on)
{
    track *t = conn_track(conn);
    if (!t) return;
    pthread_mutex_lock(&s->http->mu);
    t->replying = on;
    t->stalled = 0;
    t->acked = 0;
    if (on && s->cfg.server_write_timeout > 0) pthread_cond_signal(&s->http->cv);
    pthread_mutex_unlock(&s->http->mu);
}

/* Whether the connection's output has waited write_timeout seconds with
 * nothing acknowledged by the client, looking at its socket now: bytes in
 * the send queue (not sent or not acknowledged) and the count of bytes the
 * peer acknowledged.  A socket that cannot say (not TCP) is never stalled. */
static int write_stalled(track *t, double now, double limit)
{
    int queued = 0;
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    memset(&ti, 0, sizeof ti);
    if (ioctl(t->fd, SIOCOUTQ, &queued) != 0 || getsockopt(t->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
        len < offsetof(struct tcp_info, tcpi_bytes_acked) + sizeof ti.tcpi_bytes_acked)
        return 0;
    if (queued <= 0 || ti.tcpi_bytes_acked != t->acked || t->stalled <= 0) {
        /* nothing waiting, or the client took some since the last look */
        t->acked = ti.tcpi_bytes_acked;
        t->stalled = queued > 0 ? now : 0;
        return 0;
    }
    return now - t->stalled >= limit;
}

/* Whether the watchdog shut this connection down. */
static int conn_cut(srv *s, struct MHD_Connection *conn)
{
    track *t = conn_track(conn);
    if (!t) return 0;
    pthread_mutex_lock(&s->http->mu);
    int cut = t->cut;
    pthread_mutex_unlock(&s->http->mu);
    return cut;
}

/* Whether this connection is over max_connections now: accepted over
 * it, and still over it (a connection whose turn came is served). */
static int conn_over(srv *s, struct MHD_Connection *conn)
{
    track *t = conn_track(conn);
    if (!t) return 0;
    pthread_mutex_lock(&s->http->mu);
    if (t->over && s->http->open <= s->set.max_connections) t->over = 0;
    int over = t->over;
    pthread_mutex_unlock(&s->http->mu);
    return over;
}

/* Shut down the connections past their deadline: a 408 (best effort,
 * nothing else is being written to them: their request is not whole),
 * then shutdown(), which ends libmicrohttpd's wait on the socket; and
 * those whose reply stalled for write_timeout (no 408: a reply is under
 * way), reset rather than closed, so that the kernel drops what the client
 * will not take. */
static void *watchdog(void *arg)
{
    srv *s = arg;
    struct srv_http *h = s->http;
    static const char body[] = "{\"error\":\"the request did not arrive whole in time ([server] header_timeout)\"}";
    char msg[512];
    int n = snprintf(msg, sizeof msg,
                     "HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json; charset=utf-8\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s", sizeof body - 1, body);
    const double wt = s->cfg.server_write_timeout;
    const double look = wt > 0 && wt < 4 ? wt / 4 : 1.0;    /* how often replies are looked at */
    pthread_mutex_lock(&h->mu);
    while (!h->stop) {
        double now = srv_now(), next = now + 1.0;
        int n_cut = 0, n_stalled = 0;
        for (track *t = h->head; t; t = t->next) {
            if (t->cut) continue;
            if (wt > 0 && t->replying && t->fd >= 0) {
                if (write_stalled(t, now, wt)) {
                    static const struct linger reset = { 1, 0 };
                    t->cut = 1;
                    n_stalled++;
                    (void)setsockopt(t->fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
                    shutdown(t->fd, SHUT_RDWR);
                    continue;
                }
                if (now + look < next) next = now + look;
            }
            if (t->deadline <= 0) continue;
            if (t->deadline <= now) {
                t->cut = 1;
                t->deadline = 0;
                n_cut++;
                if (t->fd >= 0) {
                    (void)send(t->fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
                    shutdown(t->fd, SHUT_RDWR);
                }
            } else if (t->deadline < next) {
                next = t->deadline;
            }
        }
        if (n_cut || n_stalled) {
            pthread_mutex_unlock(&h->mu);
            for (int i = 0; i < n_cut; i++) srv_metrics_event(s->metrics, "request_timeout");
            for (int i = 0; i < n_stalled; i++) srv_metrics_event(s->metrics, "write_timeout");
            if (n_cut && !s->set.quiet)
                s->log(s, "closed %d connection%s whose request did not arrive whole in %d s "
                          "([server] header_timeout)", n_cut, n_cut == 1 ? "" : "s", s->cfg.server_header_timeout);
            if (n_stalled && !s->set.quiet)
                s->log(s, "closed %d connection%s that took none of the reply for %d s ([server] write_timeout)",
                       n_stalled, n_stalled == 1 ? "" : "s", s->cfg.server_write_timeout);
            pthread_mutex_lock(&h->mu);
            continue;
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        double wait = next - now + 0.01;
        long ns = ts.tv_nsec + (long)((wait - floor(wait)) * 1e9);
        ts.tv_sec += (time_t)floor(wait) + ns / 1000000000L;
        ts.tv_nsec = ns % 1000000000L;
        pthread_cond_timedwait(&h->cv, &h->mu, &ts);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

int srv_http_connections(srv *s)
{
    if (!s->http) return 0;
    pthread_mutex_lock(&s->http->mu);
    int n = s->http->open;
    pthread_mutex_unlock(&s->http->mu);
    return n;
}

/* The rate limit's key: the bearer token the client sent, else its address. */
static void rate_key(struct MHD_Connection *conn, char *key, size_t size)
{
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (auth && !strncasecmp(auth, "Bearer ", 7)) {
        const char *k = auth + 7;
        while (*k == ' ') k++;
        if (*k) { snprintf(key, size, "k %s", k); return; }
    }
    char addr[INET6_ADDRSTRLEN] = "?";
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, addr, sizeof addr);
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, addr, sizeof addr);
    snprintf(key, size, "a %s", addr);
}

static unsigned rl_hash(const char *k)
{
    uint32_t h = 2166136261u;
    for (; *k; k++) h = (h ^ (unsigned char)*k) * 16777619u;
    return h % RL_SLOTS;
}

/* Take one request from the key's bucket: 1, or 0 with the seconds until
 * the next one is allowed. */
static int rate_take(srv *s, const char *key, int *retry_after)
{
    struct srv_http *h = s->http;
    double rate = s->cfg.server_rate_limit / 60.0;            /* per second */
    double burst = s->cfg.server_rate_burst > 0 ? s->cfg.server_rate_burst : s->cfg.server_rate_limit;
    double now = srv_now();
    unsigned slot = rl_hash(key);
    pthread_mutex_lock(&h->mu);
    rl_entry *e;
    for (e = h->rl[slot]; e; e = e->next)
        if (!strcmp(e->key, key)) break;
    if (!e && h->n_rl >= RL_MAX) {
        /* forget the buckets that are full again: the same as new ones */
        for (int i = 0; i < RL_SLOTS; i++)
            for (rl_entry **p = &h->rl[i]; *p;) {
                rl_entry *x = *p;
                if (x->tokens + (now - x->t) * rate >= burst) { *p = x->next; free(x); h->n_rl--; }
                else p = &x->next;
            }
    }
    if (!e && h->n_rl < RL_MAX && (e = calloc(1, sizeof *e)) != NULL) {
        snprintf(e->key, sizeof e->key, "%s", key);
        e->tokens = burst;
        e->t = now;
        e->next = h->rl[slot];
        h->rl[slot] = e;
        h->n_rl++;
    }
    if (!e) {
        e = &h->rl_shared;
        if (e->t <= 0) { e->tokens = burst; e->t = now; }
    }
    e->tokens += (now - e->t) * rate;
    if (e->tokens > burst) e->tokens = burst;
    e->t = now;
    int ok = e->tokens >= 1.0;
    if (ok) e->tokens -= 1.0;
    else *retry_after = (int)ceil((1.0 - e->tokens) / rate);
    pthread_mutex_unlock(&h->mu);
    if (!ok && *retry_after < 1) *retry_after = 1;
    return ok;
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
    case 429: return "rate_limit_error";
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

static int reply_error(srv_call *c, int status, int close, const char *msg)
{
    snprintf(c->log, sizeof c->log, "%s", msg);
    json_t *j = error_json(c->flavor, status, msg);
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!text) return MHD_NO;
    struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!resp) { free(text); return MHD_NO; }
    MHD_add_response_header(resp, "Content-Type", "application/json; charset=utf-8");
    if (status == 503 || status == 429) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", c->retry_after > 0 ? c->retry_after : 1);
        MHD_add_response_header(resp, "Retry-After", ra);
    }
    if (status == 401) MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"lamina\"");
    if (close) MHD_add_response_header(resp, "Connection", "close");
    return queue(c, status, resp);
}

int srv_reply_error(srv_call *c, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return reply_error(c, status, 0, msg);
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
    set_deadline(c->s, c->conn, 0);     /* a reply is queued: the rest of the request is discarded */
    set_replying(c->s, c->conn, 1);
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
        if (conn_cut(s, conn)) return MHD_NO;
        /* no idle timeout while the request is worked on (see on_completed);
         * the request's deadline still holds until it is whole */
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

        if (conn_over(s, conn)) {       /* over max_connections: a whole 503, then the connection closes */
            srv_metrics_event(s->metrics, "connection_overflow");
            c.retry_after = 1;
            char msg[160];
            snprintf(msg, sizeof msg, "too many connections: %d are open ([server] max_connections); retry later",
                     s->set.max_connections);
            int rc = reply_error(&c, 503, 1, msg);
            call_done(&c, cs);
            return (enum MHD_Result)rc;
        }
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
            MHD_add_response_header(resp, "Allow", "GET, HEAD, POST, DELETE, OPTIONS");
            if (origin) {
                const char *hdrs = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Access-Control-Request-Headers");
                MHD_add_response_header(resp, "Access-Control-Allow-Methods", "GET, HEAD, POST, DELETE, OPTIONS");
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
        if (!cs->rt->open) {            /* counted first, then the drain flag read (srv_start_drain) */
            __atomic_add_fetch(&s->requests_active, 1, __ATOMIC_SEQ_CST);
            cs->counted = 1;
        }
        if (!cs->rt->open && __atomic_load_n(&s->draining, __ATOMIC_SEQ_CST)) {
            /* health answers on; everything else is turned away */
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
        if (s->cfg.server_rate_limit > 0 && !cs->rt->open && cs->rt->fn != srv_metrics_handler) {
            char key[RL_KEY];
            rate_key(conn, key, sizeof key);
            if (!rate_take(s, key, &c.retry_after)) {
                srv_metrics_event(s->metrics, "rate_limited");
                int rc = srv_reply_error(&c, 429, "rate limit of %d requests per minute reached "
                                                  "([server] rate_limit); retry in %d s",
                                         s->cfg.server_rate_limit, c.retry_after);
                call_done(&c, cs);
                return (enum MHD_Result)rc;
            }
        }
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl) {
            char *end;
            unsigned long long v = strtoull(cl, &end, 10);
            if (*end == 0 && v > s->set.max_body && cs->rt->body != SRV_BODY_STREAM) {
                int rc = srv_reply_error(&c, 413, "request body of %llu bytes is larger than the limit of %zu "
                                                  "([server] max_body_kib)", v, s->set.max_body);
                call_done(&c, cs);
                return (enum MHD_Result)rc;
            }
        }
        if (cs->rt->body == SRV_BODY_STREAM) {   /* the handler takes the body from here */
            int rc = cs->rt->fn(&c);
            if (!c.status && !c.up) rc = srv_reply_error(&c, 500, "the endpoint took no body");
            if (c.status) {
                call_done(&c, cs);
                return (enum MHD_Result)rc;
            }
            cs->up = c.up;
            cs->up_st = c.up_st;
        }
        return MHD_YES;
    }

    if (*upload_size > 0 && cs->up) {
        if (!cs->replied) {
            cs->up->data(cs->up_st, upload_data, *upload_size);
            /* a long body: header_timeout from the latest piece, not from
             * the start (the deadline moved at most once a second) */
            int hdr = s->cfg.server_header_timeout;
            double now = srv_now();
            if (now - cs->up_moved >= 1.0) {
                cs->up_moved = now;
                if (set_deadline(s, conn, hdr > 0 ? now + hdr : 0)) return MHD_NO;
            }
        }
        *upload_size = 0;
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
    /* the request is whole: no deadline while it is worked on and answered */
    if (set_deadline(s, conn, 0)) return MHD_NO;

    call_init(&c, s, conn, cs, method, url);
    int rc;
    if (cs->too_big) {
        rc = srv_reply_error(&c, 413, "request body is larger than the limit of %zu bytes ([server] max_body_kib)",
                             s->set.max_body);
    } else if (cs->up) {
        const srv_upload *up = cs->up;
        cs->up = NULL;
        rc = up->end(&c, cs->up_st);
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
    /* idle: idle_timeout until the next request starts, and that request
     * whole within header_timeout more (on_uri may bring it closer) */
    int idle = s->cfg.server_idle_timeout, hdr = s->cfg.server_header_timeout;
    set_replying(s, conn, 0);
    MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned)idle);
    set_deadline(s, conn, hdr > 0 && idle > 0 ? srv_now() + idle + hdr : 0);
    if (!cs) return;
    if (cs->counted) __atomic_sub_fetch(&s->requests_active, 1, __ATOMIC_SEQ_CST);
    if (cs->up) cs->up->abort(cs->up_st);   /* a streamed body that never came whole */
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

void srv_start_drain(srv *s)
{
    __atomic_store_n(&s->draining, 1, __ATOMIC_SEQ_CST);
}

int srv_in_flight(srv *s)
{
    /* a request that read draining as 0 had already counted itself; a
     * model may stay in use a moment after its client went away */
    int r = __atomic_load_n(&s->requests_active, __ATOMIC_SEQ_CST), m = srv_pool_busy(s);
    return r > m ? r : m;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    srv *s = cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n') msg[--n] = 0;
    /* the one sign libmicrohttpd gives of a connection it closed at once,
     * over max_connections plus the margin (OVERFLOW_MARGIN) */
    if (!strncmp(msg, "Server reached connection limit", 31)) srv_metrics_event(s->metrics, "connection_cap");
    if (s->verbose) s->log(s, "http: %s", msg);
}

static void http_free(srv *s)
{
    struct srv_http *h = s->http;
    if (!h) return;
    if (h->started) {
        pthread_mutex_lock(&h->mu);
        h->stop = 1;
        pthread_cond_signal(&h->cv);
        pthread_mutex_unlock(&h->mu);
        pthread_join(h->watchdog, NULL);
    }
    for (int i = 0; i < RL_SLOTS; i++)
        while (h->rl[i]) {
            rl_entry *e = h->rl[i];
            h->rl[i] = e->next;
            free(e);
        }
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    free(h);
    s->http = NULL;
}

int srv_http_start(srv *s, int listen_fd, char *err, size_t err_size)
{
    struct srv_http *h = calloc(1, sizeof *h);
    if (!h) { snprintf(err, err_size, "out of memory"); return LAMINA_ENOMEM; }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&h->mu, NULL);
    s->http = h;
    int e = pthread_create(&h->watchdog, NULL, watchdog, s);
    if (e != 0) {
        snprintf(err, err_size, "cannot start a thread: %s", strerror(e));
        http_free(s);
        return LAMINA_EIO;
    }
    h->started = 1;
    unsigned max = (unsigned)s->set.max_connections;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG;
    s->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
                              MHD_OPTION_LISTEN_SOCKET, (MHD_socket)listen_fd,
                              MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                              MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
                              MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
                              MHD_OPTION_CONNECTION_LIMIT, max + OVERFLOW_MARGIN(max),
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)s->cfg.server_idle_timeout,
                              MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024,
                              MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
                              MHD_OPTION_END);
    if (!s->mhd) {
        http_free(s);
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
    http_free(s);
}
