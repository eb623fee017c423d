#!/bin/sh
# Where `lamina serve` listens and when it refuses to: [server] listen, then
# $LAMINA_HOST, then --listen, each overriding the one before; a
# non-loopback address without an API key is refused before anything is
# bound (so this test only ever binds 127.0.0.1 and ::1); bad settings are
# errors that name the file, line and key.
. "$top_srcdir/tests/server/common.sh"
need_serve
mkdir -p "$TMP/models"
# refused RESULT_FILE [ENV=VALUE...] -- ARGS...: run serve expecting a refusal (bounded)
refused() {
  local out=$1; shift
  local envs=""
  while [ "$1" != "--" ]; do envs="$envs $1"; shift; done; shift
  env $envs timeout 60 "$LAMINA" "$@" > "$out" 2>&1
}

printf '[server]\nlisten = 0.0.0.0:0\n' > "$TMP/any.ini"
refused "$TMP/o1" -- --config "$TMP/any.ini" serve; rc=$?
check "0.0.0.0 without an API key: refused (status $rc)" [ $rc -eq 1 ]
expect_grep "  naming the address and the way out" 'refusing to listen on 0\.0\.0\.0:0 without an API key.*' "$TMP/o1"
expect_grep "  (a key or allow_unauthenticated in the INI file)" 'allow_unauthenticated = true' "$TMP/o1"
refused "$TMP/o2" -- --config "$TMP/any.ini" serve --listen '[::]:0'; rc=$?
[ $rc -eq 1 ] && grep -q 'refusing to listen on \[::\]:0' "$TMP/o2"; check_rc ":: without an API key: refused" $?
refused "$TMP/o3" LAMINA_HOST=10.11.12.13:8080 -- serve; rc=$?
[ $rc -eq 1 ] && grep -q 'refusing to listen on 10.11.12.13:8080' "$TMP/o3"; check_rc "a LAN address from \$LAMINA_HOST without a key: refused" $?

# the order: INI, then $LAMINA_HOST, then --listen
LAMINA_HOST=127.0.0.1:0 start_server "$TMP/any.ini"; rc=$?
check "\$LAMINA_HOST overrides [server] listen (loopback: starts)" [ $rc -eq 0 ]
expect_grep "  and says it is loopback only, without a key" 'listening on http://127\.0\.0\.1:[0-9]+ \(loopback only; no API key\)' "$SERVER_LOG"
check "  stops cleanly" stop_server
unset LAMINA_HOST
printf '[server]\nlisten = 127.0.0.1:0\n' > "$TMP/lo.ini"
LAMINA_HOST=0.0.0.0:0 start_server "$TMP/lo.ini" --listen 127.0.0.1:0; rc=$?
check "--listen overrides \$LAMINA_HOST" [ $rc -eq 0 ]
check "  stops cleanly" stop_server
unset LAMINA_HOST
LAMINA_HOST=http://127.0.0.1 start_server "$TMP/any.ini" --listen :0; rc=$?
[ $rc -eq 0 ] && case $URL in http://127.0.0.1:*) true ;; *) false ;; esac; check_rc "--listen :PORT keeps the host of \$LAMINA_HOST (http:// accepted)" $?
check "  stops cleanly" stop_server
unset LAMINA_HOST
if "$PYTHON" -c 'import socket; s = socket.socket(socket.AF_INET6); s.bind(("::1", 0))' 2>/dev/null; then
  start_server "$TMP/any.ini" --listen '[::1]:0'; rc=$?
  [ $rc -eq 0 ] && case $URL in "http://[::1]:"*) true ;; *) false ;; esac; check_rc "IPv6 loopback [::1] starts" $?
  check "  and answers" [ "$(curl -s -g "$URL/")" = "lamina is running" ]
  check "  stops cleanly" stop_server
else
  skip "no IPv6 loopback here"
fi
printf 'k3y\n' > "$TMP/key"
printf '[server]\nlisten = 127.0.0.1:0\napi_key_file = %s\n' "$TMP/key" > "$TMP/key.ini"
start_server "$TMP/key.ini"; rc=$?
check "loopback with a key file starts" [ $rc -eq 0 ]
expect_grep "  and says a key is required" 'loopback only; API key required' "$SERVER_LOG"
check "  stops cleanly" stop_server

# bad settings
refused "$TMP/o4" -- serve --listen 127.0.0.1:99999; rc=$?
[ $rc -ne 0 ] && grep -q 'port must be 0 to 65535' "$TMP/o4"; check_rc "a bad port: usage error" $?
printf '[server]\nparallel = 0\n' > "$TMP/bad1.ini"
refused "$TMP/o5" -- --config "$TMP/bad1.ini" serve; rc=$?
check "[server] parallel = 0: refused" [ $rc -ne 0 ]
expect_grep "  naming file, line and key" "bad1\.ini:2: \[server\] parallel: expected a whole number from 1 to 256, got '0'" "$TMP/o5"
printf '[server]\ncors_origins = app.example\n' > "$TMP/bad2.ini"
refused "$TMP/o6" -- --config "$TMP/bad2.ini" serve; rc=$?
[ $rc -ne 0 ] && grep -q "cors_origins: 'app.example' is not an origin" "$TMP/o6"; check_rc "a CORS origin without a scheme: refused" $?
printf '[server]\napi_key_file = %s/none\n' "$TMP" > "$TMP/bad3.ini"
refused "$TMP/o7" -- --config "$TMP/bad3.ini" serve; rc=$?
[ $rc -ne 0 ] && grep -q 'api_key_file .*/none: No such file' "$TMP/o7"; check_rc "a missing key file: refused" $?
printf '[server]\nunknown_key = 1\n' > "$TMP/bad4.ini"
refused "$TMP/o8" -- --config "$TMP/bad4.ini" serve; rc=$?
[ $rc -ne 0 ] && grep -q "bad4.ini:2: \[server\] unknown key 'unknown_key'" "$TMP/o8"; check_rc "an unknown [server] key: refused" $?
refused "$TMP/o9" -- serve --bogus; rc=$?
check "an unknown option: usage error (2)" [ $rc -eq 2 ]
done_testing
