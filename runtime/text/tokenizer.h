/*
 * tokenizer.h - text <-> token ids for the model families lamina runs.
 *
 * Three algorithms, chosen by the GGUF key tokenizer.ggml.model:
 *   "llama"  - SentencePiece-style: spaces escaped as U+2581, optional space
 *              prefix, score-driven bigram merges, byte fallback <0xNN>.
 *   "gpt2"   - BPE: the text split into words by a pre-tokenizer chosen by
 *              tokenizer.ggml.pre (see enum lamina_pretok), bytes mapped to
 *              printable code points, merges by rank.
 *   "gemma4" - BPE on raw UTF-8: spaces escaped as U+2581, words are runs
 *              of newlines / of other text, byte fallback <0xNN>.
 *   "bert"   - WordPiece: lowercased, accents stripped, split at spaces and
 *              punctuation, each word greedily into the longest tokens.
 *   "t5"     - Unigram (SentencePiece's UGM, T5 and XLM-RoBERTa): the text
 *              normalized by the file's precompiled character map, spaces
 *              escaped as U+2581, then the highest-scoring segmentation
 *              (Viterbi over the token scores, unknown characters as unk).
 * All first split out special tokens from the raw text (control and
 * unknown tokens only when parsing specials is on; user-defined tokens
 * always), longest first, as llama.cpp does, so that ids match it exactly.
 *
 * A tokenizer is immutable after creation: every function taking a
 * const lamina_tokenizer * may be called from several threads at once.
 * Internal to liblamina.
 */
#ifndef LAMINA_TOKENIZER_H
#define LAMINA_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "gguf.h"

typedef int32_t lamina_token;
#define LAMINA_TOKEN_NONE ((lamina_token)-1)

typedef struct lamina_tokenizer lamina_tokenizer;

/* Token types, numbered as tokenizer.ggml.token_type in GGUF. */
enum lamina_token_type {
    LAMINA_TOKTYPE_NORMAL = 1,
    LAMINA_TOKTYPE_UNKNOWN = 2,
    LAMINA_TOKTYPE_CONTROL = 3,
    LAMINA_TOKTYPE_USER_DEFINED = 4,
    LAMINA_TOKTYPE_UNUSED = 5,
    LAMINA_TOKTYPE_BYTE = 6
};

enum lamina_tokenizer_kind {
    LAMINA_TOKENIZER_SPM = 1,   /* tokenizer.ggml.model = "llama" */
    LAMINA_TOKENIZER_BPE = 2,   /* tokenizer.ggml.model = "gpt2", "gemma4" */
    LAMINA_TOKENIZER_WPM = 3,   /* tokenizer.ggml.model = "bert" (WordPiece) */
    LAMINA_TOKENIZER_UGM = 4    /* tokenizer.ggml.model = "t5" (unigram) */
};

/* BPE pre-tokenizers: how text is split into words before merging, and
 * how the words are merged.  Each runs one or more passes, every pass
 * splitting the pieces of the one before (written by hand after the
 * regular expressions named here; \p{..} are Unicode categories). */
