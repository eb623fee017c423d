#!/bin/sh
# faults.sh - the Vulkan plugin without a usable driver: no manifest at
# all, a manifest naming a missing library, a driver whose vkCreateInstance
# fails, a driver with zero devices.  The probe must report zero devices
# and a reason, and open must fail cleanly (never crash).
. "$top_srcdir/tests/lib.sh"

T=$(mktemp -d "${TMPDIR:-/tmp}/lamina-vk.XXXXXX")
trap 'rm -rf "$T"' EXIT
mkdir "$T/empty"
cat > "$T/bad_icd.json" <<JSON
{
    "file_format_version": "1.0.0",
    "ICD": {
        "library_path": "$T/no-such-driver.so",
        "api_version": "1.3.0"
    }
}
JSON
PROG="$B/tests/vulkan/vk_test"
# the fake driver (tests/vulkan/fake_icd.c)
cat > "$T/fake_icd.json" <<JSON
{
    "file_format_version": "1.0.0",
    "ICD": {
        "library_path": "$B/tests/vulkan/.libs/fake_icd.so",
        "api_version": "1.3.0"
    }
}
JSON

# run NAME ARGS... under a controlled environment; the child's TAP lines are
# kept in $T/NAME.out and summarised as one test here
run() {
    name=$1; shift
    if env -u VK_ADD_DRIVER_FILES "$@" > "$T/$name.out" 2>&1; then
        ok "$name"
    else
        not_ok "$name"
    fi
    sed 's/^/#   /' "$T/$name.out"
}

run "empty driver folder (VK_DRIVER_FILES)" \
    VK_DRIVER_FILES="$T/empty" VK_ICD_FILENAMES= "$PROG" --no-icd
run "nonexistent manifest (VK_ICD_FILENAMES)" \
    VK_ICD_FILENAMES="$T/nonexistent.json" "$PROG" --no-icd
run "manifest naming a missing library" \
    VK_DRIVER_FILES="$T/bad_icd.json" "$PROG" --bad-icd
run "a driver whose vkCreateInstance fails" \
    VK_DRIVER_FILES="$T/fake_icd.json" FAKE_ICD_MODE=fail-instance VK_TEST_EXPECT_NOTE="vkCreateInstance" "$PROG" --no-icd
run "a driver with zero devices" \
    VK_DRIVER_FILES="$T/fake_icd.json" FAKE_ICD_MODE=no-devices VK_TEST_EXPECT_NOTE="no Vulkan device" "$PROG" --no-icd
done_testing
