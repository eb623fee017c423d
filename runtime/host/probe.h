/*
 * probe.h - run one plugin in isolation: the parent side of lamina-probe.
 *
 * No plugin is loaded into the lamina process before it passed here.  The
 * helper binary (LAMINA_HELPER_PATH, or $LAMINA_PROBE_HELPER when not
 * privileged) is spawned once per plugin, in a process group of its own:
 *
 *   lamina-probe [--no-selftest] [--cases] [--threads N] PLUGIN.so
 *
 * It dlopens that one file, resolves lamina_plugin_entry, checks the
 * descriptor, calls probe, then for every device that passes the plugin's
 * own rules opens a backend instance and runs the core's self-test
 * (lamina_selftest_run) and the plugin's selftest hook.
 *
 * Protocol: the report travels on file descriptor 3 (LAMINA_PROBE_FD), a
 * pipe the parent created; the helper's stdout and stderr go to a second
 * pipe whose tail the parent keeps.  The report is a sequence of lines,
 * each one JSON object with exactly one key (stage lines may add "device"),
 * written as events happen (so that what was learnt before a crash is not
 * lost):
 *   {"hello":{"helper":"0.1.0","abi":[1,0,0]}}       first line
 *   {"stage":"load"|"entry"|"probe"|"selftest","device":N}
 *   {"plugin":{name,version,description,abi_major,abi_minor,desc_size,
 *              built_against:[{name,version}],code_targets:[...]}}
 *   {"component":{name,found,built,rule,path}}       per sink call
 *   {"file":"/path"}                                 per sink call
 *   {"device":{...}}                                 per sink call (report.h)
 *   {"note":"text"}
 *   {"probe_done":{"ms":N}}
 *   {"selftest":{"device":N,"run":b,"passed":b,"cases":N,"unsupported":N,
 *                "ms":N,"score_gflops":N,"message":"...","case_list":[...]}}
 *   {"error":{"kind":"dlopen"|"no-entry"|"entry"|"abi"|"probe","message":"..."}}
 *   {"done":{}}                                      last line
 * A report without "done" is an early exit; any line that is not such an
 * object is a malformed report.  The parent enforces [plugins]
 * probe_timeout_ms over the whole run and kills the process group when it
 * expires.  Internal to liblamina.
 */
#ifndef LAMINA_PROBE_H
#define LAMINA_PROBE_H

#include <stddef.h>

#include "lamina/lamina.h"

#define LAMINA_PROBE_FD 3

typedef struct lamina_probe_request {
    const char *plugin_path;    /* the candidate file */
    const char *helper_path;    /* lamina-probe */
    int timeout_ms;
    int no_selftest;
    int want_cases;
    int threads;                /* for the self-test instance; 0 = plugin's choice */
    const lamina_backend_config *bc; /* env entries for the helper; may be NULL */
} lamina_probe_request;

/* Files the plugin reported (component paths, file()), in order, for the
 * probe cache key.  Owned by the caller: lamina_probe_files_free(). */
typedef struct lamina_probe_files {
    char **path;
    int n;
} lamina_probe_files;

void lamina_probe_files_free(lamina_probe_files *f);

/* Run the helper on one plugin and fill `out` (zeroed by the caller) with
 * what it reported; an isolation failure sets out->failure, out->status =
 * REJECTED and out->reason.  *cacheable is 1 when the verdict depends only
 * on the plugin file, the reported files and the environment (0 for e.g.
 * an unresolvable library: installing it must not need --reprobe).
 * Returns 0 when the helper ran (whatever its verdict), negative when it
 * could not be started (out->failure = "spawn"). */
int lamina_probe_run(const lamina_probe_request *rq, lamina_plugin_report *out,
                     lamina_probe_files *files, int *cacheable, char *err, size_t err_size);

/* "SIGSEGV" for SIGSEGV, "signal 42" for others.  `buf` holds the latter. */
const char *lamina_signal_name(int sig, char *buf, size_t size);

#endif
