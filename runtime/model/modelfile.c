/* modelfile.c - Ollama's Modelfile parsed (see modelfile.h). */
#include "config.h"

#include "modelfile.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lamina/plugin.h"
#include "log.h"

#define MAX_INSTRUCTIONS 4096

typedef struct cursor {
    const char *p, *end;
    int line;
    const char *where;
    char *err;
    size_t es;
} cursor;

static int fail(cursor *c, int line, const char *fmt, const char *arg)
{
    char msg[512];
    snprintf(msg, sizeof msg, fmt, arg ? arg : "");
    return lamina_set_err(c->err, c->es, LAMINA_EINVAL, "%s:%d: %s", c->where, line, msg);
}

static void skip_blank(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t')) c->p++;
}

static char *dup_n(const char *s, size_t n)
{
    char *t = malloc(n + 1);
    if (!t) return NULL;
    memcpy(t, s, n);
    t[n] = 0;
    return t;
}

/* The rest of the line is only blanks (and the line break is consumed). */
static int end_line(cursor *c, int line)
{
    skip_blank(c);
    if (c->p < c->end && *c->p == '\r') c->p++;
    if (c->p < c->end && *c->p != '\n') return fail(c, line, "unexpected text after the closing quote", NULL);
    if (c->p < c->end) { c->p++; c->line++; }
    return 0;
}

/* A value: """multi-line""", "one line" or the rest of the line (trailing
 * blanks dropped).  *out malloc'd; the cursor is left after the line. */
static int value(cursor *c, int line, const char *what, char **out)
{
    skip_blank(c);
    if (c->end - c->p >= 3 && !memcmp(c->p, "\"\"\"", 3)) {
        const char *s = c->p + 3, *q = s;
        int nl = 0;
        while (q + 3 <= c->end && memcmp(q, "\"\"\"", 3)) nl += *q++ == '\n';
        if (q + 3 > c->end) return fail(c, line, "%s: unterminated \"\"\" string", what);
        c->p = q + 3;
        c->line += nl;
        if (!(*out = dup_n(s, (size_t)(q - s)))) return lamina_set_err(c->err, c->es, LAMINA_ENOMEM, "out of memory");
        int rc = end_line(c, c->line);
        if (rc < 0) { free(*out); *out = NULL; }
        return rc;
    }
    if (c->p < c->end && *c->p == '"') {
        const char *s = ++c->p;
        char *t = malloc((size_t)(c->end - s) + 1);
        if (!t) return lamina_set_err(c->err, c->es, LAMINA_ENOMEM, "out of memory");
        size_t n = 0;
        while (c->p < c->end && *c->p != '"' && *c->p != '\n') {
            if (*c->p == '\\' && c->p + 1 < c->end && (c->p[1] == '"' || c->p[1] == '\\')) c->p++;
            t[n++] = *c->p++;
        }
        if (c->p >= c->end || *c->p != '"') { free(t); return fail(c, line, "%s: unterminated \" string", what); }
        c->p++;
        t[n] = 0;
        int rc = end_line(c, line);
        if (rc < 0) { free(t); return rc; }
        *out = t;
        return 0;
    }
    const char *s = c->p;
    while (c->p < c->end && *c->p != '\n') c->p++;
    const char *e = c->p;
    while (e > s && isspace((unsigned char)e[-1])) e--;
    if (c->p < c->end) { c->p++; c->line++; }
    if (e == s) return fail(c, line, "%s: missing value", what);
    if (!(*out = dup_n(s, (size_t)(e - s)))) return lamina_set_err(c->err, c->es, LAMINA_ENOMEM, "out of memory");
    return 0;
}

static int push(void **arr, int *n, size_t elem, cursor *c)
{
    if (*n >= MAX_INSTRUCTIONS) return fail(c, c->line, "too many instructions (at most %s)", "4096");
    void *q = realloc(*arr, (size_t)(*n + 1) * elem);
    if (!q) return lamina_set_err(c->err, c->es, LAMINA_ENOMEM, "out of memory");
    *arr = q;
    return 0;
}

