#!/bin/sh
# tests/core/cli.sh - `lamina backends [--json]` and `lamina plugin-check`.
. "${top_srcdir:-.}/tests/core/common.sh"

d=$(new_dir plugins)
put "$d" good fakegood
put "$d" wrong
put "$d" abi_major
ini "$TMP/l.ini" "$d" 20000 "[backend.fakegood]" "env = FAKE_NOTE=hello from the ini"

"$LAMINA" --config "$TMP/l.ini" backends > "$TMP/b.out" 2> "$TMP/b.err"
check "backends exits 0" test $? -eq 0
expect_grep "lists the good plugin with path, version, ABI" "^fakegood 0\.0\.1  ABI 1\.3  $d/fakegood\.so  \[accepted\]" "$TMP/b.out"
expect_grep "component found vs built" "component fake-runtime +found 1\.4\.2 +built 1\.0\.0 +rule same-major" "$TMP/b.out"
expect_grep "device line" "device 0: fake host device \(cpu\)  \[accepted\]  slot 0" "$TMP/b.out"
expect_grep "driver and versions" "driver fakedrv 3\.1\.4, runtime 1\.4\.2, api 1\.0, arch fakearch:feat\+" "$TMP/b.out"
expect_grep "memory" "memory 1\.0 GiB total, 512\.0 MiB free" "$TMP/b.out"
expect_grep "self-test summary" "self-test passed: [0-9]+ cases \([0-9]+ unsupported\) in" "$TMP/b.out"
expect_grep "env from the ini reaches the probe" "note: hello from the ini" "$TMP/b.out"
expect_grep "ABI rejection line" "reason: fake_abi_major: plugin ABI 2\.3, host speaks 1\.0-1\.3" "$TMP/b.out"
expect_grep "self-test rejection line" "reason: fake_wrong, device 0 \(fake host device\): self-test failed" "$TMP/b.out"
expect_grep "eligible devices" "^  0  fakegood:0 fake host device" "$TMP/b.out"

"$LAMINA" --config "$TMP/l.ini" backends > "$TMP/b2.out" 2>&1
expect_grep "warm start says cached" "^fakegood .*\(cached\)" "$TMP/b2.out"

"$LAMINA" --config "$TMP/l.ini" backends --json > "$TMP/b.json" 2>&1
check "--json exits 0" test $? -eq 0
if [ "$PYTHON" != "" ] && [ "$PYTHON" != no ]; then
    "$PYTHON" - "$TMP/b.json" > "$TMP/py.out" 2>&1 <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
p = {x["name"]: x for x in j["plugins"]}
g = p["fakegood"]
assert g["status"] == "accepted" and g["from_cache"] is True, g["status"]
assert g["devices"][0]["selftest"]["passed"] is True
d0 = g["devices"][0]
want = {"index": 0, "name": "fake host device", "type": "cpu", "driver_name": "fakedrv",
        "driver_version": "3.1.4", "runtime_version": "1.4.2", "api_version": "1.0",
        "features": "f32", "mem_total": 1 << 30, "mem_free": 1 << 29, "status": "accepted"}
got = {k: d0.get(k) for k in want}
assert got == want, "device info: %r" % got
assert g["devices"][0]["arch"] == "fakearch:feat+"
assert p["fake_abi_major"]["failure"] == "abi"
assert "host speaks 1.0-1.3" in p["fake_abi_major"]["reason"]
assert p["fake_wrong"]["devices"][0]["status"] == "rejected"
assert j["devices"][0]["plugin"] == "fakegood"
assert j["order"] == ["auto"]
print("json ok")
PY
    expect_grep "--json has the same data" "^json ok" "$TMP/py.out"
else
    skip "no python"
fi

# $LAMINA_BACKENDS: plugins not listed are shown as disabled.
LAMINA_BACKENDS=nosuch "$LAMINA" --config "$TMP/l.ini" backends > "$TMP/e.out" 2>&1
expect_grep "not listed: disabled" "reason: fakegood: not in \\\$LAMINA_BACKENDS \(nosuch\)" "$TMP/e.out"
expect_grep "no eligible device" "^  none" "$TMP/e.out"

# [backend.NAME] rules from the INI.
ini "$TMP/r.ini" "$d" 20000 "[backend.fakegood]" "min_version = 2.0"
"$LAMINA" --config "$TMP/r.ini" backends > "$TMP/r.out" 2>&1
expect_grep "INI min_version rejects" "fakegood, device 0 \(fake host device\): runtime_version 1\.4\.2 < 2\.0: rule \[backend\.fakegood\] min_version" "$TMP/r.out"
ini "$TMP/r2.ini" "$d" 20000 "[backend.fakegood]" "enabled = false"
"$LAMINA" --config "$TMP/r2.ini" backends > "$TMP/r2.out" 2>&1
expect_grep "enabled = false" "reason: fakegood: disabled by \[backend\.fakegood\] enabled = false" "$TMP/r2.out"

# A bad INI is an error naming file, line and key.
printf '[plugins]\ncache = 1\n[scheduler]\ngpu_layers = lots\n' > "$TMP/bad.ini"
"$LAMINA" --config "$TMP/bad.ini" backends > "$TMP/bad.out" 2>&1
check "bad ini exits 1" test $? -eq 1
expect_grep "bad ini message" "bad\.ini:4: \[scheduler\] gpu_layers: expected auto, all or a number >= 0, got 'lots'" "$TMP/bad.out"

# plugin-check: pass, fail on numbers, fail in isolation.
"$LAMINA" plugin-check "$FAKES/fake_good.so" > "$TMP/pc.out" 2>&1
check "plugin-check good exits 0" test $? -eq 0
expect_grep "plugin-check: result PASS" "^result: PASS" "$TMP/pc.out"
expect_grep "plugin-check: per-case lines" "^    PASS  add +f32 +err [0-9.e+-]+ tol [0-9.e+-]+" "$TMP/pc.out"
expect_grep "plugin-check: unsupported cases shown" "^    UNSUP " "$TMP/pc.out"
expect_grep "plugin-check: descriptor" "descriptor: +name fakegood, version 0\.0\.1, ABI 1\.3" "$TMP/pc.out"
"$LAMINA" plugin-check "$FAKES/fake_wrong.so" > "$TMP/pw.out" 2>&1
check "plugin-check wrong exits 1" test $? -eq 1
expect_grep "plugin-check: failing case shown" "^    FAIL  add +f32 +err" "$TMP/pw.out"
expect_grep "plugin-check: result FAIL" "^result: FAIL" "$TMP/pw.out"
"$LAMINA" plugin-check "$FAKES/fake_crash_probe.so" > "$TMP/pk.out" 2>&1
check "plugin-check crash exits 1" test $? -eq 1
expect_grep "plugin-check: crash named" "isolation: +FAIL: .*crashed with SIGSEGV during probe" "$TMP/pk.out"
cp "$FAKES/fake_good.so" "$d/ww.so"; chmod o+w "$d/ww.so"
"$LAMINA" plugin-check "$d/ww.so" > "$TMP/pww.out" 2>&1
check "plugin-check world-writable exits 1" test $? -eq 1
expect_grep "plugin-check: file check named" "file checks: .*writable by others" "$TMP/pww.out"
"$LAMINA" plugin-check > /dev/null 2>&1
check "plugin-check without a file is a usage error" test $? -eq 2

done_testing
