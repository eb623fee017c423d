/* report.c - reports to and from JSON (see report.h). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "report.h"

static const char *const devstr_key[LAMINA_DS_COUNT] = {
    "name", "type", "driver_name", "driver_version", "runtime_version",
    "api_version", "arch", "features", "unusable"
};

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid. */
static size_t utf8_seq(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    size_t n;
    unsigned cp;
    if ((s[0] & 0xe0) == 0xc0) { n = 2; cp = s[0] & 0x1f; }
    else if ((s[0] & 0xf0) == 0xe0) { n = 3; cp = s[0] & 0x0f; }
    else if ((s[0] & 0xf8) == 0xf0) { n = 4; cp = s[0] & 0x07; }
    else return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

void lamina_report_str(char *dst, size_t size, const char *src)
{
    if (size == 0)
        return;
    size_t o = 0;
    const unsigned char *s = (const unsigned char *)(src ? src : "");
    while (*s && o + 1 < size) {
        size_t n = utf8_seq(s);
        if (n == 0) {
            dst[o++] = '?';
            s++;
            continue;
        }
        if (o + n >= size)
            break;              /* do not cut a sequence in half */
        memcpy(dst + o, s, n);
        o += n;
        s += n;
    }
    dst[o] = '\0';
}

static const char **devstr_field(lamina_device_info *info, int which)
{
    switch (which) {
    case LAMINA_DS_NAME: return &info->name;
    case LAMINA_DS_TYPE: return &info->type;
    case LAMINA_DS_DRIVER_NAME: return &info->driver_name;
    case LAMINA_DS_DRIVER_VERSION: return &info->driver_version;
    case LAMINA_DS_RUNTIME_VERSION: return &info->runtime_version;
    case LAMINA_DS_API_VERSION: return &info->api_version;
    case LAMINA_DS_ARCH: return &info->arch;
    case LAMINA_DS_FEATURES: return &info->features;
    case LAMINA_DS_UNUSABLE: return &info->unusable;
    default: return NULL;
    }
}

void lamina_report_device_set(lamina_device_report *d, int which, const char *s)
{
    const char **f = devstr_field(&d->info, which);
    if (f == NULL)
        return;
    if (s == NULL) {
        d->strings[which][0] = '\0';
        *f = NULL;
        return;
    }
    lamina_report_str(d->strings[which], sizeof(d->strings[which]), s);
    *f = d->strings[which];
}

/* Re-point the info strings after the report moved in memory. */
static void device_fixup(lamina_device_report *d)
{
    for (int i = 0; i < LAMINA_DS_COUNT; i++) {
        const char **f = devstr_field(&d->info, i);
        if (*f != NULL)
            *f = d->strings[i];
    }
}

void lamina_report_device_from_info(lamina_device_report *d, const lamina_device_info *info)
{
    lamina_report_device_clear(d);
    memset(d, 0, sizeof(*d));
    d->info.struct_size = sizeof(d->info);
    if (LAMINA_HAS(info, index)) d->info.index = info->index;
    if (LAMINA_HAS(info, name)) lamina_report_device_set(d, LAMINA_DS_NAME, info->name);
    if (LAMINA_HAS(info, type)) lamina_report_device_set(d, LAMINA_DS_TYPE, info->type);
    if (LAMINA_HAS(info, driver_name))
        lamina_report_device_set(d, LAMINA_DS_DRIVER_NAME, info->driver_name);
    if (LAMINA_HAS(info, driver_version))
        lamina_report_device_set(d, LAMINA_DS_DRIVER_VERSION, info->driver_version);
    if (LAMINA_HAS(info, runtime_version))
        lamina_report_device_set(d, LAMINA_DS_RUNTIME_VERSION, info->runtime_version);
    if (LAMINA_HAS(info, api_version))
        lamina_report_device_set(d, LAMINA_DS_API_VERSION, info->api_version);
    if (LAMINA_HAS(info, arch)) lamina_report_device_set(d, LAMINA_DS_ARCH, info->arch);
    if (LAMINA_HAS(info, features))
        lamina_report_device_set(d, LAMINA_DS_FEATURES, info->features);
    if (LAMINA_HAS(info, mem_total)) d->info.mem_total = info->mem_total;
    if (LAMINA_HAS(info, mem_free)) d->info.mem_free = info->mem_free;
    if (LAMINA_HAS(info, unusable))
        lamina_report_device_set(d, LAMINA_DS_UNUSABLE, info->unusable);
    if (LAMINA_HAS(info, vendor_id)) d->info.vendor_id = info->vendor_id;
    if (LAMINA_HAS(info, device_id)) d->info.device_id = info->device_id;
}

lamina_device_report *lamina_report_add_device(lamina_plugin_report *p)
{
    if (p->n_devices >= 1024)
        return NULL;
    lamina_device_report *n = realloc(p->devices, (size_t)(p->n_devices + 1) * sizeof(*n));
    if (n == NULL)
        return NULL;
    p->devices = n;
    for (int i = 0; i < p->n_devices; i++)
        device_fixup(&n[i]);
    lamina_device_report *d = &n[p->n_devices++];
    memset(d, 0, sizeof(*d));
    d->info.struct_size = sizeof(d->info);
    return d;
}

void lamina_report_device_clear(lamina_device_report *d)
{
    free(d->cases);
    d->cases = NULL;
    d->n_cases = 0;
}

void lamina_report_plugin_clear(lamina_plugin_report *p)
{
    for (int i = 0; i < p->n_devices; i++)
        lamina_report_device_clear(&p->devices[i]);
    free(p->devices);
    p->devices = NULL;
    p->n_devices = 0;
}

int lamina_report_plugin_copy(lamina_plugin_report *dst, const lamina_plugin_report *src)
{
    *dst = *src;
    dst->devices = NULL;
    dst->n_devices = 0;
    if (src->n_devices == 0)
        return 0;
    dst->devices = calloc((size_t)src->n_devices, sizeof(*dst->devices));
    if (dst->devices == NULL)
        return LAMINA_ENOMEM;
    for (int i = 0; i < src->n_devices; i++) {
        lamina_device_report *d = &dst->devices[i];
        *d = src->devices[i];
        d->cases = NULL;
        d->n_cases = 0;
        device_fixup(d);
        dst->n_devices = i + 1;
        if (src->devices[i].n_cases > 0) {
            d->cases = malloc((size_t)src->devices[i].n_cases * sizeof(*d->cases));
            if (d->cases == NULL) {
                lamina_report_plugin_clear(dst);
                return LAMINA_ENOMEM;
            }
            memcpy(d->cases, src->devices[i].cases,
                   (size_t)src->devices[i].n_cases * sizeof(*d->cases));
            d->n_cases = src->devices[i].n_cases;
        }
    }
    return 0;
}

const char *lamina_report_status_name(int status)
{
    switch (status) {
    case LAMINA_STATUS_ACCEPTED: return "accepted";
    case LAMINA_STATUS_REJECTED: return "rejected";
    case LAMINA_STATUS_DISABLED: return "disabled";
    default: return "unknown";
    }
}

static int status_from_name(const char *s)
{
    if (strcmp(s, "rejected") == 0) return LAMINA_STATUS_REJECTED;
    if (strcmp(s, "disabled") == 0) return LAMINA_STATUS_DISABLED;
    return LAMINA_STATUS_ACCEPTED;
}

/* ------------------------------------------------------------------------ */
/* Writing                                                                  */

/* json_string that never fails on bad UTF-8 (the text is cleaned first). */
static json_t *jstr(const char *s)
{
    if (s == NULL)
        return json_null();
    json_t *j = json_string(s);
    if (j != NULL)
        return j;
    size_t n = strlen(s) + 1;
    char *tmp = malloc(n);
    if (tmp == NULL)
        return NULL;
    lamina_report_str(tmp, n, s);
    j = json_string(tmp);
    free(tmp);
    return j;
}

/* Set helpers that tolerate NULL values from failed allocations: jansson's
 * json_object_set_new frees `value` on failure and fails on NULL. */
#define SET(obj, key, val) json_object_set_new((obj), (key), (val))

json_t *lamina_report_device_json(const lamina_device_report *d)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    SET(o, "index", json_integer(d->info.index));
    for (int i = 0; i < LAMINA_DS_COUNT; i++) {
        const char **f = devstr_field((lamina_device_info *)&d->info, i);
        SET(o, devstr_key[i], *f ? jstr(d->strings[i]) : json_null());
    }
    SET(o, "mem_total", json_integer((json_int_t)d->info.mem_total));
    SET(o, "mem_free", json_integer((json_int_t)d->info.mem_free));
    SET(o, "vendor_id", json_integer(d->info.vendor_id));
    SET(o, "device_id", json_integer(d->info.device_id));
    SET(o, "status", json_string(lamina_report_status_name(d->status)));
    SET(o, "reason", jstr(d->reason));
    SET(o, "label", jstr(d->label));
    json_t *st = json_object();
    if (st != NULL) {
        SET(st, "run", json_boolean(d->selftest_run));
        SET(st, "passed", json_boolean(d->selftest_passed));
        SET(st, "cases", json_integer(d->selftest_cases));
        SET(st, "unsupported", json_integer(d->selftest_unsupported));
        SET(st, "ms", json_real(d->selftest_ms));
        SET(st, "score_gflops", json_real(d->score));
        SET(st, "message", jstr(d->selftest_msg));
        if (d->n_cases > 0) {
            json_t *arr = json_array();
            for (int i = 0; arr != NULL && i < d->n_cases; i++)
                json_array_append_new(arr, lamina_report_case_json(&d->cases[i]));
            SET(st, "case_list", arr);
        }
    }
    SET(o, "selftest", st);
    return o;
}

