#!/bin/sh
# Plugins built for older minors on the 1.3 host: the cpu plugin's kernels
# declared as 1.0 ("cpu10") and as 1.1 ("cpu11", tests/engine.am).  The 1.0
# one loads and runs a dense model; it is never given the 1.1
# mixture-of-experts ops, so a qwen3moe model's layers go to a backend that
# declares them (the cpu plugin) with a reason line naming the op and both
# versions, or, with no such backend, the model is refused with that
# reason.  The 1.1 one runs the mixture of experts but is never given the
# 1.2 encoder ops (norm, unary): a bert model goes to the cpu plugin the
# same way, or is refused.  Neither is given what 1.3 added to old ops
# (gpt-oss's YaRN rope, sinks, swiglu_oai, MXFP4), and both are handed
# their nodes at the 1.0 size, copied by the host.
. "$top_srcdir/tests/engine/common.sh"
V10="$B/tests/engine/abi10/.libs"
V11="$B/tests/engine/abi11/.libs"
CPU="$B/plugins/cpu/.libs"
for a in llama qwen3moe bert gpt-oss; do
  setup "generated $a model" "$PYTHON" "$S/tests/tools/make_tiny_model.py" --arch $a --type q8_0 --out "$TMP/$a.gguf"
done
Q="The quick brown fox"

# 1. the 1.0 plugin is probed, self-tested and accepted; its self-test has
#    no case of a 1.1 op (the 1.3 plugin's has 38 more: topk 2,
#    moe_weights 2, mul_mat_id 6, moe_sum 1; norm 4, unary 4; attention
#    with sinks 6, swiglu_oai 2, YaRN rope 2, mxfp4 get_rows 2, mul_mat 5,
#    mul_mat_id 2)
LAMINA_PLUGIN_PATH="$V10:$CPU" "$LAMINA" backends --json >"$TMP/b.json" 2>"$TMP/b.err"
check "cpu10 accepted as ABI 1.0, self-tested without 1.1 ops" "$PYTHON" -c '
import json, sys
r = {p["name"]: p for p in json.load(open(sys.argv[1]))["plugins"]}
p, q = r["cpu10"], r["cpu"]
d, e = p["devices"][0], q["devices"][0]
assert (p["abi_minor"], q["abi_minor"]) == (0, 3), (p["abi_minor"], q["abi_minor"])
assert p["status"] == "accepted" and d["status"] == "accepted", (p["status"], d["status"])
assert d["selftest"]["passed"] and e["selftest"]["passed"]
assert d["selftest"]["cases"] + 38 == e["selftest"]["cases"], (d["selftest"]["cases"], e["selftest"]["cases"])
' "$TMP/b.json"

# 2. a dense model runs on it, token for token as on the cpu plugin
LAMINA_PLUGIN_PATH="$V10" "$LAMINA" run "$TMP/llama.gguf" "$Q" --temp 0 -n 12 >"$TMP/d10.out" 2>"$TMP/d10.err"; r10=$?
LAMINA_PLUGIN_PATH="$CPU" "$LAMINA" run "$TMP/llama.gguf" "$Q" --temp 0 -n 12 >"$TMP/d11.out" 2>"$TMP/d11.err"; r11=$?
check "dense model on the 1.0 plugin (exit $r10)" [ $r10 -eq 0 ]
expect_grep "the plan puts it on cpu10" '^cpu10:0 .* layers 0-3 \(4/4\)' "$TMP/d10.err"
check "the same 12 tokens as the cpu plugin" cmp -s "$TMP/d10.out" "$TMP/d11.out"

# routed_past WHAT DIR TAG MODEL REASON F: MODEL with only the old plugin
# TAG (in DIR) is refused with REASON; with TAG preferred and the cpu
# plugin beside it, the layers go to the cpu plugin, TAG is passed over
# with REASON, and the 8 tokens are the cpu plugin's alone (logs: $TMP/F*)
routed_past() {
  what=$1 dir=$2 tag=$3 model=$4 reason=$5 f=$6
  LAMINA_PLUGIN_PATH="$dir" "$LAMINA" run "$TMP/$model.gguf" "$Q" --temp 0 -n 4 >"$TMP/${f}1.out" 2>"$TMP/${f}1.err"
  rc=$?
  check "$model refused with only $tag (exit $rc)" [ $rc -ne 0 ]
  expect_grep "$model: the reason names $what and both versions" "$reason" "$TMP/${f}1.err"
  LAMINA_PLUGIN_PATH="$dir:$CPU" LAMINA_BACKENDS=$tag,cpu "$LAMINA" run "$TMP/$model.gguf" "$Q" --temp 0 -n 8 \
    >"$TMP/$f.out" 2>"$TMP/$f.err"; rc=$?
  LAMINA_PLUGIN_PATH="$CPU" "$LAMINA" run "$TMP/$model.gguf" "$Q" --temp 0 -n 8 >"$TMP/${f}c.out" 2>"$TMP/${f}c.err"
  check "$model with $tag and cpu (exit $rc)" [ $rc -eq 0 ]
  expect_grep "$model: layers on the cpu plugin" '^cpu:0 .* layers 0-3 \(4/4\)' "$TMP/$f.err"
  expect_grep "$model: $tag passed over with $what and versions" "$tag.*$reason" "$TMP/$f.err"
  check "$model: the same 8 tokens as the cpu plugin alone" cmp -s "$TMP/$f.out" "$TMP/${f}c.out"
}

