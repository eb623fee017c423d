/*
 * grammar.h - structured output: a JSON schema (or "any JSON value")
 * compiled into a byte-level pushdown constraint that says, for the text
 * generated so far, which tokens may come next and whether the output may
 * end.
 *
 *   lamina_grammar  the compiled schema: immutable, reference counted,
 *                   shared by every sequence that uses it.
 *   lamina_gvocab   each token's bytes (lamina_tokenizer_piece), sorted
 *                   into a trie order once per tokenizer.
 *   lamina_gmatch   one sequence's state: a small set of parse stacks
 *                   (one per live anyOf/oneOf alternative).
 *
 * Output rules (documented in lamina-serve(1)):
 *   - properties come in schema order; required ones must appear, optional
 *     ones may be skipped; additional properties (when allowed) come after
 *     the declared ones and never repeat a declared name;
 *   - whitespace (as llama.cpp's JSON grammar): one space, or a newline and
 *     at most 20 spaces or tabs, before a value, a key, ':', ',' or a
 *     closing bracket; none after the value ends;
 *   - numbers: at most 16 integer digits, 16 fraction digits, 2 exponent
 *     digits; strings: valid UTF-8, no control characters, no \u escapes
 *     of surrogates; maxLength bounds characters (an escape is one);
 *   - numeric bounds (minimum, maximum, exclusiveMinimum, exclusiveMaximum,
 *     numeric or draft 4's boolean form) and multipleOf on integer and
 *     number: a digit is taken only if the number can still end within the
 *     bounds and on a multiple, compared exactly (values as integers of
 *     10^-16; a decimal multipleOf such as 0.01 as written, at most 16
 *     decimals, below 10^17; on integers 0.4 means 2); no exponent under
 *     bounds or multipleOf; an
 *     exclusive bound of a number excludes the nearest double too, so the
 *     parsed double is strictly inside; bounds clamp at 16 integer digits;
 *   - pattern and the formats date, time, date-time, uuid, email, ipv4
 *     become a DFA over the decoded string bytes (minLength/maxLength
 *     folded in, dead states pruned; a format with a pattern: the product
 *     of both, at most 20000 states); the string then has no \u escapes,
 *     only the escapes \" \\ \/ \b \f \n \r \t, each one byte to the
 *     DFA.  Other formats are annotations (any string), as JSON Schema
 *     2020-12 says by default.  Formats: dates on the calendar (29 February
 *     in leap years only, years 0001-9999), times HH:MM:SS with at most 9
 *     fraction digits and Z or an offset (upper-case T and Z), uuid
 *     8-4-4-4-12 hex;
 *   - patterns always match whole (as llama.cpp), anchored or not, so the
 *     output also matches an unanchored search.  The subset: UTF-8
 *     literals, escaped punctuation, \n \t \r \f \v \0 \xHH \uHHHH
 *     \UHHHHHHHH, \d \w \s (ASCII sets) and \D \W \S (their ASCII
 *     complements, a subset of what Python's match), [...] and [^...]
 *     (negated: any character not listed, ASCII only if the class holds a
 *     shorthand), '.' (any character but \n), (...) (?:...) (?P<n>...),
 *     |, ? * + {n} {n,m} {n,} {,m} (counts up to 1000), ^ at the start and
 *     $ at the end of the pattern or of a top-level alternative.  Anything
 *     else is refused naming the construct and its byte position; automata
 *     over 20000 NFA or 4000 DFA states are refused;
 *   - enum/const values next to these keywords are kept only if they meet
 *     them (whole-pattern match, lengths, bounds);
 *   - nesting is at most LAMINA_GRAMMAR_MAX_DEPTH containers and scalars
 *     deep; a schema whose smallest instance is deeper is refused.
 * Every state the matcher can reach can still be completed, so a model
 * sampling only allowed tokens always ends with a complete value (unless
 * a token limit cuts it off).  When the value is complete and cannot go on,
 * only end-of-generation tokens are allowed (lamina_gmatch_done).
 *
 * Supported keywords: type (incl. lists), properties, required,
 * additionalProperties, items (schema, false, or an array as tuple),
 * prefixItems, enum, const, anyOf, oneOf (as anyOf), allOf with one
 * subschema, nullable, $ref (#, #/$defs/..., #/definitions/...),
 * minItems, maxItems, minLength, maxLength, minimum, maximum,
 * exclusiveMinimum, exclusiveMaximum, multipleOf, pattern, format (see above);
 * description, title, default, examples, $schema, $id, $comment,
 * deprecated, readOnly, writeOnly, discriminator, $defs and definitions
 * are ignored.  Anything else (patternProperties, not, if, ...)
 * is refused with its keyword and JSON path.
 * Internal to liblamina.
 */
