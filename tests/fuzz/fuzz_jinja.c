/* fuzz_jinja.c - libFuzzer harness for the Jinja interpreter: templates are
 * untrusted input (a model file carries its own).  The input is a template,
 * optionally followed by a NUL byte and the context JSON; without one a
 * small chat conversation is the context.  Parse errors and render errors
 * are fine; crashes, leaks, sanitizer reports and hangs are not (the limits
 * keep every render short).  Built by tests/fuzz.am; seeds in
 * tests/fuzz/corpus/jinja (from `tests/tok/test_jinja --write-seeds DIR`). */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jinja.h"

static const char default_ctx[] =
    "{\"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"add_generation_prompt\": true,"
    " \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\":"
    " {\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"string\"}}}}}],"
    " \"messages\": [{\"role\": \"system\", \"content\": \"sys\"},"
    " {\"role\": \"user\", \"content\": \"h\\u00e9llo\"},"
    " {\"role\": \"assistant\", \"content\": null, \"tool_calls\": [{\"id\": \"c1\","
    " \"function\": {\"name\": \"f\", \"arguments\": {\"a\": \"x\"}}}]},"
    " {\"role\": \"tool\", \"content\": \"1\"}]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *src = (const char *)data;
    const uint8_t *nul = memchr(data, 0, size);
    size_t tl = nul ? (size_t)(nul - data) : size;
    const char *ctx = nul ? (const char *)nul + 1 : default_ctx;
    size_t cl = nul ? size - tl - 1 : strlen(default_ctx);

    lamina_jinja *t = NULL;
    char err[256];
    if (lamina_jinja_parse(src, tl, &t, err, sizeof err) < 0)
        return 0;
    struct tm now;
    memset(&now, 0, sizeof now);
    now.tm_year = 124;
    now.tm_mday = 1;
    lamina_jinja_limits lim = {
        .max_output = 1 << 20, .max_memory = 32 << 20, .max_steps = 200000, .max_depth = 50,
    };
    char *out = NULL;
    size_t ol = 0;
    if (lamina_jinja_render(t, ctx, cl, &now, &lim, &out, &ol, err, sizeof err) == 0) {
        if (out == NULL || out[ol] != 0)
            abort();
        free(out);
    }
    lamina_jinja_free(t);
    return 0;
}
