/* cmd_store.c - `lamina rm NAME...` and `lamina cp SOURCE DESTINATION`:
 * models of lamina's own store ([model] store) removed (with the blobs no
 * other model uses) or given another name (the manifest copied, the blobs
 * shared; a read-only Ollama store's model has its blobs linked or copied
 * in), as `ollama rm` and `ollama cp` do (runtime/model/store.h).  A model
 * only an Ollama store has is never removed: lamina does not write there. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "conf.h"
#include "ollama_store.h"
#include "store.h"

/* The config and lamina's own store; 0, or the exit status. */
static int open_store(const cli_globals *g, const char *cmd, lamina_config *cfg, char store[4096])
{
    char err[1024];
    if (lamina_config_resolve(cfg, g->config_path, err, sizeof err) < 0) {
        cli_error("%s", err);
        return 1;
    }
    if (lamina_ollama_own_store(cfg, store) < 0) {
        cli_error("%s: no model store: set [model] store or HOME", cmd);
        return 1;
    }
    return 0;
}

int cmd_rm(const cli_globals *g, int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        printf("usage: lamina rm NAME...\nRemove models from lamina's store ([model] store) and the blobs no "
               "other model of it uses.\n");
        return 0;
    }
    if (argc < 2) {
        cli_error("usage: lamina rm NAME...");
        return 2;
    }
    lamina_config cfg;
    char store[4096], err[1024];
    int st = open_store(g, "rm", &cfg, store);
    if (st) return st;
    char dirs[LAMINA_MAX_STORES][4096];
    int nd = lamina_ollama_stores(&cfg, dirs);
    for (int i = 1; i < argc; i++) {
        int removed = 0;
        int rc = lamina_store_delete(store, argv[i], &removed, err, sizeof err);
        if (rc == 0) {
            printf("deleted '%s'\n", argv[i]);
            continue;
        }
        int d = rc == LAMINA_ENOENT ? lamina_store_which(dirs, nd, argv[i]) : -1;
        if (d >= 0 && strcmp(dirs[d], store))
            cli_error("rm: model '%s' is in the Ollama store %s, which lamina does not write; remove it with "
                      "ollama rm", argv[i], dirs[d]);
        else
            cli_error("rm: %s", err);
        st = 1;
    }
    return st;
}

int cmd_cp(const cli_globals *g, int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        printf("usage: lamina cp SOURCE DESTINATION\nCopy a model to a new name in lamina's store ([model] store); "
               "the blobs are shared.\n");
        return 0;
    }
    if (argc != 3) {
        cli_error("usage: lamina cp SOURCE DESTINATION");
        return 2;
    }
    lamina_config cfg;
    char store[4096], err[1024];
    int st = open_store(g, "cp", &cfg, store);
    if (st) return st;
    if (!lamina_ollama_name_valid(argv[2])) {
        cli_error("cp: invalid model name '%.120s': " LAMINA_OLLAMA_NAME_FORM, argv[2]);
        return 1;
    }
    char dirs[LAMINA_MAX_STORES][4096];
    int nd = lamina_ollama_stores(&cfg, dirs);
    lamina_ollama_manifest m;
    char *text = NULL;
    size_t len = 0;
    int rc = lamina_store_import(store, dirs, nd, argv[1], &m, &text, &len, NULL, err, sizeof err);
    if (rc == 0) {
        lamina_ollama_manifest_free(&m);
        rc = lamina_store_write_manifest(store, argv[2], text, len, 1, err, sizeof err);
        free(text);
    }
    if (rc < 0) {
        cli_error("cp: %s", err);
        return 1;
    }
    printf("copied '%s' to '%s'\n", argv[1], argv[2]);
    return 0;
}
