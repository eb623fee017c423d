/* jinja_eval.c - run a parsed template: statements, expressions, scopes
 * and macros with jinja2's semantics (see jinja.h, jinja_impl.h). */
#include "config.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_impl.h"
#include "lamina/plugin.h"

/* ---- scopes ------------------------------------------------------------- */

static jscope *scope_new(jj_render *R, jscope *parent)
{
    jscope *s = jj_alloc(&R->A, sizeof(jscope));
    if (s == NULL) {
        jj_fail(R, LAMINA_ERANGE, "the template needs more than %zu bytes of memory", R->A.limit);
        return parent;
    }
    s->parent = parent;
    return s;
}

static void scope_set(jj_render *R, jscope *s, const char *name, jv v)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->names[i], name)) {
            s->vals[i] = v;
            return;
        }
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 8;
        const char **nn = jj_alloc(&R->A, nc * sizeof(char *));
        jv *nv = nn ? jj_alloc(&R->A, nc * sizeof(jv)) : NULL;
        if (nv == NULL) {
            jj_fail(R, LAMINA_ERANGE, "the template needs more than %zu bytes of memory",
                    R->A.limit);
            return;
        }
        if (s->n) {
            memcpy(nn, s->names, s->n * sizeof(char *));
            memcpy(nv, s->vals, s->n * sizeof(jv));
        }
        s->names = nn;
        s->vals = nv;
        s->cap = nc;
    }
    s->names[s->n] = name;
    s->vals[s->n] = v;
    s->n++;
}

static int scope_get(const jscope *s, const char *name, jv *out)
{
    for (; s != NULL; s = s->parent)
        for (size_t i = s->n; i > 0; i--)
            if (!strcmp(s->names[i - 1], name)) {
                *out = s->vals[i - 1];
                return 1;
            }
    return 0;
}

/* ---- helpers ------------------------------------------------------------ */

static int step(jj_render *R)
{
    if (++R->steps > R->max_steps) {
        jj_fail(R, LAMINA_ERANGE, "the template takes more than %zu steps", R->max_steps);
        return -1;
    }
    return 0;
}

static void emit_value(jj_render *R, jv v)
{
    jv_str_into(R, R->out, v);
    jj_check_buf(R, R->out);
}

static jv eval(jj_render *R, const jnode *x, jscope *sc);
static void exec_body(jj_render *R, jnode *const *v, size_t n, jscope *sc);

static int is_index_seq(jv v)
{
    return v.t == JV_LIST && (v.sub == JL_LIST || v.sub == JL_TUPLE || v.sub == JL_RANGE);
}

static jv loop_attr(jj_render *R, jv obj, const char *name)
{
    const jloop *lp = obj.lp;
    size_t i = lp->i, n = lp->n;
    if (!strcmp(name, "index")) return jv_int((int64_t)i + 1);
    if (!strcmp(name, "index0")) return jv_int((int64_t)i);
    if (!strcmp(name, "revindex")) return jv_int((int64_t)(n - i));
    if (!strcmp(name, "revindex0")) return jv_int((int64_t)(n - i - 1));
    if (!strcmp(name, "first")) return jv_bool(i == 0);
    if (!strcmp(name, "last")) return jv_bool(i + 1 == n);
    if (!strcmp(name, "length")) return jv_int((int64_t)n);
    if (!strcmp(name, "depth")) return jv_int(lp->depth);
    if (!strcmp(name, "depth0")) return jv_int(lp->depth - 1);
    if (!strcmp(name, "previtem"))
        return i > 0 ? lp->items[i - 1] : jv_undef_hint(R, "there is no previous item", 0);
    if (!strcmp(name, "nextitem"))
        return i + 1 < n ? lp->items[i + 1] : jv_undef_hint(R, "there is no next item", 0);
    if (!strcmp(name, "cycle") || !strcmp(name, "changed")) {
        jv m = {.t = JV_METHOD, .id = (uint16_t)(name[1] == 'y' ? M_CYCLE : M_CHANGED)};
        m.bm = jj_alloc(&R->A, sizeof(jbound));
        if (m.bm == NULL)
            return jv_undef();
        m.bm->self = obj;
        return m;
    }
    return jv_undef_attr(R, obj, name);
}

static jv bound(jj_render *R, jv self, int mid)
{
    jv m = {.t = JV_METHOD, .id = (uint16_t)mid};
    m.bm = jj_alloc(&R->A, sizeof(jbound));
    if (m.bm == NULL) {
        jj_fail(R, LAMINA_ERANGE, "the template needs more than %zu bytes of memory", R->A.limit);
        return jv_undef();
    }
    m.bm->self = self;
    return m;
}

static jv unsafe_attr(jj_render *R, jv obj, const char *name)
{
    char msg[160];
    snprintf(msg, sizeof msg, "access to attribute '%s' of '%s' object is unsafe.", name,
             jv_type_name(obj));
    return jv_undef_hint(R, msg, 1);
}

/* the attribute lookup of obj.name (getattr first, then obj[name]) */
static jv attr_of(jj_render *R, jv obj, const char *name, int try_item)
{
    if (obj.t == JV_UNDEF) {
        jj_fail_undef(R, obj);
        return jv_undef();
    }
    if (name[0] == '_' && name[1] == '_')
        return unsafe_attr(R, obj, name);
    if (obj.t == JV_LOOP)
        return loop_attr(R, obj, name);
    int unsafe = 0;
    int mid = jj_method_for(obj, name, &unsafe);
    if (unsafe)
        return unsafe_attr(R, obj, name);
    if (mid != M_NONE)
        return bound(R, obj, mid);
    jv v;
    if ((obj.t == JV_DICT || obj.t == JV_NS) && try_item && jd_get_str(obj.d, name, &v))
        return v;
    return jv_undef_attr(R, obj, name);
}

