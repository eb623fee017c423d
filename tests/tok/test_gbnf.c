/* test_gbnf.c - GBNF grammars (runtime/text/gbnf.c) through the
 * structured-output matcher (runtime/text/grammar.c): hand-written
 * prefixes accepted or not, complete or not; grammars refused with their
 * line and column; random walks over regular grammars checked by POSIX
 * regular expressions (regcomp), an implementation independent of ours. */
#include "config.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grammar.h"
#include "lamina/plugin.h"
#include "tap.h"

/* 'v': valid prefix, not complete; 'c': valid and may end; 'd': valid and
 * must end; 'x': invalid */
static char run(const lamina_grammar *g, const char *text, size_t n)
{
    lamina_gmatch *m = NULL;
    char err[64];
    if (lamina_gmatch_create(g, NULL, &m, err, sizeof err) < 0) return '?';
    int rc = lamina_gmatch_feed(m, text, n);
    char got = rc < 0 ? 'x' : lamina_gmatch_done(m) ? 'd' : lamina_gmatch_can_end(m) ? 'c' : 'v';
    lamina_gmatch_free(m);
    return got;
}

/* The grammar on one line, for test names. */
static const char *oneline(const char *s)
{
    static char b[4][160];
    static int k;
    char *o = b[k++ & 3];
    size_t n = 0;
    for (; *s && n < sizeof b[0] - 4; s++) {
        if (*s == '\n') { o[n++] = ' '; o[n++] = '/'; o[n++] = ' '; }
        else o[n++] = (*s == '\t' || (unsigned char)*s < 0x20) ? '?' : *s;
    }
    o[n] = 0;
    return o;
}

static void check(const char *gbnf, const char *text, char want)
{
    lamina_grammar *g = NULL;
    char err[512] = "";
    if (lamina_grammar_compile_gbnf(gbnf, strlen(gbnf), &g, err, sizeof err) < 0) {
        ok(0, "compile %s: %s", oneline(gbnf), err);
        return;
    }
    char got = run(g, text, strlen(text));
    ok(got == want, "%s | %s -> %c (want %c)", oneline(gbnf), oneline(text), got, want);
    lamina_grammar_unref(g);
}

static void refuse(const char *gbnf, const char *want)
{
    lamina_grammar *g = NULL;
    char err[512] = "";
    int rc = lamina_grammar_compile_gbnf(gbnf, strlen(gbnf), &g, err, sizeof err);
    ok(rc == LAMINA_EINVAL && strstr(err, want) != NULL, "refused %s: %s", oneline(gbnf), err);
    lamina_grammar_unref(g);
}

static uint64_t rng_state = 88172645463325252ull;
static unsigned rnd(unsigned n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (unsigned)(rng_state % n);
}

/* Random walks from "": feed allowed bytes at random until the text may
 * end; every state on the way must allow a byte or the end; each result
 * must match the POSIX ERE `posix` (anchored here). */
static void walks(const char *gbnf, const char *posix, int n_walks)
{
    lamina_grammar *g = NULL;
    char err[512] = "";
    if (lamina_grammar_compile_gbnf(gbnf, strlen(gbnf), &g, err, sizeof err) < 0) {
        ok(0, "compile %s: %s", oneline(gbnf), err);
        return;
    }
    regex_t re;
    char full[1024];
    snprintf(full, sizeof full, "^(%s)$", posix);
    if (regcomp(&re, full, REG_EXTENDED | REG_NOSUB) != 0) {
        ok(0, "regcomp %s", full);
        lamina_grammar_unref(g);
        return;
    }
    char buf[2100], bad[600] = "";
    int good = 0;
    for (int w = 0; w < n_walks; w++) {
        size_t n = 0;
        int ended = 0;
        while (n < 2000) {
            char st = run(g, buf, n);
            unsigned char opts[256];
            int no = 0;
            for (int b = 1; b < 256; b++) {
                buf[n] = (char)b;
                if (run(g, buf, n + 1) != 'x') opts[no++] = (unsigned char)b;
            }
            int can_end = st == 'c' || st == 'd';
            if (can_end && (no == 0 || rnd(3) == 0 || n > 200)) { ended = 1; break; }
            if (no == 0) break;     /* stuck: not completable */
            buf[n++] = (char)opts[rnd((unsigned)no)];
        }
        buf[n] = 0;
        if (ended && regexec(&re, buf, 0, NULL, 0) == 0) good++;
        else if (!bad[0]) snprintf(bad, sizeof bad, "%s: %.200s", ended ? "no regex match" : "stuck", buf);
    }
    ok(good == n_walks, "walks %s: %d/%d complete and matching %s %s", oneline(gbnf), good, n_walks, oneline(posix),
       oneline(bad));
    regfree(&re);
    lamina_grammar_unref(g);
}

