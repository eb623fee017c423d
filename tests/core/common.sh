# tests/core/common.sh - shared setup for the core's shell tests.
. "${top_srcdir:-.}/tests/lib.sh"
umask 022
FAKES="$B/tests/core/.libs"
CORE_OPEN="$B/tests/core/core_open"
LAMINA_PROBE_HELPER="$B/runtime/lamina-probe"
export LAMINA_PROBE_HELPER
unset LAMINA_CONFIG LAMINA_BACKENDS LAMINA_PLUGIN_PATH
# Let a crashing helper die of its signal, sanitizers or not.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}handle_segv=0:handle_sigbus=0:handle_sigfpe=0:handle_abort=0"
export ASAN_OPTIONS
TMP=$(mktemp -d "${TMPDIR:-/tmp}/lamina-core-XXXXXX") || exit 1
chmod 700 "$TMP"
trap 'rm -rf "$TMP"' EXIT
XDG_CACHE_HOME="$TMP/xdg-cache"
export XDG_CACHE_HOME

# new_dir NAME: an empty, safe plugin directory $TMP/NAME
new_dir() { rm -rf "${TMP:?}/$1"; mkdir -p "$TMP/$1"; chmod 755 "$TMP/$1"; echo "$TMP/$1"; }

# put DIR FAKE [AS]: copy fake plugin FAKE (e.g. good) into DIR as AS.so
put() { cp "$FAKES/fake_$2.so" "$1/${3:-fake_$2}.so"; chmod 755 "$1/${3:-fake_$2}.so"; }

# ini FILE DIR TIMEOUT_MS [LINES...]: a config searching DIR only
ini() {
    local f=$1 d=$2 t=$3; shift 3
    {
        echo "[plugins]"
        echo "path = $d"
        echo "probe_timeout_ms = $t"
        echo "cache_dir = $TMP/cache"
        for l in "$@"; do printf '%s\n' "$l"; done
    } > "$f"
}
