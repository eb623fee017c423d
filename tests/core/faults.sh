#!/bin/sh
# tests/core/faults.sh - every misbehaving fake plugin is rejected with the
# expected reason while the GOOD one next to it is selected and runs a
# graph loaded into this process.
. "${top_srcdir:-.}/tests/core/common.sh"

# scenario NAME FAKE KIND REASON-REGEX [TIMEOUT]
scenario() {
    local name=$1 fake=$2 kind=$3 re=$4 t=${5:-20000}
    local d; d=$(new_dir "p_$name")
    put "$d" good fakegood
    put "$d" "$fake"
    ini "$TMP/$name.ini" "$d" "$t" "[plugins]" "cache = false"
    "$CORE_OPEN" --run "$TMP/$name.ini" > "$TMP/$name.out" 2> "$TMP/$name.err"
    expect_grep "$name: fake_$fake rejected ($kind)" \
        "^plugin fake_$fake rejected failure=$kind " "$TMP/$name.out"
    expect_grep "$name: reason" "^plugin fake_$fake rejected .*$re" "$TMP/$name.out"
    expect_grep "$name: good plugin accepted" "^plugin fakegood accepted " "$TMP/$name.out"
    expect_grep "$name: good plugin in slot 0" "^slot 0 fakegood:0 " "$TMP/$name.out"
    expect_grep "$name: graph runs on the good plugin" "^graph ok on fakegood:0" "$TMP/$name.out"
}

scenario crash_probe   crash_probe   crash     "crashed with SIGSEGV during probe"
scenario crash_compute crash_compute crash     "crashed with SIGABRT during self-test of device 0"
scenario hang          hang          hang      "hung: no complete report within 5000 ms \(stage probe\); process group killed" 5000
scenario exit          exit          exit      "helper exited with status 0 without a complete report \(stage probe\)"
scenario garbage       garbage       malformed "malformed report on fd 3 at byte [0-9]+: '.x01.x02garbage"
scenario abi_major     abi_major     abi       "plugin ABI 2\.3, host speaks 1\.0-1\.3"
scenario truncated     truncated     abi       "descriptor struct_size 24 < [0-9]+ that ABI 1\.0 requires"
scenario no_entry      no_entry      no-entry  "no symbol lamina_plugin_entry in "
scenario needdep       needdep       dlopen    "libfakedep_missing\.so\.1: cannot open shared object file"
scenario rule          rule          -         "component fake-runtime found 1\.2\.0, built against 2\.0\.0: plugin rule same-major"
scenario wrong         wrong         -         "self-test failed: .*add"

# The hang scenario kills the whole process group: nothing is left behind.
if pgrep -f "lamina-probe .*p_hang/fake_hang.so" >/dev/null 2>&1; then
    not_ok "hung helper was killed"
else
    ok "hung helper was killed"
fi

# A device rejection also names the device and the rule.
expect_grep "rule: device line names device and rule" \
    "^device fake_rule:0 rejected .*fake_rule, device 0 \(fake host device\): component fake-runtime" \
    "$TMP/rule.out"

# A newer minor with a larger descriptor loads, and runs in this process.
d=$(new_dir p_newer)
put "$d" good fakegood
put "$d" newer_minor
ini "$TMP/newer.ini" "$d" 20000 "cache = false" "[scheduler]" "backends = fake_newer_minor, fakegood"
"$CORE_OPEN" --run "$TMP/newer.ini" > "$TMP/newer.out" 2>&1
expect_grep "newer minor accepted" "^plugin fake_newer_minor accepted " "$TMP/newer.out"
expect_grep "explicit order: newer minor first" "^slot 0 fake_newer_minor:0 " "$TMP/newer.out"
expect_grep "explicit order: good second" "^slot 1 fakegood:0 " "$TMP/newer.out"
expect_grep "newer minor runs a graph" "^graph ok on fake_newer_minor:0" "$TMP/newer.out"

# Unsafe files are refused before any probe: world- and group-writable
# copies, a symlink out of the directory.  A symlink inside is fine (and,
# having the same plugin name, shadows the later file).
d=$(new_dir p_unsafe)
o=$(new_dir outside)
put "$d" good fakegood
put "$d" good evil_o
chmod o+w "$d/evil_o.so"
put "$d" good evil_g
chmod g+w "$d/evil_g.so"
put "$o" good
ln -s "$o/fake_good.so" "$d/link_out.so"
ln -s fakegood.so "$d/alias.so"
ini "$TMP/unsafe.ini" "$d" 20000 "cache = false"
"$CORE_OPEN" --run "$TMP/unsafe.ini" > "$TMP/unsafe.out" 2>&1
expect_grep "world-writable refused" "^plugin evil_o rejected failure=refused .*evil_o\.so: refused: writable by others \(mode 0757\)" "$TMP/unsafe.out"
expect_grep "group-writable refused" "^plugin evil_g rejected failure=refused .*evil_g\.so: refused: writable by group \(mode 0775\)" "$TMP/unsafe.out"
expect_grep "symlink out refused" "^plugin link_out rejected failure=refused .*link_out\.so: refused: symlink resolves outside its directory" "$TMP/unsafe.out"
expect_grep "refusals are logged as warnings" "^log: .*evil_o\.so: refused" "$TMP/unsafe.out"
expect_grep "symlink inside accepted" "^plugin fakegood accepted .*" "$TMP/unsafe.out"
expect_grep "same name later is shadowed" "^plugin fakegood disabled failure=shadowed .*shadowed by .*alias\.so" "$TMP/unsafe.out"
expect_grep "graph runs" "^graph ok on fakegood:0" "$TMP/unsafe.out"

# A group-writable directory is skipped with a warning.
d=$(new_dir p_gw)
put "$d" good fakegood
chmod 775 "$d"
ini "$TMP/gw.ini" "$d" 20000 "cache = false"
"$CORE_OPEN" "$TMP/gw.ini" > "$TMP/gw.out" 2>&1
expect_grep "group-writable directory refused" "^log: plugin directory .*p_gw refused: writable by group" "$TMP/gw.out"
if grep -q "^plugin " "$TMP/gw.out"; then not_ok "nothing loaded from it"; else ok "nothing loaded from it"; fi

# The working directory is never searched, relative entries are refused.
d=$(new_dir cwd)
put "$d" good fakegood
ini "$TMP/cwd.ini" "" 20000 "cache = false"
(cd "$d" && LAMINA_PLUGIN_PATH="plugins:." "$CORE_OPEN" "$TMP/cwd.ini") > "$TMP/cwd.out" 2>&1
if grep -q "^plugin " "$TMP/cwd.out"; then not_ok "cwd not searched"; else ok "cwd not searched"; fi
expect_grep "relative \$LAMINA_PLUGIN_PATH entry refused" "^log: plugin directory plugins refused: relative directory" "$TMP/cwd.out"

# $LAMINA_PLUGIN_PATH is searched before the configured directories.
d1=$(new_dir env1)
d2=$(new_dir env2)
put "$d1" good fakegood
put "$d2" good fakegood
ini "$TMP/env.ini" "$d2" 20000 "cache = false"
LAMINA_PLUGIN_PATH="$d1" "$CORE_OPEN" "$TMP/env.ini" > "$TMP/env.out" 2>&1
expect_grep "env directory wins" "^plugin fakegood disabled failure=shadowed .*shadowed by $d1/fakegood\.so" "$TMP/env.out"

done_testing
