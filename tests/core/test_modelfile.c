/* test_modelfile.c - Ollama's Modelfile parser (runtime/model/modelfile.c):
 * every instruction, quoting, comments, case, and the refusals with the
 * file and line they name. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modelfile.h"
#include "tap.h"

static int parse(const char *text, lamina_modelfile *mf, char *err, size_t es)
{
    err[0] = 0;
    return lamina_modelfile_parse(text, strlen(text), "MF", mf, err, es);
}

/* Refused, the message naming what. */
static void refused(const char *text, const char *needle, const char *what)
{
    lamina_modelfile mf;
    char err[512];
    int rc = parse(text, &mf, err, sizeof err);
    OK(rc < 0, "refused: %s", what);
    OK_HAS(err, needle, "message of: %s", what);
    OK(rc == 0 || (mf.from == NULL && mf.params == NULL), "nothing left to free: %s", what);
    if (rc == 0) lamina_modelfile_free(&mf);
}

int main(void)
{
    lamina_modelfile mf;
    char err[512];
    const char *full =
        "# a comment\n"
        "\n"
        "from ./tiny.gguf\n"
        "PARAMETER stop \"<end>\"\n"
        "Parameter stop </s>\n"
        "PARAMETER temperature 0.25\n"
        "  TEMPLATE \"\"\"{{ .System }}\n"
        "{{ .Prompt }}\"\"\"\n"
        "SYSTEM \"be \\\"brief\\\"\"\n"
        "LICENSE \"\"\"one\"\"\"\n"
        "license two lines? no: one\n"
        "# done\n";
    int rc = parse(full, &mf, err, sizeof err);
    OK(rc == 0, "full Modelfile parses (%s)", err);
    if (rc == 0) {
        OK(!strcmp(mf.from, "./tiny.gguf") && mf.from_line == 3, "FROM and its line (%s, %d)", mf.from, mf.from_line);
        OK(mf.n_params == 3, "three PARAMETERs (%d)", mf.n_params);
        OK(mf.n_params == 3 && !strcmp(mf.params[0].key, "stop") && !strcmp(mf.params[0].value, "<end>") &&
           mf.params[0].line == 4, "quoted stop value");
        OK(mf.n_params == 3 && !strcmp(mf.params[1].value, "</s>"), "bare value");
        OK(mf.n_params == 3 && !strcmp(mf.params[2].key, "temperature") && !strcmp(mf.params[2].value, "0.25"),
           "temperature");
        OK(mf.template_text && !strcmp(mf.template_text, "{{ .System }}\n{{ .Prompt }}"), "multi-line TEMPLATE");
        OK(mf.system && !strcmp(mf.system, "be \"brief\""), "SYSTEM with escaped quotes");
        OK(mf.n_licenses == 2 && !strcmp(mf.licenses[0], "one") && !strcmp(mf.licenses[1], "two lines? no: one"),
           "two LICENSEs");
        lamina_modelfile_free(&mf);
    }
    rc = parse("FROM gemma3:270m\r\nSYSTEM hi  \r\n", &mf, err, sizeof err);
    OK(rc == 0 && !strcmp(mf.from, "gemma3:270m") && mf.system && !strcmp(mf.system, "hi"),
       "CRLF lines, a model name, trailing blanks dropped (%s)", err);
    if (rc == 0) lamina_modelfile_free(&mf);
    rc = parse("SYSTEM \"\"\"a\n\nb\"\"\"\nFROM x\n", &mf, err, sizeof err);
    OK(rc == 0 && mf.from_line == 4, "line count after a multi-line string (%d)", rc == 0 ? mf.from_line : -1);
    if (rc == 0) lamina_modelfile_free(&mf);

    refused("PARAMETER stop x\n", "MF: no FROM", "missing FROM");
    refused("", "no FROM", "empty file");
    refused("FROM x\nTEMPLATE \"\"\"open\n\nstill open\n", "MF:2: TEMPLATE: unterminated \"\"\"", "unterminated \"\"\"");
    refused("FROM x\nSYSTEM \"open\n", "MF:2: SYSTEM: unterminated \"", "unterminated \"");
    refused("FROM x\nSYSTEM \"\"\"a\"\"\" b\n", "MF:2: unexpected text after the closing quote", "text after \"\"\"");
    refused("FROM x\nPARAMETER stop\n", "MF:2: PARAMETER stop: missing value", "PARAMETER without value");
    refused("FROM x\n\nPARAMETER\n", "MF:3: PARAMETER: expected a name", "PARAMETER without name");
    refused("FROM x\nPARAMETER te-mp 1\n", "MF:2: PARAMETER: expected a name", "PARAMETER with a bad name");
    refused("FROM\n", "MF:1: FROM: missing value", "FROM without value");
    refused("FROM x\nadapter ./lora.gguf\n", "MF:2: ADAPTER: LoRA adapters are not supported", "ADAPTER");
    refused("FROM x\nMESSAGE user hi\n", "MF:2: MESSAGE:", "MESSAGE");
    refused("FROM x\n# ok\nQUANTIZE q4\n", "MF:3: unknown instruction 'QUANTIZE'", "unknown instruction");
    {
        static const char nul[] = "FROM x\n\0SYSTEM y\n";
        rc = lamina_modelfile_parse(nul, sizeof nul - 1, "MF", &mf, err, sizeof err);
        OK(rc < 0 && strstr(err, "NUL"), "a NUL byte inside is refused (%s)", err);
    }
    return tap_done();
}
