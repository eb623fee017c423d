#!/bin/sh
# lamina pull and POST /api/pull against a registry on loopback
# (tests/server/registry_check.py: the OCI distribution protocol with a
# bearer token challenge and range requests, serving tiny generated
# models): the CLI's plain progress lines and exit codes, a transfer broken
# off halfway and resumed with a range request, a partial file of an
# earlier pull resumed, a wrong digest, a layer larger than its manifest
# says, no room on disk, an oversized manifest, a missing tag, names and
# digests that try to leave the store, an unreachable registry; then the
# ollama Python client's pull (streamed progress) against `lamina serve`
# with an API key, the pulled model listed and answering, and two
# concurrent pulls sharing one download.
. "$top_srcdir/tests/server/common.sh"
need_serve
need_gguf
need_clients
REG_PID=
trap '[ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null; cleanup' EXIT
make_other() {
  make_models &&
  "$PYTHON" "$S/tests/tools/make_tiny_model.py" --arch llama --type q8_0 --seed 6 --out "$TMP/models/other.gguf" \
    >>"$TMP/gen.log" 2>&1
}
setup "tiny models made" make_other
start_registry() {
  "$PYTHON" "$S/tests/server/registry_check.py" serve "$TMP/models/tiny-llama.gguf" "$TMP/models/tiny-gemma3.gguf" \
    "$TMP/models/other.gguf" "$TMP/port" "$TMP/reg.log" > "$TMP/reg.out" 2>&1 &
  REG_PID=$!
  for i in $(seq 300); do [ -s "$TMP/port" ] && break; sleep 0.1; done
  [ -s "$TMP/port" ]
}
setup "registry started" start_registry
REG="http://127.0.0.1:$(cat "$TMP/port")"
ST="$TMP/store"
mkdir -p "$TMP/empty"
printf '[model]\ndirs = %s\nstore = %s\nregistry = %s\n' "$TMP/empty" "$ST" "$REG" > "$TMP/p.ini"
pull() { "$LAMINA" --config "$TMP/p.ini" pull "$@" > "$TMP/out" 2> "$TMP/err"; }
# blob_of TAG: the digest (hex) of the model layer of a tag the registry serves
blob_of() {
  curl -s -H "Authorization: Bearer $(curl -s "$REG/token" | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["token"])')" \
    "$REG/v2/library/$1/manifests/$2" | "$PYTHON" -c \
    'import json,sys; print([l for l in json.load(sys.stdin)["layers"] if l["mediaType"].endswith(".model")][0]["digest"][7:])'
}
sha() { sha256sum "$1" | cut -d' ' -f1; }

# 1. a whole model, plain lines (not a terminal)
pull tiny; rc=$?
check "lamina pull tiny: exit 0" [ $rc -eq 0 ]
expect_grep "  'pulling manifest' first" '^pulling manifest$' "$TMP/out"
expect_grep "  a line per layer with its size" '^pulling [0-9a-f]{12}: .*done$' "$TMP/out"
expect_grep "  'success' last" '^success$' "$TMP/out"
check "  plain lines: no carriage returns or escapes" sh -c "! grep -q \"\$(printf '[\\r\\033]')\" '$TMP/out'"
check "  nothing on stderr" [ ! -s "$TMP/err" ]
m=$ST/manifests/registry.ollama.ai/library/tiny/latest
check "  the manifest in Ollama's layout" [ -s "$m" ]
ok_blobs=1
for d in $("$PYTHON" -c 'import json,sys; j=json.load(open(sys.argv[1])); print(" ".join(l["digest"][7:] for l in [j["config"]]+j["layers"]))' "$m"); do
  [ "$(sha "$ST/blobs/sha256-$d")" = "$d" ] || ok_blobs=0
