/*
 * jinja_impl.h - what the parts of the Jinja interpreter share (jinja.h
 * for the API): the arena, values, syntax tree and render state.
 *
 *   jinja_value.c     arena, UTF-8 and Unicode, values, str()/repr(),
 *                     equality and order, json.dumps, JSON parsing
 *   jinja_parse.c     lexer (trim_blocks/lstrip_blocks as jinja2), parser,
 *                     the load-time check of names against the subset
 *   jinja_eval.c      statements, expressions, scopes, macros, the API
 *   jinja_builtins.c  filters, tests, str/dict/list methods, globals
 *
 * Values live in a per-render arena freed as a whole, so they need no
 * reference counts and cycles (a namespace holding itself) are harmless.
 * Internal to liblamina.
 */
#ifndef LAMINA_JINJA_IMPL_H
#define LAMINA_JINJA_IMPL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "jinja.h"
#include "strbuf.h"

/* ---- arena ---------------------------------------------------------------- */

typedef struct jj_chunk jj_chunk;
typedef struct jj_arena {
    jj_chunk *head;
    size_t total;   /* bytes taken from malloc */
    size_t limit;   /* 0: none */
    int over;       /* the limit was passed or malloc failed */
} jj_arena;

void *jj_alloc(jj_arena *a, size_t n);      /* zeroed; NULL when over */
void jj_arena_free(jj_arena *a);

/* output, captured blocks and temporaries: lamina_strbuf (strbuf.h) */

/* ---- UTF-8 and Unicode (as Python's str) ------------------------------------ */

uint32_t jj_utf8_next(const char *s, size_t n, size_t *i);  /* decodes at *i, advances */
size_t jj_utf8_put(char *out, uint32_t cp);                 /* out: 4 bytes */
int jj_utf8_valid(const char *s, size_t n);
size_t jj_utf8_count(const char *s, size_t n);
int jj_isspace(uint32_t cp);
int jj_isprint(uint32_t cp);
int jj_iscased(uint32_t cp);
enum { JJ_UPPER, JJ_LOWER, JJ_TITLE };
/* the mapping of cp appended to b */
void jj_case(lamina_strbuf *b, uint32_t cp, int which);

/* ---- values --------------------------------------------------------------- */

enum jv_type {
    JV_UNDEF, JV_NONE, JV_BOOL, JV_INT, JV_FLOAT, JV_STR, JV_LIST, JV_DICT,
    JV_NS,      /* jinja2's Namespace: a dict of attributes */
    JV_MACRO, JV_FUNC, JV_METHOD, JV_LOOP,
    JV_MISSING  /* internal: an argument not given */
};

/* JV_LIST kinds: what Python type the sequence is */
enum {
    JL_LIST, JL_TUPLE,
    JL_GEN,      /* generator (select, map, ...): consumed by iterating */
    JL_REVITER,  /* list_reverseiterator (|reverse of a list) */
    JL_RANGE,    /* range */
    JL_ITEMS, JL_KEYS, JL_VALUES  /* dict_items, dict_keys, dict_values */
};

typedef struct jstr {
    size_t len;     /* bytes */
    size_t ncp;     /* code points */
    char p[];       /* NUL-terminated */
} jstr;

typedef struct jv {
    uint8_t t;      /* enum jv_type */
    uint8_t sub;    /* JV_STR: 1 = Markup; JV_LIST: JL_*; JV_FUNC: enum jj_global */
    uint16_t id;    /* JV_METHOD: enum jj_method */
    union {
        int64_t i;                  /* JV_BOOL, JV_INT */
        double f;
        struct jstr *s;
        struct jlist *l;
        struct jdict *d;            /* JV_DICT, JV_NS */
        struct jundef *u;           /* JV_UNDEF (NULL: plain) */
        struct jmacro *m;
        struct jbound *bm;          /* JV_METHOD */
        struct jloop *lp;
        void *p;                    /* any of the pointers, for identity */
    };
} jv;

typedef struct jlist {
    size_t n, cap;
    jv *v;
    size_t pos;                     /* JL_GEN: items already consumed */
    const char *gen_err;            /* JL_GEN: the error iterating raises */
    const char *pyname;             /* JL_GEN: the generator function; JL_REVITER: the type */
    int64_t r0, r1, r2;             /* JL_RANGE: start, stop, step (for repr) */
} jlist;

