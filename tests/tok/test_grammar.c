/* test_grammar.c - the structured-output constraint (runtime/text/grammar.c)
 * on hand-written prefixes: accepted or not, complete or not; schemas
 * refused with their keyword and path.  With a GGUF path as argument
 * (tests/tok/grammar_bench.sh), also times one masking step over that
 * vocabulary. */
#include "config.h"

#include <locale.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

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

/* ---- random walks: from "", feed allowed bytes at random until the
 * value may end; every state on the way must allow a byte or the end
 * (completability) and the result must satisfy `valid`. ---- */

static uint64_t rng_state = 88172645463325252ull;
static unsigned rnd(unsigned n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (unsigned)(rng_state % n);
}

static int feeds(const lamina_grammar *g, const char *text, size_t n, int *can_end)
{
    lamina_gmatch *m = NULL;
    char err[64];
    if (lamina_gmatch_create(g, NULL, &m, err, sizeof err) < 0) return 0;
    int okk = lamina_gmatch_feed(m, text, n) == 0;
    if (can_end) *can_end = okk && lamina_gmatch_can_end(m);
    lamina_gmatch_free(m);
    return okk;
}

/* Walk `walks` times; returns how many ended in a value `valid` accepts. */
static int random_walks(const char *schema, int walks, int (*valid)(const char *text, const void *arg),
                        const void *arg, char *bad, size_t bad_size)
{
    lamina_grammar *g = NULL;
    char err[256];
    if (lamina_grammar_compile_text(schema, strlen(schema), &g, err, sizeof err) < 0) {
        snprintf(bad, bad_size, "compile: %s", err);
        return 0;
    }
    int good = 0;
    char *buf = malloc(4096);
    for (int w = 0; w < walks; w++) {
        size_t n = 0;
        int ended = 0;
        while (n < 4000) {
            int can_end = 0;
            feeds(g, buf, n, &can_end);
            unsigned char opts[256];
            int no = 0;
            for (int b = 1; b < 256; b++) {
                buf[n] = (char)b;
                if (feeds(g, buf, n + 1, NULL)) opts[no++] = (unsigned char)b;
            }
            if (can_end && (no == 0 || rnd(4) == 0 || n > 300)) { ended = 1; break; }
            if (no == 0) break;     /* stuck: not completable */
            /* after a while, prefer bytes that close things */
            int pick = -1;
            if (n > 120)
                for (int i = 0; i < no && pick < 0; i++)
                    if (strchr("\"]}", opts[i]) && opts[i]) pick = i;
            buf[n++] = (char)opts[pick >= 0 ? pick : (int)rnd((unsigned)no)];
        }
        buf[n] = 0;
        if (ended && valid(buf, arg)) good++;
        else if (!bad[0]) snprintf(bad, bad_size, "%s: %.200s", ended ? "invalid" : "stuck", buf);
    }
    free(buf);
    lamina_grammar_unref(g);
    return good;
}

/* validators, independent of grammar.c: jansson parses, POSIX regex matches */
static json_t *parse(const char *text)
{
    return json_loads(text, JSON_DECODE_ANY, NULL);
}

typedef struct range_arg { double lo, hi; int lo_ex, hi_ex, integer; } range_arg;
static int valid_range(const char *text, const void *arg)
{
    const range_arg *r = arg;
    json_t *j = parse(text);
    if (!j || !json_is_number(j) || (r->integer && !json_is_integer(j))) { json_decref(j); return 0; }
    double v = json_number_value(j);
    json_decref(j);
    if (strchr(text, 'e') || strchr(text, 'E')) return 0;
    return (r->lo_ex ? v > r->lo : v >= r->lo) && (r->hi_ex ? v < r->hi : v <= r->hi);
}

static int valid_regex(const char *text, const void *arg)
{
    json_t *j = parse(text);
    if (!json_is_string(j)) { json_decref(j); return 0; }
    regex_t re;
    char full[512];
    snprintf(full, sizeof full, "^(%s)$", (const char *)arg);
    int okk = regcomp(&re, full, REG_EXTENDED | REG_NOSUB) == 0;
    okk = okk && regexec(&re, json_string_value(j), 0, NULL, 0) == 0;
    regfree(&re);
    json_decref(j);
    return okk;
}

