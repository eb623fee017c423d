/*
 * lamina/lamina.h - the public API of liblamina.
 *
 * Handles are opaque.  Every function that can fail returns 0 or a negative
 * LAMINA_E* code (lamina/plugin.h) and writes a one-line message into
 * (err, err_size).  Nothing here prints or exits; the CLI does that.
 */
#ifndef LAMINA_H
#define LAMINA_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LAMINA_VERSION_STRING "0.1.0"

/* ======================================================================== */
/* Configuration (runtime/host/config.c)                                        */

#define LAMINA_MAX_BACKENDS 16
#define LAMINA_MAX_PATHS    16
#define LAMINA_MAX_LIST     16
#define LAMINA_MAX_ENV      16

/* Per-backend section [backend.NAME]. */
typedef struct lamina_backend_config {
    char     name[32];
    int      enabled;                 /* default 1 */
    int      threads;                 /* 0 = plugin/core-count default */
    char     device[128];             /* "" = all; index "0" or name substring */
    char     min_version[64];         /* applies to driver_version/runtime version */
    char     max_version[64];
    char     deny_versions[LAMINA_MAX_LIST][64];
    int      n_deny_versions;
    char     allow_arch[LAMINA_MAX_LIST][64];
    int      n_allow_arch;
    char     env[LAMINA_MAX_ENV][256]; /* "NAME=VALUE", passed to probe and backend */
    int      n_env;
} lamina_backend_config;

typedef struct lamina_config {
    char     source[4096];            /* file it was read from, "" = defaults */
    /* [plugins] */
    char     plugin_path[LAMINA_MAX_PATHS][4096];
    int      n_plugin_path;
    int      probe_timeout_ms;        /* default 60000 */
    int      cache;                   /* default 1 */
    char     cache_dir[4096];         /* "" = $XDG_CACHE_HOME/lamina */
    /* [scheduler] */
    char     backends[LAMINA_MAX_BACKENDS][32]; /* preference order; "auto" */
    int      n_backends;
    int      backends_auto;
    int      gpu_layers;              /* -1 = auto, -2 = all, N >= 0 */
    int64_t  reserve_mib;             /* device memory left free, default 256 */
    /* [model] */
    char     model_default[256];      /* catalogue name or path */
    char     model_dirs[LAMINA_MAX_PATHS][4096];
    int      n_model_dirs;
    int      n_ctx;                   /* 0 = model's, capped at 4096 */
    int      threads;                 /* 0 = number of cores */
    /* [generate] */
    float    temperature;             /* default 0.8 */
    int      top_k;                   /* default 40 */
    float    top_p;                   /* default 0.95 */
    float    min_p;                   /* default 0.05 */
    float    repeat_penalty;          /* default 1.1 */
    int      repeat_last_n;           /* default 64 */
    int64_t  seed;                    /* -1 = random */
    int      max_tokens;              /* default 256; -1 = until context full */
    /* backends */
    lamina_backend_config backend[LAMINA_MAX_BACKENDS];
    int      n_backend;
    /* Added by the core (after the fields above): where things came from. */
    int      n_plugin_path_env;       /* leading plugin_path entries taken
                                         from $LAMINA_PLUGIN_PATH */
    int      backends_from_env;       /* 1 when $LAMINA_BACKENDS set backends */
    /* [server] (`lamina serve`; after the fields above) */
    char     server_listen[256];      /* HOST:PORT, default 127.0.0.1:11434 */
    int      server_parallel;         /* sequences per loaded model, default 4 */
    int      server_queue;            /* requests waiting per model, default 16 */
    int      server_n_ctx;            /* positions per sequence; 0 = [model] n_ctx,
                                         else 2048 (at most the model's) */
    int      server_prompt_chunk;     /* prompt tokens read per step, default 128 */
    int      server_request_timeout;  /* seconds per request, 0 = none, default 600 */
    int      server_keep_alive;       /* seconds a model stays loaded idle; -1 = forever; default 300 */
    int64_t  server_memory_mib;       /* budget for loaded models; 0 = 3/4 of RAM */
    int      server_max_models;       /* loaded at once, default 3 */
    char     server_api_key[256];     /* "" = none */
    char     server_api_key_file[4096]; /* file whose first line is the key */
    int      server_allow_unauthenticated; /* 1: a non-loopback address without a key */
    char     server_cors_origins[2048];    /* comma-separated origins, "*" any, "" none */
    int      server_max_body_kib;     /* default 1024 */
    int      server_max_json_depth;   /* default 32 */
    int      server_max_connections;  /* default 64 */
    /* [model] ollama_stores (after the fields above): Ollama model stores
     * read in place besides $OLLAMA_MODELS and ~/.ollama/models */
    char     ollama_stores[LAMINA_MAX_PATHS][4096];
    int      n_ollama_stores;
    /* [server] allowed_hosts (after the fields above): Host header names
     * accepted besides the loopback ones while listening on loopback;
     * comma-separated, "*" any */
    char     server_allowed_hosts[2048];
    int      server_drain_timeout;    /* seconds SIGTERM lets requests in flight
                                         finish, default 30; 0: cancel them at once */
    /* [server] connection hardening (after the fields above) */
    int      server_idle_timeout;     /* seconds a connection may be idle between
                                         requests, default 120; 0: none */
    int      server_header_timeout;   /* seconds from the start of a request to its
                                         last byte (line, headers, body), default 30;
                                         0: none */
    int      server_rate_limit;       /* requests per minute per key or address; 0: off */
    int      server_rate_burst;       /* requests at once; 0: rate_limit */
    /* [model] store and registry (after the fields above): where `lamina
     * pull` writes (Ollama's layout; "" = $XDG_DATA_HOME/lamina/store), and
     * the registry it pulls from (default https://registry.ollama.ai) */
    char     model_store[4096];
    char     model_registry[512];
    /* [server] write_timeout (after the fields above): seconds a reply may
     * wait for the client to take any of it, default 60; 0: none */
    int      server_write_timeout;
    /* [generate] speculative decoding from the sequence's own tokens
     * (after the fields above) */
    int      speculative;             /* 1 = auto (adaptive, default), 0 = off */
    int      speculative_draft;       /* most drafts per step, default 8 */
    int      speculative_ngram;       /* longest n-gram looked up, default 3 */
} lamina_config;

