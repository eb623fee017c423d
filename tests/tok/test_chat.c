/* test_chat.c - chat prompts render exactly as expected: the built-in
 * formats, and a model's own Jinja template through lamina_chat (with its
 * fallbacks to a built-in format and their log lines). */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
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

static char logged[1024];

static void capture_log(void *ctx, int level, const char *msg)
{
    (void)ctx;
    (void)level;
    snprintf(logged, sizeof logged, "%s", msg);
}

static void apply_is(const lamina_chat *c, const lamina_chat_msg *m, size_t n, int gen,
                     const char *want, const char *what)
{
    char *out = NULL;
    size_t len = 0;
    char err[512] = "";
    int rc = lamina_chat_apply(c, m, n, gen, &out, &len, err, sizeof(err));
    int same = rc == 0 && out != NULL && strcmp(out, want) == 0 && len == strlen(want);
    ok(same, "%s", what);
    if (!same)
        diag("rc %d err '%s'\n# got:\n%s\n# want:\n%s", rc, err, out ? out : "(null)", want);
    free(out);
}

static const char chatml_jinja[] =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content']"
    " + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}";

/* gemma-2's own template in short: BOS, no system role */
static const char gemma_jinja[] =
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "{% for message in messages %}{% if (message['role'] == 'assistant') %}"
    "{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}"
    "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}";

