#!/usr/bin/env bash
# peer-build.sh - fetch and build the llama.cpp peer implementation (CPU only)
# plus lamina's own scripts/peer/dump_logits.c linked against it.
#
# llama.cpp comes from the PyPI sdist of llama-cpp-python (vendor/llama.cpp);
# nothing of it is ever committed: everything lands in ${LAMINA_PEER_DIR:-.peer}
# (git-ignored).  Idempotent: re-running only redoes what is missing/outdated.
#
# Environment:
#   LAMINA_PEER_DIR    build/download dir (default: <repo>/.peer)
#   LAMINA_PEER_SDIST  use this local sdist tarball instead of `pip download`
#   LAMINA_PEER_JOBS   parallel build jobs (default 2)
#   LAMINA_PEER_VULKAN 1: build llama.cpp with its Vulkan backend as well,
#                      into $LAMINA_PEER_DIR/build-vulkan (needs glslc and
#                      libvulkan-dev, which setup.sh installs)
set -euo pipefail

LCP_VERSION=0.3.36
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PEER_DIR=${LAMINA_PEER_DIR:-$ROOT/.peer}
case $PEER_DIR in /*) ;; *) PEER_DIR=$ROOT/$PEER_DIR ;; esac
JOBS=${LAMINA_PEER_JOBS:-2}
SDIST_NAME=llama_cpp_python-$LCP_VERSION.tar.gz
SRC_TOP=$PEER_DIR/llama_cpp_python-$LCP_VERSION
LLAMA_SRC=$SRC_TOP/vendor/llama.cpp
BUILD=$PEER_DIR/build
VULKAN=${LAMINA_PEER_VULKAN:-0}
[ "$VULKAN" = 1 ] && BUILD=$PEER_DIR/build-vulkan
BIN=$PEER_DIR/bin

log() { printf '[peer-build] %s\n' "$*" >&2; }

# --- 1. host dependencies ------------------------------------------------
need_pkgs=()
command -v cmake >/dev/null 2>&1 || need_pkgs+=(cmake)
command -v g++   >/dev/null 2>&1 || need_pkgs+=(g++)
command -v gcc   >/dev/null 2>&1 || need_pkgs+=(gcc)
command -v make  >/dev/null 2>&1 || need_pkgs+=(make)
command -v git   >/dev/null 2>&1 || need_pkgs+=(git)
command -v python3 >/dev/null 2>&1 || need_pkgs+=(python3)
if [ "$VULKAN" = 1 ]; then
    # llama.cpp's Vulkan backend: loader headers, glslc, SPIR-V headers
    for p in libvulkan-dev glslc spirv-headers; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need_pkgs+=("$p")
    done
fi
if [ ! -f "$PEER_DIR/$SDIST_NAME" ] && [ -z "${LAMINA_PEER_SDIST:-}" ] \
   && ! python3 -m pip --version >/dev/null 2>&1; then
    need_pkgs+=(python3-pip)
fi
if [ ${#need_pkgs[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        log "installing: ${need_pkgs[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq "${need_pkgs[@]}"
    else
        log "missing build dependencies; please install: ${need_pkgs[*]}"
        log "  e.g.: sudo apt-get install -y ${need_pkgs[*]}"
        exit 1
    fi
fi

mkdir -p "$PEER_DIR" "$BIN"

# --- 2. sdist -------------------------------------------------------------
if [ ! -f "$PEER_DIR/$SDIST_NAME" ]; then
    if [ -n "${LAMINA_PEER_SDIST:-}" ]; then
        log "copying sdist from $LAMINA_PEER_SDIST"
        cp "$LAMINA_PEER_SDIST" "$PEER_DIR/$SDIST_NAME"
    else
        log "downloading llama-cpp-python==$LCP_VERSION sdist"
        python3 -m pip download --no-deps --no-binary :all: \
            "llama-cpp-python==$LCP_VERSION" -d "$PEER_DIR"
    fi
fi
if [ ! -f "$SRC_TOP/.lamina-extracted" ]; then
    log "extracting $SDIST_NAME"
    rm -rf "$SRC_TOP"
    tar -xzf "$PEER_DIR/$SDIST_NAME" -C "$PEER_DIR"
    touch "$SRC_TOP/.lamina-extracted"
fi
[ -f "$LLAMA_SRC/include/llama.h" ] || { log "no vendor/llama.cpp in sdist?"; exit 1; }

# --- 2b. Vulkan headers for the peer --------------------------------------
# llama.cpp's Vulkan backend needs Vulkan headers >= 1.3.261
# (VK_EXT_layer_settings); Debian 12 has 1.3.239.  For the peer only, the
# headers of Debian 13's libvulkan-dev and spirv-headers are downloaded and
# unpacked under $PEER_DIR/vk-headers (nothing is installed; lamina itself
# builds against the system's headers).
VK_INC=
if [ "$VULKAN" = 1 ]; then
    VKH=$PEER_DIR/vk-headers
    if [ ! -f "$VKH/usr/include/vulkan/vulkan_core.h" ] || ! grep -q VK_EXT_layer_settings "$VKH/usr/include/vulkan/vulkan_core.h"; then
        log "fetching newer Vulkan headers (Debian 13) into $VKH"
        T=$PEER_DIR/apt-trixie
        rm -rf "$T"; mkdir -p "$T/lists/partial" "$VKH"
        echo 'deb http://deb.debian.org/debian trixie main' > "$T/sources.list"
        APT=(-o Dir::Etc::sourcelist="$T/sources.list" -o Dir::Etc::sourceparts=- -o Dir::State::Lists="$T/lists"
             -o Dir::Cache::archives="$T")
        apt-get "${APT[@]}" update -qq
        (cd "$T" && apt-get "${APT[@]}" download libvulkan-dev spirv-headers) >&2
        for d in "$T"/*.deb; do dpkg-deb -x "$d" "$VKH"; done
    fi
    VK_INC=$VKH/usr/include
fi

# --- 3. configure + build llama.cpp --------------------------------------
# AMX: -march=native turns on AMX on Sapphire Rapids+ hosts, but the AMX
# kernels SIGILL in VMs that advertise AMX without enabling tile state, and
# they change numerics vs. other x86 hosts.  Disable by default
# (LAMINA_PEER_AMX=1 keeps them).  -mno-* wins over a later -march=native.
EXTRA_FLAGS=""
[ "${LAMINA_PEER_AMX:-0}" = 1 ] || EXTRA_FLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
[ -n "${VK_INC:-}" ] && EXTRA_FLAGS="$EXTRA_FLAGS -isystem $VK_INC"
cmake_args=(
    -DCMAKE_BUILD_TYPE=Release
    -DBUILD_SHARED_LIBS=ON
    -DGGML_NATIVE=ON
    "-DCMAKE_C_FLAGS=$EXTRA_FLAGS" "-DCMAKE_CXX_FLAGS=$EXTRA_FLAGS"
    -DGGML_CUDA=OFF "-DGGML_VULKAN=$([ "$VULKAN" = 1 ] && echo ON || echo OFF)" -DGGML_METAL=OFF
    -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=ON
    -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON
)
[ -n "${VK_INC:-}" ] && cmake_args+=("-DVulkan_INCLUDE_DIR=$VK_INC")
if [ ! -f "$BUILD/CMakeCache.txt" ] || [ "$(cat "$BUILD/.lamina-cmake-args" 2>/dev/null)" != "${cmake_args[*]}" ]; then
    log "configuring llama.cpp: ${cmake_args[*]}"
    cmake -S "$LLAMA_SRC" -B "$BUILD" "${cmake_args[@]}" >&2
    printf '%s' "${cmake_args[*]}" > "$BUILD/.lamina-cmake-args"
fi

avail=$(cmake --build "$BUILD" --target help 2>/dev/null | sed -n 's/^\.\.\. \([A-Za-z0-9_-]*\).*/\1/p')
targets=(llama ggml ggml-base ggml-cpu)
for t in llama-bench llama-simple llama-cli llama-server llama-tokenize; do
    if grep -qx "$t" <<<"$avail"; then targets+=("$t"); fi
