/*
 * dump_logits.c - lamina's reference-data dumper for the llama.cpp peer.
 *
 * This is lamina's own code; it only links against a libllama built by
 * scripts/peer-build.sh (llama.cpp itself is never vendored in this repo).
 *
 * Usage:
 *   dump_logits logits   MODEL PROMPTS.hex [options] > out.json
 *   dump_logits tokenize MODEL STRINGS.hex [options] > out.json
 *   dump_logits embed    MODEL TEXTS.hex [options] > out.json
 *     (embeddings through llama.cpp's embeddings API: context params
 *     embeddings=true, pooling_type --pooling last|mean|cls (default last, what
 *     llama.cpp uses for a decoder model without <arch>.pooling_type), one
 *     llama_decode per text in sequence 0, llama_get_embeddings_seq; the
 *     vector as llama.cpp returns it, not normalised, plus its L2 norm)
 *     --pooling rank: a reranker (e.g. Qwen3-Reranker, <arch>.pooling_type
 *     4): llama_get_embeddings_seq gives llama_model_n_cls_out floats (for
 *     Qwen3 the softmax over the classifier labels [yes, no]), written
 *     where the vector goes; the input is a finished rerank prompt and is
 *     tokenized as llama-server's format_prompt_rerank does it
 *     (add_special=false, parse_special=true)
 *     --pooling rank --pairs: the input lines go by twos, a query and a
 *     document, framed as format_prompt_rerank does for a model without a
 *     rerank template (BERT cross-encoders): each text tokenized with
 *     add_special=false, parse_special=false; BOS if llama_vocab_get_add_bos,
 *     the query, EOS (SEP when the vocabulary has no EOS) if
 *     llama_vocab_get_add_eos, SEP if llama_vocab_get_add_sep, the
 *     document, EOS again if add_eos
 *
 * Input files hold one string per line, hex-encoded (the raw UTF-8 / raw
 * bytes of the string; an empty line is the empty string).  Hex keeps
 * control characters, newlines and invalid UTF-8 intact.
 *
 * Options:
 *   --threads N     (default 2)      --n-ctx N   (default 512)
 *   --n-batch N     (default 512)    --top-k N   (default 40)
 *   --n-probe N     (default 256)    --n-gen N   (default 24)
 *   --gen-top N     (default 8)      top-N logits recorded per greedy step
 *   --flash-attn auto|on|off (default auto = llama.cpp default)
 *   --kv-type f16|f32 (default f16 = llama.cpp default): K and V cache type
 *   --verbose       (pass llama.cpp logs through to stderr)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdarg.h>
#include <math.h>

#include "llama.h"
#include "ggml-backend.h"

#define PROBE_STRIDE 1031

static bool g_verbose = false;
static char g_fa_log[2048];
static size_t g_fa_log_len = 0;

static void log_cb(enum ggml_log_level level, const char *text, void *ud) {
    (void)level; (void)ud;
    if (g_verbose) fputs(text, stderr);
    if ((strstr(text, "flash") || strstr(text, "Flash")) && g_fa_log_len + strlen(text) + 1 < sizeof(g_fa_log)) {
        memcpy(g_fa_log + g_fa_log_len, text, strlen(text));
        g_fa_log_len += strlen(text);
        g_fa_log[g_fa_log_len] = 0;
    }
}

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("dump_logits: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* ---------- input ---------- */

