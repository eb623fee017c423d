#!/bin/sh
# tests/rocm/scenarios.sh - the rocm plugin on a fake HIP runtime
# (fake_hip.cc, which runs kernels.hip on the host), one scenario per
# line of docs/troubleshooting.md's rocm part.  Each runs `lamina backends`
# and a short generation on a tiny generated model, with rocm, vulkan (when
# built) and cpu in the plugin directory and [scheduler] backends = rocm,
# vulkan, cpu, and checks which backend was selected and the exact
# one-line reason rocm was passed over.
#
# The plugin is tests/rocm/rocm63.la: plugins/rocm built against HIP
# 6.3.42131 (the versions are build-time values), with an emulation bundle
# for gfx906 gfx908 gfx90a gfx942 gfx1030 gfx1100.  When the real rocm.so
# was built (hipcc present), it also runs on the fake at its own version.
GPU=rocm
. "${top_srcdir:-.}/tests/rocm/common.sh"

runtime "$TMP/hip63" libamdhip64.so.6 libamdhip64.so.6.3.60300
runtime "$TMP/hip72" libamdhip64.so.7 libamdhip64.so.7.2.70200

# 1. matching versions: rocm selected, self-test and generation through
#    the plugin's kernels (leak-checked: no vulkan in this directory)
export LAMINA_FAKE_HIP_VERSION=6.3.42131
d=$(plugins match "$ROCM63" novulkan)
f=$(ini match "$d" 60000)
LD_LIBRARY_PATH="$TMP/hip63" backends match "$f"
expect_grep "match: rocm accepted" "^rocm 0\.1\.0  ABI 1\.3  $d/rocm\.so  \[accepted\]" "$TMP/match.b"
expect_grep "match: hip-runtime found = built" "component hip-runtime +found 6\.3\.42131 +built 6\.3\.42131 +rule same-minor +$TMP/hip63/libamdhip64\.so\.6\.3\.60300" "$TMP/match.b"
expect_grep "match: device arch with feature flags, memory" "device 0: Fake AMD GPU 0 \(gfx906:sramecc\+:xnack-\) \(discrete-gpu\)  \[accepted\]  slot 0" "$TMP/match.b"
expect_grep "match: arch and runtime on the device line" "driver amdgpu -, runtime 6\.3\.42131, api -, arch gfx906:sramecc\+:xnack-" "$TMP/match.b"
expect_grep "match: memory" "memory 16\.0 GiB total, 16\.0 GiB free" "$TMP/match.b"
expect_grep "match: the core's self-test passed on every case" "self-test passed: 207 cases \(52 unsupported\)" "$TMP/match.b"
expect_grep "match: rocm first" "^  0  rocm:0 Fake AMD GPU 0" "$TMP/match.b"
LD_LIBRARY_PATH="$TMP/hip63" generate match "$f" rocm leaks

# 2. runtime 7.2, plugin built for 6.3: rejected with both versions, the
#    model answers on vulkan; with vulkan disabled, on cpu
d=$(plugins mismatch "$ROCM63")
f=$(ini mismatch "$d" 60000)
LAMINA_FAKE_HIP_VERSION=7.2.70200 LD_LIBRARY_PATH="$TMP/hip72" backends mismatch "$f"
expect_grep "mismatch: one-line reason" "^  reason: rocm: component hip-runtime found 7\.2\.70200, built against 6\.3\.42131: plugin rule same-minor$" "$TMP/mismatch.b"
expect_grep "mismatch: the other runtime is named" "note: also found libamdhip64\.so\.7 \(HIP 7\.2\.70200\) at $TMP/hip72/libamdhip64\.so\.7\.2\.70200; not used" "$TMP/mismatch.b"
expect_grep "mismatch: $NEXT first" "^  0  $NEXT:0 " "$TMP/mismatch.b"
LAMINA_FAKE_HIP_VERSION=7.2.70200 LD_LIBRARY_PATH="$TMP/hip72" generate mismatch "$f" "$NEXT"
diag "lamina backends, HIP 7.2 host, rocm.so built for 6.3:"; sed -n '/^rocm /,/^$/p' "$TMP/mismatch.b" | sed 's/^/  /' | while IFS= read -r l; do diag "$l"; done
f=$(ini mismatch_novk "$d" 60000 "[backend.vulkan]" "enabled = false")
LAMINA_FAKE_HIP_VERSION=7.2.70200 LD_LIBRARY_PATH="$TMP/hip72" backends mismatch_novk "$f"
expect_grep "mismatch, vulkan off: same reason" "^  reason: rocm: component hip-runtime found 7\.2\.70200, built against 6\.3\.42131: plugin rule same-minor$" "$TMP/mismatch_novk.b"
expect_grep "mismatch, vulkan off: cpu first" "^  0  cpu:0 " "$TMP/mismatch_novk.b"
LAMINA_FAKE_HIP_VERSION=7.2.70200 LD_LIBRARY_PATH="$TMP/hip72" generate mismatch_novk "$f" cpu

