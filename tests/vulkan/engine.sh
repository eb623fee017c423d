#!/bin/sh
# The default model on the vulkan plugin (lavapipe in CI) through the whole
# runtime: the device listed with its versions and a passed self-test; all
# layers on vulkan when it is preferred, and the same greedy answer as the
# cpu plugin; logits against llama.cpp's (tests/golden) with every layer on
# vulkan and with the first 9 on vulkan and the rest on cpu; the generated
# model of every architecture (mixture of experts and encoders included)
# wholly on vulkan against llama.cpp; a device lost
# in the middle of a generation hands the layers to the cpu plugin and the
# answer still comes, the same as on the cpu; gpt-oss, whose ABI 1.3
# features vulkan declines, goes to the cpu plugin with the reason.
. "$top_srcdir/tests/engine/common.sh"
need_model
export LAMINA_PLUGIN_PATH="$B/plugins/cpu/.libs:$B/plugins/vulkan/.libs"
printf '[scheduler]\nbackends = vulkan, cpu\ngpu_layers = all\n' > "$TMP/vk.ini"
printf '[scheduler]\nbackends = cpu\n' > "$TMP/cpu.ini"
Q="What is the capital of France?"

# 1. lamina backends: the lavapipe device, versions, self-test
"$LAMINA" --config "$TMP/vk.ini" backends --json > "$TMP/b.json" 2>"$TMP/b.err"; rc=$?
check "lamina backends --json (exit $rc)" [ $rc -eq 0 ]
if "$PYTHON" - "$TMP/b.json" > "$TMP/b.txt" 2>&1 <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
vk = [p for p in d["plugins"] if p["name"] == "vulkan" and p["status"] == "accepted"]
assert vk, "no accepted vulkan plugin"
dev = vk[0]["devices"][0]
assert dev["status"] == "accepted", dev
for k in ("driver_name", "driver_version", "api_version"):
    assert dev[k], "device lacks " + k
assert dev["selftest"]["run"] and dev["selftest"]["passed"], dev["selftest"]
loader = [c for c in vk[0]["components"] if c["name"] == "vulkan-loader"][0]
assert loader["found"], loader
print("%s: driver %s %s, Vulkan %s, loader %s, self-test %d cases passed" % (
    dev["label"], dev["driver_name"], dev["driver_version"], dev["api_version"], loader["found"],
    dev["selftest"]["cases"]))
PY
then ok "$(cat "$TMP/b.txt")"; else not_ok "vulkan device in lamina backends"; sed 's/^/# /' "$TMP/b.txt"; fi

# 2. preferred: every layer on vulkan; the greedy answer equals the cpu's
"$LAMINA" --config "$TMP/vk.ini" run gemma3-270m "$Q" --temp 0 -n 12 >"$TMP/vk.out" 2>"$TMP/vk.err"; rc=$?
check "run on vulkan (exit $rc)" [ $rc -eq 0 ]
sed 's/^/# stderr: /' "$TMP/vk.err"
expect_grep "plan line: every layer on vulkan" '^vulkan:0 .* layers 0-17 \(18/18\) \+ embedding \+ output' "$TMP/vk.err"
"$LAMINA" --config "$TMP/cpu.ini" run gemma3-270m "$Q" --temp 0 -n 12 >"$TMP/cpu.out" 2>"$TMP/cpu.err"
if cmp -s "$TMP/vk.out" "$TMP/cpu.out"; then ok "the same 12 greedy tokens as the cpu plugin: $(head -c 80 "$TMP/vk.out" | tr '\n' ' ')"
else not_ok "vulkan and cpu answers differ"; diag "vulkan: $(cat "$TMP/vk.out")" "cpu: $(cat "$TMP/cpu.out")"; fi