#ifndef LAMINA_GRAMMAR_H
#define LAMINA_GRAMMAR_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "tokenizer.h"

#define LAMINA_GRAMMAR_MAX_DEPTH 32

typedef struct lamina_grammar lamina_grammar;
typedef struct lamina_gvocab lamina_gvocab;
typedef struct lamina_gmatch lamina_gmatch;

/* Compile a schema; schema NULL: any JSON value.  *out has one reference.
 * LAMINA_EINVAL with a message such as "keyword 'patternProperties' at
 * $.properties.x is not supported"; LAMINA_ENOMEM. */
int  lamina_grammar_compile(json_t *schema, lamina_grammar **out, char *err, size_t err_size);
/* Same from JSON text. */
int  lamina_grammar_compile_text(const char *text, size_t len, lamina_grammar **out,
                                 char *err, size_t err_size);
/* A GBNF grammar (gbnf.h) instead of a schema: the same matcher, over
 * rules instead of JSON values; no whitespace is added between parts.
 * At most LAMINA_GRAMMAR_MAX_DEPTH frames deep (each unfinished rule
 * holds one, the last part of a sequence takes its rule's frame), at most
 * 8 live parses (an ambiguous grammar keeps the first 8), at most 64 rules
 * entered before a character is read.  LAMINA_EINVAL with the message
 * ("line 3, column 9: rule 'item' is not defined"); LAMINA_ENOMEM. */
int  lamina_grammar_compile_gbnf(const char *text, size_t len, lamina_grammar **out,
                                 char *err, size_t err_size);
lamina_grammar *lamina_grammar_ref(lamina_grammar *g);
void lamina_grammar_unref(lamina_grammar *g);   /* NULL is a no-op */

/* Token bytes of a tokenizer, for n_vocab logits (ids at or above the
 * tokenizer's vocabulary are never allowed).  LAMINA_ENOMEM. */
int  lamina_gvocab_create(const lamina_tokenizer *tok, int32_t n_vocab, lamina_gvocab **out,
                          char *err, size_t err_size);
void lamina_gvocab_free(lamina_gvocab *v);

/* A matcher at the start of the output.  v may be NULL (byte feeding
 * only: lamina_gmatch_feed).  The grammar and vocabulary must outlive it. */
int  lamina_gmatch_create(const lamina_grammar *g, const lamina_gvocab *v, lamina_gmatch **out,
                          char *err, size_t err_size);
void lamina_gmatch_free(lamina_gmatch *m);

/* Set logits[i] = -inf for every token i that may not come next. */
void lamina_gmatch_mask(lamina_gmatch *m, float *logits);
/* Advance by a token (its piece).  LAMINA_EINVAL when not allowed (the
 * state is then unchanged). */
int  lamina_gmatch_accept(lamina_gmatch *m, lamina_token t);
/* Advance by bytes.  Returns 0, or LAMINA_EINVAL when they do not keep the
 * output a valid prefix (the state is then unchanged). */
int  lamina_gmatch_feed(lamina_gmatch *m, const char *bytes, size_t n);
/* The output may end here (the value is complete). */
int  lamina_gmatch_can_end(const lamina_gmatch *m);
/* The output must end here (complete, and no byte may follow). */
int  lamina_gmatch_done(const lamina_gmatch *m);

#endif
