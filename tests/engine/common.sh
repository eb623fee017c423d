# tests/engine/common.sh - run the CLI from the build tree: the cpu plugin
# (and vulkan when built), the probe helper, the shipped catalogue, and a
# private probe cache.
. "${top_srcdir:-.}/tests/lib.sh"
umask 022
unset LAMINA_CONFIG LAMINA_BACKENDS
TMP=$(mktemp -d "${TMPDIR:-/tmp}/lamina-engine-XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
export LAMINA_PROBE_HELPER="$B/runtime/lamina-probe"
export LAMINA_PLUGIN_PATH="$B/plugins/cpu/.libs"
export LAMINA_CATALOGUE="$S/models/catalogue.ini"
export XDG_CACHE_HOME="$TMP/cache"
# The default model: $LAMINA_DEFAULT_MODEL, else where setup.sh puts it.
MODEL_DIR=${XDG_DATA_HOME:-$HOME/.local/share}/lamina/models
DEFAULT_MODEL=${LAMINA_DEFAULT_MODEL:-$MODEL_DIR/gemma-3-270m-q4_k_m.gguf}
export LAMINA_MODELS=$(dirname "$DEFAULT_MODEL")
have_model() { [ -s "$DEFAULT_MODEL" ]; }
# need_model: skip the rest when the default model is absent, unless CI
# requires it (LAMINA_REQUIRE_MODEL=1), where its absence is a failure.
need_model() {
  if have_model; then return 0; fi
  if [ "${LAMINA_REQUIRE_MODEL:-0}" = 1 ]; then not_ok "default model present at $DEFAULT_MODEL"
  else skip "default model not installed (run ./setup.sh): $DEFAULT_MODEL"; fi
  done_testing; exit $?
}
have_python_gguf() { "$PYTHON" -c 'import gguf' 2>/dev/null; }
# golden_run DESC GOLDEN_CHECK_ARGS...: one comparison with llama.cpp's
# recording (tests/engine/golden_check.c) as one test; its lines are shown
# as comments, a failure's lines again at the end.  A crash is a failure.
golden_run() {
  _d=$1; shift
  "$B/tests/engine/golden_check" "$@" >"$TMP/golden.out" 2>&1; _rc=$?
  sed 's/^\(not \)\{0,1\}ok [0-9]* - /# /' "$TMP/golden.out" | grep -v '^1\.\.'
  if [ $_rc -eq 0 ]; then ok "$_d"
  else not_ok "$_d (exit $_rc)"; grep '^not ok' "$TMP/golden.out" | sed 's/^/# /'; fi
}
