#!/bin/sh
# A plugin built for ABI 1.0 on the 1.1 host: the cpu plugin's kernels
# declared as 1.0 ("cpu10", tests/engine.am).  It loads and runs a dense
# model; it is never given the 1.1 mixture-of-experts ops, so a qwen3moe
# model's layers go to a backend that declares them (the 1.1 cpu plugin)
# with a reason line naming the op and both versions, or, with no such
# backend, the model is refused with that reason.
. "$top_srcdir/tests/engine/common.sh"
V10="$B/tests/engine/abi10/.libs"
CPU="$B/plugins/cpu/.libs"
for a in llama qwen3moe; do
  setup "generated $a model" "$PYTHON" "$S/tests/tools/make_tiny_model.py" --arch $a --type q8_0 --out "$TMP/$a.gguf"
done
Q="The quick brown fox"

# 1. the 1.0 plugin is probed, self-tested and accepted; its self-test has
#    no case of a 1.1 op (the 1.1 plugin's has 11 more: topk 2,
#    moe_weights 2, mul_mat_id 6, moe_sum 1)
LAMINA_PLUGIN_PATH="$V10:$CPU" "$LAMINA" backends --json >"$TMP/b.json" 2>"$TMP/b.err"
check "cpu10 accepted as ABI 1.0, self-tested without 1.1 ops" "$PYTHON" -c '
import json, sys
r = {p["name"]: p for p in json.load(open(sys.argv[1]))["plugins"]}
p, q = r["cpu10"], r["cpu"]
d, e = p["devices"][0], q["devices"][0]
assert (p["abi_minor"], q["abi_minor"]) == (0, 1), (p["abi_minor"], q["abi_minor"])
assert p["status"] == "accepted" and d["status"] == "accepted", (p["status"], d["status"])
assert d["selftest"]["passed"] and e["selftest"]["passed"]
assert d["selftest"]["cases"] + 11 == e["selftest"]["cases"], (d["selftest"]["cases"], e["selftest"]["cases"])
' "$TMP/b.json"

# 2. a dense model runs on it, token for token as on the 1.1 plugin
LAMINA_PLUGIN_PATH="$V10" "$LAMINA" run "$TMP/llama.gguf" "$Q" --temp 0 -n 12 >"$TMP/d10.out" 2>"$TMP/d10.err"; r10=$?
LAMINA_PLUGIN_PATH="$CPU" "$LAMINA" run "$TMP/llama.gguf" "$Q" --temp 0 -n 12 >"$TMP/d11.out" 2>"$TMP/d11.err"; r11=$?
check "dense model on the 1.0 plugin (exit $r10)" [ $r10 -eq 0 ]
expect_grep "the plan puts it on cpu10" '^cpu10:0 .* layers 0-3 \(4/4\)' "$TMP/d10.err"
check "the same 12 tokens as the 1.1 plugin" cmp -s "$TMP/d10.out" "$TMP/d11.out"

# 3. a mixture of experts with only the 1.0 plugin: refused, with the reason
LAMINA_PLUGIN_PATH="$V10" "$LAMINA" run "$TMP/qwen3moe.gguf" "$Q" --temp 0 -n 4 >"$TMP/m10.out" 2>"$TMP/m10.err"; rc=$?
check "qwen3moe refused without a 1.1 backend (exit $rc)" [ $rc -ne 0 ]
expect_grep "the reason names the op and both versions" \
  'needs topk, an ABI 1\.1 op; the plugin was built for 1\.0' "$TMP/m10.err"

# 4. with both, 1.0 preferred: the expert layers go to the 1.1 plugin, with
#    a line saying why, and the answer is the 1.1 plugin's alone
LAMINA_PLUGIN_PATH="$V10:$CPU" LAMINA_BACKENDS=cpu10,cpu "$LAMINA" run "$TMP/qwen3moe.gguf" "$Q" --temp 0 -n 8 \
  >"$TMP/m.out" 2>"$TMP/m.err"; rc=$?
LAMINA_PLUGIN_PATH="$CPU" "$LAMINA" run "$TMP/qwen3moe.gguf" "$Q" --temp 0 -n 8 >"$TMP/m11.out" 2>"$TMP/m11.err"
check "qwen3moe with cpu10 and cpu (exit $rc)" [ $rc -eq 0 ]
expect_grep "layers on the 1.1 plugin" '^cpu:0 .* layers 0-3 \(4/4\)' "$TMP/m.err"
expect_grep "cpu10 passed over with the op and versions" \
  'cpu10.*needs topk, an ABI 1\.1 op; the plugin was built for 1\.0' "$TMP/m.err"
check "the same 8 tokens as the 1.1 plugin alone" cmp -s "$TMP/m.out" "$TMP/m11.out"
for f in d10 m10 m; do diag "--- $f:"; sed 's/^/  /' "$TMP/$f.err" | head -8; done
done_testing
