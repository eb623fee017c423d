#include "conf.h"
/* test_config.c - lamina.ini parsing, errors with file:line:key, and the
 * resolution order of lamina_config_resolve. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "tap.h"

static int parse(lamina_config *cfg, const char *text, char *err, size_t n)
{
    lamina_config_defaults(cfg);
    err[0] = '\0';
    return lamina_config_load_string(cfg, text, "lamina.ini", err, n);
}

static void expect_error(const char *text, const char *msg, const char *what)
{
    lamina_config *cfg = malloc(sizeof(*cfg));
    char err[1024];
    int rc = parse(cfg, text, err, sizeof(err));
    OK(rc == LAMINA_EINVAL, "%s: rejected (rc %d)", what, rc);
    OK_HAS(err, msg, "%s: message", what);
    free(cfg);
}

static char *write_tmp(const char *text)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/lamina-test-config-XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0)
        return NULL;
    if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
        close(fd);
        return NULL;
    }
    close(fd);
    return path;
}

int main(void)
{
    lamina_config *cfg = malloc(sizeof(*cfg));
    char err[1024];

    /* Defaults. */
    lamina_config_defaults(cfg);
    OK(cfg->probe_timeout_ms == 60000 && cfg->cache == 1 && cfg->backends_auto == 1 &&
       cfg->gpu_layers == -1 && cfg->reserve_mib == 256 && cfg->top_k == 40 &&
       cfg->seed == -1 && cfg->max_tokens == 256 && cfg->n_plugin_path == 1 &&
       cfg->plugin_path[0][0] == '/', "defaults");
    OK(cfg->temperature > 0.79f && cfg->temperature < 0.81f && cfg->repeat_last_n == 64,
       "generate defaults");
    const lamina_backend_config *bc = lamina_config_backend(cfg, "nosuch");
    OK(bc != NULL && bc->enabled == 1 && bc->n_env == 0, "absent backend section gives defaults");

    /* A full, valid file. */
    const char *full =
        "; comment\n"
        "# another\n"
        "[plugins]\n"
        "path = /opt/a, /opt/b\n"
        "probe_timeout_ms = 1500\n"
        "cache = no\n"
        "cache_dir = /var/tmp/lc\n"
        "[scheduler]\n"
        "backends = rocm, vulkan, cpu\n"
        "gpu_layers = all\n"
        "reserve_mib = 512\n"
        "[model]\n"
        "default = gemma-3-270m\n"
        "dirs = /models\n"
        "n_ctx = 2048\n"
        "threads = 4\n"
        "[generate]\n"
        "temperature = 0.5\n"
        "top_k = 10\n"
        "top_p = 0.9\n"
        "min_p = 0\n"
        "repeat_penalty = 1.0\n"
        "repeat_last_n = 32\n"
        "seed = 1234\n"
        "max_tokens = -1\n"
        "[backend.rocm]\n"
        "enabled = false\n"
        "threads = 2\n"
        "device = 1\n"
        "min_version = 6.0\n"
        "max_version = 7.2.0\n"
        "deny_versions = 6.3.1, 6.3.2\n"
        "allow_arch = gfx906, gfx1030\n"
        "env = HSA_OVERRIDE_GFX_VERSION=9.0.6, A=1\n"
        "env.A = 2\n"
        "env.B = x y\n"
        "[backend.cpu]\n"
        "enabled = 1\n";
    int rc = parse(cfg, full, err, sizeof(err));
    OK(rc == 0, "full file parses (%s)", err);
    OK(cfg->n_plugin_path == 2 && strcmp(cfg->plugin_path[1], "/opt/b") == 0,
       "path list replaces the default");
    OK(cfg->probe_timeout_ms == 1500 && cfg->cache == 0 && strcmp(cfg->cache_dir, "/var/tmp/lc") == 0,
       "[plugins] values");
    OK(!cfg->backends_auto && cfg->n_backends == 3 && strcmp(cfg->backends[2], "cpu") == 0,
       "backends list");
    OK(cfg->gpu_layers == -2 && cfg->reserve_mib == 512, "gpu_layers all, reserve_mib");
    OK(strcmp(cfg->model_default, "gemma-3-270m") == 0 && cfg->n_model_dirs == 1 &&
       cfg->n_ctx == 2048 && cfg->threads == 4, "[model] values");
    OK(cfg->top_k == 10 && cfg->seed == 1234 && cfg->max_tokens == -1 && cfg->min_p == 0.0f &&
       cfg->repeat_last_n == 32, "[generate] values");
    bc = lamina_config_backend(cfg, "rocm");
    OK(bc->enabled == 0 && bc->threads == 2 && strcmp(bc->device, "1") == 0 &&
       strcmp(bc->min_version, "6.0") == 0 && strcmp(bc->max_version, "7.2.0") == 0,
       "[backend.rocm] scalars");
    OK(bc->n_deny_versions == 2 && strcmp(bc->deny_versions[1], "6.3.2") == 0 &&
       bc->n_allow_arch == 2 && strcmp(bc->allow_arch[0], "gfx906") == 0, "[backend.rocm] lists");
    OK(bc->n_env == 3 && strcmp(bc->env[0], "HSA_OVERRIDE_GFX_VERSION=9.0.6") == 0 &&
       strcmp(bc->env[1], "A=2") == 0 && strcmp(bc->env[2], "B=x y") == 0,
       "env list and env.NAME merge by name");
    OK(lamina_config_backend(cfg, "cpu")->enabled == 1, "second backend section");

    rc = parse(cfg, "[scheduler]\nbackends = auto\n", err, sizeof(err));
    OK(rc == 0 && cfg->backends_auto, "backends = auto");
    rc = parse(cfg, "[scheduler]\ngpu_layers = 12\n", err, sizeof(err));
    OK(rc == 0 && cfg->gpu_layers == 12, "gpu_layers = 12");
    rc = parse(cfg, "[plugins]\npath =\n", err, sizeof(err));
    OK(rc == 0 && cfg->n_plugin_path == 0, "empty path list");
    rc = parse(cfg, "[plugins]\ncache = YES\n", err, sizeof(err));
    OK(rc == 0 && cfg->cache == 1, "bool is case-insensitive");

    /* Errors name file, line and key. */
    expect_error("[scheduler]\n\ngpu_layers = lots\n",
                 "lamina.ini:3: [scheduler] gpu_layers: expected auto, all or a number >= 0, got 'lots'",
                 "bad gpu_layers");
    expect_error("[plugins]\ncache = maybe\n",
                 "lamina.ini:2: [plugins] cache: expected true, false, yes, no, 1 or 0, got 'maybe'",
                 "bad bool");
    expect_error("[plugins]\nprobe_timeout_ms = 12x\n",
                 "lamina.ini:2: [plugins] probe_timeout_ms: expected a whole number from 100 to",
                 "bad int");
    expect_error("[plugins]\nprobe_timeout_ms = 5\n", "got '5'", "int out of range");
    expect_error("[generate]\ntop_p = 1.5\n",
                 "lamina.ini:2: [generate] top_p: expected a number from 0 to 1, got '1.5'",
                 "float out of range");
    expect_error("[scheduler]\nfoo = 1\n", "lamina.ini:2: [scheduler] unknown key 'foo'",
                 "unknown key");
    expect_error("[plugins]\ncache = 1\n[nosuch]\n", "lamina.ini:3: unknown section [nosuch]",
                 "unknown empty section");
    expect_error("[nosuch]\nx = 1\n", "lamina.ini:1: unknown section [nosuch]",
                 "unknown section with keys");
    expect_error("[scheduler]\nbackends = cpu,,vulkan\n",
                 "lamina.ini:2: [scheduler] backends: expected a comma-separated list without empty items",
                 "bad list");
    expect_error("[scheduler]\nbackends = auto, cpu\n", "expected auto alone", "auto in a list");
    expect_error("[plugins]\npath = /ok, relative/dir\n",
                 "lamina.ini:2: [plugins] path: expected absolute directories", "relative dir");
    expect_error("[backend.rocm]\nmin_version = six\n",
                 "lamina.ini:2: [backend.rocm] min_version: expected a dotted numeric version",
                 "bad version");
    expect_error("[backend.rocm]\nenv = NOEQUALS\n", "[backend.rocm] env: expected NAME=VALUE",
                 "bad env item");
    expect_error("[backend.rocm]\nenv.1BAD = x\n", "[backend.rocm] env.1BAD:", "bad env name");
    expect_error("[backend.Bad Name]\nenabled = 1\n", "unknown section [backend.Bad Name]",
                 "bad backend name");
    expect_error("[plugins]\nthis line has no equals\n", "lamina.ini:2: syntax error",
                 "syntax error");

    /* A bad value changes nothing. */
    lamina_config_defaults(cfg);
    lamina_config_load_string(cfg, "[backend.x]\ndeny_versions = 1.0, bad\n", "t", err, sizeof(err));
    OK(lamina_config_backend(cfg, "x")->n_deny_versions == 0, "failed list leaves value unchanged");

    /* Files. */
    lamina_config_defaults(cfg);
    rc = lamina_config_load(cfg, "/nonexistent/lamina.ini", err, sizeof(err));
    OK(rc == LAMINA_ENOENT, "missing file is ENOENT");
    char *p = write_tmp("[scheduler]\nbackends = cpu\n[plugins]\npath = /opt/p\n");
    OK(p != NULL, "temp file");
    char path[64];
    snprintf(path, sizeof(path), "%s", p ? p : "");

    unsetenv("LAMINA_CONFIG");
    unsetenv("LAMINA_BACKENDS");
    unsetenv("LAMINA_PLUGIN_PATH");
    rc = lamina_config_resolve(cfg, path, err, sizeof(err));
    OK(rc == 0 && strcmp(cfg->source, path) == 0 && cfg->n_backends == 1, "resolve explicit path");
    rc = lamina_config_resolve(cfg, "/nonexistent/x.ini", err, sizeof(err));
    OK(rc == LAMINA_ENOENT, "resolve: explicit missing file is an error");
    setenv("LAMINA_CONFIG", "/nonexistent/y.ini", 1);
    rc = lamina_config_resolve(cfg, NULL, err, sizeof(err));
    OK(rc == LAMINA_ENOENT, "resolve: $LAMINA_CONFIG missing is an error");
    OK_HAS(err, "LAMINA_CONFIG", "message names $LAMINA_CONFIG");
    setenv("LAMINA_CONFIG", path, 1);
    rc = lamina_config_resolve(cfg, NULL, err, sizeof(err));
    OK(rc == 0 && strcmp(cfg->source, path) == 0, "resolve: $LAMINA_CONFIG");
    unsetenv("LAMINA_CONFIG");

    setenv("LAMINA_BACKENDS", "vulkan,cpu", 1);
    setenv("LAMINA_PLUGIN_PATH", "/e1::/e2", 1);
    rc = lamina_config_resolve(cfg, path, err, sizeof(err));
    OK(rc == 0 && cfg->n_backends == 2 && strcmp(cfg->backends[0], "vulkan") == 0 &&
       cfg->backends_from_env, "$LAMINA_BACKENDS overrides the file");
    OK(cfg->n_plugin_path == 3 && strcmp(cfg->plugin_path[0], "/e1") == 0 &&
       strcmp(cfg->plugin_path[1], "/e2") == 0 && strcmp(cfg->plugin_path[2], "/opt/p") == 0 &&
       cfg->n_plugin_path_env == 2, "$LAMINA_PLUGIN_PATH goes first");
    setenv("LAMINA_BACKENDS", "a,,b", 1);
    rc = lamina_config_resolve(cfg, path, err, sizeof(err));
    OK(rc == LAMINA_EINVAL, "bad $LAMINA_BACKENDS is an error");
    OK_HAS(err, "$LAMINA_BACKENDS", "message names $LAMINA_BACKENDS");
    unsetenv("LAMINA_BACKENDS");
    unsetenv("LAMINA_PLUGIN_PATH");
    unlink(path);

    /* The shipped conf/lamina.ini parses as is, and with every key
     * uncommented (each documented key is one the parser knows, with a
     * valid default). */
    const char *srcdir = getenv("top_srcdir");
    char conf[4096];
    snprintf(conf, sizeof(conf), "%s/conf/lamina.ini", srcdir ? srcdir : "..");
    lamina_config_defaults(cfg);
    err[0] = '\0';
    rc = lamina_config_load(cfg, conf, err, sizeof(err));
    OK(rc == 0, "shipped lamina.ini parses (%s)", err);
    FILE *fp = fopen(conf, "r");
    char *all = calloc(1, 1 << 16);
    int keys = 0;
    if (fp != NULL && all != NULL) {
        char line[1024];
        size_t o = 0;
        while (fgets(line, sizeof(line), fp) != NULL && o + sizeof(line) < (1 << 16)) {
            const char *l = line;
            if (line[0] == ';' && line[1] >= 'a' && line[1] <= 'z') {
                l = line + 1;
                keys++;
            }
            o += (size_t)snprintf(all + o, (1 << 16) - o, "%s", l);
        }
        fclose(fp);
        lamina_config_defaults(cfg);
        err[0] = '\0';
        rc = lamina_config_load_string(cfg, all, "lamina.ini(uncommented)", err, sizeof(err));
        OK(rc == 0 && keys >= 25, "shipped lamina.ini with all %d keys uncommented parses (%s)",
           keys, err);
        lamina_config *d = malloc(sizeof(*d));
        lamina_config_defaults(d);
        OK(cfg->probe_timeout_ms == d->probe_timeout_ms && cfg->cache == d->cache &&
           cfg->backends_auto == d->backends_auto && cfg->gpu_layers == d->gpu_layers &&
           cfg->reserve_mib == d->reserve_mib && cfg->top_k == d->top_k &&
           cfg->temperature == d->temperature && cfg->top_p == d->top_p &&
           cfg->min_p == d->min_p && cfg->repeat_penalty == d->repeat_penalty &&
           cfg->repeat_last_n == d->repeat_last_n && cfg->seed == d->seed &&
           cfg->max_tokens == d->max_tokens && cfg->n_ctx == d->n_ctx &&
           cfg->threads == d->threads, "documented defaults are the built-in ones");
        free(d);
    } else {
        OK(0, "read %s", conf);
    }
    free(all);

    free(cfg);
    return tap_done();
}
