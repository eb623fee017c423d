# Sourced by the tokenizer golden tests (ugm_golden.sh, gpt4o_golden.sh)
# after tests/lib.sh, with TMP set.
# golden_run NAME GOLDEN MODEL: one TAP line for all of test_golden's checks
# of MODEL against GOLDEN (ids, pieces, decoded text as llama.cpp gave them)
golden_run() {
    "$B/tests/tok/test_golden" "$2" "$3" > "$TMP/out" 2>&1
    rc=$?
    n_ok=$(grep -c '^ok' "$TMP/out")
    n_bad=$(grep -c '^not ok' "$TMP/out")
    if [ $rc -eq 0 ] && [ "$n_bad" -eq 0 ] && [ "$n_ok" -gt 0 ]; then
        ok "$1: all $n_ok checks equal llama.cpp's (ids, pieces, decoded text)"
    else
        not_ok "$1: $n_bad of $((n_ok + n_bad)) checks differ from llama.cpp's (rc=$rc)"
        diag "$(grep -A2 '^not ok' "$TMP/out" | head -n 40)"
    fi
}
