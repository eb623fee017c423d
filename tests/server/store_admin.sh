#!/bin/sh
# The store's endpoints Ollama clients call (HEAD/POST /api/blobs/:digest,
# /api/create, /api/copy, DELETE /api/delete) against `lamina serve` with
# its own store ([model] store) and a read-only Ollama store
# ($OLLAMA_MODELS, made by ollama_store_check.py): the ollama client
# uploads, creates, lists, shows, generates, copies and deletes; raw
# requests send wrong digests, traversal, corrupt GGUF files and a body
# larger than max_body_kib (store_admin_check.py).  The read-only store is
# left untouched, the API key holds for the new endpoints, nothing is
# written outside the own store, an upload that keeps sending outlives
# header_timeout while a stalled one is cut; `lamina cp` and `lamina rm`
# work on the same stores.
. "$top_srcdir/tests/server/common.sh"
need_serve
need_gguf
need_clients
make_store() {
  make_models &&
  mkdir -p "$TMP/up" &&
  "$PYTHON" "$S/tests/tools/make_tiny_model.py" --arch llama --type q8_0 --seed 11 --out "$TMP/up/tiny-up.gguf" \
    >> "$TMP/gen.log" 2>&1 &&
  "$PYTHON" "$S/tests/server/ollama_store_check.py" make "$TMP/models/tiny-llama.gguf" "$TMP/models/tiny-gemma3.gguf" \
    "$TMP/ro" "$TMP/ro2" > "$TMP/store.log" 2>&1 &&
  chmod -R a-w "$TMP/ro" "$TMP/ro2"
}
setup "models and a read-only Ollama store made" make_store
trap 'chmod -R u+w "$TMP" 2>/dev/null; cleanup' EXIT
export OLLAMA_MODELS="$TMP/ro"
mkdir -p "$TMP/data"
printf '[model]\ndirs = %s\nstore = %s\n[server]\nlisten = 127.0.0.1:0\nmax_body_kib = 64\n' "$TMP/models" "$TMP/data/own" \
  > "$TMP/s.ini"
before=$(cd "$TMP/ro" && find . -printf '%p %s %T@\n' | sort | md5sum)
if start_server "$TMP/s.ini"; then
  run_tap "store" "$PYTHON" "$S/tests/server/store_admin_check.py" "$URL" "$TMP/data/own" "$TMP/ro" "$TMP/up/tiny-up.gguf" 65536
  check "server stops cleanly" stop_server
else
  not_ok "server starts"
fi
after=$(cd "$TMP/ro" && find . -printf '%p %s %T@\n' | sort | md5sum)
check "the read-only store is untouched" [ "$before" = "$after" ]
check "nothing written next to the own store but the test's files" \
  [ "$(ls "$TMP/data" | sort | tr '\n' ' ')" = "broken.gguf junk.bin own " ]

# the API key holds for the store's endpoints
# (and a streamed body is held to header_timeout from its latest piece)
printf '[model]\ndirs = %s\nstore = %s\n[server]\nlisten = 127.0.0.1:0\napi_key = k-0123456789\nheader_timeout = 2\n' \
  "$TMP/models" "$TMP/data/own" > "$TMP/k.ini"
if start_server "$TMP/k.ini"; then
  D=sha256:$(sha256sum "$TMP/data/junk.bin" | cut -d' ' -f1)
  check "POST /api/blobs without the key: 401" [ "$(code "$TMP/k.out" POST "/api/blobs/$D" --data-binary @"$TMP/data/junk.bin")" = 401 ]
  check "HEAD /api/blobs without the key: 401" [ "$(code "$TMP/k.out" HEAD "/api/blobs/$D" -I)" = 401 ]
  check "DELETE /api/delete without the key: 401" [ "$(code "$TMP/k.out" DELETE /api/delete -d '{"model":"fromfile"}')" = 401 ]
  check "POST /api/create without the key: 401" [ "$(code "$TMP/k.out" POST /api/create -d '{"model":"x","from":"fromfile"}')" = 401 ]
  check "POST /api/blobs with the key: 201" \
    [ "$(code "$TMP/k.out" POST "/api/blobs/$D" -H 'Authorization: Bearer k-0123456789' --data-binary @"$TMP/data/junk.bin")" = 201 ]
  check "DELETE /api/delete with the key: 200" \
    [ "$(code "$TMP/k.out" DELETE /api/delete -H 'Authorization: Bearer k-0123456789' -d '{"model":"fromfile"}')" = 200 ]
  run_tap "slow" "$PYTHON" "$S/tests/server/store_admin_check.py" slow "$URL" "$TMP/data/own" k-0123456789 2
  check "server stops cleanly" stop_server
else
  not_ok "server with an API key starts"
fi
# the command line: lamina cp and lamina rm on the same stores
"$LAMINA" --config "$TMP/k.ini" cp tiny:q8 user/cli-copy > "$TMP/cli.out" 2>&1
check "lamina cp tiny:q8 user/cli-copy (from the read-only store): exit 0" [ $? -eq 0 ]
check "  the manifest is in the own store" [ -f "$TMP/data/own/manifests/registry.ollama.ai/user/cli-copy/latest" ]
"$LAMINA" --config "$TMP/k.ini" run -q user/cli-copy "Hello" --raw -n 2 > "$TMP/cli.out" 2>&1
check "  and runs" [ $? -eq 0 ]
"$LAMINA" --config "$TMP/k.ini" rm user/cli-copy > "$TMP/cli.out" 2>&1
check "lamina rm user/cli-copy: exit 0" [ $? -eq 0 ]
check "  the manifest is gone" [ ! -e "$TMP/data/own/manifests/registry.ollama.ai/user" ]
"$LAMINA" --config "$TMP/k.ini" rm tiny:q8 > "$TMP/cli.out" 2>&1
check "lamina rm of a read-only store's model: refused" [ $? -eq 1 ]
expect_grep "  naming the store lamina does not write" 'does not write' "$TMP/cli.out"
"$LAMINA" --config "$TMP/k.ini" rm nothere > "$TMP/cli.out" 2>&1
check "lamina rm of a model not there: exit 1" [ $? -eq 1 ]
expect_grep "  saying so" 'not found' "$TMP/cli.out"
"$LAMINA" --config "$TMP/k.ini" cp tiny:q8 ../../x > "$TMP/cli.out" 2>&1
check "lamina cp to a bad name: exit 1" [ $? -eq 1 ]
expect_grep "  naming it" 'invalid model name' "$TMP/cli.out"
done_testing
