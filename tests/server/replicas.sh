#!/bin/sh
# Replicas on one machine behind a real load balancer: three `lamina serve`
# replicas on loopback ports behind haproxy (health checks on GET /health;
# refused connections, empty answers and 503s retried on another replica),
# a bounded mixed load of both APIs, streamed and not, and a rolling
# restart of one replica mid-load (SIGTERM, drain, exit 0, started again on
# the same port).  No request may be lost, fail, be cut off or run twice
# (tests/server/replicas_check.py says how that is counted).
. "$top_srcdir/tests/server/common.sh"
need_serve
need_gguf
if ! command -v haproxy >/dev/null 2>&1; then
  if [ "${LAMINA_REQUIRE_CLIENTS:-0}" = 1 ]; then not_ok "haproxy installed (./setup.sh installs it)"
  else skip "haproxy missing (./setup.sh --deps-only installs it)"; fi
  done_testing; exit $?
fi
diag "$(haproxy -v 2>&1 | head -1)"
setup "tiny models generated" make_models
# queue deep enough that no 503 comes from a full queue; drain_timeout well
# above what the requests in flight need
write_ini "$TMP/r.ini" "parallel = 2" "queue = 16" "drain_timeout = 60"
mkdir -p "$TMP/work"
run_tap "rolling" "$PYTHON" "$S/tests/server/replicas_check.py" "$LAMINA" "$TMP/r.ini" "$TMP/work"
# on failure keep the logs for the .log file
if [ $_fail -ne 0 ]; then
  for f in "$TMP"/work/*.log; do [ -f "$f" ] && { diag "---- $(basename "$f")"; tail -25 "$f" | sed 's/^/#   /'; }; done
fi
done_testing
