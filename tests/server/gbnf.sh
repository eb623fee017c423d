#!/bin/sh
# GBNF grammars (llama-server's "grammar" field) on tiny random-weight
# models: arithmetic, JSON-like, a list, chess moves, nesting and Unicode
# classes through /v1/completions, /v1/chat/completions and (an extension)
# /api/generate and /api/chat, streamed and not, at temperature 0 and 1;
# every output parsed whole by lark with a hand-written equivalent grammar;
# bad grammars and a grammar next to a schema answer 400
# (tests/server/gbnf_check.py).
. "$top_srcdir/tests/server/common.sh"
need_serve
need_gguf
if ! "$PYTHON" -c 'import lark' 2>/dev/null; then
  if [ "${LAMINA_REQUIRE_CLIENTS:-0}" = 1 ]; then not_ok "python package lark installed"; done_testing; exit 1; fi
  skip "python package lark missing (./setup.sh --deps-only installs it)"; done_testing; exit 0
fi
setup "tiny models generated" make_models
write_ini "$TMP/g.ini" "parallel = 4"
if start_server "$TMP/g.ini"; then
  run_tap "gbnf" "$PYTHON" "$S/tests/server/gbnf_check.py" "$URL" tiny-gemma3 tiny-llama
  check "server stops cleanly" stop_server
else
  not_ok "server starts"
fi
done_testing
