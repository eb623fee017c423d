/* jinja_builtins.c - jinja2's filters and tests, Python's str/dict/list
 * methods and the globals of the chat template environment (see jinja.h). */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_impl.h"
#include "lamina/plugin.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static jv missing(void)
{
    jv v = {.t = JV_MISSING};
    return v;
}

static int given(jv v) { return v.t != JV_MISSING; }

static void oom(jj_render *R)
{
    jj_fail(R, LAMINA_ERANGE, "the template needs more than %zu bytes of memory", R->A.limit);
}

/* Python's argument binding for a builtin: fills slots (JV_MISSING where
 * not given); -1 with R failed on a bad call */
static int bind(jj_render *R, const char *what, const char *const *names, size_t np, jv *args,
                size_t nargs, const char **kwn, jv *kwv, size_t nkw, jv *slots)
{
    for (size_t i = 0; i < np; i++)
        slots[i] = missing();
    if (nargs > np) {
        jj_fail(R, LAMINA_EINVAL, "%s() takes at most %zu argument(s) (%zu given)", what, np,
                nargs);
        return -1;
    }
    for (size_t i = 0; i < nargs; i++)
        slots[i] = args[i];
    for (size_t k = 0; k < nkw; k++) {
        size_t i;
        for (i = 0; i < np; i++)
            if (!strcmp(names[i], kwn[k]))
                break;
        if (i == np) {
            jj_fail(R, LAMINA_EINVAL, "%s() got an unexpected keyword argument '%s'", what, kwn[k]);
            return -1;
        }
        if (given(slots[i])) {
            jj_fail(R, LAMINA_EINVAL, "%s() got multiple values for argument '%s'", what, kwn[k]);
            return -1;
        }
        slots[i] = kwv[k];
    }
    return 0;
}

#define BIND(what, ...)                                                                   \
    static const char *const names_[] = {__VA_ARGS__};                                    \
    jv a_[NELEM(names_)];                                                                 \
    if (bind(R, what, names_, NELEM(names_), args, nargs, kwn, kwv, nkw, a_) < 0)         \
        return jv_undef();

static int need_str(jj_render *R, jv v, const char *what)
{
    if (v.t == JV_STR)
        return 0;
    if (v.t == JV_UNDEF)
        jj_fail_undef(R, v);
    else
        jj_fail(R, LAMINA_EINVAL, "%s must be str, not %s", what, jv_type_name(v));
    return -1;
}

static int need_int(jj_render *R, jv v, const char *what, int64_t *out)
{
    if (v.t == JV_INT || v.t == JV_BOOL) {
        *out = v.i;
        return 0;
    }
    if (v.t == JV_UNDEF)
        jj_fail_undef(R, v);
    else
        jj_fail(R, LAMINA_EINVAL, "%s must be an integer, not %s", what, jv_type_name(v));
    return -1;
}

static jv mk_str(jj_render *R, lamina_strbuf *b, int markup)
{
    jv v = jv_buf(R, b);
    v.sub = (uint8_t)(markup != 0);
    return v;
}

/* ---- string helpers -------------------------------------------------------- */

/* byte offset of code point index ci (clamped) in s */
static size_t cp_off(const jstr *s, int64_t ci)
{
    if (ci <= 0)
        return 0;
    if ((size_t)ci >= s->ncp)
        return s->len;
    if (s->ncp == s->len)
        return (size_t)ci;
    size_t b = 0;
    for (int64_t k = 0; k < ci; k++)
        jj_utf8_next(s->p, s->len, &b);
    return b;
}

/* Python's start/end arguments of find, count, startswith... as byte offsets */
static int span_args(jj_render *R, const jstr *s, jv start, jv end, size_t *b0, size_t *b1)
{
    int64_t n = (int64_t)s->ncp, st = 0, en = n;
    if (given(start) && start.t != JV_NONE) {
        if (need_int(R, start, "start", &st) < 0)
            return -1;
        if (st < 0 && (st += n) < 0)
            st = 0;
    }
    if (given(end) && end.t != JV_NONE) {
        if (need_int(R, end, "end", &en) < 0)
            return -1;
        if (en < 0 && (en += n) < 0)
            en = 0;
    }
    if (st > n) {
        *b0 = s->len + 1;   /* empty, and not even the empty string matches */
        *b1 = s->len;
        return 0;
    }
    *b0 = cp_off(s, st);
    *b1 = en < st ? *b0 : cp_off(s, en);
    return 0;
}

static int64_t cp_index(const jstr *s, size_t boff)
{
    return (int64_t)jj_utf8_count(s->p, boff);
}

/* the chars to strip: NULL for whitespace */
static int strip_set(jj_render *R, jv chars, const jstr **set)
{
    *set = NULL;
    if (!given(chars) || chars.t == JV_NONE)
        return 0;
    if (need_str(R, chars, "strip arg") < 0)
        return -1;
    *set = chars.s;
    return 0;
}

static int in_set(const jstr *set, uint32_t cp)
{
    if (set == NULL)
        return jj_isspace(cp);
    size_t i = 0;
    while (i < set->len)
        if (jj_utf8_next(set->p, set->len, &i) == cp)
            return 1;
    return 0;
}

/* strip: which 1 left, 2 right, 3 both */
static jv str_strip(jj_render *R, jv s, const jstr *set, int which)
{
    size_t a = 0, b = s.s->len;
    if (which & 1) {
        while (a < b) {
            size_t i = a;
            uint32_t cp = jj_utf8_next(s.s->p, b, &i);
            if (!in_set(set, cp))
                break;
            a = i;
        }
    }
    if (which & 2) {
        while (b > a) {
            size_t st = b - 1;
            while (st > a && ((unsigned char)s.s->p[st] & 0xC0) == 0x80)
                st--;
            size_t i = st;
            uint32_t cp = jj_utf8_next(s.s->p, b, &i);
            if (!in_set(set, cp))
                break;
            b = st;
        }
    }
    if (a == 0 && b == s.s->len)
        return s;
    jv r = jv_str(R, s.s->p + a, b - a);
    r.sub = s.sub;
    return r;
}

static void case_map(lamina_strbuf *b, const jstr *s, int which)
{
    size_t i = 0;
    while (i < s->len) {
        size_t st = i;
        uint32_t cp = jj_utf8_next(s->p, s->len, &i);
        if (which == JJ_LOWER && cp == 0x3A3) {
            /* final sigma: after a cased letter and not before one */
            int before = 0, after = 0;
            if (st > 0) {
                size_t k = st - 1;
                while (k > 0 && ((unsigned char)s->p[k] & 0xC0) == 0x80)
                    k--;
                size_t q = k;
                before = jj_iscased(jj_utf8_next(s->p, s->len, &q));
            }
            if (i < s->len) {
                size_t q = i;
                after = jj_iscased(jj_utf8_next(s->p, s->len, &q));
            }
            if (before && !after) {
                lamina_strbuf_str(b, "\xcf\x82");
                continue;
            }
        }
        jj_case(b, cp, which);
    }
}

static jv str_case(jj_render *R, jv s, int which)
{
    lamina_strbuf b = {.limit = R->max_output};
    case_map(&b, s.s, which);
    return mk_str(R, &b, s.sub);
}

/* str.capitalize(): first character in title case, the rest lower */
static jv str_capitalize(jj_render *R, jv s)
{
    lamina_strbuf b = {.limit = R->max_output};
    size_t i = 0;
    if (s.s->len) {
        uint32_t cp = jj_utf8_next(s.s->p, s.s->len, &i);
        jj_case(&b, cp, JJ_TITLE);
        while (i < s.s->len) {
            uint32_t c = jj_utf8_next(s.s->p, s.s->len, &i);
            jj_case(&b, c, JJ_LOWER);
        }
    }
    return mk_str(R, &b, s.sub);
}

/* str.title() */
static jv str_title(jj_render *R, jv s)
{
    lamina_strbuf b = {.limit = R->max_output};
    size_t i = 0;
    int prev_cased = 0;
    while (i < s.s->len) {
        uint32_t cp = jj_utf8_next(s.s->p, s.s->len, &i);
        jj_case(&b, cp, prev_cased ? JJ_LOWER : JJ_TITLE);
        prev_cased = jj_iscased(cp);
    }
    return mk_str(R, &b, s.sub);
}

static int is_word_split(uint32_t cp)
{
    return cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<' || jj_isspace(cp);
}

/* jinja2's title filter: each piece between -, whitespace, (, {, [, <
 * gets its first character upper-cased and the rest lower-cased */
static jv filter_title(jj_render *R, jv s)
{
    lamina_strbuf b = {.limit = R->max_output};
    size_t i = 0;
    int at_start = 1;
    while (i < s.s->len) {
        uint32_t cp = jj_utf8_next(s.s->p, s.s->len, &i);
        if (is_word_split(cp)) {
            jj_case(&b, cp, at_start ? JJ_UPPER : JJ_LOWER);
            at_start = 1;
            continue;
        }
        jj_case(&b, cp, at_start ? JJ_UPPER : JJ_LOWER);
        at_start = 0;
    }
    return mk_str(R, &b, 0);
}

static jv str_replace(jj_render *R, jv s, jv old, jv new_, int64_t count)
{
    lamina_strbuf b = {.limit = R->max_output};
    const jstr *o = old.s, *nw = new_.s;
    const char *p = s.s->p;
    size_t n = s.s->len;
    if (o->len == 0) {
        size_t i = 0;
        int64_t done = 0;
        while (1) {
            if (count < 0 || done < count) {
                lamina_strbuf_add(&b, nw->p, nw->len);
                done++;
            }
            if (i >= n)
                break;
            size_t st = i;
            jj_utf8_next(p, n, &i);
            lamina_strbuf_add(&b, p + st, i - st);
        }
        return mk_str(R, &b, s.sub);
    }
    size_t i = 0;
    int64_t done = 0;
    while (i <= n) {
        const char *f = (count < 0 || done < count) ? memmem(p + i, n - i, o->p, o->len) : NULL;
        if (f == NULL) {
            lamina_strbuf_add(&b, p + i, n - i);
            break;
        }
        lamina_strbuf_add(&b, p + i, (size_t)(f - (p + i)));
        lamina_strbuf_add(&b, nw->p, nw->len);
        i = (size_t)(f - p) + o->len;
        done++;
    }
    return mk_str(R, &b, s.sub);
}

