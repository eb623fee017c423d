# tests/server/common.sh - start `lamina serve` from the build tree on a
# loopback port the kernel picks (127.0.0.1:0; the test reads the port from
# the start-up line), with tiny generated models, and stop it again.
# Every wait is bounded; nothing here measures time.
. "${top_srcdir:-.}/tests/lib.sh"
umask 022
unset LAMINA_CONFIG LAMINA_BACKENDS LAMINA_HOST LAMINA_API_KEY
TMP=$(mktemp -d "${TMPDIR:-/tmp}/lamina-server-XXXXXX") || exit 1
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null; fi
  rm -rf "$TMP"
}
trap cleanup EXIT
export LAMINA_PROBE_HELPER="$B/runtime/lamina-probe"
export LAMINA_PLUGIN_PATH="$B/plugins/cpu/.libs"
export LAMINA_CATALOGUE="$S/models/catalogue.ini"
export XDG_CACHE_HOME="$TMP/cache"
export LAMINA_MODELS="$TMP/models"
# every curl call of a test is bounded in time
export CURL_HOME="$TMP"
printf 'max-time = 300\n' > "$TMP/.curlrc"
# LeakSanitizer reports at exit go to the server log, where stop_server looks
ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"; export ASAN_OPTIONS
MODEL_DIR=${XDG_DATA_HOME:-$HOME/.local/share}/lamina/models
DEFAULT_MODEL=${LAMINA_DEFAULT_MODEL:-$MODEL_DIR/gemma-3-270m-q4_k_m.gguf}