typedef struct jdict {
    size_t n, cap;
    jv *k, *v;                      /* insertion order */
} jdict;

enum { UD_PLAIN, UD_NAME, UD_ATTR, UD_ITEM, UD_HINT };
typedef struct jundef {
    uint8_t kind;
    uint8_t unsafe;                 /* calling it is a SecurityError */
    uint8_t objt, objsub;           /* type of the object looked into */
    const char *name;               /* UD_NAME, UD_ATTR; UD_HINT: the message */
    jv key;                         /* UD_ITEM */
} jundef;

struct jnode;
struct jscope;
typedef struct jmacro {
    const struct jnode *def;
    struct jscope *closure;
} jmacro;

typedef struct jbound {
    jv self;
} jbound;

typedef struct jloop {
    jv *items;
    size_t n, i;
    int depth;
    jv last_changed;                /* loop.changed() */
    int changed_set;
} jloop;

/* ---- syntax tree -------------------------------------------------------- */

enum jnode_kind {
    /* statements */
    N_DATA, N_OUTPUT, N_IF, N_FOR, N_SET, N_SETBLOCK, N_MACRO, N_FILTERBLOCK,
    N_BREAK, N_CONTINUE, N_GENERATION,
    /* expressions */
    E_CONST, E_NAME, E_GETATTR, E_GETITEM, E_SLICE, E_CALL, E_FILTER, E_TEST,
    E_BIN, E_NEG, E_POS, E_NOT, E_AND, E_OR, E_COMPARE, E_OPERAND, E_CONCAT,
    E_COND, E_LIST, E_TUPLE, E_DICT, E_NSREF
};

/* E_BIN and E_OPERAND operators */
enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD, OP_POW,
       OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_IN, OP_NOTIN };

/* Fields by kind (unlisted ones unused):
 *  N_DATA val          N_OUTPUT a
 *  N_IF a=test v=body w=else (an elif is an N_IF alone in w)
 *  N_FOR a=target b=iter c=filter v=body w=else
 *  N_SET a=target b=value   N_SETBLOCK a=target b=filter chain v=body
 *  N_MACRO name kw/w=parameters/defaults (w[i] NULL: none) v=body flags
 *  N_FILTERBLOCK b=filter chain v=body   N_GENERATION v=body
 *  E_CONST val   E_NAME name   E_GETATTR a name   E_GETITEM a b
 *  E_SLICE a b c (NULL: omitted)   E_CALL a v kw/w
 *  E_FILTER a (NULL: the block's text) name fid v kw/w
 *  E_TEST a name fid v kw/w   E_BIN op a b   E_NEG/E_POS/E_NOT a
 *  E_AND/E_OR a b   E_COMPARE a v (E_OPERAND op a)   E_CONCAT v
 *  E_COND a=test b=then c=else   E_LIST/E_TUPLE v   E_DICT v=keys w=values
 *  E_NSREF name=variable name2=attribute */
typedef struct jnode {
    uint8_t kind, op;
    uint16_t fid;
    int line;
    int flags;
    const char *name, *name2;
    jv val;
    struct jnode *a, *b, *c;
    struct jnode **v;
    size_t nv;
    struct jnode **w;
    const char **kw;
    size_t nw;
} jnode;

enum { MF_VARARGS = 1, MF_KWARGS = 2 };
enum { FF_MACRO = 1 };   /* N_FOR: its body defines a macro (which keeps the scope) */

struct lamina_jinja {
    jj_arena arena;
    jnode **body;
    size_t n;
};

/* ---- names known to the subset (jinja_parse.c checks, jinja_builtins.c runs) */

