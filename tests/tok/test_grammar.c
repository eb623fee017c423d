/* test_grammar.c - the structured-output constraint (runtime/text/grammar.c)
 * on hand-written prefixes: accepted or not, complete or not; schemas
 * refused with their keyword and path.  With a GGUF path as argument
 * (tests/tok/grammar_bench.sh), also times one masking step over that
 * vocabulary. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "grammar.h"
#include "gguf.h"
#include "lamina/plugin.h"
#include "tap.h"

/* 'v': valid prefix, not complete; 'c': valid and may end; 'd': valid and
 * must end; 'x': invalid */
static void check(const char *schema, const char *text, char want)
{
    lamina_grammar *g = NULL;
    char err[256] = "";
    int rc = schema ? lamina_grammar_compile_text(schema, strlen(schema), &g, err, sizeof err)
                    : lamina_grammar_compile(NULL, &g, err, sizeof err);
    if (rc < 0) { ok(0, "compile %s: %s", schema, err); return; }
    lamina_gmatch *m = NULL;
    lamina_gmatch_create(g, NULL, &m, err, sizeof err);
    rc = lamina_gmatch_feed(m, text, strlen(text));
    char got = rc < 0 ? 'x' : lamina_gmatch_done(m) ? 'd' : lamina_gmatch_can_end(m) ? 'c' : 'v';
    ok(got == want, "%s | %s -> %c (want %c)", schema ? schema : "json", text, got, want);
    lamina_gmatch_free(m);
    lamina_grammar_unref(g);
}

static void refuse(const char *schema, const char *want)
{
    lamina_grammar *g = NULL;
    char err[256] = "";
    int rc = lamina_grammar_compile_text(schema, strlen(schema), &g, err, sizeof err);
    ok(rc < 0 && strstr(err, want) != NULL, "refused %s: %s", schema, err);
    lamina_grammar_unref(g);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static const char *cpu_name(void)
{
    static char name[256] = "?";
    FILE *fp = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (fp && fgets(line, sizeof line, fp))
        if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
            snprintf(name, sizeof name, "%s", strchr(line, ':') + 2);
            name[strcspn(name, "\n")] = 0;
            break;
        }
    if (fp) fclose(fp);
    return name;
}

static void bench(const char *path)
{
    lamina_gguf *gg = NULL;
    lamina_tokenizer *tok = NULL;
    char err[512];
    if (lamina_gguf_open(path, &gg, err, sizeof err) != 0 || lamina_tokenizer_load(gg, &tok, err, sizeof err) != 0) {
        diag("bench: %s", err);
        return;
    }
    int32_t nv = lamina_tokenizer_n_vocab(tok);
    double t0 = now();
    lamina_gvocab *v = NULL;
    lamina_gvocab_create(tok, nv, &v, err, sizeof err);
    diag("vocabulary of %d tokens prepared in %.1f ms", nv, (now() - t0) * 1e3);
    diag("CPU: %s", cpu_name());
    static const char *const schema =
        "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},\"age\":{\"type\":\"integer\"},"
        "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\",\"maxLength\":10}},"
        "\"kind\":{\"enum\":[\"cat\",\"dog\"]}},\"required\":[\"name\",\"age\",\"tags\",\"kind\"]}";
    static const char *const prefixes[] = { "", "{", "{\"na", "{\"name\":\"Bob", "{\"name\":\"Bob\",\"age\":4",
                                            "{\"name\":\"Bob\",\"age\":42,\"tags\":[\"ab", "{\"name\":\"Bob\",\"age\":42,\"tags\":[],", NULL };
    float *logits = malloc((size_t)nv * sizeof *logits);
    for (int any = 0; any < 2; any++) {
        lamina_grammar *g = NULL;
        if (any) lamina_grammar_compile(NULL, &g, err, sizeof err);
        else lamina_grammar_compile_text(schema, strlen(schema), &g, err, sizeof err);
        for (int i = 0; prefixes[i]; i++) {
            lamina_gmatch *m = NULL;
            lamina_gmatch_create(g, v, &m, err, sizeof err);
            if (lamina_gmatch_feed(m, prefixes[i], strlen(prefixes[i])) < 0) { lamina_gmatch_free(m); continue; }
            int reps = 20, allowed = 0;
            double t = now();
            double ms = 0;
            for (int r = 0; r < reps; r++) {
                for (int32_t k = 0; k < nv; k++) logits[k] = 0;
                t = now();
                lamina_gmatch_mask(m, logits);
                ms += (now() - t) * 1e3 / reps;
            }
            for (int32_t k = 0; k < nv; k++) allowed += logits[k] == 0;
            diag("mask %-6s after %-42s %7.3f ms/step, %d tokens allowed", any ? "json" : "schema", prefixes[i], ms, allowed);
            lamina_gmatch_free(m);
        }
        lamina_grammar_unref(g);
    }
    free(logits);
    lamina_gvocab_free(v);
    lamina_tokenizer_free(tok);
    lamina_gguf_close(gg);
}