/* Fill `cfg` with built-in defaults. */
void lamina_config_defaults(lamina_config *cfg);

/* Parse an INI file over the current contents of `cfg`.  Unknown sections
 * or keys and malformed values fail with LAMINA_EINVAL and a message
 * "FILE:LINE: [SECTION] KEY: expected ..., got 'VALUE'".  Returns
 * LAMINA_ENOENT when the file does not exist.  Every key, its default and
 * its meaning: lamina.ini(5).  The [plugins] path list, when given,
 * replaces the built-in plugin directory. */
int lamina_config_load(lamina_config *cfg, const char *path, char *err, size_t err_size);

/* Defaults, then the first of: `path` if not NULL, $LAMINA_CONFIG,
 * the install default SYSCONFDIR/lamina/lamina.ini (missing is fine, an
 * explicit or $LAMINA_CONFIG file that is missing is an error);
 * then environment overrides, which are ignored in a privileged process
 * (secure_getenv): $LAMINA_BACKENDS replaces [scheduler] backends, and the
 * directories of $LAMINA_PLUGIN_PATH (colon-separated) are put in front of
 * plugin_path, so they are searched first. */
int lamina_config_resolve(lamina_config *cfg, const char *path, char *err, size_t err_size);

/* The [backend.NAME] section, or a defaults-only entry when absent. */
const lamina_backend_config *lamina_config_backend(const lamina_config *cfg, const char *name);

/* ======================================================================== */
/* Runtime: discovery, isolated probe, rules, self-test, selection          */
/* (runtime/host/registry.c)                                                    */

typedef struct lamina_runtime lamina_runtime;

enum lamina_status {
    LAMINA_STATUS_ACCEPTED = 0,
    LAMINA_STATUS_REJECTED = 1,   /* refused: see reason */
    LAMINA_STATUS_DISABLED = 2    /* enabled = false or not in the order */
};

typedef struct lamina_component_report {
    char name[64];
    char found[64];      /* "" when not found */
    char built[64];
    uint32_t rule;
    char path[1024];
} lamina_component_report;

/* One self-test case as run in the probe helper (plugin-check only). */
typedef struct lamina_case_report {
    uint32_t op;               /* lamina_op */
    uint32_t type;             /* lamina_dtype of the case's principal operand */
    char     name[128];        /* "mul_mat q4_K K=512 N=33 M=7" */
    int      status;           /* 0 pass, 1 fail (wrong numbers),
                                  2 unsupported (declined), 3 backend error */
    double   max_err;          /* worst error in the case's metric */
    double   tol;              /* tolerance it was held to */
    double   ms;
    char     msg[256];         /* on fail/error: what went wrong */
} lamina_case_report;