done
check "  every blob in place with its digest" [ $ok_blobs -eq 1 ]
check "  no partial files left" [ -z "$(ls "$ST/blobs" | grep partial)" ]
expect_grep "  the token challenge answered (401, then /token)" '"path": "/token' "$TMP/reg.log"
expect_grep "  ... and the blobs asked for with the token" '"path": "/v2/library/tiny/blobs/.*"status": 200.*"auth": "Bearer tok-' "$TMP/reg.log"
"$LAMINA" --config "$TMP/p.ini" run -q tiny "Hello" --raw -n 3 > "$TMP/run.out" 2> "$TMP/run.err"
check "  lamina run tiny serves the pulled model" [ $? -eq 0 ]
n0=$(grep -c '/blobs/' "$TMP/reg.log")
pull tiny; rc=$?
check "pull tiny again: exit 0, no blob fetched again" [ $rc -eq 0 ] && [ "$(grep -c '/blobs/' "$TMP/reg.log")" = "$n0" ]

# 2. a transfer broken off halfway: resumed with a range request
d=$(blob_of tiny drop)
pull tiny:drop; rc=$?
check "pull tiny:drop (connection closed mid-blob): exit 0" [ $rc -eq 0 ]
expect_grep "  resumed with a range request" "\"path\": \"/v2/library/tiny/blobs/sha256:$d\".*\"status\": 206.*\"range\": \"bytes=[1-9][0-9]*-\"" "$TMP/reg.log"
check "  the blob is whole and right" [ "$(sha "$ST/blobs/sha256-$d")" = "$d" ]

# 3. a partial file left by an earlier pull: hashed, then resumed
d=$(blob_of tiny resume)
head -c 100000 "$TMP/models/other.gguf" > "$ST/blobs/sha256-$d-partial"
pull tiny:resume; rc=$?
check "pull tiny:resume (a partial file there): exit 0" [ $rc -eq 0 ]
expect_grep "  asked for the rest only (bytes=100000-)" "\"path\": \"/v2/library/tiny/blobs/sha256:$d\".*\"range\": \"bytes=100000-\"" "$TMP/reg.log"
check "  the blob is whole and right" [ "$(sha "$ST/blobs/sha256-$d")" = "$d" ]

# 3b. two processes pulling one model: the second waits on the first's
# locked partial file and keeps its blob (one download)
d=$(blob_of slow latest)
"$LAMINA" --config "$TMP/p.ini" pull slow > "$TMP/out1" 2> "$TMP/err1" & p1=$!
for i in $(seq 100); do [ -e "$ST/blobs/sha256-$d-partial" ] && break; sleep 0.1; done
"$LAMINA" --config "$TMP/p.ini" pull slow > "$TMP/out2" 2> "$TMP/err2"; rc2=$?
wait $p1; rc1=$?
check "two lamina pull slow at once: both exit 0" [ $rc1 -eq 0 ] && [ $rc2 -eq 0 ]
check "  one download of the blob" [ "$(grep -c "\"path\": \"/v2/library/slow/blobs/sha256:$d\".*\"status\": 200" "$TMP/reg.log")" -eq 1 ]
check "  the blob is whole and right" [ "$(sha "$ST/blobs/sha256-$d")" = "$d" ]

# 4. failures: exit 1 and one line naming why; nothing half-written left
# a registry named with its port, as host:port/namespace/model[:tag]
HP=127.0.0.1:$(cat "$TMP/port")
pull --insecure "$HP/library/tiny"; rc=$?
check "pull --insecure $HP/library/tiny (a host with a port): exit 0" [ $rc -eq 0 ]
check "  the manifest under manifests/$HP/library/tiny/latest" [ -s "$ST/manifests/$HP/library/tiny/latest" ]
"$LAMINA" --config "$TMP/p.ini" run -q "$HP/library/tiny" "Hello" --raw -n 3 > "$TMP/run.out" 2> "$TMP/run.err"
check "  lamina run serves it by that name" [ $? -eq 0 ]
pull --insecure "127.0.0.1:99999/library/tiny"; rc=$?
check "pull 127.0.0.1:99999/library/tiny (port out of range): exit 1, invalid name" \
  [ $rc -eq 1 ] && grep -q "invalid model name" "$TMP/err"