jv jj_getattr(jj_render *R, jv obj, const char *name)
{
    return attr_of(R, obj, name, 1);
}

jv jj_pyattr(jj_render *R, jv obj, const char *name)
{
    return attr_of(R, obj, name, 0);
}

jv jj_getitem(jj_render *R, jv obj, jv key)
{
    jv v;
    switch (obj.t) {
    case JV_UNDEF:
        jj_fail_undef(R, obj);
        return jv_undef();
    case JV_DICT:
        if (key.t == JV_LIST && key.sub != JL_TUPLE)
            break;
        if (key.t == JV_DICT || key.t == JV_NS)
            break;
        if (jd_get(obj.d, key, &v))
            return v;
        break;
    case JV_LIST:
        if (is_index_seq(obj) && (key.t == JV_INT || key.t == JV_BOOL)) {
            int64_t i = key.i, n = (int64_t)obj.l->n;
            if (i < 0)
                i += n;
            if (i >= 0 && i < n)
                return obj.l->v[i];
            return jv_undef_item(R, obj, key);
        }
        break;
    case JV_STR:
        if (key.t == JV_INT || key.t == JV_BOOL) {
            int64_t i = key.i, n = (int64_t)obj.s->ncp;
            if (i < 0)
                i += n;
            if (i < 0 || i >= n)
                return jv_undef_item(R, obj, key);
            size_t b = 0;
            if (obj.s->ncp == obj.s->len) {
                b = (size_t)i;
                return jv_str(R, obj.s->p + b, 1);
            }
            for (int64_t k = 0; k < i; k++)
                jj_utf8_next(obj.s->p, obj.s->len, &b);
            size_t e = b;
            jj_utf8_next(obj.s->p, obj.s->len, &e);
            return jv_str(R, obj.s->p + b, e - b);
        }
        break;
    case JV_NS:
    case JV_LOOP:
        if (key.t == JV_STR)
            return attr_of(R, obj, key.s->p, 1);
        break;
    default:
        break;
    }
    /* obj[key] failed: a string key is tried as an attribute */
    if (key.t == JV_STR && obj.t != JV_NS)
        return attr_of(R, obj, key.s->p, 0);
    return jv_undef_item(R, obj, key);
}

/* ---- slicing ------------------------------------------------------------ */

static int slice_index(jj_render *R, jv v, int64_t *out, int *given)
{
    *given = 0;
    if (v.t == JV_NONE || v.t == JV_MISSING)
        return 0;
    if (v.t != JV_INT && v.t != JV_BOOL) {
        if (v.t == JV_UNDEF)
            jj_fail_undef(R, v);
        else
            jj_fail(R, LAMINA_EINVAL,
                    "slice indices must be integers or None or have an __index__ method");
        return -1;
    }
    *out = v.i;
    *given = 1;
    return 0;
}

static jv do_slice(jj_render *R, jv obj, const jnode *sl, jscope *sc)
{
    jv a = sl->a ? eval(R, sl->a, sc) : jv_none();
    jv b = sl->b ? eval(R, sl->b, sc) : jv_none();
    jv c = sl->c ? eval(R, sl->c, sc) : jv_none();
    if (R->failed)
        return jv_undef();
    if (obj.t == JV_UNDEF) {
        jj_fail_undef(R, obj);
        return jv_undef();
    }
    if (!(obj.t == JV_STR || is_index_seq(obj))) {
        /* jinja2 subscripts a slice directly, not through getitem */
        if (obj.t == JV_DICT)
            jj_fail(R, LAMINA_EINVAL, "unhashable type: 'slice'");
        else
            jj_fail(R, LAMINA_EINVAL, "'%s' object is not subscriptable", jv_type_name(obj));
        return jv_undef();
    }
    int64_t start = 0, stop = 0, stepv = 1;
    int gs, ge, gt;
    if (slice_index(R, a, &start, &gs) < 0 || slice_index(R, b, &stop, &ge) < 0 ||
        slice_index(R, c, &stepv, &gt) < 0)
        return jv_undef();
    if (!gt)
        stepv = 1;
    if (stepv == 0) {
        jj_fail(R, LAMINA_EINVAL, "slice step cannot be zero");
        return jv_undef();
    }
    int64_t len = obj.t == JV_STR ? (int64_t)obj.s->ncp : (int64_t)obj.l->n;
    if (stepv > 0) {
        if (!gs) start = 0;
        else if (start < 0) { start += len; if (start < 0) start = 0; }
        else if (start > len) start = len;
        if (!ge) stop = len;
        else if (stop < 0) { stop += len; if (stop < 0) stop = 0; }
        else if (stop > len) stop = len;
    } else {
        if (!gs) start = len - 1;
        else if (start < 0) { start += len; if (start < 0) start = -1; }
        else if (start >= len) start = len - 1;
        if (!ge) stop = -1;
        else if (stop < 0) { stop += len; if (stop < 0) stop = -1; }
        else if (stop >= len) stop = len - 1;
    }
    int64_t count = 0;
    if (stepv > 0 && start < stop)
        count = (stop - start - 1) / stepv + 1;
    else if (stepv < 0 && stop < start)
        count = (start - stop - 1) / (-stepv) + 1;
    if (obj.t == JV_STR) {
        const jstr *s = obj.s;
        if (stepv == 1 && s->ncp == s->len)
            return jv_str(R, s->p + start, (size_t)count);
        /* byte offsets of the code points */
        size_t *off = jj_alloc(&R->A, ((size_t)len + 1) * sizeof(size_t));
        if (off == NULL) {
            jj_fail(R, LAMINA_ERANGE, "the template needs more than %zu bytes of memory",
                    R->A.limit);
            return jv_undef();
        }
        size_t bi = 0;
        for (int64_t k = 0; k < len; k++) {
            off[k] = bi;
            jj_utf8_next(s->p, s->len, &bi);
        }
        off[len] = s->len;
        if (stepv == 1)
            return jv_str(R, s->p + off[start], off[start + count] - off[start]);
        lamina_strbuf buf = {.limit = R->max_output};
        for (int64_t k = 0, i = start; k < count; k++, i += stepv)
            lamina_strbuf_add(&buf, s->p + off[i], off[i + 1] - off[i]);
        return jv_buf(R, &buf);
    }
    jv out = jv_list(R, (size_t)count, obj.sub);
    for (int64_t k = 0, i = start; k < count && !R->failed; k++, i += stepv)
        jl_push(R, out, obj.l->v[i]);
    if (obj.sub == JL_RANGE) {
        /* a range's slice is a range */
        out.l->r0 = obj.l->r0 + start * obj.l->r2;
        out.l->r1 = obj.l->r0 + stop * obj.l->r2;
        out.l->r2 = obj.l->r2 * stepv;
    }
    return out;
}

