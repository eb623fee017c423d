# tests/rocm/common.sh - shared setup of the GPU plugin scenarios
# (scenarios.sh for rocm, cuda.sh for cuda): a private directory, the
# probe helper from the build tree, the tiny model, and the helpers below.
. "${top_srcdir:-.}/tests/lib.sh"
umask 022
unset LAMINA_CONFIG LAMINA_BACKENDS LAMINA_PLUGIN_PATH
TMP=$(mktemp -d "${TMPDIR:-/tmp}/lamina-rocm-XXXXXX") || exit 1
chmod 755 "$TMP"
trap 'rm -rf "$TMP"' EXIT
export LAMINA_PROBE_HELPER="$B/runtime/lamina-probe"
export XDG_CACHE_HOME="$TMP/xdg-cache"
# A crashing probe helper must die of its signal, sanitizers or not.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}handle_segv=0:handle_sigbus=0:handle_abort=0"
export ASAN_OPTIONS
# Runs that load vulkan.so into lamina: lavapipe's globals outlive the ICD
# the loader unmaps, which LeakSanitizer reports (see tests/vulkan/vk_test.c).
NOLEAK="${ASAN_OPTIONS}:detect_leaks=0"

FAKE_HIP="$B/tests/rocm/.libs/fake_hip.so"
FAKE_CUDA="$B/tests/rocm/.libs/fake_cuda.so"
ROCM63="$B/tests/rocm/.libs/rocm63.so"
REAL_CUDA="$B/plugins/rocm/.libs/cuda.so"
CPU="$B/plugins/cpu/.libs/cpu.so"
VULKAN="$B/plugins/vulkan/.libs/vulkan.so"
REAL="$B/plugins/rocm/.libs/rocm.so"
have_vulkan=0; [ -f "$VULKAN" ] && have_vulkan=1

# Seed 5: a model whose greedy answer keeps a margin wide enough that the
# cpu plugin's 8-bit activations and the GPU kernels' float ones pick the
# same 6 tokens (with seed 3 the last token differs), so that every
# generation can be compared with the cpu plugin's, token for token.
if ! "$PYTHON" "$S/tests/tools/make_tiny_model.py" --arch llama --type q4_k --seed 5 \
        --out "$TMP/tiny.gguf" > "$TMP/gen.log" 2>&1; then
    skip "python gguf package missing: cannot generate the tiny model"
    done_testing; exit 0
fi

# runtime DIR SONAME FILE [FAKE]: a fake runtime (default the HIP one) as
# DIR/FILE with the soname link
runtime() {
    mkdir -p "$1"
    cp "${4:-$FAKE_HIP}" "$1/$3"
    ln -sf "$3" "$1/$2"
}

# plugins NAME PLUGIN [novulkan]: a plugin directory with cpu, PLUGIN
# (as GPU.so) and vulkan
GPU=${GPU:-rocm}
plugins() {
    d="$TMP/p_$1"; mkdir -p "$d"; chmod 755 "$d"
    cp "$CPU" "$d/cpu.so"
    cp "$2" "$d/$GPU.so"
    [ "$have_vulkan" = 1 ] && [ "${3:-}" != novulkan ] && cp "$VULKAN" "$d/vulkan.so"
    chmod 755 "$d"/*.so
    echo "$d"
}

# ini NAME DIR TIMEOUT [LINES...]: its config (probe cache per scenario,
# shared by `backends` and `run`)
ini() {
    f="$TMP/$1.ini"; n=$1; d=$2; t=$3; shift 3
    {
        echo "[plugins]"; echo "path = $d"; echo "probe_timeout_ms = $t"
        echo "cache_dir = $TMP/cache-$n"
        echo "[scheduler]"; echo "backends = $GPU, vulkan, cpu"
        for l in "$@"; do printf '%s\n' "$l"; done
    } > "$f"
    echo "$f"
}

# backends NAME INI: `lamina backends` into $TMP/NAME.b
backends() {
    "$LAMINA" --config "$2" backends > "$TMP/$1.b" 2>&1
    check "$1: lamina backends exits 0" test $? -eq 0
}

# The cpu plugin's greedy answer on the tiny model, with no other plugin in
# its directory: every generation of the scenarios must give the same text
# (same_as_cpu).
mkdir -p "$TMP/p_cpuonly" && chmod 755 "$TMP/p_cpuonly" && cp "$CPU" "$TMP/p_cpuonly/cpu.so" &&
    chmod 755 "$TMP/p_cpuonly/cpu.so"
printf '[plugins]\npath = %s\ncache_dir = %s\n[scheduler]\nbackends = cpu\n' "$TMP/p_cpuonly" \
    "$TMP/cache-cpuonly" > "$TMP/cpuonly.ini"
"$LAMINA" --config "$TMP/cpuonly.ini" run "$TMP/tiny.gguf" "The quick brown fox" -n 6 --temp 0 --raw \
    > "$TMP/cpu.out" 2> "$TMP/cpu.err"
if [ $? -ne 0 ] || ! grep -q "generated 6 tokens" "$TMP/cpu.err" || [ ! -s "$TMP/cpu.out" ]; then
    not_ok "the cpu plugin alone generates 6 tokens (the answer to compare with)"
    sed 's/^/#   /' "$TMP/cpu.err" | tail -20; done_testing; exit 1
fi
diag "the cpu plugin alone answers: $(tr '\n' ' ' < "$TMP/cpu.out")"

# same_as_cpu NAME: $TMP/NAME.err says 6 tokens were generated and
# $TMP/NAME.out is the cpu plugin's answer, byte for byte
same_as_cpu() {
    if grep -q "generated 6 tokens" "$TMP/$1.err" && cmp -s "$TMP/$1.out" "$TMP/cpu.out"; then
        ok "$1: the same 6 greedy tokens as the cpu plugin alone"
    else
        not_ok "$1: the same 6 greedy tokens as the cpu plugin alone"
        diag "got: $(tr '\n' ' ' < "$TMP/$1.out")" "cpu: $(tr '\n' ' ' < "$TMP/cpu.out")"
        grep "generated" "$TMP/$1.err" | sed 's/^/#   /'
    fi
}

# generate NAME INI SELECTED [leaks]: a short greedy generation; the plan
# line must put every layer on SELECTED (a plugin, for its device 0, or
# PLUGIN:N), and the 6 tokens must be the cpu plugin's
generate() {
    n=$1; f=$2; sel=$3
    case $sel in *:*) ;; *) sel=$sel:0 ;; esac
    if [ "${4:-}" = leaks ]; then
        "$LAMINA" --config "$f" run "$TMP/tiny.gguf" "The quick brown fox" -n 6 --temp 0 --raw \
            > "$TMP/$n.out" 2> "$TMP/$n.err"
    else
        ASAN_OPTIONS="$NOLEAK" "$LAMINA" --config "$f" run "$TMP/tiny.gguf" "The quick brown fox" \
            -n 6 --temp 0 --raw > "$TMP/$n.out" 2> "$TMP/$n.err"
    fi
    rc=$?
    if [ $rc -eq 0 ]; then ok "$n: generation exits 0"; else
        not_ok "$n: generation exits 0 (got $rc)"; sed 's/^/#   /' "$TMP/$n.err" | tail -20; fi
    expect_grep "$n: the model runs on $sel" "^$sel .* layers 0-3 \(4/4\) \+ embedding \+ output" "$TMP/$n.err"
    same_as_cpu "$n"
}

# The fallback after the GPU plugin: vulkan where it is built, else cpu.
NEXT=cpu; [ "$have_vulkan" = 1 ] && NEXT=vulkan