static jv str_split(jj_render *R, jv s, jv sep, int64_t maxsplit, int right)
{
    jv out = jv_list(R, 4, JL_LIST);
    const char *p = s.s->p;
    size_t n = s.s->len;
    if (!given(sep) || sep.t == JV_NONE) {
        /* runs of whitespace; none at the ends */
        jv parts = jv_list(R, 4, JL_LIST);
        if (!right) {
            size_t i = 0;
            int64_t done = 0;
            while (i < n) {
                while (i < n) {
                    size_t q = i;
                    if (!jj_isspace(jj_utf8_next(p, n, &q)))
                        break;
                    i = q;
                }
                if (i >= n)
                    break;
                if (maxsplit >= 0 && done >= maxsplit) {
                    /* the rest, trailing whitespace removed */
                    size_t e = n;
                    while (e > i) {
                        size_t st = e - 1;
                        while (st > i && ((unsigned char)p[st] & 0xC0) == 0x80)
                            st--;
                        size_t q = st;
                        if (!jj_isspace(jj_utf8_next(p, n, &q)))
                            break;
                        e = st;
                    }
                    jl_push(R, parts, jv_str(R, p + i, e - i));
                    break;
                }
                size_t st = i;
                while (i < n) {
                    size_t q = i;
                    if (jj_isspace(jj_utf8_next(p, n, &q)))
                        break;
                    i = q;
                }
                jl_push(R, parts, jv_str(R, p + st, i - st));
                done++;
            }
            return parts;
        }
        /* rsplit(): from the right */
        size_t e = n;
        int64_t done = 0;
        while (e > 0) {
            while (e > 0) {
                size_t st = e - 1;
                while (st > 0 && ((unsigned char)p[st] & 0xC0) == 0x80)
                    st--;
                size_t q = st;
                if (!jj_isspace(jj_utf8_next(p, n, &q)))
                    break;
                e = st;
            }
            if (e == 0)
                break;
            if (maxsplit >= 0 && done >= maxsplit) {
                size_t a = 0;
                while (a < e) {
                    size_t q = a;
                    if (!jj_isspace(jj_utf8_next(p, n, &q)))
                        break;
                    a = q;
                }
                jl_push(R, parts, jv_str(R, p + a, e - a));
                break;
            }
            size_t a = e;
            while (a > 0) {
                size_t st = a - 1;
                while (st > 0 && ((unsigned char)p[st] & 0xC0) == 0x80)
                    st--;
                size_t q = st;
                if (jj_isspace(jj_utf8_next(p, n, &q)))
                    break;
                a = st;
            }
            jl_push(R, parts, jv_str(R, p + a, e - a));
            done++;
            e = a;
        }
        /* reverse */
        for (size_t i = parts.l->n; i > 0; i--)
            jl_push(R, out, parts.l->v[i - 1]);
        return out;
    }
    if (need_str(R, sep, "sep") < 0)
        return jv_undef();
    if (sep.s->len == 0) {
        jj_fail(R, LAMINA_EINVAL, "empty separator");
        return jv_undef();
    }
    const char *sp = sep.s->p;
    size_t sl = sep.s->len;
    if (!right) {
        size_t i = 0;
        int64_t done = 0;
        for (;;) {
            const char *f = (maxsplit < 0 || done < maxsplit) && i <= n
                                ? memmem(p + i, n - i, sp, sl) : NULL;
            if (f == NULL) {
                jl_push(R, out, jv_str(R, p + i, n - i));
                break;
            }
            jl_push(R, out, jv_str(R, p + i, (size_t)(f - (p + i))));
            i = (size_t)(f - p) + sl;
            done++;
        }
        return out;
    }
    jv parts = jv_list(R, 4, JL_LIST);
    size_t e = n;
    int64_t done = 0;
    for (;;) {
        const char *f = NULL;
        if ((maxsplit < 0 || done < maxsplit) && e >= sl) {
            for (size_t k = e - sl + 1; k > 0; k--)
                if (memcmp(p + k - 1, sp, sl) == 0) {
                    f = p + k - 1;
                    break;
                }
        }
        if (f == NULL) {
            jl_push(R, parts, jv_str(R, p, e));
            break;
        }
        size_t a = (size_t)(f - p) + sl;
        jl_push(R, parts, jv_str(R, p + a, e - a));
        e = (size_t)(f - p);
        done++;
    }
    for (size_t i = parts.l->n; i > 0; i--)
        jl_push(R, out, parts.l->v[i - 1]);
    return out;
}

static int line_break_at(const char *p, size_t n, size_t i, size_t *len)
{
    unsigned char c = (unsigned char)p[i];
    if (c == '\r') {
        *len = i + 1 < n && p[i + 1] == '\n' ? 2 : 1;
        return 1;
    }
    if (c == '\n' || c == '\v' || c == '\f' || c == 0x1C || c == 0x1D || c == 0x1E) {
        *len = 1;
        return 1;
    }
    if (c >= 0x80) {
        size_t j = i;
        uint32_t cp = jj_utf8_next(p, n, &j);
        if (cp == 0x85 || cp == 0x2028 || cp == 0x2029) {
            *len = j - i;
            return 1;
        }
    }
    return 0;
}

static jv str_splitlines(jj_render *R, jv s, int keepends)
{
    jv out = jv_list(R, 4, JL_LIST);
    const char *p = s.s->p;
    size_t n = s.s->len, i = 0, st = 0;
    while (i < n) {
        size_t l;
        if (line_break_at(p, n, i, &l)) {
            jv part = jv_str(R, p + st, (keepends ? i + l : i) - st);
            part.sub = s.sub;
            jl_push(R, out, part);
            i += l;
            st = i;
        } else {
            i++;
        }
    }
    if (st < n) {
        jv part = jv_str(R, p + st, n - st);
        part.sub = s.sub;
        jl_push(R, out, part);
    }
    return out;
}

static jv str_pad(jj_render *R, jv s, int64_t width, jv fill, int how)
{
    const char *f = " ";
    size_t fl = 1;
    if (given(fill)) {
        if (need_str(R, fill, "fillchar") < 0)
            return jv_undef();
        if (fill.s->ncp != 1) {
            jj_fail(R, LAMINA_EINVAL, "The fill character must be exactly one character long");
            return jv_undef();
        }
        f = fill.s->p;
        fl = fill.s->len;
    }
    int64_t len = (int64_t)s.s->ncp;
    if (width <= len)
        return s;
    if ((uint64_t)width > R->max_output) {
        jj_fail(R, LAMINA_ERANGE, "padding longer than %zu", R->max_output);
        return jv_undef();
    }
    int64_t marg = width - len, left;
    if (how == 0)
        left = marg / 2 + (marg & width & 1);   /* center, as CPython */
    else if (how == 1)
        left = 0;                               /* ljust */
    else
        left = marg;                            /* rjust */
    lamina_strbuf b = {.limit = R->max_output};
    for (int64_t i = 0; i < left; i++)
        lamina_strbuf_add(&b, f, fl);
    lamina_strbuf_add(&b, s.s->p, s.s->len);
    for (int64_t i = left; i < marg; i++)
        lamina_strbuf_add(&b, f, fl);
    return mk_str(R, &b, s.sub);
}

/* Python's str.isxxx() over all characters; empty is false */
static int str_all(const jstr *s, int (*pred)(uint32_t))
{
    if (s->len == 0)
        return 0;
    size_t i = 0;
    while (i < s->len)
        if (!pred(jj_utf8_next(s->p, s->len, &i)))
            return 0;
    return 1;
}

static int cp_alpha(uint32_t c)
{
    if (c < 0x80)
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    return jj_iscased(c) || (c >= 0x3040 && c <= 0x9FFF) || (c >= 0xAC00 && c <= 0xD7A3);
}
static int cp_digit(uint32_t c) { return c >= '0' && c <= '9'; }
static int cp_alnum(uint32_t c) { return cp_alpha(c) || cp_digit(c); }
static int cp_space(uint32_t c) { return jj_isspace(c); }

static int case_of(uint32_t cp)   /* 1 lower, 2 upper, 0 neither */
{
    if (cp < 0x80)
        return cp >= 'a' && cp <= 'z' ? 1 : cp >= 'A' && cp <= 'Z' ? 2 : 0;
    if (!jj_iscased(cp))
        return 0;
    char tmp[4];
    lamina_strbuf u = {0}, l = {0};
    jj_case(&u, cp, JJ_UPPER);
    jj_case(&l, cp, JJ_LOWER);
    size_t n = jj_utf8_put(tmp, cp);
    int is_lower = l.n == n && memcmp(l.p, tmp, n) == 0 && !(u.n == n && memcmp(u.p, tmp, n) == 0);
    int is_upper = u.n == n && memcmp(u.p, tmp, n) == 0 && !(l.n == n && memcmp(l.p, tmp, n) == 0);
    lamina_strbuf_free(&u);
    lamina_strbuf_free(&l);
    return is_lower ? 1 : is_upper ? 2 : 3;
}

static int str_is_case(const jstr *s, int want)
{
    int cased = 0;
    size_t i = 0;
    while (i < s->len) {
        int c = case_of(jj_utf8_next(s->p, s->len, &i));
        if (c == 0)
            continue;
        if (c != want)
            return 0;
        cased = 1;
    }
    return cased;
}

/* ---- printf-style formatting (str % args, |format) -------------------------- */

jv jj_percent_format(jj_render *R, jv fmt, jv args);

jv jj_percent_format(jj_render *R, jv fmt, jv args)
{
    jv *av = &args;
    size_t an = 1, ai = 0;
    /* anything with __getitem__ but a tuple or str counts as a mapping here */
    int is_map = args.t == JV_DICT ||
                 (args.t == JV_LIST && (args.sub == JL_LIST || args.sub == JL_RANGE));
    if (args.t == JV_LIST && args.sub == JL_TUPLE) {
        av = args.l->v;
        an = args.l->n;
    }
    lamina_strbuf b = {.limit = R->max_output};
    const char *p = fmt.s->p;
    size_t n = fmt.s->len, i = 0;
    while (i < n && !R->failed) {
        const char *pc = memchr(p + i, '%', n - i);
        if (pc == NULL) {
            lamina_strbuf_add(&b, p + i, n - i);
            break;
        }
        lamina_strbuf_add(&b, p + i, (size_t)(pc - (p + i)));
        i = (size_t)(pc - p) + 1;
        jv arg;
        int have_key = 0;
        if (i < n && p[i] == '(') {
            const char *close = memchr(p + i, ')', n - i);
            if (close == NULL || args.t != JV_DICT) {
                jj_fail(R, LAMINA_EINVAL, "format requires a mapping");
                break;
            }
            jv key = jv_str(R, p + i + 1, (size_t)(close - (p + i + 1)));
            if (!jd_get(args.d, key, &arg)) {
                jj_fail(R, LAMINA_EINVAL, "KeyError: '%s'", key.s->p);
                break;
            }
            i = (size_t)(close - p) + 1;
            have_key = 1;
        }
        char spec[32];
        size_t sk = 0;
        long width = 0, prec = 0;
        spec[sk++] = '%';
        while (i < n && strchr("-+ #0", p[i]) && sk < 8)
            spec[sk++] = p[i++];
        while (i < n && p[i] >= '0' && p[i] <= '9' && sk < 16) {
            width = width * 10 + (p[i] - '0');
            spec[sk++] = p[i++];
        }
        if (i < n && p[i] == '.') {
            spec[sk++] = p[i++];
            while (i < n && p[i] >= '0' && p[i] <= '9' && sk < 24) {
                prec = prec * 10 + (p[i] - '0');
                spec[sk++] = p[i++];
            }
        }
        if (width > 400 || prec > 400) {
            jj_fail(R, LAMINA_ENOTSUP, "format width or precision over 400 is not supported");
            break;
        }
        if (i >= n) {
            jj_fail(R, LAMINA_EINVAL, "incomplete format");
            break;
        }
        char conv = p[i++];
        if (conv == '%') {
            lamina_strbuf_ch(&b, '%');
            continue;
        }
        if (!have_key) {
            if (ai >= an) {
                jj_fail(R, LAMINA_EINVAL, "not enough arguments for format string");
                break;
            } else {
                arg = av[ai++];
            }
        }
        char out[2048];
        switch (conv) {
        case 's':
        case 'r': {
            lamina_strbuf t = {.limit = R->max_output};
            if (conv == 's')
                jv_str_into(R, &t, arg);
            else
                jv_repr_into(R, &t, arg, 0);
            /* precision cuts, width pads (in characters) */
            const char *tp = t.p ? t.p : "";
            size_t tn = t.n;
            int has_prec = memchr(spec, '.', sk) != NULL;
            if (has_prec && jj_utf8_count(tp, tn) > (size_t)prec) {
                size_t k = 0;
                for (long c = 0; c < prec; c++)
                    jj_utf8_next(tp, tn, &k);
                tn = k;
            }
            size_t chars = jj_utf8_count(tp, tn);
            int left = memchr(spec, '-', sk) != NULL;
            for (long c = (long)chars; !left && c < width; c++)
                lamina_strbuf_ch(&b, ' ');
            if (fmt.sub && !(arg.t == JV_STR && arg.sub))
                jj_escape_into(&b, tp, tn);
            else
                lamina_strbuf_add(&b, tp, tn);
            for (long c = (long)chars; left && c < width; c++)
                lamina_strbuf_ch(&b, ' ');
            lamina_strbuf_free(&t);
            break;
        }
        case 'd':
        case 'i':
        case 'x':
        case 'X':
        case 'o': {
            if (!jv_is_num(arg)) {
                jj_fail(R, LAMINA_EINVAL, "%%%c format: a real number is required, not %s", conv,
                        jv_type_name(arg));
                break;
            }
            int64_t v = arg.t == JV_FLOAT ? (int64_t)arg.f : arg.i;
            spec[sk++] = 'l';
            spec[sk++] = 'l';
            spec[sk++] = conv == 'i' ? 'd' : conv;
            spec[sk] = 0;
            snprintf(out, sizeof out, spec, (long long)v);
            lamina_strbuf_str(&b, out);
            break;
        }
        case 'f':
        case 'F':
        case 'e':
        case 'E':
        case 'g':
        case 'G':
            if (!jv_is_num(arg)) {
                jj_fail(R, LAMINA_EINVAL, "must be real number, not %s", jv_type_name(arg));
                break;
            }
            spec[sk++] = conv;
            spec[sk] = 0;
            snprintf(out, sizeof out, spec, jv_num(arg));
            lamina_strbuf_str(&b, out);
            break;
        default:
            jj_fail(R, LAMINA_ENOTSUP, "format character '%c' is not supported", conv);
            break;
        }
    }
    if (!R->failed && !is_map && ai < an)
        jj_fail(R, LAMINA_EINVAL, "not all arguments converted during string formatting");
    if (R->failed) {
        lamina_strbuf_free(&b);
        return jv_undef();
    }
    return mk_str(R, &b, fmt.sub);
}

