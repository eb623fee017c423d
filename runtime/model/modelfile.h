/*
 * modelfile.h - Ollama's Modelfile: the instructions `lamina create` reads.
 *
 *   # a comment
 *   FROM ./model.gguf            (a GGUF path, or a model name of the stores)
 *   PARAMETER stop "<end>"       (repeatable; the value may be quoted)
 *   TEMPLATE """..."""           (""" strings may span lines)
 *   SYSTEM   "..."
 *   LICENSE  """..."""           (repeatable)
 *
 * Instructions are case-insensitive.  ADAPTER and MESSAGE are refused
 * (lamina does not apply LoRA adapters or prepend stored messages), as is
 * any other instruction; every error is one line "WHERE:LINE: ...".
 */
#ifndef LAMINA_MODELFILE_H
#define LAMINA_MODELFILE_H

#include <stddef.h>

typedef struct lamina_modelfile_param {
    char *key;        /* as written (lowercase letters, digits, '_') */
    char *value;      /* quotes removed */
    int   line;
} lamina_modelfile_param;

typedef struct lamina_modelfile {
    char *from;                      /* never NULL after a successful parse */
    int   from_line;
    char *template_text;             /* NULL when not given */
    char *system;                    /* NULL when not given */
    char **licenses;
    int   n_licenses;
    lamina_modelfile_param *params;
    int   n_params;
} lamina_modelfile;

/* Parse len bytes of text (where names it in errors, e.g. the file's
 * path).  On success mf holds malloc'd strings: lamina_modelfile_free
 * frees them.  On failure mf is left empty (nothing to free). */
int lamina_modelfile_parse(const char *text, size_t len, const char *where, lamina_modelfile *mf,
                           char *err, size_t err_size);
void lamina_modelfile_free(lamina_modelfile *mf);

#endif
