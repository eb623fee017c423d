#!/bin/sh
# tests/core/privileged.sh - environment overrides are ignored when lamina
# runs with elevated privileges (secure_getenv).  Needs root to make a
# set-user-ID copy of the test driver; skipped otherwise.
. "${top_srcdir:-.}/tests/core/common.sh"

pub=$(mktemp -d "${TMPDIR:-/tmp}/lamina-priv-XXXXXX") || exit 1
trap 'rm -rf "$TMP" "$pub"' EXIT
chmod 755 "$pub"
mkdir "$pub/plugins" && chmod 755 "$pub/plugins"
cp "$FAKES/fake_good.so" "$pub/plugins/fakegood.so" && chmod 755 "$pub/plugins/fakegood.so"
printf '[scheduler]\nbackends = fakegood\n' > "$pub/env.ini" && chmod 644 "$pub/env.ini"

# Control: as an ordinary process the environment is honoured.
LAMINA_PLUGIN_PATH="$pub/plugins" LAMINA_CONFIG="$pub/env.ini" XDG_CACHE_HOME="$TMP/c" \
    "$CORE_OPEN" > "$TMP/plain.out" 2>&1
expect_grep "unprivileged: \$LAMINA_PLUGIN_PATH honoured" "^plugin fakegood accepted" "$TMP/plain.out"

cp "$CORE_OPEN" "$pub/core_open"
if [ "$(id -u)" != 0 ] || ! chown nobody "$pub/core_open" 2>/dev/null ||
   ! chmod 4755 "$pub/core_open"; then
    skip "privileged run needs root (to make a set-user-ID copy)"
    done_testing
    exit $?
fi
# Make sure the copy really runs with a different effective user (nosuid
# mounts ignore the bit).
LAMINA_PLUGIN_PATH="$pub/plugins" LAMINA_CONFIG="$pub/env.ini" LAMINA_BACKENDS="not,,valid" \
    LAMINA_PROBE_HELPER="$LAMINA_PROBE_HELPER" ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0" \
    "$pub/core_open" > "$TMP/priv.out" 2>&1
rc=$?
if grep -q "^open failed" "$TMP/priv.out" && grep -q "LAMINA_BACKENDS" "$TMP/priv.out"; then
    skip "set-user-ID bit not effective here (nosuid mount?)"
    done_testing
    exit $?
fi
if [ "$rc" -ne 0 ] && grep -q "LeakSanitizer has encountered a fatal error" "$TMP/priv.out"; then
    skip "privileged: exit status (LeakSanitizer cannot run in a set-user-ID process)"
else
    check "privileged: runs (rc $rc)" test "$rc" -eq 0
fi
if grep -q "^plugin fakegood" "$TMP/priv.out"; then
    not_ok "privileged: \$LAMINA_PLUGIN_PATH ignored"
    sed 's/^/#   /' "$TMP/priv.out"
else
    ok "privileged: \$LAMINA_PLUGIN_PATH ignored"
fi
if grep -q "LAMINA_BACKENDS\|LAMINA_CONFIG" "$TMP/priv.out"; then
    not_ok "privileged: \$LAMINA_BACKENDS and \$LAMINA_CONFIG ignored"
else
    ok "privileged: \$LAMINA_BACKENDS and \$LAMINA_CONFIG ignored"
fi
done_testing