static void templates(void)
{
    const lamina_chat_msg sys[] = {{"system", "You are terse."}, {"user", "  Hi there \n"}};
    const lamina_chat_msg user[] = {{"user", "Hi \"you\" <b>\xc3\xa9</b>"}};
    lamina_logger lg = {capture_log, NULL};
    lamina_chat *c = NULL;
    char err[512] = "";

    /* the model's template renders, as jinja2 would */
    ok(lamina_chat_open_with(chatml_jinja, "<s>", "</s>", 1, LAMINA_CHAT_CHATML, &lg, &c, err,
                             sizeof err) == 0 && lamina_chat_uses_template(c) &&
       lamina_chat_available(c), "template accepted");
    apply_is(c, sys, 2, 1,
             "<|im_start|>system\nYou are terse.<|im_end|>\n"
             "<|im_start|>user\n  Hi there \n<|im_end|>\n"
             "<|im_start|>assistant\n",
             "template: chatml through Jinja, as the built-in format");
    apply_is(c, user, 1, 0, "<|im_start|>user\nHi \"you\" <b>\xc3\xa9</b><|im_end|>\n",
             "template: no generation prompt, content as given");
    ok(!strcmp(lamina_chat_describe(c), "model's own"), "describe: the model's own template");
    lamina_chat_close(c);

    /* BOS from the template is cut when the tokenizer adds it */
    logged[0] = 0;
    ok(lamina_chat_open_with(gemma_jinja, "<bos>", "<eos>", 1, LAMINA_CHAT_GEMMA, &lg, &c, err,
                             sizeof err) == 0, "gemma template accepted");
    apply_is(c, user + 0, 1, 1,
             "<start_of_turn>user\nHi \"you\" <b>\xc3\xa9</b><end_of_turn>\n<start_of_turn>model\n",
             "template: leading BOS text cut (the tokenizer adds BOS)");
    /* the template refuses a system message; the built-in format takes it */
    apply_is(c, sys, 2, 1,
             "<start_of_turn>user\nYou are terse.\n\nHi there<end_of_turn>\n<start_of_turn>model\n",
             "template fails on a system message: built-in gemma format used");
    ok(strstr(logged, "System role not supported") && strstr(logged, "gemma"),
       "  ... and one line says why (%s)", logged);
    lamina_chat_close(c);

    ok(lamina_chat_open_with(gemma_jinja, "<bos>", "<eos>", 0, LAMINA_CHAT_GEMMA, &lg, &c, err,
                             sizeof err) == 0, "gemma template, tokenizer adds no BOS");
    apply_is(c, user, 1, 0,
             "<bos><start_of_turn>user\nHi \"you\" <b>\xc3\xa9</b><end_of_turn>\n",
             "template: BOS text kept when the tokenizer adds none");
    lamina_chat_close(c);

    /* no built-in format to fall back to: the template's error */
    ok(lamina_chat_open_with(gemma_jinja, "<bos>", "<eos>", 1, LAMINA_CHAT_UNKNOWN, &lg, &c, err,
                             sizeof err) == 0, "template without a fallback");
    {
        char *out = NULL;
        int rc = lamina_chat_apply(c, sys, 2, 1, &out, NULL, err, sizeof err);
        ok(rc == LAMINA_EINVAL && out == NULL && strstr(err, "System role not supported") &&
           strstr(err, "line 1"), "template's own error when nothing can render (%s)", err);
    }
    lamina_chat_close(c);

    /* a refused template: the built-in format, with the construct and line logged */
    logged[0] = 0;
    ok(lamina_chat_open_with("{% for m in messages %}\n{{ m | xmlattr }}{% endfor %}", "<s>", "</s>",
                             1, LAMINA_CHAT_CHATML, &lg, &c, err, sizeof err) == 0 &&
       !lamina_chat_uses_template(c) && lamina_chat_available(c), "refused template: fallback");
    ok(strstr(logged, "template line 2: filter 'xmlattr' is not supported") &&
       strstr(logged, "chatml"), "  ... logged with construct and line (%s)", logged);
    apply_is(c, sys, 2, 1,
             "<|im_start|>system\nYou are terse.<|im_end|>\n"
             "<|im_start|>user\n  Hi there \n<|im_end|>\n<|im_start|>assistant\n",
             "refused template: built-in chatml renders");
    ok(!strcmp(lamina_chat_describe(c), "chatml"), "describe: built-in format");
    lamina_chat_close(c);

    /* neither: no chat */
    ok(lamina_chat_open_with(NULL, NULL, NULL, 1, LAMINA_CHAT_UNKNOWN, NULL, &c, err,
                             sizeof err) == 0 && !lamina_chat_available(c), "no template, no format");
    {
        char *out = NULL;
        ok(lamina_chat_apply(c, user, 1, 1, &out, NULL, err, sizeof err) == LAMINA_EINVAL &&
           out == NULL, "  ... apply fails (%s)", err);
    }
    lamina_chat_close(c);
    lamina_chat_close(NULL);
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

    /* Mistral [INST] */
    render_is(LAMINA_CHAT_MISTRAL, multi, 4, 1,
              "[INST] Be nice.\n\nHi [/INST]Hello! How can I help?</s>[INST] Tell me a joke. [/INST]",
              "mistral: system into the first user turn, assistant ends with </s>");
    render_is(LAMINA_CHAT_MISTRAL, one, 1, 0, "[INST] Hello! [/INST]",
              "mistral: no generation prompt of its own");
    {
        const lamina_chat_msg bad[] = {{"assistant", "a"}};
        char *out = NULL;
        ok(lamina_chat_render(LAMINA_CHAT_MISTRAL, bad, 1, 1, &out, NULL, NULL, 0) == LAMINA_EINVAL,
           "mistral: conversation starting with assistant rejected");
    }

    /* Phi-3 */
    render_is(LAMINA_CHAT_PHI3, multi, 4, 1,
              "<|system|>\nBe nice.<|end|>\n<|user|>\nHi<|end|>\n"
              "<|assistant|>\nHello! How can I help?<|end|>\n<|user|>\nTell me a joke.<|end|>\n"
              "<|assistant|>\n",
              "phi3: multi-turn + generation prompt");
    {
        const lamina_chat_msg empty_sys[] = {{"system", ""}, {"user", "x"}};
        render_is(LAMINA_CHAT_PHI3, empty_sys, 2, 0, "<|user|>\nx<|end|>\n",
                  "phi3: empty system message left out");
    }

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
    ok(lamina_chat_format_detect("{{ '[INST] ' + m }}", NULL) == LAMINA_CHAT_MISTRAL,
       "template with [INST] -> mistral");
    ok(lamina_chat_format_detect("{{ '<|user|>\n' + c + '<|end|>' }}", NULL) == LAMINA_CHAT_PHI3,
       "template with <|user|> and <|end|> -> phi3");
    ok(lamina_chat_format_detect(NULL, "phi3") == LAMINA_CHAT_PHI3, "arch phi3 -> phi3");
    ok(lamina_chat_format_from_name("mistral") == LAMINA_CHAT_MISTRAL &&
       !strcmp(lamina_chat_format_name(LAMINA_CHAT_PHI3), "phi3"), "new format names");
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
    templates();
    return done_testing();
}