int main(int argc, char **argv)
{
    if (argc > 1) { bench(argv[1]); return 0; }
    /* any JSON value */
    check(NULL, "", 'v');
    check(NULL, "{}", 'd');
    check(NULL, " {\"a\": [1, 2.5e3, \"x\", null, true, {}]}", 'd');
    check(NULL, "12", 'c');
    check(NULL, "12.", 'v');
    check(NULL, "012", 'x');
    check(NULL, "{,}", 'x');
    check(NULL, "{\"a\":1,}", 'x');
    check(NULL, "[1,]", 'x');
    check(NULL, "{} ", 'x');
    check(NULL, "\"a\\u00e9\\n\"", 'd');
    check(NULL, "\"\\ud800", 'x');
    check(NULL, "\"\x01", 'x');
    check(NULL, "\"\xc3\xa9\"", 'd');
    check(NULL, "\"\xc3(", 'x');
    check(NULL, "\"\xed\xa0\x80", 'x');
    check(NULL, "tru", 'v');
    check(NULL, "trux", 'x');
    check(NULL, "         1", 'x');           /* more than 8 whitespace bytes */
    check(NULL, "12345678901234567", 'x');    /* 17 integer digits */
    /* objects */
    const char *o = "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"},\"b\":{\"type\":\"string\"},"
                    "\"c\":{\"type\":\"boolean\"}},\"required\":[\"a\",\"c\"]}";
    check(o, "{\"a\":1,\"c\":true}", 'd');
    check(o, "{\"a\":1,\"b\":\"x\",\"c\":false}", 'd');
    check(o, "{\"c\":true,\"a\":1}", 'x');        /* schema order */
    check(o, "{\"a\":1}", 'x');                   /* c is required */
    check(o, "{\"a\":1.5", 'x');                  /* integer */
    check(o, "{\"a\":1,\"d\":", 'x');             /* no additional properties */
    check(o, "{\"a\":1,\"a\":", 'x');
    check(o, "{\"b\":", 'x');                     /* a comes first */
    check(o, "{ \"a\" : -0 , \"c\" : true }", 'd');
    const char *ap = "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}},\"additionalProperties\":{\"type\":\"null\"}}";
    check(ap, "{\"x\":null,\"y\":null}", 'd');
    check(ap, "{\"a\":1,\"x\":null}", 'd');
    check(ap, "{\"a\":null", 'x');                /* a is declared: integer */
    check(ap, "{\"x\":null,\"a\":", 'x');         /* declared after additional */
    check(ap, "{\"ab\":null}", 'd');
    check(ap, "{\"x\\n\":", 'x');                 /* no escapes in additional keys */
    check("{\"properties\":{\"\\\"q\\\"\":{\"type\":\"null\"}},\"required\":[\"\\\"q\\\"\"]}",
          "{\"\\\"q\\\"\":null}", 'd');            /* escaped quotes in a name */
    check("{\"type\":\"object\"}", "{\"k\":[{}]}", 'd');
    /* arrays */
    const char *arr = "{\"type\":\"array\",\"items\":{\"type\":\"number\"},\"minItems\":2,\"maxItems\":3}";
    check(arr, "[1,2]", 'd');
    check(arr, "[1]", 'x');
    check(arr, "[1,2,3,", 'x');
    check(arr, "[1,2,3]", 'd');
    check("{\"prefixItems\":[{\"type\":\"string\"},{\"type\":\"integer\"}],\"items\":false}", "[\"a\",1]", 'd');
    check("{\"prefixItems\":[{\"type\":\"string\"},{\"type\":\"integer\"}],\"items\":false}", "[\"a\",1,", 'x');
    check("{\"prefixItems\":[{\"type\":\"string\"}]}", "[1", 'x');
    /* strings */
    const char *s = "{\"type\":\"string\",\"minLength\":2,\"maxLength\":3}";
    check(s, "\"ab\"", 'd');
    check(s, "\"a\"", 'x');
    check(s, "\"abcd", 'x');
    check(s, "\"\xc3\xa9\xc3\xa9\xc3\xa9\"", 'd');
    check(s, "\"\\n\\t\\\"\"", 'd');
    check("{\"type\":\"string\",\"format\":\"date-time\"}", "\"2024-01-01T00:00:00Z\"", 'd');
    /* enum, const, types */
    const char *e = "{\"enum\":[\"red\",\"green\",1,12,null,{\"a\":[1]}]}";
    check(e, "\"red\"", 'd');
    check(e, "\"re\"", 'x');
    check(e, "1", 'c');
    check(e, "12", 'd');
    check(e, "{\"a\":[1]}", 'd');
    check(e, "nul", 'v');
    check("{\"const\":\"x\"}", "\"x\"", 'd');
    check("{\"type\":[\"string\",\"null\"]}", "null", 'd');
    check("{\"type\":[\"string\",\"null\"]}", "\"n\"", 'd');
    check("{\"type\":\"integer\",\"nullable\":true}", "null", 'd');
    check("{\"type\":\"integer\",\"nullable\":true}", "-3", 'c');
    check("{\"type\":\"boolean\"}", "false", 'd');
    check("{\"type\":\"boolean\"}", "fals", 'v');
    /* anyOf, $ref, recursion */
    const char *u = "{\"anyOf\":[{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}},\"required\":[\"a\"]},"
                    "{\"type\":\"object\",\"properties\":{\"b\":{\"type\":\"string\"}},\"required\":[\"b\"]}]}";
    check(u, "{\"a\":1}", 'd');
    check(u, "{\"b\":\"x\"}", 'd');
    check(u, "{\"c\"", 'x');
    const char *r = "{\"$defs\":{\"node\":{\"type\":\"object\",\"properties\":{\"v\":{\"type\":\"integer\"},"
                    "\"next\":{\"anyOf\":[{\"$ref\":\"#/$defs/node\"},{\"type\":\"null\"}]}},\"required\":[\"v\",\"next\"]}},"
                    "\"$ref\":\"#/$defs/node\"}";
    check(r, "{\"v\":1,\"next\":{\"v\":2,\"next\":null}}", 'd');
    check(r, "{\"v\":1,\"next\":{\"v\":2}}", 'x');
    check("{\"definitions\":{\"a\":{\"type\":\"string\"}},\"items\":{\"$ref\":\"#/definitions/a\"}}", "[\"x\"]", 'd');
    check("{\"allOf\":[{\"type\":\"string\"}],\"description\":\"d\"}", "\"q\"", 'd');
    check("{}", "[{\"x\":1}]", 'd');
    check("true", "3", 'c');
    /* refused */
    refuse("{\"type\":\"object\",\"properties\":{\"x\":{\"patternProperties\":{}}}}",
           "keyword 'patternProperties' at $.properties.x is not supported");
    refuse("{\"type\":\"string\",\"pattern\":\"^a$\"}", "keyword 'pattern' at $ is not supported");
    refuse("{\"type\":\"integer\",\"minimum\":0}", "keyword 'minimum' at $ is not supported");
    refuse("{\"items\":{\"if\":{}}}", "keyword 'if' at $.items is not supported");
    refuse("{\"$ref\":\"#/$defs/a\",\"$defs\":{\"a\":{\"$ref\":\"#/$defs/a\"}}}", "no instance");
    refuse("{\"$defs\":{\"n\":{\"type\":\"object\",\"properties\":{\"n\":{\"$ref\":\"#/$defs/n\"}},\"required\":[\"n\"]}},\"$ref\":\"#/$defs/n\"}",
           "no instance");
    refuse("{\"$ref\":\"http://x/y\"}", "only local references");
    refuse("{\"$ref\":\"#/nowhere\"}", "does not resolve");
    refuse("{\"enum\":[]}", "no value fits");
    refuse("{\"type\":\"string\",\"enum\":[1]}", "no value fits");
    refuse("false", "no value fits");
    refuse("{\"type\":\"frog\"}", "unknown type 'frog'");
    refuse("{\"type\":\"string\",\"minLength\":5,\"maxLength\":2}", "maxLength < minLength");
    refuse("{\"type\":\"array\",\"minItems\":100000}", "at most");
    refuse("{\"type\":\"object\",\"required\":[\"q\"],\"additionalProperties\":false}", "required property 'q'");
    refuse("{\"allOf\":[{},{}]}", "only one subschema");
    refuse("{\"anyOf\":[{\"type\":\"string\"}],\"type\":\"string\"}", "keyword 'type' next to 'anyOf'");
    /* hostile: deep nesting and wide recursion compile or fail cleanly */
    {
        size_t n = 200;
        char *deep = malloc(n * 16 + 64), *p = deep;
        for (size_t i = 0; i < n; i++) p += sprintf(p, "{\"items\":");
        p += sprintf(p, "{}");
        for (size_t i = 0; i < n; i++) *p++ = '}';
        *p = 0;
        refuse(deep, "nested too deeply");
        free(deep);
    }
    {
        /* anyOf of itself many times: state count stays bounded */
        const char *w = "{\"$defs\":{\"t\":{\"anyOf\":[{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/t\"}},"
                        "{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/t\"}},{\"type\":\"null\"},{\"$ref\":\"#/$defs/t\"}]}},"
                        "\"$ref\":\"#/$defs/t\"}";
        check(w, "[[[[[[[[[[[[[[[[[[[[null]]]]]]]]]]]]]]]]]]]]", 'd');
        check(w, "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", 'x');   /* deeper than 32 */
    }
    return done_testing();
}