/* ---- str.format ----------------------------------------------------------------- */

static jv str_format(jj_render *R, jv self, jv *args, size_t nargs, const char **kwn, jv *kwv,
                     size_t nkw)
{
    lamina_strbuf b = {.limit = R->max_output};
    const char *p = self.s->p;
    size_t n = self.s->len, i = 0, auto_i = 0;
    while (i < n && !R->failed) {
        char c = p[i];
        if (c == '}') {
            if (i + 1 < n && p[i + 1] == '}') {
                lamina_strbuf_ch(&b, '}');
                i += 2;
                continue;
            }
            jj_fail(R, LAMINA_EINVAL, "Single '}' encountered in format string");
            break;
        }
        if (c != '{') {
            lamina_strbuf_ch(&b, c);
            i++;
            continue;
        }
        if (i + 1 < n && p[i + 1] == '{') {
            lamina_strbuf_ch(&b, '{');
            i += 2;
            continue;
        }
        const char *close = memchr(p + i, '}', n - i);
        if (close == NULL) {
            jj_fail(R, LAMINA_EINVAL, "Single '{' encountered in format string");
            break;
        }
        size_t fs = i + 1, fe = (size_t)(close - p);
        size_t ne = fs;
        while (ne < fe && p[ne] != '!' && p[ne] != ':')
            ne++;
        char conv = 0;
        if (ne < fe && p[ne] == '!' && ne + 1 < fe)
            conv = p[ne + 1];
        const char *spec = memchr(p + ne, ':', fe - ne);
        if ((spec != NULL && spec + 1 < p + fe) || (conv && conv != 's' && conv != 'r')) {
            jj_fail(R, LAMINA_ENOTSUP, "str.format specs are not supported");
            break;
        }
        jv arg;
        if (ne == fs) {
            if (auto_i >= nargs) {
                jj_fail(R, LAMINA_EINVAL, "Replacement index %zu out of range for positional "
                                          "args tuple", auto_i);
                break;
            }
            arg = args[auto_i++];
        } else if (p[fs] >= '0' && p[fs] <= '9') {
            size_t k = 0;
            for (size_t q = fs; q < ne; q++) {
                if (p[q] < '0' || p[q] > '9') {
                    jj_fail(R, LAMINA_ENOTSUP, "str.format field is not supported");
                    break;
                }
                k = k * 10 + (size_t)(p[q] - '0');
                if (k > 100000)
                    break;
            }
            if (R->failed)
                break;
            if (k >= nargs) {
                jj_fail(R, LAMINA_EINVAL, "Replacement index %zu out of range", k);
                break;
            }
            arg = args[k];
        } else {
            size_t k;
            for (k = 0; k < nkw; k++)
                if (strlen(kwn[k]) == ne - fs && !memcmp(kwn[k], p + fs, ne - fs))
                    break;
            if (k == nkw) {
                jj_fail(R, LAMINA_EINVAL, "str.format: no argument '%.*s'", (int)(ne - fs), p + fs);
                break;
            }
            arg = kwv[k];
        }
        lamina_strbuf t = {.limit = R->max_output};
        if (conv == 'r')
            jv_repr_into(R, &t, arg, 0);
        else
            jv_str_into(R, &t, arg);
        if (self.sub && !(arg.t == JV_STR && arg.sub))
            jj_escape_into(&b, t.p ? t.p : "", t.n);
        else
            lamina_strbuf_add(&b, t.p ? t.p : "", t.n);
        lamina_strbuf_free(&t);
        i = fe + 1;
    }
    if (R->failed) {
        lamina_strbuf_free(&b);
        return jv_undef();
    }
    return mk_str(R, &b, self.sub);
}

/* ---- sorting ------------------------------------------------------------------ */

/* stable merge sort of idx[0..n) by keys; rev compares reversed */
static int msort(jj_render *R, size_t *idx, size_t *tmp, size_t n, const jv *keys, int rev)
{
    if (n < 2)
        return 0;
    size_t h = n / 2;
    if (msort(R, idx, tmp, h, keys, rev) < 0 || msort(R, idx + h, tmp, n - h, keys, rev) < 0)
        return -1;
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) {
        int c;
        /* take from the right only when strictly smaller (stable) */
        if (rev) {
            if (jv_cmp(R, keys[idx[i]], keys[idx[j]], &c) < 0)
                return -1;
            tmp[k++] = c < 0 && c != 2 ? idx[j++] : idx[i++];
        } else {
            if (jv_cmp(R, keys[idx[j]], keys[idx[i]], &c) < 0)
                return -1;
            tmp[k++] = c < 0 && c != 2 ? idx[j++] : idx[i++];
        }
    }
    while (i < h)
        tmp[k++] = idx[i++];
    while (j < n)
        tmp[k++] = idx[j++];
    memcpy(idx, tmp, n * sizeof(size_t));
    return 0;
}

static jv ignore_case(jj_render *R, jv v)
{
    if (v.t == JV_STR)
        return str_case(R, v, JJ_LOWER);
    return v;
}

/* make_attrgetter: item[part] for each dotted part (digits as ints) */
static jv attr_get(jj_render *R, jv item, jv attribute, jv dflt)
{
    if (attribute.t == JV_INT)
        return jj_getitem(R, item, attribute);
    if (attribute.t != JV_STR)
        return jj_getitem(R, item, attribute);
    const char *p = attribute.s->p;
    size_t n = attribute.s->len, i = 0;
    for (;;) {
        const char *dot = memchr(p + i, '.', n - i);
        size_t e = dot ? (size_t)(dot - p) : n;
        jv part;
        int digits = e > i;
        for (size_t k = i; k < e; k++)
            if (p[k] < '0' || p[k] > '9')
                digits = 0;
        if (digits && e - i < 18) {
            int64_t v = 0;
            for (size_t k = i; k < e; k++)
                v = v * 10 + (p[k] - '0');
            part = jv_int(v);
        } else {
            part = jv_str(R, p + i, e - i);
        }
        item = jj_getitem(R, item, part);
        if (R->failed)
            return jv_undef();
        if (given(dflt) && dflt.t != JV_NONE && item.t == JV_UNDEF)
            item = dflt;
        if (dot == NULL)
            break;
        i = e + 1;
    }
    return item;
}

/* keys for sort and friends: the items, an attribute of them, lowered */
static jv *sort_keys(jj_render *R, const jv *items, size_t n, jv attribute, int case_sensitive)
{
    jv *keys = jj_alloc(&R->A, (n ? n : 1) * sizeof(jv));
    if (keys == NULL) {
        oom(R);
        return NULL;
    }
    for (size_t i = 0; i < n && !R->failed; i++) {
        jv k = items[i];
        if (given(attribute) && attribute.t != JV_NONE) {
            if (attribute.t == JV_STR && memchr(attribute.s->p, ',', attribute.s->len)) {
                /* "a,b": a list of attributes */
                jv lk = jv_list(R, 2, JL_LIST);
                const char *p = attribute.s->p;
                size_t an = attribute.s->len, st = 0;
                for (size_t q = 0; q <= an; q++) {
                    if (q == an || p[q] == ',') {
                        jv part = jv_str(R, p + st, q - st);
                        jv v = attr_get(R, items[i], part, missing());
                        jl_push(R, lk, case_sensitive ? v : ignore_case(R, v));
                        st = q + 1;
                    }
                }
                keys[i] = lk;
                continue;
            }
            k = attr_get(R, k, attribute, missing());
        }
        keys[i] = case_sensitive ? k : ignore_case(R, k);
    }
    return R->failed ? NULL : keys;
}