# 3. no device
d=$(plugins nodev "$ROCM63")
f=$(ini nodev "$d" 60000)
LAMINA_FAKE_HIP_DEVICES= LD_LIBRARY_PATH="$TMP/hip63" backends nodev "$f"
expect_grep "nodev: one-line reason" "^  reason: rocm: no device found$" "$TMP/nodev.b"
expect_grep "nodev: the runtime's answer as a note" "note: the HIP runtime found no device \(hipErrorNoDevice\)" "$TMP/nodev.b"
expect_grep "nodev: $NEXT first" "^  0  $NEXT:0 " "$TMP/nodev.b"
LAMINA_FAKE_HIP_DEVICES= LD_LIBRARY_PATH="$TMP/hip63" generate nodev "$f" "$NEXT"

# 4. an architecture without a code object; then HSA_OVERRIDE_GFX_VERSION
#    from the INI (passed to the probe and to the backend) makes it gfx1030
d=$(plugins noarch "$ROCM63")
f=$(ini noarch "$d" 60000)
LAMINA_FAKE_HIP_DEVICES=gfx1036 LD_LIBRARY_PATH="$TMP/hip63" backends noarch "$f"
expect_grep "noarch: one-line reason" "^  reason: rocm: no usable device \(rocm, device 0 \(Fake AMD GPU 0 \(gfx1036\)\): arch gfx1036 is not among the plugin's code targets \(gfx906, gfx908, gfx90a, gfx942, gfx1030, gfx1100\): plugin rule code_targets\)$" "$TMP/noarch.b"
expect_grep "noarch: $NEXT first" "^  0  $NEXT:0 " "$TMP/noarch.b"
LAMINA_FAKE_HIP_DEVICES=gfx1036 LD_LIBRARY_PATH="$TMP/hip63" generate noarch "$f" "$NEXT"
f=$(ini override "$d" 60000 "[backend.rocm]" "env.HSA_OVERRIDE_GFX_VERSION = 10.3.0")
LAMINA_FAKE_HIP_DEVICES=gfx1036 LD_LIBRARY_PATH="$TMP/hip63" backends override "$f"
expect_grep "override: the device reports gfx1030" "device 0: Fake AMD GPU 0 \(gfx1030\) \(discrete-gpu\)  \[accepted\]  slot 0" "$TMP/override.b"
expect_grep "override: noted" "note: HSA_OVERRIDE_GFX_VERSION=10\.3\.0: devices report the overridden architecture" "$TMP/override.b"
LAMINA_FAKE_HIP_DEVICES=gfx1036 LD_LIBRARY_PATH="$TMP/hip63" generate override "$f" rocm

# 5. a crash inside device enumeration: lamina carries on
d=$(plugins crash "$ROCM63")
f=$(ini crash "$d" 60000)
LAMINA_FAKE_HIP_FAIL=crash-enum LD_LIBRARY_PATH="$TMP/hip63" backends crash "$f"
expect_grep "crash: one-line reason" "^  reason: rocm: crashed with SIGSEGV during probe$" "$TMP/crash.b"
expect_grep "crash: $NEXT first" "^  0  $NEXT:0 " "$TMP/crash.b"
LAMINA_FAKE_HIP_FAIL=crash-enum LD_LIBRARY_PATH="$TMP/hip63" generate crash "$f" "$NEXT"

# 6. a hang inside device enumeration: killed at the timeout, lamina
#    carries on, nothing left running
d=$(plugins hang "$ROCM63")
f=$(ini hang "$d" 10000)
LAMINA_FAKE_HIP_FAIL=hang-enum LD_LIBRARY_PATH="$TMP/hip63" backends hang "$f"
expect_grep "hang: one-line reason" "^  reason: rocm: hung: no complete report within 10000 ms \(stage probe\); process group killed$" "$TMP/hang.b"
expect_grep "hang: $NEXT first" "^  0  $NEXT:0 " "$TMP/hang.b"
LAMINA_FAKE_HIP_FAIL=hang-enum LD_LIBRARY_PATH="$TMP/hip63" generate hang "$f" "$NEXT"
if pgrep -f "lamina-probe .*$d/rocm\.so" > /dev/null 2>&1; then
    not_ok "hang: no probe helper left behind"
else
    ok "hang: no probe helper left behind"
fi

