/* cli.h - the lamina command-line tool: one function per subcommand.
 * Each returns the process exit status (0 ok, 1 failure, 2 usage error). */
#ifndef LAMINA_CLI_H
#define LAMINA_CLI_H

#include <stdio.h>

/* Global options parsed before the subcommand. */
typedef struct cli_globals {
    const char *config_path;   /* --config FILE */
    int reprobe;               /* --reprobe */
    int verbose;               /* -v */
} cli_globals;

int cmd_backends(const cli_globals *g, int argc, char **argv);
int cmd_plugin_check(const cli_globals *g, int argc, char **argv);
int cmd_run(const cli_globals *g, int argc, char **argv);
int cmd_bench(const cli_globals *g, int argc, char **argv);
int cmd_embed(const cli_globals *g, int argc, char **argv);
int cmd_serve(const cli_globals *g, int argc, char **argv);   /* when built with libmicrohttpd */
int cmd_pull(const cli_globals *g, int argc, char **argv);    /* built with the server (libcurl) */
int cmd_rm(const cli_globals *g, int argc, char **argv);      /* lamina's store (cmd_store.c), with the server */
int cmd_cp(const cli_globals *g, int argc, char **argv);
int cmd_create(const cli_globals *g, int argc, char **argv);  /* a Modelfile into lamina's store (cmd_store.c) */
int cmd_list(const cli_globals *g, int argc, char **argv);    /* the models a client can name (cmd_models.c) */
int cmd_show(const cli_globals *g, int argc, char **argv);    /* one model, as /api/show (cmd_models.c) */

/* A model ready to run: runtime (plugins probed), model, tokenizer,
 * backends opened in preference order, engine.  cli_open prints the plan
 * to stderr unless quiet. */
#include "lamina/lamina.h"
#include "model.h"
#include "engine.h"
#include "tokenizer.h"

typedef struct cli_model {
    lamina_runtime *rt;
    lamina_config cfg;
    char path[4096];
    lamina_model *model;
    lamina_tokenizer *tok;
    lamina_be *bes[LAMINA_MAX_BACKENDS];
    int n_bes;
    lamina_engine *eng;
} cli_model;

typedef struct cli_open_opts {
    const char *model;          /* name or path; NULL = configured default */
    const char *backend;        /* only this plugin (bench), or NULL */
    int n_ctx, n_seq, n_batch, n_outputs;   /* n_outputs -1: as [generate] speculative needs;
                                               -2: as its drafts need even when off */
    int quiet;
} cli_open_opts;

int  cli_open(const cli_globals *g, const cli_open_opts *o, cli_model *cm);
void cli_close(cli_model *cm);

/* Print "lamina: " + message to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