typedef struct lamina_device_report {
    lamina_device_info info;   /* strings point into this report */
    int      status;           /* lamina_status */
    char     reason[512];      /* one line when rejected */
    int      selftest_run;     /* 1 when the self-test ran */
    int      selftest_passed;
    int      selftest_cases;   /* cases run */
    int      selftest_unsupported; /* cases the plugin declined */
    double   selftest_ms;
    double   score;            /* measured matmul GFLOP/s */
    char     label[160];       /* "vulkan:0 llvmpipe (LLVM 15.0.6, 256 bits)" */
    char     strings[12][256]; /* backing store for info's strings */
    /* Added by the core (after the fields above): */
    char     selftest_msg[512];/* the self-test's own verdict line ("" = ok) */
    lamina_case_report *cases; /* every case (only when cases were asked
                                  for: lamina_runtime_options.want_cases);
                                  owned by the report */
    int      n_cases;
} lamina_device_report;

typedef struct lamina_plugin_report {
    char     path[4096];
    char     name[64];         /* from the descriptor; file stem if none */
    char     version[64];
    char     description[256];
    uint32_t abi_major, abi_minor;
    int      status;           /* lamina_status of the plugin as a whole */
    char     reason[512];      /* one line: plugin, device, values, rule */
    lamina_component_report components[16];
    int      n_components;
    char     code_targets[32][32];
    int      n_code_targets;
    char     notes[8][256];
    int      n_notes;
    lamina_device_report *devices;
    int      n_devices;
    double   probe_ms;
    int      from_cache;
    /* Added by the core (after the fields above): */
    char     failure[16];      /* "" or what went wrong in isolation: "refused"
                                  (file checks), "spawn", "crash", "hang",
                                  "exit", "malformed", "dlopen", "no-entry",
                                  "entry", "abi", "probe", "shadowed" */
    char     stderr_tail[1024];/* last lines the helper wrote to stderr */
    char     real_path[4096];  /* the file actually loaded (symlink resolved) */
    uint32_t desc_size;        /* descriptor struct_size */
    int      selftest_skipped; /* probed without self-test (no_selftest) */
    uint32_t flags;            /* descriptor flags, LAMINA_PLUGIN_F_* */
} lamina_plugin_report;

typedef struct lamina_runtime_options {
    uint32_t struct_size;
    const char *config_path;   /* NULL: lamina_config_resolve defaults */
    int reprobe;               /* ignore the probe cache */
    int no_selftest;           /* probe only (plugin-check uses 0) */
    const char *only_plugin;   /* probe just this .so (plugin-check) */
    void (*log)(void *ctx, int level, const char *msg);  /* warnings; may be NULL */
    void *log_ctx;
    /* Added by the core; read only when struct_size covers them: */
    int want_cases;            /* keep every self-test case (plugin-check) */
} lamina_runtime_options;

/* Discover, validate and (cached) probe + self-test every candidate.  No
 * plugin is loaded into this process here.  *out owned by the caller,
 * released with lamina_runtime_close(). */
int  lamina_runtime_open(const lamina_runtime_options *opts, lamina_runtime **out,
                         char *err, size_t err_size);
void lamina_runtime_close(lamina_runtime *rt);

const lamina_config *lamina_runtime_config(const lamina_runtime *rt);

/* Every candidate, accepted or not, in discovery order. */
int  lamina_runtime_plugin_count(const lamina_runtime *rt);
const lamina_plugin_report *lamina_runtime_plugin(const lamina_runtime *rt, int i);

/* Eligible devices (accepted plugin, accepted device, self-test passed),
 * in preference order. */
typedef struct lamina_device_slot {
    const lamina_plugin_report *plugin;
    const lamina_device_report *device;
    const lamina_backend_config *config;
} lamina_device_slot;
int  lamina_runtime_device_count(const lamina_runtime *rt);
const lamina_device_slot *lamina_runtime_device(const lamina_runtime *rt, int i);

/* An open backend instance in this process. */
typedef struct lamina_be {
    const lamina_backend_iface *iface;
    lamina_backend *inst;
    const lamina_device_slot *slot;
    char label[160];
    void *dl;                   /* dlopen handle (owned by the runtime) */
} lamina_be;

/* dlopen the slot's plugin into this process (only ever after it passed
 * in isolation), re-check its descriptor, apply its env, and open an
 * instance.  *out owned by the caller, released with lamina_be_close(). */
int  lamina_runtime_open_backend(lamina_runtime *rt, int slot, lamina_be **out,
                                 char *err, size_t err_size);
void lamina_be_close(lamina_be *be);

/* Write the reports as JSON (`lamina backends --json`) or text. */
int  lamina_runtime_write_json(const lamina_runtime *rt, FILE *fp);

#ifdef __cplusplus
}
#endif
#endif /* LAMINA_H */
