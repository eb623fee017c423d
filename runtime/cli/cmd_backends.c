/* cmd_backends.c - placeholder until the subcommand lands. */
#include "cli/cli.h"
int cmd_backends(const cli_globals *g, int argc, char **argv)
{
    (void)g; (void)argc; (void)argv;
    cli_error("this command is not available in this build yet");
    return 1;
}