enum jj_filter {
    F_UNKNOWN, F_ABS, F_ATTR, F_CAPITALIZE, F_CENTER, F_COUNT, F_DEFAULT, F_DICTSORT,
    F_ESCAPE, F_FIRST, F_FLOAT, F_FORCEESCAPE, F_FORMAT, F_INDENT, F_INT, F_ITEMS,
    F_JOIN, F_LAST, F_LENGTH, F_LIST, F_LOWER, F_MAP, F_MAX, F_MIN, F_REJECT,
    F_REJECTATTR, F_REPLACE, F_REVERSE, F_ROUND, F_SAFE, F_SELECT, F_SELECTATTR,
    F_SORT, F_STRING, F_SUM, F_TITLE, F_TOJSON, F_TRIM, F_UNIQUE, F_UPPER, F_WORDCOUNT
};
enum jj_test {
    T_UNKNOWN, T_BOOLEAN, T_CALLABLE, T_DEFINED, T_DIVISIBLEBY, T_EQ, T_ESCAPED, T_EVEN,
    T_FALSE, T_FILTER, T_FLOAT, T_GE, T_GT, T_IN, T_INTEGER, T_ITERABLE, T_LE, T_LOWER,
    T_LT, T_MAPPING, T_NE, T_NONE, T_NUMBER, T_ODD, T_SAMEAS, T_SEQUENCE, T_STRING,
    T_TEST, T_TRUE, T_UNDEFINED, T_UPPER
};
enum jj_method {
    M_NONE,
    /* str */
    M_CAPITALIZE, M_CENTER, M_COUNT, M_ENDSWITH, M_FIND, M_FORMAT, M_INDEX, M_ISALNUM,
    M_ISALPHA, M_ISDIGIT, M_ISLOWER, M_ISSPACE, M_ISUPPER, M_JOIN, M_LJUST, M_LOWER,
    M_LSTRIP, M_PARTITION, M_REMOVEPREFIX, M_REMOVESUFFIX, M_REPLACE, M_RFIND, M_RINDEX,
    M_RJUST, M_RPARTITION, M_RSPLIT, M_RSTRIP, M_SPLIT, M_SPLITLINES, M_STARTSWITH,
    M_STRIP, M_TITLE, M_UPPER, M_ZFILL,
    /* dict (M_COPY, M_COUNT and M_INDEX also for lists) */
    M_GET, M_ITEMS, M_KEYS, M_VALUES, M_COPY,
    /* loop */
    M_CYCLE, M_CHANGED,
    M_COUNT_
};
enum jj_global { G_NONE, G_RANGE, G_NAMESPACE, G_DICT, G_RAISE, G_STRFTIME };

int jj_filter_id(const char *name);   /* F_UNKNOWN if not ours */
int jj_test_id(const char *name);
int jj_method_id(const char *name);   /* M_NONE if not ours */
const char *jj_method_name(int id);
int jj_global_id(const char *name);   /* G_NONE */

/* ---- render state ------------------------------------------------------- */

typedef struct jscope {
    struct jscope *parent;
    size_t n, cap;
    const char **names;
    jv *vals;
} jscope;

typedef struct jj_render {
    jj_arena A;
    lamina_strbuf *out;            /* where output goes now */
    size_t max_output, max_steps, steps;
    int depth, max_depth;   /* macro calls */
    int cdepth;             /* C recursion */
    int failed, code;
    char *err;
    size_t err_size;
    struct tm now;
    jscope *root;
    int ctl;                /* 1: break, 2: continue pending */
    int line;               /* line being run, for messages */
    jstr *empty;            /* handed out when memory runs out, so that */
    jlist *nil_list;        /* callers always get an object */
    jdict *nil_dict;
} jj_render;

#define JJ_MAX_CDEPTH 900    /* nested eval/exec calls */
#define JJ_MAX_NEST 400      /* value nesting for repr, json, == */

