/* test_jinja.c - the Jinja interpreter (runtime/text/jinja*.c).
 *
 * First every feature as a named case with the text Python's jinja2
 * renders, or a piece of lamina's message where jinja2 fails too (the table,
 * test_jinja_cases.h, comes from tests/tok/jinja_cases.py --c, which checks
 * each case against jinja2 and against lamina).  Then what a table cannot
 * say: constructs refused at load with their line, errors naming their
 * line, the limits that keep a hostile template from crashing or running
 * away, and the API's edges.
 *
 *   test_jinja --write-seeds DIR   write the cases as a corpus for
 *                                  tests/fuzz/fuzz_jinja (template, NUL, context)
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jinja.h"
#include "lamina/plugin.h"
#include "tap.h"

struct jcase {
    const char *name, *tmpl, *ctx, *want, *err;
};

static const struct jcase cases[] = {
#include "test_jinja_cases.h"
};

static struct tm fixed_now(void)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = 2024 - 1900;
    tm.tm_mon = 6;
    tm.tm_mday = 26;
    tm.tm_hour = 14;
    tm.tm_min = 5;
    tm.tm_sec = 9;
    time_t t = timegm(&tm);
    gmtime_r(&t, &tm);
    return tm;
}

/* parse and render; returns the first negative code, the text in *out */
static int run(const char *tmpl, const char *ctx, const lamina_jinja_limits *lim, char **out,
               size_t *len, char *err, size_t err_size)
{
    lamina_jinja *t = NULL;
    struct tm now = fixed_now();
    *out = NULL;
    int rc = lamina_jinja_parse(tmpl, strlen(tmpl), &t, err, err_size);
    if (rc < 0)
        return rc;
    rc = lamina_jinja_render(t, ctx, ctx ? strlen(ctx) : 0, &now, lim, out, len, err, err_size);
    lamina_jinja_free(t);
    return rc;
}

static void check_case(const struct jcase *c)
{
    char *out;
    size_t len = 0;
    char err[512] = "";
    int rc = run(c->tmpl, c->ctx, NULL, &out, &len, err, sizeof err);
    if (c->want != NULL) {
        int same = rc == 0 && out != NULL && len == strlen(c->want) && !memcmp(out, c->want, len);
        ok(same, "%s", c->name);
        if (!same)
            diag("rc %d err '%s'\n# got : %s\n# want: %s", rc, err, out ? out : "(null)", c->want);
    } else {
        int failed = rc < 0 && out == NULL && strstr(err, c->err) != NULL &&
                     !strncmp(err, "template line ", 14);
        ok(failed, "%s: fails (%s)", c->name, err);
        if (!failed)
            diag("rc %d, wanted an error with '%s'; got '%s'", rc, c->err, out ? out : err);
    }
    free(out);
}

/* fails with code and a message holding `piece` */
static void fails_with(const char *tmpl, const char *ctx, const lamina_jinja_limits *lim,
                       int code, const char *piece, const char *what)
{
    char *out;
    char err[512] = "";
    int rc = run(tmpl, ctx, lim, &out, NULL, err, sizeof err);
    int good = rc == code && out == NULL && strstr(err, piece) != NULL;
    ok(good, "%s (%s)", what, err);
    if (!good)
        diag("rc %d (want %d), message '%s' (want '%s')", rc, code, err, piece);
    free(out);
}

static char *repeat(const char *s, int n)
{
    size_t l = strlen(s);
    char *p = malloc(l * (size_t)n + 1);
    for (int i = 0; i < n; i++)
        memcpy(p + l * (size_t)i, s, l);
    p[l * (size_t)n] = 0;
    return p;
}

static void refusals(void)
{
    fails_with("line 1\n{{ x | xmlattr }}", NULL, NULL, LAMINA_ENOTSUP,
               "template line 2: filter 'xmlattr' is not supported", "refused: unsupported filter");
    fails_with("{% if x %}\n\n{{ x | wordwrap(5) }}{% endif %}", NULL, NULL, LAMINA_ENOTSUP,
               "template line 3: filter 'wordwrap' is not supported",
               "refused: unsupported filter inside an if");
    fails_with("{% include 'other.jinja' %}", NULL, NULL, LAMINA_ENOTSUP,
               "template line 1: tag 'include' is not supported", "refused: include");
    fails_with("{% extends 'base' %}", NULL, NULL, LAMINA_ENOTSUP, "tag 'extends' is not supported",
               "refused: extends");
    fails_with("{% call m() %}x{% endcall %}", NULL, NULL, LAMINA_ENOTSUP,
               "tag 'call' is not supported", "refused: call block");
    fails_with("\n{{ s.encode('utf-8') }}", NULL, NULL, LAMINA_ENOTSUP,
               "template line 2: method 'encode' is not supported", "refused: str.encode");
    fails_with("{{ cycler('a', 'b').next() }}", NULL, NULL, LAMINA_ENOTSUP,
               "global 'cycler' is not supported", "refused: cycler");
    fails_with("{% for x in y recursive %}{% endfor %}", NULL, NULL, LAMINA_ENOTSUP,
               "recursive for loops are not supported", "refused: recursive loop");
    fails_with("{{ f(*args) }}", NULL, NULL, LAMINA_ENOTSUP, "are not supported",
               "refused: *args in a call");
    fails_with("{{ 1 | nosuchfilter }}", NULL, NULL, LAMINA_EINVAL,
               "no filter named 'nosuchfilter'", "unknown filter outside an if: load error");
    fails_with("{{ 'x'.format_map({}) }}", NULL, NULL, LAMINA_ENOTSUP,
               "method 'format_map' is not supported", "refused: str.format_map");
}

