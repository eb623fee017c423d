# bench-lib.sh - what the benchmark scripts share; sourced, not run.
#
#   bench_use_lamina NAME   check $LAMINA (default: the installed
#                           _install/bin/lamina) and $MODEL; for a build
#                           tree's runtime/lamina, point the plugin path and
#                           the probe helper into that tree.  NAME prefixes
#                           the error lines.
#   bench_cpu               the CPU model, as lscpu names it
# Needs ROOT (the source tree) set by the caller.

bench_use_lamina() {
  LAMINA=${LAMINA:-$ROOT/_install/bin/lamina}
  [ -x "$LAMINA" ] || { echo "$1: $LAMINA not found (run ./setup.sh or set LAMINA)" >&2; exit 1; }
  [ -f "$MODEL" ] || { echo "$1: model not found: $MODEL" >&2; exit 1; }
  case $LAMINA in
    */runtime/lamina)   # a build tree: its plugins and probe helper
      local b
      b=$(cd "$(dirname "$LAMINA")/.." && pwd)
      export LAMINA_PLUGIN_PATH=$b/plugins/cpu/.libs LAMINA_PROBE_HELPER=$b/runtime/lamina-probe ;;
  esac
}

bench_cpu() {
  lscpu | sed -n 's/^Model name: *//p' | head -n 1
}
