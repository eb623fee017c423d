#!/bin/sh
# A client on another host, as a client container would be: the test makes a
# network namespace of its own and a veth pair with a private /30 (checked
# to be unused here), starts `lamina serve` on the host side's address (not
# loopback, so an API key is required) and calls it from inside the
# namespace with `ip netns exec`: with the key 200 (tags, a generation,
# streamed and not), without it or with a wrong one 401, /health open.
# Needs root and `ip netns`; skipped without them, except that under CI
# (CI=true) a root that cannot make the namespace is a failure.
. "$top_srcdir/tests/server/common.sh"
need_serve
need_gguf
if [ "$(id -u)" != 0 ]; then echo "1..0 # SKIP needs root to create a network namespace"; exit 0; fi
if ! command -v ip >/dev/null 2>&1 || ! ip netns list >/dev/null 2>&1; then
  if [ "${CI:-}" = true ]; then not_ok "ip netns available (iproute2)"; done_testing; exit 1; fi
  echo "1..0 # SKIP ip netns unavailable (iproute2 missing)"; exit 0
fi
NS=lamina-t$$
HV=lmh$$            # host side of the veth pair (interface names: 15 bytes at most)
CV=lmc$$            # namespace side
netns_cleanup() {
  cleanup
  ip netns del "$NS" 2>/dev/null        # takes the namespace side with it
  ip link del "$HV" 2>/dev/null
}
trap netns_cleanup EXIT
trap 'exit 1' INT TERM HUP
# a /30 in 10.0.0.0/8 that no address and no route but the default one here covers
NET=
for i in $(seq 0 40); do
  c=10.$(( ($$ + i * 7) % 150 + 100 )).$(( ($$ / 7 + i * 37) % 250 + 1 ))
  ip -4 -o addr show | grep -q " $c\." && continue
  ip -4 route show match "$c.1" | grep -qv '^default' && continue
  NET=$c; break
done
if [ -z "$NET" ]; then not_ok "a free private /30 for the test"; done_testing; exit 1; fi
HOST_IP=$NET.1 CLIENT_IP=$NET.2
make_ns() {
  ip netns add "$NS" &&
  ip link add "$HV" type veth peer name "$CV" &&
  ip link set "$CV" netns "$NS" &&
  ip addr add "$HOST_IP/30" dev "$HV" && ip link set "$HV" up &&
  ip netns exec "$NS" ip addr add "$CLIENT_IP/30" dev "$CV" &&
  ip netns exec "$NS" ip link set "$CV" up &&
  ip netns exec "$NS" ip link set lo up
}
if ! make_ns 2>"$TMP/ns.err"; then
  if [ "${CI:-}" = true ]; then
    not_ok "network namespace $NS with veth $HV/$CV ($HOST_IP, $CLIENT_IP)"; sed 's/^/#   /' "$TMP/ns.err"
    done_testing; exit 1
  fi
  echo "1..0 # SKIP cannot create a network namespace here: $(head -1 "$TMP/ns.err")"; exit 0
fi
diag "namespace $NS: veth $HV $HOST_IP/30 (host) <-> $CV $CLIENT_IP/30 (client)"
setup "tiny models generated" make_models
KEY=k-netns-$$-0123456789
printf '%s\n' "$KEY" > "$TMP/key"
printf '[model]\ndirs = %s\n[server]\nlisten = %s:0\napi_key_file = %s\nparallel = 2\n' \
  "$TMP/models" "$HOST_IP" "$TMP/key" > "$TMP/n.ini"
# start_server of common.sh accepts loopback addresses only; this one is not
SERVER_LOG=$TMP/server.log
"$LAMINA" --config "$TMP/n.ini" serve >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!
for i in $(seq 1200); do
  grep -q 'listening on http://' "$SERVER_LOG" && break
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.1
done
URL=$(sed -n 's|.*listening on \(http://[^ ]*\).*|\1|p' "$SERVER_LOG" | head -1)
case $URL in
  "http://$HOST_IP:"*) ok "serve listens on $URL (the host side of the veth pair)" ;;
  *) not_ok "serve listens on $HOST_IP"; sed 's/^/#   /' "$SERVER_LOG" | tail -20; done_testing; exit 1 ;;
esac
expect_grep "  and says it needs a key (not loopback)" 'API key required' "$SERVER_LOG"
PORT=${URL##*:}
# nc CURL-ARGS...: curl from inside the namespace; prints the status, the body into $TMP/b
nc_() { ip netns exec "$NS" curl -s --noproxy '*' --max-time 120 -o "$TMP/b" -w '%{http_code}' "$@"; }
AUTH="Authorization: Bearer $KEY"
JSON="Content-Type: application/json"
st=$(nc_ "$URL/health")
check "from the namespace: /health without a key: 200 ($st)" [ "$st" = 200 ]
st=$(nc_ "$URL/api/tags" -H "$AUTH")
check "from the namespace: /api/tags with the key: 200 ($st)" [ "$st" = 200 ]
src=$(ip netns exec "$NS" curl -s --noproxy '*' --max-time 60 -o /dev/null -w '%{local_ip}' -H "$AUTH" "$URL/api/tags")
check "  the connection comes from the namespace's address ($src)" [ "$src" = "$CLIENT_IP" ]
expect_grep "  listing tiny-gemma3" '"tiny-gemma3' "$TMP/b"
body='{"model":"tiny-gemma3","prompt":"Once upon a time","stream":false,"options":{"num_predict":6,"temperature":0}}'
st=$(nc_ "$URL/api/generate" -H "$AUTH" -H "$JSON" -d "$body")
check "from the namespace: /api/generate with the key: 200 ($st)" [ "$st" = 200 ]
expect_grep "  a whole answer (done: true)" '"done": *true' "$TMP/b"
st=$(nc_ "$URL/v1/chat/completions" -H "$AUTH" -H "$JSON" \
  -d '{"model":"tiny-gemma3","messages":[{"role":"user","content":"hi"}],"max_tokens":6,"stream":true}')
check "from the namespace: /v1/chat/completions streamed with the key: 200 ($st)" [ "$st" = 200 ]
expect_grep "  ending with [DONE]" '^data: \[DONE\]' "$TMP/b"
st=$(nc_ "$URL/api/generate" -H "$JSON" -d "$body")
check "without the key: 401 ($st)" [ "$st" = 401 ]
expect_grep "  missing API key" 'missing API key' "$TMP/b"
st=$(nc_ "$URL/api/generate" -H "Authorization: Bearer wrong-$KEY" -H "$JSON" -d "$body")
check "with a wrong key: 401 ($st)" [ "$st" = 401 ]
expect_grep "  invalid API key" 'invalid API key' "$TMP/b"
st=$(nc_ "$URL/v1/models")
check "/v1/models without the key: 401 ($st)" [ "$st" = 401 ]
st=$(nc_ "$URL/api/tags" -H "Authorization: Basic $(printf 'x:%s' "$KEY" | base64)")
check "the key in another scheme (Basic): 401 ($st)" [ "$st" = 401 ]
# the namespace is really apart: the host's loopback is not reachable from it
st=$(ip netns exec "$NS" curl -s --noproxy '*' --max-time 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/health")
check "the host's loopback is out of the namespace's reach ($st)" [ "$st" = 000 ]
check "server stops cleanly" stop_server
done_testing