/* ---- operators ------------------------------------------------------------ */

static jv type_error2(jj_render *R, const char *op, jv a, jv b)
{
    if (a.t == JV_UNDEF)
        jj_fail_undef(R, a);
    else if (b.t == JV_UNDEF)
        jj_fail_undef(R, b);
    else
        jj_fail(R, LAMINA_EINVAL, "unsupported operand type(s) for %s: '%s' and '%s'", op,
                jv_type_name(a), jv_type_name(b));
    return jv_undef();
}

static jv repeat(jj_render *R, jv seq, int64_t times)
{
    if (times < 0 || (seq.t == JV_STR ? seq.s->len : seq.l->n) == 0)
        times = 0;
    if (seq.t == JV_STR) {
        if (seq.s->len && (uint64_t)times > R->max_output / seq.s->len) {
            jj_fail(R, LAMINA_ERANGE, "string repetition longer than %zu bytes", R->max_output);
            return jv_undef();
        }
        lamina_strbuf b = {.limit = R->max_output};
        for (int64_t i = 0; i < times; i++)
            lamina_strbuf_add(&b, seq.s->p, seq.s->len);
        jv r = jv_buf(R, &b);
        r.sub = seq.sub;
        return r;
    }
    if (seq.l->n && (uint64_t)times > R->max_output / seq.l->n) {
        jj_fail(R, LAMINA_ERANGE, "list repetition too long");
        return jv_undef();
    }
    jv out = jv_list(R, seq.l->n * (size_t)times, seq.sub == JL_TUPLE ? JL_TUPLE : JL_LIST);
    for (int64_t i = 0; i < times && !R->failed; i++)
        for (size_t k = 0; k < seq.l->n; k++)
            jl_push(R, out, seq.l->v[k]);
    return out;
}

static int is_int(jv v) { return v.t == JV_INT || v.t == JV_BOOL; }

static void float_divmod(double vx, double wx, double *fdiv, double *fmodv)
{
    double mod = fmod(vx, wx), div = (vx - mod) / wx, floordiv;
    if (mod != 0.0) {
        if ((wx < 0) != (mod < 0)) {
            mod += wx;
            div -= 1.0;
        }
    } else {
        mod = copysign(0.0, wx);
    }
    if (div != 0.0) {
        floordiv = floor(div);
        if (div - floordiv > 0.5)
            floordiv += 1.0;
    } else {
        floordiv = copysign(0.0, vx / wx);
    }
    *fdiv = floordiv;
    *fmodv = mod;
}

jv jj_percent_format(jj_render *R, jv fmt, jv args);   /* jinja_builtins.c */