enum lamina_pretok {
    LAMINA_PRETOK_NONE = 0,     /* SPM, WPM, UGM: none */
    LAMINA_PRETOK_GPT2 = 1,     /* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
    LAMINA_PRETOK_LLAMA3 = 2,   /* (?i:'s|..)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+;
                                 * a word that is a token is taken whole */
    LAMINA_PRETOK_QWEN2 = 3,    /* as LLAMA3 but single digits: \p{N}; always merged */
    LAMINA_PRETOK_QWEN35 = 4,   /* as QWEN2 with marks: [^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+ and
                                 * ' ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*' */
    LAMINA_PRETOK_DBRX = 5,     /* LLAMA3's split, always merged */
    LAMINA_PRETOK_DEFAULT = 6,  /* [\p{P}$+<=>^~|]+, then GPT2, then \p{N}+, then [0-9]{3} */
    LAMINA_PRETOK_FALCON = 7,   /* [\p{P}$+<=>^~|`]+, then GPT2, then [0-9]{3} */
    LAMINA_PRETOK_STARCODER = 8,/* \p{N} (each digit alone), then GPT2 */
    LAMINA_PRETOK_DEEPSEEK_LLM = 9,   /* [\r\n], \s?<letters>+, \s?<punctuation>+, \s+$,
                                       * <CJK>+, \p{N}+ (explicit code point lists) */
    LAMINA_PRETOK_DEEPSEEK_CODER = 10,/* [\r\n], \s?\p{L}+, \s?\p{P}+, <CJK>+, \p{N} */
    LAMINA_PRETOK_GEMMA4 = 11,  /* [^\n]+|[\n]+ on raw UTF-8 with spaces as U+2581 (no byte
                                 * mapping; byte fallback <0xNN>); a newline run that is a
                                 * token is taken whole */
    LAMINA_PRETOK_GPT4O = 12    /* o200k's expression as llama.cpp runs it: ASCII case only,
                                 * upper [\p{L}--a-z], lower [\p{L}--A-Z] (other letters are
                                 * both, marks are not letters):
                                 * [^\r\n\p{L}\p{N}]?upper*lower+(?i:'s|..)?|
                                 * [^\r\n\p{L}\p{N}]?upper+lower*(?i:'s|..)?|\p{N}{1,3}|
                                 * ' ?[^\s\p{L}\p{N}]+[\r\n/]*'|\s*[\r\n]+|\s+(?!\S)|\s+ */
};

/*
 * Description of a vocabulary, for building a tokenizer without a GGUF file
 * (tests, converters).  Everything is borrowed: lamina_tokenizer_create
 * copies what it keeps.  Optional pointers may be NULL.
 */
typedef struct lamina_tokenizer_spec {
    int kind;                       /* enum lamina_tokenizer_kind */
    int pretok;                     /* enum lamina_pretok (BPE only, not NONE) */
    int32_t n_vocab;                /* > 0 */
    const char *const *tokens;      /* [n_vocab] token texts */
    const size_t *token_lens;       /* [n_vocab] byte lengths; NULL: strlen */
    const float *scores;            /* [n_vocab]; NULL: all 0 (SPM merge priority) */
    const int32_t *types;           /* [n_vocab] enum lamina_token_type; NULL: all NORMAL */
    int32_t n_merges;               /* BPE: number of merges */
    const char *const *merges;      /* [n_merges] "left right", rank = index */
    lamina_token bos, eos, eot, eom, unk, pad;  /* LAMINA_TOKEN_NONE when absent */
    lamina_token sep;               /* WPM: ends the text with ADD_SPECIAL ([SEP]); NONE: absent */
    int add_bos, add_eos;           /* added when tokenizing with ADD_SPECIAL (SPM, BPE;
                                     * WPM always adds bos and sep) */
    int add_space_prefix;           /* SPM: prefix ' ' to raw text after a special/at start;
                                     * UGM: before the first word of each raw fragment */
    int wpm_keep_case;              /* WPM: 0 lowercases (BERT's default) */
    int wpm_keep_accents;           /* WPM: 0 strips accents (BERT's default) */
    const char *arch;               /* general.architecture, or NULL */
    const char *chat_template;      /* tokenizer.chat_template, or NULL */
    /* UGM only */
    const uint8_t *charsmap;        /* tokenizer.ggml.precompiled_charsmap: a little-endian
                                     * uint32 trie size, the double-array trie's 32-bit
                                     * units, then NUL-terminated replacement strings;
                                     * NULL: no normalization */
    size_t charsmap_len;            /* its bytes */
    int remove_extra_ws;            /* tokenizer.ggml.remove_extra_whitespaces: runs of
                                     * spaces become one, leading and trailing ones go */
} lamina_tokenizer_spec;