static size_t *sorted_order(jj_render *R, const jv *keys, size_t n, int rev)
{
    size_t *idx = jj_alloc(&R->A, (n ? n : 1) * sizeof(size_t));
    size_t *tmp = jj_alloc(&R->A, (n ? n : 1) * sizeof(size_t));
    if (tmp == NULL) {
        oom(R);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    if (msort(R, idx, tmp, n, keys, rev) < 0)
        return NULL;
    return idx;
}

/* ---- filters -------------------------------------------------------------------- */

static jv soft_str(jj_render *R, jv v)
{
    return jv_to_str(R, v);
}

static jv to_json(jj_render *R, jv val, jv *args, size_t nargs, const char **kwn, jv *kwv,
                  size_t nkw)
{
    BIND("tojson", "ensure_ascii", "indent", "separators", "sort_keys");
    jj_json_opts o = {0};
    o.ensure_ascii = given(a_[0]) && jv_truthy(a_[0]);
    char ind[256];
    if (given(a_[1]) && a_[1].t != JV_NONE) {
        if (a_[1].t == JV_STR) {
            o.indent = a_[1].s->p;
        } else if (a_[1].t == JV_INT || a_[1].t == JV_BOOL) {
            int64_t k = a_[1].i < 0 ? 0 : a_[1].i;
            if (k > 200)
                k = 200;
            memset(ind, ' ', (size_t)k);
            ind[k] = 0;
            o.indent = ind;
        } else {
            jj_fail(R, LAMINA_EINVAL, "tojson: bad indent");
            return jv_undef();
        }
    }
    o.item_sep = o.indent ? "," : ", ";
    o.key_sep = ": ";
    if (given(a_[2]) && a_[2].t != JV_NONE) {
        jv s = a_[2];
        if (s.t != JV_LIST || s.l->n != 2 || s.l->v[0].t != JV_STR || s.l->v[1].t != JV_STR) {
            jj_fail(R, LAMINA_EINVAL, "tojson: separators must be two strings");
            return jv_undef();
        }
        o.item_sep = s.l->v[0].s->p;
        o.key_sep = s.l->v[1].s->p;
    }
    o.sort_keys = given(a_[3]) && jv_truthy(a_[3]);
    lamina_strbuf b = {.limit = R->max_output};
    jv_tojson_into(R, &b, val, &o, 0);
    if (R->failed) {
        lamina_strbuf_free(&b);
        return jv_undef();
    }
    return jv_buf(R, &b);
}

static jv filter_indent(jj_render *R, jv s, jv *args, size_t nargs, const char **kwn, jv *kwv,
                        size_t nkw)
{
    BIND("indent", "width", "first", "blank");
    lamina_strbuf ind = {.limit = R->max_output};
    if (!given(a_[0])) {
        lamina_strbuf_str(&ind, "    ");
    } else if (a_[0].t == JV_STR) {
        lamina_strbuf_add(&ind, a_[0].s->p, a_[0].s->len);
    } else {
        int64_t w;
        if (need_int(R, a_[0], "width", &w) < 0)
            return jv_undef();
        for (int64_t i = 0; i < w && !ind.over; i++)
            lamina_strbuf_ch(&ind, ' ');
        if (ind.over) {
            lamina_strbuf_free(&ind);
            jj_fail(R, LAMINA_ERANGE, "indent wider than %zu", R->max_output);
            return jv_undef();
        }
    }
    int first = given(a_[1]) && jv_truthy(a_[1]);
    int blank = given(a_[2]) && jv_truthy(a_[2]);
    if (s.t != JV_STR) {
        /* s += "\n" of jinja2's indent */
        lamina_strbuf_free(&ind);
        if (s.t == JV_UNDEF)
            jj_fail_undef(R, s);
        else
            jj_fail(R, LAMINA_EINVAL, "unsupported operand type(s) for +=: '%s' and 'str'",
                    jv_type_name(s));
        return jv_undef();
    }
    jv str = s;
    /* s += "\n"; then lines = s.splitlines() */
    lamina_strbuf tmpb = {.limit = R->max_output};
    lamina_strbuf_add(&tmpb, str.s->p, str.s->len);
    lamina_strbuf_ch(&tmpb, '\n');
    jv full = jv_buf(R, &tmpb);
    jv lines = str_splitlines(R, full, 0);
    lamina_strbuf b = {.limit = R->max_output};
    const char *ip = ind.p ? ind.p : "";
    if (first)
        lamina_strbuf_add(&b, ip, ind.n);
    for (size_t i = 0; i < lines.l->n; i++) {
        jv ln = lines.l->v[i];
        if (i > 0) {
            lamina_strbuf_ch(&b, '\n');
            if (blank || ln.s->len > 0)
                lamina_strbuf_add(&b, ip, ind.n);
        }
        lamina_strbuf_add(&b, ln.s->p, ln.s->len);
    }
    lamina_strbuf_free(&ind);
    return mk_str(R, &b, s.sub);
}

static int py_int_of_str(const jstr *s, int64_t base, int64_t *out)
{
    const char *p = s->p;
    size_t n = s->len, i = 0;
    while (i < n && (p[i] == ' ' || (p[i] >= '\t' && p[i] <= '\r')))
        i++;
    while (n > i && (p[n - 1] == ' ' || (p[n - 1] >= '\t' && p[n - 1] <= '\r')))
        n--;
    int neg = 0;
    if (i < n && (p[i] == '+' || p[i] == '-'))
        neg = p[i++] == '-';
    if (base == 16 && i + 1 < n && p[i] == '0' && (p[i + 1] | 0x20) == 'x')
        i += 2;
    if (i >= n)
        return -1;
    uint64_t acc = 0;
    int prev_us = 1;
    for (; i < n; i++) {
        if (p[i] == '_') {
            if (prev_us)
                return -1;
            prev_us = 1;
            continue;
        }
        int d = p[i] >= '0' && p[i] <= '9' ? p[i] - '0'
              : (p[i] | 0x20) >= 'a' && (p[i] | 0x20) <= 'z' ? (p[i] | 0x20) - 'a' + 10 : 99;
        if (d >= base)
            return -1;
        if (acc > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
            return -2;
        acc = acc * (uint64_t)base + (uint64_t)d;
        prev_us = 0;
    }
    if (prev_us)
        return -1;
    if (acc > (uint64_t)INT64_MAX)
        return -2;
    *out = neg ? -(int64_t)acc : (int64_t)acc;
    return 0;
}

static int py_float_of_str(const jstr *s, double *out)
{
    char buf[128];
    size_t k = 0;
    const char *p = s->p;
    size_t n = s->len, i = 0;
    while (i < n && (p[i] == ' ' || (p[i] >= '\t' && p[i] <= '\r')))
        i++;
    while (n > i && (p[n - 1] == ' ' || (p[n - 1] >= '\t' && p[n - 1] <= '\r')))
        n--;
    if (i >= n || n - i >= sizeof buf)
        return -1;
    for (; i < n; i++) {
        if (p[i] == '_') {
            if (k == 0 || i + 1 >= n || !(buf[k - 1] >= '0' && buf[k - 1] <= '9') ||
                !(p[i + 1] >= '0' && p[i + 1] <= '9'))
                return -1;
            continue;
        }
        buf[k++] = p[i];
    }
    buf[k] = 0;
    /* accept what Python's float() accepts: digits, inf, nan, infinity */
    const char *q = buf;
    if (*q == '+' || *q == '-')
        q++;
    if (!strcasecmp(q, "inf") || !strcasecmp(q, "infinity") || !strcasecmp(q, "nan")) {
        double v = (q[0] | 0x20) == 'n' ? NAN : INFINITY;
        *out = buf[0] == '-' ? -v : v;
        return 0;
    }
    for (const char *c = q; *c; c++)
        if (!((*c >= '0' && *c <= '9') || *c == '.' || *c == 'e' || *c == 'E' || *c == '+' ||
              *c == '-'))
            return -1;
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    if (*end != 0 || end == buf)
        return -1;
    *out = v;
    return 0;
}

static double py_round(double x, int64_t nd)
{
    if (!isfinite(x))
        return x;
    if (nd > 22)
        return x;
    if (nd >= 0) {
        char buf[400];
        snprintf(buf, sizeof buf, "%.*f", (int)nd, x);
        return strtod(buf, NULL);
    }
    double p = pow(10.0, (double)-nd);
    double y = x / p;
    double r = rint(y);
    return r * p;
}

static jv filter_items_gen(jj_render *R, jv v)
{
    if (v.t == JV_UNDEF) {
        jv g = jv_list(R, 0, JL_GEN);
        g.l->pyname = "do_items";
        return g;
    }
    if (v.t != JV_DICT) {
        /* a generator: the error comes when it is iterated */
        jv g = jv_list(R, 0, JL_GEN);
        g.l->gen_err = "Can only get item pairs from a mapping.";
        g.l->pyname = "do_items";
        return g;
    }
    jv out = jv_list(R, v.d->n, JL_GEN);
    out.l->pyname = "do_items";
    for (size_t i = 0; i < v.d->n; i++) {
        jv t = jv_list(R, 2, JL_TUPLE);
        jl_push(R, t, v.d->k[i]);
        jl_push(R, t, v.d->v[i]);
        jl_push(R, out, t);
    }
    return out;
}

/* select/reject(attr): test name args[off], its arguments after */
static jv select_reject(jj_render *R, jv val, jv *args, size_t nargs, const char **kwn,
                        jv *kwv, size_t nkw, int reject, int by_attr)
{
    size_t off = 0;
    jv attribute = missing();
    if (by_attr) {
        if (nargs < 1) {
            jj_fail(R, LAMINA_EINVAL, "Missing parameter for attribute name");
            return jv_undef();
        }
        attribute = args[0];
        off = 1;
    }
    int tid = -1;
    const char *tname = NULL;
    if (nargs > off) {
        if (need_str(R, args[off], "test name") < 0)
            return jv_undef();
        tname = args[off].s->p;
        tid = jj_test_id(tname);
        off++;
    }
    jv out = jv_list(R, 4, JL_GEN);
    out.l->pyname = "select_or_reject";
    if (!jv_truthy(val))
        return out;
    jv *items;
    size_t n;
    if (jv_items(R, val, &items, &n) < 0)
        return jv_undef();
    for (size_t i = 0; i < n && !R->failed; i++) {
        jv x = by_attr ? attr_get(R, items[i], attribute, missing()) : items[i];
        int r;
        if (tname == NULL)
            r = jv_truthy(x);
        else
            r = jj_test(R, tid, tname, x, args + off, nargs - off, kwn, kwv, nkw);
        if (r < 0 || R->failed)
            return jv_undef();
        if (r != reject)
            jl_push(R, out, items[i]);
    }
    return out;
}

static jv filter_map(jj_render *R, jv val, jv *args, size_t nargs, const char **kwn, jv *kwv,
                     size_t nkw)
{
    jv out = jv_list(R, 4, JL_GEN);
    out.l->pyname = "sync_do_map";
    if (!jv_truthy(val))
        return out;
    jv attribute = missing(), dflt = missing();
    const char *fname = NULL;
    int fid = 0;
    if (nargs == 0) {
        for (size_t k = 0; k < nkw; k++) {
            if (!strcmp(kwn[k], "attribute"))
                attribute = kwv[k];
            else if (!strcmp(kwn[k], "default"))
                dflt = kwv[k];
            else {
                jj_fail(R, LAMINA_EINVAL, "Unexpected keyword argument '%s'", kwn[k]);
                return jv_undef();
            }
        }
        if (!given(attribute)) {
            jj_fail(R, LAMINA_EINVAL, "map requires a filter argument");
            return jv_undef();
        }
    } else {
        if (need_str(R, args[0], "filter name") < 0)
            return jv_undef();
        fname = args[0].s->p;
        fid = jj_filter_id(fname);
    }
    jv *items;
    size_t n;
    if (jv_items(R, val, &items, &n) < 0)
        return jv_undef();
    for (size_t i = 0; i < n && !R->failed; i++) {
        jv x;
        if (fname == NULL)
            x = attr_get(R, items[i], attribute, dflt);
        else
            x = jj_filter(R, fid, fname, items[i], args + 1, nargs - 1, kwn, kwv, nkw);
        jl_push(R, out, x);
    }
    return out;
}

static jv min_max(jj_render *R, jv val, jv *args, size_t nargs, const char **kwn, jv *kwv,
                  size_t nkw, int want_max)
{
    BIND(want_max ? "max" : "min", "case_sensitive", "attribute");
    jv *items;
    size_t n;
    if (jv_items(R, val, &items, &n) < 0)
        return jv_undef();
    if (n == 0)
        return jv_undef_hint(R, "No aggregated item, sequence was empty.", 0);
    jv *keys = sort_keys(R, items, n, a_[1], given(a_[0]) && jv_truthy(a_[0]));
    if (keys == NULL)
        return jv_undef();
    size_t best = 0;
    for (size_t i = 1; i < n; i++) {
        int c;
        if (jv_cmp(R, keys[i], keys[best], &c) < 0)
            return jv_undef();
        if (c != 2 && (want_max ? c > 0 : c < 0))
            best = i;
    }
    return items[best];
}

static jv to_list(jj_render *R, jv val)
{
    jv *items;
    size_t n;
    if (jv_items(R, val, &items, &n) < 0)
        return jv_undef();
    jv out = jv_list(R, n, JL_LIST);
    for (size_t i = 0; i < n; i++)
        jl_push(R, out, items[i]);
    return out;
}

static jv escape_value(jj_render *R, jv v, int force)
{
    if (v.t == JV_STR && v.sub && !force)
        return v;
    jv s = jv_to_str(R, v);
    lamina_strbuf b = {.limit = R->max_output};
    jj_escape_into(&b, s.s->p, s.s->len);
    return mk_str(R, &b, 1);
}

static jv filter_now(jj_render *R, int fid, const char *name, jv val, jv *args, size_t nargs,
                     const char **kwn, jv *kwv, size_t nkw);

/* map, select, reject, selectattr, rejectattr and unique are generators in
 * jinja2: what goes wrong in them happens when (if ever) they are iterated.
 * They run here at once; an error (not a limit) becomes the generator's. */
jv jj_filter(jj_render *R, int fid, const char *name, jv val, jv *args, size_t nargs,
             const char **kwn, jv *kwv, size_t nkw)
{
    if (R->failed)
        return jv_undef();
    if (fid != F_MAP && fid != F_SELECT && fid != F_REJECT && fid != F_SELECTATTR &&
        fid != F_REJECTATTR && fid != F_UNIQUE)
        return filter_now(R, fid, name, val, args, nargs, kwn, kwv, nkw);
    char msg[512] = "";
    char *saved = R->err;
    size_t saved_size = R->err_size;
    R->err = msg;
    R->err_size = sizeof msg;
    jv out = filter_now(R, fid, name, val, args, nargs, kwn, kwv, nkw);
    R->err = saved;
    R->err_size = saved_size;
    if (!R->failed)
        return out;
    if (R->code != LAMINA_EINVAL || R->A.over) {
        if (saved != NULL && saved_size > 0)
            snprintf(saved, saved_size, "%s", msg);
        return jv_undef();
    }
    R->failed = 0;
    R->code = 0;
    const char *m = msg;
    if (!strncmp(m, "template line ", 14)) {
        const char *c = strstr(m, ": ");
        if (c != NULL)
            m = c + 2;
    }
    jv g = jv_list(R, 0, JL_GEN);
    jv text = jv_cstr(R, m);
    g.l->gen_err = text.s->p;
    g.l->pyname = fid == F_MAP ? "sync_do_map" : fid == F_UNIQUE ? "sync_do_unique"
                                                                  : "select_or_reject";
    return g;
}

static jv filter_now(jj_render *R, int fid, const char *name, jv val, jv *args, size_t nargs,
                     const char **kwn, jv *kwv, size_t nkw)
{
    switch (fid) {
    case F_ABS: {
        BIND("abs");
        if (val.t == JV_FLOAT)
            return jv_float(fabs(val.f));
        if (val.t == JV_INT || val.t == JV_BOOL) {
            if (val.i == INT64_MIN) {
                jj_fail(R, LAMINA_ERANGE, "integer overflow in abs");
                return jv_undef();
            }
            return jv_int(val.i < 0 ? -val.i : val.i);
        }
        if (val.t == JV_UNDEF)
            jj_fail_undef(R, val);
        else
            jj_fail(R, LAMINA_EINVAL, "bad operand type for abs(): '%s'", jv_type_name(val));
        return jv_undef();
    }
    case F_ATTR: {
        BIND("attr", "name");
        if (!given(a_[0]) || need_str(R, a_[0], "attribute name") < 0)
            return jv_undef();
        return jj_pyattr(R, val, a_[0].s->p);
    }
    case F_CAPITALIZE: {
        BIND("capitalize");
        return str_capitalize(R, soft_str(R, val));
    }
    case F_CENTER: {
        BIND("center", "width");
        int64_t w = 80;
        if (given(a_[0]) && need_int(R, a_[0], "width", &w) < 0)
            return jv_undef();
        return str_pad(R, soft_str(R, val), w, missing(), 0);
    }
    case F_COUNT:
    case F_LENGTH: {
        BIND("length");
        size_t n;
        if (jv_len(R, val, &n) < 0)
            return jv_undef();
        return jv_int((int64_t)n);
    }
    case F_DEFAULT: {
        BIND("default", "default_value", "boolean");
        jv d = given(a_[0]) ? a_[0] : jv_str(R, "", 0);
        if (val.t == JV_UNDEF || (given(a_[1]) && jv_truthy(a_[1]) && !jv_truthy(val)))
            return d;
        return val;
    }
    case F_DICTSORT: {
        BIND("dictsort", "case_sensitive", "by", "reverse");
        if (val.t != JV_DICT) {
            if (val.t == JV_UNDEF)
                jj_fail_undef(R, val);
            else
                jj_fail(R, LAMINA_EINVAL, "'%s' object has no attribute 'items'", jv_type_name(val));
            return jv_undef();
        }
        int pos = 0;
        if (given(a_[1])) {
            if (need_str(R, a_[1], "by") < 0)
                return jv_undef();
            if (!strcmp(a_[1].s->p, "value"))
                pos = 1;
            else if (strcmp(a_[1].s->p, "key") != 0) {
                jj_fail(R, LAMINA_EINVAL, "You can only sort by either \"key\" or \"value\"");
                return jv_undef();
            }
        }
        size_t n = val.d->n;
        jv *keys = sort_keys(R, pos ? val.d->v : val.d->k, n, missing(),
                             given(a_[0]) && jv_truthy(a_[0]));
        size_t *idx = keys ? sorted_order(R, keys, n, given(a_[2]) && jv_truthy(a_[2])) : NULL;
        if (idx == NULL)
            return jv_undef();
        jv out = jv_list(R, n, JL_LIST);
        for (size_t i = 0; i < n; i++) {
            jv t = jv_list(R, 2, JL_TUPLE);
            jl_push(R, t, val.d->k[idx[i]]);
            jl_push(R, t, val.d->v[idx[i]]);
            jl_push(R, out, t);
        }
        return out;
    }
    case F_ESCAPE:
    case F_FORCEESCAPE: {
        BIND("escape");
        return escape_value(R, val, fid == F_FORCEESCAPE);
    }
    case F_FIRST: {
        BIND("first");
        jv *items;
        size_t n;
        if (val.t == JV_LIST && (val.sub == JL_GEN || val.sub == JL_REVITER)) {
            jlist *l = val.l;
            if (l->gen_err != NULL) {
                jj_fail(R, LAMINA_EINVAL, "%s", l->gen_err);
                return jv_undef();
            }
            if (l->pos < l->n)
                return l->v[l->pos++];
            return jv_undef_hint(R, "No first item, sequence was empty.", 0);
        }
        if (jv_items(R, val, &items, &n) < 0)
            return jv_undef();
        return n ? items[0] : jv_undef_hint(R, "No first item, sequence was empty.", 0);
    }
    case F_LAST: {
        BIND("last");
        jv *items;
        size_t n;
        if (val.t == JV_LIST && (val.sub == JL_GEN || val.sub == JL_REVITER)) {
            jj_fail(R, LAMINA_EINVAL, "'%s' object is not reversible", jv_type_name(val));
            return jv_undef();
        }
        if (val.t != JV_STR && val.t != JV_LIST && val.t != JV_DICT && val.t != JV_UNDEF) {
            jj_fail(R, LAMINA_EINVAL, "'%s' object is not reversible", jv_type_name(val));
            return jv_undef();
        }
        if (val.t == JV_UNDEF)
            return jv_undef_hint(R, "No last item, sequence was empty.", 0);
        if (jv_items(R, val, &items, &n) < 0)
            return jv_undef();
        return n ? items[n - 1] : jv_undef_hint(R, "No last item, sequence was empty.", 0);
    }
    case F_FLOAT: {
        BIND("float", "default");
        jv d = given(a_[0]) ? a_[0] : jv_float(0.0);
        double f;
        if (val.t == JV_UNDEF) {
            jj_fail_undef(R, val);
            return jv_undef();
        }
        if (val.t == JV_FLOAT)
            return val;
        if (val.t == JV_INT || val.t == JV_BOOL)
            return jv_float((double)val.i);
        if (val.t == JV_STR && py_float_of_str(val.s, &f) == 0)
            return jv_float(f);
        return d;
    }
    case F_FORMAT: {
        jv s = soft_str(R, val);
        jv a;
        if (nargs && nkw) {
            jj_fail(R, LAMINA_EINVAL,
                    "can't handle positional and keyword arguments at the same time");
            return jv_undef();
        }
        if (nkw) {
            a = jv_dict(R, nkw, JV_DICT);
            for (size_t k = 0; k < nkw; k++)
                jd_set(R, a, jv_cstr(R, kwn[k]), kwv[k]);
        } else {
            a = jv_list(R, nargs, JL_TUPLE);
            for (size_t i = 0; i < nargs; i++)
                jl_push(R, a, args[i]);
        }
        return jj_percent_format(R, s, a);
    }
    case F_INDENT:
        return filter_indent(R, val, args, nargs, kwn, kwv, nkw);
    case F_INT: {
        BIND("int", "default", "base");
        jv d = given(a_[0]) ? a_[0] : jv_int(0);
        int64_t base = 10, iv;
        double f;
        if (given(a_[1]) && need_int(R, a_[1], "base", &base) < 0)
            return jv_undef();
        if (val.t == JV_UNDEF) {
            jj_fail_undef(R, val);
            return jv_undef();
        }
        if (val.t == JV_INT || val.t == JV_BOOL)
            return jv_int(val.i);
        if (val.t == JV_STR) {
            int r = base >= 2 && base <= 36 ? py_int_of_str(val.s, base, &iv) : -1;
            if (r == 0)
                return jv_int(iv);
            if (r == -2) {
                jj_fail(R, LAMINA_ERANGE, "integer too large");
                return jv_undef();
            }
            if (py_float_of_str(val.s, &f) < 0 || isnan(f) || isinf(f))
                return d;
        } else if (val.t == JV_FLOAT) {
            f = val.f;
            if (isnan(f))
                return d;
        } else {
            return d;
        }
        if (isinf(f)) {
            jj_fail(R, LAMINA_EINVAL, "cannot convert float infinity to integer");
            return jv_undef();
        }
        if (f >= 9.2e18 || f <= -9.2e18) {
            jj_fail(R, LAMINA_ERANGE, "integer too large");
            return jv_undef();
        }
        return jv_int((int64_t)f);
    }
    case F_ITEMS: {
        BIND("items");
        return filter_items_gen(R, val);
    }
    case F_JOIN: {
        BIND("join", "d", "attribute");
        jv sep = given(a_[0]) ? soft_str(R, a_[0]) : jv_str(R, "", 0);
        jv *items;
        size_t n;
        if (jv_items(R, val, &items, &n) < 0)
            return jv_undef();
        lamina_strbuf b = {.limit = R->max_output};
        for (size_t i = 0; i < n && !R->failed; i++) {
            if (i)
                lamina_strbuf_add(&b, sep.s->p, sep.s->len);
            jv x = items[i];
            if (given(a_[1]) && a_[1].t != JV_NONE)
                x = attr_get(R, x, a_[1], missing());
            jv_str_into(R, &b, x);
        }
        if (R->failed) {
            lamina_strbuf_free(&b);
            return jv_undef();
        }
        return jv_buf(R, &b);
    }
    case F_LIST: {
        BIND("list");
        return to_list(R, val);
    }
    case F_LOWER:
    case F_UPPER: {
        BIND(fid == F_LOWER ? "lower" : "upper");
        return str_case(R, soft_str(R, val), fid == F_LOWER ? JJ_LOWER : JJ_UPPER);
    }
    case F_MAP:
        return filter_map(R, val, args, nargs, kwn, kwv, nkw);
    case F_MAX:
    case F_MIN:
        return min_max(R, val, args, nargs, kwn, kwv, nkw, fid == F_MAX);
    case F_REJECT:
    case F_SELECT:
        return select_reject(R, val, args, nargs, kwn, kwv, nkw, fid == F_REJECT, 0);
    case F_REJECTATTR:
    case F_SELECTATTR:
        return select_reject(R, val, args, nargs, kwn, kwv, nkw, fid == F_REJECTATTR, 1);
    case F_REPLACE: {
        BIND("replace", "old", "new", "count");
        if (!given(a_[0]) || !given(a_[1])) {
            jj_fail(R, LAMINA_EINVAL, "replace() needs old and new");
            return jv_undef();
        }
        int64_t count = -1;
        if (given(a_[2]) && a_[2].t != JV_NONE && need_int(R, a_[2], "count", &count) < 0)
            return jv_undef();
        jv s = soft_str(R, val);
        s.sub = 0;
        return str_replace(R, s, soft_str(R, a_[0]), soft_str(R, a_[1]), count);
    }
    case F_REVERSE: {
        BIND("reverse");
        if (val.t == JV_STR) {
            lamina_strbuf b = {.limit = R->max_output};
            size_t e = val.s->len;
            while (e > 0) {
                size_t st = e - 1;
                while (st > 0 && ((unsigned char)val.s->p[st] & 0xC0) == 0x80)
                    st--;
                lamina_strbuf_add(&b, val.s->p + st, e - st);
                e = st;
            }
            return mk_str(R, &b, 0);
        }
        jv *items;
        size_t n;
        if (val.t == JV_NONE || val.t == JV_INT || val.t == JV_FLOAT || val.t == JV_BOOL) {
            jj_fail(R, LAMINA_EINVAL, "argument to reversed() must be a sequence");
            return jv_undef();
        }
        /* reversed(): an iterator; a generator becomes a reversed list */
        int kind = JL_REVITER;
        const char *pyname = "reversed";
        if (val.t == JV_LIST && (val.sub == JL_GEN || val.sub == JL_REVITER))
            kind = JL_LIST;
        else if (val.t == JV_LIST && val.sub == JL_LIST)
            pyname = "list_reverseiterator";
        else if (val.t == JV_LIST && val.sub == JL_RANGE)
            pyname = "range_iterator";
        else if (val.t == JV_DICT)
            pyname = "dict_reversekeyiterator";
        if (jv_items(R, val, &items, &n) < 0)
            return jv_undef();
        jv out = jv_list(R, n, kind);
        if (kind == JL_REVITER)
            out.l->pyname = pyname;
        for (size_t i = n; i > 0; i--)
            jl_push(R, out, items[i - 1]);
        return out;
    }
    case F_ROUND: {
        BIND("round", "precision", "method");
        int64_t prec = 0;
        if (given(a_[0]) && need_int(R, a_[0], "precision", &prec) < 0)
            return jv_undef();
        const char *method = "common";
        if (given(a_[1])) {
            if (need_str(R, a_[1], "method") < 0)
                return jv_undef();
            method = a_[1].s->p;
        }
        if (strcmp(method, "common") && strcmp(method, "ceil") && strcmp(method, "floor")) {
            jj_fail(R, LAMINA_EINVAL, "method must be common, ceil or floor");
            return jv_undef();
        }
        if (!jv_is_num(val)) {
            if (val.t == JV_UNDEF)
                jj_fail_undef(R, val);
            else
                jj_fail(R, LAMINA_EINVAL, "type %s doesn't define __round__ method",
                        jv_type_name(val));
            return jv_undef();
        }
        if (!strcmp(method, "common")) {
            if (val.t != JV_FLOAT) {
                if (prec >= 0)
                    return jv_int(val.i);
                return jv_int((int64_t)py_round((double)val.i, prec));
            }
            return jv_float(py_round(val.f, prec));
        }
        double p10 = pow(10.0, (double)prec);
        double x = jv_num(val) * p10;
        return jv_float((method[0] == 'c' ? ceil(x) : floor(x)) / p10);
    }
    case F_SAFE: {
        BIND("safe");
        jv s = jv_to_str(R, val);
        s.sub = 1;
        return s;
    }
    case F_SORT: {
        BIND("sort", "reverse", "case_sensitive", "attribute");
        jv *items;
        size_t n;
        if (jv_items(R, val, &items, &n) < 0)
            return jv_undef();
        jv *keys = sort_keys(R, items, n, a_[2], given(a_[1]) && jv_truthy(a_[1]));
        size_t *idx = keys ? sorted_order(R, keys, n, given(a_[0]) && jv_truthy(a_[0])) : NULL;
        if (idx == NULL)
            return jv_undef();
        jv out = jv_list(R, n, JL_LIST);
        for (size_t i = 0; i < n; i++)
            jl_push(R, out, items[idx[i]]);
        return out;
    }
    case F_STRING: {
        BIND("string");
        return soft_str(R, val);
    }
    case F_SUM: {
        BIND("sum", "attribute", "start");
        jv acc = given(a_[1]) ? a_[1] : jv_int(0);
        jv *items;
        size_t n;
        if (jv_items(R, val, &items, &n) < 0)
            return jv_undef();
        for (size_t i = 0; i < n && !R->failed; i++) {
            jv x = items[i];
            if (given(a_[0]) && a_[0].t != JV_NONE)
                x = attr_get(R, x, a_[0], missing());
            acc = jj_binop(R, OP_ADD, acc, x);
        }
        return acc;
    }
    case F_TITLE: {
        BIND("title");
        return filter_title(R, soft_str(R, val));
    }
    case F_TOJSON:
        return to_json(R, val, args, nargs, kwn, kwv, nkw);
    case F_TRIM: {
        BIND("trim", "chars");
        const jstr *set;
        if (strip_set(R, a_[0], &set) < 0)
            return jv_undef();
        return str_strip(R, soft_str(R, val), set, 3);
    }
    case F_UNIQUE: {
        BIND("unique", "case_sensitive", "attribute");
        jv *items;
        size_t n;
        if (jv_items(R, val, &items, &n) < 0)
            return jv_undef();
        jv *keys = sort_keys(R, items, n, a_[1], given(a_[0]) && jv_truthy(a_[0]));
        if (keys == NULL)
            return jv_undef();
        jv out = jv_list(R, n, JL_GEN);
        out.l->pyname = "sync_do_unique";
        for (size_t i = 0; i < n && !R->failed; i++) {
            jv k = keys[i];
            if (k.t == JV_DICT || k.t == JV_NS || (k.t == JV_LIST && k.sub != JL_TUPLE)) {
                jj_fail(R, LAMINA_EINVAL, "unhashable type: '%s'", jv_type_name(k));
                return jv_undef();
            }
            size_t j;
            for (j = 0; j < i; j++)
                if (jv_eq(R, keys[j], k))
                    break;
            if (j == i)
                jl_push(R, out, items[i]);
        }
        return out;
    }
    case F_WORDCOUNT: {
        BIND("wordcount");
        jv s = soft_str(R, val);
        int64_t words = 0;
        int in_word = 0;
        size_t i = 0;
        while (i < s.s->len) {
            uint32_t cp = jj_utf8_next(s.s->p, s.s->len, &i);
            int w = cp == '_' || cp_alnum(cp) || (cp >= 0x80 && !jj_isspace(cp));
            if (w && !in_word)
                words++;
            in_word = w;
        }
        return jv_int(words);
    }
    default:
        jj_fail(R, LAMINA_EINVAL, "No filter named '%s'.", name);
        return jv_undef();
    }
}

/* ---- tests ---------------------------------------------------------------------- */

static int is_known_filter_name(const char *n)
{
    static const char *const more[] = {
        "batch", "filesizeformat", "groupby", "pprint", "random", "slice", "striptags",
        "truncate", "urlencode", "urlize", "wordwrap", "xmlattr",
    };
    if (jj_filter_id(n) != F_UNKNOWN)
        return 1;
    for (size_t i = 0; i < NELEM(more); i++)
        if (!strcmp(more[i], n))
            return 1;
    return 0;
}

int jj_test(jj_render *R, int tid, const char *name, jv val, jv *args, size_t nargs,
            const char **kwn, jv *kwv, size_t nkw)
{
    jv a_[1] = {missing()};
    if (R->failed)
        return -1;
    if (tid == T_UNKNOWN) {
        jj_fail(R, LAMINA_EINVAL, "No test named '%s'.", name);
        return -1;
    }
    /* every test takes at most one argument besides the value */
    static const char *const one[] = {"value"};
    int takes = tid == T_DIVISIBLEBY || tid == T_EQ || tid == T_NE || tid == T_LT ||
                tid == T_LE || tid == T_GT || tid == T_GE || tid == T_IN || tid == T_SAMEAS;
    if (bind(R, name, one, takes ? 1 : 0, args, nargs, kwn, kwv, nkw, a_) < 0)
        return -1;
    if (takes && !given(a_[0])) {
        jj_fail(R, LAMINA_EINVAL, "test '%s' needs an argument", name);
        return -1;
    }
    jv o = a_[0];
    int c;
    switch (tid) {
    case T_BOOLEAN: return val.t == JV_BOOL;
    case T_CALLABLE:
        return val.t == JV_MACRO || val.t == JV_FUNC || val.t == JV_METHOD || val.t == JV_UNDEF;
    case T_DEFINED: return val.t != JV_UNDEF;
    case T_UNDEFINED: return val.t == JV_UNDEF;
    case T_DIVISIBLEBY: {
        if (!jv_is_num(val) || !jv_is_num(o)) {
            if (val.t == JV_UNDEF)
                jj_fail_undef(R, val);
            else
                jj_fail(R, LAMINA_EINVAL, "divisibleby needs numbers");
            return -1;
        }
        if (jv_num(o) == 0.0) {
            jj_fail(R, LAMINA_EINVAL, "integer division or modulo by zero");
            return -1;
        }
        if (val.t == JV_FLOAT || o.t == JV_FLOAT) {
            double m = fmod(jv_num(val), jv_num(o));
            return m == 0.0;
        }
        if (o.i == -1)
            return 1;
        return val.i % o.i == 0;
    }
    case T_EQ: return jv_eq(R, val, o);
    case T_NE: return !jv_eq(R, val, o);
    case T_LT: case T_LE: case T_GT: case T_GE:
        if (jv_cmp(R, val, o, &c) < 0)
            return -1;
        if (c == 2)
            return 0;
        return tid == T_LT ? c < 0 : tid == T_LE ? c <= 0 : tid == T_GT ? c > 0 : c >= 0;
    case T_ESCAPED: return val.t == JV_STR && val.sub;
    case T_EVEN:
    case T_ODD:
        if (val.t == JV_INT || val.t == JV_BOOL)
            return (int)((val.i % 2 + 2) % 2) == (tid == T_ODD);
        if (val.t == JV_FLOAT) {
            double m = fmod(val.f, 2.0);
            if (m < 0)
                m += 2.0;
            return tid == T_ODD ? m == 1.0 : m == 0.0;
        }
        if (val.t == JV_UNDEF)
            jj_fail_undef(R, val);
        else
            jj_fail(R, LAMINA_EINVAL, "test '%s' needs a number, not %s", name, jv_type_name(val));
        return -1;
    case T_FALSE: return val.t == JV_BOOL && !val.i;
    case T_TRUE: return val.t == JV_BOOL && val.i;
    case T_FILTER: return val.t == JV_STR && is_known_filter_name(val.s->p);
    case T_TEST: return val.t == JV_STR && jj_test_id(val.s->p) != T_UNKNOWN;
    case T_FLOAT: return val.t == JV_FLOAT;
    case T_INTEGER: return val.t == JV_INT;
    case T_IN: {
        int r;
        if (jv_contains(R, o, val, &r) < 0)
            return -1;
        return r;
    }
    case T_ITERABLE:
        return val.t == JV_STR || val.t == JV_LIST || val.t == JV_DICT || val.t == JV_UNDEF ||
               val.t == JV_LOOP;
    case T_LOWER:
    case T_UPPER: {
        jv s = jv_to_str(R, val);
        return str_is_case(s.s, tid == T_LOWER ? 1 : 2);
    }
    case T_MAPPING: return val.t == JV_DICT;
    case T_NONE: return val.t == JV_NONE;
    case T_NUMBER: return jv_is_num(val);
    case T_SAMEAS:
        if (val.t != o.t)
            return 0;
        switch (val.t) {
        case JV_NONE: case JV_UNDEF: return 1;
        case JV_BOOL: case JV_INT: return val.i == o.i;
        case JV_FLOAT: return val.f == o.f;
        default: return val.p == o.p;
        }
    case T_SEQUENCE:
        return val.t == JV_STR || val.t == JV_DICT || val.t == JV_UNDEF ||
               (val.t == JV_LIST && (val.sub == JL_LIST || val.sub == JL_TUPLE ||
                                     val.sub == JL_RANGE));
    case T_STRING: return val.t == JV_STR;
    default:
        jj_fail(R, LAMINA_EINVAL, "No test named '%s'.", name);
        return -1;
    }
}

/* ---- methods ------------------------------------------------------------------ */

int jj_method_for(jv self, const char *name, int *unsafe)
{
    static const char *const list_unsafe[] = {
        "append", "clear", "pop", "reverse", "insert", "sort", "extend", "remove",
    };
    static const char *const dict_unsafe[] = {"clear", "pop", "popitem", "setdefault", "update"};
    *unsafe = 0;
    int id = jj_method_id(name);
    switch (self.t) {
    case JV_STR:
        return id >= M_CAPITALIZE && id <= M_ZFILL ? id : M_NONE;
    case JV_DICT:
        for (size_t i = 0; i < NELEM(dict_unsafe); i++)
            if (!strcmp(name, dict_unsafe[i])) {
                *unsafe = 1;
                return M_NONE;
            }
        return id == M_GET || id == M_ITEMS || id == M_KEYS || id == M_VALUES || id == M_COPY
                   ? id : M_NONE;
    case JV_LIST:
        if (self.sub == JL_LIST) {
            for (size_t i = 0; i < NELEM(list_unsafe); i++)
                if (!strcmp(name, list_unsafe[i])) {
                    *unsafe = 1;
                    return M_NONE;
                }
            return id == M_COUNT || id == M_INDEX || id == M_COPY ? id : M_NONE;
        }
        if (self.sub == JL_TUPLE || self.sub == JL_RANGE)
            return id == M_COUNT || id == M_INDEX ? id : M_NONE;
        return M_NONE;
    default:
        return M_NONE;
    }
}

/* with a Markup receiver, str arguments are escaped first */
static jv marg(jj_render *R, jv self, jv a)
{
    if (!self.sub || a.t != JV_STR || a.sub)
        return a;
    lamina_strbuf b = {.limit = R->max_output};
    jj_escape_into(&b, a.s->p, a.s->len);
    return mk_str(R, &b, 1);
}

static jv str_method(jj_render *R, jv self, int mid, jv *args, size_t nargs, const char **kwn,
                     jv *kwv, size_t nkw)
{
    const jstr *s = self.s;
    const char *what = jj_method_name(mid);
    switch (mid) {
    case M_CAPITALIZE: { BIND(what); return str_capitalize(R, self); }
    case M_LOWER: { BIND(what); return str_case(R, self, JJ_LOWER); }
    case M_UPPER: { BIND(what); return str_case(R, self, JJ_UPPER); }
    case M_TITLE: { BIND(what); return str_title(R, self); }
    case M_STRIP:
    case M_LSTRIP:
    case M_RSTRIP: {
        BIND(what, "chars");
        const jstr *set;
        if (strip_set(R, marg(R, self, a_[0]), &set) < 0)
            return jv_undef();
        return str_strip(R, self, set, mid == M_STRIP ? 3 : mid == M_LSTRIP ? 1 : 2);
    }
    case M_CENTER:
    case M_LJUST:
    case M_RJUST: {
        BIND(what, "width", "fillchar");
        int64_t w;
        if (!given(a_[0])) {
            jj_fail(R, LAMINA_EINVAL, "%s() takes at least 1 argument", what);
            return jv_undef();
        }
        if (need_int(R, a_[0], "width", &w) < 0)
            return jv_undef();
        return str_pad(R, self, w, a_[1], mid == M_CENTER ? 0 : mid == M_LJUST ? 1 : 2);
    }
    case M_ZFILL: {
        BIND(what, "width");
        int64_t w;
        if (!given(a_[0]) || need_int(R, a_[0], "width", &w) < 0)
            return jv_undef();
        int64_t len = (int64_t)s->ncp;
        if (w <= len)
            return self;
        if ((uint64_t)w > R->max_output) {
            jj_fail(R, LAMINA_ERANGE, "padding longer than %zu", R->max_output);
            return jv_undef();
        }
        lamina_strbuf b = {.limit = R->max_output};
        size_t st = 0;
        if (s->len && (s->p[0] == '+' || s->p[0] == '-')) {
            lamina_strbuf_ch(&b, s->p[0]);
            st = 1;
        }
        for (int64_t i = 0; i < w - len; i++)
            lamina_strbuf_ch(&b, '0');
        lamina_strbuf_add(&b, s->p + st, s->len - st);
        return mk_str(R, &b, self.sub);
    }
    case M_COUNT:
    case M_FIND:
    case M_RFIND:
    case M_INDEX:
    case M_RINDEX: {
        BIND(what, "sub", "start", "end");
        if (!given(a_[0])) {
            jj_fail(R, LAMINA_EINVAL, "%s() takes at least 1 argument", what);
            return jv_undef();
        }
        jv sub = marg(R, self, a_[0]);
        if (need_str(R, sub, "substring") < 0)
            return jv_undef();
        size_t b0, b1;
        if (span_args(R, s, a_[1], a_[2], &b0, &b1) < 0)
            return jv_undef();
        if (b0 > s->len) {
            if (mid == M_COUNT)
                return jv_int(0);
            if (mid == M_FIND || mid == M_RFIND)
                return jv_int(-1);
            jj_fail(R, LAMINA_EINVAL, "substring not found");
            return jv_undef();
        }
        const char *p = s->p + b0;
        size_t n = b1 - b0, sl = sub.s->len;
        if (mid == M_COUNT) {
            if (sl == 0)
                return jv_int((int64_t)jj_utf8_count(p, n) + 1);
            int64_t c = 0;
            size_t i = 0;
            const char *f;
            while (i <= n && (f = memmem(p + i, n - i, sub.s->p, sl)) != NULL) {
                c++;
                i = (size_t)(f - p) + sl;
            }
            return jv_int(c);
        }
        const char *f = NULL;
        if (mid == M_FIND || mid == M_INDEX) {
            f = sl == 0 ? p : memmem(p, n, sub.s->p, sl);
        } else if (n >= sl) {
            for (size_t k = n - sl + 1; k > 0; k--)
                if (memcmp(p + k - 1, sub.s->p, sl) == 0) {
                    f = p + k - 1;
                    break;
                }
        }
        if (f == NULL) {
            if (mid == M_INDEX || mid == M_RINDEX) {
                jj_fail(R, LAMINA_EINVAL, "substring not found");
                return jv_undef();
            }
            return jv_int(-1);
        }
        return jv_int(cp_index(s, (size_t)(f - s->p)));
    }
    case M_STARTSWITH:
    case M_ENDSWITH: {
        BIND(what, "prefix", "start", "end");
        if (!given(a_[0])) {
            jj_fail(R, LAMINA_EINVAL, "%s() takes at least 1 argument", what);
            return jv_undef();
        }
        size_t b0, b1;
        if (span_args(R, s, a_[1], a_[2], &b0, &b1) < 0)
            return jv_undef();
        jv *cands = &a_[0];
        size_t nc = 1;
        if (a_[0].t == JV_LIST && a_[0].sub == JL_TUPLE) {
            cands = a_[0].l->v;
            nc = a_[0].l->n;
        }
        for (size_t k = 0; k < nc; k++) {
            jv c = cands[k];
            if (c.t != JV_STR) {
                jj_fail(R, LAMINA_EINVAL, "%s first arg must be str or a tuple of str, not %s",
                        what, jv_type_name(c));
                return jv_undef();
            }
            if (b0 > s->len)
                continue;
            size_t n = b1 - b0, cl = c.s->len;
            if (cl > n)
                continue;
            const char *at = mid == M_STARTSWITH ? s->p + b0 : s->p + b1 - cl;
            if (memcmp(at, c.s->p, cl) == 0)
                return jv_bool(1);
        }
        return jv_bool(0);
    }
    case M_ISALNUM: { BIND(what); return jv_bool(str_all(s, cp_alnum)); }
    case M_ISALPHA: { BIND(what); return jv_bool(str_all(s, cp_alpha)); }
    case M_ISDIGIT: { BIND(what); return jv_bool(str_all(s, cp_digit)); }
    case M_ISSPACE: { BIND(what); return jv_bool(str_all(s, cp_space)); }
    case M_ISLOWER: { BIND(what); return jv_bool(str_is_case(s, 1)); }
    case M_ISUPPER: { BIND(what); return jv_bool(str_is_case(s, 2)); }
    case M_JOIN: {
        BIND(what, "iterable");
        if (!given(a_[0])) {
            jj_fail(R, LAMINA_EINVAL, "join() takes exactly one argument");
            return jv_undef();
        }
        jv *items;
        size_t n;
        if (jv_items(R, a_[0], &items, &n) < 0)
            return jv_undef();
        lamina_strbuf b = {.limit = R->max_output};
        for (size_t i = 0; i < n; i++) {
            if (items[i].t != JV_STR) {
                lamina_strbuf_free(&b);
                jj_fail(R, LAMINA_EINVAL, "sequence item %zu: expected str instance, %s found", i,
                        jv_type_name(items[i]));
                return jv_undef();
            }
            if (i)
                lamina_strbuf_add(&b, s->p, s->len);
            jv it = marg(R, self, items[i]);
            lamina_strbuf_add(&b, it.s->p, it.s->len);
        }
        return mk_str(R, &b, self.sub);
    }
    case M_PARTITION:
    case M_RPARTITION: {
        BIND(what, "sep");
        jv sep = given(a_[0]) ? marg(R, self, a_[0]) : a_[0];
        if (!given(sep) || need_str(R, sep, "sep") < 0)
            return jv_undef();
        if (sep.s->len == 0) {
            jj_fail(R, LAMINA_EINVAL, "empty separator");
            return jv_undef();
        }
        const char *f = NULL;
        if (mid == M_PARTITION) {
            f = memmem(s->p, s->len, sep.s->p, sep.s->len);
        } else if (s->len >= sep.s->len) {
            for (size_t k = s->len - sep.s->len + 1; k > 0; k--)
                if (memcmp(s->p + k - 1, sep.s->p, sep.s->len) == 0) {
                    f = s->p + k - 1;
                    break;
                }
        }
        jv t = jv_list(R, 3, JL_TUPLE);
        jv e = jv_str(R, "", 0);
        e.sub = self.sub;
        if (f == NULL) {
            if (mid == M_PARTITION) {
                jl_push(R, t, self);
                jl_push(R, t, e);
                jl_push(R, t, e);
            } else {
                jl_push(R, t, e);
                jl_push(R, t, e);
                jl_push(R, t, self);
            }
            return t;
        }
        size_t at = (size_t)(f - s->p);
        jv l = jv_str(R, s->p, at), r = jv_str(R, f + sep.s->len, s->len - at - sep.s->len);
        l.sub = r.sub = self.sub;
        jl_push(R, t, l);
        jl_push(R, t, sep);
        jl_push(R, t, r);
        return t;
    }
    case M_REMOVEPREFIX:
    case M_REMOVESUFFIX: {
        BIND(what, "affix");
        jv a = given(a_[0]) ? marg(R, self, a_[0]) : a_[0];
        if (!given(a) || need_str(R, a, "affix") < 0)
            return jv_undef();
        size_t al = a.s->len;
        if (al > s->len)
            return self;
        if (mid == M_REMOVEPREFIX && memcmp(s->p, a.s->p, al) == 0) {
            jv r = jv_str(R, s->p + al, s->len - al);
            r.sub = self.sub;
            return r;
        }
        if (mid == M_REMOVESUFFIX && al && memcmp(s->p + s->len - al, a.s->p, al) == 0) {
            jv r = jv_str(R, s->p, s->len - al);
            r.sub = self.sub;
            return r;
        }
        return self;
    }
    case M_REPLACE: {
        BIND(what, "old", "new", "count");
        int64_t count = -1;
        if (!given(a_[0]) || !given(a_[1])) {
            jj_fail(R, LAMINA_EINVAL, "replace() takes at least 2 arguments");
            return jv_undef();
        }
        jv o = marg(R, self, a_[0]), nw = marg(R, self, a_[1]);
        if (need_str(R, o, "old") < 0 || need_str(R, nw, "new") < 0)
            return jv_undef();
        if (given(a_[2]) && need_int(R, a_[2], "count", &count) < 0)
            return jv_undef();
        return str_replace(R, self, o, nw, count);
    }
    case M_SPLIT:
    case M_RSPLIT: {
        BIND(what, "sep", "maxsplit");
        int64_t maxsplit = -1;
        if (given(a_[1]) && need_int(R, a_[1], "maxsplit", &maxsplit) < 0)
            return jv_undef();
        jv sep = given(a_[0]) ? marg(R, self, a_[0]) : a_[0];
        jv out = str_split(R, self, sep, maxsplit, mid == M_RSPLIT);
        if (self.sub && out.t == JV_LIST)
            for (size_t i = 0; i < out.l->n; i++)
                out.l->v[i].sub = 1;
        return out;
    }
    case M_SPLITLINES: {
        BIND(what, "keepends");
        return str_splitlines(R, self, given(a_[0]) && jv_truthy(a_[0]));
    }
    case M_FORMAT:
        return str_format(R, self, args, nargs, kwn, kwv, nkw);
    default:
        jj_fail(R, LAMINA_EINVAL, "'str' object has no attribute '%s'", what);
        return jv_undef();
    }
}

jv jj_method_call(jj_render *R, jv self, int mid, jv *args, size_t nargs, const char **kwn,
                  jv *kwv, size_t nkw)
{
    const char *what = jj_method_name(mid);
    if (R->failed)
        return jv_undef();
    if (self.t == JV_STR)
        return str_method(R, self, mid, args, nargs, kwn, kwv, nkw);
    if (self.t == JV_LOOP) {
        jloop *lp = self.lp;
        if (mid == M_CYCLE) {
            if (nkw || nargs == 0) {
                jj_fail(R, LAMINA_EINVAL, "no items for cycling given");
                return jv_undef();
            }
            return args[lp->i % nargs];
        }
        jv vals = jv_list(R, nargs, JL_TUPLE);
        for (size_t i = 0; i < nargs; i++)
            jl_push(R, vals, args[i]);
        int changed = !lp->changed_set || !jv_eq(R, lp->last_changed, vals);
        lp->last_changed = vals;
        lp->changed_set = 1;
        return jv_bool(changed);
    }
    if (self.t == JV_DICT) {
        switch (mid) {
        case M_GET: {
            BIND("get", "key", "default");
            if (!given(a_[0])) {
                jj_fail(R, LAMINA_EINVAL, "get expected at least 1 argument, got 0");
                return jv_undef();
            }
            jv v;
            if (jd_get(self.d, a_[0], &v))
                return v;
            return given(a_[1]) ? a_[1] : jv_none();
        }
        case M_ITEMS:
        case M_KEYS:
        case M_VALUES: {
            BIND(what);
            jv out = jv_list(R, self.d->n, mid == M_ITEMS ? JL_ITEMS : mid == M_KEYS ? JL_KEYS
                                                                                       : JL_VALUES);
            for (size_t i = 0; i < self.d->n; i++) {
                if (mid == M_ITEMS) {
                    jv t = jv_list(R, 2, JL_TUPLE);
                    jl_push(R, t, self.d->k[i]);
                    jl_push(R, t, self.d->v[i]);
                    jl_push(R, out, t);
                } else {
                    jl_push(R, out, mid == M_KEYS ? self.d->k[i] : self.d->v[i]);
                }
            }
            return out;
        }
        case M_COPY: {
            BIND(what);
            jv out = jv_dict(R, self.d->n, JV_DICT);
            for (size_t i = 0; i < self.d->n; i++)
                jd_set(R, out, self.d->k[i], self.d->v[i]);
            return out;
        }
        default: break;
        }
    }
    if (self.t == JV_LIST) {
        switch (mid) {
        case M_COUNT: {
            BIND("count", "value");
            if (!given(a_[0])) {
                jj_fail(R, LAMINA_EINVAL, "count() takes exactly one argument (0 given)");
                return jv_undef();
            }
            int64_t c = 0;
            for (size_t i = 0; i < self.l->n; i++)
                c += jv_eq(R, self.l->v[i], a_[0]);
            return jv_int(c);
        }
        case M_INDEX: {
            BIND("index", "value", "start", "stop");
            if (!given(a_[0])) {
                jj_fail(R, LAMINA_EINVAL, "index expected at least 1 argument, got 0");
                return jv_undef();
            }
            int64_t n = (int64_t)self.l->n, st = 0, en = n;
            if (given(a_[1]) && need_int(R, a_[1], "start", &st) < 0)
                return jv_undef();
            if (given(a_[2]) && need_int(R, a_[2], "stop", &en) < 0)
                return jv_undef();
            if (st < 0 && (st += n) < 0) st = 0;
            if (en < 0 && (en += n) < 0) en = 0;
            for (int64_t i = st; i < en && i < n; i++)
                if (jv_eq(R, self.l->v[i], a_[0]))
                    return jv_int(i);
            jj_fail(R, LAMINA_EINVAL, "value is not in list");
            return jv_undef();
        }
        case M_COPY: {
            BIND(what);
            jv out = jv_list(R, self.l->n, JL_LIST);
            for (size_t i = 0; i < self.l->n; i++)
                jl_push(R, out, self.l->v[i]);
            return out;
        }
        default: break;
        }
    }
    jj_fail(R, LAMINA_EINVAL, "'%s' object has no attribute '%s'", jv_type_name(self), what);
    return jv_undef();
}

/* ---- globals -------------------------------------------------------------------- */

/* dict(*args, **kwargs) as Python builds it */
static jv build_dict(jj_render *R, const char *what, jv *args, size_t nargs, const char **kwn,
                     jv *kwv, size_t nkw, int type)
{
    jv d = jv_dict(R, nkw, type);
    if (nargs > 1) {
        jj_fail(R, LAMINA_EINVAL, "%s expected at most 1 argument, got %zu", what, nargs);
        return jv_undef();
    }
    if (nargs == 1) {
        jv a = args[0];
        if (a.t == JV_DICT || a.t == JV_NS) {
            for (size_t i = 0; i < a.d->n; i++)
                jd_set(R, d, a.d->k[i], a.d->v[i]);
        } else {
            jv *items;
            size_t n;
            if (jv_items(R, a, &items, &n) < 0)
                return jv_undef();
            for (size_t i = 0; i < n; i++) {
                jv *kv;
                size_t m;
                if (items[i].t == JV_STR || jv_items(R, items[i], &kv, &m) < 0 || m != 2) {
                    if (!R->failed)
                        jj_fail(R, LAMINA_EINVAL, "dictionary update sequence element #%zu has "
                                                  "the wrong length", i);
                    return jv_undef();
                }
                jd_set(R, d, kv[0], kv[1]);
            }
        }
    }
    for (size_t k = 0; k < nkw; k++)
        jd_set(R, d, jv_cstr(R, kwn[k]), kwv[k]);
    return d;
}

static jv strftime_now(jj_render *R, jv fmt)
{
    if (need_str(R, fmt, "format") < 0)
        return jv_undef();
    /* datetime.strftime: %f, %z and %Z are Python's own (naive time) */
    lamina_strbuf f = {.limit = 4096};
    const char *p = fmt.s->p;
    size_t n = fmt.s->len;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '%' && i + 1 < n) {
            char c = p[i + 1];
            if (c == 'f') {
                lamina_strbuf_str(&f, "000000");
                i++;
                continue;
            }
            if (c == 'z' || c == 'Z') {
                i++;
                continue;
            }
            lamina_strbuf_ch(&f, '%');
            lamina_strbuf_ch(&f, c);
            i++;
            continue;
        }
        lamina_strbuf_ch(&f, p[i]);
    }
    if (f.over) {
        lamina_strbuf_free(&f);
        jj_fail(R, LAMINA_ERANGE, "strftime format too long");
        return jv_undef();
    }
    char out[8192];
    size_t len = f.p ? strftime(out, sizeof out, f.p, &R->now) : 0;
    lamina_strbuf_free(&f);
    return jv_str(R, out, len);
}