typedef struct { unsigned char *data; size_t len; } bstr;

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bstr *read_hex_lines(const char *path, size_t *n_out) {
    FILE *f = fopen(path, "rb");
    if (!f) die("cannot open %s", path);
    size_t cap = 16, n = 0;
    bstr *v = malloc(cap * sizeof(*v));
    char *line = NULL;
    size_t lcap = 0;
    ssize_t r;
    while ((r = getline(&line, &lcap, f)) >= 0) {
        while (r > 0 && (line[r - 1] == '\n' || line[r - 1] == '\r')) line[--r] = 0;
        if (r % 2) die("odd hex length in %s", path);
        if (n == cap) { cap *= 2; v = realloc(v, cap * sizeof(*v)); }
        v[n].len = (size_t)r / 2;
        v[n].data = malloc(v[n].len + 1);
        for (size_t i = 0; i < v[n].len; i++) {
            int hi = hexval(line[2 * i]), lo = hexval(line[2 * i + 1]);
            if (hi < 0 || lo < 0) die("bad hex in %s", path);
            v[n].data[i] = (unsigned char)(hi * 16 + lo);
        }
        v[n].data[v[n].len] = 0;
        n++;
    }
    free(line);
    fclose(f);
    *n_out = n;
    return v;
}

/* ---------- JSON output ---------- */

/* length of a valid UTF-8 sequence at s (max n bytes), or 0 if invalid */
static size_t utf8_valid_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80) return 1;
    else if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
    else return 0;
    if (len > n) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return 0;
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

/* JSON string; invalid UTF-8 bytes become U+FFFD (use the _hex twin for exact bytes) */
static void json_str(FILE *o, const unsigned char *s, size_t n) {
    fputc('"', o);
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            switch (c) {
                case '"':  fputs("\\\"", o); break;
                case '\\': fputs("\\\\", o); break;
                case '\n': fputs("\\n", o); break;
                case '\r': fputs("\\r", o); break;
                case '\t': fputs("\\t", o); break;
                default:
                    if (c < 0x20 || c == 0x7F) fprintf(o, "\\u%04x", c);
                    else fputc((int)c, o);
            }
            i++;
        } else {
            size_t l = utf8_valid_len(s + i, n - i);
            if (l == 0) { fputs("\\ufffd", o); i++; }
            else { fwrite(s + i, 1, l, o); i += l; }
        }
    }
    fputc('"', o);
}

static void json_hex(FILE *o, const unsigned char *s, size_t n) {
    fputc('"', o);
    for (size_t i = 0; i < n; i++) fprintf(o, "%02x", s[i]);
    fputc('"', o);
}

static void json_float(FILE *o, double v) {
    if (isnan(v)) fputs("null", o);
    else if (isinf(v)) fputs(v > 0 ? "1e308" : "-1e308", o);
    else fprintf(o, "%.7g", v);
}

static void json_ids(FILE *o, const llama_token *ids, int n) {
    fputc('[', o);
    for (int i = 0; i < n; i++) fprintf(o, "%s%d", i ? "," : "", ids[i]);
    fputc(']', o);
}

/* ---------- llama helpers ---------- */

static llama_token *tokenize(const struct llama_vocab *vocab, const bstr *s, bool add_special,
                             bool parse_special, int *n_out) {
    int cap = (int)s->len + 16;
    llama_token *ids = malloc(sizeof(llama_token) * cap);
    int n = llama_tokenize(vocab, (const char *)s->data, (int32_t)s->len, ids, cap, add_special, parse_special);
    if (n < 0) {
        if (n == INT32_MIN) die("tokenize overflow");
        cap = -n;
        ids = realloc(ids, sizeof(llama_token) * cap);
        n = llama_tokenize(vocab, (const char *)s->data, (int32_t)s->len, ids, cap, add_special, parse_special);
        if (n < 0) die("tokenize failed");
    }
    *n_out = n;
    return ids;
}

static bstr detokenize(const struct llama_vocab *vocab, const llama_token *ids, int n, bool remove_special,
                       bool unparse_special) {
    bstr r;
    int cap = n * 16 + 64;
    r.data = malloc(cap);
    int m = llama_detokenize(vocab, ids, n, (char *)r.data, cap, remove_special, unparse_special);
    if (m < 0) {
        cap = -m + 1;
        r.data = realloc(r.data, cap);
        m = llama_detokenize(vocab, ids, n, (char *)r.data, cap, remove_special, unparse_special);
        if (m < 0) die("detokenize failed");
    }
    r.len = (size_t)m;
    return r;
}

