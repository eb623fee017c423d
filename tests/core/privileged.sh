#!/bin/sh
# tests/core/privileged.sh - environment overrides are ignored when lamina
# runs with elevated privileges (secure_getenv): a set-user-ID copy of the
# test driver (core_open), run with $LAMINA_PLUGIN_PATH, $LAMINA_CONFIG,
# $LAMINA_BACKENDS, $LAMINA_PROBE_HELPER and $XDG_CACHE_HOME set, must
# resolve exactly what a run without them resolves: the built-in config
# search, "auto", the built-in plugin directory, the installed helper, and
# the probe cache of the effective user's home.  Needs root to make the
# set-user-ID copy; skipped otherwise.
. "${top_srcdir:-.}/tests/core/common.sh"

pub=$(mktemp -d "${TMPDIR:-/tmp}/lamina-priv-XXXXXX") || exit 1
trap 'rm -rf "$TMP" "$pub"' EXIT
chmod 755 "$pub"
mkdir "$pub/plugins" && chmod 755 "$pub/plugins"
cp "$FAKES/fake_good.so" "$pub/plugins/fakegood.so" && chmod 755 "$pub/plugins/fakegood.so"
printf '[scheduler]\nbackends = fakegood\n' > "$pub/env.ini" && chmod 644 "$pub/env.ini"

# steered FILE: the lines of `core_open --paths` the environment can steer
steered() { grep -E '^(config|order|dir|helper) ' "$1"; }

# Control: as an ordinary process the environment is honoured.
LAMINA_PLUGIN_PATH="$pub/plugins" LAMINA_CONFIG="$pub/env.ini" XDG_CACHE_HOME="$TMP/c" \
    "$CORE_OPEN" --paths > "$TMP/plain.out" 2>&1
expect_grep "unprivileged: \$LAMINA_PLUGIN_PATH honoured" "^plugin fakegood accepted" "$TMP/plain.out"
if grep -qx "config $pub/env.ini" "$TMP/plain.out" && grep -qx "order fakegood" "$TMP/plain.out" &&
   grep -q "^dir $pub/plugins .*\[env\]$" "$TMP/plain.out" && grep -qx "cache $TMP/c/lamina" "$TMP/plain.out" &&
   grep -qx "helper $LAMINA_PROBE_HELPER" "$TMP/plain.out"; then
    ok "unprivileged: config, plugin path, probe helper and cache from the environment"
else
    not_ok "unprivileged: config, plugin path, probe helper and cache from the environment"
    sed 's/^/#   /' "$TMP/plain.out"
fi
# without the variables: what the privileged run must resolve
env -u LAMINA_PROBE_HELPER -u XDG_CACHE_HOME "$CORE_OPEN" --paths > "$TMP/default.out" 2>&1
steered "$TMP/default.out" > "$TMP/default.s"

cp "$CORE_OPEN" "$pub/core_open"
if [ "$(id -u)" != 0 ] || ! chown nobody "$pub/core_open" 2>/dev/null ||
   ! chmod 4755 "$pub/core_open"; then
    skip "privileged run needs root (to make a set-user-ID copy)"
    done_testing
    exit $?
fi
# Make sure a set-user-ID copy really runs as another user (nosuid mounts
# ignore the bit): asked of id(1), not of lamina.
nobody_uid=$(id -u nobody)
if ! cp "$(command -v id)" "$pub/id" || ! chown nobody "$pub/id" || ! chmod 4755 "$pub/id" ||
   [ "$("$pub/id" -u 2>/dev/null)" != "$nobody_uid" ]; then
    skip "set-user-ID bit not effective here (nosuid mount?)"
    done_testing
    exit $?
fi
diag "set-user-ID copies run as nobody (uid $nobody_uid)"
# LAMINA_BACKENDS="not,,valid" would make lamina_runtime_open fail.  (The
# sanitizers cannot read ASAN_OPTIONS in a set-user-ID process:
# /proc/self/environ is not readable.)
LAMINA_PLUGIN_PATH="$pub/plugins" LAMINA_CONFIG="$pub/env.ini" LAMINA_BACKENDS="not,,valid" \
    LAMINA_PROBE_HELPER="$LAMINA_PROBE_HELPER" XDG_CACHE_HOME="$TMP/c" \
    "$pub/core_open" --paths > "$TMP/priv.out" 2>&1
rc=$?
if [ "$rc" -ne 0 ] && grep -q "LeakSanitizer has encountered a fatal error" "$TMP/priv.out"; then
    skip "privileged: exit status (LeakSanitizer cannot run in a set-user-ID process)"
else
    check "privileged: runs (rc $rc)" test "$rc" -eq 0
fi
if grep -q "^open failed" "$TMP/priv.out" || ! grep -q "^helper " "$TMP/priv.out"; then
    not_ok "privileged: lamina_runtime_open succeeds (the invalid \$LAMINA_BACKENDS ignored)"
    sed 's/^/#   /' "$TMP/priv.out"
else
    ok "privileged: lamina_runtime_open succeeds (the invalid \$LAMINA_BACKENDS ignored)"
fi
steered "$TMP/priv.out" > "$TMP/priv.s"
if [ -s "$TMP/default.s" ] && cmp -s "$TMP/priv.s" "$TMP/default.s"; then
    ok "privileged: the built-in config, order, plugin directory and helper: $(tr '\n' '|' < "$TMP/priv.s")"
else
    not_ok "privileged: the built-in config, order, plugin directory and helper"
    diag "privileged:"; sed 's/^/#   /' "$TMP/priv.s"; diag "without the variables:"; sed 's/^/#   /' "$TMP/default.s"
fi
if grep -q "^plugin fakegood" "$TMP/priv.out"; then
    not_ok "privileged: nothing loaded from \$LAMINA_PLUGIN_PATH"
    sed 's/^/#   /' "$TMP/priv.out"
else
    ok "privileged: nothing loaded from \$LAMINA_PLUGIN_PATH"
fi
nobody_home=$(getent passwd nobody | cut -d: -f6)
case $nobody_home in
    /*) expect_grep "privileged: probe cache in nobody's home ($nobody_home), not \$XDG_CACHE_HOME" \
            "^cache $nobody_home/\.cache/lamina$" "$TMP/priv.out" ;;
    *) expect_grep "privileged: no probe cache (nobody has no home), not \$XDG_CACHE_HOME" \
            "^cache -$" "$TMP/priv.out" ;;
esac
done_testing
