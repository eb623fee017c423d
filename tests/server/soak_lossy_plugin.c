/*
 * soak_lossy_plugin.c - a test plugin ("lossy") whose device can be lost
 * on demand while a server runs: the soak benchmark (scripts/soak.sh) and
 * its short form (tests/server/soak_short.sh) install it next to the cpu
 * plugin, preferred to it, and later make it lose its device.
 *
 * It wraps a real plugin (the cpu plugin, named by $LOSSY_WRAP, loaded
 * into this module's own namespace) and forwards everything to it, so that
 * before the loss it computes bit for bit what the cpu plugin computes.
 * Once the file named by $LOSSY_LOSE_FILE exists, every graph_compute
 * answers LAMINA_EDEVLOST ("device lost (simulated)"), as a GPU whose
 * driver reported the device gone: the engine drops the backend and plans
 * the layers anew over the backends left.  The file is looked for before
 * each graph (one access() call), and a device once lost stays lost.
 *
 * Without $LOSSY_WRAP (or when it does not load) the entry point returns
 * NULL.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lamina/plugin.h"

static const lamina_plugin_desc *real;
static lamina_backend_iface iface;
static lamina_plugin_desc desc;
static const char *lose_file;
static int lost;

static int lossy_compute(lamina_backend *be, const lamina_graph *g, char *err, size_t err_size)
{
    if (!__atomic_load_n(&lost, __ATOMIC_ACQUIRE) && lose_file && lose_file[0] && access(lose_file, F_OK) == 0)
        __atomic_store_n(&lost, 1, __ATOMIC_RELEASE);
    if (__atomic_load_n(&lost, __ATOMIC_ACQUIRE)) {
        snprintf(err, err_size, "device lost (simulated: %s exists)", lose_file);
        return LAMINA_EDEVLOST;
    }
    return real->backend->graph_compute(be, g, err, err_size);
}

LAMINA_PLUGIN_EXPORT const lamina_plugin_desc *LAMINA_PLUGIN_ENTRY(const lamina_host *host);
LAMINA_PLUGIN_EXPORT const lamina_plugin_desc *LAMINA_PLUGIN_ENTRY(const lamina_host *host)
{
    if (real == NULL) {
        const char *path = getenv("LOSSY_WRAP");
        void *dl = path && path[0] ? dlopen(path, RTLD_NOW | RTLD_LOCAL) : NULL;
        lamina_plugin_entry_fn entry = dl ? (lamina_plugin_entry_fn)dlsym(dl, LAMINA_PLUGIN_ENTRY_NAME) : NULL;
        const lamina_plugin_desc *d = entry ? entry(host) : NULL;
        if (d == NULL || d->backend == NULL || d->struct_size < sizeof desc ||
            d->backend->struct_size < sizeof iface)
            return NULL;
        lose_file = getenv("LOSSY_LOSE_FILE");
        iface = *d->backend;
        iface.graph_compute = lossy_compute;
        desc = *d;
        desc.name = "lossy";
        desc.version = "0.0.1";
        desc.description = "test plugin: the cpu plugin, whose device is lost once $LOSSY_LOSE_FILE exists";
        desc.selftest = NULL;
        desc.backend = &iface;
        real = d;
    }
    return &desc;
}
