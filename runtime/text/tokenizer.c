/*
 * tokenizer.c - SentencePiece-style, BPE, WordPiece and unigram tokenizers.
 *
 * Layout of a tokenizer: all token texts in one blob (text_off[i] ..
 * text_off[i+1]), the decoded piece of every token in a second blob, an
 * open-addressing hash from text to id, and for BPE a hash from merge line
 * ("left right") to rank.  Encoding never mutates the tokenizer.
 *
 * BPE pre-tokenizers are data: pretok_rules[] says, for each enum
 * lamina_pretok, which splitting passes run and how words are merged, and
 * pretok_names[] maps the names found in tokenizer.ggml.pre to them.
 *
 * Unigram (UGM) keeps the file's precompiled character map, its trie units
 * decoded and checked once at creation (every leaf's replacement offset
 * and terminator), and walks it with bounds checks all the same.
 */
#include "config.h"

#include "tokenizer.h"

#include <float.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lamina/plugin.h"
#include "tok_unicode.h"

struct pretok_rules;

struct lamina_tokenizer {
    int kind;
    int pretok;
    const struct pretok_rules *rules; /* BPE: pretok_rules[pretok]; NULL otherwise */
    int32_t n_vocab;
    char *text;               /* all token texts, concatenated */
    size_t *text_off;         /* [n_vocab + 1] */
    char *piece;              /* decoded pieces, concatenated */
    size_t *piece_off;        /* [n_vocab + 1] */
    float *scores;            /* [n_vocab] */
    uint8_t *types;           /* [n_vocab] */
    uint8_t *eog;             /* [n_vocab] 1 = ends generation */
    int32_t *slots;           /* vocab hash: id or -1 */
    size_t slot_mask;
    /* BPE merges */
    int32_t n_merges;
    char *mtext;              /* merge lines concatenated */
    size_t *moff;             /* [n_merges + 1] */
    int32_t *mslots;          /* merge hash: rank or -1 */
    size_t mslot_mask;
    /* special-token splitting */
    uint32_t *special_lens;   /* distinct lengths of special tokens, descending */
    size_t n_special_lens;
    uint8_t special_first[256]; /* 1 if some special token starts with this byte */
    lamina_token byte_tok[256]; /* SPM byte fallback */
    lamina_token hex_tok[256];  /* "<0xNN>" tokens (raw-UTF-8 BPE fallback), or NONE */
    size_t max_token_len;     /* longest token text in bytes (WPM matching) */
    lamina_token bos, eos, eot, eom, unk, pad, sep;
    int add_bos, add_eos, add_space_prefix;
    lamina_token pair[4];     /* a text pair's frame (lamina_tokenizer_encode_pair):
                                 before, between (two), after; NONE: nothing */
    int wpm_lower, wpm_strip_accents;
    /* UGM */
    uint32_t *xcda;           /* the charsmap's double-array trie units, [n_xcda] */
    size_t n_xcda;
    char *repl;               /* its NUL-terminated replacement strings, [n_repl] */
    size_t n_repl;
    int remove_extra_ws;
    float ugm_unk_score;      /* lowest normal token score - 10, as llama.cpp */
    size_t ugm_max_len;       /* longest token Viterbi may use, in bytes */
    lamina_token *ugm_user;   /* user-defined tokens (passed through unnormalized) */
    size_t n_ugm_user;
    uint8_t ugm_user_first[256]; /* 1 if some user-defined token starts with this byte */
    char *arch;
    char *chat_template;
};

/* ------------------------------------------------------------------------ */
/* helpers                                                                  */

static int fail(char *err, size_t err_size, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t err_size, int code, const char *fmt, ...)
{
    if (err != NULL && err_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_size, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* FNV-1a, 64 bit, then a final mix so low bits are usable as an index.
 * The FNV part runs byte by byte, so every prefix's hash is one step
 * away from the one before (UGM's Viterbi). */
#define FNV_BASIS 0xcbf29ce484222325ull
#define FNV_STEP(h, c) (((h) ^ (unsigned char)(c)) * 0x100000001b3ull)

static uint64_t hash_mix(uint64_t h)
{
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return h;
}

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = FNV_BASIS;
    for (size_t i = 0; i < n; i++)
        h = FNV_STEP(h, s[i]);
    return hash_mix(h);
}

static size_t pow2_at_least(size_t n)
{
    size_t c = 16;
    while (c < n)
        c <<= 1;
    return c;
}

size_t lamina_utf8_len(unsigned char c)
{
    static const uint8_t len_by_top[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return len_by_top[c >> 4];
}

/* Growable token array. */
struct tokvec {
    lamina_token *v;
    size_t n, cap;
};

static int tv_push(struct tokvec *tv, lamina_token id)
{
    if (tv->n == tv->cap) {
        size_t nc = tv->cap ? tv->cap * 2 : 64;
        lamina_token *nv = realloc(tv->v, nc * sizeof(*nv));
        if (nv == NULL)
            return LAMINA_ENOMEM;
        tv->v = nv;
        tv->cap = nc;
    }
    tv->v[tv->n++] = id;
    return 0;
}

/* Growable byte buffer. */
struct bytebuf {
    char *p;
    size_t n, cap;
};

static int bb_reserve(struct bytebuf *b, size_t extra)
{
    if (extra > SIZE_MAX / 2 - b->n)
        return LAMINA_ENOMEM;
    if (b->n + extra <= b->cap)
        return 0;
    size_t nc = b->cap ? b->cap : 64;
    while (nc < b->n + extra)
        nc *= 2;
    char *np = realloc(b->p, nc);
    if (np == NULL)
        return LAMINA_ENOMEM;
    b->p = np;
    b->cap = nc;
    return 0;
}

static int bb_add(struct bytebuf *b, const void *s, size_t n)
{
    if (bb_reserve(b, n) != 0)
        return LAMINA_ENOMEM;
    if (n > 0)
        memcpy(b->p + b->n, s, n);
    b->n += n;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* vocabulary lookups                                                       */

static const char *tok_text(const lamina_tokenizer *t, int32_t id, size_t *len)
{
    *len = t->text_off[id + 1] - t->text_off[id];
    return t->text + t->text_off[id];
}

/* vocab_find with the hash of s[0..n) already known */
static lamina_token vocab_find_hashed(const lamina_tokenizer *t, const char *s, size_t n,
                                      uint64_t hash)
{
    size_t i = (size_t)hash & t->slot_mask;
    for (;;) {
        int32_t id = t->slots[i];
        if (id < 0)
            return LAMINA_TOKEN_NONE;
        size_t len;
        const char *txt = tok_text(t, id, &len);
        if (len == n && memcmp(txt, s, n) == 0)
            return id;
        i = (i + 1) & t->slot_mask;
    }
}

static lamina_token vocab_find(const lamina_tokenizer *t, const char *s, size_t n)
{
    return vocab_find_hashed(t, s, n, hash_bytes(s, n));
}

/* Insert id; a later duplicate text replaces the earlier one (as llama.cpp). */
static void vocab_insert(lamina_tokenizer *t, int32_t id)
{
    size_t n;
    const char *s = tok_text(t, id, &n);
    size_t i = (size_t)hash_bytes(s, n) & t->slot_mask;
    for (;;) {
        int32_t o = t->slots[i];
        if (o < 0) {
            t->slots[i] = id;
            return;
        }
        size_t len;
        const char *txt = tok_text(t, o, &len);
        if (len == n && memcmp(txt, s, n) == 0) {
            t->slots[i] = id;
            return;
        }
        i = (i + 1) & t->slot_mask;
    }
}

/* Rank of merge "a b" (key holds exactly that), or -1. */
static int32_t merge_find(const lamina_tokenizer *t, const char *key, size_t n)
{
    if (t->mslots == NULL)
        return -1;
    size_t i = (size_t)hash_bytes(key, n) & t->mslot_mask;
    for (;;) {
        int32_t r = t->mslots[i];
        if (r < 0)
            return -1;
        size_t len = t->moff[r + 1] - t->moff[r];
        if (len == n && memcmp(t->mtext + t->moff[r], key, n) == 0)
            return r;
        i = (i + 1) & t->mslot_mask;
    }
}

/* ------------------------------------------------------------------------ */
/* byte-level BPE character mapping (GPT-2)                                  */

/* Code point standing for byte b: printable Latin-1 bytes stand for
 * themselves, the other 68 are moved to U+0100.. in byte order. */
static uint32_t byte_to_cp(unsigned b)
{
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF))
        return b;
    unsigned n = 0;
    for (unsigned x = 0; x < b; x++)
        if (!((x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF)))
            n++;
    return 0x100 + n;
}

static size_t cp_to_utf8(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decode one code point from s[0..n) (n >= 1).  Invalid or truncated
 * sequences give one byte with *cp = 0xFFFD | 0x80000000 marker bit. */
#define CP_INVALID 0x80000000u
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t len = lamina_utf8_len(c);
    if (len == 1) {
        *cp = c < 0x80 ? c : CP_INVALID;
        return 1;
    }
    if (len > n) {
        *cp = CP_INVALID;
        return 1;
    }
    uint32_t v = c & (0x7F >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *cp = CP_INVALID;
            return 1;
        }
        v = (v << 6) | (s[i] & 0x3F);
    }
    *cp = v;
    return len;
}

/* ------------------------------------------------------------------------ */
/* Unicode properties                                                       */

/* A code point's flags: its category group (TOK_CAT_*) in the low bits,
 * F_SPACE for Unicode White_Space. */
#define F_SPACE 0x10u
#define F_CAT(f) ((f) & 0x0Fu)
#define IS_WS(f) (((f) & F_SPACE) != 0)
#define IS_L(f) (F_CAT(f) == TOK_CAT_LETTER)
#define IS_N(f) (F_CAT(f) == TOK_CAT_NUMBER)
#define IS_M(f) (F_CAT(f) == TOK_CAT_MARK)

static int cp_is_space(uint32_t c)
{
    /* Unicode White_Space property. */
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

static uint8_t cp_flags(uint32_t c)
{
    /* An invalid byte counts as U+FFFD (a symbol), which is what llama.cpp
     * puts in its place; the byte itself is kept. */
    if (c & CP_INVALID)
        return TOK_CAT_SYMBOL;
    uint8_t ws = cp_is_space(c) ? F_SPACE : 0;
    size_t lo = 0, hi = TOK_N_CAT_RANGES;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c < tok_cat_ranges[mid].first)
            hi = mid;
        else if (c > tok_cat_ranges[mid].last)
            lo = mid + 1;
        else
            return (uint8_t)(tok_cat_ranges[mid].cat | ws);
    }
    return (uint8_t)(TOK_CAT_UNDEF | ws);
}

/* Simple lowercase mapping. */
static uint32_t cp_lower(uint32_t c)
{
    size_t lo = 0, hi = TOK_N_LOWER;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c < tok_lower[mid].cp)
            hi = mid;
        else if (c > tok_lower[mid].cp)
            lo = mid + 1;
        else
            return tok_lower[mid].to;
    }
    return c;
}

/* First code point of c's canonical decomposition (c itself if none). */
static uint32_t cp_nfd_base(uint32_t c)
{
    size_t lo = 0, hi = TOK_N_NFD_BASE;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c < tok_nfd_base[mid].first)
            hi = mid;
        else if (c > tok_nfd_base[mid].last)
            lo = mid + 1;
        else
            return tok_nfd_base[mid].to;
    }
    return c;
}

/* ------------------------------------------------------------------------ */
/* BPE pre-tokenizers                                                       */

/* Code point sets of the regex-like passes.  Where the original
 * expressions are matched by llama.cpp, non-ASCII white space stands for
 * itself in no set (it is only \s), and invalid bytes count as U+FFFD. */
enum cpset {
    SET_NUMBER,         /* \p{N} */
    SET_LETTER,         /* \p{L} */
    SET_PUNCT,          /* \p{P} */
    SET_PUNCT_SYM,      /* [\p{P}$+<=>^~|] */
    SET_PUNCT_SYM_TICK, /* [\p{P}$+<=>^~|`] */
    SET_CR_LF,          /* [\r\n] */
    SET_ASCII_DIGIT,    /* [0-9] */
    SET_CJK,            /* DeepSeek's CJK class: U+0800..U+9FA5, U+AC00..U+D7FF */
    SET_DSLLM_LETTER,   /* DeepSeek LLM's explicit letter list (tok_dsllm_letters) */
    SET_DSLLM_PUNCT     /* DeepSeek LLM's punctuation class: ASCII !../, :..~; U+FF01..FF0F,
                         * U+FF1A..FF5E (full width), U+2018..201F (quotes), U+3000..3002 */
};

static int in_set(int set, uint32_t c, uint8_t f)
{
    if (IS_WS(f) && c >= 0x80)
        return 0;
    switch (set) {
    case SET_NUMBER:
        return IS_N(f);
    case SET_LETTER:
        return IS_L(f);
    case SET_PUNCT:
        return F_CAT(f) == TOK_CAT_PUNCT;
    case SET_PUNCT_SYM:
    case SET_PUNCT_SYM_TICK:
        if (F_CAT(f) == TOK_CAT_PUNCT)
            return 1;
        if (c == '$' || c == '+' || c == '<' || c == '=' || c == '>' || c == '^' || c == '~' ||
            c == '|')
            return 1;
        return set == SET_PUNCT_SYM_TICK && c == '`';
    case SET_CR_LF:
        return c == '\r' || c == '\n';
    case SET_ASCII_DIGIT:
        return c >= '0' && c <= '9';
    case SET_CJK:
        return (c >= 0x0800 && c <= 0x9FA5) || (c >= 0xAC00 && c <= 0xD7FF);
    case SET_DSLLM_LETTER: {
        size_t lo = 0, hi = TOK_N_DSLLM_LETTERS;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (c < tok_dsllm_letters[mid].first)
                hi = mid;
            else if (c > tok_dsllm_letters[mid].last)
                lo = mid + 1;
            else
                return 1;
        }
        return 0;
    }
    case SET_DSLLM_PUNCT:
        return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x7E) ||
               (c >= 0xFF01 && c <= 0xFF0F) || (c >= 0xFF1A && c <= 0xFF5E) ||
               (c >= 0x2018 && c <= 0x201F) || (c >= 0x3000 && c <= 0x3002);
    default:
        return 0;
    }
}

