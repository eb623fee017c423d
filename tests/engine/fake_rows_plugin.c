/*
 * fake_rows_plugin.c - a test plugin ("fakerows") that is right on every
 * self-test shape and on every model layer, and wrong on weights with many
 * rows: the shape of a model's output head.
 *
 * It wraps a real plugin (the cpu plugin, named by $FAKE_ROWS_WRAP, loaded
 * into this module's own namespace) and forwards everything to it, except
 * that after a MUL_MAT whose weight has more than FAKE_ROWS_MAX rows, the
 * outputs of rows FAKE_ROWS_MAX and up are replaced by those of rows
 * (n mod FAKE_ROWS_MAX): a kernel whose grid wraps around, say.  The
 * self-test's largest MUL_MAT has 130 rows and a tiny generated model's
 * largest layer weight 512 (n_ff), so only a head with a vocabulary larger
 * than FAKE_ROWS_MAX is wrong.  Everything else is bit for bit the wrapped
 * plugin's, so a model whose head moved to the real cpu plugin generates
 * the same tokens as on the cpu plugin alone.
 *
 * Without $FAKE_ROWS_WRAP (or when it does not load) the entry point
 * returns NULL.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/plugin.h"

#define FAKE_ROWS_MAX 512

static const lamina_plugin_desc *real;
static lamina_backend_iface iface;
static lamina_plugin_desc desc;

/* dst's rows (ne0 values per column) from FAKE_ROWS_MAX on repeat the first ones. */
static int wrap_rows(lamina_backend *be, const lamina_node *n, char *err, size_t err_size)
{
    const lamina_tensor *d = &n->dst;
    const int64_t N = d->ne[0];
    float *y = malloc((size_t)N * sizeof *y);
    if (y == NULL) {
        snprintf(err, err_size, "fakerows: out of memory");
        return LAMINA_ENOMEM;
    }
    int rc = 0;
    for (int64_t i3 = 0; i3 < d->ne[3] && rc == 0; i3++)
    for (int64_t i2 = 0; i2 < d->ne[2] && rc == 0; i2++)
    for (int64_t i1 = 0; i1 < d->ne[1] && rc == 0; i1++) {
        uint64_t off = d->offset + (uint64_t)i1 * d->nb[1] + (uint64_t)i2 * d->nb[2] + (uint64_t)i3 * d->nb[3];
        rc = real->backend->buffer_download(be, d->buffer, off, y, (uint64_t)N * sizeof *y, err, err_size);
        if (rc < 0) break;
        for (int64_t r = FAKE_ROWS_MAX; r < N; r++)
            y[r] = y[r % FAKE_ROWS_MAX];
        rc = real->backend->buffer_upload(be, d->buffer, off, y, (uint64_t)N * sizeof *y, err, err_size);
    }
    free(y);
    return rc;
}

static int rows_compute(lamina_backend *be, const lamina_graph *g, char *err, size_t err_size)
{
    uint32_t start = 0;
    int rc;
    for (uint32_t i = 0; i < g->n_nodes; i++) {
        const lamina_node *n = &g->nodes[i];
        if (n->op != LAMINA_OP_MUL_MAT || n->src[0].ne[1] <= FAKE_ROWS_MAX || n->dst.type != LAMINA_TYPE_F32)
            continue;
        /* the nodes up to this one as the wrapped plugin computes them */
        lamina_graph part = *g;
        part.n_nodes = i + 1 - start;
        part.nodes = g->nodes + start;
        if ((rc = real->backend->graph_compute(be, &part, err, err_size)) < 0)
            return rc;
        if ((rc = wrap_rows(be, n, err, err_size)) < 0)
            return rc;
        start = i + 1;
    }
    if (start == g->n_nodes)
        return 0;
    lamina_graph rest = *g;
    rest.n_nodes = g->n_nodes - start;
    rest.nodes = g->nodes + start;
    return real->backend->graph_compute(be, &rest, err, err_size);
}

LAMINA_PLUGIN_EXPORT const lamina_plugin_desc *LAMINA_PLUGIN_ENTRY(const lamina_host *host);
LAMINA_PLUGIN_EXPORT const lamina_plugin_desc *LAMINA_PLUGIN_ENTRY(const lamina_host *host)
{
    if (real == NULL) {
        const char *path = getenv("FAKE_ROWS_WRAP");
        void *dl = path && path[0] ? dlopen(path, RTLD_NOW | RTLD_LOCAL) : NULL;
        lamina_plugin_entry_fn entry = dl ? (lamina_plugin_entry_fn)dlsym(dl, LAMINA_PLUGIN_ENTRY_NAME) : NULL;
        const lamina_plugin_desc *d = entry ? entry(host) : NULL;
        if (d == NULL || d->backend == NULL || d->struct_size < sizeof desc ||
            d->backend->struct_size < sizeof iface)
            return NULL;
        iface = *d->backend;
        iface.graph_compute = rows_compute;
        desc = *d;
        desc.name = "fakerows";
        desc.version = "0.0.1";
        desc.description = "test plugin: the cpu plugin, wrong on MUL_MAT weights of more than 512 rows";
        desc.selftest = NULL;
        desc.backend = &iface;
        real = d;
    }
    return &desc;
}
