#!/bin/sh
# The soak benchmark (scripts/soak.sh) in short: a minute of mixed load
# (tests/server/soak_check.py: Ollama and OpenAI generation and chat, whole
# and streamed, embeddings, clients that abandon streams, slow readers) on
# a tiny model served by two backends, the "lossy" test plugin
# (soak_lossy_plugin.c: the cpu plugin, preferred) and cpu; 25 s in, the
# lossy device is lost (LAMINA_EDEVLOST) and its layers move to cpu.
# Checked, structurally: every kind of request answered, none failed
# (the failover holds requests up, it fails none), one failover counted
# and named in the log, requests answered after it, and once the load is
# over no connection or model user left, the heap back near its level
# after the warm-up, descriptors back to their count; no leaks at exit.
# No duration is asserted, and RSS is reported, not checked (a sanitizer
# build's allocator holds on to freed memory: the heap count is the check).
. "$top_srcdir/tests/server/common.sh"
need_serve
need_gguf
LOSSY="$B/tests/server/.libs/soak_lossy.so"
CPU="$B/plugins/cpu/.libs/cpu.so"
if [ ! -f "$LOSSY" ]; then not_ok "the lossy test plugin is built ($LOSSY)"; done_testing; exit 1; fi
setup "tiny models generated" make_models
mkdir -p "$TMP/plugins"
cp "$CPU" "$LOSSY" "$TMP/plugins/"
export LAMINA_PLUGIN_PATH="$TMP/plugins" LOSSY_WRAP="$CPU" LOSSY_LOSE_FILE="$TMP/lose-device"
write_ini "$TMP/s.ini" "parallel = 4" "queue = 32" "[scheduler]" "backends = lossy, cpu"
start_server "$TMP/s.ini" || { not_ok "server starts"; done_testing; exit 1; }
diag "server listening on $URL"
run_tap "soak" "$PYTHON" "$S/tests/server/soak_check.py" --url "$URL" --pid "$SERVER_PID" --duration 60 \
  --lose-at 25 --lose-file "$LOSSY_LOSE_FILE" --log "$SERVER_LOG" --out "$TMP/soak" --clients 4 --tap
expect_grep "the layers moved on to cpu after the loss" 'lossy:0 .*lost during generation.*moved on to cpu:0' "$SERVER_LOG"
check "server stops cleanly (no leaks, no sanitizer reports)" stop_server
done_testing
