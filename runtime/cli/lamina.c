/* lamina.c - entry point of the lamina CLI: global options, dispatch. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/lamina.h"
#include "cli/cli.h"

void cli_error(const char *fmt, ...)
{
    va_list ap;
    fputs("lamina: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void usage(FILE *fp)
{
    fputs("usage: lamina [--config FILE] [--reprobe] [-v] COMMAND [ARGS]\n"
          "\n"
          "commands:\n"
          "  run [MODEL] [PROMPT]     generate text (chat when PROMPT is omitted on a terminal)\n"
          "  backends [--json]        list plugins, devices, versions, self-test results\n"
          "  plugin-check PATH.so     conformance report for one plugin file\n"
          "  bench [MODEL]            prompt and generation speed per backend\n"
          "  embed [MODEL] TEXT...    embedding vectors, one JSON line per text\n"
#ifdef LAMINA_HAVE_SERVER
          "  serve [--listen H:P]     HTTP service: Ollama and OpenAI APIs, /metrics\n"
          "  list [--json]            the models a client can name, and the broken ones with the reason\n"
          "  show NAME                a model's architecture, size, capabilities, parameters, license\n"
          "  pull NAME                fetch a model from its registry into lamina's store\n"
          "  create NAME [-f FILE]    create a model in lamina's store from a Modelfile\n"
          "  rm NAME...               remove models from lamina's store\n"
          "  cp SOURCE DESTINATION    copy a model to a new name in lamina's store\n"
#endif
          "  version                  print the version\n"
          "\n"
          "See lamina(1) and lamina.ini(5).\n", fp);
}

int main(int argc, char **argv)
{
    cli_globals g = {0};
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--config") == 0 || strcmp(a, "-c") == 0) {
            if (i + 1 >= argc) { cli_error("%s needs a file", a); return 2; }
            g.config_path = argv[++i];
        } else if (strncmp(a, "--config=", 9) == 0) {
            g.config_path = a + 9;
        } else if (strcmp(a, "--reprobe") == 0) {
            g.reprobe = 1;
        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            g.verbose++;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (a[0] == '-') {
            cli_error("unknown option '%s'", a);
            usage(stderr);
            return 2;
        } else {
            break;
        }
    }
    if (i >= argc) { usage(stderr); return 2; }
    const char *cmd = argv[i];
    int sub_argc = argc - i;
    char **sub_argv = argv + i;
    if (strcmp(cmd, "run") == 0)          return cmd_run(&g, sub_argc, sub_argv);
    if (strcmp(cmd, "backends") == 0)     return cmd_backends(&g, sub_argc, sub_argv);
    if (strcmp(cmd, "plugin-check") == 0) return cmd_plugin_check(&g, sub_argc, sub_argv);
    if (strcmp(cmd, "bench") == 0)        return cmd_bench(&g, sub_argc, sub_argv);
    if (strcmp(cmd, "embed") == 0)        return cmd_embed(&g, sub_argc, sub_argv);
#ifdef LAMINA_HAVE_SERVER
    if (strcmp(cmd, "serve") == 0)        return cmd_serve(&g, sub_argc, sub_argv);
    if (strcmp(cmd, "pull") == 0)         return cmd_pull(&g, sub_argc, sub_argv);
    if (strcmp(cmd, "create") == 0)       return cmd_create(&g, sub_argc, sub_argv);
    if (strcmp(cmd, "rm") == 0)           return cmd_rm(&g, sub_argc, sub_argv);
    if (strcmp(cmd, "cp") == 0)           return cmd_cp(&g, sub_argc, sub_argv);
    if (strcmp(cmd, "list") == 0 || strcmp(cmd, "ls") == 0) return cmd_list(&g, sub_argc, sub_argv);
    if (strcmp(cmd, "show") == 0)         return cmd_show(&g, sub_argc, sub_argv);
#else
    if (strcmp(cmd, "pull") == 0 || strcmp(cmd, "rm") == 0 || strcmp(cmd, "cp") == 0 || strcmp(cmd, "create") == 0 ||
        strcmp(cmd, "list") == 0 || strcmp(cmd, "ls") == 0 || strcmp(cmd, "show") == 0) {
        cli_error("%s: this lamina was built without the server and registry client (needs "
                  "libmicrohttpd-dev, libcurl4-openssl-dev and libssl-dev)", cmd);
        return 1;
    }
    if (strcmp(cmd, "serve") == 0) {
        cli_error("serve: this lamina was built without the HTTP server (needs libmicrohttpd-dev; "
                  "configure --with-server)");
        return 1;
    }
#endif
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("lamina %s (plugin ABI %d.%d)\n", LAMINA_VERSION_STRING,
               LAMINA_PLUGIN_ABI_MAJOR, LAMINA_PLUGIN_ABI_MINOR);
        return 0;
    }
    cli_error("unknown command '%s'", cmd);
    usage(stderr);
    return 2;
}