/* Kinds of splitting pass.  The first five are whole expressions, written
 * by hand (see enum lamina_pretok); the others are single patterns whose
 * matches and the text between them both become pieces. */
enum pass_kind {
    PASS_GPT2,          /* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
    PASS_LLAMA3,        /* (?i:'s|..)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
                         * \s*[\r\n]+|\s+(?!\S)|\s+ */
    PASS_QWEN2,         /* as PASS_LLAMA3 with \p{N} */
    PASS_QWEN35,        /* as PASS_QWEN2 with [\p{L}\p{M}]+ and [^\s\p{L}\p{M}\p{N}]+ */
    PASS_GPT4O,         /* o200k's expression as llama.cpp runs it (LAMINA_PRETOK_GPT4O) */
    PASS_RUN,           /* [set]+ */
    PASS_SPACE_RUN,     /* \s?[set]+ */
    PASS_ONE,           /* [set] */
    PASS_THREE,         /* [set][set][set] */
    PASS_TRAILING_SPACE,/* \s+$ (white space ending the piece) */
    PASS_NEWLINE_RUNS   /* [^\n]+|[\n]+ */
};

struct pass {
    uint8_t kind;       /* enum pass_kind */
    uint8_t set;        /* enum cpset, for the single-pattern kinds */
};

/* How words are merged (struct pretok_rules.flags). */
#define RULE_WHOLE_WORDS    1u  /* a word that is a token is taken as is */
#define RULE_RAW_UTF8       2u  /* no byte mapping; spaces as U+2581; fallback <0xNN> */
#define RULE_WHOLE_NEWLINES 4u  /* a run of newlines that is a token is taken as is */

#define MAX_PASSES 6
struct pretok_rules {
    uint8_t n_passes;
    unsigned flags;
    struct pass passes[MAX_PASSES];
};

/* The rules of each pre-tokenizer, by enum lamina_pretok. */
static const struct pretok_rules pretok_rules[] = {
    [LAMINA_PRETOK_GPT2] = {1, 0, {{PASS_GPT2, 0}}},
    [LAMINA_PRETOK_LLAMA3] = {1, RULE_WHOLE_WORDS, {{PASS_LLAMA3, 0}}},
    [LAMINA_PRETOK_QWEN2] = {1, 0, {{PASS_QWEN2, 0}}},
    [LAMINA_PRETOK_QWEN35] = {1, 0, {{PASS_QWEN35, 0}}},
    [LAMINA_PRETOK_DBRX] = {1, 0, {{PASS_LLAMA3, 0}}},
    [LAMINA_PRETOK_DEFAULT] = {4, 0, {{PASS_RUN, SET_PUNCT_SYM}, {PASS_GPT2, 0},
                                      {PASS_RUN, SET_NUMBER}, {PASS_THREE, SET_ASCII_DIGIT}}},
    [LAMINA_PRETOK_FALCON] = {3, 0, {{PASS_RUN, SET_PUNCT_SYM_TICK}, {PASS_GPT2, 0},
                                     {PASS_THREE, SET_ASCII_DIGIT}}},
    [LAMINA_PRETOK_STARCODER] = {2, 0, {{PASS_ONE, SET_NUMBER}, {PASS_GPT2, 0}}},
    [LAMINA_PRETOK_DEEPSEEK_LLM] = {6, 0, {{PASS_ONE, SET_CR_LF},
                                           {PASS_SPACE_RUN, SET_DSLLM_LETTER},
                                           {PASS_SPACE_RUN, SET_DSLLM_PUNCT},
                                           {PASS_TRAILING_SPACE, 0},
                                           {PASS_RUN, SET_CJK},
                                           {PASS_RUN, SET_NUMBER}}},
    [LAMINA_PRETOK_DEEPSEEK_CODER] = {5, 0, {{PASS_ONE, SET_CR_LF},
                                             {PASS_SPACE_RUN, SET_LETTER},
                                             {PASS_SPACE_RUN, SET_PUNCT},
                                             {PASS_RUN, SET_CJK},
                                             {PASS_ONE, SET_NUMBER}}},
    [LAMINA_PRETOK_GEMMA4] = {1, RULE_RAW_UTF8 | RULE_WHOLE_NEWLINES, {{PASS_NEWLINE_RUNS, 0}}},
    [LAMINA_PRETOK_GPT4O] = {1, 0, {{PASS_GPT4O, 0}}},
};
#define N_PRETOK_RULES (sizeof(pretok_rules) / sizeof(pretok_rules[0]))

static const struct pretok_rules *rules_of(int pretok)
{
    if (pretok <= LAMINA_PRETOK_NONE || (size_t)pretok >= N_PRETOK_RULES ||
        pretok_rules[pretok].n_passes == 0)
        return NULL;
    return &pretok_rules[pretok];
}

/* BOS default of a pre-tokenizer name (struct pretok_name.bos). */
enum { BOS_KEY = 0, BOS_DEFAULT_ON = 1, BOS_ALWAYS = 2 };

/* tokenizer.ggml.pre names, as llama.cpp reads them.  bos: BOS_KEY when
 * tokenizer.ggml.add_bos_token alone decides (default off), BOS_DEFAULT_ON
 * when it defaults to on, BOS_ALWAYS when BOS is added whatever it says. */
static const struct pretok_name {
    const char *name;
    uint8_t pretok;
    uint8_t bos;
} pretok_names[] = {
    {"default", LAMINA_PRETOK_DEFAULT, BOS_KEY},
    {"llama3", LAMINA_PRETOK_LLAMA3, BOS_DEFAULT_ON},
    {"llama-v3", LAMINA_PRETOK_LLAMA3, BOS_DEFAULT_ON},
    {"llama-bpe", LAMINA_PRETOK_LLAMA3, BOS_DEFAULT_ON},
    {"falcon3", LAMINA_PRETOK_LLAMA3, BOS_DEFAULT_ON},
    {"falcon-h1", LAMINA_PRETOK_LLAMA3, BOS_DEFAULT_ON},
    {"pixtral", LAMINA_PRETOK_LLAMA3, BOS_DEFAULT_ON},
    {"midm-2.0", LAMINA_PRETOK_LLAMA3, BOS_DEFAULT_ON},
    {"lfm2", LAMINA_PRETOK_LLAMA3, BOS_DEFAULT_ON},
    {"jina-v5-nano", LAMINA_PRETOK_LLAMA3, BOS_DEFAULT_ON},
    {"dbrx", LAMINA_PRETOK_DBRX, BOS_KEY},
    {"smaug-bpe", LAMINA_PRETOK_DBRX, BOS_KEY},
    {"qwen2", LAMINA_PRETOK_QWEN2, BOS_KEY},
    {"deepseek-r1-qwen", LAMINA_PRETOK_QWEN2, BOS_KEY},
    {"kormo", LAMINA_PRETOK_QWEN2, BOS_KEY},
    {"f2llmv2", LAMINA_PRETOK_QWEN2, BOS_KEY},
    {"megrez", LAMINA_PRETOK_QWEN2, BOS_KEY},
    {"stablelm2", LAMINA_PRETOK_QWEN2, BOS_KEY},
    {"hunyuan", LAMINA_PRETOK_QWEN2, BOS_KEY},
    {"solar-open", LAMINA_PRETOK_QWEN2, BOS_KEY},
    {"grok-2", LAMINA_PRETOK_QWEN2, BOS_KEY},
    {"qwen35", LAMINA_PRETOK_QWEN35, BOS_KEY},
    {"gpt-2", LAMINA_PRETOK_GPT2, BOS_KEY},
    {"gpt2", LAMINA_PRETOK_GPT2, BOS_KEY},
    {"phi-2", LAMINA_PRETOK_GPT2, BOS_KEY},
    {"jina-es", LAMINA_PRETOK_GPT2, BOS_KEY},
    {"jina-de", LAMINA_PRETOK_GPT2, BOS_KEY},
    {"gigachat", LAMINA_PRETOK_GPT2, BOS_KEY},
    {"a.x-4.0", LAMINA_PRETOK_GPT2, BOS_KEY},
    {"mellum", LAMINA_PRETOK_GPT2, BOS_KEY},
    {"mpt", LAMINA_PRETOK_GPT2, BOS_KEY},
    {"olmo", LAMINA_PRETOK_GPT2, BOS_KEY},
    {"jais", LAMINA_PRETOK_GPT2, BOS_KEY},
    {"trillion", LAMINA_PRETOK_GPT2, BOS_KEY},
    {"granite-docling", LAMINA_PRETOK_GPT2, BOS_KEY},
    {"exaone4", LAMINA_PRETOK_GPT2, BOS_KEY},
    {"starcoder", LAMINA_PRETOK_STARCODER, BOS_KEY},
    {"refact", LAMINA_PRETOK_STARCODER, BOS_KEY},
    {"command-r", LAMINA_PRETOK_STARCODER, BOS_KEY},
    {"smollm", LAMINA_PRETOK_STARCODER, BOS_KEY},
    {"codeshell", LAMINA_PRETOK_STARCODER, BOS_KEY},
    {"exaone", LAMINA_PRETOK_STARCODER, BOS_KEY},
    {"minerva-7b", LAMINA_PRETOK_STARCODER, BOS_KEY},
    {"mellum2", LAMINA_PRETOK_STARCODER, BOS_KEY},
    {"falcon", LAMINA_PRETOK_FALCON, BOS_KEY},
    {"deepseek-llm", LAMINA_PRETOK_DEEPSEEK_LLM, BOS_KEY},
    {"deepseek-coder", LAMINA_PRETOK_DEEPSEEK_CODER, BOS_KEY},
    {"gemma4", LAMINA_PRETOK_GEMMA4, BOS_ALWAYS},
    {"granite-embed-multi-311m", LAMINA_PRETOK_GEMMA4, BOS_ALWAYS},
    {"gpt-4o", LAMINA_PRETOK_GPT4O, BOS_KEY},
    {"llama4", LAMINA_PRETOK_GPT4O, BOS_KEY},
    {"kanana2", LAMINA_PRETOK_GPT4O, BOS_KEY},
    {"talkie", LAMINA_PRETOK_GPT4O, BOS_KEY},
    {"minimax-m2", LAMINA_PRETOK_GPT4O, BOS_KEY},
};
#define N_PRETOK_NAMES (sizeof(pretok_names) / sizeof(pretok_names[0]))

static const struct pretok_name *pretok_find_name(const char *name)
{
    for (size_t i = 0; i < N_PRETOK_NAMES; i++)
        if (!strcmp(name, pretok_names[i].name))
            return &pretok_names[i];
    return NULL;
}

/* ---- the hand-written passes: length in code points of the piece that
 * starts at cps[i], within a piece of n code points (f: their flags) ---- */

#define IS_NL(x) ((x) == '\r' || (x) == '\n')

/* 's|'t|'re|'ve|'m|'ll|'d, case-insensitive or not; 0 if none */
static size_t contraction_len(const uint32_t *cps, size_t i, size_t n, int any_case)
{
    if (cps[i] != '\'' || i + 1 >= n)
        return 0;
    uint32_t a = cps[i + 1];
    if (any_case && a >= 'A' && a <= 'Z')
        a += 32;
    if (a == 's' || a == 't' || a == 'm' || a == 'd')
        return 2;
    if (i + 2 >= n)
        return 0;
    uint32_t b = cps[i + 2];
    if (any_case && b >= 'A' && b <= 'Z')
        b += 32;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
        return 3;
    return 0;
}

/* \s+(?!\S)|\s+ at a white space code point: a run followed by more text
 * leaves its last one to the next piece. */
static size_t space_run_len(const uint8_t *f, size_t i, size_t n)
{
    size_t e = i;
    while (e < n && IS_WS(f[e]))
        e++;
    if (e < n && e - i >= 2)
        return e - 1 - i;
    return e > i ? e - i : 1;
}

/* GPT-2 class of a code point: white space, letter, number, other. */
static int gpt2_class(uint8_t f)
{
    return IS_WS(f) ? 3 : IS_L(f) ? 1 : IS_N(f) ? 2 : 0;
}

static size_t split_gpt2(const uint32_t *cps, const uint8_t *f, size_t i, size_t n)
{
    size_t k = contraction_len(cps, i, n, 0);
    if (k)
        return k;
    /*  ?\p{L}+ |  ?\p{N}+ |  ?[^\s\p{L}\p{N}]+ */
    size_t j = (cps[i] == ' ' && i + 1 < n && !IS_WS(f[i + 1])) ? i + 1 : i;
    int cls = gpt2_class(f[j]);
    if (cls != 3) {
        size_t e = j + 1;
        while (e < n && gpt2_class(f[e]) == cls)
            e++;
        return e - i;
    }
    return space_run_len(f, i, n);
}

/* Variants of the LLAMA3 expression (split_llama3's style). */
#define L3_MARKS 1u /* QWEN35: [\p{L}\p{M}]+ words, and no marks in [^\s\p{L}\p{M}\p{N}]+ */
#define L3_CASED 2u /* GPT4O: words split by case, a contraction only after a word,
                     * '[\r\n/]*' after punctuation */

#define IS_AZ_UPPER(x) ((x) >= 'A' && (x) <= 'Z')
#define IS_AZ_LOWER(x) ((x) >= 'a' && (x) <= 'z')

/* GPT4O's words, at a letter cps[j]: its end.  llama.cpp rewrites o200k's
 * upper class [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}] as "a letter other than
 * a-z" and the lower one [\p{Ll}\p{Lm}\p{Lo}\p{M}] as "a letter other than
 * A-Z", so case is ASCII's, a letter outside ASCII is both and a mark is
 * neither.  upper*lower+ is tried first: upper* takes its whole run, and
 * when no a-z follows it gives back up to its last letter outside ASCII
 * (which lower+ then takes); only a run of A-Z alone is left to
 * upper+lower*. */