static bstr piece(const struct llama_vocab *vocab, llama_token id, bool special) {
    bstr r;
    int cap = 64;
    r.data = malloc(cap);
    int m = llama_token_to_piece(vocab, id, (char *)r.data, cap, 0, special);
    if (m < 0) {
        cap = -m;
        r.data = realloc(r.data, cap);
        m = llama_token_to_piece(vocab, id, (char *)r.data, cap, 0, special);
        if (m < 0) die("token_to_piece failed");
    }
    r.len = (size_t)m;
    return r;
}

/* top-k by logit (desc), ties broken by lower id first */
static void topk(const float *row, int n_vocab, int k, int *ids, float *vals) {
    int have = 0;
    for (int t = 0; t < n_vocab; t++) {
        float v = row[t];
        if (have == k && !(v > vals[k - 1])) continue;
        int pos = have < k ? have : k - 1;
        while (pos > 0 && v > vals[pos - 1]) {
            vals[pos] = vals[pos - 1];
            ids[pos] = ids[pos - 1];
            pos--;
        }
        vals[pos] = v;
        ids[pos] = t;
        if (have < k) have++;
    }
}

static int argmax(const float *row, int n_vocab) {
    int best = 0;
    for (int t = 1; t < n_vocab; t++)
        if (row[t] > row[best]) best = t;
    return best;
}

/* ---------- main ---------- */

/* ---------- embed mode ---------- */

/* format_prompt_rerank without a template: the pair's tokens, malloc'd */
static llama_token *rerank_pair(const struct llama_vocab *vocab, const bstr *q, const bstr *d, int *n_out) {
    int nq = 0, nd = 0;
    llama_token *tq = tokenize(vocab, q, false, false, &nq);
    llama_token *td = tokenize(vocab, d, false, false, &nd);
    llama_token eos = llama_vocab_eos(vocab);
    if (eos == LLAMA_TOKEN_NULL) eos = llama_vocab_sep(vocab);
    llama_token *ids = malloc(sizeof(llama_token) * (size_t)(nq + nd + 4));
    if (!ids) die("out of memory");
    int n = 0;
    if (llama_vocab_get_add_bos(vocab)) ids[n++] = llama_vocab_bos(vocab);
    for (int i = 0; i < nq; i++) ids[n++] = tq[i];
    if (llama_vocab_get_add_eos(vocab)) ids[n++] = eos;
    if (llama_vocab_get_add_sep(vocab)) ids[n++] = llama_vocab_sep(vocab);
    for (int i = 0; i < nd; i++) ids[n++] = td[i];
    if (llama_vocab_get_add_eos(vocab)) ids[n++] = eos;
    free(tq);
    free(td);
    *n_out = n;
    return ids;
}

