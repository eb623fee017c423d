/* jinja_parse.c - template source to syntax tree, as jinja2's lexer and
 * parser do it with trim_blocks and lstrip_blocks on, then a check of the
 * tree against the subset (see jinja.h). */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_impl.h"
#include "lamina/plugin.h"

#define MAX_NEST 200   /* nested expressions and blocks */

/* ---- names of the subset ---------------------------------------------------- */

struct name_id {
    const char *name;
    int id;
};

static const struct name_id filters[] = {
    {"abs", F_ABS}, {"attr", F_ATTR}, {"capitalize", F_CAPITALIZE}, {"center", F_CENTER},
    {"count", F_COUNT}, {"d", F_DEFAULT}, {"default", F_DEFAULT}, {"dictsort", F_DICTSORT},
    {"e", F_ESCAPE}, {"escape", F_ESCAPE}, {"first", F_FIRST}, {"float", F_FLOAT},
    {"forceescape", F_FORCEESCAPE}, {"format", F_FORMAT}, {"indent", F_INDENT}, {"int", F_INT},
    {"items", F_ITEMS}, {"join", F_JOIN}, {"last", F_LAST}, {"length", F_LENGTH},
    {"list", F_LIST}, {"lower", F_LOWER}, {"map", F_MAP}, {"max", F_MAX}, {"min", F_MIN},
    {"reject", F_REJECT}, {"rejectattr", F_REJECTATTR}, {"replace", F_REPLACE},
    {"reverse", F_REVERSE}, {"round", F_ROUND}, {"safe", F_SAFE}, {"select", F_SELECT},
    {"selectattr", F_SELECTATTR}, {"sort", F_SORT}, {"string", F_STRING}, {"sum", F_SUM},
    {"title", F_TITLE}, {"tojson", F_TOJSON}, {"trim", F_TRIM}, {"unique", F_UNIQUE},
    {"upper", F_UPPER}, {"wordcount", F_WORDCOUNT},
};
/* jinja2's own filters that lamina does not have: refused at load */
static const char *const filters_refused[] = {
    "batch", "filesizeformat", "groupby", "pprint", "random", "slice", "striptags",
    "truncate", "urlencode", "urlize", "wordwrap", "xmlattr",
};

static const struct name_id tests[] = {
    {"!=", T_NE}, {"<", T_LT}, {"<=", T_LE}, {"==", T_EQ}, {">", T_GT}, {">=", T_GE},
    {"boolean", T_BOOLEAN}, {"callable", T_CALLABLE}, {"defined", T_DEFINED},
    {"divisibleby", T_DIVISIBLEBY}, {"eq", T_EQ}, {"equalto", T_EQ}, {"escaped", T_ESCAPED},
    {"even", T_EVEN}, {"false", T_FALSE}, {"filter", T_FILTER}, {"float", T_FLOAT},
    {"ge", T_GE}, {"greaterthan", T_GT}, {"gt", T_GT}, {"in", T_IN}, {"integer", T_INTEGER},
    {"iterable", T_ITERABLE}, {"le", T_LE}, {"lessthan", T_LT}, {"lower", T_LOWER},
    {"lt", T_LT}, {"mapping", T_MAPPING}, {"ne", T_NE}, {"none", T_NONE},
    {"number", T_NUMBER}, {"odd", T_ODD}, {"sameas", T_SAMEAS}, {"sequence", T_SEQUENCE},
    {"string", T_STRING}, {"test", T_TEST}, {"true", T_TRUE}, {"undefined", T_UNDEFINED},
    {"upper", T_UPPER},
};

static const struct name_id methods[] = {
    {"capitalize", M_CAPITALIZE}, {"center", M_CENTER}, {"count", M_COUNT},
    {"endswith", M_ENDSWITH}, {"find", M_FIND}, {"format", M_FORMAT}, {"index", M_INDEX},
    {"isalnum", M_ISALNUM}, {"isalpha", M_ISALPHA}, {"isdigit", M_ISDIGIT},
    {"islower", M_ISLOWER}, {"isspace", M_ISSPACE}, {"isupper", M_ISUPPER}, {"join", M_JOIN},
    {"ljust", M_LJUST}, {"lower", M_LOWER}, {"lstrip", M_LSTRIP}, {"partition", M_PARTITION},
    {"removeprefix", M_REMOVEPREFIX}, {"removesuffix", M_REMOVESUFFIX},
    {"replace", M_REPLACE}, {"rfind", M_RFIND}, {"rindex", M_RINDEX}, {"rjust", M_RJUST},
    {"rpartition", M_RPARTITION}, {"rsplit", M_RSPLIT}, {"rstrip", M_RSTRIP},
    {"split", M_SPLIT}, {"splitlines", M_SPLITLINES}, {"startswith", M_STARTSWITH},
    {"strip", M_STRIP}, {"title", M_TITLE}, {"upper", M_UPPER}, {"zfill", M_ZFILL},
    {"get", M_GET}, {"items", M_ITEMS}, {"keys", M_KEYS}, {"values", M_VALUES},
    {"copy", M_COPY}, {"cycle", M_CYCLE}, {"changed", M_CHANGED},
};
/* methods of str, list and dict that lamina does not have: calling one is
 * refused at load (those that modify are refused at run time, as the
 * sandbox does) */
static const char *const methods_refused[] = {
    "casefold", "encode", "expandtabs", "format_map", "isascii", "isdecimal",
    "isidentifier", "isnumeric", "isprintable", "istitle", "maketrans", "swapcase",
    "translate", "fromkeys",
};
static const char *const globals_refused[] = {"cycler", "joiner", "lipsum"};

static int lookup(const struct name_id *t, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(t[i].name, name))
            return t[i].id;
    return 0;
}

static int in_list(const char *const *l, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(l[i], name))
            return 1;
    return 0;
}

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

int jj_filter_id(const char *name) { return lookup(filters, NELEM(filters), name); }
int jj_test_id(const char *name) { return lookup(tests, NELEM(tests), name); }
int jj_method_id(const char *name) { return lookup(methods, NELEM(methods), name); }

const char *jj_method_name(int id)
{
    for (size_t i = 0; i < NELEM(methods); i++)
        if (methods[i].id == id)
            return methods[i].name;
    return "?";
}

int jj_global_id(const char *name)
{
    static const struct name_id g[] = {
        {"range", G_RANGE}, {"namespace", G_NAMESPACE}, {"dict", G_DICT},
        {"raise_exception", G_RAISE}, {"strftime_now", G_STRFTIME},
    };
    return lookup(g, NELEM(g), name);
}

/* ---- lexer ------------------------------------------------------------------- */

enum {
    TK_EOF, TK_DATA, TK_VAR_BEGIN, TK_VAR_END, TK_BLOCK_BEGIN, TK_BLOCK_END,
    TK_NAME, TK_STRING, TK_INT, TK_FLOAT, TK_OP
};
enum {
    O_ADD, O_SUB, O_DIV, O_FLOORDIV, O_MUL, O_MOD, O_POW, O_TILDE, O_LBRACKET, O_RBRACKET,
    O_LPAREN, O_RPAREN, O_LBRACE, O_RBRACE, O_EQ, O_NE, O_GT, O_GTEQ, O_LT, O_LTEQ,
    O_ASSIGN, O_DOT, O_COLON, O_PIPE, O_COMMA, O_SEMICOLON
};
static const char *const op_text[] = {
    "+", "-", "/", "//", "*", "%", "**", "~", "[", "]", "(", ")", "{", "}", "==", "!=",
    ">", ">=", "<", "<=", "=", ".", ":", "|", ",", ";",
};

typedef struct tok {
    int type, op, line;
    const char *s;      /* TK_DATA, TK_NAME: text (NUL-terminated for names) */
    size_t n;
    jv val;             /* TK_STRING, TK_INT, TK_FLOAT */
} tok;

typedef struct jp {
    lamina_jinja *T;
    const char *src;    /* normalized source */
    size_t n;
    tok *t;
    size_t nt, cap, i;
    char *err;
    size_t err_size;
    int failed, code;
    int depth, loops;
} jp;