# 3, 4. a mixture of experts with only the 1.0 plugin: refused, with the
#    reason; with both, 1.0 preferred: the expert layers go to the cpu
#    plugin, with a line saying why, and the answer is the cpu plugin's
routed_past "the op" "$V10" cpu10 qwen3moe 'needs topk, an ABI 1\.1 op; the plugin was built for 1\.0' m

# 5. the 1.1 plugin: accepted as 1.1, self-tested without the 1.2 ops nor
#    what 1.3 added (27 cases fewer than the cpu plugin's), runs the
#    mixture of experts
LAMINA_PLUGIN_PATH="$V11:$CPU" "$LAMINA" backends --json >"$TMP/b11.json" 2>"$TMP/b11.err"
check "cpu11 accepted as ABI 1.1, self-tested without 1.2 ops" "$PYTHON" -c '
import json, sys
r = {p["name"]: p for p in json.load(open(sys.argv[1]))["plugins"]}
p, q = r["cpu11"], r["cpu"]
d, e = p["devices"][0], q["devices"][0]
assert (p["abi_minor"], q["abi_minor"]) == (1, 3), (p["abi_minor"], q["abi_minor"])
assert p["status"] == "accepted" and d["status"] == "accepted", (p["status"], d["status"])
assert d["selftest"]["passed"] and e["selftest"]["passed"]
assert d["selftest"]["cases"] + 27 == e["selftest"]["cases"], (d["selftest"]["cases"], e["selftest"]["cases"])
' "$TMP/b11.json"
LAMINA_PLUGIN_PATH="$V11" "$LAMINA" run "$TMP/qwen3moe.gguf" "$Q" --temp 0 -n 8 >"$TMP/m11b.out" 2>"$TMP/m11b.err"; rc=$?
check "qwen3moe on the 1.1 plugin (exit $rc)" [ $rc -eq 0 ]
check "the same 8 tokens as the cpu plugin" cmp -s "$TMP/m11b.out" "$TMP/mc.out"

# 6. an encoder with only the 1.1 plugin: refused, naming a 1.2 op
LAMINA_PLUGIN_PATH="$V11" "$LAMINA" embed "$TMP/bert.gguf" "$Q" >"$TMP/e11.out" 2>"$TMP/e11.err"; rc=$?
check "bert refused without a 1.2 backend (exit $rc)" [ $rc -ne 0 ]
expect_grep "the reason names the op and both versions" \
  'needs norm, an ABI 1\.2 op; the plugin was built for 1\.1' "$TMP/e11.err"

# 7. with both, 1.1 preferred: everything goes to the cpu plugin, with the
#    reason, and the vector is the cpu plugin's alone
LAMINA_PLUGIN_PATH="$V11:$CPU" LAMINA_BACKENDS=cpu11,cpu "$LAMINA" embed "$TMP/bert.gguf" "$Q" \
  >"$TMP/e.out" 2>"$TMP/e.err"; rc=$?
LAMINA_PLUGIN_PATH="$CPU" "$LAMINA" embed "$TMP/bert.gguf" "$Q" >"$TMP/e12.out" 2>"$TMP/e12.err"
check "bert with cpu11 and cpu (exit $rc)" [ $rc -eq 0 ]
expect_grep "layers on the 1.2 plugin" '^cpu:0 .* layers 0-3 \(4/4\)' "$TMP/e.err"
expect_grep "cpu11 passed over with the op and versions" \
  'cpu11.*needs norm, an ABI 1\.2 op; the plugin was built for 1\.1' "$TMP/e.err"
check "the same vector as the cpu plugin alone" cmp -s "$TMP/e.out" "$TMP/e12.out"

# 8. what 1.3 added to old ops (gpt-oss: YaRN rope, attention sinks,
#    swiglu_oai, MXFP4 experts) is never given to an older plugin, 1.0 or
#    1.1: alone it refuses the model naming the feature; beside the cpu
#    plugin it is passed over with the reason
routed_past "the feature" "$V10" cpu10 gpt-oss 'needs rope with YaRN, an ABI 1\.3 feature; the plugin was built for 1\.0' g
routed_past "the feature" "$V11" cpu11 gpt-oss 'needs rope with YaRN, an ABI 1\.3 feature; the plugin was built for 1\.1' h
for f in d10 m1 m e11 e g1 g h1 h; do diag "--- $f:"; sed 's/^/  /' "$TMP/$f.err" | head -8; done
done_testing
