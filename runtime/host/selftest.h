/*
 * selftest.h - known-answer tests of a backend against the reference.
 *
 * For every op and every type the op accepts, on fixed seeded inputs with
 * odd sizes as well as aligned ones, run the case on the backend under test
 * and on the reference backend (ref.h), and compare with the per-type
 * tolerance documented in selftest.c.  Cases the backend declines through
 * supports_op are counted as unsupported, never as passed.
 * Internal to liblamina.
 */
#ifndef LAMINA_SELFTEST_H
#define LAMINA_SELFTEST_H

#include "lamina/plugin.h"

enum lamina_selftest_status {
    LAMINA_SELFTEST_PASS = 0,
    LAMINA_SELFTEST_FAIL = 1,         /* wrong numbers */
    LAMINA_SELFTEST_UNSUPPORTED = 2,  /* declined by supports_op */
    LAMINA_SELFTEST_ERROR = 3         /* the backend returned an error */
};

typedef struct lamina_selftest_result {
    uint32_t op;            /* lamina_op */
    uint32_t type;          /* the case's principal type (weights / cache) */
    char     name[128];     /* "mul_mat q4_K K=512 N=33 M=7" */
    int      status;        /* lamina_selftest_status */
    double   max_err;       /* worst error, in the case's metric */
    double   tol;           /* the tolerance it was held to */
    double   ms;            /* backend time for the case */
    char     msg[256];      /* on FAIL/ERROR: what went wrong */
} lamina_selftest_result;

/* Called once per case, in order.  `r` is valid during the call only. */
typedef void (*lamina_selftest_cb)(void *ctx, const lamina_selftest_result *r);

typedef struct lamina_selftest_summary {
    int    cases, passed, failed, unsupported, errors;
    double score_gflops;    /* measured MUL_MAT throughput, for "auto" order */
    double total_ms;
} lamina_selftest_summary;

/* Run every case on an open backend instance.  Returns 0 when no case
 * failed or errored (unsupported cases are allowed), LAMINA_EREJECTED
 * with err = "op mul_mat type q4_K: max error 3.1e-01 > tolerance 2.0e-02
 * (case ...)" for the first failure, or another negative code when the
 * harness itself could not run.  `cb` may be NULL. */
int lamina_selftest_run(const lamina_backend_iface *iface, lamina_backend *be,
                        lamina_selftest_cb cb, void *cb_ctx,
                        lamina_selftest_summary *summary,
                        char *err, size_t err_size);
/* The same for a plugin built for ABI 1.abi_minor: no case of an op newer
 * than that (lamina_selftest_run: the host's minor). */
int lamina_selftest_run_minor(const lamina_backend_iface *iface, lamina_backend *be, uint32_t abi_minor,
                              lamina_selftest_cb cb, void *cb_ctx,
                              lamina_selftest_summary *summary,
                              char *err, size_t err_size);

/* Run n nodes (the host's lamina_node) on a plugin built for ABI
 * 1.abi_minor: one built before 1.3 is handed them at the node size it
 * knows (LAMINA_NODE_SIZE_1_0), copied, as plugin.h promises.  The
 * engine's graphs and the self-test's both go through here.  Returns
 * graph_compute's code; LAMINA_ENOMEM when the copy cannot be made. */
int lamina_graph_run(const lamina_backend_iface *iface, lamina_backend *be, uint32_t abi_minor,
                     const lamina_node *nodes, uint32_t n, char *err, size_t err_size);

#endif
