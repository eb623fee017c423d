/* test_chat.c - chat templates render exactly the expected prompts. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "lamina/plugin.h"
#include "tap.h"

static void render_is(enum lamina_chat_format f, const lamina_chat_msg *m, size_t n, int gen,
                      const char *want, const char *what)
{
    char *out = NULL;
    size_t len = 0;
    char err[256] = "";
    int rc = lamina_chat_render(f, m, n, gen, &out, &len, err, sizeof(err));
    int same = rc == 0 && out != NULL && strcmp(out, want) == 0 && len == strlen(want);
    ok(same, "%s", what);
    if (!same)
        diag("rc %d err '%s'\n# got:\n%s\n# want:\n%s", rc, err, out ? out : "(null)", want);
    free(out);
}

int main(void)
{
    const lamina_chat_msg one[] = {{"user", "Hello!"}};
    const lamina_chat_msg sys[] = {{"system", "You are terse."}, {"user", "  Hi there \n"}};
    const lamina_chat_msg multi[] = {
        {"system", "Be nice."}, {"user", "Hi"}, {"assistant", "Hello! How can I help?"},
        {"user", "Tell me a joke."},
    };

    /* Gemma */
    render_is(LAMINA_CHAT_GEMMA, one, 1, 1,
              "<start_of_turn>user\nHello!<end_of_turn>\n<start_of_turn>model\n",
              "gemma: one user message + generation prompt");
    render_is(LAMINA_CHAT_GEMMA, one, 1, 0, "<start_of_turn>user\nHello!<end_of_turn>\n",
              "gemma: without generation prompt");
    render_is(LAMINA_CHAT_GEMMA, sys, 2, 1,
              "<start_of_turn>user\nYou are terse.\n\nHi there<end_of_turn>\n<start_of_turn>model\n",
              "gemma: system merged into first user turn, content trimmed");
    render_is(LAMINA_CHAT_GEMMA, multi, 4, 1,
              "<start_of_turn>user\nBe nice.\n\nHi<end_of_turn>\n"
              "<start_of_turn>model\nHello! How can I help?<end_of_turn>\n"
              "<start_of_turn>user\nTell me a joke.<end_of_turn>\n"
              "<start_of_turn>model\n",
              "gemma: multi-turn, assistant is 'model'");
    render_is(LAMINA_CHAT_GEMMA, NULL, 0, 1, "<start_of_turn>model\n", "gemma: no messages");
    {
        const lamina_chat_msg bad[] = {{"user", "a"}, {"user", "b"}};
        char *out = NULL;
        char err[256] = "";
        int rc = lamina_chat_render(LAMINA_CHAT_GEMMA, bad, 2, 1, &out, NULL, err, sizeof(err));
        ok(rc == LAMINA_EINVAL && out == NULL && strstr(err, "alternating"),
           "gemma: two user turns in a row rejected (%s)", err);
        const lamina_chat_msg bad2[] = {{"assistant", "a"}};
        rc = lamina_chat_render(LAMINA_CHAT_GEMMA, bad2, 1, 1, &out, NULL, err, sizeof(err));
        ok(rc == LAMINA_EINVAL, "gemma: conversation starting with assistant rejected");
    }

    /* Llama 3 */
    render_is(LAMINA_CHAT_LLAMA3, sys, 2, 1,
              "<|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>"
              "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
              "<|start_header_id|>assistant<|end_header_id|>\n\n",
              "llama3: system + user + generation prompt");
    render_is(LAMINA_CHAT_LLAMA3, multi + 1, 3, 0,
              "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
              "<|start_header_id|>assistant<|end_header_id|>\n\nHello! How can I help?<|eot_id|>"
              "<|start_header_id|>user<|end_header_id|>\n\nTell me a joke.<|eot_id|>",
              "llama3: multi-turn without generation prompt");

    /* ChatML */
    render_is(LAMINA_CHAT_CHATML, sys, 2, 1,
              "<|im_start|>system\nYou are terse.<|im_end|>\n"
              "<|im_start|>user\n  Hi there \n<|im_end|>\n"
              "<|im_start|>assistant\n",
              "chatml: content kept as given");

    /* detection */
    ok(lamina_chat_format_detect("{{ '<start_of_turn>' + role }}", "llama") == LAMINA_CHAT_GEMMA,
       "template with <start_of_turn> -> gemma");
    ok(lamina_chat_format_detect("<|start_header_id|>", NULL) == LAMINA_CHAT_LLAMA3,
       "template with <|start_header_id|> -> llama3");
    ok(lamina_chat_format_detect("{% for m in messages %}<|im_start|>", "qwen2") == LAMINA_CHAT_CHATML,
       "template with <|im_start|> -> chatml");
    ok(lamina_chat_format_detect(NULL, "gemma3") == LAMINA_CHAT_GEMMA, "arch gemma3 -> gemma");
    ok(lamina_chat_format_detect("{{ unknown }}", "qwen2") == LAMINA_CHAT_CHATML,
       "unrecognised template falls back to arch");
    ok(lamina_chat_format_detect(NULL, "mystery") == LAMINA_CHAT_UNKNOWN, "unknown arch -> unknown");
    ok(lamina_chat_format_from_name("llama3") == LAMINA_CHAT_LLAMA3 &&
       !strcmp(lamina_chat_format_name(LAMINA_CHAT_GEMMA), "gemma"), "format names");
    {
        char *out = NULL;
        ok(lamina_chat_render(LAMINA_CHAT_UNKNOWN, one, 1, 1, &out, NULL, NULL, 0) == LAMINA_EINVAL,
           "unknown format rejected");
        const lamina_chat_msg nul[] = {{"user", NULL}};
        ok(lamina_chat_render(LAMINA_CHAT_CHATML, nul, 1, 1, &out, NULL, NULL, 0) == LAMINA_EINVAL,
           "NULL content rejected");
    }
    return done_testing();
}