static size_t cased_word_end(const uint32_t *cps, const uint8_t *f, size_t j, size_t n)
{
    size_t k = j, last_both = n;
    while (k < n && IS_L(f[k]) && !IS_AZ_LOWER(cps[k])) {
        if (!IS_AZ_UPPER(cps[k]))
            last_both = k;
        k++;
    }
    if (k < n && IS_AZ_LOWER(cps[k])) {
        size_t e = k + 1;
        while (e < n && IS_L(f[e]) && !IS_AZ_UPPER(cps[e]))
            e++;
        return e;
    }
    return last_both != n ? last_both + 1 : k;
}

/* LLAMA3 (max_digits 3, style 0), QWEN2 (1, 0), QWEN35 (1, L3_MARKS) and
 * GPT4O (3, L3_CASED). */
static size_t split_llama3(const uint32_t *cps, const uint8_t *f, size_t i, size_t n,
                           size_t max_digits, unsigned style)
{
    uint32_t c = cps[i];
    int with_marks = (style & L3_MARKS) != 0;
#define WORDCH(x) (IS_L(x) || (with_marks && IS_M(x)))
#define OTHER(x) (!IS_WS(x) && !IS_L(x) && !IS_N(x) && !(with_marks && IS_M(x)))
    if (style & L3_CASED) {
        /* [^\r\n\p{L}\p{N}]?upper*lower+(?i:'s|..)?|[^\r\n\p{L}\p{N}]?upper+lower*(?i:'s|..)? */
        size_t j = (!IS_L(f[i]) && !IS_NL(c) && !IS_N(f[i]) && i + 1 < n && IS_L(f[i + 1]))
                       ? i + 1 : i;
        if (IS_L(f[j])) {
            size_t e = cased_word_end(cps, f, j, n);
            if (e < n)
                e += contraction_len(cps, e, n, 1);
            return e - i;
        }
    } else {
        size_t k = contraction_len(cps, i, n, 1);
        if (k)
            return k;
    }
    /* [^\r\n\p{L}\p{N}]?\p{L}+   (QWEN35: [\p{L}\p{M}]+) */
    if (WORDCH(f[i]) || (!IS_NL(c) && !IS_N(f[i]) && i + 1 < n && WORDCH(f[i + 1]))) {
        size_t e = i + 1;
        while (e < n && WORDCH(f[e]))
            e++;
        return e - i;
    }
    /* \p{N}{1,3} or \p{N} */
    if (IS_N(f[i])) {
        size_t e = i + 1;
        while (e < n && e - i < max_digits && IS_N(f[e]))
            e++;
        return e - i;
    }
    /*  ?[^\s\p{L}\p{N}]+[\r\n]*   (GPT4O: [\r\n/]*) */
    size_t j = (c == ' ' && i + 1 < n && OTHER(f[i + 1])) ? i + 1 : i;
    if (OTHER(f[j])) {
        size_t e = j + 1;
        while (e < n && OTHER(f[e]))
            e++;
        while (e < n && (IS_NL(cps[e]) || ((style & L3_CASED) && cps[e] == '/')))
            e++;
        return e - i;
    }
    /* \s*[\r\n]+ : up to the last newline of the white space run */
    size_t e = i, last_nl = n;
    while (e < n && IS_WS(f[e])) {
        if (IS_NL(cps[e]))
            last_nl = e;
        e++;
    }
    if (last_nl != n)
        return last_nl + 1 - i;
    return space_run_len(f, i, n);
#undef WORDCH
#undef OTHER
}

/* ---- the single-pattern passes ---- */

/* End of the match of p starting exactly at cps[i], or 0 if none there. */
static size_t pattern_at(const struct pass *p, const uint32_t *cps, const uint8_t *f, size_t i,
                         size_t n)
{
    size_t e;
    switch (p->kind) {
    case PASS_RUN:
        if (!in_set(p->set, cps[i], f[i]))
            return 0;
        e = i + 1;
        break;
    case PASS_SPACE_RUN:
        if (IS_WS(f[i]) && i + 1 < n && in_set(p->set, cps[i + 1], f[i + 1]))
            e = i + 2;
        else if (in_set(p->set, cps[i], f[i]))
            e = i + 1;
        else
            return 0;
        break;
    case PASS_ONE:
        return in_set(p->set, cps[i], f[i]) ? i + 1 : 0;
    case PASS_THREE:
        if (i + 3 > n)
            return 0;
        for (size_t k = i; k < i + 3; k++)
            if (!in_set(p->set, cps[k], f[k]))
                return 0;
        return i + 3;
    default:
        return 0;
    }
    while (e < n && in_set(p->set, cps[e], f[e]))
        e++;
    return e;
}

/* Length of the piece starting at cps[i] (i < n): a match of the pass
 * there, else the text up to the next match (or the end). */
static size_t split_next(const struct pass *p, const uint32_t *cps, const uint8_t *f, size_t i,
                         size_t n)
{
    switch (p->kind) {
    case PASS_GPT2:
        return split_gpt2(cps, f, i, n);
    case PASS_LLAMA3:
        return split_llama3(cps, f, i, n, 3, 0);
    case PASS_QWEN2:
        return split_llama3(cps, f, i, n, 1, 0);
    case PASS_QWEN35:
        return split_llama3(cps, f, i, n, 1, L3_MARKS);
    case PASS_GPT4O:
        return split_llama3(cps, f, i, n, 3, L3_CASED);
    case PASS_NEWLINE_RUNS: {
        int nl = cps[i] == '\n';
        size_t e = i + 1;
        while (e < n && (cps[e] == '\n') == nl)
            e++;
        return e - i;
    }
    case PASS_TRAILING_SPACE: {
        size_t t = n;
        while (t > i && IS_WS(f[t - 1]))
            t--;
        return t > i ? t - i : n - i;
    }
    default:
        for (size_t k = i; k < n; k++) {
            size_t e = pattern_at(p, cps, f, k, n);
            if (e)
                return k > i ? k - i : e - i;
        }
        return n - i;
    }
}

/* Run all passes of r over cps[0..nc) (flags f): the words' end offsets
 * (in code points) into bnd[0..*nb), using tmp as scratch; both hold nc. */
static void split_words(const struct pretok_rules *r, const uint32_t *cps, const uint8_t *f,
                        size_t nc, size_t *bnd, size_t *tmp, size_t *nb)
{
    size_t n = 0;
    *nb = 0;
    if (nc == 0)
        return;
    bnd[n++] = nc;
    for (size_t ps = 0; ps < r->n_passes; ps++) {
        const struct pass *p = &r->passes[ps];
        size_t m = 0, start = 0;
        for (size_t k = 0; k < n; k++) {
            size_t end = bnd[k];
            for (size_t i = start; i < end;) {
                i += split_next(p, cps + start, f + start, i - start, end - start);
                tmp[m++] = i;
            }
            start = end;
        }
        memcpy(bnd, tmp, m * sizeof(*bnd));
        n = m;
    }
    *nb = n;
}

/* ------------------------------------------------------------------------ */
/* unigram: the precompiled character map                                   */

/* SentencePiece's normalizer as a blob: a little-endian uint32 byte size
 * of a double-array trie (darts-clone, XOR-compressed), its 32-bit units,
 * then NUL-terminated replacement strings.  A unit holds BASE in bits
 * 10..30 (shifted left 8 more when bit 9 is set), LEAF in bit 8 and the
 * label byte in bits 0..7; a unit with bit 31 set holds a value, here the
 * offset of a replacement string.  From state s, byte c leads to unit
 * p = s ^ c when p's label is c; the next state is p ^ BASE(p), and when
 * p is a leaf the value sits in that state's unit. */
#define XCDA_VALUE_BIT 0x80000000u

static uint32_t xcda_base(uint32_t u)
{
    return (u >> 10) << ((u & (1u << 9)) >> 6);
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Check a charsmap blob: sizes, and for every unit that can be reached as
 * a leaf, its value unit and replacement string.  0, or LAMINA_EINVAL with
 * what is wrong and where in msg. */
static int charsmap_check(const uint8_t *p, size_t n, char *msg, size_t msg_size)
{
    if (n < 4)
        return fail(msg, msg_size, LAMINA_EINVAL, "%zu bytes, shorter than its 4-byte trie size", n);
    uint32_t blob = le32(p);
    if (blob % 4 != 0)
        return fail(msg, msg_size, LAMINA_EINVAL, "trie size %u is not a multiple of 4", blob);
    if ((size_t)blob >= n - 4)
        return fail(msg, msg_size, LAMINA_EINVAL,
                    "trie size %u leaves no replacement strings in %zu bytes", blob, n);
    size_t n_units = blob / 4, n_str = n - 4 - blob;
    const uint8_t *units = p + 4, *str = p + 4 + blob;
    for (size_t i = 0; i < n_units; i++) {
        uint32_t u = le32(units + 4 * i);
        if ((u & XCDA_VALUE_BIT) || (u & 0xFF) == 0 || !(u & (1u << 8)))
            continue; /* a value, the root or a unit no byte reaches, or not a leaf */
        size_t v = i ^ xcda_base(u);
        if (v >= n_units)
            return fail(msg, msg_size, LAMINA_EINVAL,
                        "trie unit %zu points to unit %zu, past the %zu units", i, v, n_units);
        uint32_t off = le32(units + 4 * v) & ~XCDA_VALUE_BIT;
        if (off >= n_str)
            return fail(msg, msg_size, LAMINA_EINVAL,
                        "trie unit %zu: replacement offset %u past the %zu bytes of strings", v,
                        off, n_str);
        if (memchr(str + off, 0, n_str - off) == NULL)
            return fail(msg, msg_size, LAMINA_EINVAL,
                        "trie unit %zu: replacement string at offset %u has no terminating NUL",
                        v, off);
    }
    return 0;
}

/* Longest prefix of s[0..n) that the charsmap replaces: its length (0:
 * none) and the replacement in *repl, *repl_len.  Stops at a NUL byte, as
 * SentencePiece does. */
static size_t charsmap_match(const lamina_tokenizer *t, const char *s, size_t n, const char **repl,
                             size_t *repl_len)
{
    if (t->n_xcda == 0)
        return 0;
    uint32_t node = xcda_base(t->xcda[0]);
    size_t best = 0;
    uint32_t best_off = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == 0)
            break;
        node ^= c;
        if (node >= t->n_xcda)
            break;
        uint32_t u = t->xcda[node];
        if ((u & (XCDA_VALUE_BIT | 0xFF)) != c)
            break; /* not a child of the previous node */
        node ^= xcda_base(u);
        if (u & (1u << 8)) {
            if (node >= t->n_xcda)
                break; /* (refused at creation) */
            best = i + 1;
            best_off = t->xcda[node] & ~XCDA_VALUE_BIT;
        }
    }
    if (best == 0 || best_off >= t->n_repl)
        return 0;
    *repl = t->repl + best_off;
    *repl_len = strnlen(*repl, t->n_repl - best_off);
    return best;
}

/* Bytes of one UTF-8 character at s[0..n) as llama.cpp accepts it (lead
 * byte and continuation bytes checked, nothing else), 0 if invalid. */
static size_t utf8_valid_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t l = c < 0x80 ? 1 : c < 0xC0 ? 0 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF8 ? 4 : 0;
    if (l == 0 || l > n)
        return 0;
    for (size_t i = 1; i < l; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return l;
}

/* Tokens UGM's Viterbi may produce (besides unk): normal, user-defined, unused. */
static int ugm_matchable(int ty)
{
    return ty == LAMINA_TOKTYPE_NORMAL || ty == LAMINA_TOKTYPE_USER_DEFINED ||
           ty == LAMINA_TOKTYPE_UNUSED;
}

/* ------------------------------------------------------------------------ */
/* creation                                                                 */

static const char *const eog_texts[] = {
    "<|eot_id|>", "<|eom_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
    "<EOT>", "<|end_of_text|>", "<|return|>", "<|call|>",
};

void lamina_tokenizer_free(lamina_tokenizer *t)
{
    if (t == NULL)
        return;
    free(t->text);
    free(t->text_off);
    free(t->piece);
    free(t->piece_off);
    free(t->scores);
    free(t->types);
    free(t->eog);
    free(t->slots);
    free(t->mtext);
    free(t->moff);
    free(t->mslots);
    free(t->special_lens);
    free(t->xcda);
    free(t->repl);
    free(t->ugm_user);
    free(t->arch);
    free(t->chat_template);
    free(t);
}

static int is_special_type(int ty)
{
    return ty == LAMINA_TOKTYPE_CONTROL || ty == LAMINA_TOKTYPE_USER_DEFINED ||
           ty == LAMINA_TOKTYPE_UNKNOWN;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Decoded bytes of token id appended to b (the render-special form). */
static int build_piece(const lamina_tokenizer *t, int32_t id, struct bytebuf *b,
                       const uint8_t *cp_to_byte_lo, const int16_t *cp_to_byte_hi)
{
    size_t n;
    const char *s = tok_text(t, id, &n);
    int ty = t->types[id];
    if (ty == LAMINA_TOKTYPE_CONTROL || ty == LAMINA_TOKTYPE_UNKNOWN ||
        ty == LAMINA_TOKTYPE_USER_DEFINED)
        return bb_add(b, s, n);
    if (ty == LAMINA_TOKTYPE_BYTE) {
        /* "<0xNN>" */
        if (n == 6 && s[0] == '<' && s[1] == '0' && s[2] == 'x' && s[5] == '>' &&
            hexval(s[3]) >= 0 && hexval(s[4]) >= 0) {
            char c = (char)(hexval(s[3]) * 16 + hexval(s[4]));
            return bb_add(b, &c, 1);
        }
        return bb_add(b, s, n);
    }
    if (ty != LAMINA_TOKTYPE_NORMAL)
        return 0; /* unused and unknown types render as nothing */
    if (t->kind != LAMINA_TOKENIZER_BPE || (t->rules->flags & RULE_RAW_UTF8)) {
        /* '▁' (E2 96 81) -> ' ' */
        size_t i = 0;
        while (i < n) {
            if (i + 3 <= n && (unsigned char)s[i] == 0xE2 && (unsigned char)s[i + 1] == 0x96 &&
                (unsigned char)s[i + 2] == 0x81) {
                if (bb_add(b, " ", 1) != 0)
                    return LAMINA_ENOMEM;
                i += 3;
            } else {
                if (bb_add(b, s + i, 1) != 0)
                    return LAMINA_ENOMEM;
                i++;
            }
        }
        return 0;
    }
    /* byte-level BPE: each code point stands for one byte */
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t l = utf8_decode((const unsigned char *)s + i, n - i, &cp);
        int byte = -1;
        if (!(cp & CP_INVALID)) {
            if (cp < 0x100)
                byte = cp_to_byte_lo[cp] ? (int)cp : -1;
            else if (cp < 0x200)
                byte = cp_to_byte_hi[cp - 0x100];
        }
        if (byte >= 0) {
            char c = (char)byte;
            if (bb_add(b, &c, 1) != 0)
                return LAMINA_ENOMEM;
        } else if (bb_add(b, s + i, l) != 0) {
            /* not a mapped code point: keep its UTF-8 as is */
            return LAMINA_ENOMEM;
        }
        i += l;
    }
    return 0;
}