static jv binop(jj_render *R, int op, jv a, jv b)
{
    static const char *const names[] = {"+", "-", "*", "/", "//", "%", "**"};
    const char *on = names[op];
    if (a.t == JV_UNDEF) {
        jj_fail_undef(R, a);
        return jv_undef();
    }
    if (b.t == JV_UNDEF && !(op == OP_MOD && a.t == JV_STR)) {
        jj_fail_undef(R, b);
        return jv_undef();
    }
    int nums = jv_is_num(a) && jv_is_num(b);
    int fl = nums && (a.t == JV_FLOAT || b.t == JV_FLOAT);
    int64_t r;
    switch (op) {
    case OP_ADD:
        if (nums) {
            if (fl)
                return jv_float(jv_num(a) + jv_num(b));
            if (__builtin_add_overflow(a.i, b.i, &r))
                break;
            return jv_int(r);
        }
        if (a.t == JV_STR && b.t == JV_STR) {
            lamina_strbuf buf = {.limit = R->max_output};
            if (a.sub && !b.sub) {
                lamina_strbuf_add(&buf, a.s->p, a.s->len);
                jj_escape_into(&buf, b.s->p, b.s->len);
            } else if (b.sub && !a.sub) {
                jj_escape_into(&buf, a.s->p, a.s->len);
                lamina_strbuf_add(&buf, b.s->p, b.s->len);
            } else {
                lamina_strbuf_add(&buf, a.s->p, a.s->len);
                lamina_strbuf_add(&buf, b.s->p, b.s->len);
            }
            jv v = jv_buf(R, &buf);
            v.sub = a.sub | b.sub;
            return v;
        }
        if (a.t == JV_LIST && b.t == JV_LIST && a.sub == b.sub &&
            (a.sub == JL_LIST || a.sub == JL_TUPLE)) {
            jv out = jv_list(R, a.l->n + b.l->n, a.sub);
            for (size_t i = 0; i < a.l->n; i++)
                jl_push(R, out, a.l->v[i]);
            for (size_t i = 0; i < b.l->n; i++)
                jl_push(R, out, b.l->v[i]);
            return out;
        }
        if (a.t == JV_STR) {
            jj_fail(R, LAMINA_EINVAL, "can only concatenate str (not \"%s\") to str",
                    jv_type_name(b));
            return jv_undef();
        }
        if (a.t == JV_LIST && a.sub == JL_LIST) {
            jj_fail(R, LAMINA_EINVAL, "can only concatenate list (not \"%s\") to list",
                    jv_type_name(b));
            return jv_undef();
        }
        return type_error2(R, on, a, b);
    case OP_SUB:
        if (!nums)
            return type_error2(R, on, a, b);
        if (fl)
            return jv_float(jv_num(a) - jv_num(b));
        if (__builtin_sub_overflow(a.i, b.i, &r))
            break;
        return jv_int(r);
    case OP_MUL:
        if (nums) {
            if (fl)
                return jv_float(jv_num(a) * jv_num(b));
            if (__builtin_mul_overflow(a.i, b.i, &r))
                break;
            return jv_int(r);
        }
        if ((a.t == JV_STR || (a.t == JV_LIST && (a.sub == JL_LIST || a.sub == JL_TUPLE))) &&
            is_int(b))
            return repeat(R, a, b.i);
        if ((b.t == JV_STR || (b.t == JV_LIST && (b.sub == JL_LIST || b.sub == JL_TUPLE))) &&
            is_int(a))
            return repeat(R, b, a.i);
        return type_error2(R, on, a, b);
    case OP_DIV:
        if (!nums)
            return type_error2(R, on, a, b);
        if (jv_num(b) == 0.0) {
            jj_fail(R, LAMINA_EINVAL, fl ? "float division by zero" : "division by zero");
            return jv_undef();
        }
        return jv_float(jv_num(a) / jv_num(b));
    case OP_FLOORDIV:
    case OP_MOD:
        if (op == OP_MOD && a.t == JV_STR)
            return jj_percent_format(R, a, b);
        if (!nums)
            return type_error2(R, on, a, b);
        if (jv_num(b) == 0.0) {
            jj_fail(R, LAMINA_EINVAL, fl ? "float floor division by zero"
                                         : "integer division or modulo by zero");
            return jv_undef();
        }
        if (fl) {
            double d, m;
            float_divmod(jv_num(a), jv_num(b), &d, &m);
            return jv_float(op == OP_MOD ? m : d);
        }
        if (a.i == INT64_MIN && b.i == -1)
            break;
        {
            int64_t q = a.i / b.i, m = a.i % b.i;
            if (m != 0 && ((m < 0) != (b.i < 0))) {
                q -= 1;
                m += b.i;
            }
            return jv_int(op == OP_MOD ? m : q);
        }
    case OP_POW:
        if (!nums)
            return type_error2(R, on, a, b);
        if (!fl && b.i >= 0) {
            int64_t acc = 1, base = a.i, e = b.i;
            while (e > 0) {
                if (e & 1) {
                    if (__builtin_mul_overflow(acc, base, &acc))
                        goto overflow;
                }
                e >>= 1;
                if (e && __builtin_mul_overflow(base, base, &base))
                    goto overflow;
            }
            return jv_int(acc);
        }
        {
            double x = jv_num(a), y = jv_num(b);
            if (x == 0.0 && y < 0) {
                jj_fail(R, LAMINA_EINVAL, "0.0 cannot be raised to a negative power");
                return jv_undef();
            }
            if (x < 0 && y != floor(y)) {
                jj_fail(R, LAMINA_ENOTSUP, "complex numbers are not supported");
                return jv_undef();
            }
            return jv_float(pow(x, y));
        }
    default:
        break;
    }
overflow:
    jj_fail(R, LAMINA_ERANGE, "integer overflow in '%s'", on);
    return jv_undef();
}

jv jj_binop(jj_render *R, int op, jv a, jv b)
{
    return binop(R, op, a, b);
}

static int compare(jj_render *R, int op, jv a, jv b)
{
    int c, r;
    switch (op) {
    case OP_EQ: return jv_eq(R, a, b);
    case OP_NE: return !jv_eq(R, a, b);
    case OP_IN:
    case OP_NOTIN:
        if (jv_contains(R, b, a, &r) < 0)
            return 0;
        return op == OP_IN ? r : !r;
    default:
        if (jv_cmp(R, a, b, &c) < 0 || c == 2)
            return 0;
        switch (op) {
        case OP_LT: return c < 0;
        case OP_LE: return c <= 0;
        case OP_GT: return c > 0;
        default: return c >= 0;
        }
    }
}