json_t *lamina_report_case_json(const lamina_case_report *c)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    SET(o, "op", json_integer(c->op));
    SET(o, "type", json_integer(c->type));
    SET(o, "name", jstr(c->name));
    SET(o, "status", json_integer(c->status));
    SET(o, "max_err", json_real(c->max_err));
    SET(o, "tol", json_real(c->tol));
    SET(o, "ms", json_real(c->ms));
    SET(o, "msg", jstr(c->msg));
    return o;
}

json_t *lamina_report_plugin_json(const lamina_plugin_report *p)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    SET(o, "path", jstr(p->path));
    SET(o, "real_path", jstr(p->real_path));
    SET(o, "name", jstr(p->name));
    SET(o, "version", jstr(p->version));
    SET(o, "description", jstr(p->description));
    SET(o, "abi_major", json_integer(p->abi_major));
    SET(o, "abi_minor", json_integer(p->abi_minor));
    SET(o, "desc_size", json_integer(p->desc_size));
    SET(o, "flags", json_integer(p->flags));
    SET(o, "status", json_string(lamina_report_status_name(p->status)));
    SET(o, "reason", jstr(p->reason));
    SET(o, "failure", jstr(p->failure));
    SET(o, "stderr_tail", jstr(p->stderr_tail));
    SET(o, "probe_ms", json_real(p->probe_ms));
    SET(o, "from_cache", json_boolean(p->from_cache));
    SET(o, "selftest_skipped", json_boolean(p->selftest_skipped));
    json_t *comps = json_array();
    for (int i = 0; comps != NULL && i < p->n_components; i++) {
        const lamina_component_report *c = &p->components[i];
        json_t *co = json_object();
        if (co == NULL)
            break;
        SET(co, "name", jstr(c->name));
        SET(co, "found", c->found[0] ? jstr(c->found) : json_null());
        SET(co, "built", c->built[0] ? jstr(c->built) : json_null());
        SET(co, "rule", json_integer(c->rule));
        SET(co, "path", c->path[0] ? jstr(c->path) : json_null());
        json_array_append_new(comps, co);
    }
    SET(o, "components", comps);
    json_t *ct = json_array();
    for (int i = 0; ct != NULL && i < p->n_code_targets; i++)
        json_array_append_new(ct, jstr(p->code_targets[i]));
    SET(o, "code_targets", ct);
    json_t *notes = json_array();
    for (int i = 0; notes != NULL && i < p->n_notes; i++)
        json_array_append_new(notes, jstr(p->notes[i]));
    SET(o, "notes", notes);
    json_t *devs = json_array();
    for (int i = 0; devs != NULL && i < p->n_devices; i++)
        json_array_append_new(devs, lamina_report_device_json(&p->devices[i]));
    SET(o, "devices", devs);
    return o;
}

