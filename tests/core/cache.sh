#!/bin/sh
# tests/core/cache.sh - probe results are cached, reused without a helper,
# and invalidated by any change they depended on.
. "${top_srcdir:-.}/tests/core/common.sh"

d=$(new_dir plugins)
put "$d" good fakegood
put "$d" hang
dep="$TMP/dep-file"
echo one > "$dep"
ini "$TMP/c.ini" "$d" 1500 "[backend.fakegood]" "env = FAKE_DEP_FILE=$dep"
run() { "$CORE_OPEN" "$@" "$TMP/c.ini" > "$TMP/run.out" 2>&1; }

run
expect_grep "cold: good probed" "^plugin fakegood accepted failure=- cache=0" "$TMP/run.out"
expect_grep "cold: hang probed" "^plugin fake_hang rejected failure=hang cache=0" "$TMP/run.out"
n=$(ls "$TMP/cache" | grep -c '^probe-.*\.json$')
check "one cache entry per plugin ($n)" test "$n" -eq 2
if ls -a "$TMP/cache" | grep -q '^\.probe-'; then not_ok "no temp files left"; else ok "no temp files left"; fi

run
expect_grep "warm: good from cache" "^plugin fakegood accepted failure=- cache=1" "$TMP/run.out"
expect_grep "warm: hang verdict from cache (no wait)" "^plugin fake_hang rejected failure=hang cache=1" "$TMP/run.out"
expect_grep "warm: still selected" "^slot 0 fakegood:0" "$TMP/run.out"

# With no helper at all, a warm start still works: nothing is spawned.
LAMINA_PROBE_HELPER=/nonexistent/lamina-probe "$CORE_OPEN" "$TMP/c.ini" > "$TMP/nohelper.out" 2>&1
# A different helper is part of the key: a miss, and this one cannot be spawned.
expect_grep "helper identity is part of the key" "^plugin fakegood rejected failure=spawn" "$TMP/nohelper.out"

# A file the plugin reported changes: miss.
echo two > "$dep"
run
expect_grep "reported file changed: re-probed" "^plugin fakegood accepted failure=- cache=0" "$TMP/run.out"
expect_grep "other plugin still cached" "^plugin fake_hang rejected failure=hang cache=1" "$TMP/run.out"
run
expect_grep "and cached again" "^plugin fakegood accepted failure=- cache=1" "$TMP/run.out"

# The plugin file changes (same content, new mtime): miss.
touch -d '2001-01-01 00:00:00' "$d/fakegood.so"
run
expect_grep "plugin file changed: re-probed" "^plugin fakegood accepted failure=- cache=0" "$TMP/run.out"

# The backend's env changes: miss.
ini "$TMP/c.ini" "$d" 1500 "[backend.fakegood]" "env = FAKE_DEP_FILE=$dep, X=1"
run
expect_grep "env changed: re-probed" "^plugin fakegood accepted failure=- cache=0" "$TMP/run.out"

# --reprobe forces.
run --reprobe
expect_grep "--reprobe: re-probed" "^plugin fakegood accepted failure=- cache=0" "$TMP/run.out"
expect_grep "--reprobe: hang probed again" "^plugin fake_hang rejected failure=hang cache=0" "$TMP/run.out"

# A corrupt entry is ignored with a warning, and rewritten.
for f in "$TMP"/cache/probe-*.json; do printf '{"key": [1, 2' > "$f"; done
run
expect_grep "corrupt entry warned" "^log: probe cache entry .* is corrupt" "$TMP/run.out"
expect_grep "corrupt entry: re-probed" "^plugin fakegood accepted failure=- cache=0" "$TMP/run.out"
run
expect_grep "rewritten" "^plugin fakegood accepted failure=- cache=1" "$TMP/run.out"

# A stale rejection does not outlive its fix: a plugin that failed its
# self-test is replaced by a good build under the same file name.
d2=$(new_dir plugins2)
put "$d2" wrong x
ini "$TMP/s.ini" "$d2" 20000
"$CORE_OPEN" "$TMP/s.ini" > "$TMP/s1.out" 2>&1
"$CORE_OPEN" "$TMP/s.ini" > "$TMP/s2.out" 2>&1
expect_grep "wrong build rejected, cached" "^plugin fake_wrong rejected .*cache=1" "$TMP/s2.out"
cp "$FAKES/fake_good.so" "$d2/x.so.new" && mv "$d2/x.so.new" "$d2/x.so"
"$CORE_OPEN" "$TMP/s.ini" > "$TMP/s3.out" 2>&1
expect_grep "fixed build accepted" "^plugin fakegood accepted failure=- cache=0" "$TMP/s3.out"

# A library that cannot be loaded is not cached (installing it must be enough).
d3=$(new_dir plugins3)
put "$d3" needdep
ini "$TMP/n.ini" "$d3" 20000
"$CORE_OPEN" "$TMP/n.ini" > /dev/null 2>&1
"$CORE_OPEN" "$TMP/n.ini" > "$TMP/n.out" 2>&1
expect_grep "dlopen failure not cached" "^plugin fake_needdep rejected failure=dlopen cache=0" "$TMP/n.out"

# cache = false writes nothing; the default location is $XDG_CACHE_HOME/lamina.
d4=$(new_dir plugins4)
put "$d4" good fakegood
printf '[plugins]\npath = %s\ncache = false\n' "$d4" > "$TMP/off.ini"
"$CORE_OPEN" "$TMP/off.ini" > /dev/null 2>&1
check "cache = false writes nothing" test ! -e "$XDG_CACHE_HOME/lamina"
printf '[plugins]\npath = %s\n' "$d4" > "$TMP/xdg.ini"
"$CORE_OPEN" "$TMP/xdg.ini" > /dev/null 2>&1
check "default cache under \$XDG_CACHE_HOME/lamina" test -n "$(ls "$XDG_CACHE_HOME/lamina" 2>/dev/null)"

done_testing