jv jj_global_call(jj_render *R, int gid, jv *args, size_t nargs, const char **kwn, jv *kwv,
                  size_t nkw)
{
    switch (gid) {
    case G_RANGE: {
        if (nkw) {
            jj_fail(R, LAMINA_EINVAL, "range() takes no keyword arguments");
            return jv_undef();
        }
        if (nargs < 1 || nargs > 3) {
            jj_fail(R, LAMINA_EINVAL, "range expected 1 to 3 arguments, got %zu", nargs);
            return jv_undef();
        }
        int64_t v[3];
        for (size_t i = 0; i < nargs; i++)
            if (need_int(R, args[i], "range() argument", &v[i]) < 0)
                return jv_undef();
        int64_t start = nargs > 1 ? v[0] : 0, stop = nargs > 1 ? v[1] : v[0];
        int64_t stp = nargs > 2 ? v[2] : 1;
        if (stp == 0) {
            jj_fail(R, LAMINA_EINVAL, "range() arg 3 must not be zero");
            return jv_undef();
        }
        /* the sandbox's limit */
        double cnt = stp > 0 ? ceil(((double)stop - (double)start) / (double)stp)
                             : ceil(((double)start - (double)stop) / (double)-stp);
        if (cnt < 0)
            cnt = 0;
        if (cnt > 100000) {
            jj_fail(R, LAMINA_ERANGE, "Range too big. The sandbox blocks ranges larger than "
                                      "MAX_RANGE (100000).");
            return jv_undef();
        }
        jv out = jv_list(R, (size_t)cnt, JL_RANGE);
        out.l->r0 = start;
        out.l->r1 = stop;
        out.l->r2 = stp;
        for (int64_t i = 0, x = start; i < (int64_t)cnt; i++, x += stp)
            jl_push(R, out, jv_int(x));
        return out;
    }
    case G_NAMESPACE:
        return build_dict(R, "Namespace", args, nargs, kwn, kwv, nkw, JV_NS);
    case G_DICT:
        return build_dict(R, "dict", args, nargs, kwn, kwv, nkw, JV_DICT);
    case G_RAISE: {
        static const char *const names_[] = {"message"};
        jv a_[1];
        if (bind(R, "raise_exception", names_, 1, args, nargs, kwn, kwv, nkw, a_) < 0)
            return jv_undef();
        jv m = given(a_[0]) ? jv_to_str(R, a_[0]) : jv_str(R, "", 0);
        jj_fail(R, LAMINA_EINVAL, "raise_exception: %s", m.s->p);
        return jv_undef();
    }
    case G_STRFTIME: {
        static const char *const names_[] = {"format"};
        jv a_[1];
        if (bind(R, "strftime_now", names_, 1, args, nargs, kwn, kwv, nkw, a_) < 0)
            return jv_undef();
        if (!given(a_[0])) {
            jj_fail(R, LAMINA_EINVAL, "strftime_now() missing 1 required positional argument");
            return jv_undef();
        }
        return strftime_now(R, a_[0]);
    }
    default:
        jj_fail(R, LAMINA_EINVAL, "not callable");
        return jv_undef();
    }
}
