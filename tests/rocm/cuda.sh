#!/bin/sh
# tests/rocm/cuda.sh - cuda.so (plugins/rocm built by nvcc) on a fake CUDA
# driver (fake_cuda.cc, which reads the plugin's real fatbin and runs
# kernels.hip on the host): matching driver, a driver older than the
# toolkit, a compute capability without a cubin, a crash and a hang in
# device enumeration.  Each runs `lamina backends` and a short generation
# and checks the backend selected and the exact one-line reason.
# Skipped where nvcc did not build cuda.so.
GPU=cuda
. "${top_srcdir:-.}/tests/rocm/common.sh"

if [ ! -f "$REAL_CUDA" ]; then
    skip "cuda.so not built here (no nvcc)"
    done_testing; exit 0
fi
runtime "$TMP/cu" libcuda.so.1 libcuda.so.580.65.06 "$FAKE_CUDA"
export LD_LIBRARY_PATH="$TMP/cu"

# the toolkit version cuda.so was built with
LAMINA_FAKE_CUDA_DRIVER=1.0 "$LAMINA" plugin-check "$REAL_CUDA" > "$TMP/pc.out" 2>&1
built=$(sed -n 's/.*component: *cuda-driver found .*, built \([0-9.]*\),.*/\1/p' "$TMP/pc.out")
setup "cuda.so says what it was built with: CUDA $built" test -n "$built"
targets=

# 1. a driver as new as the toolkit, sm_90: cuda selected and answering
#    (leak-checked: no vulkan in this directory)
d=$(plugins match "$REAL_CUDA" novulkan)
f=$(ini match "$d" 60000)
LAMINA_FAKE_CUDA_DRIVER=$built backends match "$f"
expect_grep "match: cuda accepted" "^cuda 0\.1\.0  ABI 1\.3  $d/cuda\.so  \[accepted\]" "$TMP/match.b"
expect_grep "match: driver found = built" "component cuda-driver +found $built +built $built +rule at-least" "$TMP/match.b"
expect_grep "match: device sm_90" "device 0: Fake NVIDIA GPU 0 \(sm_90\) \(discrete-gpu\)  \[accepted\]  slot 0" "$TMP/match.b"
expect_grep "match: the core's self-test passed on every case" "self-test passed: 207 cases \(52 unsupported\)" "$TMP/match.b"
LAMINA_FAKE_CUDA_DRIVER=$built generate match "$f" cuda leaks
targets=$(sed -n 's/^ *code targets: //p' "$TMP/match.b")
if [ -n "$targets" ]; then diag "cuda.so's code targets: $targets"
else not_ok "match: lamina backends lists cuda.so's code targets"; fi

# 2. the driver supports CUDA 12.4, cuda.so needs more
d=$(plugins old "$REAL_CUDA")
f=$(ini old "$d" 60000)
LAMINA_FAKE_CUDA_DRIVER=12.4 backends old "$f"
expect_grep "old driver: one-line reason" "^  reason: cuda: component cuda-driver found 12\.4, built against $built: plugin rule at-least$" "$TMP/old.b"
expect_grep "old driver: the classic words in a note" "note: driver version is insufficient for CUDA runtime version: the driver supports CUDA 12\.4, cuda\.so was built with CUDA $built" "$TMP/old.b"
expect_grep "old driver: $NEXT first" "^  0  $NEXT:0 " "$TMP/old.b"
LAMINA_FAKE_CUDA_DRIVER=12.4 generate old "$f" "$NEXT"

# 3. compute capability 6.1: no cubin
d=$(plugins noarch "$REAL_CUDA")
f=$(ini noarch "$d" 60000)
LAMINA_FAKE_CUDA_DRIVER=$built LAMINA_FAKE_CUDA_DEVICES=sm_61 backends noarch "$f"
list=$(echo "$targets" | sed 's/ /, /g')
expect_grep "sm_61: one-line reason" "^  reason: cuda: no usable device \(cuda, device 0 \(Fake NVIDIA GPU 0 \(sm_61\)\): arch sm_61 is not among the plugin's code targets \($list\): plugin rule code_targets\)$" "$TMP/noarch.b"
LAMINA_FAKE_CUDA_DRIVER=$built LAMINA_FAKE_CUDA_DEVICES=sm_61 generate noarch "$f" "$NEXT"

# 4. crash and 5. hang in device enumeration
d=$(plugins crash "$REAL_CUDA")
f=$(ini crash "$d" 60000)
LAMINA_FAKE_CUDA_DRIVER=$built LAMINA_FAKE_CUDA_FAIL=crash-enum backends crash "$f"
expect_grep "crash: one-line reason" "^  reason: cuda: crashed with SIGSEGV during probe$" "$TMP/crash.b"
LAMINA_FAKE_CUDA_DRIVER=$built LAMINA_FAKE_CUDA_FAIL=crash-enum generate crash "$f" "$NEXT"
d=$(plugins hang "$REAL_CUDA")
# the timeout is every plugin's: long enough for vulkan's probe and
# self-test on lavapipe under the sanitizers on a loaded machine (at 3 s
# it timed out there, and the model ran on cpu)
f=$(ini hang "$d" 10000)
LAMINA_FAKE_CUDA_DRIVER=$built LAMINA_FAKE_CUDA_FAIL=hang-enum backends hang "$f"
expect_grep "hang: one-line reason" "^  reason: cuda: hung: no complete report within 10000 ms \(stage probe\); process group killed$" "$TMP/hang.b"
LAMINA_FAKE_CUDA_DRIVER=$built LAMINA_FAKE_CUDA_FAIL=hang-enum generate hang "$f" "$NEXT"

done_testing
