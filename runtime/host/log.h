/*
 * log.h - warnings from the core to whoever opened the runtime.
 *
 * The library never prints; it formats one line and hands it to the
 * caller's callback (lamina_runtime_options.log).  Internal to liblamina.
 */
#ifndef LAMINA_LOG_H
#define LAMINA_LOG_H

#include <stddef.h>

typedef void (*lamina_log_fn)(void *ctx, int level, const char *msg);

typedef struct lamina_logger {
    lamina_log_fn fn;           /* NULL: lines are dropped */
    void *ctx;
} lamina_logger;

/* Format one line (printf style) and pass it to lg->fn when set. */
void lamina_log(const lamina_logger *lg, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* snprintf into (err, err_size) when err is not NULL; returns `code`. */
int lamina_set_err(char *err, size_t err_size, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
