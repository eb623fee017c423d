/* version.c - dotted numeric version strings (see version.h). */
#include "config.h"

#include <string.h>

#include "lamina/plugin.h"
#include "version.h"

int lamina_version_parse(const char *s, lamina_version *out)
{
    memset(out, 0, sizeof(*out));
    if (s == NULL || *s < '0' || *s > '9')
        return LAMINA_EINVAL;
    const char *p = s;
    for (;;) {
        uint64_t v = 0;
        if (*p < '0' || *p > '9')
            break;              /* "1.2.x": stop before the non-number */
        while (*p >= '0' && *p <= '9') {
            uint64_t d = (uint64_t)(*p - '0');
            if (v > (UINT64_MAX - d) / 10)
                return LAMINA_EINVAL;
            v = v * 10 + d;
            p++;
        }
        if (out->n < LAMINA_VERSION_MAX_PARTS)
            out->part[out->n++] = v;
        if (*p != '.')
            break;              /* end, or a suffix such as "-rc1" */
        p++;
    }
    return 0;
}

int lamina_version_is_plain(const char *s)
{
    if (s == NULL || *s == '\0')
        return 0;
    int need_digit = 1;
    for (const char *p = s; *p; p++) {
        if (*p >= '0' && *p <= '9') {
            need_digit = 0;
        } else if (*p == '.' && !need_digit) {
            need_digit = 1;
        } else {
            return 0;
        }
    }
    return !need_digit;
}

int lamina_version_cmp_parsed(const lamina_version *a, const lamina_version *b,
                              int depth)
{
    int n = a->n > b->n ? a->n : b->n;
    if (depth > 0 && depth < n)
        n = depth;
    for (int i = 0; i < n; i++) {
        uint64_t x = i < a->n ? a->part[i] : 0;
        uint64_t y = i < b->n ? b->part[i] : 0;
        if (x != y)
            return x < y ? -1 : 1;
    }
    return 0;
}

int lamina_version_cmp(const char *a, const char *b, int *cmp)
{
    lamina_version va, vb;
    if (lamina_version_parse(a, &va) < 0 || lamina_version_parse(b, &vb) < 0)
        return LAMINA_EINVAL;
    *cmp = lamina_version_cmp_parsed(&va, &vb, 0);
    return 0;
}