/* ---- calls ----------------------------------------------------------------- */

static jv call_macro(jj_render *R, jv fn, jv *args, size_t nargs, const char **kwn, jv *kwv,
                     size_t nkw)
{
    const jnode *m = fn.m->def;
    if (R->depth >= R->max_depth) {
        jj_fail(R, LAMINA_ERANGE, "macro calls nested deeper than %d", R->max_depth);
        return jv_undef();
    }
    if (step(R) < 0)
        return jv_undef();
    jscope *sc = scope_new(R, fn.m->closure);
    size_t np = m->nw;
    if (nargs > np && !(m->flags & MF_VARARGS)) {
        jj_fail(R, LAMINA_EINVAL, "macro '%s' takes not more than %zu argument(s)", m->name, np);
        return jv_undef();
    }
    char *set = jj_alloc(&R->A, np + 1);
    if (set == NULL) {
        jj_fail(R, LAMINA_ERANGE, "the template needs more than %zu bytes of memory", R->A.limit);
        return jv_undef();
    }
    for (size_t i = 0; i < nargs && i < np; i++) {
        scope_set(R, sc, m->kw[i], args[i]);
        set[i] = 1;
    }
    jv kwargs = jv_dict(R, 0, JV_DICT);
    for (size_t k = 0; k < nkw; k++) {
        size_t i;
        for (i = 0; i < np; i++)
            if (!strcmp(m->kw[i], kwn[k]))
                break;
        if (i < np) {
            if (set[i]) {
                jj_fail(R, LAMINA_EINVAL, "macro '%s' got multiple values for argument '%s'",
                        m->name, kwn[k]);
                return jv_undef();
            }
            scope_set(R, sc, m->kw[i], kwv[k]);
            set[i] = 1;
        } else if (m->flags & MF_KWARGS) {
            jd_set(R, kwargs, jv_cstr(R, kwn[k]), kwv[k]);
        } else {
            jj_fail(R, LAMINA_EINVAL, "macro '%s' takes no keyword argument '%s'", m->name,
                    kwn[k]);
            return jv_undef();
        }
    }
    int line = R->line;
    for (size_t i = 0; i < np && !R->failed; i++) {
        if (set[i])
            continue;
        if (m->w[i] != NULL) {
            scope_set(R, sc, m->kw[i], eval(R, m->w[i], sc));
        } else {
            char hint[160];
            snprintf(hint, sizeof hint, "parameter '%s' was not provided", m->kw[i]);
            scope_set(R, sc, m->kw[i], jv_undef_hint(R, hint, 0));
        }
    }
    if (m->flags & MF_VARARGS) {
        jv va = jv_list(R, nargs > np ? nargs - np : 0, JL_TUPLE);
        for (size_t i = np; i < nargs; i++)
            jl_push(R, va, args[i]);
        scope_set(R, sc, "varargs", va);
    }
    if (m->flags & MF_KWARGS)
        scope_set(R, sc, "kwargs", kwargs);
    if (R->failed)
        return jv_undef();
    lamina_strbuf buf = {.limit = R->max_output};
    lamina_strbuf *saved = R->out;
    R->out = &buf;
    R->depth++;
    exec_body(R, m->v, m->nv, sc);
    R->depth--;
    R->out = saved;
    R->line = line;
    if (R->failed) {
        lamina_strbuf_free(&buf);
        return jv_undef();
    }
    return jv_buf(R, &buf);
}

jv jj_call(jj_render *R, jv fn, jv *args, size_t nargs, const char **kwn, jv *kwv, size_t nkw)
{
    switch (fn.t) {
    case JV_MACRO: return call_macro(R, fn, args, nargs, kwn, kwv, nkw);
    case JV_FUNC: return jj_global_call(R, fn.sub, args, nargs, kwn, kwv, nkw);
    case JV_METHOD: return jj_method_call(R, fn.bm->self, fn.id, args, nargs, kwn, kwv, nkw);
    case JV_UNDEF:
        jj_fail_undef(R, fn);
        return jv_undef();
    default:
        jj_fail(R, LAMINA_EINVAL, "'%s' object is not callable", jv_type_name(fn));
        return jv_undef();
    }
}

/* arguments of a call, filter or test node */
static int eval_args(jj_render *R, const jnode *x, jscope *sc, jv **args, jv **kwv)
{
    *args = x->nv ? jj_alloc(&R->A, x->nv * sizeof(jv)) : NULL;
    *kwv = x->nw ? jj_alloc(&R->A, x->nw * sizeof(jv)) : NULL;
    if ((x->nv && *args == NULL) || (x->nw && *kwv == NULL)) {
        jj_fail(R, LAMINA_ERANGE, "the template needs more than %zu bytes of memory", R->A.limit);
        return -1;
    }
    for (size_t i = 0; i < x->nv && !R->failed; i++)
        (*args)[i] = eval(R, x->v[i], sc);
    for (size_t i = 0; i < x->nw && !R->failed; i++)
        (*kwv)[i] = eval(R, x->w[i], sc);
    return R->failed ? -1 : 0;
}