void jj_fail(jj_render *R, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void jj_fail_undef(jj_render *R, jv u);     /* the UndefinedError of u */
void jj_check_buf(jj_render *R, lamina_strbuf *b); /* fails R when b is over its limit */

/* constructors */
jv jv_undef(void);
jv jv_undef_name(jj_render *R, const char *name);
jv jv_undef_attr(jj_render *R, jv obj, const char *name);
jv jv_undef_item(jj_render *R, jv obj, jv key);
jv jv_undef_hint(jj_render *R, const char *hint, int unsafe);
jv jv_none(void);
jv jv_bool(int b);
jv jv_int(int64_t i);
jv jv_float(double f);
jv jv_str(jj_render *R, const char *s, size_t n);
jv jv_cstr(jj_render *R, const char *s);
jv jv_buf(jj_render *R, lamina_strbuf *b);         /* takes the text, frees b */
jv jv_list(jj_render *R, size_t cap, int kind);
void jl_push(jj_render *R, jv list, jv item);
jv jv_dict(jj_render *R, size_t cap, int type);   /* JV_DICT or JV_NS */
void jd_set(jj_render *R, jv dict, jv key, jv val);
int jd_get(const jdict *d, jv key, jv *out);        /* 1 found */
int jd_get_str(const jdict *d, const char *key, jv *out);

static inline int jv_is_str(jv v) { return v.t == JV_STR; }
static inline int jv_is_num(jv v) { return v.t == JV_INT || v.t == JV_BOOL || v.t == JV_FLOAT; }
static inline double jv_num(jv v) { return v.t == JV_FLOAT ? v.f : (double)v.i; }
static inline int jv_is_seq(jv v) { return v.t == JV_LIST; }

/* Python semantics */
int jv_truthy(jv v);
int jv_eq(jj_render *R, jv a, jv b);                 /* a == b */
int jv_cmp(jj_render *R, jv a, jv b, int *res);      /* <0,0,>0 in *res; -1 TypeError (R failed) */
int jv_contains(jj_render *R, jv container, jv item, int *res);
const char *jv_type_name(jv v);                      /* Python type name: "str", "dict", ... */
void jv_str_into(jj_render *R, lamina_strbuf *b, jv v);     /* str(v) */
void jv_repr_into(jj_render *R, lamina_strbuf *b, jv v, int depth);
jv jv_to_str(jj_render *R, jv v);                    /* str(v) as a value (Markup kept) */
void jj_float_repr(char *out, size_t size, double f);   /* Python repr(float) */
void jj_escape_into(lamina_strbuf *b, const char *s, size_t n); /* markupsafe.escape */

/* json.dumps(v, ensure_ascii, indent (NULL: none), separators, sort_keys) */
typedef struct jj_json_opts {
    int ensure_ascii;
    const char *indent;     /* NULL: none */
    const char *item_sep, *key_sep;
    int sort_keys;
} jj_json_opts;
void jv_tojson_into(jj_render *R, lamina_strbuf *b, jv v, const jj_json_opts *o, int depth);

/* json.loads of text into a value; 0 or -1 with R failed */
int jj_json_parse(jj_render *R, const char *s, size_t n, jv *out);

/* iteration: the items of an iterable as an array (generators are consumed);
 * -1 with R failed when v is not iterable */
int jv_items(jj_render *R, jv v, jv **items, size_t *n);
/* len(v); -1 with R failed when v has no len */
int jv_len(jj_render *R, jv v, size_t *n);

/* ---- evaluator entry points used by builtins ----------------------------- */

jv jj_getattr(jj_render *R, jv obj, const char *name);
jv jj_pyattr(jj_render *R, jv obj, const char *name);     /* Python getattr() only */
jv jj_getitem(jj_render *R, jv obj, jv key);
jv jj_call(jj_render *R, jv fn, jv *args, size_t nargs, const char **kwn, jv *kwv, size_t nkw);
jv jj_binop(jj_render *R, int op, jv a, jv b);               /* OP_ADD ... OP_POW */

/* filters, tests, methods, globals (jinja_builtins.c) */
jv jj_filter(jj_render *R, int fid, const char *name, jv val, jv *args, size_t nargs,
             const char **kwn, jv *kwv, size_t nkw);
int jj_test(jj_render *R, int tid, const char *name, jv val, jv *args, size_t nargs,
            const char **kwn, jv *kwv, size_t nkw);       /* 0/1, -1 failed */
jv jj_method_call(jj_render *R, jv self, int mid, jv *args, size_t nargs,
                  const char **kwn, jv *kwv, size_t nkw);
int jj_method_for(jv self, const char *name, int *unsafe);   /* method id of self.name */
jv jj_global_call(jj_render *R, int gid, jv *args, size_t nargs,
                  const char **kwn, jv *kwv, size_t nkw);

#endif