# 3. against llama.cpp: all layers on vulkan, then 9 on vulkan + 9 on cpu
for spec in "vulkan all" "vulkan,cpu 9"; do
  set -- $spec
  # lavapipe: 0.3-2 tokens/s depending on the CPU (no AVX-512: the slow
  # end): the first 2 prompts, logits at their last 2 positions, 2 greedy
  # steps (of 40); the tight check on the generated models below covers
  # every position and step
  LAMINA_GOLDEN_STEPS=2 "$B/tests/engine/golden_check" --prompts 2 --positions 2 "$S/tests/golden/gemma3-270m-logits.json" "$DEFAULT_MODEL" "$1" "$2" >"$TMP/g" 2>&1; rc=$?
  sed 's/^\(not \)\{0,1\}ok [0-9]* - /# /' "$TMP/g" | grep -v '^1\.\.'
  if [ $rc -eq 0 ]; then ok "$1 (gpu_layers $2) matches llama.cpp on the default model"
  else not_ok "$1 (gpu_layers $2) matches llama.cpp"; grep '^not ok' "$TMP/g" | sed 's/^/# /'; fi
  [ "$2" = 9 ] && expect_grep "split plan: layers 0-8 on vulkan, 9-17 on cpu" '^# plan: cpu:0 .* layers 9-17 \(9/18\)' "$TMP/g"
done

# 3b. the tight path on the generated model of every architecture: the
#     vulkan plugin computes in f32 from dequantized weights (no 8-bit
#     activations), with an f32 KV cache it is held to the tight limits
#     against llama.cpp's precise configuration, like the core reference
for arch in llama llama3 qwen2 qwen3 gemma2 gemma3 phi3 granite olmo2; do
  "$PYTHON" "$S/tests/tools/make_tiny_model.py" --arch $arch --type mixed --seed 1 --out "$TMP/tiny-$arch.gguf" >/dev/null 2>&1 \
    || { not_ok "$arch: generate the model"; continue; }
  golden_run "$arch: tight: vulkan matches llama.cpp (precise)" --tight "$S/tests/golden/tiny-$arch-logits.json" \
    "$TMP/tiny-$arch.gguf" vulkan all
done
# 3c. mixture of experts (ABI 1.1 TOPK ... MOE_SUM) and the encoders (1.2
#     NORM, UNARY): every layer on vulkan alone, no backend passed over;
#     qwen3moe and qwen2moe held to the tight limits like the others, bert and
#     nomic-bert to llama.cpp's embeddings (embed_check --encoder)
"$PYTHON" "$S/tests/tools/make_tiny_model.py" --arch qwen3moe --type mixed --seed 1 --out "$TMP/tiny-qwen3moe.gguf" \
    >/dev/null 2>&1 || not_ok "qwen3moe: generate the model"
golden_run "qwen3moe: tight: vulkan matches llama.cpp (precise)" --tight "$S/tests/golden/tiny-qwen3moe-logits.json" \
    "$TMP/tiny-qwen3moe.gguf" vulkan all
expect_grep "qwen3moe: every layer on vulkan" '^# plan: vulkan:0 .* layers 0-[0-9]+ \(([0-9]+)/\1\)' "$TMP/golden.out"
check "qwen3moe: no backend passed over" sh -c '! grep -q "passed over" "$1"' _ "$TMP/golden.out"
# qwen2moe's shared expert (its sigmoid gate: MOE_WEIGHTS over (z, 0)) on
# the first two prompts only: the routed experts are qwen3moe's
"$PYTHON" "$S/tests/tools/make_tiny_model.py" --arch qwen2moe --type mixed --seed 1 --out "$TMP/tiny-qwen2moe.gguf" \
    >/dev/null 2>&1 || not_ok "qwen2moe: generate the model"
golden_run "qwen2moe: tight: vulkan matches llama.cpp (precise, 2 prompts)" --prompts 2 --tight \
    "$S/tests/golden/tiny-qwen2moe-logits.json" "$TMP/tiny-qwen2moe.gguf" vulkan all