/* Build from a spec.  *out owned by the caller (lamina_tokenizer_free).
 * LAMINA_EINVAL for an inconsistent spec (message says which field; for a
 * malformed UGM charsmap, what is wrong and where). */
int lamina_tokenizer_create(const lamina_tokenizer_spec *spec, lamina_tokenizer **out,
                            char *err, size_t err_size);

/* Build from the tokenizer.* keys of an open GGUF file.  Nothing is
 * borrowed from g: the GGUF may be closed afterwards.  *out owned by the
 * caller.  LAMINA_EFORMAT when a key is missing or malformed,
 * LAMINA_ENOTSUP for an unknown tokenizer model or pre-tokenizer (the
 * message names it and lists the known ones). */
int lamina_tokenizer_load(const lamina_gguf *g, lamina_tokenizer **out, char *err, size_t err_size);

void lamina_tokenizer_free(lamina_tokenizer *t);

/* ---- encoding ---- */

/* Add BOS (and EOS) as the model asks (tokenizer.ggml.add_bos_token ...). */
#define LAMINA_TOKENIZE_ADD_SPECIAL   1u
/* Recognise control tokens written in the text, e.g. "<start_of_turn>".
 * Without it they are tokenized as ordinary text.  (User-defined tokens
 * such as Gemma's "\n\n" are always recognised.) */
#define LAMINA_TOKENIZE_PARSE_SPECIAL 2u

/* Tokenize len bytes of UTF-8 text (need not be NUL-terminated nor valid
 * UTF-8: invalid bytes go through byte fallback).  *out is malloc'd and
 * owned by the caller (free()); *n_out its length (may be 0, then *out may
 * be NULL).  LAMINA_ENOMEM. */
int lamina_tokenizer_encode(const lamina_tokenizer *t, const char *text, size_t len,
                            unsigned flags, lamina_token **out, size_t *n_out,
                            char *err, size_t err_size);

/* A pair of texts (a reranker's query and document) framed as llama.cpp
 * frames them for a model without a rerank template (llama-server's
 * format_prompt_rerank): BOS when the file adds it, text a, then EOS when
 * the file adds EOS (tokenizer.ggml.add_eos_token; SEP stands in when it
 * has no EOS) and SEP when it adds SEP (tokenizer.ggml.add_sep_token;
 * WordPiece by default), text b, EOS again.  The texts are tokenized
 * without special-token parsing.  *out malloc'd, owned by the caller;
 * *n_first (may be NULL): the tokens before text b.  LAMINA_ENOMEM. */
int lamina_tokenizer_encode_pair(const lamina_tokenizer *t, const char *a, size_t alen, const char *b,
                                 size_t blen, lamina_token **out, size_t *n_out, size_t *n_first,
                                 char *err, size_t err_size);

/* ---- decoding ---- */

/* The bytes one token contributes to the output text: '▁' turned back into
 * ' ' (SPM), byte tokens into their byte, byte-level BPE decoded.  Control
 * and unknown tokens give "" unless render_special, then their text.
 * The bytes may be a partial UTF-8 sequence (byte tokens): concatenate
 * pieces, or pass them through lamina_utf8_stream for streaming.
 * Returns a pointer into t (valid until lamina_tokenizer_free, not
 * NUL-terminated) and its length in *len; "" for an out-of-range id. */
const char *lamina_tokenizer_piece(const lamina_tokenizer *t, lamina_token id,
                                   int render_special, size_t *len);

/* Decode a whole sequence into a malloc'd NUL-terminated string (caller
 * frees).  flags: LAMINA_DECODE_*.  LAMINA_ENOMEM. */
#define LAMINA_DECODE_RENDER_SPECIAL 1u   /* control tokens as their text */
#define LAMINA_DECODE_SKIP_BOS       2u   /* drop a leading BOS (and the SPM space prefix after it) */
int lamina_tokenizer_decode(const lamina_tokenizer *t, const lamina_token *ids, size_t n,
                            unsigned flags, char **out, size_t *out_len,
                            char *err, size_t err_size);

