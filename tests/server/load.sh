#!/bin/sh
# Many clients at once (tests/server/loadgen.py: both APIs, both clients and
# raw HTTP, streamed and not, bad requests, hang-ups, refusals when the
# queue is full): every request ends in a complete answer or a clear
# error, the server stays up, and its heap returns to where it was before
# the load (lamina_heap_bytes in /metrics, the allocator's count of bytes
# in use) once the requests are done; at exit no leaks are reported.
. "$top_srcdir/tests/server/common.sh"
need_serve
need_gguf
need_clients
setup "tiny models generated" make_models
write_ini "$TMP/l.ini" "parallel = 3" "queue = 6"
start_server "$TMP/l.ini" || { not_ok "server starts"; done_testing; exit 1; }
diag "server listening on $URL"
idle() {
  wait_metric 'lamina_active_sequences{model="tiny-gemma3"}' 0 &&
  wait_metric 'lamina_active_sequences{model="tiny-llama"}' 0 &&
  wait_metric 'lamina_queue_depth{model="tiny-gemma3"}' 0 &&
  wait_metric 'lamina_queue_depth{model="tiny-llama"}' 0
}
# warm up: both models loaded, every code path once
run_tap "warm-up" "$PYTHON" "$S/tests/server/loadgen.py" "$URL" 1
check "idle after the warm-up" idle
H0=$(metric lamina_heap_bytes)
run_tap "load" "$PYTHON" "$S/tests/server/loadgen.py" "$URL" 3
check "idle after the load" idle
H1=$(metric lamina_heap_bytes)
diag "heap in use: $H0 bytes before the load, $H1 after"
check "heap back to its level before the load (within 1 MiB)" [ "$H1" -le $((H0 + 1048576)) ]
check "server stops cleanly (no leaks, no sanitizer reports)" stop_server
done_testing
