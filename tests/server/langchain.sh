#!/bin/sh
# LangChain's Ollama integration, unchanged, against `lamina serve` on
# tiny models: OllamaEmbeddings indexing documents into an in-memory
# vector store and querying it, ChatOllama.with_structured_output with a
# pydantic model, ChatOllama.bind_tools (tests/server/langchain_check.py).
. "$top_srcdir/tests/server/common.sh"
need_serve
need_gguf
need_clients
if ! "$PYTHON" -c 'import langchain_ollama, langchain_core' 2>/dev/null; then
  if [ "${LAMINA_REQUIRE_CLIENTS:-0}" = 1 ]; then not_ok "python packages langchain-ollama and langchain-core installed"
  else skip "python package langchain-ollama missing (./setup.sh --deps-only installs it)"; fi
  done_testing; exit $?
fi
setup "tiny models generated" make_models
write_ini "$TMP/lc.ini" "parallel = 4"
if start_server "$TMP/lc.ini"; then
  run_tap "langchain" "$PYTHON" "$S/tests/server/langchain_check.py" "$URL"
  check "server stops cleanly" stop_server
else
  not_ok "server starts"
fi
done_testing