/* ---- queries ---- */
int32_t      lamina_tokenizer_n_vocab(const lamina_tokenizer *t);
int          lamina_tokenizer_kind(const lamina_tokenizer *t);   /* enum lamina_tokenizer_kind */
lamina_token lamina_tokenizer_bos(const lamina_tokenizer *t);    /* LAMINA_TOKEN_NONE if none */
lamina_token lamina_tokenizer_eos(const lamina_tokenizer *t);
lamina_token lamina_tokenizer_eot(const lamina_tokenizer *t);    /* end of turn, e.g. <end_of_turn>, <|eot_id|> */
lamina_token lamina_tokenizer_eom(const lamina_tokenizer *t);    /* <|eom_id|> */
lamina_token lamina_tokenizer_unk(const lamina_tokenizer *t);
int          lamina_tokenizer_add_bos(const lamina_tokenizer *t);
/* True for every token that ends generation: eos, eot, eom and the known
 * end markers (<end_of_turn>, <|eot_id|>, <|eom_id|>, <|im_end|>,
 * <|endoftext|>, <|end|>, ...). */
int          lamina_tokenizer_is_eog(const lamina_tokenizer *t, lamina_token id);
/* Raw vocabulary text (as stored, '▁' not undone), borrowed; NULL if out
 * of range. */
const char  *lamina_tokenizer_token_text(const lamina_tokenizer *t, lamina_token id, size_t *len);
int          lamina_tokenizer_token_type(const lamina_tokenizer *t, lamina_token id); /* 0 if out of range */
float        lamina_tokenizer_token_score(const lamina_tokenizer *t, lamina_token id);
/* Exact vocabulary lookup; LAMINA_TOKEN_NONE if absent. */
lamina_token lamina_tokenizer_find(const lamina_tokenizer *t, const char *text, size_t len);
/* general.architecture and tokenizer.chat_template as loaded (borrowed,
 * NUL-terminated), or NULL. */
const char  *lamina_tokenizer_arch(const lamina_tokenizer *t);
const char  *lamina_tokenizer_chat_template(const lamina_tokenizer *t);

/* ---- streaming UTF-8 ---- */

/* Holds back the trailing bytes of an incomplete UTF-8 sequence so that a
 * stream of token pieces comes out in whole characters.  Zero-initialise
 * (or lamina_utf8_stream_init) before use; no allocation. */
typedef struct lamina_utf8_stream {
    unsigned char pending[4];
    uint32_t n_pending;
} lamina_utf8_stream;

void   lamina_utf8_stream_init(lamina_utf8_stream *s);
/* Append len bytes.  Writes into out (capacity at least len + 4) the
 * pending bytes plus the new ones, except a trailing incomplete sequence,
 * which is kept for the next call; returns the number of bytes written.
 * Bytes that can never complete a character (invalid UTF-8) are passed
 * through, never held forever. */
size_t lamina_utf8_stream_push(lamina_utf8_stream *s, const char *piece, size_t len, char *out);
/* End of stream: write the held bytes (at most 3) into out and reset. */
size_t lamina_utf8_stream_flush(lamina_utf8_stream *s, char *out);

/* The BPE pre-tokenizer alone (for tests and diagnostics): byte offsets
 * where each pre-token of s[0..n) ends, for pre-tokenizer kind (enum
 * lamina_pretok, not NONE), all its passes applied (but not GEMMA4's
 * escaping of spaces).  At most max_bounds are written; *n_bounds gets
 * the total.  LAMINA_EINVAL for an unknown kind, LAMINA_ENOMEM. */
int lamina_tokenizer_pretok_split(int kind, const char *s, size_t n, size_t *bounds,
                                  size_t max_bounds, size_t *n_bounds);

/* Byte length of the UTF-8 sequence starting with byte c, from its top
 * bits (1 for ASCII and for stray continuation bytes). */
size_t lamina_utf8_len(unsigned char c);

#endif