/* ------------------------------------------------------------------------ */
/* Reading                                                                  */

static int get_str(const json_t *o, const char *key, char *dst, size_t size, int *is_null,
                   char *err, size_t err_size)
{
    json_t *v = json_object_get(o, key);
    if (is_null)
        *is_null = (v == NULL || json_is_null(v));
    if (v == NULL || json_is_null(v)) {
        if (size)
            dst[0] = '\0';
        return 0;
    }
    if (!json_is_string(v))
        return lamina_set_err(err, err_size, LAMINA_EFORMAT, "'%s' is not a string", key);
    lamina_report_str(dst, size, json_string_value(v));
    return 0;
}

static int get_int(const json_t *o, const char *key, int64_t lo, int64_t hi, int64_t *out,
                   char *err, size_t err_size)
{
    json_t *v = json_object_get(o, key);
    if (v == NULL || json_is_null(v))
        return 0;
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return 0;
    }
    if (!json_is_integer(v))
        return lamina_set_err(err, err_size, LAMINA_EFORMAT, "'%s' is not an integer", key);
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return lamina_set_err(err, err_size, LAMINA_EFORMAT, "'%s' out of range", key);
    *out = x;
    return 0;
}

static int get_num(const json_t *o, const char *key, double *out, char *err, size_t err_size)
{
    json_t *v = json_object_get(o, key);
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_number(v))
        return lamina_set_err(err, err_size, LAMINA_EFORMAT, "'%s' is not a number", key);
    *out = json_number_value(v);
    return 0;
}