static jv apply_filter(jj_render *R, const jnode *f, jv val, jscope *sc)
{
    jv *args, *kwv;
    if (eval_args(R, f, sc, &args, &kwv) < 0)
        return jv_undef();
    R->line = f->line;
    return jj_filter(R, f->fid, f->name, val, args, f->nv, f->kw, kwv, f->nw);
}

/* a filter chain of a {% filter %} or {% set x | f %} applied to text */
static jv apply_chain(jj_render *R, const jnode *f, jv text, jscope *sc)
{
    if (f == NULL)
        return text;
    jv inner = apply_chain(R, f->a, text, sc);
    if (R->failed)
        return jv_undef();
    return apply_filter(R, f, inner, sc);
}

/* ---- expressions ------------------------------------------------------------ */

static jv eval_inner(jj_render *R, const jnode *x, jscope *sc)
{
    jv a, b;
    switch (x->kind) {
    case E_CONST: return x->val;
    case E_NAME: {
        if (scope_get(sc, x->name, &a))
            return a;
        int g = jj_global_id(x->name);
        if (g != G_NONE) {
            jv f = {.t = JV_FUNC, .sub = (uint8_t)g};
            return f;
        }
        return jv_undef_name(R, x->name);
    }
    case E_GETATTR:
        a = eval(R, x->a, sc);
        if (R->failed)
            return a;
        R->line = x->line;
        return jj_getattr(R, a, x->name);
    case E_GETITEM:
        a = eval(R, x->a, sc);
        if (R->failed)
            return a;
        if (x->b->kind == E_SLICE)
            return do_slice(R, a, x->b, sc);
        b = eval(R, x->b, sc);
        if (R->failed)
            return b;
        R->line = x->line;
        return jj_getitem(R, a, b);
    case E_CALL: {
        jv *args, *kwv;
        a = eval(R, x->a, sc);
        if (R->failed || eval_args(R, x, sc, &args, &kwv) < 0)
            return jv_undef();
        R->line = x->line;
        return jj_call(R, a, args, x->nv, x->kw, kwv, x->nw);
    }
    case E_FILTER:
        a = eval(R, x->a, sc);
        if (R->failed)
            return a;
        return apply_filter(R, x, a, sc);
    case E_TEST: {
        jv *args, *kwv;
        a = eval(R, x->a, sc);
        if (R->failed || eval_args(R, x, sc, &args, &kwv) < 0)
            return jv_undef();
        R->line = x->line;
        int r = jj_test(R, x->fid, x->name, a, args, x->nv, x->kw, kwv, x->nw);
        return jv_bool(r > 0);
    }
    case E_BIN:
        a = eval(R, x->a, sc);
        if (R->failed)
            return a;
        b = eval(R, x->b, sc);
        if (R->failed)
            return b;
        R->line = x->line;
        return binop(R, x->op, a, b);
    case E_NEG:
    case E_POS:
        a = eval(R, x->a, sc);
        if (R->failed)
            return a;
        R->line = x->line;
        if (a.t == JV_UNDEF) {
            jj_fail_undef(R, a);
            return jv_undef();
        }
        if (a.t == JV_FLOAT)
            return jv_float(x->kind == E_NEG ? -a.f : a.f);
        if (is_int(a)) {
            if (x->kind == E_POS)
                return jv_int(a.i);
            if (a.i == INT64_MIN) {
                jj_fail(R, LAMINA_ERANGE, "integer overflow in unary '-'");
                return jv_undef();
            }
            return jv_int(-a.i);
        }
        jj_fail(R, LAMINA_EINVAL, "bad operand type for unary %c: '%s'",
                x->kind == E_NEG ? '-' : '+', jv_type_name(a));
        return jv_undef();
    case E_NOT:
        a = eval(R, x->a, sc);
        return jv_bool(!jv_truthy(a));
    case E_AND:
        a = eval(R, x->a, sc);
        if (R->failed || !jv_truthy(a))
            return a;
        return eval(R, x->b, sc);
    case E_OR:
        a = eval(R, x->a, sc);
        if (R->failed || jv_truthy(a))
            return a;
        return eval(R, x->b, sc);
    case E_COMPARE:
        a = eval(R, x->a, sc);
        for (size_t i = 0; i < x->nv && !R->failed; i++) {
            b = eval(R, x->v[i]->a, sc);
            if (R->failed)
                break;
            R->line = x->v[i]->line;
            if (!compare(R, x->v[i]->op, a, b))
                return jv_bool(0);
            a = b;
        }
        return jv_bool(!R->failed);
    case E_CONCAT: {
        lamina_strbuf buf = {.limit = R->max_output};
        for (size_t i = 0; i < x->nv && !R->failed; i++)
            jv_str_into(R, &buf, eval(R, x->v[i], sc));
        if (R->failed) {
            lamina_strbuf_free(&buf);
            return jv_undef();
        }
        return jv_buf(R, &buf);
    }
    case E_COND:
        a = eval(R, x->a, sc);
        if (R->failed)
            return a;
        if (jv_truthy(a))
            return eval(R, x->b, sc);
        if (x->c)
            return eval(R, x->c, sc);
        return jv_undef_hint(R, "the inline if-expression evaluated to false and no else "
                                "section was defined.", 0);
    case E_LIST:
    case E_TUPLE: {
        jv l = jv_list(R, x->nv, x->kind == E_LIST ? JL_LIST : JL_TUPLE);
        for (size_t i = 0; i < x->nv && !R->failed; i++)
            jl_push(R, l, eval(R, x->v[i], sc));
        return l;
    }
    case E_DICT: {
        jv d = jv_dict(R, x->nv, JV_DICT);
        for (size_t i = 0; i < x->nv && !R->failed; i++) {
            jv k = eval(R, x->v[i], sc);
            jv v = eval(R, x->w[i], sc);
            if (k.t == JV_DICT || k.t == JV_NS || (k.t == JV_LIST && k.sub != JL_TUPLE)) {
                R->line = x->line;
                jj_fail(R, LAMINA_EINVAL, "unhashable type: '%s'", jv_type_name(k));
                break;
            }
            jd_set(R, d, k, v);
        }
        return d;
    }
    default:
        jj_fail(R, LAMINA_EINVAL, "cannot evaluate this expression");
        return jv_undef();
    }
}

