/*
 * report.h - plugin and device reports (lamina.h) to and from JSON.
 *
 * One JSON shape serves three places: the records the probe helper sends
 * to the parent, the probe cache, and `lamina backends --json`.  Readers
 * are lenient about missing keys (they keep the zeroed default) and strict
 * about types.  Internal to liblamina.
 */
#ifndef LAMINA_REPORT_H
#define LAMINA_REPORT_H

#include <jansson.h>

#include "lamina/lamina.h"

/* Indices into lamina_device_report.strings for the info's strings. */
enum lamina_devstr {
    LAMINA_DS_NAME = 0, LAMINA_DS_TYPE, LAMINA_DS_DRIVER_NAME, LAMINA_DS_DRIVER_VERSION,
    LAMINA_DS_RUNTIME_VERSION, LAMINA_DS_API_VERSION, LAMINA_DS_ARCH, LAMINA_DS_FEATURES,
    LAMINA_DS_UNUSABLE, LAMINA_DS_COUNT
};

/* Copy `s` (NULL allowed: the field becomes NULL) into the report's backing
 * store and point the matching info field at it.  Invalid UTF-8 bytes are
 * replaced with '?'; overlong strings are truncated. */
void lamina_report_device_set(lamina_device_report *d, int which, const char *s);

/* Copy a plugin's lamina_device_info (read through LAMINA_HAS, so an older,
 * shorter struct is fine) into `d`, which is reset first. */
void lamina_report_device_from_info(lamina_device_report *d, const lamina_device_info *info);

/* Append a zeroed device to p->devices (realloc).  Returns it, or NULL on
 * out of memory.  Pointers to earlier devices stay valid only until the
 * next call; their info strings are fixed up on the move. */
lamina_device_report *lamina_report_add_device(lamina_plugin_report *p);

/* Free what a report owns (devices, cases) and zero those fields. */
void lamina_report_plugin_clear(lamina_plugin_report *p);
void lamina_report_device_clear(lamina_device_report *d);

/* Deep copy `src` into `dst` (dst's old contents are not freed).  0 or
 * LAMINA_ENOMEM. */
int lamina_report_plugin_copy(lamina_plugin_report *dst, const lamina_plugin_report *src);

/* Copy a string into a fixed buffer, making it valid UTF-8. */
void lamina_report_str(char *dst, size_t size, const char *src);

/* JSON.  The returned objects are new references (json_decref).
 * NULL on out of memory. */
json_t *lamina_report_device_json(const lamina_device_report *d);
json_t *lamina_report_case_json(const lamina_case_report *c);
json_t *lamina_report_plugin_json(const lamina_plugin_report *p);

int lamina_report_device_parse(const json_t *j, lamina_device_report *d, char *err, size_t err_size);
int lamina_report_case_parse(const json_t *j, lamina_case_report *c, char *err, size_t err_size);
/* Fills `p` (which must be zeroed or cleared); allocates its devices. */
int lamina_report_plugin_parse(const json_t *j, lamina_plugin_report *p, char *err, size_t err_size);

const char *lamina_report_status_name(int status);

#endif