done
log "building targets: ${targets[*]} (-j$JOBS)"
cmake --build "$BUILD" --config Release -j"$JOBS" --target "${targets[@]}" >&2

# --- 4. lamina's dump tool -----------------------------------------------
LIBDIR=$BUILD/bin
[ -e "$LIBDIR/libllama.so" ] || LIBDIR=$(dirname "$(find "$BUILD" -name 'libllama.so*' | head -n1)")
DUMP_SRC=$ROOT/scripts/peer/dump_logits.c
DUMP_BIN=$BIN/dump_logits; [ "$VULKAN" = 1 ] && DUMP_BIN=$BIN/dump_logits-vulkan
if [ ! -x "$DUMP_BIN" ] || [ "$DUMP_SRC" -nt "$DUMP_BIN" ] || [ "$LIBDIR/libllama.so" -nt "$DUMP_BIN" ]; then
    log "compiling $DUMP_SRC"
    gcc -O2 -g -std=gnu11 -Wall -Wextra -Wno-unused-parameter \
        -I"$LLAMA_SRC/include" -I"$LLAMA_SRC/ggml/include" \
        "$DUMP_SRC" -o "$DUMP_BIN" \
        -L"$LIBDIR" -lllama -lggml -lggml-base -lm -Wl,-rpath,"$LIBDIR"
fi

# --- 5. record version info ----------------------------------------------
commit=$(git -C "$LLAMA_SRC" rev-parse HEAD 2>/dev/null || echo unknown)
commit_date=$(git -C "$LLAMA_SRC" log -1 --format=%cI 2>/dev/null || echo unknown)
{
    echo "llama_cpp_python_version=$LCP_VERSION"
    echo "llama_cpp_commit=$commit"
    echo "llama_cpp_commit_date=$commit_date"
    echo "sdist_sha256=$(sha256sum "$PEER_DIR/$SDIST_NAME" | cut -d' ' -f1)"
    echo "cmake_args=${cmake_args[*]}"
} > "$PEER_DIR/peer-version$([ "$VULKAN" = 1 ] && echo -vulkan).txt"

echo "peer dir:     $PEER_DIR"
echo "llama.cpp:    $LLAMA_SRC (commit $commit)"
echo "libraries:    $LIBDIR"
for t in "${targets[@]}"; do
    [ -x "$BUILD/bin/$t" ] && echo "binary:       $BUILD/bin/$t"
done
echo "dump tool:    $DUMP_BIN"