static int parameter(cursor *c, int line, lamina_modelfile *mf)
{
    skip_blank(c);
    const char *k = c->p;
    while (c->p < c->end && (isalnum((unsigned char)*c->p) || *c->p == '_')) c->p++;
    size_t kl = (size_t)(c->p - k);
    if (kl == 0 || kl > 64 || (c->p < c->end && !isspace((unsigned char)*c->p)))
        return fail(c, line, "PARAMETER: expected a name (letters, digits, '_') and a value%s", NULL);
    char key[65];
    memcpy(key, k, kl);
    key[kl] = 0;
    if (c->p >= c->end || *c->p == '\n' || *c->p == '\r') return fail(c, line, "PARAMETER %s: missing value", key);
    char what[80];
    snprintf(what, sizeof what, "PARAMETER %s", key);
    char *v = NULL;
    int rc = value(c, line, what, &v);
    if (rc < 0) return rc;
    if ((rc = push((void **)&mf->params, &mf->n_params, sizeof *mf->params, c)) < 0) { free(v); return rc; }
    lamina_modelfile_param *p = &mf->params[mf->n_params];
    p->key = dup_n(key, kl);
    p->value = v;
    p->line = line;
    mf->n_params++;
    if (!p->key) return lamina_set_err(c->err, c->es, LAMINA_ENOMEM, "out of memory");
    return 0;
}

/* A single-valued instruction given twice keeps the last, as Ollama. */
static int single(cursor *c, int line, const char *what, char **slot)
{
    char *v = NULL;
    int rc = value(c, line, what, &v);
    if (rc < 0) return rc;
    free(*slot);
    *slot = v;
    return 0;
}

int lamina_modelfile_parse(const char *text, size_t len, const char *where, lamina_modelfile *mf, char *err,
                           size_t es)
{
    memset(mf, 0, sizeof *mf);
    cursor c = { .p = text, .end = text + len, .line = 1, .where = where ? where : "Modelfile", .err = err, .es = es };
    int rc = 0;
    if (memchr(text, 0, len)) { rc = fail(&c, 1, "the file holds a NUL byte (not a text file)%s", NULL); goto out; }
    while (c.p < c.end) {
        skip_blank(&c);
        int line = c.line;
        if (c.p >= c.end) break;
        if (*c.p == '\n' || *c.p == '\r' || *c.p == '#') {
            while (c.p < c.end && *c.p != '\n') c.p++;
            if (c.p < c.end) { c.p++; c.line++; }
            continue;
        }
        const char *w = c.p;
        while (c.p < c.end && !isspace((unsigned char)*c.p)) c.p++;
        char ins[24];
        snprintf(ins, sizeof ins, "%.*s", (int)(c.p - w < 20 ? c.p - w : 20), w);
        for (char *q = ins; *q; q++) *q = (char)toupper((unsigned char)*q);
        if (!strcmp(ins, "FROM")) {
            if ((rc = single(&c, line, "FROM", &mf->from)) < 0) goto out;
            mf->from_line = line;
        } else if (!strcmp(ins, "PARAMETER")) {
            if ((rc = parameter(&c, line, mf)) < 0) goto out;
        } else if (!strcmp(ins, "TEMPLATE")) {
            if ((rc = single(&c, line, "TEMPLATE", &mf->template_text)) < 0) goto out;
        } else if (!strcmp(ins, "SYSTEM")) {
            if ((rc = single(&c, line, "SYSTEM", &mf->system)) < 0) goto out;
        } else if (!strcmp(ins, "LICENSE")) {
            char *v = NULL;
            if ((rc = value(&c, line, "LICENSE", &v)) < 0) goto out;
            if ((rc = push((void **)&mf->licenses, &mf->n_licenses, sizeof *mf->licenses, &c)) < 0) { free(v); goto out; }
            mf->licenses[mf->n_licenses++] = v;
        } else if (!strcmp(ins, "ADAPTER")) {
            rc = fail(&c, line, "ADAPTER: LoRA adapters are not supported%s", NULL);
            goto out;
        } else if (!strcmp(ins, "MESSAGE")) {
            rc = fail(&c, line, "MESSAGE: a model with stored messages is not supported (lamina would not prepend "
                      "them to conversations)%s", NULL);
            goto out;
        } else {
            char word[64];
            snprintf(word, sizeof word, "%.*s", (int)(c.p - w < 40 ? c.p - w : 40), w);
            rc = fail(&c, line, "unknown instruction '%s' (FROM, PARAMETER, TEMPLATE, SYSTEM, LICENSE)", word);
            goto out;
        }
    }
    if (!mf->from) rc = lamina_set_err(err, es, LAMINA_EINVAL, "%s: no FROM instruction", c.where);
out:
    if (rc < 0) lamina_modelfile_free(mf);
    return rc;
}

void lamina_modelfile_free(lamina_modelfile *mf)
{
    free(mf->from);
    free(mf->template_text);
    free(mf->system);
    for (int i = 0; i < mf->n_licenses; i++) free(mf->licenses[i]);
    free(mf->licenses);
    for (int i = 0; i < mf->n_params; i++) {
        free(mf->params[i].key);
        free(mf->params[i].value);
    }
    free(mf->params);
    memset(mf, 0, sizeof *mf);
}
