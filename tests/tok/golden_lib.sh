# Sourced by the tokenizer golden tests (ugm_golden.sh, gpt4o_golden.sh)
# after tests/lib.sh, with TMP and PY set.
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

# golden_can_fail GOLDEN MODEL: the comparison can fail: with the first id
# of a non-empty plain case of GOLDEN changed, test_golden reports it
golden_can_fail() {
    "$PY" - "$1" "$TMP/bad.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
c = next(c for c in d["cases"] if c["plain"]["ids"])
c["plain"]["ids"][0] += 1
json.dump(d, open(sys.argv[2], "w"))
PYEOF
    "$B/tests/tok/test_golden" "$TMP/bad.json" "$2" > "$TMP/bad" 2>&1
    if [ $? -ne 0 ] && grep -q '^not ok.*plain:.*ids equal' "$TMP/bad"; then
        ok "a changed expected id is reported as a mismatch"
    else
        not_ok "a changed expected id is reported as a mismatch"
        diag "$(head -n 20 "$TMP/bad")"
    fi
}
