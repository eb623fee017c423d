#!/bin/sh
# The real `ollama` and `openai` Python clients against `lamina serve` on
# tiny models: listing, generate and chat (streamed and not), ps, show,
# completions, errors as each client raises them, concurrent calls; then
# an API key: refused without it or with a wrong one, accepted with it
# (the client checks that ran without the key count as one line there).
. "$top_srcdir/tests/server/common.sh"
need_serve
need_gguf
need_clients
setup "tiny models generated" make_models
write_ini "$TMP/l.ini" "parallel = 4"
if start_server "$TMP/l.ini"; then
  diag "server listening on $URL"
  run_tap "open" "$PYTHON" "$S/tests/server/pyclients.py" "$URL"
  check "server stops cleanly" stop_server
else
  not_ok "server starts"
fi

# with an API key (from a key file, as the systemd drop-in suggests)
printf 'test-key-0123456789\n' > "$TMP/key"
chmod 600 "$TMP/key"
write_ini "$TMP/k.ini" "api_key_file = $TMP/key"
if start_server "$TMP/k.ini"; then
  expect_grep "start-up line says a key is required" 'API key required' "$SERVER_LOG"
  # the key-specific checks one by one; the client run once more, with the key, as one line
  run_tap "key" --only 'without the key|wrong key' \
    "$PYTHON" "$S/tests/server/pyclients.py" "$URL" --key test-key-0123456789
  O=$TMP/o
  check "curl without a key: 401" [ "$(code $O GET /api/tags)" = 401 ]
  expect_grep "  saying the key is missing" 'missing API key' $O
  check "curl with a wrong key: 401" [ "$(code $O GET /api/tags -H 'Authorization: Bearer nope')" = 401 ]
  check "a key that only starts like the right one: 401" \
    [ "$(code $O GET /api/tags -H 'Authorization: Bearer test-key-012345678')" = 401 ]
  check "a longer key: 401" [ "$(code $O GET /api/tags -H 'Authorization: Bearer test-key-01234567890')" = 401 ]
  curl -s -D "$TMP/h" -o /dev/null "$URL/api/ps"
  expect_grep "401 carries WWW-Authenticate: Bearer" '^WWW-Authenticate: Bearer' "$TMP/h"
  check "/metrics needs the key" [ "$(code $O GET /metrics)" = 401 ]
  check "the right key: 200" [ "$(code $O GET /api/tags -H 'Authorization: Bearer test-key-0123456789')" = 200 ]
  check "GET / (liveness) needs no key" [ "$(code $O GET /)" = 200 ]
  check "server stops cleanly" stop_server
else
  not_ok "server with a key file starts"
fi
done_testing
