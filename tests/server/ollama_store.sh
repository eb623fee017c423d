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
# lamina list and lamina show read the stores as the server does
"$LAMINA" --config "$TMP/o.ini" list > "$TMP/list.out" 2> "$TMP/list.err"
check "lamina list: exit 0" [ $? -eq 0 ]
for n in tiny:latest tiny:q8 someuser/tool:v1 other:latest; do
  check "lamina list names $n" grep -q "^$n " "$TMP/list.out"
done
q8id=$(sed -n 's/.*"digest": *"sha256:\([0-9a-f]\{12\}\).*/\1/p' "$TMP/store/manifests/registry.ollama.ai/library/tiny/q8")
check "lamina list: tiny:q8's ID is its model layer's digest ($q8id)" grep -q "^tiny:q8  *$q8id " "$TMP/list.out"
for n in broken:latest bad:latest vision:latest sizes:latest digest:latest; do
  check "lamina list: $n under 'not usable' with a reason" grep -q "^  $n: ..*" "$TMP/list.out"
done
"$LAMINA" --config "$TMP/o.ini" list --json > "$TMP/list.json"
check "lamina list --json: the /api/tags body" "$PYTHON" -c 'import json,sys; j=json.load(open(sys.argv[1])); sys.exit(not (len(j["models"]) >= 4 and len(j["broken"]) == 5))' "$TMP/list.json"
"$LAMINA" --config "$TMP/o.ini" show tiny > "$TMP/show.out" 2> "$TMP/show.err"
check "lamina show tiny: exit 0" [ $? -eq 0 ]
expect_grep "  its architecture" 'architecture  *llama' "$TMP/show.out"
expect_grep "  its params layer" 'num_predict  *5' "$TMP/show.out"
expect_grep "  its license layer" 'a license' "$TMP/show.out"
"$LAMINA" --config "$TMP/o.ini" show someuser/tool:v1 --system > "$TMP/sys.out"
check "lamina show --system: the system layer" [ "$(cat "$TMP/sys.out")" = "Be brief." ]
"$LAMINA" --config "$TMP/o.ini" show tiny --template > "$TMP/tmpl.out"
check "lamina show --template: the template layer" grep -q '{{ .Prompt }}' "$TMP/tmpl.out"
"$LAMINA" --config "$TMP/o.ini" show broken > "$TMP/show.out" 2> "$TMP/show.err"
check "lamina show broken: exit 1" [ $? -eq 1 ]
expect_grep "  naming the missing blob" 'missing' "$TMP/show.err"
"$LAMINA" --config "$TMP/o.ini" show ../../etc/passwd > "$TMP/show.out" 2> "$TMP/show.err"
check "lamina show ../../etc/passwd: exit 1" [ $? -eq 1 ]
expect_grep "  an invalid name" 'invalid model name' "$TMP/show.err"
done_testing
