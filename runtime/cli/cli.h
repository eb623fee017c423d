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

/* Print "lamina: " + message to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
