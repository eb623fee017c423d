/*
 * gbnf.h - the GBNF grammar language (as llama.cpp documents it in its
 * grammars/README.md) parsed into a small symbol graph, which grammar.c
 * compiles into the same matcher as a JSON schema
 * (lamina_grammar_compile_gbnf).
 *
 * The language: rules `name ::= body` (names of letters, digits, '-' and
 * '_'; a rule may be given again, its alternatives are added); `root` is
 * where the output starts; a body is alternatives (`|`) of sequences of
 * string literals ("..." with the escapes \n \r \t \f \v \0 \\ \" \[ \]
 * \xHH \uHHHH \UHHHHHHHH and any other escaped punctuation), character
 * classes ([a-z0-9_], negated [^...], the same escapes), `.` (any
 * character), rule references and groups `( ... )`, each optionally
 * followed by `*`, `+`, `?`, `{m}`, `{m,}` or `{m,n}` (counts up to
 * LAMINA_GBNF_MAX_REPEAT).  `#` starts a comment to the end of the line.
 * Newlines may stand anywhere between the parts of a body: a rule ends
 * where the next `name ::=` begins.  Characters are Unicode code points;
 * the matcher works on their UTF-8 bytes.
 *
 * Refused, with the line and column: syntax errors, unterminated strings
 * and classes, bad escapes and repetition bounds, invalid UTF-8, a rule
 * used but never defined, no `root` rule, a rule that can never finish
 * (every way through it recurses forever), and left recursion (a rule
 * that reaches itself before reading a character, directly or through
 * parts that can match empty text, e.g. `(x?)*`): the matcher is a
 * top-down one and would loop.
 * Internal to liblamina.
 */
#ifndef LAMINA_GBNF_H
#define LAMINA_GBNF_H

#include <stddef.h>
#include <stdint.h>

#define LAMINA_GBNF_MAX_REPEAT 1000     /* largest count in {m,n} */
#define LAMINA_GBNF_MAX_SYMS 4000       /* symbols of one grammar */
#define LAMINA_GBNF_MAX_RANGES 512      /* code point ranges of one class */

enum {
    LAMINA_GS_ALT,      /* one of kids[] */
    LAMINA_GS_SEQ,      /* kids[] in order (none: the empty text) */
    LAMINA_GS_CHARS,    /* one code point in ranges[] (lo, hi pairs, sorted, disjoint) */
    LAMINA_GS_BYTES     /* the literal bytes[] (UTF-8, never empty) */
};

typedef struct lamina_gsym {
    int kind;
    int32_t *kids;
    int32_t n_kids;
    uint32_t *ranges;   /* 2 * n_ranges */
    int32_t n_ranges;
    char *bytes;
    size_t n_bytes;
} lamina_gsym;

typedef struct lamina_gbnf {
    lamina_gsym *syms;
    int32_t n_syms;
    int32_t root;       /* an ALT */
} lamina_gbnf;

/* Parse GBNF text.  *out is the caller's, freed with lamina_gbnf_free.
 * LAMINA_EINVAL with a message such as "line 3, column 9: rule 'item' is
 * not defined"; LAMINA_ENOMEM. */
int  lamina_gbnf_parse(const char *text, size_t len, lamina_gbnf **out, char *err, size_t err_size);
void lamina_gbnf_free(lamina_gbnf *g);     /* NULL is a no-op */

#endif
