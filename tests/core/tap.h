/* tap.h - minimal TAP output for the core's C tests. */
#ifndef CORE_TAP_H
#define CORE_TAP_H

#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed;

#define OK(cond, ...) do {                                         \
        tap_n++;                                                   \
        if (cond) { printf("ok %d - ", tap_n); }                   \
        else { printf("not ok %d - ", tap_n); tap_failed++; }      \
        printf(__VA_ARGS__);                                       \
        printf("\n");                                              \
    } while (0)

/* ok when `hay` contains `needle`; shows both otherwise. */
#define OK_HAS(hay, needle, ...) do {                              \
        const char *h_ = (hay), *n_ = (needle);                    \
        int c_ = h_ != NULL && strstr(h_, n_) != NULL;             \
        OK(c_, __VA_ARGS__);                                       \
        if (!c_) printf("#   expected '%s' in '%s'\n", n_, h_ ? h_ : "(null)"); \
    } while (0)

static inline int tap_done(void)
{
    printf("1..%d\n", tap_n);
    return tap_failed ? 1 : 0;
}

#endif
