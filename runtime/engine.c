/* engine.c - to be written */
#include "lamina/lamina.h"
const char *lamina_version(void);
const char *lamina_version(void) { return LAMINA_VERSION_STRING; }