expect_grep "qwen2moe: every layer on vulkan" '^# plan: vulkan:0 .* layers 0-[0-9]+ \(([0-9]+)/\1\)' "$TMP/golden.out"
check "qwen2moe: no backend passed over" sh -c '! grep -q "passed over" "$1"' _ "$TMP/golden.out"
# gpt-oss uses what ABI 1.3 added (YaRN rope, attention sinks, swiglu_oai,
# MXFP4 experts), which the vulkan plugin declines: its layers go to the cpu
# plugin with the reason named, and the answer is the cpu plugin's alone
"$PYTHON" "$S/tests/tools/make_tiny_model.py" --arch gpt-oss --type mixed --seed 1 --out "$TMP/tiny-gpt-oss.gguf" \
    >/dev/null 2>&1 || not_ok "gpt-oss: generate the model"
"$LAMINA" --config "$TMP/vk.ini" run "$TMP/tiny-gpt-oss.gguf" "$Q" --temp 0 -n 8 >"$TMP/go.out" 2>"$TMP/go.err"; rc=$?
"$LAMINA" --config "$TMP/cpu.ini" run "$TMP/tiny-gpt-oss.gguf" "$Q" --temp 0 -n 8 >"$TMP/go-cpu.out" 2>"$TMP/go-cpu.err"
check "gpt-oss with vulkan preferred (exit $rc)" [ $rc -eq 0 ]
expect_grep "gpt-oss: every layer on cpu" '^cpu:0 .* layers 0-3 \(4/4\)' "$TMP/go.err"
expect_grep "gpt-oss: vulkan passed over naming the 1.3 feature" \
  '^vulkan:0 .*passed over: layer 0 needs rope with YaRN on f32' "$TMP/go.err"
check "gpt-oss: the same 8 tokens as the cpu plugin alone" cmp -s "$TMP/go.out" "$TMP/go-cpu.out"
pool=mean        # the pooling is the host's: one is enough here
for arch in bert nomic-bert; do
  f="$TMP/tiny-$arch-$pool.gguf"
  "$PYTHON" "$S/tests/tools/make_tiny_model.py" --arch $arch --type f32 --seed 1 --pooling $pool --out "$f" \
      >/dev/null 2>&1 || { not_ok "$arch $pool: generate the model"; continue; }
  "$B/tests/server/embed_check" --encoder "$S/tests/golden/tiny-$arch-embed.json" "$f" vulkan $pool \
      >"$TMP/enc.out" 2>&1; rc=$?
  sed 's/^\(not \)\{0,1\}ok [0-9]* - /# /' "$TMP/enc.out" | grep -v '^1\.\.'
  if [ $rc -eq 0 ]; then ok "$arch $pool: vulkan alone matches llama.cpp's embeddings"
  else not_ok "$arch $pool: vulkan alone matches llama.cpp's embeddings (exit $rc)"; grep '^not ok' "$TMP/enc.out" | sed 's/^/# /'; fi
done

# 4. the device lost after 8 graphs (the model check's 6: four layer kinds, the
#    embedding and the head; the prompt; 1 token): the rest
#    runs on cpu, the answer is complete and equals the cpu's
LAMINA_VULKAN_LOSE_AFTER=8 "$LAMINA" --config "$TMP/vk.ini" run gemma3-270m "$Q" --temp 0 -n 12 \
    >"$TMP/lost.out" 2>"$TMP/lost.err"; rc=$?
sed 's/^/# stderr: /' "$TMP/lost.err"
check "device lost mid-generation: exit $rc" [ $rc -eq 0 ]
expect_grep "the loss is named, with the cause" 'vulkan:0 .*lost during generation .*VK_ERROR_DEVICE_LOST' "$TMP/lost.err"
expect_grep "the new plan: every layer on cpu" '^lamina: now: cpu:0 .* layers 0-17 \(18/18\)' "$TMP/lost.err"
if cmp -s "$TMP/lost.out" "$TMP/cpu.out"; then ok "the answer is complete and equals the cpu's"
else not_ok "answer after the loss differs"; diag "got: $(cat "$TMP/lost.out")" "cpu: $(cat "$TMP/cpu.out")"; fi
done_testing
