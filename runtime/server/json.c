/* json.c - JSON request bodies with limits, typed fields, times. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/server.h"

double srv_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double srv_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void srv_time_rfc3339(double t, char *buf, size_t size)
{
    time_t sec = (time_t)floor(t);
    long ns = (long)((t - (double)sec) * 1e9);
    if (ns < 0) ns = 0;
    if (ns > 999999999) ns = 999999999;
    struct tm tm;
    gmtime_r(&sec, &tm);
    char day[32];
    strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, size, "%s.%09ldZ", day, ns);
}

/* Deepest nesting of arrays and objects, strings skipped. */
static int json_depth(const char *p, size_t n)
{
    int depth = 0, max = 0, in_str = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (in_str) {
            if (c == '\\') i++;
            else if (c == '"') in_str = 0;
            continue;
        }
        if (c == '"') in_str = 1;
        else if (c == '{' || c == '[') { if (++depth > max) max = depth; }
        else if (c == '}' || c == ']') depth--;
    }
    return max;
}

int srv_json_parse(const char *text, size_t len, int max_depth, json_t **out,
                   char *err, size_t err_size)
{
    *out = NULL;
    if (len == 0) {
        snprintf(err, err_size, "empty request body: expected a JSON object");
        return LAMINA_EINVAL;
    }
    int d = json_depth(text, len);
    if (d > max_depth) {
        snprintf(err, err_size, "JSON nested %d levels deep, more than the limit of %d", d, max_depth);
        return LAMINA_EINVAL;
    }
    json_error_t je;
    json_t *j = json_loadb(text, len, 0, &je);
    if (!j) {
        snprintf(err, err_size, "invalid JSON at line %d, column %d: %s", je.line, je.column, je.text);
        return LAMINA_EINVAL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        snprintf(err, err_size, "the request body must be a JSON object");
        return LAMINA_EINVAL;
    }
    *out = j;
    return 0;
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE: case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

int srv_json_str(json_t *o, const char *key, const char **out, char *err, size_t err_size)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v)) {
        snprintf(err, err_size, "%s: expected a string, got %s", key, type_name(v));
        return -1;
    }
    *out = json_string_value(v);
    return 1;
}

int srv_json_bool(json_t *o, const char *key, int *out, char *err, size_t err_size)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v)) {
        snprintf(err, err_size, "%s: expected true or false, got %s", key, type_name(v));
        return -1;
    }
    *out = json_is_true(v);
    return 1;
}

int srv_json_num(json_t *o, const char *key, double *out, char *err, size_t err_size)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_number(v)) {
        snprintf(err, err_size, "%s: expected a number, got %s", key, type_name(v));
        return -1;
    }
    double x = json_number_value(v);
    if (!isfinite(x)) {
        snprintf(err, err_size, "%s: expected a finite number", key);
        return -1;
    }
    *out = x;
    return 1;
}

int srv_json_int(json_t *o, const char *key, int64_t lo, int64_t hi, int64_t *out,
                 char *err, size_t err_size)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    int64_t x;
    if (json_is_integer(v)) {
        x = (int64_t)json_integer_value(v);
    } else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
               fabs(json_real_value(v)) < 9e15) {
        x = (int64_t)json_real_value(v);          /* 5.0 is 5 */
    } else {
        snprintf(err, err_size, "%s: expected an integer, got %s", key, type_name(v));
        return -1;
    }
    if (x < lo || x > hi) {
        snprintf(err, err_size, "%s: expected an integer from %lld to %lld, got %lld", key,
                 (long long)lo, (long long)hi, (long long)x);
        return -1;
    }
    *out = x;
    return 1;
}

/* Go-style durations: [-]N(h|m|s|ms|us|ns) repeated, or a plain number
 * of seconds. */
static int parse_duration(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end != s && *end == 0) { *out = v; return 0; }
    const char *p = s;
    int neg = 0;
    if (*p == '-') { neg = 1; p++; }
    else if (*p == '+') p++;
    if (!*p) return -1;
    double total = 0;
    while (*p) {
        double x = strtod(p, &end);
        if (end == p || !isfinite(x)) return -1;
        p = end;
        double unit;
        if (!strncmp(p, "ms", 2)) { unit = 1e-3; p += 2; }
        else if (!strncmp(p, "us", 2)) { unit = 1e-6; p += 2; }
        else if (!strncmp(p, "ns", 2)) { unit = 1e-9; p += 2; }
        else if (*p == 'h') { unit = 3600; p++; }
        else if (*p == 'm') { unit = 60; p++; }
        else if (*p == 's') { unit = 1; p++; }
        else return -1;
        total += x * unit;
    }
    *out = neg ? -total : total;
    return 0;
}

int srv_json_duration(json_t *o, const char *key, double *out, char *err, size_t err_size)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (json_is_number(v)) {
        *out = json_number_value(v);
        if (!isfinite(*out)) { snprintf(err, err_size, "%s: expected a finite number", key); return -1; }
        return 1;
    }
    if (json_is_string(v) && parse_duration(json_string_value(v), out) == 0) return 1;
    snprintf(err, err_size, "%s: expected seconds or a duration such as \"5m\" or \"-1\"", key);
    return -1;
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0 when invalid
 * (overlong forms, surrogates and code points above U+10FFFF included). */
static size_t utf8_valid(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    size_t len;
    uint32_t cp;
    if ((c & 0xe0) == 0xc0) { len = 2; cp = c & 0x1f; }
    else if ((c & 0xf0) == 0xe0) { len = 3; cp = c & 0x0f; }
    else if ((c & 0xf8) == 0xf0) { len = 4; cp = c & 0x07; }
    else return 0;
    if (len > n) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return 0;
    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return len;
}

json_t *srv_json_text(const char *text, size_t len)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t bad = 0;
    for (size_t i = 0; i < len;) {
        size_t k = utf8_valid(s + i, len - i);
        if (k == 0 || s[i] == 0) { bad++; i++; } else i += k;
    }
    if (bad == 0) return json_stringn_nocheck(text, len);
    char *out = malloc(len + 2 * bad + 1);        /* each bad byte: 3 bytes of U+FFFD */
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t k = utf8_valid(s + i, len - i);
        if (k == 0 || s[i] == 0) {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        } else {
            memcpy(out + o, s + i, k);
            o += k;
            i += k;
        }
    }
    json_t *j = json_stringn_nocheck(out, o);
    free(out);
    return j;
}
