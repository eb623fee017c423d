#!/bin/sh
# Tool calling and thinking against `lamina serve`, on tiny random-weight
# models that carry real chat templates from llama.cpp's test data:
# Qwen 2.5 and Qwen 3 (<tool_call>), Llama 3.1 (JSON), Mistral Nemo
# ([TOOL_CALLS]), DeepSeek-R1 distill (thinks, takes no tools) and Gemma
# (tiny-gemma) without a template (lamina's generic format).  The real openai and
# ollama clients; prompts with tools checked against Python's jinja2
# rendering the same template; fill-in-the-middle (suffix) on tiny-fim
# (tests/server/tools_check.py).
. "$top_srcdir/tests/server/common.sh"
need_serve
need_gguf
need_clients
llama_testdata
T="$LLAMA_TESTDATA/templates"
make_tool_models() {
  make_models || return 1
  for spec in "tiny-qwen25 qwen2 Qwen-Qwen2.5-7B-Instruct" "tiny-qwen3 qwen3 Qwen-Qwen3-0.6B" \
              "tiny-llama31 llama meta-llama-Llama-3.1-8B-Instruct" \
              "tiny-mistral llama mistralai-Mistral-Nemo-Instruct-2407" \
              "tiny-r1 qwen2 deepseek-ai-DeepSeek-R1-Distill-Qwen-32B" "tiny-gemma gemma3 -"; do
    set -- $spec
    tmpl=
    [ "$3" = - ] || tmpl="--chat-template $T/$3.jinja"
    "$PYTHON" "$S/tests/tools/make_tiny_model.py" --arch "$2" --type q8_0 --seed 3 --context 4096 \
      $tmpl --out "$TMP/models/$1.gguf" >>"$TMP/gen.log" 2>&1 || return 1
  done
  "$PYTHON" "$S/tests/tools/make_tiny_model.py" --arch llama --type q8_0 --seed 3 --fim \
    --out "$TMP/models/tiny-fim.gguf" >>"$TMP/gen.log" 2>&1
}
setup "tiny models with chat templates generated" make_tool_models
write_ini "$TMP/t.ini" "parallel = 4"
if start_server "$TMP/t.ini"; then
  run_tap "tools" "$PYTHON" "$S/tests/server/tools_check.py" "$URL" "$T"
  check "server stops cleanly" stop_server
else
  not_ok "server starts"
fi
done_testing