static jv eval(jj_render *R, const jnode *x, jscope *sc)
{
    if (R->failed)
        return jv_undef();
    if (++R->cdepth > JJ_MAX_CDEPTH) {
        R->line = x->line;
        jj_fail(R, LAMINA_ERANGE, "the template nests calls too deeply");
        R->cdepth--;
        return jv_undef();
    }
    jv v = eval_inner(R, x, sc);
    R->cdepth--;
    return R->failed ? jv_undef() : v;
}

/* ---- statements ----------------------------------------------------------- */

static void assign(jj_render *R, const jnode *t, jv v, jscope *sc)
{
    if (t->kind == E_NAME) {
        scope_set(R, sc, t->name, v);
        return;
    }
    if (t->kind == E_NSREF) {
        jv ns;
        if (!scope_get(sc, t->name, &ns) || ns.t != JV_NS) {
            jj_fail(R, LAMINA_EINVAL, "cannot assign attribute on non-namespace object");
            return;
        }
        jd_set(R, ns, jv_cstr(R, t->name2), v);
        return;
    }
    /* tuple unpacking */
    jv *items;
    size_t n;
    if (v.t == JV_UNDEF) {
        jj_fail_undef(R, v);
        return;
    }
    if (jv_items(R, v, &items, &n) < 0)
        return;
    if (n != t->nv) {
        if (n > t->nv)
            jj_fail(R, LAMINA_EINVAL, "too many values to unpack (expected %zu)", t->nv);
        else
            jj_fail(R, LAMINA_EINVAL, "not enough values to unpack (expected %zu, got %zu)",
                    t->nv, n);
        return;
    }
    for (size_t i = 0; i < n; i++)
        scope_set(R, sc, t->v[i]->name, items[i]);
}

static void exec_for(jj_render *R, const jnode *x, jscope *sc)
{
    jv it = eval(R, x->b, sc);
    if (R->failed)
        return;
    R->line = x->line;
    jv *items;
    size_t n;
    if (jv_items(R, it, &items, &n) < 0)
        return;
    if (x->c != NULL) {
        /* for x in y if cond: the loop sees only the items kept */
        jv kept = jv_list(R, n, JL_LIST);
        jscope *ts = scope_new(R, sc);
        for (size_t i = 0; i < n && !R->failed; i++) {
            ts->n = 0;
            assign(R, x->a, items[i], ts);
            if (jv_truthy(eval(R, x->c, ts)))
                jl_push(R, kept, items[i]);
        }
        if (R->failed)
            return;
        items = kept.l->v;
        n = kept.l->n;
    }
    if (n == 0) {
        exec_body(R, x->w, x->nw, scope_new(R, sc));
        return;
    }
    jloop *lp = jj_alloc(&R->A, sizeof(jloop));
    if (lp == NULL) {
        jj_fail(R, LAMINA_ERANGE, "the template needs more than %zu bytes of memory", R->A.limit);
        return;
    }
    lp->items = items;
    lp->n = n;
    lp->depth = 1;
    jv lv = {.t = JV_LOOP};
    lv.lp = lp;
    /* each iteration starts with a fresh scope; one is reused unless a
     * macro defined in the body could keep it */
    jscope *is = NULL;
    for (size_t i = 0; i < n && !R->failed; i++) {
        if (step(R) < 0)
            return;
        lp->i = i;
        if (is == NULL || (x->flags & FF_MACRO))
            is = scope_new(R, sc);
        else
            is->n = 0;
        scope_set(R, is, "loop", lv);
        assign(R, x->a, items[i], is);
        exec_body(R, x->v, x->nv, is);
        if (R->ctl == 1) {
            R->ctl = 0;
            break;
        }
        R->ctl = 0;
    }
}

static jv capture(jj_render *R, jnode *const *v, size_t n, jscope *sc)
{
    lamina_strbuf buf = {.limit = R->max_output};
    lamina_strbuf *saved = R->out;
    R->out = &buf;
    exec_body(R, v, n, sc);
    R->out = saved;
    if (R->failed) {
        lamina_strbuf_free(&buf);
        return jv_undef();
    }
    return jv_buf(R, &buf);
}