have_serve() { "$LAMINA" serve --help >/dev/null 2>&1; }
need_serve() {
  if ! have_serve; then skip "lamina built without the server (libmicrohttpd-dev missing)"; done_testing; exit 0; fi
  if ! command -v curl >/dev/null; then skip "curl missing"; done_testing; exit 0; fi
}
need_gguf() {
  if ! "$PYTHON" -c 'import gguf' 2>/dev/null; then
    skip "python gguf package missing: cannot generate test models"; done_testing; exit 0
  fi
}
# make_models: tiny-gemma3 (SentencePiece, Gemma chat format), tiny-llama
# (byte-level BPE), and tiny-long: tiny-gemma3 with a 32768-position
# context, so that a greedy generation can be kept running as long as a
# test needs it (it is then cancelled).
make_models() {
  mkdir -p "$TMP/models"
  "$PYTHON" "$S/tests/tools/make_tiny_model.py" --arch gemma3 --type mixed --seed 5 --out "$TMP/models/tiny-gemma3.gguf" >"$TMP/gen.log" 2>&1 &&
  "$PYTHON" "$S/tests/tools/make_tiny_model.py" --arch llama --type q8_0 --seed 5 --out "$TMP/models/tiny-llama.gguf" >>"$TMP/gen.log" 2>&1 &&
  cp "$TMP/models/tiny-gemma3.gguf" "$TMP/models/tiny-long.gguf" &&
  "$PYTHON" - "$TMP/models/tiny-long.gguf" >>"$TMP/gen.log" 2>&1 <<'PY'
import sys, numpy as np, gguf
r = gguf.GGUFReader(sys.argv[1], "r+")
f = r.fields["gemma3.context_length"]
f.parts[f.data[0]][0] = np.uint32(32768)
PY
  local rc=$?
  [ $rc -eq 0 ] || sed 's/^/# /' "$TMP/gen.log"
  return $rc
}
# write_ini FILE [EXTRA [server] LINES...]: model dirs + a loopback listen
write_ini() {
  local f=$1; shift
  { printf '[model]\ndirs = %s\n[server]\nlisten = 127.0.0.1:0\n' "$TMP/models"
    for l in "$@"; do printf '%s\n' "$l"; done; } > "$f"
}
# start_server INI [ARGS...]: sets URL and SERVER_PID; 0 when it listens
start_server() {
  local ini=$1; shift
  SERVER_LOG="$TMP/server.log"
  : > "$SERVER_LOG"
  "$LAMINA" --config "$ini" serve "$@" >"$SERVER_LOG" 2>&1 &
  SERVER_PID=$!
  local i
  for i in $(seq 1200); do
    grep -q 'listening on http://' "$SERVER_LOG" && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  URL=$(sed -n 's|.*listening on \(http://[^ ]*\).*|\1|p' "$SERVER_LOG" | head -1)
  if [ -z "$URL" ]; then diag "server did not start:"; sed 's/^/#   /' "$SERVER_LOG" | tail -20; return 1; fi
  case $URL in http://127.0.0.1:*|http://\[::1\]:*) ;; *) diag "not a loopback URL: $URL"; return 1 ;; esac
  return 0
}
# stop_server: SIGTERM, bounded wait; 0 when it exited 0 with no sanitizer report
stop_server() {
  [ -n "$SERVER_PID" ] || return 1
  kill -TERM "$SERVER_PID" 2>/dev/null
  local i rc
  for i in $(seq 600); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    diag "server still running 60 s after SIGTERM"; kill -KILL "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null
    SERVER_PID=; return 1
  fi
  wait "$SERVER_PID"; rc=$?
  SERVER_PID=
  if [ $rc -ne 0 ] || grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$SERVER_LOG"; then
    diag "server exit status $rc"; grep -A30 -E 'Sanitizer|runtime error' "$SERVER_LOG" | head -60 | sed 's/^/#   /'
    return 1
  fi
  return 0
}
# metric NAME_WITH_LABELS: the value of one /metrics line ("" when absent)
metric() { curl -s "$URL/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }
# wait_metric NAME VALUE [TRIES]: poll until the metric equals VALUE (10 per second)
wait_metric() {
  local i n=${3:-600}
  for i in $(seq "$n"); do [ "$(metric "$1")" = "$2" ] && return 0; sleep 0.1; done
  diag "$1 is '$(metric "$1")', waited for '$2'"; return 1
}
# code FILE METHOD PATH [CURL ARGS...]: the HTTP status; the body into FILE
code() { local f=$1 m=$2 p=$3; shift 3; curl -s -o "$f" -w '%{http_code}' -X "$m" "$URL$p" "$@"; }
# run_tap PREFIX [--only PATTERN] CMD...: run a TAP-printing command,
# re-numbering its results into this test's stream (comments pass through);
# a command that fails without reporting a failure is itself a failure.
# With --only, a result is a line of its own only when its description
# matches PATTERN (grep -E): the others, checks an earlier run_tap already
# counted, are folded into one line that they all passed (each failure is
# named in a diagnostic, and the line is "not ok").
run_tap() {
  local pre=$1 only= line d rc n_bad=0 n_fold=0 fold_bad=0; shift
  if [ "$1" = --only ]; then only=$2; shift 2; fi
  "$@" > "$TMP/tap.out" 2>&1; rc=$?
  while IFS= read -r line; do
    case $line in
      "ok "*|"not ok "*)
        case $line in "ok "*) d=${line#ok [0-9]* - } ;; *) d=${line#not ok [0-9]* - } ;; esac
        if [ -n "$only" ] && ! printf '%s\n' "$d" | grep -qE -- "$only"; then
          n_fold=$((n_fold+1))
          case $line in "not ok "*) fold_bad=$((fold_bad+1)); echo "# not ok: $d" ;; esac
        else
          case $line in "ok "*) ok "$pre: $d" ;; *) not_ok "$pre: $d"; n_bad=$((n_bad+1)) ;; esac
        fi ;;
      "1.."*) ;;
      *) echo "# $line" ;;
    esac
  done < "$TMP/tap.out"
  if [ -n "$only" ]; then
    if [ $fold_bad -eq 0 ] && [ $n_fold -gt 0 ]; then ok "$pre: the other $n_fold checks all pass"
    else not_ok "$pre: the other checks ($fold_bad of $n_fold failed)"; n_bad=$((n_bad+1)); fi
  fi
  if [ $rc -ne 0 ] && [ $n_bad -eq 0 ]; then not_ok "$pre: exited with status $rc"; fi
}
need_clients() {
  if ! "$PYTHON" -c 'import ollama, openai' 2>/dev/null; then
    if [ "${LAMINA_REQUIRE_CLIENTS:-0}" = 1 ]; then not_ok "python packages ollama and openai installed"
    else skip "python packages ollama and openai missing (./setup.sh --deps-only installs them)"; fi
    done_testing; exit $?
  fi
}
# check_rc DESC STATUS: ok when STATUS is 0 (for compound conditions)
check_rc() { if [ "$2" -eq 0 ]; then ok "$1"; else not_ok "$1"; fi; }