static int embed_main(const char *model_path, const char *input_path, int threads, int n_ctx, int n_batch,
                      const char *fa, const char *kv, const char *pooling, bool pairs) {
    llama_log_set(log_cb, NULL);
    ggml_backend_load_all();
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    struct llama_model *model = llama_model_load_from_file(model_path, mp);
    if (!model) die("failed to load model %s", model_path);
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    /* rank pooling returns n_cls_out scores per sequence, not a vector */
    const bool rank = !strcmp(pooling, "rank");
    const int n_embd = rank ? (int)llama_model_n_cls_out(model) : llama_model_n_embd(model);
    if (n_embd <= 0) die("--pooling rank: the model has no classifier outputs (<arch>.classifier.output_labels)");
    size_t n_in = 0;
    bstr *in = read_hex_lines(input_path, &n_in);
    if (pairs && (!rank || n_in % 2)) die("--pairs needs --pooling rank and an even number of lines");

    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)n_ctx;
    cp.n_batch = (uint32_t)n_batch;
    cp.n_ubatch = (uint32_t)n_batch;
    cp.n_seq_max = 1;
    cp.n_threads = threads;
    cp.n_threads_batch = threads;
    cp.no_perf = true;
    cp.embeddings = true;
    if (!strcmp(pooling, "last")) cp.pooling_type = LLAMA_POOLING_TYPE_LAST;
    else if (!strcmp(pooling, "mean")) cp.pooling_type = LLAMA_POOLING_TYPE_MEAN;
    else if (!strcmp(pooling, "cls")) cp.pooling_type = LLAMA_POOLING_TYPE_CLS;
    else if (rank) cp.pooling_type = LLAMA_POOLING_TYPE_RANK;
    else die("--pooling must be last|mean|cls|rank");
    if (!strcmp(fa, "on")) cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_ENABLED;
    else if (!strcmp(fa, "off")) cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    else if (!strcmp(fa, "auto")) cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_AUTO;
    else die("--flash-attn must be auto|on|off");
    if (!strcmp(kv, "f32")) cp.type_k = cp.type_v = GGML_TYPE_F32;
    else if (!strcmp(kv, "f16")) cp.type_k = cp.type_v = GGML_TYPE_F16;
    else die("--kv-type must be f16|f32");
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) die("failed to create context");

    FILE *o = stdout;
    char desc[256] = {0};
    llama_model_desc(model, desc, sizeof(desc));
    fputs("{\n\"tool\":{\"name\":\"lamina scripts/peer/dump_logits.c\",\"mode\":\"embed\",\"model_desc\":", o);
    json_str(o, (const unsigned char *)desc, strlen(desc));
    fprintf(o, ",\"n_embd\":%d,\"add_bos\":%s", n_embd, llama_vocab_get_add_bos(vocab) ? "true" : "false");
    if (rank) {   /* n_embd above is n_cls_out; name the outputs */
        fprintf(o, ",\"n_cls_out\":%d,\"cls_labels\":[", n_embd);
        for (int i = 0; i < n_embd; i++) {
            const char *l = llama_model_cls_label(model, (uint32_t)i);
            if (i) fputc(',', o);
            if (l) json_str(o, (const unsigned char *)l, strlen(l));
            else fputs("null", o);
        }
        fputc(']', o);
    }
    const char *sysinfo = llama_print_system_info();
    fputs(",\"system_info\":", o);
    json_str(o, (const unsigned char *)sysinfo, strlen(sysinfo));
    fprintf(o, "},\n\"settings\":{\"n_threads\":%d,\"n_ctx\":%u,\"n_batch\":%u,\"type_k\":\"%s\",\"flash_attn_type\":\"%s\","
               "\"embeddings\":true,\"pooling_type\":\"%s\",\"pooling_type_used\":%d,"
               "\"tokenize\":\"%s\","
               "\"eval\":\"llama_memory_clear, then the whole text in one llama_decode batch, seq 0, pos 0..n-1, every position an output\","
               "\"embedding\":\"%s\"},\n\"cases\":[\n",
            threads, llama_n_ctx(ctx), llama_n_batch(ctx), kv, fa, pooling, (int)llama_pooling_type(ctx),
            pairs ? "format_prompt_rerank without a template: [BOS] query [EOS] [SEP] document [EOS] as the "
                    "vocabulary adds them, each text llama_tokenize(add_special=false, parse_special=false)"
                  : rank ? "llama_tokenize(add_special=false, parse_special=true)"
                         : "llama_tokenize(add_special=true, parse_special=true)",
            rank ? "llama_get_embeddings_seq(ctx, 0): llama_model_n_cls_out rank scores (Qwen3: softmax over the labels)"
                 : "llama_get_embeddings_seq(ctx, 0): not normalised");
    for (size_t s = 0; s < n_in; s += pairs ? 2 : 1) {
        int n = 0;
        /* rerank prompts: no BOS/EOS added, special tokens parsed (llama-server) */
        llama_token *ids = pairs ? rerank_pair(vocab, &in[s], &in[s + 1], &n) : tokenize(vocab, &in[s], !rank, true, &n);
        if (n <= 0 || n > n_batch) die("text %zu: %d tokens (1..%d)", s, n, n_batch);
        llama_memory_clear(llama_get_memory(ctx), true);
        struct llama_batch b = llama_batch_init(n, 0, 1);
        for (int i = 0; i < n; i++) {
            b.token[i] = ids[i];
            b.pos[i] = i;
            b.n_seq_id[i] = 1;
            b.seq_id[i][0] = 0;
            b.logits[i] = 1;
        }
        b.n_tokens = n;
        if (llama_decode(ctx, b) != 0) die("llama_decode failed on text %zu", s);
        const float *e = llama_get_embeddings_seq(ctx, 0);
        if (!e) die("no embedding for text %zu", s);
        double ss = 0;
        for (int i = 0; i < n_embd; i++) ss += (double)e[i] * e[i];
        fputs(s ? ",\n{\"input\":" : "{\"input\":", o);
        json_str(o, in[s].data, in[s].len);
        fputs(",\"input_hex\":", o);
        json_hex(o, in[s].data, in[s].len);
        if (pairs) {
            fputs(",\"document\":", o);
            json_str(o, in[s + 1].data, in[s + 1].len);
        }
        fputs(",\"ids\":", o);
        json_ids(o, ids, n);
        fputs(",\"norm\":", o);
        json_float(o, sqrt(ss));
        fputs(",\"embedding\":[", o);
        for (int i = 0; i < n_embd; i++) { if (i) fputc(',', o); fprintf(o, "%.9g", (double)e[i]); }
        fputs("]}", o);
        llama_batch_free(b);
        free(ids);
    }
    fputs("\n]\n}\n", o);
    for (size_t s = 0; s < n_in; s++) free(in[s].data);
    free(in);
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s logits|tokenize MODEL INPUT.hex [options]\n", argv[0]);
        return 2;
    }
    const char *mode = argv[1], *model_path = argv[2], *input_path = argv[3];
    int threads = 2, n_ctx = 512, n_batch = 512, top_k = 40, n_probe = 256, n_gen = 24, gen_top = 8;
    const char *fa = "auto", *kv = "f16";
    const char *pooling = "last";      /* embed mode */
    bool pairs = false;
    for (int i = 4; i < argc; i++) {
        const char *a = argv[i];
        const char *val = (i + 1 < argc) ? argv[i + 1] : NULL;
#define INTOPT(name, var) if (!strcmp(a, name)) { if (!val) die("missing value for %s", a); var = atoi(val); i++; continue; }
        INTOPT("--threads", threads)
        INTOPT("--n-ctx", n_ctx)
        INTOPT("--n-batch", n_batch)
        INTOPT("--top-k", top_k)
        INTOPT("--n-probe", n_probe)
        INTOPT("--n-gen", n_gen)
        INTOPT("--gen-top", gen_top)
#undef INTOPT
        if (!strcmp(a, "--flash-attn")) { if (!val) die("missing value"); fa = val; i++; continue; }
        if (!strcmp(a, "--kv-type")) { if (!val) die("missing value"); kv = val; i++; continue; }
        if (!strcmp(a, "--verbose")) { g_verbose = true; continue; }
        if (!strcmp(a, "--pairs")) { pairs = true; continue; }
        if (!strcmp(a, "--pooling")) { if (!val) die("missing value"); pooling = val; i++; continue; }
        die("unknown option %s", a);
    }
    if (!strcmp(mode, "embed")) return embed_main(model_path, input_path, threads, n_ctx, n_batch, fa, kv, pooling, pairs);
    bool do_logits = !strcmp(mode, "logits");
    if (!do_logits && strcmp(mode, "tokenize")) die("mode must be logits or tokenize");

    llama_log_set(log_cb, NULL);
    ggml_backend_load_all();
    llama_backend_init();

    struct llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = 0;
    if (!do_logits) mp.vocab_only = true;
    struct llama_model *model = llama_model_load_from_file(model_path, mp);
    if (!model) die("failed to load model %s", model_path);
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    const int n_vocab = llama_vocab_n_tokens(vocab);

    size_t n_in = 0;
    bstr *in = read_hex_lines(input_path, &n_in);

    FILE *o = stdout;
    char desc[256] = {0};
    llama_model_desc(model, desc, sizeof(desc));

    fputs("{\n\"tool\":{\"name\":\"lamina scripts/peer/dump_logits.c\",\"mode\":", o);
    json_str(o, (const unsigned char *)mode, strlen(mode));
    fprintf(o, ",\"n_vocab\":%d,\"model_desc\":", n_vocab);
    json_str(o, (const unsigned char *)desc, strlen(desc));
    fprintf(o, ",\"add_bos\":%s,\"bos_id\":%d,\"eos_id\":%d",
            llama_vocab_get_add_bos(vocab) ? "true" : "false", llama_vocab_bos(vocab), llama_vocab_eos(vocab));
    const char *sysinfo = llama_print_system_info();
    fputs(",\"system_info\":", o);
    json_str(o, (const unsigned char *)sysinfo, strlen(sysinfo));

    if (!do_logits) {
        fputs("},\n\"settings\":{\"variants\":{"
              "\"special\":\"llama_tokenize(add_special=true, parse_special=true); "
              "text=llama_detokenize(remove_special=false, unparse_special=true); pieces=llama_token_to_piece(special=true)\","
              "\"plain\":\"llama_tokenize(add_special=false, parse_special=false); "
              "text=llama_detokenize(remove_special=false, unparse_special=false); pieces=llama_token_to_piece(special=false)\"}},\n"
              "\"cases\":[\n", o);
        for (size_t s = 0; s < n_in; s++) {
            fputs(s ? ",\n{" : "{", o);
            fputs("\"input\":", o);
            json_str(o, in[s].data, in[s].len);
            fputs(",\"input_hex\":", o);
            json_hex(o, in[s].data, in[s].len);
            for (int var = 0; var < 2; var++) {
                bool sp = var == 0;
                int n = 0;
                llama_token *ids = tokenize(vocab, &in[s], sp, sp, &n);
                bstr txt = detokenize(vocab, ids, n, false, sp);
                fprintf(o, ",\"%s\":{\"ids\":", sp ? "special" : "plain");
                json_ids(o, ids, n);
                fputs(",\"pieces_hex\":[", o);
                for (int i = 0; i < n; i++) {
                    bstr p = piece(vocab, ids[i], sp);
                    if (i) fputc(',', o);
                    json_hex(o, p.data, p.len);
                    free(p.data);
                }
                fputs("],\"detok\":", o);
                json_str(o, txt.data, txt.len);
                fputs(",\"detok_hex\":", o);
                json_hex(o, txt.data, txt.len);
                fprintf(o, ",\"roundtrip\":%s}", (txt.len == in[s].len && !memcmp(txt.data, in[s].data, txt.len)) ? "true" : "false");
                free(txt.data);
                free(ids);
            }
            fputc('}', o);
        }
        fputs("\n]\n}\n", o);
        llama_model_free(model);
        llama_backend_free();
        return 0;
    }

    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)n_ctx;
    cp.n_batch = (uint32_t)n_batch;
    cp.n_ubatch = (uint32_t)n_batch;
    cp.n_seq_max = 1;
    cp.n_threads = threads;
    cp.n_threads_batch = threads;
    cp.no_perf = true;
    if (!strcmp(fa, "on")) cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_ENABLED;
    else if (!strcmp(fa, "off")) cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    else if (!strcmp(fa, "auto")) cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_AUTO;
    else die("--flash-attn must be auto|on|off");
    if (!strcmp(kv, "f32")) cp.type_k = cp.type_v = GGML_TYPE_F32;
    else if (!strcmp(kv, "f16")) cp.type_k = cp.type_v = GGML_TYPE_F16;
    else die("--kv-type must be f16|f32");
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) die("failed to create context");

    int *probe = malloc(sizeof(int) * (n_probe > 0 ? n_probe : 1));
    for (int i = 0; i < n_probe; i++) probe[i] = (int)(((int64_t)i * PROBE_STRIDE) % n_vocab);

    fprintf(o, "},\n\"settings\":{\"n_threads\":%d,\"n_threads_batch\":%d,\"n_ctx\":%u,\"n_batch\":%u,\"n_ubatch\":%u,"
               "\"n_seq_max\":1,\"n_gpu_layers\":0,\"type_k\":\"%s\",\"type_v\":\"%s\",\"swa_full\":%s,"
               "\"flash_attn_type\":\"%s\",\"flash_attn_log\":",
            threads, threads, llama_n_ctx(ctx), llama_n_batch(ctx), llama_n_ubatch(ctx),
            kv, kv, cp.swa_full ? "true" : "false", fa);
    json_str(o, (const unsigned char *)g_fa_log, g_fa_log_len);
    fprintf(o, ",\"tokenize\":\"llama_tokenize(add_special=true, parse_special=true)\","
               "\"prompt_eval\":\"whole prompt in one llama_decode batch, seq 0, pos 0..n-1, logits for every position\","
               "\"top_k\":%d,\"top_order\":\"logit desc, ties by lower id\","
               "\"probe_rule\":\"probe_ids[i] = (i*%d) %% n_vocab, i=0..%d\",\"stats\":\"max/mean/std over the full "
               "logit row, std = population std (divide by n_vocab), computed in double\","
               "\"greedy\":\"%d tokens, argmax (lowest id on ties), fed back one token per llama_decode; does not stop at EOG\","
               "\"greedy_top_k\":%d,\"greedy_text\":\"llama_detokenize(greedy_ids, remove_special=false, unparse_special=false)\","
               "\"greedy_text_special\":\"same with unparse_special=true\",\"memory\":\"llama_memory_clear before each prompt\"},\n",
            top_k, PROBE_STRIDE, n_probe - 1, n_gen, gen_top);
    fputs("\"probe_ids\":", o);
    json_ids(o, probe, n_probe);
    fputs(",\n\"prompts\":[\n", o);

    int *tids = malloc(sizeof(int) * (top_k > gen_top ? top_k : gen_top));
    float *tvals = malloc(sizeof(float) * (top_k > gen_top ? top_k : gen_top));

    for (size_t s = 0; s < n_in; s++) {
        int n = 0;
        llama_token *ids = tokenize(vocab, &in[s], true, true, &n);
        if (n == 0) die("prompt %zu tokenized to nothing", s);
        if (n + n_gen > n_ctx || n > n_batch) die("prompt %zu too long (%d tokens)", s, n);

        llama_memory_clear(llama_get_memory(ctx), true);

        struct llama_batch b = llama_batch_init(n, 0, 1);
        for (int i = 0; i < n; i++) {
            b.token[i] = ids[i];
            b.pos[i] = i;
            b.n_seq_id[i] = 1;
            b.seq_id[i][0] = 0;
            b.logits[i] = 1;
        }
        b.n_tokens = n;
        if (llama_decode(ctx, b) != 0) die("llama_decode failed on prompt %zu", s);

        fputs(s ? ",\n{" : "{", o);
        fputs("\"text\":", o);
        json_str(o, in[s].data, in[s].len);
        fputs(",\"tokens\":", o);
        json_ids(o, ids, n);
        fputs(",\"positions\":[", o);
        int next = 0;
        for (int i = 0; i < n; i++) {
            const float *row = llama_get_logits_ith(ctx, i);
            if (!row) die("no logits for position %d", i);
            double sum = 0, mx = -INFINITY;
            for (int t = 0; t < n_vocab; t++) {
                sum += row[t];
                if (row[t] > mx) mx = row[t];
            }
            double mean = sum / n_vocab, var = 0;
            for (int t = 0; t < n_vocab; t++) {
                double d = row[t] - mean;
                var += d * d;
            }
            double sd = sqrt(var / n_vocab);
            topk(row, n_vocab, top_k, tids, tvals);
            fprintf(o, "%s\n {\"pos\":%d,\"token\":%d,\"max\":", i ? "," : "", i, ids[i]);
            json_float(o, mx);
            fputs(",\"mean\":", o);
            json_float(o, mean);
            fputs(",\"std\":", o);
            json_float(o, sd);
            fputs(",\"top\":[", o);
            for (int k = 0; k < top_k; k++) {
                fprintf(o, "%s[%d,", k ? "," : "", tids[k]);
                json_float(o, tvals[k]);
                fputc(']', o);
            }
            fputs("],\"probe\":[", o);
            for (int k = 0; k < n_probe; k++) {
                if (k) fputc(',', o);
                json_float(o, row[probe[k]]);
            }
            fputs("]}", o);
            if (i == n - 1) next = argmax(row, n_vocab);
        }
        fputs("],\n\"greedy_ids\":[", o);
        llama_batch_free(b);

        llama_token *gen = malloc(sizeof(llama_token) * (n_gen > 0 ? n_gen : 1));
        int first_eog = -1;
        /* per-step top list: step 0 comes from the last prompt position */
        float *step_top_v = malloc(sizeof(float) * (size_t)(n_gen > 0 ? n_gen : 1) * gen_top);
        int *step_top_i = malloc(sizeof(int) * (size_t)(n_gen > 0 ? n_gen : 1) * gen_top);
        {
            const float *row = llama_get_logits_ith(ctx, n - 1);
            topk(row, n_vocab, gen_top, step_top_i, step_top_v);
        }
        struct llama_batch b1 = llama_batch_init(1, 0, 1);
        for (int g = 0; g < n_gen; g++) {
            gen[g] = next;
            if (first_eog < 0 && llama_vocab_is_eog(vocab, next)) first_eog = g;
            if (g == n_gen - 1) break;
            b1.token[0] = next;
            b1.pos[0] = n + g;
            b1.n_seq_id[0] = 1;
            b1.seq_id[0][0] = 0;
            b1.logits[0] = 1;
            b1.n_tokens = 1;
            if (llama_decode(ctx, b1) != 0) die("llama_decode failed during generation");
            const float *row = llama_get_logits_ith(ctx, -1);
            next = argmax(row, n_vocab);
            topk(row, n_vocab, gen_top, step_top_i + (size_t)(g + 1) * gen_top, step_top_v + (size_t)(g + 1) * gen_top);
        }
        llama_batch_free(b1);
        for (int g = 0; g < n_gen; g++) fprintf(o, "%s%d", g ? "," : "", gen[g]);
        fprintf(o, "],\"greedy_first_eog\":%d,\"greedy_text\":", first_eog);
        bstr gt = detokenize(vocab, gen, n_gen, false, false);
        json_str(o, gt.data, gt.len);
        fputs(",\"greedy_text_hex\":", o);
        json_hex(o, gt.data, gt.len);
        free(gt.data);
        gt = detokenize(vocab, gen, n_gen, false, true);
        fputs(",\"greedy_text_special\":", o);
        json_str(o, gt.data, gt.len);
        free(gt.data);
        fputs(",\n\"greedy_top\":[", o);
        for (int g = 0; g < n_gen; g++) {
            fputs(g ? ",[" : "[", o);
            for (int k = 0; k < gen_top; k++) {
                fprintf(o, "%s[%d,", k ? "," : "", step_top_i[(size_t)g * gen_top + k]);
                json_float(o, step_top_v[(size_t)g * gen_top + k]);
                fputc(']', o);
            }
            fputc(']', o);
        }
        fputs("]}", o);
        free(step_top_v);
        free(step_top_i);
        free(gen);
        free(ids);
        fflush(o);
    }
    fputs("\n]\n}\n", o);

    free(tids);
    free(tvals);
    free(probe);
    for (size_t s = 0; s < n_in; s++) free(in[s].data);
    free(in);
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