static void exec_stmt(jj_render *R, const jnode *x, jscope *sc)
{
    R->line = x->line;
    switch (x->kind) {
    case N_DATA:
        lamina_strbuf_add(R->out, x->val.s->p, x->val.s->len);
        jj_check_buf(R, R->out);
        return;
    case N_OUTPUT: {
        jv v = eval(R, x->a, sc);
        if (!R->failed)
            emit_value(R, v);
        return;
    }
    case N_IF: {
        jv t = eval(R, x->a, sc);
        if (R->failed)
            return;
        if (jv_truthy(t))
            exec_body(R, x->v, x->nv, sc);
        else
            exec_body(R, x->w, x->nw, sc);
        return;
    }
    case N_FOR:
        exec_for(R, x, sc);
        return;
    case N_SET: {
        jv v = eval(R, x->b, sc);
        if (!R->failed)
            assign(R, x->a, v, sc);
        return;
    }
    case N_SETBLOCK: {
        jscope *inner = scope_new(R, sc);
        jv v = capture(R, x->v, x->nv, inner);
        if (R->failed)
            return;
        v = apply_chain(R, x->b, v, inner);
        R->line = x->line;
        if (!R->failed)
            assign(R, x->a, v, sc);
        return;
    }
    case N_MACRO: {
        jv m = {.t = JV_MACRO};
        m.m = jj_alloc(&R->A, sizeof(jmacro));
        if (m.m == NULL) {
            jj_fail(R, LAMINA_ERANGE, "the template needs more than %zu bytes of memory",
                    R->A.limit);
            return;
        }
        m.m->def = x;
        m.m->closure = sc;
        scope_set(R, sc, x->name, m);
        return;
    }
    case N_FILTERBLOCK: {
        jscope *inner = scope_new(R, sc);
        jv v = capture(R, x->v, x->nv, inner);
        if (R->failed)
            return;
        v = apply_chain(R, x->b, v, inner);
        if (!R->failed)
            emit_value(R, v);
        return;
    }
    case N_GENERATION:
        exec_body(R, x->v, x->nv, scope_new(R, sc));
        return;
    case N_BREAK:
        R->ctl = 1;
        return;
    case N_CONTINUE:
        R->ctl = 2;
        return;
    default:
        jj_fail(R, LAMINA_EINVAL, "cannot run this statement");
        return;
    }
}

static void exec_body(jj_render *R, jnode *const *v, size_t n, jscope *sc)
{
    if (++R->cdepth > JJ_MAX_CDEPTH) {
        jj_fail(R, LAMINA_ERANGE, "the template nests calls too deeply");
        R->cdepth--;
        return;
    }
    for (size_t i = 0; i < n && !R->failed && !R->ctl; i++) {
        if (step(R) < 0)
            break;
        exec_stmt(R, v[i], sc);
    }
    R->cdepth--;
}

/* ---- API ------------------------------------------------------------------- */

int lamina_jinja_render(const lamina_jinja *t, const char *ctx_json, size_t ctx_len,
                        const struct tm *now, const lamina_jinja_limits *limits,
                        char **out, size_t *out_len, char *err, size_t err_size)
{
    if (err && err_size)
        err[0] = 0;
    if (t == NULL || out == NULL)
        return LAMINA_EINVAL;
    *out = NULL;
    jj_render R;
    memset(&R, 0, sizeof R);
    R.err = err;
    R.err_size = err_size;
    R.max_output = limits && limits->max_output ? limits->max_output : (size_t)16 << 20;
    R.max_steps = limits && limits->max_steps ? limits->max_steps : (size_t)20000000;
    R.max_depth = limits && limits->max_depth ? limits->max_depth : 200;
    /* the fallback objects come before the limit applies */
    R.empty = jj_alloc(&R.A, sizeof(jstr) + 1);
    R.nil_list = jj_alloc(&R.A, sizeof(jlist));
    R.nil_dict = jj_alloc(&R.A, sizeof(jdict));
    R.root = jj_alloc(&R.A, sizeof(jscope));
    if (R.root == NULL) {
        jj_arena_free(&R.A);
        return LAMINA_ENOMEM;
    }
    R.A.limit = limits && limits->max_memory ? limits->max_memory : (size_t)256 << 20;
    if (now != NULL) {
        R.now = *now;
    } else {
        time_t tt = time(NULL);
        localtime_r(&tt, &R.now);
    }
    int rc = 0;
    if (ctx_json != NULL && ctx_len > 0) {
        jv ctx;
        if (jj_json_parse(&R, ctx_json, ctx_len, &ctx) < 0)
            goto done;
        if (ctx.t != JV_DICT) {
            jj_fail(&R, LAMINA_EINVAL, "the context JSON is not an object");
            goto done;
        }
        for (size_t i = 0; i < ctx.d->n; i++)
            if (ctx.d->k[i].t == JV_STR)
                scope_set(&R, R.root, ctx.d->k[i].s->p, ctx.d->v[i]);
    }
    lamina_strbuf buf = {.limit = R.max_output};
    R.out = &buf;
    exec_body(&R, t->body, t->n, R.root);
    if (!R.failed && buf.over)
        jj_check_buf(&R, &buf);
    if (R.failed) {
        lamina_strbuf_free(&buf);
        goto done;
    }
    if (buf.p == NULL) {
        buf.p = calloc(1, 1);
        if (buf.p == NULL) {
            jj_arena_free(&R.A);
            return LAMINA_ENOMEM;
        }
    }
    *out = buf.p;
    if (out_len)
        *out_len = buf.n;
done:
    if (R.failed)
        rc = R.code ? R.code : LAMINA_EINVAL;
    if (R.failed && R.A.over && rc != LAMINA_ENOMEM)
        rc = LAMINA_ERANGE;
    jj_arena_free(&R.A);
    return rc;
}