static void pfail(jp *P, int code, int line, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void pfail(jp *P, int code, int line, const char *fmt, ...)
{
    if (P->failed)
        return;
    P->failed = 1;
    P->code = code;
    if (P->err != NULL && P->err_size > 0) {
        int k = snprintf(P->err, P->err_size, "template line %d: ", line);
        if (k < 0 || (size_t)k >= P->err_size)
            return;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(P->err + k, P->err_size - (size_t)k, fmt, ap);
        va_end(ap);
    }
}

static void *palloc(jp *P, size_t n)
{
    void *p = jj_alloc(&P->T->arena, n);
    if (p == NULL)
        pfail(P, LAMINA_ENOMEM, 0, "out of memory parsing the template");
    return p;
}

static tok *push_tok(jp *P, int type, int line)
{
    if (P->failed)
        return NULL;
    if (P->nt == P->cap) {
        size_t nc = P->cap ? P->cap * 2 : 256;
        tok *nt = palloc(P, nc * sizeof(tok));
        if (nt == NULL)
            return NULL;
        if (P->nt)
            memcpy(nt, P->t, P->nt * sizeof(tok));
        P->t = nt;
        P->cap = nc;
    }
    tok *t = &P->t[P->nt++];
    memset(t, 0, sizeof *t);
    t->type = type;
    t->line = line;
    return t;
}

/* Python's str.isspace() of the character at s[i], its length in *len */
static int space_at(const char *s, size_t n, size_t i, size_t *len)
{
    size_t j = i;
    uint32_t cp = jj_utf8_next(s, n, &j);
    *len = j - i;
    return jj_isspace(cp);
}

static size_t skip_space(const char *s, size_t n, size_t i)
{
    size_t l;
    while (i < n && space_at(s, n, i, &l))
        i += l;
    return i;
}

/* end of s[0:n] with trailing whitespace removed (str.rstrip()) */
static size_t rstrip_len(const char *s, size_t n)
{
    size_t end = n, i = 0, l;
    while (i < n) {
        if (space_at(s, n, i, &l)) {
            size_t j = i;
            while (j < n && space_at(s, n, j, &l))
                j += l;
            if (j == n) {
                end = i;
                break;
            }
            i = j;
        } else {
            jj_utf8_next(s, n, &i);
        }
    }
    return end;
}

static int count_nl(const char *s, size_t a, size_t b)
{
    int c = 0;
    for (size_t i = a; i < b; i++)
        c += s[i] == '\n';
    return c;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_name0(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static int is_name(char c) { return is_name0(c) || is_digit(c); }

/* (\d+_)*\d+ at i: end, or 0 if none */
static size_t digits_us(const char *s, size_t n, size_t i)
{
    if (i >= n || !is_digit(s[i]))
        return 0;
    while (i < n && is_digit(s[i]))
        i++;
    while (i + 1 < n && s[i] == '_' && is_digit(s[i + 1])) {
        i++;
        while (i < n && is_digit(s[i]))
            i++;
    }
    return i;
}

static size_t match_float(const char *s, size_t n, size_t i)
{
    if (i > 0 && s[i - 1] == '.')
        return 0;
    size_t e = digits_us(s, n, i);
    if (!e)
        return 0;
    /* (\.D)?e[+-]?D */
    size_t j = e;
    if (j < n && s[j] == '.') {
        size_t k = digits_us(s, n, j + 1);
        if (k)
            j = k;
    }
    if (j < n && (s[j] == 'e' || s[j] == 'E')) {
        size_t k = j + 1;
        if (k < n && (s[k] == '+' || s[k] == '-'))
            k++;
        size_t m = digits_us(s, n, k);
        if (m)
            return m;
    }
    /* \.D */
    if (e < n && s[e] == '.') {
        size_t k = digits_us(s, n, e + 1);
        if (k)
            return k;
    }
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* integer literal at i; end or 0; value in *v (-1 on overflow) */
static size_t match_int(const char *s, size_t n, size_t i, int64_t *v, int *overflow)
{
    int base = 10;
    size_t j = i;
    *overflow = 0;
    if (i + 1 < n && s[i] == '0' && (s[i + 1] == 'b' || s[i + 1] == 'B' || s[i + 1] == 'o' ||
                                     s[i + 1] == 'O' || s[i + 1] == 'x' || s[i + 1] == 'X')) {
        char k = (char)(s[i + 1] | 0x20);
        base = k == 'b' ? 2 : k == 'o' ? 8 : 16;
        j = i + 2;
        size_t st = j;
        for (;;) {
            size_t q = j;
            if (q < n && s[q] == '_')
                q++;
            int d = q < n ? hexval(s[q]) : -1;
            if (d < 0 || d >= base)
                break;
            j = q + 1;
        }
        if (j == st) {
            base = 10;
            j = i;
        }
    }
    if (base == 10) {
        if (i >= n || !is_digit(s[i]))
            return 0;
        j = i + 1;
        if (s[i] == '0') {
            while (j < n && (s[j] == '0' || (s[j] == '_' && j + 1 < n && s[j + 1] == '0')))
                j += s[j] == '_' ? 2 : 1;
        } else {
            while (j < n && (is_digit(s[j]) || (s[j] == '_' && j + 1 < n && is_digit(s[j + 1]))))
                j += s[j] == '_' ? 2 : 1;
        }
    }
    uint64_t acc = 0;
    for (size_t k = base == 10 ? i : i + 2; k < j; k++) {
        if (s[k] == '_')
            continue;
        uint64_t d = (uint64_t)hexval(s[k]);
        if (acc > (UINT64_MAX - d) / (uint64_t)base)
            *overflow = 1;
        acc = acc * (uint64_t)base + d;
    }
    if (acc > (uint64_t)INT64_MAX)
        *overflow = 1;
    *v = (int64_t)acc;
    return j;
}

/* a string literal's value, as jinja2 gets it: Python's unicode-escape
 * decoding of the text between the quotes */
static int decode_string(jp *P, const char *s, size_t n, int line, jv *out)
{
    lamina_strbuf b = {0};
    size_t i = 0;
    char tmp[16];
    while (i < n) {
        if (s[i] != '\\') {
            size_t st = i;
            while (i < n && s[i] != '\\')
                i++;
            lamina_strbuf_add(&b, s + st, i - st);
            continue;
        }
        i++;
        if (i >= n) {
            lamina_strbuf_ch(&b, '\\');
            break;
        }
        char c = s[i];
        int hexn = 0;
        switch (c) {
        case '\n': i++; break;
        case '\\': lamina_strbuf_ch(&b, '\\'); i++; break;
        case '\'': lamina_strbuf_ch(&b, '\''); i++; break;
        case '"': lamina_strbuf_ch(&b, '"'); i++; break;
        case 'a': lamina_strbuf_ch(&b, '\a'); i++; break;
        case 'b': lamina_strbuf_ch(&b, '\b'); i++; break;
        case 'f': lamina_strbuf_ch(&b, '\f'); i++; break;
        case 'n': lamina_strbuf_ch(&b, '\n'); i++; break;
        case 'r': lamina_strbuf_ch(&b, '\r'); i++; break;
        case 't': lamina_strbuf_ch(&b, '\t'); i++; break;
        case 'v': lamina_strbuf_ch(&b, '\v'); i++; break;
        case 'x': hexn = 2; break;
        case 'u': hexn = 4; break;
        case 'U': hexn = 8; break;
        case 'N':
            lamina_strbuf_free(&b);
            pfail(P, LAMINA_ENOTSUP, line, "string escape \\N{...} is not supported");
            return -1;
        default:
            if (c >= '0' && c <= '7') {
                uint32_t v = 0;
                int k = 0;
                while (k < 3 && i < n && s[i] >= '0' && s[i] <= '7') {
                    v = v * 8 + (uint32_t)(s[i] - '0');
                    i++;
                    k++;
                }
                lamina_strbuf_add(&b, tmp, jj_utf8_put(tmp, v));
            } else if ((unsigned char)c >= 0x80) {
                /* the character was backslash-replaced before decoding */
                size_t j = i;
                uint32_t cp = jj_utf8_next(s, n, &j);
                if (cp <= 0xFF)
                    snprintf(tmp, sizeof tmp, "\\x%02x", (unsigned)cp);
                else if (cp <= 0xFFFF)
                    snprintf(tmp, sizeof tmp, "\\u%04x", (unsigned)cp);
                else
                    snprintf(tmp, sizeof tmp, "\\U%08x", (unsigned)cp);
                lamina_strbuf_str(&b, tmp);
                i = j;
            } else {
                lamina_strbuf_ch(&b, '\\');
                lamina_strbuf_ch(&b, c);
                i++;
            }
            break;
        }
        if (hexn) {
            uint32_t v = 0;
            i++;
            for (int k = 0; k < hexn; k++) {
                int d = i < n ? hexval(s[i]) : -1;
                if (d < 0) {
                    lamina_strbuf_free(&b);
                    pfail(P, LAMINA_EINVAL, line, "truncated \\%c escape in a string", c);
                    return -1;
                }
                v = v * 16 + (uint32_t)d;
                i++;
            }
            if (v > 0x10FFFF || (v >= 0xD800 && v < 0xE000)) {
                lamina_strbuf_free(&b);
                pfail(P, LAMINA_ENOTSUP, line, "string escape for code point 0x%X is not supported",
                      (unsigned)v);
                return -1;
            }
            lamina_strbuf_add(&b, tmp, jj_utf8_put(tmp, v));
        }
    }
    if (b.over) {
        lamina_strbuf_free(&b);
        pfail(P, LAMINA_ENOMEM, line, "out of memory");
        return -1;
    }
    jstr *str = palloc(P, sizeof(jstr) + b.n + 1);
    if (str == NULL) {
        lamina_strbuf_free(&b);
        return -1;
    }
    str->len = b.n;
    if (b.n)
        memcpy(str->p, b.p, b.n);
    str->p[b.n] = 0;
    str->ncp = jj_utf8_count(str->p, b.n);
    lamina_strbuf_free(&b);
    out->t = JV_STR;
    out->sub = 0;
    out->s = str;
    return 0;
}

static void add_data(jp *P, size_t a, size_t b, int line)
{
    if (b <= a)
        return;
    tok *t = push_tok(P, TK_DATA, line);
    if (t) {
        t->s = P->src + a;
        t->n = b - a;
    }
}

/* Tokens inside {{ }} or {% %} from *pos to the end tag; returns 0 or -1. */
static int lex_tag(jp *P, size_t *pos, int *line, int block, int *line_starting)
{
    const char *s = P->src;
    size_t n = P->n, i = *pos;
    char stack[MAX_NEST];
    int sp = 0;
    for (;;) {
        if (i >= n) {
            pfail(P, LAMINA_EINVAL, *line, "unexpected end of template inside a %s",
                  block ? "{% %} tag" : "{{ }} expression");
            return -1;
        }
        if (sp == 0) {
            if (block) {
                if (s[i] == '+' && i + 2 < n && s[i + 1] == '%' && s[i + 2] == '}') {
                    push_tok(P, TK_BLOCK_END, *line);
                    i += 3;
                    *line_starting = 0;
                    break;
                }
                if (s[i] == '-' && i + 2 < n && s[i + 1] == '%' && s[i + 2] == '}') {
                    push_tok(P, TK_BLOCK_END, *line);
                    size_t e = skip_space(s, n, i + 3);
                    *line += count_nl(s, i, e);
                    *line_starting = e > i + 3 && s[e - 1] == '\n';
                    i = e;
                    break;
                }
                if (s[i] == '%' && i + 1 < n && s[i + 1] == '}') {
                    push_tok(P, TK_BLOCK_END, *line);
                    i += 2;
                    *line_starting = 0;
                    if (i < n && s[i] == '\n') {   /* trim_blocks */
                        i++;
                        (*line)++;
                        *line_starting = 1;
                    }
                    break;
                }
            } else {
                if (s[i] == '-' && i + 2 < n && s[i + 1] == '}' && s[i + 2] == '}') {
                    push_tok(P, TK_VAR_END, *line);
                    size_t e = skip_space(s, n, i + 3);
                    *line += count_nl(s, i, e);
                    *line_starting = e > i + 3 && s[e - 1] == '\n';
                    i = e;
                    break;
                }
                if (s[i] == '}' && i + 1 < n && s[i + 1] == '}') {
                    push_tok(P, TK_VAR_END, *line);
                    i += 2;
                    *line_starting = 0;
                    break;
                }
            }
        }
        size_t l;
        if (space_at(s, n, i, &l)) {
            size_t e = skip_space(s, n, i);
            *line += count_nl(s, i, e);
            i = e;
            continue;
        }
        size_t e;
        if ((e = match_float(s, n, i)) != 0) {
            char tmp[128];
            size_t k = 0;
            for (size_t j = i; j < e && k + 1 < sizeof tmp; j++)
                if (s[j] != '_')
                    tmp[k++] = s[j];
            tmp[k] = 0;
            tok *t = push_tok(P, TK_FLOAT, *line);
            if (t)
                t->val = jv_float(strtod(tmp, NULL));
            i = e;
            continue;
        }
        int64_t iv;
        int ovf;
        if ((e = match_int(s, n, i, &iv, &ovf)) != 0) {
            if (ovf) {
                pfail(P, LAMINA_ENOTSUP, *line, "integer literal too large");
                return -1;
            }
            tok *t = push_tok(P, TK_INT, *line);
            if (t)
                t->val = jv_int(iv);
            i = e;
            continue;
        }
        if (is_name0(s[i])) {
            size_t st = i;
            while (i < n && is_name(s[i]))
                i++;
            char *nm = palloc(P, i - st + 1);
            if (nm == NULL)
                return -1;
            memcpy(nm, s + st, i - st);
            nm[i - st] = 0;
            tok *t = push_tok(P, TK_NAME, *line);
            if (t) {
                t->s = nm;
                t->n = i - st;
            }
            continue;
        }
        if (s[i] == '\'' || s[i] == '"') {
            char q = s[i];
            size_t j = i + 1;
            while (j < n && s[j] != q) {
                if (s[j] == '\\' && j + 1 < n)
                    j++;
                j++;
            }
            if (j >= n) {
                pfail(P, LAMINA_EINVAL, *line, "unterminated string");
                return -1;
            }
            tok *t = push_tok(P, TK_STRING, *line);
            if (t == NULL || decode_string(P, s + i + 1, j - i - 1, *line, &t->val) < 0)
                return -1;
            *line += count_nl(s, i, j);
            i = j + 1;
            continue;
        }
        /* operators, longest first */
        int op = -1;
        size_t ol = 0;
        for (int k = 0; k < (int)NELEM(op_text); k++) {
            size_t L = strlen(op_text[k]);
            if (L > ol && i + L <= n && memcmp(s + i, op_text[k], L) == 0) {
                op = k;
                ol = L;
            }
        }
        if (op < 0) {
            size_t j = i;
            uint32_t cp = jj_utf8_next(s, n, &j);
            pfail(P, LAMINA_EINVAL, *line, "unexpected character U+%04X", (unsigned)cp);
            return -1;
        }
        if (op == O_LPAREN || op == O_LBRACKET || op == O_LBRACE) {
            if (sp >= MAX_NEST) {
                pfail(P, LAMINA_EINVAL, *line, "brackets nested too deeply");
                return -1;
            }
            stack[sp++] = op == O_LPAREN ? ')' : op == O_LBRACKET ? ']' : '}';
        } else if (op == O_RPAREN || op == O_RBRACKET || op == O_RBRACE) {
            if (sp == 0) {
                pfail(P, LAMINA_EINVAL, *line, "unexpected '%s'", op_text[op]);
                return -1;
            }
            if (stack[--sp] != op_text[op][0]) {
                pfail(P, LAMINA_EINVAL, *line, "unexpected '%s', expected '%c'", op_text[op],
                      stack[sp]);
                return -1;
            }
        }
        tok *t = push_tok(P, TK_OP, *line);
        if (t)
            t->op = op;
        i += ol;
    }
    *pos = i;
    return P->failed ? -1 : 0;
}

static int lex(jp *P)
{
    const char *s = P->src;
    size_t n = P->n, pos = 0;
    int line = 1, line_starting = 1;
    while (pos < n && !P->failed) {
        /* the next tag start */
        size_t p = pos;
        const char *q;
        for (;;) {
            q = memchr(s + p, '{', n - p);
            if (q == NULL || (size_t)(q - s) + 1 >= n)
                break;
            char k = q[1];
            if (k == '%' || k == '{' || k == '#')
                break;
            p = (size_t)(q - s) + 1;
        }
        if (q == NULL || (size_t)(q - s) + 1 >= n) {
            add_data(P, pos, n, line);
            break;
        }
        size_t at = (size_t)(q - s);
        char kind = s[at + 1];
        char sign = at + 2 < n && (s[at + 2] == '-' || s[at + 2] == '+') ? s[at + 2] : 0;
        /* {% raw %} */
        int raw = 0;
        size_t raw_end = 0;
        if (kind == '%') {
            size_t j = skip_space(s, n, at + 2 + (sign ? 1 : 0));
            if (n - j >= 3 && memcmp(s + j, "raw", 3) == 0) {
                size_t k = skip_space(s, n, j + 3);
                if (k + 2 < n && s[k] == '-' && s[k + 1] == '%' && s[k + 2] == '}') {
                    raw = 1;
                    raw_end = skip_space(s, n, k + 3);
                } else if (k + 1 < n && s[k] == '%' && s[k + 1] == '}') {
                    raw = 1;
                    raw_end = k + 2;
                }
            }
        }
        /* whitespace control of the text before the tag */
        size_t end = at;
        if (sign == '-') {
            end = pos + rstrip_len(s + pos, at - pos);
        } else if (sign != '+' && kind != '{') {
            /* lstrip_blocks */
            size_t lp = pos;
            for (size_t j = at; j > pos; j--)
                if (s[j - 1] == '\n') {
                    lp = j;
                    break;
                }
            if ((lp > pos || line_starting) && lp < at && skip_space(s, at, lp) == at)
                end = lp;
        }
        add_data(P, pos, end, line);
        line += count_nl(s, pos, at);
        line_starting = 0;
        if (raw) {
            /* text up to {% endraw %}, whitespace control as for a tag */
            line += count_nl(s, at, raw_end);
            size_t j = raw_end, tag = 0, after = 0;
            char rs = 0;
            int found = 0;
            while (!found) {
                const char *r = j < n ? memchr(s + j, '{', n - j) : NULL;
                if (r == NULL)
                    break;
                tag = (size_t)(r - s);
                j = tag + 1;
                if (tag + 1 >= n || s[tag + 1] != '%')
                    continue;
                size_t k = tag + 2;
                rs = k < n && (s[k] == '-' || s[k] == '+') ? s[k] : 0;
                k = skip_space(s, n, k + (rs ? 1 : 0));
                if (n - k < 6 || memcmp(s + k, "endraw", 6) != 0)
                    continue;
                k = skip_space(s, n, k + 6);
                if (k + 2 < n && s[k] == '+' && s[k + 1] == '%' && s[k + 2] == '}') {
                    after = k + 3;
                } else if (k + 2 < n && s[k] == '-' && s[k + 1] == '%' && s[k + 2] == '}') {
                    after = skip_space(s, n, k + 3);
                } else if (k + 1 < n && s[k] == '%' && s[k + 1] == '}') {
                    after = k + 2;
                    if (after < n && s[after] == '\n')
                        after++;
                } else {
                    continue;
                }
                found = 1;
            }
            if (!found) {
                pfail(P, LAMINA_EINVAL, line, "missing end of raw directive");
                return -1;
            }
            size_t dend = tag;
            if (rs == '-') {
                dend = raw_end + rstrip_len(s + raw_end, tag - raw_end);
            } else if (rs != '+') {
                size_t lp = raw_end;
                for (size_t k = tag; k > raw_end; k--)
                    if (s[k - 1] == '\n') {
                        lp = k;
                        break;
                    }
                if (lp > raw_end && lp < tag && skip_space(s, tag, lp) == tag)
                    dend = lp;
            }
            add_data(P, raw_end, dend, line);
            line += count_nl(s, raw_end, after);
            line_starting = after > 0 && s[after - 1] == '\n';
            pos = after;
            continue;
        }
        pos = at + 2 + (sign ? 1 : 0);
        if (kind == '#') {
            /* comment: up to the first #} */
            const char *c = pos < n ? memmem(s + pos, n - pos, "#}", 2) : NULL;
            if (c == NULL) {
                pfail(P, LAMINA_EINVAL, line, "missing end of comment tag");
                return -1;
            }
            size_t ce = (size_t)(c - s), after = ce + 2;
            if (ce > pos && s[ce - 1] == '-') {
                after = skip_space(s, n, after);
            } else if (ce > pos && s[ce - 1] == '+') {
                /* no trimming */
            } else if (after < n && s[after] == '\n') {
                after++;   /* trim_blocks */
            }
            line += count_nl(s, pos, after);
            line_starting = s[after - 1] == '\n';
            pos = after;
            continue;
        }
        push_tok(P, kind == '%' ? TK_BLOCK_BEGIN : TK_VAR_BEGIN, line);
        if (lex_tag(P, &pos, &line, kind == '%', &line_starting) < 0)
            return -1;
    }
    push_tok(P, TK_EOF, line);
    return P->failed ? -1 : 0;
}

/* ---- parser -------------------------------------------------------------------- */

typedef struct nvec {
    jnode **v;
    size_t n, cap;
} nvec;

static void nv_push(jp *P, nvec *a, jnode *x)
{
    if (P->failed)
        return;
    if (a->n == a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 4;
        jnode **nv = palloc(P, nc * sizeof(jnode *));
        if (nv == NULL)
            return;
        if (a->n)
            memcpy(nv, a->v, a->n * sizeof(jnode *));
        a->v = nv;
        a->cap = nc;
    }
    a->v[a->n++] = x;
}

static const tok *cur(jp *P) { return &P->t[P->i]; }
static const tok *peek(jp *P) { return &P->t[P->i + 1 < P->nt ? P->i + 1 : P->i]; }
static void adv(jp *P) { if (P->i + 1 < P->nt) P->i++; }

static int is_op(const tok *t, int op) { return t->type == TK_OP && t->op == op; }
static int is_name_tok(const tok *t, const char *name) { return t->type == TK_NAME && !strcmp(t->s, name); }

static const char *describe(const tok *t)
{
    switch (t->type) {
    case TK_EOF: return "end of template";
    case TK_DATA: return "template data";
    case TK_VAR_BEGIN: return "begin of print statement";
    case TK_VAR_END: return "end of print statement";
    case TK_BLOCK_BEGIN: return "begin of statement block";
    case TK_BLOCK_END: return "end of statement block";
    case TK_NAME: return t->s;
    case TK_STRING: return "string";
    case TK_INT: return "integer";
    case TK_FLOAT: return "float";
    default: return op_text[t->op];
    }
}

static void unexpected(jp *P, const char *want)
{
    const tok *t = cur(P);
    if (want)
        pfail(P, LAMINA_EINVAL, t->line, "expected %s, got '%s'", want, describe(t));
    else
        pfail(P, LAMINA_EINVAL, t->line, "unexpected '%s'", describe(t));
}

static int expect_op(jp *P, int op)
{
    if (!is_op(cur(P), op)) {
        char w[16];
        snprintf(w, sizeof w, "'%s'", op_text[op]);
        unexpected(P, w);
        return -1;
    }
    adv(P);
    return 0;
}

static int expect_type(jp *P, int type, const char *what)
{
    if (cur(P)->type != type) {
        unexpected(P, what);
        return -1;
    }
    adv(P);
    return 0;
}

static jnode *node(jp *P, int kind, int line)
{
    jnode *x = palloc(P, sizeof(jnode));
    if (x) {
        x->kind = (uint8_t)kind;
        x->line = line;
    }
    return x;
}

static jnode *parse_expression(jp *P, int with_condexpr);
static jnode *parse_unary(jp *P, int with_filter);
static jnode *parse_primary(jp *P);
static jnode *parse_postfix(jp *P, jnode *x);
static jnode *parse_filter_expr(jp *P, jnode *x);
static jnode *parse_filter(jp *P, jnode *x, int start_inline);
static int parse_statements(jp *P, const char *const *ends, nvec *body, int drop);

static int enter(jp *P)
{
    if (++P->depth > MAX_NEST) {
        pfail(P, LAMINA_EINVAL, cur(P)->line, "template nested too deeply");
        return -1;
    }
    return 0;
}

/* parse_tuple of jinja2: a, b, c (a tuple) or a single expression */
static int tuple_end(jp *P, const char *extra)
{
    const tok *t = cur(P);
    if (t->type == TK_VAR_END || t->type == TK_BLOCK_END || is_op(t, O_RPAREN))
        return 1;
    return extra != NULL && is_name_tok(t, extra);
}

static jnode *parse_tuple(jp *P, int simplified, int with_condexpr, const char *extra,
                          int explicit_parens)
{
    int line = cur(P)->line;
    nvec args = {0};
    int is_tuple = 0;
    for (;;) {
        if (args.n && expect_op(P, O_COMMA) < 0)
            return NULL;
        if (tuple_end(P, extra))
            break;
        jnode *x = simplified ? parse_primary(P) : parse_expression(P, with_condexpr);
        if (x == NULL)
            return NULL;
        nv_push(P, &args, x);
        if (is_op(cur(P), O_COMMA))
            is_tuple = 1;
        else
            break;
    }
    if (!is_tuple) {
        if (args.n)
            return args.v[0];
        if (!explicit_parens) {
            unexpected(P, "an expression");
            return NULL;
        }
    }
    jnode *t = node(P, E_TUPLE, line);
    if (t) {
        t->v = args.v;
        t->nv = args.n;
    }
    return t;
}

static jnode *parse_condexpr(jp *P)
{
    jnode *e1 = parse_expression(P, 0);
    while (e1 && is_name_tok(cur(P), "if")) {
        int line = cur(P)->line;
        adv(P);
        jnode *e2 = parse_expression(P, 0);
        jnode *e3 = NULL;
        if (e2 == NULL)
            return NULL;
        if (is_name_tok(cur(P), "else")) {
            adv(P);
            if ((e3 = parse_condexpr(P)) == NULL)
                return NULL;
        }
        jnode *c = node(P, E_COND, line);
        if (c == NULL)
            return NULL;
        c->a = e2;
        c->b = e1;
        c->c = e3;
        e1 = c;
    }
    return e1;
}

static jnode *parse_not(jp *P);
static jnode *parse_compare(jp *P);
static jnode *parse_math1(jp *P);

static jnode *parse_and(jp *P)
{
    jnode *l = parse_not(P);
    while (l && is_name_tok(cur(P), "and")) {
        int line = cur(P)->line;
        adv(P);
        jnode *r = parse_not(P);
        jnode *x = r ? node(P, E_AND, line) : NULL;
        if (x == NULL)
            return NULL;
        x->a = l;
        x->b = r;
        l = x;
    }
    return l;
}

static jnode *parse_or(jp *P)
{
    jnode *l = parse_and(P);
    while (l && is_name_tok(cur(P), "or")) {
        int line = cur(P)->line;
        adv(P);
        jnode *r = parse_and(P);
        jnode *x = r ? node(P, E_OR, line) : NULL;
        if (x == NULL)
            return NULL;
        x->a = l;
        x->b = r;
        l = x;
    }
    return l;
}

static jnode *parse_expression(jp *P, int with_condexpr)
{
    if (enter(P) < 0)
        return NULL;
    jnode *x = with_condexpr ? parse_condexpr(P) : parse_or(P);
    P->depth--;
    return x;
}

static jnode *parse_not(jp *P)
{
    if (is_name_tok(cur(P), "not")) {
        int line = cur(P)->line;
        adv(P);
        if (enter(P) < 0)
            return NULL;
        jnode *a = parse_not(P);
        P->depth--;
        jnode *x = a ? node(P, E_NOT, line) : NULL;
        if (x)
            x->a = a;
        return x;
    }
    return parse_compare(P);
}

static jnode *parse_compare(jp *P)
{
    int line = cur(P)->line;
    jnode *e = parse_math1(P);
    if (e == NULL)
        return NULL;
    nvec ops = {0};
    for (;;) {
        const tok *t = cur(P);
        int op = -1;
        if (t->type == TK_OP) {
            switch (t->op) {
            case O_EQ: op = OP_EQ; break;
            case O_NE: op = OP_NE; break;
            case O_LT: op = OP_LT; break;
            case O_LTEQ: op = OP_LE; break;
            case O_GT: op = OP_GT; break;
            case O_GTEQ: op = OP_GE; break;
            default: break;
            }
            if (op >= 0)
                adv(P);
        } else if (is_name_tok(t, "in")) {
            op = OP_IN;
            adv(P);
        } else if (is_name_tok(t, "not") && is_name_tok(peek(P), "in")) {
            op = OP_NOTIN;
            adv(P);
            adv(P);
        }
        if (op < 0)
            break;
        int ol = t->line;
        jnode *r = parse_math1(P);
        jnode *o = r ? node(P, E_OPERAND, ol) : NULL;
        if (o == NULL)
            return NULL;
        o->op = (uint8_t)op;
        o->a = r;
        nv_push(P, &ops, o);
    }
    if (ops.n == 0)
        return e;
    jnode *c = node(P, E_COMPARE, line);
    if (c) {
        c->a = e;
        c->v = ops.v;
        c->nv = ops.n;
    }
    return c;
}

static jnode *bin(jp *P, int op, int line, jnode *a, jnode *b)
{
    if (a == NULL || b == NULL)
        return NULL;
    jnode *x = node(P, E_BIN, line);
    if (x) {
        x->op = (uint8_t)op;
        x->a = a;
        x->b = b;
    }
    return x;
}

static jnode *parse_pow(jp *P)
{
    jnode *l = parse_unary(P, 1);
    while (l && is_op(cur(P), O_POW)) {
        int line = cur(P)->line;
        adv(P);
        l = bin(P, OP_POW, line, l, parse_unary(P, 1));
    }
    return l;
}

static jnode *parse_math2(jp *P)
{
    jnode *l = parse_pow(P);
    for (;;) {
        const tok *t = cur(P);
        int op = is_op(t, O_MUL) ? OP_MUL : is_op(t, O_DIV) ? OP_DIV
               : is_op(t, O_FLOORDIV) ? OP_FLOORDIV : is_op(t, O_MOD) ? OP_MOD : -1;
        if (l == NULL || op < 0)
            return l;
        int line = t->line;
        adv(P);
        l = bin(P, op, line, l, parse_pow(P));
    }
}

static jnode *parse_concat(jp *P)
{
    int line = cur(P)->line;
    jnode *first = parse_math2(P);
    if (first == NULL || !is_op(cur(P), O_TILDE))
        return first;
    nvec parts = {0};
    nv_push(P, &parts, first);
    while (is_op(cur(P), O_TILDE)) {
        adv(P);
        jnode *x = parse_math2(P);
        if (x == NULL)
            return NULL;
        nv_push(P, &parts, x);
    }
    jnode *c = node(P, E_CONCAT, line);
    if (c) {
        c->v = parts.v;
        c->nv = parts.n;
    }
    return c;
}

static jnode *parse_math1(jp *P)
{
    jnode *l = parse_concat(P);
    for (;;) {
        const tok *t = cur(P);
        int op = is_op(t, O_ADD) ? OP_ADD : is_op(t, O_SUB) ? OP_SUB : -1;
        if (l == NULL || op < 0)
            return l;
        int line = t->line;
        adv(P);
        l = bin(P, op, line, l, parse_concat(P));
    }
}

static jnode *parse_unary(jp *P, int with_filter)
{
    const tok *t = cur(P);
    int line = t->line;
    jnode *x;
    if (enter(P) < 0)
        return NULL;
    if (is_op(t, O_SUB) || is_op(t, O_ADD)) {
        int neg = is_op(t, O_SUB);
        adv(P);
        jnode *a = parse_unary(P, 0);
        x = a ? node(P, neg ? E_NEG : E_POS, line) : NULL;
        if (x)
            x->a = a;
    } else {
        x = parse_primary(P);
    }
    if (x)
        x = parse_postfix(P, x);
    if (x && with_filter)
        x = parse_filter_expr(P, x);
    P->depth--;
    return x;
}

static jnode *parse_list_or_dict(jp *P, int dict)
{
    int line = cur(P)->line;
    adv(P);
    nvec keys = {0}, vals = {0};
    int close = dict ? O_RBRACE : O_RBRACKET;
    while (!is_op(cur(P), close)) {
        if (keys.n && expect_op(P, O_COMMA) < 0)
            return NULL;
        if (is_op(cur(P), close))
            break;
        jnode *k = parse_expression(P, 1);
        if (k == NULL)
            return NULL;
        nv_push(P, &keys, k);
        if (dict) {
            if (expect_op(P, O_COLON) < 0)
                return NULL;
            jnode *v = parse_expression(P, 1);
            if (v == NULL)
                return NULL;
            nv_push(P, &vals, v);
        }
    }
    if (expect_op(P, close) < 0)
        return NULL;
    jnode *x = node(P, dict ? E_DICT : E_LIST, line);
    if (x) {
        x->v = keys.v;
        x->nv = keys.n;
        x->w = vals.v;
        x->nw = vals.n;
    }
    return x;
}

static jnode *parse_primary(jp *P)
{
    const tok *t = cur(P);
    jnode *x;
    if (t->type == TK_NAME) {
        if (!strcmp(t->s, "true") || !strcmp(t->s, "True") || !strcmp(t->s, "false") ||
            !strcmp(t->s, "False")) {
            x = node(P, E_CONST, t->line);
            if (x)
                x->val = jv_bool(t->s[0] == 't' || t->s[0] == 'T');
        } else if (!strcmp(t->s, "none") || !strcmp(t->s, "None")) {
            x = node(P, E_CONST, t->line);
            if (x)
                x->val = jv_none();
        } else {
            x = node(P, E_NAME, t->line);
            if (x)
                x->name = t->s;
        }
        adv(P);
        return x;
    }
    if (t->type == TK_STRING) {
        x = node(P, E_CONST, t->line);
        if (x == NULL)
            return NULL;
        x->val = t->val;
        adv(P);
        if (cur(P)->type == TK_STRING) {
            /* adjacent strings are one */
            lamina_strbuf b = {0};
            lamina_strbuf_add(&b, t->val.s->p, t->val.s->len);
            while (cur(P)->type == TK_STRING) {
                lamina_strbuf_add(&b, cur(P)->val.s->p, cur(P)->val.s->len);
                adv(P);
            }
            jstr *s = b.over ? NULL : palloc(P, sizeof(jstr) + b.n + 1);
            if (s == NULL) {
                lamina_strbuf_free(&b);
                pfail(P, LAMINA_ENOMEM, t->line, "out of memory");
                return NULL;
            }
            s->len = b.n;
            memcpy(s->p, b.p, b.n);
            s->p[b.n] = 0;
            s->ncp = jj_utf8_count(s->p, b.n);
            lamina_strbuf_free(&b);
            x->val.s = s;
        }
        return x;
    }
    if (t->type == TK_INT || t->type == TK_FLOAT) {
        x = node(P, E_CONST, t->line);
        if (x)
            x->val = t->val;
        adv(P);
        return x;
    }
    if (is_op(t, O_LPAREN)) {
        adv(P);
        x = parse_tuple(P, 0, 1, NULL, 1);
        if (x == NULL || expect_op(P, O_RPAREN) < 0)
            return NULL;
        return x;
    }
    if (is_op(t, O_LBRACKET))
        return parse_list_or_dict(P, 0);
    if (is_op(t, O_LBRACE))
        return parse_list_or_dict(P, 1);
    unexpected(P, NULL);
    return NULL;
}

/* (args, k=v) of a call, filter or test */
static int parse_call_args(jp *P, jnode *x)
{
    nvec args = {0}, kwv = {0};
    const char **kwn = NULL;
    size_t kwcap = 0;
    int line = cur(P)->line;
    adv(P); /* ( */
    int need_comma = 0;
    while (!is_op(cur(P), O_RPAREN)) {
        if (need_comma) {
            if (expect_op(P, O_COMMA) < 0)
                return -1;
            if (is_op(cur(P), O_RPAREN))
                break;
        }
        if (is_op(cur(P), O_MUL) || is_op(cur(P), O_POW)) {
            pfail(P, LAMINA_ENOTSUP, cur(P)->line, "'*' and '**' arguments are not supported");
            return -1;
        }
        if (cur(P)->type == TK_NAME && is_op(peek(P), O_ASSIGN)) {
            const char *k = cur(P)->s;
            adv(P);
            adv(P);
            jnode *v = parse_expression(P, 1);
            if (v == NULL)
                return -1;
            if (kwv.n == kwcap) {
                size_t nc = kwcap ? kwcap * 2 : 4;
                const char **nk = palloc(P, nc * sizeof(char *));
                if (nk == NULL)
                    return -1;
                if (kwv.n)
                    memcpy(nk, kwn, kwv.n * sizeof(char *));
                kwn = nk;
                kwcap = nc;
            }
            kwn[kwv.n] = k;
            nv_push(P, &kwv, v);
        } else {
            if (kwv.n) {
                pfail(P, LAMINA_EINVAL, line, "invalid syntax for function call expression");
                return -1;
            }
            jnode *v = parse_expression(P, 1);
            if (v == NULL)
                return -1;
            nv_push(P, &args, v);
        }
        need_comma = 1;
    }
    if (expect_op(P, O_RPAREN) < 0)
        return -1;
    x->v = args.v;
    x->nv = args.n;
    x->w = kwv.v;
    x->kw = kwn;
    x->nw = kwv.n;
    return P->failed ? -1 : 0;
}

static jnode *parse_subscribed(jp *P)
{
    int line = cur(P)->line;
    jnode *parts[3] = {NULL, NULL, NULL};
    if (is_op(cur(P), O_COLON)) {
        adv(P);
    } else {
        jnode *e = parse_expression(P, 1);
        if (e == NULL || !is_op(cur(P), O_COLON))
            return e;
        adv(P);
        parts[0] = e;
    }
    if (!is_op(cur(P), O_COLON) && !is_op(cur(P), O_RBRACKET) && !is_op(cur(P), O_COMMA)) {
        if ((parts[1] = parse_expression(P, 1)) == NULL)
            return NULL;
    }
    if (is_op(cur(P), O_COLON)) {
        adv(P);
        if (!is_op(cur(P), O_RBRACKET) && !is_op(cur(P), O_COMMA)) {
            if ((parts[2] = parse_expression(P, 1)) == NULL)
                return NULL;
        }
    }
    jnode *s = node(P, E_SLICE, line);
    if (s) {
        s->a = parts[0];
        s->b = parts[1];
        s->c = parts[2];
    }
    return s;
}

static jnode *parse_postfix(jp *P, jnode *x)
{
    for (;;) {
        const tok *t = cur(P);
        if (is_op(t, O_DOT)) {
            adv(P);
            const tok *a = cur(P);
            if (a->type == TK_NAME) {
                jnode *g = node(P, E_GETATTR, t->line);
                if (g == NULL)
                    return NULL;
                g->a = x;
                g->name = a->s;
                adv(P);
                x = g;
            } else if (a->type == TK_INT) {
                jnode *k = node(P, E_CONST, a->line), *g = node(P, E_GETITEM, t->line);
                if (g == NULL)
                    return NULL;
                k->val = a->val;
                g->a = x;
                g->b = k;
                adv(P);
                x = g;
            } else {
                unexpected(P, "name or number");
                return NULL;
            }
        } else if (is_op(t, O_LBRACKET)) {
            adv(P);
            nvec args = {0};
            while (!is_op(cur(P), O_RBRACKET)) {
                if (args.n && expect_op(P, O_COMMA) < 0)
                    return NULL;
                jnode *s = parse_subscribed(P);
                if (s == NULL)
                    return NULL;
                nv_push(P, &args, s);
            }
            if (expect_op(P, O_RBRACKET) < 0)
                return NULL;
            jnode *g = node(P, E_GETITEM, t->line);
            if (g == NULL)
                return NULL;
            g->a = x;
            if (args.n == 1) {
                g->b = args.v[0];
            } else {
                jnode *tu = node(P, E_TUPLE, t->line);
                if (tu == NULL)
                    return NULL;
                tu->v = args.v;
                tu->nv = args.n;
                g->b = tu;
            }
            x = g;
        } else if (is_op(t, O_LPAREN)) {
            jnode *c = node(P, E_CALL, t->line);
            if (c == NULL)
                return NULL;
            c->a = x;
            if (parse_call_args(P, c) < 0)
                return NULL;
            x = c;
        } else {
            return x;
        }
    }
}

static const char *dotted_name(jp *P)
{
    if (cur(P)->type != TK_NAME) {
        unexpected(P, "a name");
        return NULL;
    }
    const char *name = cur(P)->s;
    adv(P);
    while (is_op(cur(P), O_DOT) && peek(P)->type == TK_NAME) {
        adv(P);
        size_t a = strlen(name), b = strlen(cur(P)->s);
        char *nm = palloc(P, a + b + 2);
        if (nm == NULL)
            return NULL;
        memcpy(nm, name, a);
        nm[a] = '.';
        memcpy(nm + a + 1, cur(P)->s, b + 1);
        name = nm;
        adv(P);
    }
    return name;
}

static jnode *parse_filter(jp *P, jnode *x, int start_inline)
{
    while (is_op(cur(P), O_PIPE) || start_inline) {
        if (!start_inline)
            adv(P);
        start_inline = 0;
        int line = cur(P)->line;
        const char *name = dotted_name(P);
        if (name == NULL)
            return NULL;
        jnode *f = node(P, E_FILTER, line);
        if (f == NULL)
            return NULL;
        f->a = x;
        f->name = name;
        if (is_op(cur(P), O_LPAREN) && parse_call_args(P, f) < 0)
            return NULL;
        x = f;
    }
    return x;
}

static jnode *parse_test(jp *P, jnode *x)
{
    int line = cur(P)->line;
    adv(P); /* is */
    int negated = 0;
    if (is_name_tok(cur(P), "not")) {
        adv(P);
        negated = 1;
    }
    const char *name = dotted_name(P);
    if (name == NULL)
        return NULL;
    jnode *t = node(P, E_TEST, line);
    if (t == NULL)
        return NULL;
    t->a = x;
    t->name = name;
    const tok *c = cur(P);
    if (is_op(c, O_LPAREN)) {
        if (parse_call_args(P, t) < 0)
            return NULL;
    } else if ((c->type == TK_NAME || c->type == TK_STRING || c->type == TK_INT ||
                c->type == TK_FLOAT || is_op(c, O_LPAREN) || is_op(c, O_LBRACKET) ||
                is_op(c, O_LBRACE)) &&
               !is_name_tok(c, "else") && !is_name_tok(c, "or") && !is_name_tok(c, "and")) {
        if (is_name_tok(c, "is")) {
            pfail(P, LAMINA_EINVAL, c->line, "you cannot chain multiple tests with is");
            return NULL;
        }
        jnode *a = parse_primary(P);
        if (a == NULL || (a = parse_postfix(P, a)) == NULL)
            return NULL;
        t->v = palloc(P, sizeof(jnode *));
        if (t->v == NULL)
            return NULL;
        t->v[0] = a;
        t->nv = 1;
    }
    if (negated) {
        jnode *n = node(P, E_NOT, line);
        if (n)
            n->a = t;
        return n;
    }
    return t;
}

static jnode *parse_filter_expr(jp *P, jnode *x)
{
    for (;;) {
        const tok *t = cur(P);
        if (is_op(t, O_PIPE))
            x = parse_filter(P, x, 0);
        else if (is_name_tok(t, "is"))
            x = parse_test(P, x);
        else if (is_op(t, O_LPAREN)) {
            jnode *c = node(P, E_CALL, t->line);
            if (c == NULL)
                return NULL;
            c->a = x;
            if (parse_call_args(P, c) < 0)
                return NULL;
            x = c;
        } else
            return x;
        if (x == NULL)
            return NULL;
    }
}

/* ---- statements ---------------------------------------------------------------- */

static int assignable(jp *P, jnode *t)
{
    if (t->kind == E_NAME || t->kind == E_NSREF)
        return 0;
    if (t->kind == E_TUPLE) {
        for (size_t i = 0; i < t->nv; i++)
            if (t->v[i]->kind != E_NAME) {
                pfail(P, LAMINA_EINVAL, t->line, "can't assign to this expression");
                return -1;
            }
        return 0;
    }
    pfail(P, LAMINA_EINVAL, t->line, "can't assign to this expression");
    return -1;
}

static jnode *parse_assign_target(jp *P, int name_only, const char *extra, int with_ns)
{
    const tok *t = cur(P);
    jnode *x;
    if (with_ns && t->type == TK_NAME && is_op(peek(P), O_DOT)) {
        const char *ns = t->s;
        adv(P);
        adv(P);
        if (cur(P)->type != TK_NAME) {
            unexpected(P, "a name");
            return NULL;
        }
        x = node(P, E_NSREF, t->line);
        if (x) {
            x->name = ns;
            x->name2 = cur(P)->s;
        }
        adv(P);
        return x;
    }
    if (name_only) {
        if (t->type != TK_NAME) {
            unexpected(P, "a name");
            return NULL;
        }
        x = node(P, E_NAME, t->line);
        if (x)
            x->name = t->s;
        adv(P);
        return x;
    }
    x = parse_tuple(P, 1, 0, extra, 0);
    if (x == NULL || assignable(P, x) < 0)
        return NULL;
    return x;
}

static int end_block(jp *P)
{
    return expect_type(P, TK_BLOCK_END, "end of statement block");
}

static jnode *parse_for(jp *P, int line)
{
    jnode *f = node(P, N_FOR, line);
    if (f == NULL)
        return NULL;
    if ((f->a = parse_assign_target(P, 0, "in", 0)) == NULL)
        return NULL;
    if (!is_name_tok(cur(P), "in")) {
        unexpected(P, "'in'");
        return NULL;
    }
    adv(P);
    if ((f->b = parse_tuple(P, 0, 0, "recursive", 0)) == NULL)
        return NULL;
    if (is_name_tok(cur(P), "if")) {
        adv(P);
        if ((f->c = parse_expression(P, 1)) == NULL)
            return NULL;
    }
    if (is_name_tok(cur(P), "recursive")) {
        pfail(P, LAMINA_ENOTSUP, cur(P)->line, "recursive for loops are not supported");
        return NULL;
    }
    static const char *const ends[] = {"endfor", "else", NULL};
    static const char *const ends2[] = {"endfor", NULL};
    nvec body = {0}, els = {0};
    P->loops++;
    if (parse_statements(P, ends, &body, 0) < 0)
        return NULL;
    P->loops--;
    if (is_name_tok(cur(P), "else")) {
        adv(P);
        if (parse_statements(P, ends2, &els, 1) < 0)
            return NULL;
    } else {
        adv(P);
    }
    f->v = body.v;
    f->nv = body.n;
    f->w = els.v;
    f->nw = els.n;
    return f;
}

static jnode *parse_if(jp *P, int line)
{
    static const char *const ends[] = {"endif", "elif", "else", NULL};
    static const char *const ends2[] = {"endif", NULL};
    jnode *top = node(P, N_IF, line), *x = top;
    if (top == NULL)
        return NULL;
    for (;;) {
        if ((x->a = parse_tuple(P, 0, 0, NULL, 0)) == NULL)
            return NULL;
        nvec body = {0};
        if (parse_statements(P, ends, &body, 0) < 0)
            return NULL;
        x->v = body.v;
        x->nv = body.n;
        const tok *t = cur(P);
        adv(P);
        if (is_name_tok(t, "elif")) {
            jnode *e = node(P, N_IF, t->line);
            if (e == NULL)
                return NULL;
            x->w = palloc(P, sizeof(jnode *));
            if (x->w == NULL)
                return NULL;
            x->w[0] = e;
            x->nw = 1;
            x = e;
            continue;
        }
        if (is_name_tok(t, "else")) {
            nvec els = {0};
            if (parse_statements(P, ends2, &els, 1) < 0)
                return NULL;
            x->w = els.v;
            x->nw = els.n;
        }
        break;
    }
    return top;
}

static jnode *parse_set(jp *P, int line)
{
    jnode *target = parse_assign_target(P, 0, NULL, 1);
    if (target == NULL)
        return NULL;
    if (is_op(cur(P), O_ASSIGN)) {
        adv(P);
        jnode *s = node(P, N_SET, line);
        if (s == NULL)
            return NULL;
        s->a = target;
        if ((s->b = parse_tuple(P, 0, 1, NULL, 0)) == NULL)
            return NULL;
        return s;
    }
    static const char *const ends[] = {"endset", NULL};
    jnode *s = node(P, N_SETBLOCK, line);
    if (s == NULL)
        return NULL;
    s->a = target;
    if (is_op(cur(P), O_PIPE) && (s->b = parse_filter(P, NULL, 0)) == NULL)
        return NULL;
    nvec body = {0};
    if (parse_statements(P, ends, &body, 1) < 0)
        return NULL;
    s->v = body.v;
    s->nv = body.n;
    return s;
}

static void scan_names(const jnode *x, int *flags);

static jnode *parse_macro(jp *P, int line)
{
    jnode *m = node(P, N_MACRO, line);
    if (m == NULL)
        return NULL;
    if (cur(P)->type != TK_NAME) {
        unexpected(P, "a macro name");
        return NULL;
    }
    m->name = cur(P)->s;
    adv(P);
    if (expect_op(P, O_LPAREN) < 0)
        return NULL;
    nvec defs = {0};
    const char **params = NULL;
    size_t cap = 0;
    int have_default = 0;
    while (!is_op(cur(P), O_RPAREN)) {
        if (defs.n && expect_op(P, O_COMMA) < 0)
            return NULL;
        if (is_op(cur(P), O_RPAREN))
            break;
        if (cur(P)->type != TK_NAME) {
            unexpected(P, "a parameter name");
            return NULL;
        }
        const char *pn = cur(P)->s;
        adv(P);
        jnode *d = NULL;
        if (is_op(cur(P), O_ASSIGN)) {
            adv(P);
            if ((d = parse_expression(P, 1)) == NULL)
                return NULL;
            have_default = 1;
        } else if (have_default) {
            pfail(P, LAMINA_EINVAL, cur(P)->line, "non-default argument follows default argument");
            return NULL;
        }
        if (defs.n == cap) {
            size_t nc = cap ? cap * 2 : 4;
            const char **np = palloc(P, nc * sizeof(char *));
            if (np == NULL)
                return NULL;
            if (defs.n)
                memcpy(np, params, defs.n * sizeof(char *));
            params = np;
            cap = nc;
        }
        params[defs.n] = pn;
        nv_push(P, &defs, d);
    }
    adv(P);
    static const char *const ends[] = {"endmacro", NULL};
    nvec body = {0};
    int loops = P->loops;
    P->loops = 0;
    if (parse_statements(P, ends, &body, 1) < 0)
        return NULL;
    P->loops = loops;
    m->kw = params;
    m->w = defs.v;
    m->nw = defs.n;
    m->v = body.v;
    m->nv = body.n;
    for (size_t i = 0; i < body.n; i++)
        scan_names(body.v[i], &m->flags);
    return m;
}

static jnode *parse_statement(jp *P)
{
    const tok *t = cur(P);
    int line = t->line;
    if (t->type != TK_NAME) {
        unexpected(P, "a tag name");
        return NULL;
    }
    const char *k = t->s;
    if (enter(P) < 0)
        return NULL;
    adv(P);
    jnode *x = NULL;
    if (!strcmp(k, "for")) {
        x = parse_for(P, line);
    } else if (!strcmp(k, "if")) {
        x = parse_if(P, line);
    } else if (!strcmp(k, "set")) {
        x = parse_set(P, line);
    } else if (!strcmp(k, "macro")) {
        x = parse_macro(P, line);
    } else if (!strcmp(k, "filter")) {
        static const char *const ends[] = {"endfilter", NULL};
        x = node(P, N_FILTERBLOCK, line);
        nvec body = {0};
        if (x == NULL || (x->b = parse_filter(P, NULL, 1)) == NULL ||
            parse_statements(P, ends, &body, 1) < 0)
            return NULL;
        x->v = body.v;
        x->nv = body.n;
    } else if (!strcmp(k, "generation")) {
        static const char *const ends[] = {"endgeneration", NULL};
        x = node(P, N_GENERATION, line);
        nvec body = {0};
        int loops = P->loops;
        P->loops = 0;
        if (x == NULL || parse_statements(P, ends, &body, 1) < 0)
            return NULL;
        P->loops = loops;
        x->v = body.v;
        x->nv = body.n;
    } else if (!strcmp(k, "break") || !strcmp(k, "continue")) {
        if (P->loops == 0) {
            pfail(P, LAMINA_EINVAL, line, "'%s' outside a loop", k);
            return NULL;
        }
        x = node(P, k[0] == 'b' ? N_BREAK : N_CONTINUE, line);
    } else if (!strcmp(k, "block") || !strcmp(k, "extends") || !strcmp(k, "include") ||
               !strcmp(k, "import") || !strcmp(k, "from") || !strcmp(k, "with") ||
               !strcmp(k, "autoescape") || !strcmp(k, "call") || !strcmp(k, "print") ||
               !strcmp(k, "raw")) {
        pfail(P, LAMINA_ENOTSUP, line, "tag '%s' is not supported", k);
        return NULL;
    } else {
        pfail(P, LAMINA_EINVAL, line, "unknown tag '%s'", k);
        return NULL;
    }
    P->depth--;
    return x;
}

static int is_end(const tok *t, const char *const *ends)
{
    if (ends == NULL || t->type != TK_NAME)
        return 0;
    for (int i = 0; ends[i]; i++)
        if (!strcmp(t->s, ends[i]))
            return 1;
    return 0;
}

/* Statements up to one of ends (NULL: the end of the template); on return
 * the current token is the end name (consumed with its %} when drop). */
static int subparse(jp *P, const char *const *ends, nvec *body)
{
    for (;;) {
        const tok *t = cur(P);
        if (P->failed)
            return -1;
        if (t->type == TK_EOF)
            return 0;
        if (t->type == TK_DATA) {
            jnode *d = node(P, N_DATA, t->line);
            if (d == NULL)
                return -1;
            jstr *s = palloc(P, sizeof(jstr) + t->n + 1);
            if (s == NULL)
                return -1;
            s->len = t->n;
            memcpy(s->p, t->s, t->n);
            s->p[t->n] = 0;
            s->ncp = jj_utf8_count(s->p, t->n);
            d->val.t = JV_STR;
            d->val.s = s;
            nv_push(P, body, d);
            adv(P);
        } else if (t->type == TK_VAR_BEGIN) {
            adv(P);
            jnode *e = parse_tuple(P, 0, 1, NULL, 0);
            if (e == NULL || expect_type(P, TK_VAR_END, "end of print statement") < 0)
                return -1;
            jnode *o = node(P, N_OUTPUT, t->line);
            if (o == NULL)
                return -1;
            o->a = e;
            nv_push(P, body, o);
        } else if (t->type == TK_BLOCK_BEGIN) {
            adv(P);
            if (is_end(cur(P), ends))
                return 0;
            const tok *k = cur(P);
            if (k->type == TK_NAME && (!strncmp(k->s, "end", 3) || !strcmp(k->s, "elif") ||
                                       !strcmp(k->s, "else"))) {
                if (ends != NULL)
                    pfail(P, LAMINA_EINVAL, k->line, "unexpected '%s': the open block ends with '%s'",
                          k->s, ends[0]);
                else
                    pfail(P, LAMINA_EINVAL, k->line, "unexpected '%s': no block is open", k->s);
                return -1;
            }
            jnode *s = parse_statement(P);
            if (s == NULL || end_block(P) < 0)
                return -1;
            nv_push(P, body, s);
        } else {
            unexpected(P, NULL);
            return -1;
        }
    }
}

static int parse_statements(jp *P, const char *const *ends, nvec *body, int drop)
{
    if (is_op(cur(P), O_COLON))
        adv(P);
    if (end_block(P) < 0)
        return -1;
    int line = cur(P)->line;
    if (subparse(P, ends, body) < 0)
        return -1;
    if (cur(P)->type == TK_EOF) {
        pfail(P, LAMINA_EINVAL, line, "unexpected end of template: '%s' was not closed by '%s'",
              ends[0] + 3, ends[0]);
        return -1;
    }
    if (drop)
        adv(P);
    return 0;
}

/* ---- check against the subset ------------------------------------------------ */

static void scan_names(const jnode *x, int *flags)
{
    if (x == NULL)
        return;
    if (x->kind == E_NAME) {
        if (!strcmp(x->name, "varargs"))
            *flags |= MF_VARARGS;
        else if (!strcmp(x->name, "kwargs"))
            *flags |= MF_KWARGS;
    }
    if (x->kind == N_MACRO)
        return;   /* a macro of its own */
    scan_names(x->a, flags);
    scan_names(x->b, flags);
    scan_names(x->c, flags);
    for (size_t i = 0; i < x->nv; i++)
        scan_names(x->v[i], flags);
    for (size_t i = 0; i < x->nw; i++)
        scan_names(x->w[i], flags);
}

static void check_list(jp *P, jnode **v, size_t n, int soft);

static int defines_macro(const jnode *x)
{
    if (x == NULL)
        return 0;
    if (x->kind == N_MACRO)
        return 1;
    if (x->kind > N_GENERATION)
        return 0;   /* expressions hold no statements */
    for (size_t i = 0; i < x->nv; i++)
        if (defines_macro(x->v[i]))
            return 1;
    if (x->kind != N_MACRO)
        for (size_t i = 0; i < x->nw; i++)
            if (defines_macro(x->w[i]))
                return 1;
    return 0;
}

/* soft: inside an if or a conditional expression, where jinja2 leaves an
 * unknown filter or test to run time */
static void check(jp *P, jnode *x, int soft)
{
    if (x == NULL || P->failed)
        return;
    switch (x->kind) {
    case E_FILTER:
        x->fid = (uint16_t)jj_filter_id(x->name);
        if (x->fid == F_UNKNOWN) {
            if (in_list(filters_refused, NELEM(filters_refused), x->name))
                pfail(P, LAMINA_ENOTSUP, x->line, "filter '%s' is not supported", x->name);
            else if (!soft)
                pfail(P, LAMINA_EINVAL, x->line, "no filter named '%s'", x->name);
        }
        break;
    case E_TEST:
        x->fid = (uint16_t)jj_test_id(x->name);
        if (x->fid == T_UNKNOWN && !soft)
            pfail(P, LAMINA_EINVAL, x->line, "no test named '%s'", x->name);
        break;
    case E_CALL:
        if (x->a && x->a->kind == E_GETATTR && jj_method_id(x->a->name) == M_NONE &&
            in_list(methods_refused, NELEM(methods_refused), x->a->name))
            pfail(P, LAMINA_ENOTSUP, x->line, "method '%s' is not supported", x->a->name);
        break;
    case E_NAME:
        if (in_list(globals_refused, NELEM(globals_refused), x->name))
            pfail(P, LAMINA_ENOTSUP, x->line, "global '%s' is not supported", x->name);
        break;
    case N_IF:
        check(P, x->a, 1);
        check_list(P, x->v, x->nv, 1);
        check_list(P, x->w, x->nw, 1);
        return;
    case E_COND:
        check(P, x->a, 1);
        check(P, x->b, 1);
        check(P, x->c, 1);
        return;
    case N_FOR:
        for (size_t i = 0; i < x->nv; i++)
            if (defines_macro(x->v[i]))
                x->flags |= FF_MACRO;
        check(P, x->a, soft);
        check(P, x->b, soft);
        check(P, x->c, 0);
        check_list(P, x->v, x->nv, 0);
        check_list(P, x->w, x->nw, 0);
        return;
    case N_MACRO:
    case N_SETBLOCK:
    case N_FILTERBLOCK:
    case N_GENERATION:
        check(P, x->a, soft);
        check(P, x->b, 0);
        check_list(P, x->v, x->nv, 0);
        check_list(P, x->w, x->nw, 0);
        return;
    default:
        break;
    }
    check(P, x->a, soft);
    check(P, x->b, soft);
    check(P, x->c, soft);
    check_list(P, x->v, x->nv, soft);
    check_list(P, x->w, x->nw, soft);
}

static void check_list(jp *P, jnode **v, size_t n, int soft)
{
    for (size_t i = 0; i < n && !P->failed; i++)
        check(P, v[i], soft);
}

/* ---- API ------------------------------------------------------------------------- */

int lamina_jinja_parse(const char *src, size_t len, lamina_jinja **out, char *err, size_t err_size)
{
    if (err && err_size)
        err[0] = 0;
    if (out == NULL || (src == NULL && len > 0))
        return LAMINA_EINVAL;
    *out = NULL;
    lamina_jinja *T = calloc(1, sizeof *T);
    if (T == NULL)
        return LAMINA_ENOMEM;
    T->arena.limit = 64u << 20;
    jp P = {.T = T, .err = err, .err_size = err_size};
    if (!jj_utf8_valid(src, len)) {
        pfail(&P, LAMINA_EINVAL, 1, "the template is not valid UTF-8");
        goto fail;
    }
    /* newlines as jinja2 sees them: \r\n and \r are \n; one trailing
     * newline dropped (keep_trailing_newline is off) */
    char *s = palloc(&P, len + 1);
    if (s == NULL)
        goto fail;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            s[n++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n')
                i++;
        } else {
            s[n++] = src[i];
        }
    }
    if (n > 0 && s[n - 1] == '\n')
        n--;
    s[n] = 0;
    P.src = s;
    P.n = n;
    if (lex(&P) < 0)
        goto fail;
    nvec body = {0};
    if (subparse(&P, NULL, &body) < 0)
        goto fail;
    if (cur(&P)->type != TK_EOF) {
        unexpected(&P, NULL);
        goto fail;
    }
    check_list(&P, body.v, body.n, 0);
    if (P.failed)
        goto fail;
    T->body = body.v;
    T->n = body.n;
    *out = T;
    return 0;
fail:
    lamina_jinja_free(T);
    return P.failed ? P.code : LAMINA_ENOMEM;
}

void lamina_jinja_free(lamina_jinja *t)
{
    if (t == NULL)
        return;
    jj_arena_free(&t->arena);
    free(t);
}