#define GI(o, k, lo, hi, dst) do { int64_t t_ = (int64_t)(dst);                 \
        if ((rc = get_int((o), (k), (lo), (hi), &t_, err, err_size)) < 0) return rc; \
        (dst) = t_; } while (0)

int lamina_report_case_parse(const json_t *j, lamina_case_report *c, char *err, size_t err_size)
{
    int rc;
    memset(c, 0, sizeof(*c));
    if (!json_is_object(j))
        return lamina_set_err(err, err_size, LAMINA_EFORMAT, "case is not an object");
    GI(j, "op", 0, UINT32_MAX, c->op);
    GI(j, "type", 0, UINT32_MAX, c->type);
    GI(j, "status", 0, 3, c->status);
    if ((rc = get_str(j, "name", c->name, sizeof(c->name), NULL, err, err_size)) < 0) return rc;
    if ((rc = get_str(j, "msg", c->msg, sizeof(c->msg), NULL, err, err_size)) < 0) return rc;
    if ((rc = get_num(j, "max_err", &c->max_err, err, err_size)) < 0) return rc;
    if ((rc = get_num(j, "tol", &c->tol, err, err_size)) < 0) return rc;
    if ((rc = get_num(j, "ms", &c->ms, err, err_size)) < 0) return rc;
    return 0;
}

int lamina_report_device_parse(const json_t *j, lamina_device_report *d, char *err, size_t err_size)
{
    int rc;
    if (!json_is_object(j))
        return lamina_set_err(err, err_size, LAMINA_EFORMAT, "device is not an object");
    GI(j, "index", 0, UINT32_MAX, d->info.index);
    for (int i = 0; i < LAMINA_DS_COUNT; i++) {
        char buf[256];
        int is_null;
        if ((rc = get_str(j, devstr_key[i], buf, sizeof(buf), &is_null, err, err_size)) < 0)
            return rc;
        lamina_report_device_set(d, i, is_null ? NULL : buf);
    }
    GI(j, "mem_total", 0, INT64_MAX, d->info.mem_total);
    GI(j, "mem_free", 0, INT64_MAX, d->info.mem_free);
    GI(j, "vendor_id", 0, UINT32_MAX, d->info.vendor_id);
    GI(j, "device_id", 0, UINT32_MAX, d->info.device_id);
    char status[32];
    if ((rc = get_str(j, "status", status, sizeof(status), NULL, err, err_size)) < 0) return rc;
    d->status = status_from_name(status);
    if ((rc = get_str(j, "reason", d->reason, sizeof(d->reason), NULL, err, err_size)) < 0) return rc;
    if ((rc = get_str(j, "label", d->label, sizeof(d->label), NULL, err, err_size)) < 0) return rc;
    json_t *st = json_object_get(j, "selftest");
    if (st != NULL && json_is_object(st)) {
        GI(st, "run", 0, 1, d->selftest_run);
        GI(st, "passed", 0, 1, d->selftest_passed);
        GI(st, "cases", 0, INT32_MAX, d->selftest_cases);
        GI(st, "unsupported", 0, INT32_MAX, d->selftest_unsupported);
        if ((rc = get_num(st, "ms", &d->selftest_ms, err, err_size)) < 0) return rc;
        if ((rc = get_num(st, "score_gflops", &d->score, err, err_size)) < 0) return rc;
        if ((rc = get_str(st, "message", d->selftest_msg, sizeof(d->selftest_msg), NULL,
                          err, err_size)) < 0)
            return rc;
        json_t *cl = json_object_get(st, "case_list");
        if (cl != NULL && json_is_array(cl) && json_array_size(cl) > 0) {
            size_t n = json_array_size(cl);
            if (n > 100000)
                return lamina_set_err(err, err_size, LAMINA_EFORMAT, "too many cases");
            free(d->cases);
            d->n_cases = 0;
            d->cases = calloc(n, sizeof(*d->cases));
            if (d->cases == NULL)
                return lamina_set_err(err, err_size, LAMINA_ENOMEM, "out of memory");
            for (size_t i = 0; i < n; i++) {
                if ((rc = lamina_report_case_parse(json_array_get(cl, i), &d->cases[i],
                                                   err, err_size)) < 0)
                    return rc;
                d->n_cases = (int)i + 1;
            }
        }
    }
    return 0;
}

