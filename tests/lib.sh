# tests/lib.sh - TAP helpers for shell tests.  Source it, call plan N or
# done_testing at the end.
_t=0; _fail=0
ok()      { _t=$((_t+1)); echo "ok $_t - $*"; }
not_ok()  { _t=$((_t+1)); _fail=$((_fail+1)); echo "not ok $_t - $*"; }
skip()    { _t=$((_t+1)); echo "ok $_t # SKIP $*"; }
diag()    { printf '%s\n' "$@" | sed 's/^/# /'; }
# check DESC CMD...: ok when CMD exits 0
check()   { local d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }
# setup DESC CMD...: a step the checks need, not a check of its own: when
# CMD exits 0 a diagnostic line; otherwise "not ok DESC" and the test ends
setup()   { local d=$1; shift; if "$@"; then diag "$d"; else not_ok "$d"; done_testing; exit 1; fi; }
# expect_grep DESC PATTERN FILE
expect_grep() { if grep -qE -- "$2" "$3"; then ok "$1"; else not_ok "$1"; diag "expected /$2/ in $3:"; sed 's/^/#   /' "$3" | head -20; fi; }
done_testing() { echo "1..$_t"; [ $_fail -eq 0 ]; }
B=${LAMINA_TEST_BUILD:-${top_builddir:-.}}
S=${top_srcdir:-.}
LAMINA="$B/runtime/lamina"
# llama_testdata: llama.cpp's tokenizer suite and chat templates
# (scripts/fetch-testdata.sh; test.sh exports LAMINA_LLAMA_TESTDATA).  Sets
# LLAMA_TESTDATA to its models directory, or, when it cannot be had, ends
# the test: skipped, or failed under LAMINA_REQUIRE_CLIENTS=1.
llama_testdata() {
    LLAMA_TESTDATA=${LAMINA_LLAMA_TESTDATA:-}
    if [ -z "$LLAMA_TESTDATA" ] || [ ! -d "$LLAMA_TESTDATA" ]; then
        LLAMA_TESTDATA=$("$S/scripts/fetch-testdata.sh" 2>/dev/null) || LLAMA_TESTDATA=
    fi
    [ -n "$LLAMA_TESTDATA" ] && return 0
    if [ "${LAMINA_REQUIRE_CLIENTS:-0}" = 1 ]; then not_ok "llama.cpp test data (scripts/fetch-testdata.sh)"
    else skip "llama.cpp test data unavailable (scripts/fetch-testdata.sh needs PyPI once)"; fi
    done_testing; exit $?
}
