#!/bin/sh
# Models of an Ollama store served in place: a store laid out as Ollama
# writes it (tests/server/ollama_store_check.py make: manifests with the real
# media types, sha256-named blobs), made read-only, named through
# $OLLAMA_MODELS and [model] ollama_stores; `lamina serve` lists and runs
# its models by their Ollama names, refuses broken ones naming why and
# names that try to leave the store; `lamina run` takes the names too.
. "$top_srcdir/tests/server/common.sh"
need_serve
need_gguf
need_clients
make_store() {
  make_models &&
  "$PYTHON" "$S/tests/server/ollama_store_check.py" make "$TMP/models/tiny-llama.gguf" "$TMP/models/tiny-gemma3.gguf" \
    "$TMP/store" "$TMP/store2" > "$TMP/store.log" 2>&1 &&
  chmod -R a-w "$TMP/store" "$TMP/store2"
}
setup "an Ollama store made" make_store
trap 'chmod -R u+w "$TMP" 2>/dev/null; cleanup' EXIT
mkdir -p "$TMP/empty"
printf '[model]\ndirs = %s\nollama_stores = %s\n[server]\nlisten = 127.0.0.1:0\n' "$TMP/empty" "$TMP/store2" > "$TMP/o.ini"
export OLLAMA_MODELS="$TMP/store"
before=$(cd "$TMP/store" && find . -printf '%p %s %T@\n' | sort | md5sum)
if start_server "$TMP/o.ini"; then
  run_tap "store" "$PYTHON" "$S/tests/server/ollama_store_check.py" check "$URL" "$TMP/store"
  check "server stops cleanly" stop_server
else
  not_ok "server starts"
fi
after=$(cd "$TMP/store" && find . -printf '%p %s %T@\n' | sort | md5sum)
check "the store is untouched (no file added, changed or copied)" [ "$before" = "$after" ]
# the command line takes the names too
"$LAMINA" --config "$TMP/o.ini" run -q tiny:q8 "Hello" --raw -n 4 > "$TMP/run.out" 2> "$TMP/run.err"
check "lamina run tiny:q8 (from the store): exit 0" [ $? -eq 0 ]
"$LAMINA" --config "$TMP/o.ini" run -q someuser/tool:v1 "Hello" --raw -n 4 > "$TMP/run.out" 2> "$TMP/run.err"
check "lamina run someuser/tool:v1: exit 0" [ $? -eq 0 ]
"$LAMINA" --config "$TMP/o.ini" run -q other "Hello" --raw -n 4 > "$TMP/run.out" 2> "$TMP/run.err"
check "lamina run other (from [model] ollama_stores): exit 0" [ $? -eq 0 ]
"$LAMINA" --config "$TMP/o.ini" run -q vision "Hello" --raw -n 4 > "$TMP/run.out" 2> "$TMP/run.err"
check "lamina run vision (a projector layer): refused" [ $? -ne 0 ]
expect_grep "  naming the projector layer" 'vision projector' "$TMP/run.err"
done_testing