static int cmp_u32_desc(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

static char *dup_str(const char *s)
{
    if (s == NULL)
        return NULL;
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d != NULL)
        memcpy(d, s, n + 1);
    return d;
}

static int check_id(lamina_token id, int32_t n_vocab)
{
    return id == LAMINA_TOKEN_NONE || (id >= 0 && id < n_vocab);
}

int lamina_tokenizer_create(const lamina_tokenizer_spec *spec, lamina_tokenizer **out,
                            char *err, size_t err_size)
{
    int rc = 0;
    lamina_tokenizer *t = NULL;
    struct bytebuf pieces = {0};
    uint8_t cp_lo[256] = {0};
    int16_t cp_hi[256];

    if (out == NULL || spec == NULL)
        return fail(err, err_size, LAMINA_EINVAL, "tokenizer: NULL argument");
    *out = NULL;
    if (spec->kind != LAMINA_TOKENIZER_SPM && spec->kind != LAMINA_TOKENIZER_BPE &&
        spec->kind != LAMINA_TOKENIZER_WPM && spec->kind != LAMINA_TOKENIZER_UGM)
        return fail(err, err_size, LAMINA_EINVAL, "tokenizer: unknown kind %d", spec->kind);
    if (spec->kind == LAMINA_TOKENIZER_UGM && spec->charsmap != NULL) {
        char why[192];
        if (charsmap_check(spec->charsmap, spec->charsmap_len, why, sizeof(why)) != 0)
            return fail(err, err_size, LAMINA_EINVAL, "tokenizer: precompiled charsmap: %s", why);
    }
    if (spec->n_vocab <= 0 || spec->tokens == NULL)
        return fail(err, err_size, LAMINA_EINVAL, "tokenizer: empty vocabulary");
    if (spec->kind == LAMINA_TOKENIZER_BPE && rules_of(spec->pretok) == NULL)
        return fail(err, err_size, LAMINA_EINVAL, "tokenizer: BPE needs a pre-tokenizer (got %d)",
                    spec->pretok);
    if (spec->n_merges < 0 || (spec->n_merges > 0 && spec->merges == NULL))
        return fail(err, err_size, LAMINA_EINVAL, "tokenizer: bad merge list");
    {
        const lamina_token ids[7] = {spec->bos, spec->eos, spec->eot, spec->eom,
                                     spec->unk, spec->pad, spec->sep};
        static const char *const names[7] = {"bos", "eos", "eot", "eom", "unk", "pad", "sep"};
        for (int i = 0; i < 7; i++)
            if (!check_id(ids[i], spec->n_vocab))
                return fail(err, err_size, LAMINA_EINVAL,
                            "tokenizer: %s token id %d outside vocabulary of %d", names[i],
                            (int)ids[i], (int)spec->n_vocab);
    }

    size_t nv = (size_t)spec->n_vocab;
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        goto oom;
    t->kind = spec->kind;
    t->pretok = spec->kind == LAMINA_TOKENIZER_BPE ? spec->pretok : LAMINA_PRETOK_NONE;
    t->rules = spec->kind == LAMINA_TOKENIZER_BPE ? rules_of(spec->pretok) : NULL;
    t->n_vocab = spec->n_vocab;
    t->bos = spec->bos;
    t->eos = spec->eos;
    t->eot = spec->eot;
    t->eom = spec->eom;
    t->unk = spec->unk;
    t->pad = spec->pad;
    t->sep = spec->kind == LAMINA_TOKENIZER_WPM ? spec->sep : LAMINA_TOKEN_NONE;
    if (spec->kind == LAMINA_TOKENIZER_WPM) {
        /* WordPiece always frames the text: [CLS] ... [SEP] */
        t->add_bos = spec->bos != LAMINA_TOKEN_NONE;
        t->add_eos = 0;
    } else {
        t->add_bos = spec->add_bos && spec->bos != LAMINA_TOKEN_NONE;
        t->add_eos = spec->add_eos && spec->eos != LAMINA_TOKEN_NONE;
    }
    t->add_space_prefix = (spec->kind == LAMINA_TOKENIZER_SPM || spec->kind == LAMINA_TOKENIZER_UGM) &&
                          spec->add_space_prefix;
    t->remove_extra_ws = spec->kind == LAMINA_TOKENIZER_UGM && spec->remove_extra_ws;
    t->pair[0] = t->add_bos ? t->bos : LAMINA_TOKEN_NONE;      /* lamina_tokenizer_load refines */
    t->pair[1] = t->pair[3] = LAMINA_TOKEN_NONE;
    t->pair[2] = t->sep;
    t->wpm_lower = !spec->wpm_keep_case;
    t->wpm_strip_accents = !spec->wpm_keep_accents;

    /* Step 1: token texts into one blob. */
    size_t total = 0;
    for (size_t i = 0; i < nv; i++) {
        if (spec->tokens[i] == NULL) {
            rc = fail(err, err_size, LAMINA_EINVAL, "tokenizer: token %zu is NULL", i);
            goto out_fail;
        }
        size_t l = spec->token_lens ? spec->token_lens[i] : strlen(spec->tokens[i]);
        if (l > SIZE_MAX / 2 - total)
            goto oom;
        total += l;
    }
    t->text = malloc(total ? total : 1);
    t->text_off = malloc((nv + 1) * sizeof(size_t));
    t->scores = malloc(nv * sizeof(float));
    t->types = malloc(nv);
    t->eog = calloc(nv, 1);
    if (!t->text || !t->text_off || !t->scores || !t->types || !t->eog)
        goto oom;
    total = 0;
    for (size_t i = 0; i < nv; i++) {
        size_t l = spec->token_lens ? spec->token_lens[i] : strlen(spec->tokens[i]);
        t->text_off[i] = total;
        if (l)
            memcpy(t->text + total, spec->tokens[i], l);
        total += l;
        if (l > t->max_token_len)
            t->max_token_len = l;
        t->scores[i] = spec->scores ? spec->scores[i] : 0.0f;
        int ty = spec->types ? spec->types[i] : LAMINA_TOKTYPE_NORMAL;
        if (ty < LAMINA_TOKTYPE_NORMAL || ty > LAMINA_TOKTYPE_BYTE)
            ty = LAMINA_TOKTYPE_UNUSED; /* unknown types are suppressed, never produced */
        t->types[i] = (uint8_t)ty;
    }
    t->text_off[nv] = total;

    /* Step 2: text -> id hash, load factor <= 1/2. */
    size_t cap = pow2_at_least(nv * 2);
    t->slots = malloc(cap * sizeof(int32_t));
    if (!t->slots)
        goto oom;
    memset(t->slots, 0xFF, cap * sizeof(int32_t));
    t->slot_mask = cap - 1;
    for (size_t i = 0; i < nv; i++)
        vocab_insert(t, (int32_t)i);

    /* Step 3: merges (BPE). */
    if (spec->kind == LAMINA_TOKENIZER_BPE && spec->n_merges > 0) {
        size_t nm = (size_t)spec->n_merges, mt = 0;
        for (size_t i = 0; i < nm; i++) {
            if (spec->merges[i] == NULL) {
                rc = fail(err, err_size, LAMINA_EINVAL, "tokenizer: merge %zu is NULL", i);
                goto out_fail;
            }
            size_t l = strlen(spec->merges[i]);
            if (l > SIZE_MAX / 2 - mt)
                goto oom;
            mt += l;
        }
        t->n_merges = spec->n_merges;
        t->mtext = malloc(mt ? mt : 1);
        t->moff = malloc((nm + 1) * sizeof(size_t));
        size_t mcap = pow2_at_least(nm * 2);
        t->mslots = malloc(mcap * sizeof(int32_t));
        if (!t->mtext || !t->moff || !t->mslots)
            goto oom;
        memset(t->mslots, 0xFF, mcap * sizeof(int32_t));
        t->mslot_mask = mcap - 1;
        mt = 0;
        for (size_t i = 0; i < nm; i++) {
            size_t l = strlen(spec->merges[i]);
            t->moff[i] = mt;
            memcpy(t->mtext + mt, spec->merges[i], l);
            mt += l;
        }
        t->moff[nm] = mt;
        for (size_t r = 0; r < nm; r++) {
            const char *k = t->mtext + t->moff[r];
            size_t l = t->moff[r + 1] - t->moff[r];
            /* first occurrence keeps the rank (lowest rank wins) */
            if (merge_find(t, k, l) >= 0)
                continue;
            size_t i = (size_t)hash_bytes(k, l) & t->mslot_mask;
            while (t->mslots[i] >= 0)
                i = (i + 1) & t->mslot_mask;
            t->mslots[i] = (int32_t)r;
        }
    }

    /* Step 4: decoded pieces. */
    for (unsigned b = 0; b < 256; b++) {
        uint32_t cp = byte_to_cp(b);
        if (cp < 0x100)
            cp_lo[cp] = 1;
    }
    for (unsigned i = 0; i < 256; i++)
        cp_hi[i] = -1;
    for (unsigned b = 0; b < 256; b++) {
        uint32_t cp = byte_to_cp(b);
        if (cp >= 0x100)
            cp_hi[cp - 0x100] = (int16_t)b;
    }
    t->piece_off = malloc((nv + 1) * sizeof(size_t));
    if (!t->piece_off)
        goto oom;
    for (size_t i = 0; i < nv; i++) {
        t->piece_off[i] = pieces.n;
        if (build_piece(t, (int32_t)i, &pieces, cp_lo, cp_hi) != 0)
            goto oom;
    }
    t->piece_off[nv] = pieces.n;
    t->piece = pieces.p ? pieces.p : malloc(1);
    pieces.p = NULL;
    if (!t->piece)
        goto oom;

    /* Step 5: special tokens: distinct lengths (longest first), first bytes. */
    {
        uint32_t *lens = NULL;
        size_t nl = 0, capl = 0;
        for (size_t i = 0; i < nv; i++) {
            if (!is_special_type(t->types[i]))
                continue;
            size_t l = t->text_off[i + 1] - t->text_off[i];
            if (l == 0 || l > UINT32_MAX)
                continue;
            t->special_first[(unsigned char)t->text[t->text_off[i]]] = 1;
            size_t j;
            for (j = 0; j < nl; j++)
                if (lens[j] == (uint32_t)l)
                    break;
            if (j < nl)
                continue;
            if (nl == capl) {
                size_t nc = capl ? capl * 2 : 16;
                uint32_t *nlens = realloc(lens, nc * sizeof(uint32_t));
                if (!nlens) {
                    free(lens);
                    goto oom;
                }
                lens = nlens;
                capl = nc;
            }
            lens[nl++] = (uint32_t)l;
        }
        if (nl > 0)
            qsort(lens, nl, sizeof(uint32_t), cmp_u32_desc);
        t->special_lens = lens;
        t->n_special_lens = nl;
    }

    /* Step 6: byte fallback tables: "<0xNN>" (raw-UTF-8 BPE); for SPM that,
     * else the byte itself, else unk. */
    for (unsigned b = 0; b < 256; b++) {
        char buf[7];
        snprintf(buf, sizeof(buf), "<0x%02X>", b);
        lamina_token id = vocab_find(t, buf, 6);
        t->hex_tok[b] = id;
        if (id == LAMINA_TOKEN_NONE) {
            char c = (char)b;
            id = vocab_find(t, &c, 1);
        }
        t->byte_tok[b] = id != LAMINA_TOKEN_NONE ? id : t->unk;
    }

    /* Step 7: UGM: the charsmap's units and strings, the unknown token's
     * score, the longest usable token, the user-defined tokens. */
    if (spec->kind == LAMINA_TOKENIZER_UGM) {
        if (spec->charsmap != NULL) {
            size_t blob = le32(spec->charsmap); /* checked above */
            t->n_xcda = blob / 4;
            t->n_repl = spec->charsmap_len - 4 - blob;
            t->xcda = malloc(t->n_xcda ? t->n_xcda * sizeof(uint32_t) : 1);
            t->repl = malloc(t->n_repl);
            if (!t->xcda || !t->repl)
                goto oom;
            for (size_t i = 0; i < t->n_xcda; i++)
                t->xcda[i] = le32(spec->charsmap + 4 + 4 * i);
            memcpy(t->repl, spec->charsmap + 4 + blob, t->n_repl);
        }
        float lo = FLT_MAX;
        size_t n_user = 0;
        for (size_t i = 0; i < nv; i++) {
            int ty = t->types[i];
            size_t l = t->text_off[i + 1] - t->text_off[i];
            if (ty == LAMINA_TOKTYPE_NORMAL && t->scores[i] < lo)
                lo = t->scores[i];
            if (ugm_matchable(ty) && l > t->ugm_max_len)
                t->ugm_max_len = l;
            if (ty == LAMINA_TOKTYPE_USER_DEFINED && l > 0)
                n_user++;
        }
        t->ugm_unk_score = lo - 10.0f;
        if (n_user > 0 && !(t->ugm_user = malloc(n_user * sizeof(lamina_token))))
            goto oom;
        for (size_t i = 0; i < nv; i++) {
            if (t->types[i] != LAMINA_TOKTYPE_USER_DEFINED || t->text_off[i + 1] == t->text_off[i])
                continue;
            t->ugm_user[t->n_ugm_user++] = (lamina_token)i;
            t->ugm_user_first[(unsigned char)t->text[t->text_off[i]]] = 1;
        }
    }

    /* Step 8: end-of-generation set. */
    if (t->eos != LAMINA_TOKEN_NONE)
        t->eog[t->eos] = 1;
    if (t->eot != LAMINA_TOKEN_NONE)
        t->eog[t->eot] = 1;
    if (t->eom != LAMINA_TOKEN_NONE)
        t->eog[t->eom] = 1;
    for (size_t k = 0; k < sizeof(eog_texts) / sizeof(eog_texts[0]); k++) {
        lamina_token id = vocab_find(t, eog_texts[k], strlen(eog_texts[k]));
        if (id != LAMINA_TOKEN_NONE && t->types[id] == LAMINA_TOKTYPE_CONTROL) {
            t->eog[id] = 1;
            if (t->eot == LAMINA_TOKEN_NONE &&
                (!strcmp(eog_texts[k], "<|eot_id|>") || !strcmp(eog_texts[k], "<end_of_turn>") ||
                 !strcmp(eog_texts[k], "<|im_end|>") || !strcmp(eog_texts[k], "<|end|>")))
                t->eot = id;
            if (t->eom == LAMINA_TOKEN_NONE && !strcmp(eog_texts[k], "<|eom_id|>"))
                t->eom = id;
        }
    }

    if (spec->arch && !(t->arch = dup_str(spec->arch)))
        goto oom;
    if (spec->chat_template && !(t->chat_template = dup_str(spec->chat_template)))
        goto oom;

    *out = t;
    return 0;

oom:
    rc = fail(err, err_size, LAMINA_ENOMEM, "tokenizer: out of memory");
out_fail:
    free(pieces.p);
    lamina_tokenizer_free(t);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* loading from GGUF                                                        */

/* Optional u32 token id key: absent -> LAMINA_TOKEN_NONE. */
static int get_opt_id(const lamina_gguf *g, const char *key, lamina_token dflt, lamina_token *id, char *err,
                      size_t err_size)
{
    *id = dflt;
    if (lamina_gguf_find(g, key) < 0)
        return 0;
    int64_t v;
    if (lamina_gguf_get_i64(g, key, &v, err, err_size) != 0)
        return LAMINA_EFORMAT;
    if (v < 0 || v > INT32_MAX)
        return fail(err, err_size, LAMINA_EFORMAT, "%s: token id %lld out of range", key,
                    (long long)v);
    *id = (lamina_token)v;
    return 0;
}

static int get_opt_bool(const lamina_gguf *g, const char *key, int dflt, int *v, char *err,
                        size_t err_size)
{
    *v = dflt;
    if (lamina_gguf_find(g, key) < 0)
        return 0;
    if (lamina_gguf_get_bool(g, key, v, err, err_size) != 0)
        return LAMINA_EFORMAT;
    return 0;
}

/* Copy of an optional string key, NUL-terminated; NULL when absent. */
static int get_opt_str(const lamina_gguf *g, const char *key, char **out, char *err,
                       size_t err_size)
{
    *out = NULL;
    if (lamina_gguf_find(g, key) < 0)
        return 0;
    const char *s;
    size_t n;
    if (lamina_gguf_get_str(g, key, &s, &n, err, err_size) != 0)
        return LAMINA_EFORMAT;
    if (n == SIZE_MAX)
        return LAMINA_ENOMEM;
    char *d = malloc(n + 1);
    if (!d)
        return LAMINA_ENOMEM;
    memcpy(d, s, n);
    d[n] = 0;
    *out = d;
    return 0;
}

/* tokenizer.ggml.model values: the algorithm, the pre-tokenizer name a
 * model implies whatever tokenizer.ggml.pre says (NULL: that key's), and
 * the special ids its files may leave out (as llama.cpp: BERT's [CLS]
 * [UNK] [SEP], T5's pad 0, eos 1, unk 2). */
#define NO_ID LAMINA_TOKEN_NONE
static const struct tok_model {
    const char *name;
    int kind;
    const char *pre;
    lamina_token bos, eos, unk, sep, pad;     /* when the key is absent */
} tok_models[] = {
    {"llama", LAMINA_TOKENIZER_SPM, NULL, NO_ID, NO_ID, NO_ID, NO_ID, NO_ID},
    {"gpt2", LAMINA_TOKENIZER_BPE, NULL, NO_ID, NO_ID, NO_ID, NO_ID, NO_ID},
    {"gemma4", LAMINA_TOKENIZER_BPE, "gemma4", NO_ID, NO_ID, NO_ID, NO_ID, NO_ID},
    {"bert", LAMINA_TOKENIZER_WPM, NULL, 101, NO_ID, 100, 102, NO_ID},
    {"t5", LAMINA_TOKENIZER_UGM, NULL, NO_ID, 1, 2, NO_ID, 0},
};
#define N_TOK_MODELS (sizeof(tok_models) / sizeof(tok_models[0]))

/* "a, b, c" from the names of a table into buf (cut short if it must). */
static const char *join_names(char *buf, size_t size, const char *(*name_at)(size_t), size_t n)
{
    size_t used = 0;
    buf[0] = 0;
    for (size_t i = 0; i < n && used + 1 < size; i++) {
        int w = snprintf(buf + used, size - used, "%s%s", i ? ", " : "", name_at(i));
        if (w < 0)
            break;
        used += (size_t)w < size - used ? (size_t)w : size - used - 1;
    }
    return buf;
}

static const char *pretok_name_at(size_t i) { return pretok_names[i].name; }
static const char *tok_model_at(size_t i) { return tok_models[i].name; }

int lamina_tokenizer_load(const lamina_gguf *g, lamina_tokenizer **out, char *err, size_t err_size)
{
    int rc;
    char *model = NULL, *pre = NULL, *arch = NULL, *tmpl = NULL;
    const char **tokens = NULL;
    size_t *lens = NULL;
    float *scores = NULL;
    int32_t *types = NULL;
    char **merges = NULL;
    uint64_t n_merges = 0;
    uint8_t *charsmap = NULL;
    lamina_tokenizer_spec sp;
    char sub[256];

    if (g == NULL || out == NULL)
        return fail(err, err_size, LAMINA_EINVAL, "tokenizer: NULL argument");
    *out = NULL;
    memset(&sp, 0, sizeof(sp));

    /* Step 1: which algorithm, and for BPE which pre-tokenizer. */
    if ((rc = get_opt_str(g, "tokenizer.ggml.model", &model, err, err_size)) != 0)
        goto str_fail;
    if (model == NULL) {
        rc = fail(err, err_size, LAMINA_EFORMAT, "%s: no tokenizer.ggml.model key",
                  lamina_gguf_path(g));
        goto done;
    }
    if ((rc = get_opt_str(g, "tokenizer.ggml.pre", &pre, err, err_size)) != 0)
        goto str_fail;
    const struct tok_model *tm = NULL;
    for (size_t i = 0; i < N_TOK_MODELS && tm == NULL; i++)
        if (!strcmp(model, tok_models[i].name))
            tm = &tok_models[i];
    if (tm == NULL) {
        char known[256];
        rc = fail(err, err_size, LAMINA_ENOTSUP, "%s: tokenizer model '%s' not supported (known: %s)",
                  lamina_gguf_path(g), model,
                  join_names(known, sizeof(known), tok_model_at, N_TOK_MODELS));
        goto done;
    }
    sp.kind = tm->kind;
    const struct pretok_name *pn = NULL;
    if (sp.kind == LAMINA_TOKENIZER_BPE) {
        const char *pre_name = tm->pre ? tm->pre : pre ? pre : "default";
        if ((pn = pretok_find_name(pre_name)) == NULL) {
            char known[2048];
            rc = fail(err, err_size, LAMINA_ENOTSUP,
                      "%s: BPE pre-tokenizer '%s' not supported (known: %s)", lamina_gguf_path(g),
                      pre_name, join_names(known, sizeof(known), pretok_name_at, N_PRETOK_NAMES));
            goto done;
        }
        sp.pretok = pn->pretok;
    }

    /* Step 2: the vocabulary. */
    uint32_t et;
    uint64_t nv;
    const void *data;
    if (lamina_gguf_get_arr(g, "tokenizer.ggml.tokens", &et, &nv, &data, sub, sizeof(sub)) != 0 ||
        et != LAMINA_GGUF_STRING) {
        rc = fail(err, err_size, LAMINA_EFORMAT, "%s: tokenizer.ggml.tokens missing or not a "
                  "string array", lamina_gguf_path(g));
        goto done;
    }
    if (nv == 0 || nv > INT32_MAX) {
        rc = fail(err, err_size, LAMINA_EFORMAT, "%s: tokenizer.ggml.tokens has %llu entries",
                  lamina_gguf_path(g), (unsigned long long)nv);
        goto done;
    }
    tokens = malloc(nv * sizeof(*tokens));
    lens = malloc(nv * sizeof(*lens));
    if (!tokens || !lens)
        goto oom;
    for (uint64_t i = 0; i < nv; i++) {
        if (lamina_gguf_arr_str(g, "tokenizer.ggml.tokens", i, &tokens[i], &lens[i]) != 0) {
            rc = fail(err, err_size, LAMINA_EFORMAT, "%s: tokenizer.ggml.tokens[%llu] unreadable",
                      lamina_gguf_path(g), (unsigned long long)i);
            goto done;
        }
    }
    sp.n_vocab = (int32_t)nv;
    sp.tokens = tokens;
    sp.token_lens = lens;

    if (lamina_gguf_find(g, "tokenizer.ggml.scores") >= 0) {
        uint64_t n;
        if (lamina_gguf_get_arr(g, "tokenizer.ggml.scores", &et, &n, &data, sub, sizeof(sub)) != 0 ||
            n != nv || (et != LAMINA_GGUF_F32 && et != LAMINA_GGUF_F64)) {
            rc = fail(err, err_size, LAMINA_EFORMAT,
                      "%s: tokenizer.ggml.scores must be %llu floats", lamina_gguf_path(g),
                      (unsigned long long)nv);
            goto done;
        }
        if (!(scores = malloc(nv * sizeof(float))))
            goto oom;
        for (uint64_t i = 0; i < nv; i++)
            scores[i] = (float)lamina_gguf_arr_f64(et, data, i);
        sp.scores = scores;
    }
    if (lamina_gguf_find(g, "tokenizer.ggml.token_type") >= 0) {
        uint64_t n;
        if (lamina_gguf_get_arr(g, "tokenizer.ggml.token_type", &et, &n, &data, sub,
                                sizeof(sub)) != 0 ||
            n != nv || et == LAMINA_GGUF_STRING || et == LAMINA_GGUF_ARRAY ||
            et == LAMINA_GGUF_F32 || et == LAMINA_GGUF_F64) {
            rc = fail(err, err_size, LAMINA_EFORMAT,
                      "%s: tokenizer.ggml.token_type must be %llu integers", lamina_gguf_path(g),
                      (unsigned long long)nv);
            goto done;
        }
        if (!(types = malloc(nv * sizeof(int32_t))))
            goto oom;
        for (uint64_t i = 0; i < nv; i++) {
            int64_t v = lamina_gguf_arr_i64(et, data, i);
            types[i] = (v >= 1 && v <= 6) ? (int32_t)v : LAMINA_TOKTYPE_UNUSED;
        }
        sp.types = types;
    }

    /* Step 3: merges (BPE). */
    if (sp.kind == LAMINA_TOKENIZER_BPE) {
        if (lamina_gguf_get_arr(g, "tokenizer.ggml.merges", &et, &n_merges, &data, sub,
                                sizeof(sub)) != 0 ||
            et != LAMINA_GGUF_STRING || n_merges > INT32_MAX) {
            rc = fail(err, err_size, LAMINA_EFORMAT,
                      "%s: tokenizer.ggml.merges missing or not a string array",
                      lamina_gguf_path(g));
            goto done;
        }
        if (!(merges = calloc(n_merges ? n_merges : 1, sizeof(char *))))
            goto oom;
        for (uint64_t i = 0; i < n_merges; i++) {
            const char *s;
            size_t n;
            if (lamina_gguf_arr_str(g, "tokenizer.ggml.merges", i, &s, &n) != 0 || n == SIZE_MAX) {
                rc = fail(err, err_size, LAMINA_EFORMAT, "%s: tokenizer.ggml.merges[%llu] unreadable",
                          lamina_gguf_path(g), (unsigned long long)i);
                goto done;
            }
            if (!(merges[i] = malloc(n + 1)))
                goto oom;
            memcpy(merges[i], s, n);
            merges[i][n] = 0;
        }
        sp.n_merges = (int32_t)n_merges;
        sp.merges = (const char *const *)merges;
    }

    /* Step 3b: the unigram normalizer: a byte array, checked through and
     * copied (the GGUF may be closed afterwards). */
    if (sp.kind == LAMINA_TOKENIZER_UGM &&
        lamina_gguf_find(g, "tokenizer.ggml.precompiled_charsmap") >= 0) {
        uint64_t n;
        if (lamina_gguf_get_arr(g, "tokenizer.ggml.precompiled_charsmap", &et, &n, &data, sub,
                                sizeof(sub)) != 0 ||
            (et != LAMINA_GGUF_U8 && et != LAMINA_GGUF_I8)) {
            rc = fail(err, err_size, LAMINA_EFORMAT,
                      "%s: tokenizer.ggml.precompiled_charsmap must be a byte array",
                      lamina_gguf_path(g));
            goto done;
        }
        char why[192];
        if (n > SIZE_MAX || charsmap_check(data, (size_t)n, why, sizeof(why)) != 0) {
            rc = fail(err, err_size, LAMINA_EFORMAT, "%s: tokenizer.ggml.precompiled_charsmap: %s",
                      lamina_gguf_path(g), n > SIZE_MAX ? "too large" : why);
            goto done;
        }
        if (!(charsmap = malloc(n)))
            goto oom;
        memcpy(charsmap, data, n);
        sp.charsmap = charsmap;
        sp.charsmap_len = (size_t)n;
    }

    /* Step 4: special ids and flags.  Defaults as llama.cpp: SPM adds BOS
     * and a space prefix unless told otherwise; BPE adds BOS as its
     * pre-tokenizer name says; WordPiece frames the text in [CLS] [SEP] and
     * has BERT's ids for them and [UNK] when the keys are absent; unigram
     * adds EOS, with T5's ids (pad 0, eos 1, unk 2) when the keys are
     * absent. */
    if ((rc = get_opt_id(g, "tokenizer.ggml.bos_token_id", tm->bos, &sp.bos, err, err_size)) ||
        (rc = get_opt_id(g, "tokenizer.ggml.eos_token_id", tm->eos, &sp.eos, err, err_size)) ||
        (rc = get_opt_id(g, "tokenizer.ggml.eot_token_id", NO_ID, &sp.eot, err, err_size)) ||
        (rc = get_opt_id(g, "tokenizer.ggml.eom_token_id", NO_ID, &sp.eom, err, err_size)) ||
        (rc = get_opt_id(g, "tokenizer.ggml.unknown_token_id", tm->unk, &sp.unk, err, err_size)) ||
        (rc = get_opt_id(g, "tokenizer.ggml.padding_token_id", tm->pad, &sp.pad, err, err_size)) ||
        (rc = get_opt_id(g, "tokenizer.ggml.seperator_token_id", tm->sep, &sp.sep, err, err_size)))
        goto done;
    lamina_token *ids[7] = {&sp.bos, &sp.eos, &sp.eot, &sp.eom, &sp.unk, &sp.pad, &sp.sep};
    for (int i = 0; i < 7; i++)
        if (*ids[i] >= sp.n_vocab)
            *ids[i] = LAMINA_TOKEN_NONE; /* as llama.cpp: ids past the vocabulary are ignored */
    int spm = sp.kind == LAMINA_TOKENIZER_SPM, ugm = sp.kind == LAMINA_TOKENIZER_UGM;
    int bos_default = spm || (pn != NULL && pn->bos != BOS_KEY);
    if ((rc = get_opt_bool(g, "tokenizer.ggml.add_bos_token", bos_default, &sp.add_bos, err,
                           err_size)) ||
        (rc = get_opt_bool(g, "tokenizer.ggml.add_eos_token", ugm, &sp.add_eos, err, err_size)) ||
        (rc = get_opt_bool(g, "tokenizer.ggml.add_space_prefix", spm, &sp.add_space_prefix, err,
                           err_size)) ||
        (rc = get_opt_bool(g, "tokenizer.ggml.remove_extra_whitespaces", 0, &sp.remove_extra_ws,
                           err, err_size)))
        goto done;
    if (pn != NULL && pn->bos == BOS_ALWAYS)
        sp.add_bos = 1;
    if (sp.kind == LAMINA_TOKENIZER_WPM) {
        /* BertNormalizer: lowercase (default on); strip accents (default:
         * as lowercase) */
        int lower, strip;
        if ((rc = get_opt_bool(g, "tokenizer.ggml.normalizer.lowercase", 1, &lower, err,
                               err_size)) ||
            (rc = get_opt_bool(g, "tokenizer.ggml.normalizer.strip_accents", lower, &strip, err,
                               err_size)))
            goto done;
        sp.wpm_keep_case = !lower;
        sp.wpm_keep_accents = !strip;
    }

    if ((rc = get_opt_str(g, "general.architecture", &arch, err, err_size)) != 0 ||
        (rc = get_opt_str(g, "tokenizer.chat_template", &tmpl, err, err_size)) != 0)
        goto str_fail;
    sp.arch = arch;
    sp.chat_template = tmpl;

    /* A pair's frame, as llama.cpp (format_prompt_rerank): BOS when the
     * file adds it (WordPiece: unless the key says no), EOS when it adds
     * EOS (SEP standing in when it has no EOS) after each text, SEP
     * between them when it adds SEP (tokenizer.ggml.add_sep_token;
     * WordPiece by default). */
    int pair_bos = sp.add_bos, pair_eos = 0, pair_sep = sp.kind == LAMINA_TOKENIZER_WPM;
    lamina_token sep_id = sp.sep;
    if (sep_id >= sp.n_vocab)
        sep_id = LAMINA_TOKEN_NONE;
    if ((sp.kind == LAMINA_TOKENIZER_WPM &&
         (rc = get_opt_bool(g, "tokenizer.ggml.add_bos_token", 1, &pair_bos, err, err_size))) ||
        (rc = get_opt_bool(g, "tokenizer.ggml.add_eos_token", ugm, &pair_eos, err, err_size)) ||
        (rc = get_opt_bool(g, "tokenizer.ggml.add_sep_token", pair_sep, &pair_sep, err, err_size)))
        goto done;
    rc = lamina_tokenizer_create(&sp, out, err, err_size);
    if (rc == 0) {
        lamina_token end = sp.eos != LAMINA_TOKEN_NONE ? sp.eos : sep_id;
        (*out)->pair[0] = pair_bos ? sp.bos : LAMINA_TOKEN_NONE;
        (*out)->pair[1] = pair_eos ? end : LAMINA_TOKEN_NONE;
        (*out)->pair[2] = pair_sep ? sep_id : LAMINA_TOKEN_NONE;
        (*out)->pair[3] = pair_eos ? end : LAMINA_TOKEN_NONE;
    }
    goto done;

str_fail:
    if (rc == LAMINA_ENOMEM)
        goto oom;
    goto done;
oom:
    rc = fail(err, err_size, LAMINA_ENOMEM, "tokenizer: out of memory");
done:
    if (merges) {
        for (uint64_t i = 0; i < n_merges; i++)
            free(merges[i]);
        free(merges);
    }
    free(charsmap);
    free(types);
    free(scores);
    free(lens);
    free(tokens);
    free(tmpl);
    free(arch);
    free(pre);
    free(model);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* special-token partition                                                  */

struct frag {
    lamina_token tok;   /* >= 0: a special token; -1: raw text */
    size_t off, len;    /* raw text range */
};

struct fragvec {
    struct frag *v;
    size_t n, cap;
};

static int fv_push(struct fragvec *f, lamina_token tok, size_t off, size_t len)
{
    if (f->n == f->cap) {
        size_t nc = f->cap ? f->cap * 2 : 16;
        struct frag *nv = realloc(f->v, nc * sizeof(*nv));
        if (!nv)
            return LAMINA_ENOMEM;
        f->v = nv;
        f->cap = nc;
    }
    f->v[f->n].tok = tok;
    f->v[f->n].off = off;
    f->v[f->n].len = len;
    f->n++;
    return 0;
}

/* Split the text at special tokens: for each length, longest first, every
 * raw fragment is scanned left to right and each occurrence of a special
 * token of that length becomes a token fragment. */
static int partition(const lamina_tokenizer *t, const char *text, size_t len, int parse_special,
                     struct fragvec *fv)
{
    struct fragvec tmp = {0};
    fv->n = 0;
    if (len == 0)
        return 0;
    if (fv_push(fv, -1, 0, len) != 0)
        return LAMINA_ENOMEM;
    for (size_t li = 0; li < t->n_special_lens; li++) {
        size_t L = t->special_lens[li];
        tmp.n = 0;
        for (size_t f = 0; f < fv->n; f++) {
            struct frag fr = fv->v[f];
            if (fr.tok >= 0 || fr.len < L) {
                if (fv_push(&tmp, fr.tok, fr.off, fr.len) != 0)
                    goto oom;
                continue;
            }
            size_t start = fr.off, end = fr.off + fr.len, p = fr.off;
            while (p + L <= end) {
                if (t->special_first[(unsigned char)text[p]]) {
                    lamina_token id = vocab_find(t, text + p, L);
                    if (id >= 0) {
                        int ty = t->types[id];
                        int ok = ty == LAMINA_TOKTYPE_USER_DEFINED ||
                                 (parse_special && (ty == LAMINA_TOKTYPE_CONTROL ||
                                                    ty == LAMINA_TOKTYPE_UNKNOWN));
                        if (ok) {
                            if (p > start && fv_push(&tmp, -1, start, p - start) != 0)
                                goto oom;
                            if (fv_push(&tmp, id, p, L) != 0)
                                goto oom;
                            p += L;
                            start = p;
                            continue;
                        }
                    }
                }
                p++;
            }
            if (end > start && fv_push(&tmp, -1, start, end - start) != 0)
                goto oom;
        }
        /* swap */
        struct fragvec sw = *fv;
        *fv = tmp;
        tmp = sw;
    }
    free(tmp.v);
    return 0;
oom:
    free(tmp.v);
    return LAMINA_ENOMEM;
}

/* ------------------------------------------------------------------------ */
/* merge queue shared by SPM and BPE                                        */

struct ugm_best;

struct sym {
    int32_t prev, next;
    size_t off, n;  /* bytes in the working buffer; n = 0: merged away */
};

struct bigram {
    double prio;    /* higher first (SPM: score; BPE: -rank, exact in a double) */
    int32_t left, right;
    size_t size;
};

struct work {
    struct sym *syms;
    size_t n_syms, cap_syms;
    struct bigram *heap;
    size_t n_heap, cap_heap;
    struct bytebuf buf;   /* working text */
    struct bytebuf key;   /* scratch */
    struct bytebuf esc;   /* fragment with spaces escaped (raw-UTF-8 BPE) */
    uint32_t *cps;        /* pre-tokenizer code points */
    size_t *cpo;          /* their byte offsets, [n + 1] */
    uint8_t *cpf;         /* their flags (cp_flags) */
    size_t *bnd, *bnd_tmp;/* word ends, in code points */
    size_t cap_cps;
    struct ugm_best *best;/* UGM: per byte of the normalized text, [cap_best] */
    size_t cap_best;
};

static void work_free(struct work *w)
{
    free(w->syms);
    free(w->heap);
    free(w->buf.p);
    free(w->key.p);
    free(w->esc.p);
    free(w->cps);
    free(w->cpo);
    free(w->cpf);
    free(w->bnd);
    free(w->bnd_tmp);
    free(w->best);
}

/* a is popped before b */
static int bg_before(const struct bigram *a, const struct bigram *b)
{
    return a->prio > b->prio || (a->prio == b->prio && a->left < b->left);
}

static int heap_push(struct work *w, struct bigram bg)
{
    if (w->n_heap == w->cap_heap) {
        size_t nc = w->cap_heap ? w->cap_heap * 2 : 64;
        struct bigram *nh = realloc(w->heap, nc * sizeof(*nh));
        if (!nh)
            return LAMINA_ENOMEM;
        w->heap = nh;
        w->cap_heap = nc;
    }
    size_t i = w->n_heap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!bg_before(&bg, &w->heap[p]))
            break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = bg;
    return 0;
}

static struct bigram heap_pop(struct work *w)
{
    struct bigram top = w->heap[0];
    struct bigram last = w->heap[--w->n_heap];
    size_t i = 0, n = w->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && bg_before(&w->heap[c + 1], &w->heap[c]))
            c++;
        if (!bg_before(&w->heap[c], &last))
            break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n > 0)
        w->heap[i] = last;
    return top;
}

