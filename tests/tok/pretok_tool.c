/* pretok_tool.c - prints the BPE pre-tokenizer's split for test_pretok_regex.py.
 * Input lines: "<kind> <hex bytes>"; output lines: the end offsets, space-separated. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"

int main(void)
{
    static char line[1 << 16];
    static char text[1 << 15];
    static size_t b[1 << 15];
    while (fgets(line, sizeof(line), stdin)) {
        int kind = atoi(line);
        char *h = strchr(line, ' ');
        size_t n = 0;
        if (h != NULL) {
            h++;
            while (h[0] && h[1] && h[0] != '\n' && n < sizeof(text)) {
                unsigned v;
                if (sscanf(h, "%2x", &v) != 1)
                    break;
                text[n++] = (char)v;
                h += 2;
            }
        }
        size_t nb = 0;
        if (lamina_tokenizer_pretok_split(kind, text, n, b, sizeof(b) / sizeof(b[0]), &nb) != 0)
            return 1;
        for (size_t i = 0; i < nb; i++)
            printf(i ? " %zu" : "%zu", b[i]);
        printf("\n");
    }
    return 0;
}