static void error_lines(void)
{
    fails_with("a\nb\n{{ 1 / 0 }}", NULL, NULL, LAMINA_EINVAL, "template line 3: division by zero",
               "division by zero names its line");
    fails_with("{% for m in messages %}\n{% if m.role == 'system' %}\n"
               "{{ raise_exception('System role not supported') }}\n{% endif %}\n{% endfor %}",
               "{\"messages\": [{\"role\": \"system\", \"content\": \"x\"}]}", NULL, LAMINA_EINVAL,
               "template line 3: raise_exception: System role not supported",
               "raise_exception: its message and line");
    fails_with("{% if true %}\n{% for x in y %}\n{% endif %}", NULL, NULL, LAMINA_EINVAL,
               "template line 3: unexpected 'endif'", "mismatched end tag names its line");
    fails_with("x\n{{ m.content.strip() }}", "{\"m\": {}}", NULL, LAMINA_EINVAL,
               "template line 2: 'dict object' has no attribute 'content'",
               "attribute of an undefined value");
    fails_with("{{ 'a' ~ b.c }}", "{}", NULL, LAMINA_EINVAL, "'b' is undefined",
               "undefined variable's attribute");
}

static void limits(void)
{
    lamina_jinja_limits lim = {0};
    fails_with("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", NULL, NULL, LAMINA_ERANGE,
               "nested deeper than 200", "runaway macro recursion is stopped");
    lim.max_depth = 10;
    fails_with("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", NULL, &lim, LAMINA_ERANGE,
               "macro calls nested deeper than 10", "macro depth limit");
    memset(&lim, 0, sizeof lim);
    lim.max_steps = 100000;
    fails_with("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
               NULL, &lim, LAMINA_ERANGE, "takes more than 100000 steps", "runaway loops are stopped");
    memset(&lim, 0, sizeof lim);
    lim.max_output = 1 << 20;
    fails_with("{% for a in range(100000) %}{{ 'x' * 100 }}{% endfor %}", NULL, &lim, LAMINA_ERANGE,
               "output is longer than 1048576 bytes", "output size limit");
    fails_with("{{ 'x' * 100000000000 }}", NULL, NULL, LAMINA_ERANGE, "string repetition",
               "string repetition bomb");
    fails_with("{{ [1] * 100000000000 }}", NULL, NULL, LAMINA_ERANGE, "list repetition",
               "list repetition bomb");
    memset(&lim, 0, sizeof lim);
    lim.max_memory = 8 << 20;
    fails_with("{% set ns = namespace(s='x' * 1000) %}{% for i in range(100000) %}"
               "{% set ns.s = ns.s ~ i %}{% endfor %}", NULL, &lim, LAMINA_ERANGE, "bytes of memory",
               "memory limit");
    fails_with("{% set ns = namespace(x=[]) %}{% for i in range(3000) %}{% set ns.x = [ns.x] %}"
               "{% endfor %}{{ ns.x }}", NULL, NULL, LAMINA_ERANGE, "nested too deeply",
               "deeply nested value: repr is bounded");
    fails_with("{% set ns = namespace(x=[]) %}{% for i in range(3000) %}{% set ns.x = [ns.x] %}"
               "{% endfor %}{{ ns.x | tojson }}", NULL, NULL, LAMINA_ERANGE, "nested too deeply",
               "deeply nested value: tojson is bounded");
    fails_with("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}", NULL, NULL, LAMINA_ERANGE,
               "nested too deeply", "a namespace holding itself");
    fails_with("{{ range(1000000) | length }}", NULL, NULL, LAMINA_ERANGE, "Range too big",
               "range is capped as in the sandbox");

    char *open = repeat("(", 5000), *close = repeat(")", 5000);
    size_t n = strlen(open) * 2 + 16;
    char *deep = malloc(n);
    snprintf(deep, n, "{{ %s1%s }}", open, close);
    fails_with(deep, NULL, NULL, LAMINA_EINVAL, "nested too deeply", "deep parentheses");
    free(deep);
    free(open);
    free(close);
    char *ifs = repeat("{% if 1 %}", 3000);
    fails_with(ifs, NULL, NULL, LAMINA_EINVAL, "nested too deeply", "deeply nested blocks");
    free(ifs);
    char *minus = repeat("-", 100000);
    n = strlen(minus) + 16;
    deep = malloc(n);
    snprintf(deep, n, "{{ %s1 }}", minus);
    fails_with(deep, NULL, NULL, LAMINA_EINVAL, "nested too deeply", "deep unary minus");
    free(deep);
    free(minus);
    char *json = repeat("[", 5000);
    n = strlen(json) + 16;
    deep = malloc(n);
    snprintf(deep, n, "{\"x\": %s", json);
    fails_with("{{ x }}", deep, NULL, LAMINA_EINVAL, "nested too deeply", "deeply nested JSON");
    free(deep);
    free(json);
}