static const char *ARITH =
    "# arithmetic\n"
    "root  ::= expr\n"
    "expr  ::= term ([-+*/] term)*\n"
    "term  ::= num | \"(\" space expr \")\" space\n"
    "num   ::= [0-9]+ space\n"
    "space ::= \" \"?\n";

static const char *JSONISH =
    "root   ::= object\n"
    "value  ::= object | array | string | number | (\"true\" | \"false\" | \"null\")\n"
    "object ::=\n"
    "  \"{\" ( string \":\" value\n"
    "    (\",\" string \":\" value)* )? \"}\"\n"
    "array  ::= \"[\" ( value (\",\" value)* )? \"]\"\n"
    "string ::= \"\\\"\" ( [^\"\\\\\\x00-\\x1f] | \"\\\\\" [\"\\\\/bfnrt] )* \"\\\"\"\n"
    "number ::= \"-\"? ([0-9] | [1-9] [0-9]+) (\".\" [0-9]+)?\n";

static const char *CHESS =
    "root ::= \"1. \" move \" \" move \"\\n\" ([1-9] [0-9]? \". \" move \" \" move \"\\n\")+\n"
    "move ::= (pawn | piece | castle) [+#]?\n"
    "pawn ::= ([a-h] \"x\")? [a-h] [1-8] (\"=\" [NBRQ])?\n"
    "piece ::= [NBKQR] [a-h]? [1-8]? \"x\"? [a-h] [1-8]\n"
    "castle ::= \"O-O\" \"-O\"?\n";