/* Split w->buf[from..to) into one symbol per UTF-8 character. */
static int make_syms(struct work *w, size_t from, size_t to)
{
    w->n_syms = 0;
    w->n_heap = 0;
    size_t need = to - from;
    if (need > w->cap_syms) {
        struct sym *ns = realloc(w->syms, need * sizeof(*ns));
        if (!ns)
            return LAMINA_ENOMEM;
        w->syms = ns;
        w->cap_syms = need;
    }
    size_t p = from;
    while (p < to) {
        size_t l = lamina_utf8_len((unsigned char)w->buf.p[p]);
        if (l > to - p)
            l = to - p;
        struct sym *s = &w->syms[w->n_syms];
        s->off = p;
        s->n = l;
        s->prev = (int32_t)w->n_syms - 1;
        s->next = p + l < to ? (int32_t)w->n_syms + 1 : -1;
        w->n_syms++;
        p += l;
    }
    return 0;
}

/* SPM: queue the pair (l, r) when their concatenation is a vocab token. */
static int spm_try_pair(const lamina_tokenizer *t, struct work *w, int32_t l, int32_t r)
{
    if (l < 0 || r < 0)
        return 0;
    size_t n = w->syms[l].n + w->syms[r].n;
    lamina_token id = vocab_find(t, w->buf.p + w->syms[l].off, n);
    if (id == LAMINA_TOKEN_NONE)
        return 0;
    struct bigram bg = {t->scores[id], l, r, n};
    return heap_push(w, bg);
}

