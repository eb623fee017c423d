/*
 * version.h - dotted numeric version strings.
 *
 * A version is a sequence of decimal components separated by '.', compared
 * numerically component by component ("7.2.0" > "6.3.60303", "1.10" >
 * "1.9").  Missing trailing components count as 0 ("7.2" == "7.2.0").  A
 * component may carry a non-numeric suffix ("22.3.6-1+deb12", "5.2.0-rc1"):
 * the digits before it are used and the rest of the string is ignored.  A
 * string that does not start with a digit is not a version.
 * Internal to liblamina.
 */
#ifndef LAMINA_VERSION_H
#define LAMINA_VERSION_H

#include <stddef.h>
#include <stdint.h>

#define LAMINA_VERSION_MAX_PARTS 8

typedef struct lamina_version {
    uint64_t part[LAMINA_VERSION_MAX_PARTS];
    int n;                      /* components present, >= 1 */
} lamina_version;

/* Parse `s`.  Returns 0, or LAMINA_EINVAL when `s` is NULL, empty, does
 * not start with a digit, or a component overflows 64 bits. */
int lamina_version_parse(const char *s, lamina_version *out);

/* 1 when `s` is a plain dotted numeric ("1", "1.2.3"; no suffix). */
int lamina_version_is_plain(const char *s);

/* Compare two parsed versions over the first `depth` components (0 = all):
 * <0, 0, >0. */
int lamina_version_cmp_parsed(const lamina_version *a, const lamina_version *b,
                              int depth);

/* Compare two strings.  Returns 0 and sets *cmp (<0, 0, >0), or
 * LAMINA_EINVAL when either is not a version. */
int lamina_version_cmp(const char *a, const char *b, int *cmp);

#endif