static void api(void)
{
    char *out;
    size_t len = 9;
    char err[256] = "";
    int rc = run("", NULL, NULL, &out, &len, err, sizeof err);
    ok(rc == 0 && out && len == 0 && out[0] == 0, "empty template renders empty text");
    free(out);
    rc = run("{{ x }}", NULL, NULL, &out, &len, err, sizeof err);
    ok(rc == 0 && out && len == 0, "no context: variables are undefined");
    free(out);
    fails_with("{{ x }}", "[1]", NULL, LAMINA_EINVAL, "not an object", "context must be an object");
    fails_with("{{ x }}", "{\"x\": }", NULL, LAMINA_EINVAL, "context JSON", "bad context JSON");
    fails_with("{{ x }}", "{\"x\": \"\\ud800\"}", NULL, LAMINA_EINVAL, "lone surrogate",
               "lone surrogate in the context");
    fails_with("{{ x }}", "{\"x\": 99999999999999999999}", NULL, LAMINA_EINVAL, "out of range",
               "integer beyond 64 bits in the context");
    fails_with("a\xff", NULL, NULL, LAMINA_EINVAL, "not valid UTF-8", "template that is not UTF-8");
    rc = run("{{ x }}|{{ y }}|{{ z|tojson }}",
             "{\"x\": \"\\u00e9\\ud83d\\ude00\", \"y\": 1.0, \"z\": [1e400, -0.0, 12345678901234]}",
             NULL, &out, &len, err, sizeof err);
    ok(rc == 0 && out && !strcmp(out, "\xc3\xa9\xf0\x9f\x98\x80|1.0|[Infinity, -0.0, 12345678901234]"),
       "context JSON as json.loads reads it (%s)", out ? out : err);
    free(out);

    char *buf = NULL;
    size_t bl = 0, bc = 0;
    ok(lamina_jinja_json_str(&buf, &bl, &bc, "a\"\\\n\x01\xc3\xa9", 7) == 0 && buf &&
       !strcmp(buf, "\"a\\\"\\\\\\n\\u0001\xc3\xa9\""), "lamina_jinja_json_str escapes as JSON");
    free(buf);

    lamina_jinja *t = NULL;
    ok(lamina_jinja_parse(NULL, 5, &t, err, sizeof err) == LAMINA_EINVAL && t == NULL,
       "NULL source rejected");
    ok(lamina_jinja_parse("{{", 2, &t, NULL, 0) == LAMINA_EINVAL && t == NULL,
       "errors without an error buffer");
    /* a template is reusable and renders the same twice */
    ok(lamina_jinja_parse("{{ a }}{{ a }}", 14, &t, err, sizeof err) == 0, "parse once");
    char *o1 = NULL, *o2 = NULL;
    lamina_jinja_render(t, "{\"a\": 1}", 8, NULL, NULL, &o1, NULL, err, sizeof err);
    lamina_jinja_render(t, "{\"a\": 2}", 8, NULL, NULL, &o2, NULL, err, sizeof err);
    ok(o1 && o2 && !strcmp(o1, "11") && !strcmp(o2, "22"), "render twice with other contexts");
    free(o1);
    free(o2);
    lamina_jinja_free(t);
    lamina_jinja_free(NULL);
}

static int write_seeds(const char *dir)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/case-%03zu", dir, i);
        FILE *f = fopen(path, "wb");
        if (f == NULL) {
            perror(path);
            return 1;
        }
        fwrite(cases[i].tmpl, 1, strlen(cases[i].tmpl), f);
        fputc(0, f);
        fwrite(cases[i].ctx, 1, strlen(cases[i].ctx), f);
        fclose(f);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--write-seeds"))
        return write_seeds(argv[2]);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_case(&cases[i]);
    refusals();
    error_lines();
    limits();
    api();
    return done_testing();
}
