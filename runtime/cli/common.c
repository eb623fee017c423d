/* common.c - what `run`, `bench` and `serve` share: open the runtime,
 * resolve and load the model, open the eligible backends in preference
 * order, build the engine and print the plan. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalogue.h"
#include "cli/cli.h"

static void log_warn(void *ctx, int level, const char *msg)
{
    const cli_globals *g = ctx;
    if (level <= LAMINA_LOG_WARN || (g && g->verbose))
        fprintf(stderr, "lamina: %s\n", msg);
}

int cli_open(const cli_globals *g, const cli_open_opts *o, cli_model *cm)
{
    char err[1024] = "";
    int rc;
    memset(cm, 0, sizeof *cm);

    lamina_runtime_options ro;
    memset(&ro, 0, sizeof ro);
    ro.struct_size = sizeof ro;
    ro.config_path = g->config_path;
    ro.reprobe = g->reprobe;
    ro.log = log_warn;
    ro.log_ctx = (void *)g;
    rc = lamina_runtime_open(&ro, &cm->rt, err, sizeof err);
    if (rc < 0) { cli_error("%s", err); return rc; }
    cm->cfg = *lamina_runtime_config(cm->rt);

    rc = lamina_model_resolve(&cm->cfg, o->model, cm->path, sizeof cm->path, err, sizeof err);
    if (rc < 0) { cli_error("%s", err); goto fail; }
    rc = lamina_model_load(cm->path, &cm->model, err, sizeof err);
    if (rc < 0) { cli_error("%s", err); goto fail; }
    rc = lamina_tokenizer_load(cm->model->gguf, &cm->tok, err, sizeof err);
    if (rc < 0) { cli_error("%s: %s", cm->path, err); goto fail; }

    /* backends in preference order; one that fails to open is skipped
     * with its reason, and its layers fall to the next */
    int n_slots = lamina_runtime_device_count(cm->rt);
    for (int i = 0; i < n_slots && cm->n_bes < LAMINA_MAX_BACKENDS; i++) {
        const lamina_device_slot *s = lamina_runtime_device(cm->rt, i);
        if (o->backend && strcmp(s->plugin->name, o->backend) != 0) continue;
        lamina_be *be = NULL;
        rc = lamina_runtime_open_backend(cm->rt, i, &be, err, sizeof err);
        if (rc < 0) {
            fprintf(stderr, "lamina: %s: passed over: %s\n", s->device->label, err);
            continue;
        }
        cm->bes[cm->n_bes++] = be;
    }
    if (cm->n_bes == 0) {
        if (o->backend) cli_error("backend '%s' is not available (see `lamina backends`)", o->backend);
        else cli_error("no usable backend (see `lamina backends`)");
        rc = LAMINA_ENODEV;
        goto fail;
    }

    lamina_engine_params p;
    lamina_engine_params_default(&p);
    int n_ctx = o->n_ctx > 0 ? o->n_ctx : cm->cfg.n_ctx;
    if (n_ctx <= 0) n_ctx = cm->model->hp.n_ctx_train < 4096 ? cm->model->hp.n_ctx_train : 4096;
    if (n_ctx > cm->model->hp.n_ctx_train) {
        fprintf(stderr, "lamina: context %d exceeds the model's %d; using %d\n", n_ctx,
                cm->model->hp.n_ctx_train, cm->model->hp.n_ctx_train);
        n_ctx = cm->model->hp.n_ctx_train;
    }
    p.n_ctx = n_ctx;
    if (o->n_seq > 0) p.n_seq = o->n_seq;
    if (o->n_batch > 0) p.n_batch = o->n_batch;
    p.n_outputs = o->n_outputs > 0 ? o->n_outputs : p.n_seq;
    if (o->n_outputs < -1 || (o->n_outputs < 0 && cm->cfg.speculative))   /* a draft verify's rows */
        p.n_outputs = cm->cfg.speculative_draft + 1 > p.n_seq ? cm->cfg.speculative_draft + 1 : p.n_seq;
    p.gpu_layers = cm->cfg.gpu_layers;
    p.reserve_bytes = cm->cfg.reserve_mib << 20;
    rc = lamina_engine_create(cm->model, cm->bes, cm->n_bes, &p, &cm->eng, err, sizeof err);
    if (rc < 0) { cli_error("%s", err); goto fail; }
    if (!o->quiet) {
        char plan[4096];
        lamina_engine_describe_plan(cm->eng, plan, sizeof plan);
        fprintf(stderr, "%s: %s, %d layers, %s\n", cm->model->hp.name[0] ? cm->model->hp.name : cm->path,
                cm->model->hp.arch_name, cm->model->hp.n_layer, cm->path);
        fputs(plan, stderr);
    }
    return 0;
fail:
    cli_close(cm);
    return rc;
}

void cli_close(cli_model *cm)
{
    lamina_engine_free(cm->eng);
    for (int i = 0; i < cm->n_bes; i++) lamina_be_close(cm->bes[i]);
    lamina_tokenizer_free(cm->tok);
    lamina_model_free(cm->model);
    lamina_runtime_close(cm->rt);
    memset(cm, 0, sizeof *cm);
}