/* BPE: queue the pair (l, r) when "l r" is a merge. */
static int bpe_try_pair(const lamina_tokenizer *t, struct work *w, int32_t l, int32_t r)
{
    if (l < 0 || r < 0)
        return 0;
    const struct sym *a = &w->syms[l], *b = &w->syms[r];
    w->key.n = 0;
    if (bb_add(&w->key, w->buf.p + a->off, a->n) || bb_add(&w->key, " ", 1) ||
        bb_add(&w->key, w->buf.p + b->off, b->n))
        return LAMINA_ENOMEM;
    int32_t rank = merge_find(t, w->key.p, w->key.n);
    if (rank < 0)
        return 0;
    struct bigram bg = {-(double)rank, l, r, a->n + b->n};
    return heap_push(w, bg);
}

/* Run the merge loop over the symbols; bpe selects the pair rule. */
static int merge_loop(const lamina_tokenizer *t, struct work *w, int bpe)
{
    int rc;
    for (size_t i = 1; i < w->n_syms; i++) {
        rc = bpe ? bpe_try_pair(t, w, (int32_t)i - 1, (int32_t)i)
                 : spm_try_pair(t, w, (int32_t)i - 1, (int32_t)i);
        if (rc)
            return rc;
    }
    while (w->n_heap > 0) {
        struct bigram bg = heap_pop(w);
        struct sym *l = &w->syms[bg.left], *r = &w->syms[bg.right];
        /* stale: one side already merged elsewhere */
        if (l->n == 0 || r->n == 0 || l->n + r->n != bg.size)
            continue;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            w->syms[r->next].prev = bg.left;
        rc = bpe ? bpe_try_pair(t, w, l->prev, bg.left) : spm_try_pair(t, w, l->prev, bg.left);
        if (rc)
            return rc;
        rc = bpe ? bpe_try_pair(t, w, bg.left, l->next) : spm_try_pair(t, w, bg.left, l->next);
        if (rc)
            return rc;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* SentencePiece                                                            */

static int spm_encode_raw(const lamina_tokenizer *t, struct work *w, const char *s, size_t n,
                          int space_prefix, struct tokvec *out)
{
    int rc;
    /* Step 1: escape spaces as U+2581, with an optional leading one. */
    w->buf.n = 0;
    if (space_prefix && bb_add(&w->buf, "\xE2\x96\x81", 3))
        return LAMINA_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        rc = s[i] == ' ' ? bb_add(&w->buf, "\xE2\x96\x81", 3) : bb_add(&w->buf, s + i, 1);
        if (rc)
            return LAMINA_ENOMEM;
    }
    if (w->buf.n == 0)
        return 0;
    /* Step 2: characters, then merge the best-scoring pairs. */
    if ((rc = make_syms(w, 0, w->buf.n)) || (rc = merge_loop(t, w, 0)))
        return rc;
    /* Step 3: emit; a piece not in the vocabulary goes out byte by byte. */
    for (int32_t i = 0; i != -1 && w->n_syms > 0; i = w->syms[i].next) {
        const struct sym *sy = &w->syms[i];
        lamina_token id = vocab_find(t, w->buf.p + sy->off, sy->n);
        if (id != LAMINA_TOKEN_NONE) {
            if (tv_push(out, id))
                return LAMINA_ENOMEM;
            continue;
        }
        for (size_t k = 0; k < sy->n; k++) {
            lamina_token b = t->byte_tok[(unsigned char)w->buf.p[sy->off + k]];
            if (b != LAMINA_TOKEN_NONE && tv_push(out, b))
                return LAMINA_ENOMEM;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* byte-level BPE                                                           */

/* Code points of s[0..n) and their flags into w (cps, cpf; cpo: byte
 * offsets, [nc + 1]); the word bound scratch sized to match.  Returns the
 * count in *nc.  LAMINA_ENOMEM. */
static int decode_cps(struct work *w, const char *s, size_t n, size_t *nc_out)
{
    if (n + 1 > w->cap_cps) {
        uint32_t *nc = realloc(w->cps, (n + 1) * sizeof(uint32_t));
        if (!nc)
            return LAMINA_ENOMEM;
        w->cps = nc;
        size_t *no = realloc(w->cpo, (n + 1) * sizeof(size_t));
        if (!no)
            return LAMINA_ENOMEM;
        w->cpo = no;
        uint8_t *nf = realloc(w->cpf, n + 1);
        if (!nf)
            return LAMINA_ENOMEM;
        w->cpf = nf;
        size_t *nb = realloc(w->bnd, (n + 1) * sizeof(size_t));
        if (!nb)
            return LAMINA_ENOMEM;
        w->bnd = nb;
        size_t *nt = realloc(w->bnd_tmp, (n + 1) * sizeof(size_t));
        if (!nt)
            return LAMINA_ENOMEM;
        w->bnd_tmp = nt;
        w->cap_cps = n + 1;
    }
    size_t nc = 0, p = 0;
    while (p < n) {
        w->cpo[nc] = p;
        p += utf8_decode((const unsigned char *)s + p, n - p, &w->cps[nc]);
        w->cpf[nc] = cp_flags(w->cps[nc]);
        nc++;
    }
    w->cpo[nc] = n;
    *nc_out = nc;
    return 0;
}

static int bpe_encode_word(const lamina_tokenizer *t, struct work *w, const char *s, size_t n,
                           struct tokvec *out)
{
    int rc;
    const unsigned flags = t->rules->flags;
    const int raw = (flags & RULE_RAW_UTF8) != 0;
    /* Step 1: the text to merge: bytes mapped to the code points standing
     * for them, or (raw UTF-8 vocabularies) the bytes themselves. */
    w->buf.n = 0;
    if (raw) {
        if (bb_add(&w->buf, s, n))
            return LAMINA_ENOMEM;
    } else {
        for (size_t i = 0; i < n; i++) {
            char u[4];
            size_t l = cp_to_utf8(byte_to_cp((unsigned char)s[i]), u);
            if (bb_add(&w->buf, u, l))
                return LAMINA_ENOMEM;
        }
    }
    /* Step 2: a whole word that is a token, taken as is where the rules say. */
    int whole = (flags & RULE_WHOLE_WORDS) != 0;
    if (!whole && (flags & RULE_WHOLE_NEWLINES) && n > 0) {
        whole = 1;
        for (size_t i = 0; i < n && whole; i++)
            whole = s[i] == '\n';
    }
    if (whole) {
        lamina_token id = vocab_find(t, w->buf.p, w->buf.n);
        if (id != LAMINA_TOKEN_NONE)
            return tv_push(out, id);
    }
    /* Step 3: characters, merged by rank. */
    if ((rc = make_syms(w, 0, w->buf.n)) || (rc = merge_loop(t, w, 1)))
        return rc;
    /* Step 4: emit; unknown pieces byte by byte where those exist ("<0xNN>"
     * tokens for raw UTF-8; else, as llama.cpp, each byte of the mapped
     * text looked up alone). */
    for (int32_t i = 0; i != -1 && w->n_syms > 0; i = w->syms[i].next) {
        const struct sym *sy = &w->syms[i];
        lamina_token id = vocab_find(t, w->buf.p + sy->off, sy->n);
        if (id != LAMINA_TOKEN_NONE) {
            if (tv_push(out, id))
                return LAMINA_ENOMEM;
            continue;
        }
        for (size_t k = 0; k < sy->n; k++) {
            lamina_token b = raw ? t->hex_tok[(unsigned char)w->buf.p[sy->off + k]]
                                 : vocab_find(t, w->buf.p + sy->off + k, 1);
            if (b != LAMINA_TOKEN_NONE && tv_push(out, b))
                return LAMINA_ENOMEM;
        }
    }
    return 0;
}

static int bpe_encode_raw(const lamina_tokenizer *t, struct work *w, const char *s, size_t n,
                          struct tokvec *out)
{
    int rc;
    /* Step 1: raw UTF-8 vocabularies write spaces as U+2581. */
    if (t->rules->flags & RULE_RAW_UTF8) {
        w->esc.n = 0;
        for (size_t i = 0; i < n; i++) {
            rc = s[i] == ' ' ? bb_add(&w->esc, "\xE2\x96\x81", 3) : bb_add(&w->esc, s + i, 1);
            if (rc)
                return LAMINA_ENOMEM;
        }
        s = w->esc.p;
        n = w->esc.n;
    }
    /* Step 2: code points, then the words of the pre-tokenizer's passes. */
    size_t nc, nb;
    if ((rc = decode_cps(w, s, n, &nc)))
        return rc;
    split_words(t->rules, w->cps, w->cpf, nc, w->bnd, w->bnd_tmp, &nb);
    /* Step 3: each word merged separately. */
    size_t from = 0;
    for (size_t k = 0; k < nb; k++) {
        size_t to = w->bnd[k];
        rc = bpe_encode_word(t, w, s + w->cpo[from], w->cpo[to] - w->cpo[from], out);
        if (rc)
            return rc;
        from = to;
    }
    return 0;
}

int lamina_tokenizer_pretok_split(int kind, const char *s, size_t n, size_t *bounds,
                                  size_t max_bounds, size_t *n_bounds)
{
    const struct pretok_rules *r = rules_of(kind);
    if (r == NULL)
        return LAMINA_EINVAL;
    struct work w;
    memset(&w, 0, sizeof(w));
    size_t nc, nb;
    if (decode_cps(&w, s, n, &nc)) {
        work_free(&w);
        return LAMINA_ENOMEM;
    }
    split_words(r, w.cps, w.cpf, nc, w.bnd, w.bnd_tmp, &nb);
    for (size_t i = 0; i < nb && i < max_bounds; i++)
        bounds[i] = w.cpo[w.bnd[i]];
    *n_bounds = nb;
    work_free(&w);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* WordPiece                                                                */

/* CJK ideographs that BERT's normalizer sets apart as words of their own
 * (as the tokenizers library has them, Extension C starting at U+2B920). */
static int is_cjk_ideograph(uint32_t c)
{
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
           (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* One word, written with its leading U+2581 (word-start tokens carry it,
 * continuations do not): longest tokens first, left to right; if some
 * position matches nothing the whole word is unk. */
static int wpm_word(const lamina_tokenizer *t, const char *s, size_t n, struct tokvec *out)
{
    size_t mark = out->n;
    for (size_t i = 0; i < n;) {
        size_t l = n - i < t->max_token_len ? n - i : t->max_token_len;
        lamina_token id = LAMINA_TOKEN_NONE;
        for (; l > 0; l--)
            if ((id = vocab_find(t, s + i, l)) != LAMINA_TOKEN_NONE)
                break;
        if (id == LAMINA_TOKEN_NONE) {
            out->n = mark;
            break;
        }
        if (tv_push(out, id))
            return LAMINA_ENOMEM;
        i += l;
    }
    if (out->n == mark && t->unk != LAMINA_TOKEN_NONE)
        return tv_push(out, t->unk);
    return 0;
}

/* Words are collected in w->buf after the U+2581 that marks a word start. */
#define WPM_START "\xE2\x96\x81"
#define WPM_START_LEN 3

/* Tokenize the word collected so far, if any, and start a new one. */
static int wpm_end_word(const lamina_tokenizer *t, struct work *w, struct tokvec *out)
{
    int rc = 0;
    if (w->buf.n > WPM_START_LEN)
        rc = wpm_word(t, w->buf.p, w->buf.n, out);
    w->buf.n = WPM_START_LEN;
    return rc;
}

static int wpm_encode_raw(const lamina_tokenizer *t, struct work *w, const char *s, size_t n,
                          struct tokvec *out)
{
    int rc;
    w->buf.n = 0;
    if (bb_add(&w->buf, WPM_START, WPM_START_LEN))
        return LAMINA_ENOMEM;
    /* Normalize (accents, case); split at white space and around
     * punctuation, ASCII symbols and CJK ideographs; tokenize each word. */
    for (size_t p = 0; p < n;) {
        uint32_t c;
        p += utf8_decode((const unsigned char *)s + p, n - p, &c);
        if (c & CP_INVALID)
            continue; /* as U+FFFD: dropped */
        if (t->wpm_strip_accents)
            c = cp_nfd_base(c);
        uint8_t f = cp_flags(c);
        if (IS_WS(f)) {
            if ((rc = wpm_end_word(t, w, out)))
                return rc;
            continue;
        }
        int cat = F_CAT(f);
        if (c == 0 || c == 0xFFFD || cat == TOK_CAT_CONTROL)
            continue;
        if (t->wpm_strip_accents && cat == TOK_CAT_MARK)
            continue;
        char u[4];
        size_t l = cp_to_utf8(t->wpm_lower ? cp_lower(c) : c, u);
        if (cat == TOK_CAT_PUNCT || (c < 0x7F && cat == TOK_CAT_SYMBOL) || is_cjk_ideograph(c)) {
            /* a word of its own */
            if ((rc = wpm_end_word(t, w, out)) || (rc = bb_add(&w->buf, u, l)) ||
                (rc = wpm_end_word(t, w, out)))
                return rc;
        } else if (bb_add(&w->buf, u, l)) {
            return LAMINA_ENOMEM;
        }
    }
    return wpm_end_word(t, w, out);
}

/* ------------------------------------------------------------------------ */
/* unigram                                                                  */

/* Length of the longest prefix of s[0..n) that some user-defined token
 * starts with (such a prefix is passed through unnormalized, as llama.cpp
 * does). */
static size_t ugm_user_prefix(const lamina_tokenizer *t, const char *s, size_t n)
{
    if (!t->ugm_user_first[(unsigned char)s[0]])
        return 0;
    size_t best = 0;
    for (size_t k = 0; k < t->n_ugm_user; k++) {
        size_t l;
        const char *u = tok_text(t, t->ugm_user[k], &l);
        size_t m = 0;
        while (m < l && m < n && u[m] == s[m])
            m++;
        if (m > best)
            best = m;
    }
    return best;
}

/* Normalize s[0..n) into w->buf: each piece (a user-defined token's
 * prefix, else the charsmap's replacement of the longest prefix it knows,
 * else one UTF-8 character, else U+FFFD for one invalid byte), its spaces
 * escaped as U+2581, a space before the first word when add_space_prefix
 * says, or before every word with extra spaces removed. */
static int ugm_normalize(const lamina_tokenizer *t, struct work *w, const char *s, size_t n)
{
    static const char esc[3] = {'\xE2', '\x96', '\x81'};
    int prepended = 0, in_word = 0;
    w->buf.n = 0;
    for (size_t i = 0; i < n;) {
        const char *r = s + i;
        size_t rl, used = ugm_user_prefix(t, s + i, n - i);
        if (used > 0) {
            rl = used;
        } else if ((used = charsmap_match(t, s + i, n - i, &r, &rl)) == 0) {
            r = s + i;
            rl = used = utf8_valid_len((const unsigned char *)s + i, n - i);
            if (used == 0) {
                r = "\xEF\xBF\xBD";
                rl = 3;
                used = 1;
            }
        }
        for (size_t k = 0; k < rl; k++) {
            if (r[k] != ' ') {
                if (!in_word) {
                    in_word = 1;
                    if ((t->add_space_prefix && !prepended) || t->remove_extra_ws) {
                        if (bb_add(&w->buf, esc, 3))
                            return LAMINA_ENOMEM;
                        prepended = 1;
                    }
                }
                if (bb_add(&w->buf, r + k, 1))
                    return LAMINA_ENOMEM;
            } else {
                in_word = 0;
                if (!t->remove_extra_ws && bb_add(&w->buf, esc, 3))
                    return LAMINA_ENOMEM;
            }
        }
        i += used;
    }
    return 0;
}

/* The best segmentation ending at a byte offset of the normalized text. */
struct ugm_best {
    lamina_token id;
    size_t from;
    double score;
};

static int ugm_encode_raw(const lamina_tokenizer *t, struct work *w, const char *s, size_t n,
                          struct tokvec *out)
{
    int rc;
    /* Step 1: normalize. */
    if ((rc = ugm_normalize(t, w, s, n)))
        return rc;
    const char *b = w->buf.p;
    size_t len = w->buf.n;
    if (len == 0)
        return 0;
    /* Step 2: Viterbi, one character at a time: every token starting there
     * (user-defined ones scored 0) improves the best score at its end; a
     * character no token of its own length covers may also be unk, at the
     * lowest normal score minus 10.  Sums in double, as SentencePiece. */
    if (len + 1 > w->cap_best) {
        if (len + 1 > SIZE_MAX / sizeof(struct ugm_best))
            return LAMINA_ENOMEM;
        struct ugm_best *nb = realloc(w->best, (len + 1) * sizeof(*nb));
        if (!nb)
            return LAMINA_ENOMEM;
        w->best = nb;
        w->cap_best = len + 1;
    }
    struct ugm_best *best = w->best;
    for (size_t i = 0; i <= len; i++) {
        best[i].id = t->unk;
        best[i].from = 0;
        best[i].score = -DBL_MAX;
    }
    best[0].score = 0;
    for (size_t off = 0; off < len;) {
        size_t cl = lamina_utf8_len((unsigned char)b[off]);
        if (cl > len - off)
            cl = len - off;
        size_t max = len - off < t->ugm_max_len ? len - off : t->ugm_max_len;
        double here = best[off].score;
        int whole_char = 0;
        uint64_t h = FNV_BASIS;
        for (size_t l = 1; l <= max; l++) {
            h = FNV_STEP(h, b[off + l - 1]);
            lamina_token id = vocab_find_hashed(t, b + off, l, hash_mix(h));
            if (id == LAMINA_TOKEN_NONE || !ugm_matchable(t->types[id]))
                continue;
            if (l == cl)
                whole_char = 1;
            double sc = here + (t->types[id] == LAMINA_TOKTYPE_USER_DEFINED ? 0.0 : (double)t->scores[id]);
            if (sc > best[off + l].score) {
                best[off + l].id = id;
                best[off + l].from = off;
                best[off + l].score = sc;
            }
        }
        if (!whole_char) {
            double sc = here + (double)t->ugm_unk_score;
            if (sc > best[off + cl].score) {
                best[off + cl].id = t->unk;
                best[off + cl].from = off;
                best[off + cl].score = sc;
            }
        }
        off += cl;
    }
    /* Step 3: back from the end; a run of unknowns is one unk. */
    size_t mark = out->n;
    int prev_unk = 0;
    for (size_t pos = len;;) {
        const struct ugm_best *e = &best[pos];
        int is_unk = e->id == t->unk;
        if (!(prev_unk && is_unk) && e->id != LAMINA_TOKEN_NONE && tv_push(out, e->id))
            return LAMINA_ENOMEM;
        if (e->from == 0)
            break;
        prev_unk = is_unk;
        pos = e->from;
    }
    for (size_t i = mark, j = out->n; i + 1 < j; i++, j--) {
        lamina_token x = out->v[i];
        out->v[i] = out->v[j - 1];
        out->v[j - 1] = x;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* encode / decode                                                          */

int lamina_tokenizer_encode(const lamina_tokenizer *t, const char *text, size_t len,
                            unsigned flags, lamina_token **out, size_t *n_out,
                            char *err, size_t err_size)
{
    struct tokvec tv = {0};
    struct fragvec fv = {0};
    struct work w;
    int rc = 0;

    if (t == NULL || out == NULL || n_out == NULL || (text == NULL && len > 0))
        return fail(err, err_size, LAMINA_EINVAL, "tokenize: NULL argument");
    *out = NULL;
    *n_out = 0;
    memset(&w, 0, sizeof(w));
    int add_special = (flags & LAMINA_TOKENIZE_ADD_SPECIAL) != 0;

    /* Step 1: special tokens out of the raw text. */
    if ((rc = partition(t, text, len, (flags & LAMINA_TOKENIZE_PARSE_SPECIAL) != 0, &fv)))
        goto oom;
    /* Step 2: BOS. */
    if (add_special && t->add_bos && (rc = tv_push(&tv, t->bos)))
        goto oom;
    /* Step 3: each fragment. */
    int prev_special = 1;
    for (size_t f = 0; f < fv.n; f++) {
        const struct frag *fr = &fv.v[f];
        if (fr->tok >= 0) {
            rc = tv_push(&tv, fr->tok);
            prev_special = 1;
        } else if (t->kind == LAMINA_TOKENIZER_SPM) {
            rc = spm_encode_raw(t, &w, text + fr->off, fr->len,
                                t->add_space_prefix && prev_special, &tv);
            prev_special = 0;
        } else if (t->kind == LAMINA_TOKENIZER_WPM) {
            rc = wpm_encode_raw(t, &w, text + fr->off, fr->len, &tv);
        } else if (t->kind == LAMINA_TOKENIZER_UGM) {
            rc = ugm_encode_raw(t, &w, text + fr->off, fr->len, &tv);
        } else {
            rc = bpe_encode_raw(t, &w, text + fr->off, fr->len, &tv);
        }
        if (rc)
            goto oom;
    }
    /* Step 4: EOS (WordPiece: SEP). */
    if (add_special && t->add_eos && (rc = tv_push(&tv, t->eos)))
        goto oom;
    if (add_special && t->sep != LAMINA_TOKEN_NONE && (rc = tv_push(&tv, t->sep)))
        goto oom;

    *out = tv.v;
    *n_out = tv.n;
    tv.v = NULL;
    goto done;
oom:
    rc = fail(err, err_size, LAMINA_ENOMEM, "tokenize: out of memory");
done:
    free(tv.v);
    free(fv.v);
    work_free(&w);
    return rc;
}

int lamina_tokenizer_encode_pair(const lamina_tokenizer *t, const char *a, size_t alen, const char *b,
                                 size_t blen, lamina_token **out, size_t *n_out, size_t *n_first,
                                 char *err, size_t err_size)
{
    lamina_token *ta = NULL, *tb = NULL, *v = NULL;
    size_t na = 0, nb = 0, n = 0;
    int rc;
    if (out == NULL || n_out == NULL)
        return fail(err, err_size, LAMINA_EINVAL, "tokenize: NULL argument");
    *out = NULL;
    *n_out = 0;
    if ((rc = lamina_tokenizer_encode(t, a, alen, 0, &ta, &na, err, err_size)) ||
        (rc = lamina_tokenizer_encode(t, b, blen, 0, &tb, &nb, err, err_size)))
        goto out;
    if (!(v = malloc((na + nb + 4) * sizeof *v))) {
        rc = fail(err, err_size, LAMINA_ENOMEM, "tokenize: out of memory");
        goto out;
    }
    /* frame: pair[0] a pair[1] pair[2] b pair[3] */
    if (t->pair[0] != LAMINA_TOKEN_NONE)
        v[n++] = t->pair[0];
    for (size_t i = 0; i < na; i++)
        v[n++] = ta[i];
    for (int k = 1; k <= 2; k++)
        if (t->pair[k] != LAMINA_TOKEN_NONE)
            v[n++] = t->pair[k];
    if (n_first)
        *n_first = n;
    for (size_t i = 0; i < nb; i++)
        v[n++] = tb[i];
    if (t->pair[3] != LAMINA_TOKEN_NONE)
        v[n++] = t->pair[3];
    *out = v;
    *n_out = n;
out:
    free(ta);
    free(tb);
    return rc;
}

const char *lamina_tokenizer_piece(const lamina_tokenizer *t, lamina_token id,
                                   int render_special, size_t *len)
{
    *len = 0;
    if (t == NULL || id < 0 || id >= t->n_vocab)
        return "";
    int ty = t->types[id];
    if (!render_special && (ty == LAMINA_TOKTYPE_CONTROL || ty == LAMINA_TOKTYPE_UNKNOWN))
        return "";
    *len = t->piece_off[id + 1] - t->piece_off[id];
    return t->piece + t->piece_off[id];
}

int lamina_tokenizer_decode(const lamina_tokenizer *t, const lamina_token *ids, size_t n,
                            unsigned flags, char **out, size_t *out_len,
                            char *err, size_t err_size)
{
    struct bytebuf b = {0};
    if (t == NULL || out == NULL || (ids == NULL && n > 0))
        return fail(err, err_size, LAMINA_EINVAL, "detokenize: NULL argument");
    *out = NULL;
    size_t i = 0;
    /* unigram: the first piece loses the space its prefix added, as
     * llama_detokenize does */
    int strip_space = t->kind == LAMINA_TOKENIZER_UGM && t->add_space_prefix;
    if ((flags & LAMINA_DECODE_SKIP_BOS) && n > 0 && ids[0] == t->bos && t->bos >= 0) {
        i = 1;
        strip_space = t->add_space_prefix;
    }
    for (; i < n; i++) {
        size_t l;
        const char *p = lamina_tokenizer_piece(t, ids[i], (flags & LAMINA_DECODE_RENDER_SPECIAL) != 0, &l);
        if (strip_space && l > 0 && p[0] == ' ') {
            p++;
            l--;
        }
        strip_space = 0;
        if (bb_add(&b, p, l))
            goto oom;
    }
    if (bb_add(&b, "", 1))
        goto oom;
    *out = b.p;
    if (out_len)
        *out_len = b.n - 1;
    return 0;
oom:
    free(b.p);
    return fail(err, err_size, LAMINA_ENOMEM, "detokenize: out of memory");
}

/* ------------------------------------------------------------------------ */
/* queries                                                                  */

int32_t lamina_tokenizer_n_vocab(const lamina_tokenizer *t) { return t->n_vocab; }
int lamina_tokenizer_kind(const lamina_tokenizer *t) { return t->kind; }
lamina_token lamina_tokenizer_bos(const lamina_tokenizer *t) { return t->bos; }
lamina_token lamina_tokenizer_eos(const lamina_tokenizer *t) { return t->eos; }
lamina_token lamina_tokenizer_eot(const lamina_tokenizer *t) { return t->eot; }
lamina_token lamina_tokenizer_eom(const lamina_tokenizer *t) { return t->eom; }
lamina_token lamina_tokenizer_unk(const lamina_tokenizer *t) { return t->unk; }
int lamina_tokenizer_add_bos(const lamina_tokenizer *t) { return t->add_bos; }
const char *lamina_tokenizer_arch(const lamina_tokenizer *t) { return t->arch; }
const char *lamina_tokenizer_chat_template(const lamina_tokenizer *t) { return t->chat_template; }

int lamina_tokenizer_is_eog(const lamina_tokenizer *t, lamina_token id)
{
    return id >= 0 && id < t->n_vocab && t->eog[id];
}

const char *lamina_tokenizer_token_text(const lamina_tokenizer *t, lamina_token id, size_t *len)
{
    if (id < 0 || id >= t->n_vocab) {
        if (len)
            *len = 0;
        return NULL;
    }
    size_t l;
    const char *s = tok_text(t, id, &l);
    if (len)
        *len = l;
    return s;
}

int lamina_tokenizer_token_type(const lamina_tokenizer *t, lamina_token id)
{
    return (id >= 0 && id < t->n_vocab) ? t->types[id] : 0;
}

float lamina_tokenizer_token_score(const lamina_tokenizer *t, lamina_token id)
{
    return (id >= 0 && id < t->n_vocab) ? t->scores[id] : 0.0f;
}

lamina_token lamina_tokenizer_find(const lamina_tokenizer *t, const char *text, size_t len)
{
    return vocab_find(t, text, len);
}

/* ------------------------------------------------------------------------ */
/* streaming UTF-8                                                          */

void lamina_utf8_stream_init(lamina_utf8_stream *s)
{
    memset(s, 0, sizeof(*s));
}

/* Length of the trailing bytes of p[0..n) that form an incomplete but so
 * far valid UTF-8 sequence (0 if none). */
static size_t incomplete_tail(const unsigned char *p, size_t n)
{
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        unsigned char c = p[n - back];
        if ((c & 0xC0) == 0x80)
            continue; /* continuation: keep looking for the lead */
        size_t need = lamina_utf8_len(c);
        if (need == 1 || c >= 0xF8)
            return 0; /* ASCII or a byte that never starts a sequence */
        return need > back ? back : 0;
    }
    return 0;
}

size_t lamina_utf8_stream_push(lamina_utf8_stream *s, const char *piece, size_t len, char *out)
{
    size_t n = 0;
    memcpy(out, s->pending, s->n_pending);
    n = s->n_pending;
    if (len > 0)
        memcpy(out + n, piece, len);
    n += len;
    size_t hold = incomplete_tail((const unsigned char *)out, n);
    memcpy(s->pending, out + n - hold, hold);
    s->n_pending = (uint32_t)hold;
    return n - hold;
}

size_t lamina_utf8_stream_flush(lamina_utf8_stream *s, char *out)
{
    size_t n = s->n_pending;
    memcpy(out, s->pending, n);
    s->n_pending = 0;
    return n;
}
