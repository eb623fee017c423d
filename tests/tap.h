/* tap.h - TAP output for the C tests (tok/, engine/, server/): ok(), diag(),
 * skip_all(), done_testing(), ids_eq(). */
#ifndef LAMINA_TESTS_TAP_H
#define LAMINA_TESTS_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_n, tap_fail;

static int ok(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3), unused));
static int ok(int cond, const char *fmt, ...)
{
    va_list ap;
    tap_n++;
    if (!cond)
        tap_fail++;
    printf("%sok %d - ", cond ? "" : "not ", tap_n);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    return cond;
}

static void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2), unused));
static void diag(const char *fmt, ...)
{
    va_list ap;
    printf("# ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

static void skip_all(const char *why) __attribute__((unused));
static void skip_all(const char *why)
{
    printf("1..0 # SKIP %s\n", why);
}

static int done_testing(void) __attribute__((unused));
static int done_testing(void)
{
    printf("1..%d\n", tap_n);
    return tap_fail ? 1 : 0;
}

/* ids equal; prints both on mismatch */
static int ids_eq(const int32_t *got, size_t ng, const int32_t *want, size_t nw, const char *what)
    __attribute__((unused));
static int ids_eq(const int32_t *got, size_t ng, const int32_t *want, size_t nw, const char *what)
{
    int same = ng == nw && (nw == 0 || memcmp(got, want, nw * sizeof(int32_t)) == 0);
    ok(same, "%s", what);
    if (!same) {
        printf("#   got :");
        for (size_t i = 0; i < ng; i++)
            printf(" %d", (int)got[i]);
        printf("\n#   want:");
        for (size_t i = 0; i < nw; i++)
            printf(" %d", (int)want[i]);
        printf("\n");
    }
    return same;
}

#endif