pull --insecure "127.0.0.1:80x/library/tiny"; rc=$?
check "pull 127.0.0.1:80x/library/tiny (not a port): exit 1, invalid name" [ $rc -eq 1 ] && grep -q "invalid model name" "$TMP/err"
pull --insecure "library:5000/tiny"; rc=$?
check "pull library:5000/tiny (a port on the namespace): exit 1, invalid name" [ $rc -eq 1 ] && grep -q "invalid model name" "$TMP/err"

fails() {  # DESC PATTERN NAME...
  local desc=$1 pat=$2; shift 2
  pull "$@"; local rc=$?
  check "$desc: exit 1" [ $rc -eq 1 ]
  expect_grep "  one line naming why" "^lamina: pull: .*$pat" "$TMP/err"
  check "  only that line" [ "$(wc -l < "$TMP/err")" -eq 1 ]
}
d=$(blob_of tiny badsum)
fails "pull tiny:badsum (wrong bytes)" "layer sha256:$d: digest mismatch" tiny:badsum
check "  the partial file removed, no blob, no manifest" \
  [ ! -e "$ST/blobs/sha256-$d-partial" ] && [ ! -e "$ST/blobs/sha256-$d" ] && [ ! -e "$ST/manifests/registry.ollama.ai/library/tiny/badsum" ]
fails "pull tiny:over (more bytes than the manifest says)" "more than the manifest's 40000 bytes" tiny:over
fails "pull tiny:big (2^43 bytes)" "not enough free space" tiny:big
check "  nothing written for it" [ ! -e "$ST/blobs/sha256-$(printf 'ab%.0s' $(seq 32))-partial" ]
fails "pull tiny:bigmanifest" "larger than 1048576 bytes" tiny:bigmanifest
fails "pull tiny:missing (404)" "tiny:missing not found in registry $REG" tiny:missing
n0=$(wc -l < "$TMP/reg.log")
fails "pull ../x" "invalid model name" ../x
fails "pull a/../../b" "invalid model name" a/../../b
fails "pull tiny:../../x" "invalid model name" tiny:../../x
check "  no request made for an invalid name" [ "$(wc -l < "$TMP/reg.log")" = "$n0" ]
fails "pull tiny:escape (digest sha256:../../etc)" "is not sha256: and 64 hex digits" tiny:escape
check "nothing was written outside the store" [ -z "$(find "$TMP" -newer "$TMP/p.ini" -name 'etc*' -not -path "$ST/*")" ]
printf '[model]\ndirs = %s\nstore = %s\nregistry = http://127.0.0.1:1\n' "$TMP/empty" "$ST" > "$TMP/off.ini"
"$LAMINA" --config "$TMP/off.ini" pull tiny:other > "$TMP/out" 2> "$TMP/err"; rc=$?
check "an unreachable registry: exit 1" [ $rc -eq 1 ]
expect_grep "  one clear line" '^lamina: pull: cannot reach registry http://127.0.0.1:1: ' "$TMP/err"
check "  only that line" [ "$(wc -l < "$TMP/err")" -eq 1 ]
"$LAMINA" --config "$TMP/p.ini" pull > "$TMP/out" 2> "$TMP/err"
check "lamina pull with no name: exit 2" [ $? -eq 2 ]

# 5. POST /api/pull through the ollama client, with an API key
KEY=pull-test-key-0123456789
printf '[model]\ndirs = %s\nstore = %s\nregistry = %s\n[server]\nlisten = 127.0.0.1:0\napi_key = %s\n' \
  "$TMP/empty" "$TMP/sstore" "$REG" "$KEY" > "$TMP/s.ini"
if start_server "$TMP/s.ini"; then
  run_tap "api" "$PYTHON" "$S/tests/server/registry_check.py" check "$URL" "$KEY" "$TMP/reg.log" "$TMP/sstore"
  check "server stops cleanly" stop_server
else
  not_ok "server starts"
fi
done_testing