# 6b. two GPUs, one without a code object: that one is rejected, the
#     other used
d=$(plugins two "$ROCM63" novulkan)
f=$(ini two "$d" 60000)
LAMINA_FAKE_HIP_DEVICES="gfx1036,gfx90a:sramecc+:xnack-" LD_LIBRARY_PATH="$TMP/hip63" backends two "$f"
expect_grep "two GPUs: device 0 rejected, naming its arch" "^    reason: rocm, device 0 \(Fake AMD GPU 0 \(gfx1036\)\): arch gfx1036 is not among the plugin's code targets" "$TMP/two.b"
expect_grep "two GPUs: device 1 accepted" "device 1: Fake AMD GPU 1 \(gfx90a:sramecc\+:xnack-\) \(discrete-gpu\)  \[accepted\]  slot 0" "$TMP/two.b"
LAMINA_FAKE_HIP_DEVICES="gfx1036,gfx90a:sramecc+:xnack-" LD_LIBRARY_PATH="$TMP/hip63" generate two "$f" rocm:1 leaks

# 6c. the GPU lost mid-generation (after 5 graphs: the model check's 3 (one
#     layer kind, the embedding, the head), the prompt, one token): named,
#     the layers move to cpu, the answer is complete
LAMINA_FAKE_HIP_LOSE_AFTER=5 LD_LIBRARY_PATH="$TMP/hip63" \
    "$LAMINA" --config "$TMP/match.ini" run "$TMP/tiny.gguf" "The quick brown fox" -n 6 --temp 0 \
    --raw > "$TMP/lost.out" 2> "$TMP/lost.err"
check "lost: generation exits 0" test $? -eq 0
expect_grep "lost: the loss is named, with the runtime's error" "rocm:0 .*lost during generation \(.*hip[A-Za-z]*: hipErrorLaunchFailure \(719\)" "$TMP/lost.err"
expect_grep "lost: every layer now on cpu" "^lamina: now: cpu:0 .* layers 0-3 \(4/4\)" "$TMP/lost.err"
same_as_cpu lost

# 7. the user's rules from the INI on top: a denied runtime release
d=$(plugins deny "$ROCM63")
f=$(ini deny "$d" 60000 "[backend.rocm]" "deny_versions = 6.3.42131")
LD_LIBRARY_PATH="$TMP/hip63" backends deny "$f"
expect_grep "deny: one-line reason" "^  reason: rocm: no usable device \(rocm, device 0 \(Fake AMD GPU 0 \(gfx906:sramecc\+:xnack-\)\): runtime_version 6\.3\.42131 = 6\.3\.42131: rule \[backend\.rocm\] deny_versions\)$" "$TMP/deny.b"
expect_grep "deny: $NEXT first" "^  0  $NEXT:0 " "$TMP/deny.b"

# the shipped example for AMD hosts parses and orders rocm, vulkan, cpu
LAMINA_PLUGIN_PATH="$d" LD_LIBRARY_PATH="$TMP/hip63" "$LAMINA" --config "$S/conf/rocm-vulkan-amd.ini" \
    backends > "$TMP/example.b" 2>&1
check "conf/rocm-vulkan-amd.ini: lamina backends exits 0" test $? -eq 0
expect_grep "conf/rocm-vulkan-amd.ini: order" "^order: rocm, vulkan, cpu" "$TMP/example.b"
expect_grep "conf/rocm-vulkan-amd.ini: rocm first" "^  0  rocm:0 Fake AMD GPU 0" "$TMP/example.b"

# 8. the real rocm.so (where hipcc built it) on the fake at its own version
if [ -f "$REAL" ]; then
    # its built-against version, from the probe on a fake of any major
    for m in 5 6 7 8; do runtime "$TMP/hipany" "libamdhip64.so.$m" "libamdhip64.so.$m.0.0"; done
    LAMINA_FAKE_HIP_VERSION=1.0.0 LD_LIBRARY_PATH="$TMP/hipany" "$LAMINA" plugin-check "$REAL" \
        > "$TMP/real.pc" 2>&1
    built=$(sed -n 's/.*component: *hip-runtime found .*, built \([0-9.]*\),.*/\1/p' "$TMP/real.pc")
    major=${built%%.*}
    runtime "$TMP/hipreal" "libamdhip64.so.$major" "libamdhip64.so.$built"
    d=$(plugins real "$REAL" novulkan)
    f=$(ini real "$d" 60000)
    LAMINA_FAKE_HIP_VERSION=$built LD_LIBRARY_PATH="$TMP/hipreal" backends real "$f"
    expect_grep "real rocm.so: accepted with HIP $built" "component hip-runtime +found $built +built $built" "$TMP/real.b"
    expect_grep "real rocm.so: self-test passed (hipcc's bundle picked for gfx906)" "self-test passed: 207 cases \(52 unsupported\)" "$TMP/real.b"
    LAMINA_FAKE_HIP_VERSION=$built LD_LIBRARY_PATH="$TMP/hipreal" generate real "$f" rocm leaks
else
    skip "rocm.so not built here (no hipcc): the real plugin's scenario"
fi

done_testing