int lamina_report_plugin_parse(const json_t *j, lamina_plugin_report *p, char *err, size_t err_size)
{
    int rc;
    if (!json_is_object(j))
        return lamina_set_err(err, err_size, LAMINA_EFORMAT, "plugin report is not an object");
    if ((rc = get_str(j, "path", p->path, sizeof(p->path), NULL, err, err_size)) < 0) return rc;
    if ((rc = get_str(j, "real_path", p->real_path, sizeof(p->real_path), NULL, err, err_size)) < 0)
        return rc;
    if ((rc = get_str(j, "name", p->name, sizeof(p->name), NULL, err, err_size)) < 0) return rc;
    if ((rc = get_str(j, "version", p->version, sizeof(p->version), NULL, err, err_size)) < 0)
        return rc;
    if ((rc = get_str(j, "description", p->description, sizeof(p->description), NULL,
                      err, err_size)) < 0)
        return rc;
    GI(j, "abi_major", 0, UINT32_MAX, p->abi_major);
    GI(j, "abi_minor", 0, UINT32_MAX, p->abi_minor);
    GI(j, "desc_size", 0, UINT32_MAX, p->desc_size);
    GI(j, "flags", 0, UINT32_MAX, p->flags);
    char status[32];
    if ((rc = get_str(j, "status", status, sizeof(status), NULL, err, err_size)) < 0) return rc;
    p->status = status_from_name(status);
    if ((rc = get_str(j, "reason", p->reason, sizeof(p->reason), NULL, err, err_size)) < 0)
        return rc;
    if ((rc = get_str(j, "failure", p->failure, sizeof(p->failure), NULL, err, err_size)) < 0)
        return rc;
    if ((rc = get_str(j, "stderr_tail", p->stderr_tail, sizeof(p->stderr_tail), NULL,
                      err, err_size)) < 0)
        return rc;
    if ((rc = get_num(j, "probe_ms", &p->probe_ms, err, err_size)) < 0) return rc;
    GI(j, "from_cache", 0, 1, p->from_cache);
    GI(j, "selftest_skipped", 0, 1, p->selftest_skipped);

    json_t *a;
    size_t i;
    json_t *v;
    a = json_object_get(j, "components");
    if (a != NULL && json_is_array(a)) {
        json_array_foreach(a, i, v) {
            if (p->n_components >= (int)(sizeof(p->components) / sizeof(p->components[0])))
                break;
            lamina_component_report *c = &p->components[p->n_components];
            memset(c, 0, sizeof(*c));
            if (!json_is_object(v))
                return lamina_set_err(err, err_size, LAMINA_EFORMAT, "component is not an object");
            if ((rc = get_str(v, "name", c->name, sizeof(c->name), NULL, err, err_size)) < 0 ||
                (rc = get_str(v, "found", c->found, sizeof(c->found), NULL, err, err_size)) < 0 ||
                (rc = get_str(v, "built", c->built, sizeof(c->built), NULL, err, err_size)) < 0 ||
                (rc = get_str(v, "path", c->path, sizeof(c->path), NULL, err, err_size)) < 0)
                return rc;
            GI(v, "rule", 0, 100, c->rule);
            p->n_components++;
        }
    }
    a = json_object_get(j, "code_targets");
    if (a != NULL && json_is_array(a)) {
        json_array_foreach(a, i, v) {
            if (p->n_code_targets >= 32 || !json_is_string(v))
                break;
            lamina_report_str(p->code_targets[p->n_code_targets++], sizeof(p->code_targets[0]),
                              json_string_value(v));
        }
    }
    a = json_object_get(j, "notes");
    if (a != NULL && json_is_array(a)) {
        json_array_foreach(a, i, v) {
            if (p->n_notes >= 8 || !json_is_string(v))
                break;
            lamina_report_str(p->notes[p->n_notes++], sizeof(p->notes[0]), json_string_value(v));
        }
    }
    a = json_object_get(j, "devices");
    if (a != NULL && json_is_array(a)) {
        json_array_foreach(a, i, v) {
            lamina_device_report *d = lamina_report_add_device(p);
            if (d == NULL)
                return lamina_set_err(err, err_size, LAMINA_ENOMEM, "out of memory");
            if ((rc = lamina_report_device_parse(v, d, err, err_size)) < 0)
                return rc;
        }
    }
    return 0;
}