static int leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }
static int date_ok(const char *s)
{
    int y, mo, d, n = 0;
    if (strlen(s) < 10 || sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10 || s[4] != '-' || s[7] != '-')
        return 0;
    static const int mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    return y >= 1 && mo >= 1 && mo <= 12 && d >= 1 && d <= mdays[mo - 1] + (mo == 2 && leap(y));
}
static int digits(const char *s, int n)
{
    for (int i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}
static int time_ok(const char *s)
{
    if (strlen(s) < 9 || !digits(s, 2) || s[2] != ':' || !digits(s + 3, 2) || s[5] != ':' || !digits(s + 6, 2)) return 0;
    if (atoi(s) > 23 || atoi(s + 3) > 59 || atoi(s + 6) > 59) return 0;
    s += 8;
    if (*s == '.') {
        int k = 0;
        while (s[1 + k] >= '0' && s[1 + k] <= '9') k++;
        if (k == 0) return 0;
        s += 1 + k;
    }
    if (!strcmp(s, "Z")) return 1;
    return (s[0] == '+' || s[0] == '-') && strlen(s) == 6 && digits(s + 1, 2) && s[3] == ':' && digits(s + 4, 2) &&
           atoi(s + 1) <= 23 && atoi(s + 4) <= 59;
}
static int valid_format(const char *text, const void *arg)
{
    json_t *j = parse(text);
    if (!json_is_string(j)) { json_decref(j); return 0; }
    const char *s = json_string_value(j), *f = arg;
    int r = 0;
    if (!strcmp(f, "date")) r = strlen(s) == 10 && date_ok(s);
    else if (!strcmp(f, "time")) r = time_ok(s);
    else if (!strcmp(f, "date-time")) r = date_ok(s) && s[10] == 'T' && time_ok(s + 11);
    else if (!strcmp(f, "uuid")) {
        r = strlen(s) == 36;
        for (int i = 0; i < 36 && r; i++)
            r = (i == 8 || i == 13 || i == 18 || i == 23) ? s[i] == '-' : strchr("0123456789abcdefABCDEF", s[i]) && s[i];
    }
    json_decref(j);
    return r;
}

static void walks_range(const char *type, const char *bounds, range_arg r)
{
    char schema[256], bad[512] = "";
    snprintf(schema, sizeof schema, "{\"type\":\"%s\",%s}", type, bounds);
    int n = 25, good = random_walks(schema, n, valid_range, &r, bad, sizeof bad);
    ok(good == n, "%s: %d of %d random walks end in range %s", schema, good, n, bad);
}

static void walks_regex(const char *pattern_json, const char *posix, const char *extra)
{
    char schema[512], bad[512] = "";
    snprintf(schema, sizeof schema, "{\"type\":\"string\",\"pattern\":\"%s\"%s}", pattern_json, extra);
    int n = 25, good = random_walks(schema, n, valid_regex, posix, bad, sizeof bad);
    ok(good == n, "%s: %d of %d random walks match ^(%s)$ %s", schema, good, n, posix, bad);
}

static void walks_format(const char *f)
{
    char schema[256], bad[512] = "";
    snprintf(schema, sizeof schema, "{\"type\":\"string\",\"format\":\"%s\"}", f);
    int n = 25, good = random_walks(schema, n, valid_format, f, bad, sizeof bad);
    ok(good == n, "%s: %d of %d random walks are valid %s %s", schema, good, n, f, bad);
}

/* format and pattern: both validators (regex on the decoded string) */
typedef struct fp_arg { const char *f, *posix; } fp_arg;
static int valid_format_pattern(const char *text, const void *arg)
{
    const fp_arg *a = arg;
    return valid_format(text, a->f) && valid_regex(text, a->posix);
}

static void walks_format_pattern(const char *f, const char *pattern_json, const char *posix)
{
    char schema[256], bad[512] = "";
    snprintf(schema, sizeof schema, "{\"type\":\"string\",\"format\":\"%s\",\"pattern\":\"%s\"}", f, pattern_json);
    fp_arg a = { f, posix };
    int n = 25, good = random_walks(schema, n, valid_format_pattern, &a, bad, sizeof bad);
    ok(good == n, "%s: %d of %d random walks are valid %s matching ^(%s)$ %s", schema, good, n, f, posix, bad);
}

/* multipleOf: the text read exactly as a decimal; a multiple of
 * k * 10^-dec within [lo, hi] */
typedef struct mult_arg { long long k; int dec; long long lo, hi; int integer; } mult_arg;
static int valid_mult(const char *text, const void *arg)
{
    const mult_arg *a = arg;
    const char *p = text;
    while (*p == ' ' || *p == '\n' || *p == '\t') p++;
    int neg = *p == '-';
    if (neg) p++;
    __int128 ip = 0, fr = 0;
    int nf = 0;
    if (*p < '0' || *p > '9') return 0;
    while (*p >= '0' && *p <= '9') ip = ip * 10 + (*p++ - '0');
    if (*p == '.') {
        if (a->integer) return 0;
        p++;
        while (*p >= '0' && *p <= '9') {
            if (nf < a->dec) { fr = fr * 10 + (*p - '0'); nf++; }
            else if (*p != '0') return 0;   /* a digit finer than the step */
            p++;
        }
    }
    if (*p) return 0;
    while (nf < a->dec) { fr *= 10; nf++; }
    __int128 scale = 1;
    for (int i = 0; i < a->dec; i++) scale *= 10;
    __int128 v = ip * scale + fr;
    if (neg) v = -v;
    return v % a->k == 0 && v >= (__int128)a->lo * scale && v <= (__int128)a->hi * scale;
}

static void walks_mult(const char *schema, mult_arg m)
{
    char bad[512] = "";
    int n = 25, good = random_walks(schema, n, valid_mult, &m, bad, sizeof bad);
    ok(good == n, "%s: %d of %d random walks are multiples in range %s", schema, good, n, bad);
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
    /* the keywords with automata and bounds */
    static const char *const schema2 =
        "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\",\"pattern\":\"^[A-Za-z]{2,8}-[0-9]{1,6}$\"},"
        "\"day\":{\"type\":\"string\",\"format\":\"date-time\"},\"note\":{\"type\":\"string\",\"pattern\":\".{0,40}\"},"
        "\"n\":{\"type\":\"integer\",\"minimum\":10,\"maximum\":250},\"x\":{\"type\":\"number\",\"minimum\":-1,\"maximum\":1}},"
        "\"required\":[\"id\",\"day\",\"note\",\"n\",\"x\"]}";
    static const char *const prefixes2[] = { "{\"id\":\"ab", "{\"id\":\"ab-12\",\"day\":\"2024-0",
                                             "{\"id\":\"ab-12\",\"day\":\"2024-01-01T00:00:00Z\",\"note\":\"hello ",
                                             "{\"id\":\"ab-1\",\"day\":\"2024-01-01T00:00:00Z\",\"note\":\"\",\"n\":1",
                                             "{\"id\":\"ab-1\",\"day\":\"2024-01-01T00:00:00Z\",\"note\":\"\",\"n\":12,\"x\":0.", NULL };
    /* a GBNF grammar: JSON-like values, and a list */
    static const char *const gbnf =
        "root ::= value | list\n"
        "value ::= object | array | string | [0-9]+ | \"true\" | \"false\" | \"null\"\n"
        "object ::= \"{\" ws (string \":\" ws value (\",\" ws string \":\" ws value)*)? \"}\"\n"
        "array ::= \"[\" ws (value (\",\" ws value)*)? \"]\"\n"
        "string ::= \"\\\"\" ([^\"\\\\\\x00-\\x1f] | \"\\\\\" [\"\\\\nt])* \"\\\"\"\n"
        "ws ::= [ \\n]?\n"
        "list ::= (\"- \" [^\\n]+ \"\\n\")+\n";
    static const char *const prefixes3[] = { "", "{\"name\": \"Bob", "{\"a\": [1, {\"b\": ", "- milk\n- eg", NULL };
    float *logits = malloc((size_t)nv * sizeof *logits);
    for (int any = 0; any < 4; any++) {
        lamina_grammar *g = NULL;
        const char *const *pre = any == 3 ? prefixes3 : any == 2 ? prefixes2 : prefixes;
        if (any == 3) {
            if (lamina_grammar_compile_gbnf(gbnf, strlen(gbnf), &g, err, sizeof err) < 0) {
                diag("bench: gbnf: %s", err);
                continue;
            }
        } else if (any == 1) lamina_grammar_compile(NULL, &g, err, sizeof err);
        else lamina_grammar_compile_text(any ? schema2 : schema, strlen(any ? schema2 : schema), &g, err, sizeof err);
        for (int i = 0; pre[i]; i++) {
            lamina_gmatch *m = NULL;
            lamina_gmatch_create(g, v, &m, err, sizeof err);
            if (lamina_gmatch_feed(m, pre[i], strlen(pre[i])) < 0) { diag("bench: %s refused", pre[i]); lamina_gmatch_free(m); continue; }
            int reps = 20, allowed = 0;
            double t = now();
            double ms = 0, first = 0;   /* GBNF: the first step also fills the matcher's memo */
            for (int r = 0; r < reps; r++) {
                for (int32_t k = 0; k < nv; k++) logits[k] = 0;
                t = now();
                lamina_gmatch_mask(m, logits);
                if (r == 0) first = (now() - t) * 1e3;
                ms += (now() - t) * 1e3 / reps;
            }
            for (int32_t k = 0; k < nv; k++) allowed += logits[k] == 0;
            diag("mask %-7s after %-42s %7.3f ms/step (first %.3f), %d tokens allowed",
                 any == 3 ? "gbnf" : any == 1 ? "json" : any ? "schema2" : "schema", pre[i], ms, first, allowed);
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
    setlocale(LC_CTYPE, "C.UTF-8");     /* the POSIX regex checks see characters */
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

    /* numeric bounds: a prefix only if some completion is in range */
    const char *ir = "{\"type\":\"integer\",\"minimum\":10,\"maximum\":250}";
    check(ir, "3", 'v');            /* 30..39 */
    check(ir, "1", 'v');            /* 10..19, not 1 */
    check(ir, "26", 'c');
    check(ir, "260", 'x');
    check(ir, "250", 'c');
    check(ir, "251", 'x');
    check(ir, "0", 'x');
    check(ir, "-", 'x');
    check(ir, "300", 'x');
    check(ir, "1000", 'x');
    check(ir, "9", 'v');
    check(ir, "99", 'c');
    check(ir, "99 ", 'x');
    check("{\"type\":\"array\",\"items\":{\"type\":\"integer\",\"minimum\":10,\"maximum\":250}}", "[9,", 'x');
    check("{\"type\":\"array\",\"items\":{\"type\":\"integer\",\"minimum\":10,\"maximum\":250}}", "[99,10]", 'd');
    const char *is = "{\"type\":\"integer\",\"minimum\":-5,\"maximum\":5}";
    check(is, "-", 'v');
    check(is, "-5", 'c');
    check(is, "-6", 'x');
    check(is, "-0", 'c');
    check(is, "-1", 'c');
    check(is, "-10", 'x');
    check(is, "5", 'c');
    check(is, "6", 'x');
    check(is, "05", 'x');
    const char *ie = "{\"type\":\"integer\",\"exclusiveMinimum\":0,\"exclusiveMaximum\":10}";
    check(ie, "0", 'x');
    check(ie, "1", 'c');
    check(ie, "10", 'x');
    check(ie, "9", 'c');
    check("{\"type\":\"integer\",\"minimum\":0,\"exclusiveMinimum\":true}", "0", 'x');
    check("{\"type\":\"integer\",\"minimum\":0,\"exclusiveMinimum\":true}", "1", 'c');
    check("{\"type\":\"integer\",\"minimum\":2.5}", "2", 'v');    /* 20.. */
    check("{\"type\":\"integer\",\"minimum\":2.5}", "3", 'c');
    check("{\"type\":\"integer\",\"maximum\":-1000}", "-999", 'v');
    check("{\"type\":\"integer\",\"maximum\":-1000}", "-1000", 'c');
    check("{\"type\":\"integer\",\"minimum\":9999999999999999}", "9999999999999999", 'c');
    const char *nr = "{\"type\":\"number\",\"minimum\":0.5,\"maximum\":1.5}";
    check(nr, "0", 'v');
    check(nr, "0.", 'v');
    check(nr, "0.4", 'x');
    check(nr, "0.5", 'c');
    check(nr, "0.50", 'c');
    check(nr, "0.49", 'x');
    check(nr, "1", 'c');
    check(nr, "1.5", 'c');
    check(nr, "1.50", 'c');
    check(nr, "1.51", 'x');
    check(nr, "2", 'x');
    check(nr, "1e", 'x');           /* no exponent under bounds */
    check(nr, "-", 'x');
    const char *nx = "{\"type\":\"number\",\"exclusiveMaximum\":1}";
    check(nx, "1", 'x');
    check(nx, "0.9999999999999998", 'c');
    check(nx, "0.9999999999999999", 'x');   /* above the largest double below 1 (0.99999999999999988898) */
    check(nx, "-1e5", 'x');
    check(nx, "-12345.5", 'c');
    check("{\"minimum\":0}", "-0", 'c');    /* implies a number; -0 is 0 */
    check("{\"minimum\":0}", "-1", 'x');
    check("{\"minimum\":0}", "0.25", 'c');
    check("{\"type\":\"string\",\"minimum\":3}", "\"x\"", 'd');   /* bounds only constrain numbers */
    check("{\"enum\":[1,5,20],\"minimum\":3}", "1", 'x');
    check("{\"enum\":[1,5,20],\"minimum\":3}", "5", 'd');
    refuse("{\"type\":\"integer\",\"minimum\":5,\"maximum\":3}", "no integer fits");
    refuse("{\"type\":\"number\",\"minimum\":1e20}", "no number fits");
    refuse("{\"type\":\"integer\",\"minimum\":\"x\"}", "keyword 'minimum' at $: expected a number");
    refuse("{\"type\":\"number\",\"maximum\":18014398509481985}", "beyond 2^53");
    walks_range("integer", "\"minimum\":10,\"maximum\":250", (range_arg){ 10, 250, 0, 0, 1 });
    walks_range("integer", "\"minimum\":-37,\"exclusiveMaximum\":-3", (range_arg){ -37, -3, 0, 1, 1 });
    walks_range("integer", "\"minimum\":123456789", (range_arg){ 123456789, 1e300, 0, 0, 1 });
    walks_range("number", "\"minimum\":-1.25,\"maximum\":3.75", (range_arg){ -1.25, 3.75, 0, 0, 0 });
    walks_range("number", "\"exclusiveMinimum\":0,\"exclusiveMaximum\":0.001", (range_arg){ 0, 0.001, 1, 1, 0 });
    walks_range("number", "\"maximum\":-0.1", (range_arg){ -1e300, -0.1, 0, 0, 0 });
    /* formats */
    const char *fd = "{\"type\":\"string\",\"format\":\"date\"}";
    check(fd, "\"2024-02-29\"", 'd');
    check(fd, "\"2000-02-29\"", 'd');
    check(fd, "\"2023-02-29", 'x');
    check(fd, "\"1900-02-29", 'x');
    check(fd, "\"2023-02-2", 'v');
    check(fd, "\"2024-13", 'x');
    check(fd, "\"2024-04-31", 'x');
    check(fd, "\"2024-04-30\"", 'd');
    check(fd, "\"0000", 'x');
    check(fd, "\"2024-1", 'v');
    check(fd, "\"2024-01-01T", 'x');
    const char *ft = "{\"type\":\"string\",\"format\":\"time\"}";
    check(ft, "\"23:59:59Z\"", 'd');
    check(ft, "\"12:00:00.123+05:30\"", 'd');
    check(ft, "\"12:00:00\"", 'x');
    check(ft, "\"24", 'x');
    check(ft, "\"12:60", 'x');
    check("{\"format\":\"date-time\"}", "\"2024-03-01T07:08:09.5-01:00\"", 'd');
    check("{\"format\":\"date-time\"}", "\"2024-03-01 07", 'x');
    const char *fu = "{\"type\":\"string\",\"format\":\"uuid\"}";
    check(fu, "\"123e4567-e89b-12d3-A456-426614174000\"", 'd');
    check(fu, "\"123e4567e", 'x');
    check(fu, "\"g", 'x');
    check("{\"type\":\"string\",\"format\":\"uri\"}", "\"not checked\"", 'd');   /* annotation only */
    const char *fe = "{\"type\":\"string\",\"format\":\"email\"}";
    check(fe, "\"a.b+c@mail.example.io\"", 'd');
    check(fe, "\"a@b", 'v');
    check(fe, "\"a@b\"", 'x');
    check(fe, "\"@", 'x');
    const char *f4 = "{\"type\":\"string\",\"format\":\"ipv4\"}";
    check(f4, "\"192.168.0.1\"", 'd');
    check(f4, "\"01", 'x');
    check(f4, "\"256", 'x');
    check(f4, "\"1.2.3\"", 'x');
    check("{\"type\":\"string\",\"format\":\"date\",\"maxLength\":10}", "\"2024-01-01\"", 'd');
    refuse("{\"type\":\"string\",\"format\":\"date\",\"maxLength\":9}", "no string matches");
    /* format and pattern together: both automata must accept */
    const char *fp = "{\"type\":\"string\",\"format\":\"date\",\"pattern\":\"^2024-.*$\"}";
    check(fp, "\"2024-02-29\"", 'd');
    check(fp, "\"2023-", 'x');
    check(fp, "\"2024-02-30", 'x');
    const char *fq = "{\"type\":\"string\",\"format\":\"email\",\"pattern\":\".*@example\\\\.com\"}";
    check(fq, "\"ann@example.com\"", 'd');
    check(fq, "\"ann@b.com\"", 'x');
    check("{\"enum\":[\"2024-01-01\",\"2025-01-01\"],\"format\":\"date\",\"pattern\":\"^2025.*\"}", "\"2024-01-01\"", 'x');
    check("{\"enum\":[\"2024-01-01\",\"2025-01-01\"],\"format\":\"date\",\"pattern\":\"^2025.*\"}", "\"2025-01-01\"", 'd');
    refuse("{\"type\":\"string\",\"format\":\"date\",\"pattern\":\"a\"}",
           "keywords 'format' ('date') and 'pattern' at $: no string meets both");
    walks_format_pattern("date", "^20[0-9][0-9]-0[1-6].*", "20[0-9][0-9]-0[1-6].*");
    walks_format_pattern("uuid", "[0-9]+-.*", "[0-9]+-.*");
    walks_format_pattern("time", ".*Z", ".*Z");
    check("{\"enum\":[\"2024-02-30\",\"2024-02-28\"],\"format\":\"date\"}", "\"2024-02-30\"", 'x');
    check("{\"enum\":[\"2024-02-30\",\"2024-02-28\"],\"format\":\"date\"}", "\"2024-02-28\"", 'd');
    walks_format("date");
    walks_format("time");
    walks_format("date-time");
    walks_format("uuid");
    /* patterns (generated strings match the whole pattern) */
    const char *pz = "{\"type\":\"string\",\"pattern\":\"^[a-z]+$\"}";
    check(pz, "\"abc\"", 'd');
    check(pz, "\"\"", 'x');
    check(pz, "\"aB", 'x');
    check(pz, "\"a\\u0062", 'x');   /* no \u escapes in constrained strings */
    const char *pp = "{\"pattern\":\"^\\\\d{3}-\\\\d{4}$\"}";
    check(pp, "\"555-1234\"", 'd');
    check(pp, "\"555-123\"", 'x');
    check(pp, "\"5555", 'x');
    const char *pa = "{\"type\":\"string\",\"pattern\":\"(ab|cd)*e\"}";
    check(pa, "\"ababcde\"", 'd');
    check(pa, "\"abc", 'v');
    check(pa, "\"ac", 'x');
    check(pa, "\"e\"", 'd');
    const char *pd = "{\"type\":\"string\",\"pattern\":\"a.c\"}";
    check(pd, "\"a\xc3\xa9" "c\"", 'd');
    check(pd, "\"a\\nc", 'x');       /* . is not a newline */
    check(pd, "\"a\\tc\"", 'd');
    check(pd, "\"a\xc3(", 'x');
    check("{\"pattern\":\"[^a]\"}", "\"\xc3\xa9\"", 'd');
    check("{\"pattern\":\"[^a]\"}", "\"\\n\"", 'd');
    check("{\"pattern\":\"[^a]\"}", "\"a", 'x');
    check("{\"pattern\":\"[^\\\\d]\"}", "\"\xc3\xa9", 'x');   /* with \\d: ASCII only */
    check("{\"pattern\":\"[^\\\\d]\"}", "\"x\"", 'd');
    check("{\"pattern\":\"a\\\"b\"}", "\"a\\\"b\"", 'd');
    check("{\"pattern\":\"a\\\\\\\\b\"}", "\"a\\\\b\"", 'd');
    check("{\"pattern\":\"^a+$\",\"maxLength\":3,\"minLength\":2}", "\"aaa\"", 'd');
    check("{\"pattern\":\"^a+$\",\"maxLength\":3,\"minLength\":2}", "\"aaaa", 'x');
    check("{\"pattern\":\"^a+$\",\"maxLength\":3,\"minLength\":2}", "\"a\"", 'x');
    check("{\"pattern\":\"b\"}", "\"b\"", 'd');
    check("{\"pattern\":\"b\"}", "\"ab", 'x');      /* unanchored patterns are generated anchored */
    check("{\"pattern\":\"x{2,}\"}", "\"xxxxx\"", 'd');
    check("{\"pattern\":\"x{2,}\"}", "\"x\"", 'x');
    check("{\"pattern\":\"^x{,2}y$\"}", "\"xxy\"", 'd');
    check("{\"pattern\":\"^(?:a|b)?c$|^z$\"}", "\"bc\"", 'd');
    check("{\"pattern\":\"^(?:a|b)?c$|^z$\"}", "\"z\"", 'd');
    check("{\"pattern\":\"^(?P<n>q)\\\\.\\\\s$\"}", "\"q. \"", 'd');
    check("{\"pattern\":\"\\\\u00e9\\\\x41\"}", "\"\xc3\xa9" "A\"", 'd');
    check("{\"pattern\":\"\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87\"}", "\"\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87\"", 'd');
    check("{\"pattern\":\"[\xd0\xb0-\xd1\x8f]+\"}", "\"\xd0\xb4\xd0\xb0\"", 'd');
    check("{\"pattern\":\"^\\\\w+@\\\\w+\\\\.com$\"}", "\"a_1@b.com\"", 'd');
    check("{\"enum\":[\"ab\",\"cd\"],\"pattern\":\"^a[a-z]$\"}", "\"cd\"", 'x');
    check("{\"enum\":[\"ab\",\"cd\"],\"pattern\":\"^a[a-z]$\"}", "\"ab\"", 'd');
    check("{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\",\"pattern\":\"^[A-Z]{2}[0-9]{2}$\"}},"
          "\"required\":[\"id\"]}", "{\"id\":\"AB12\"}", 'd');
    check("{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\",\"pattern\":\"^[A-Z]{2}[0-9]{2}$\"}},"
          "\"required\":[\"id\"]}", "{\"id\":\"AB1\"}", 'x');
    refuse("{\"pattern\":\"(?=a)\"}", "keyword 'pattern' at $: group '(?=' at position 0 (lookaround or flags) is not supported");
    refuse("{\"properties\":{\"p\":{\"pattern\":\"(a)\\\\1\"}}}", "keyword 'pattern' at $.properties.p: backreference '\\1' at position 3");
    refuse("{\"pattern\":\"a*?\"}", "lazy quantifier at position 2");
    refuse("{\"pattern\":\"a++\"}", "possessive quantifier at position 2");
    refuse("{\"pattern\":\"\\\\p{L}\"}", "unicode property class '\\p' at position 0");
    refuse("{\"pattern\":\"a^\"}", "anchor '^' at position 1");
    refuse("{\"pattern\":\"a$b\"}", "anchor '$' at position 1");
    refuse("{\"pattern\":\"(a\"}", "missing ')'");
    refuse("{\"pattern\":\"a)\"}", "unbalanced ')' at position 1");
    refuse("{\"pattern\":\"[a\"}", "missing ']'");
    refuse("{\"pattern\":\"[z-a]\"}", "bad range at position 2");
    refuse("{\"pattern\":\"a{5000}\"}", "counts above 1000");
    refuse("{\"pattern\":\"a{2\"}", "'{' at position 1 is not a quantifier");
    refuse("{\"pattern\":\"*a\"}", "nothing to repeat at position 0");
    refuse("{\"pattern\":\"\\\\bx\"}", "assertion '\\b' at position 0");
    refuse("{\"pattern\":\"((a{1000}){1000}){1000}\"}", "the pattern is too large (more than 20000 NFA states)");
    refuse("{\"pattern\":\"(a|b)*a(a|b){12}\"}", "too complex (more than 4000 automaton states");
    refuse("{\"pattern\":\"[\\\\x00-\\\\x07]\"}", "no string matches");
    refuse("{\"pattern\":3}", "keyword 'pattern' at $: expected a string");
    walks_regex("^[a-c]{2,5}(x|yz)*[0-9]$", "[a-c]{2,5}(x|yz)*[0-9]", "");
    walks_regex("(ab|cd)+e?", "(ab|cd)+e?", "");
    walks_regex("[^a-y]{3}", "[^a-y]{3}", "");
    walks_regex("\\\\w+@\\\\w+\\\\.(com|org)", "[A-Za-z0-9_]+@[A-Za-z0-9_]+[.](com|org)", ",\"maxLength\":12");
    walks_regex("q.{0,4}", "q.{0,4}", "");
    walks_regex("[\\\"\\\\\\\\/]+t", "[\"\\\\/]+t", "");
    /* refused */
    refuse("{\"type\":\"object\",\"properties\":{\"x\":{\"patternProperties\":{}}}}",
           "keyword 'patternProperties' at $.properties.x is not supported");
    /* multipleOf, exact, with and without bounds */
    const char *m3 = "{\"type\":\"integer\",\"multipleOf\":3}";
    check(m3, "12", 'c');
    check(m3, "13", 'v');       /* 132 is one */
    check(m3, "-9", 'c');
    check(m3, "0", 'c');
    check(m3, "1.", 'x');
    const char *m5 = "{\"type\":\"integer\",\"multipleOf\":5,\"minimum\":0,\"maximum\":12}";
    check(m5, "1", 'v');
    check(m5, "10", 'c');
    check(m5, "5", 'c');
    check(m5, "50", 'x');
    check(m5, "2", 'x');
    check(m5, "-1", 'x');
    const char *mc = "{\"type\":\"number\",\"multipleOf\":0.01}";
    check(mc, "1.25", 'c');
    check(mc, "1.250", 'c');
    check(mc, "1.255", 'x');
    check(mc, "-0.5", 'c');
    check(mc, "1e", 'x');       /* no exponent under multipleOf */
    check("{\"type\":\"integer\",\"multipleOf\":0.5}", "7", 'c');
    check("{\"type\":\"integer\",\"multipleOf\":0.4}", "3", 'v');
    check("{\"type\":\"integer\",\"multipleOf\":0.4}", "4", 'c');
    check("{\"multipleOf\":2.5,\"maximum\":5,\"exclusiveMinimum\":0}", "2.5", 'c');
    check("{\"multipleOf\":2.5,\"maximum\":5,\"exclusiveMinimum\":0}", "3", 'x');
    check("{\"enum\":[3,4,6],\"multipleOf\":3}", "4", 'x');
    check("{\"enum\":[3,4,6],\"multipleOf\":3}", "6", 'd');
    walks_mult("{\"type\":\"integer\",\"multipleOf\":7919,\"minimum\":-100000,\"maximum\":1000000}",
               (mult_arg){ 7919, 0, -100000, 1000000, 1 });
    walks_mult("{\"type\":\"integer\",\"multipleOf\":3}", (mult_arg){ 3, 0, -(1ll << 62), 1ll << 62, 1 });
    walks_mult("{\"type\":\"number\",\"multipleOf\":0.05,\"minimum\":-2,\"maximum\":30}",
               (mult_arg){ 5, 2, -2, 30, 0 });
    walks_mult("{\"type\":\"number\",\"multipleOf\":0.001,\"minimum\":0,\"maximum\":1}",
               (mult_arg){ 1, 3, 0, 1, 0 });
    refuse("{\"type\":\"integer\",\"multipleOf\":0}", "keyword 'multipleOf' at $: expected a number above 0");
    refuse("{\"type\":\"number\",\"multipleOf\":1e-20}", "more than 16 decimal places");
    refuse("{\"type\":\"number\",\"multipleOf\":1e30}", "at most 10^17");
    refuse("{\"type\":\"integer\",\"multipleOf\":7,\"minimum\":1,\"maximum\":6}", "minimum/maximum/multipleOf at $: no integer fits");
    refuse("{\"type\":\"integer\",\"multipleOf\":\"2\"}", "expected a number above 0");
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