int main(void)
{
    /* literals, classes, alternatives */
    check("root ::= \"yes\" | \"no\"", "", 'v');
    check("root ::= \"yes\" | \"no\"", "ye", 'v');
    check("root ::= \"yes\" | \"no\"", "yes", 'd');
    check("root ::= \"yes\" | \"no\"", "yes!", 'x');
    check("root ::= \"yes\" | \"no\"", "n", 'v');
    check("root ::= \"yes\" | \"no\"", "nope", 'x');
    check("root ::= [a-c]+", "abcabc", 'c');
    check("root ::= [a-c]+", "abd", 'x');
    check("root ::= [^a-c]", "d", 'd');
    check("root ::= [^a-c]", "b", 'x');
    check("root ::= .", "\n", 'd');
    check("root ::= . .", "\xc3\xa9z", 'd');
    /* Unicode: code points, UTF-8 underneath */
    check("root ::= [α-ω]+", "αβγ", 'c');
    check("root ::= [α-ω]+", "\xce", 'v');         /* half a character */
    check("root ::= [α-ω]+", "a", 'x');
    check("root ::= [α-ω]+", "\xce\x91", 'x');     /* Α (capital) is below α */
    check("root ::= [^\"]+", "日本語", 'c');
    check("root ::= [^\"]+", "\xe6\x97", 'v');
    check("root ::= [^\"]+", "\xff", 'x');         /* never valid UTF-8 */
    check("root ::= [^\"]+", "\xed\xa0\x80", 'x'); /* a surrogate */
    check("root ::= \"\\x41\\u00e9\\U0001F600\"", "A\xc3\xa9\xf0\x9f\x98\x80", 'd');
    check("root ::= [\\x30-\\x39\\u0100]", "\xc4\x80", 'd');
    check("root ::= \"\\n\\t\\\\\\\"\"", "\n\t\\\"", 'd');
    /* repetition */
    check("root ::= \"a\"{2,3}", "a", 'v');
    check("root ::= \"a\"{2,3}", "aa", 'c');
    check("root ::= \"a\"{2,3}", "aaa", 'd');
    check("root ::= \"a\"{2,3}", "aaaa", 'x');
    check("root ::= \"a\"{2}", "aa", 'd');
    check("root ::= \"a\"{2,}", "aaaaaaa", 'c');
    check("root ::= \"a\"{0,1} \"b\"", "b", 'd');
    check("root ::= \"a\"? \"b\"* \"c\"", "abbbc", 'd');
    check("root ::= \"a\"? \"b\"* \"c\"", "c", 'd');
    check("root ::= (\"ab\" | \"a\")* \"c\"", "aababc", 'd');
    check("root ::= x+\nx ::= \"-\" [0-9]", "-1-2-3", 'c');
    /* comments, newlines, rules given twice, empty alternatives */
    check("# a comment\nroot ::= a # after\n  b\na ::= \"A\"\nb ::= \"B\" |\n", "AB", 'd');
    check("root ::= a b\na ::= \"A\"\nb ::= \"B\" |\n", "A", 'c');
    check("root ::= a\na ::= \"x\"\na ::= \"y\"", "y", 'd');
    check("root ::= \"\" \"a\"", "a", 'd');
    /* recursion (not on the left) and nesting */
    check("root ::= \"(\" root \")\" | \"x\"", "((((x))))", 'd');
    check("root ::= \"(\" root \")\" | \"x\"", "((((x)))", 'v');
    check("root ::= item root | item\nitem ::= [a-z] \";\"", "a;b;c;d;e;f;g;h;i;j;k;l;m;n;o;p;q;r;s;t;u;v;w;x;y;z;a;b;c;d;e;f;g;h;", 'c');
    /* the sample grammar styles */
    check(ARITH, "1+2*(3 -4) ", 'c');
    check(ARITH, "(1+", 'v');
    check(ARITH, "1++", 'x');
    check(JSONISH, "{\"a\":[1,-2.5,true,null,{\"b\":\"c\\n\"}]}", 'd');
    check(JSONISH, "{\"a\":[1,-2.5,true,null,{\"b\":\"c\\n\"}]", 'v');
    check(JSONISH, "{\"a\":01}", 'x');
    check(JSONISH, "{\"a\":\"\x01\"}", 'x');
    check(CHESS, "1. e4 e5\n2. Nf3 Nc6\n3. O-O-O+ exd5\n", 'c');
    check(CHESS, "1. e4 e5\n", 'v');
    check(CHESS, "1. e9", 'x');
    walks(ARITH, "([0-9]+ ?|\\( ?.*\\) ?)([-+*/]([0-9]+ ?|\\( ?.*\\) ?))*", 10);
    walks("root ::= (\"- \" [a-z]{1,5} \"\\n\"){1,3}", "(- [a-z]{1,5}\n){1,3}", 20);
    walks("root ::= [0-9]{3} \"-\" ([A-Z] | \"x\" [0-9]?)+ \".\"?", "[0-9]{3}-([A-Z]|x[0-9]?)+\\.?", 20);
    walks(CHESS,
          "1\\. ([a-hx1-8=NBRQK+#O-]+) ([a-hx1-8=NBRQK+#O-]+)\n([1-9][0-9]?\\. [a-hx1-8=NBRQK+#O-]+ [a-hx1-8=NBRQK+#O-]+\n)+",
          10);

    /* refused, with line and column */
    refuse("root ::= item\n", "line 1, column 10: rule 'item' is not defined");
    refuse("start ::= \"a\"", "no 'root' rule");
    refuse("root ::= \"abc", "line 1, column 10: unterminated string");
    refuse("root ::= \"a\"\nx ::= [a-z", "line 2, column 7: unterminated character class");
    refuse("root ::= \"a\"{3,2}", "line 1, column 13: bad repetition bounds {3,2}");
    refuse("root ::= \"a\"{2000}", "over the limit of 1000");
    refuse("root ::= \"a\"{x}", "bad repetition bounds");
    refuse("root ::= expr\nexpr ::= expr \"+\" \"1\" | \"1\"", "left recursion in rule 'expr'");
    refuse("root ::= (\"a\"?)* \"b\"", "left recursion in rule 'root'");
    refuse("root ::= \"a\" root", "line 1, column 1: rule 'root' can never finish");
    refuse("root ::= \"\\q\"", "line 1, column 11: unknown escape '\\q'");
    refuse("root ::= \"\\uD800\"", "is not a Unicode character");
    refuse("root ::= [z-a]", "out of order");
    refuse("root ::= (\"a\" | \"b\"", "'(' is never closed");
    refuse("root ::= \"a\" )", "')' without a '('");
    refuse("root ::= \"a\"\n  ::= \"b\"", "line 2, column 3: '::=' without a rule name");
    refuse("root = \"a\"", "expected '::=' after the rule name 'root'");
    refuse("root ::= <think>", "token references");
    refuse("root ::= \"\xff\"", "invalid UTF-8");
    refuse("root ::= [^\\x00-\\U0010FFFF]", "matches no character");
    /* hostile: deep groups, long rule chains compile or fail cleanly */
    {
        char *deep = malloc(2000), *p = deep;
        p += sprintf(p, "root ::= ");
        for (int i = 0; i < 100; i++) *p++ = '(';
        p += sprintf(p, "\"a\"");
        for (int i = 0; i < 100; i++) *p++ = ')';
        *p = 0;
        refuse(deep, "nested more than");
        free(deep);
    }
    {
        /* a chain of 300 rules, each the next one: deeper than the matcher
         * enters before a character; compiles, reads nothing, never hangs */
        char *chain = malloc(300 * 40), *p = chain;
        p += sprintf(p, "root ::= r0\n");
        for (int i = 0; i < 299; i++) p += sprintf(p, "r%d ::= r%d\n", i, i + 1);
        p += sprintf(p, "r299 ::= \"z\"\n");
        lamina_grammar *g = NULL;
        char err[256] = "";
        int rc = lamina_grammar_compile_gbnf(chain, strlen(chain), &g, err, sizeof err);
        ok(rc == 0 || rc == LAMINA_EINVAL, "a chain of 300 rules: %s", rc ? err : "compiled");
        if (g) ok(run(g, "z", 1) == 'd', "a chain of 300 rules takes its one sentence");
        lamina_grammar_unref(g);
        free(chain);
    }
    return done_testing();
}
