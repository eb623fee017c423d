/* log.c - see log.h. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>

#include "log.h"

void lamina_log(const lamina_logger *lg, int level, const char *fmt, ...)
{
    if (lg == NULL || lg->fn == NULL)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    lg->fn(lg->ctx, level, line);
}

int lamina_set_err(char *err, size_t err_size, int code, const char *fmt, ...)
{
    if (err != NULL && err_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_size, fmt, ap);
        va_end(ap);
    }
    return code;
}
