#!/bin/sh
# Bad models and prompts: one clear line naming what and where, a non-zero
# exit, no crash (the sanitizers would turn a crash into a failure).
. "$top_srcdir/tests/engine/common.sh"
if ! have_python_gguf; then skip "python gguf package missing"; done_testing; exit 0; fi
"$PYTHON" "$S/tests/tools/make_tiny_model.py" --arch gemma3 --type q4_0 --seed 3 --out "$TMP/good.gguf" >/dev/null ||
  { not_ok "generate a tiny model"; done_testing; exit 1; }
"$PYTHON" "$S/tests/engine/make_bad_models.py" "$TMP/good.gguf" "$TMP/bad" > "$TMP/cases" ||
  { not_ok "generate bad models"; done_testing; exit 1; }
while IFS="$(printf '\t')" read -r name expect; do
  "$LAMINA" run -q "$TMP/bad/$name.gguf" "hello" -n 2 >"$TMP/out" 2>"$TMP/err"; rc=$?
  if [ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -qF -- "$expect" "$TMP/err" && [ "$(wc -l < "$TMP/err")" -le 2 ]; then
    ok "$name: exit $rc, '$(head -1 "$TMP/err")'"
  else
    not_ok "$name: expected exit 1 and '$expect'"; diag "exit $rc"; sed 's/^/#   /' "$TMP/err" | head -5
  fi
done < "$TMP/cases"
# a file that does not exist, and a name that is not in the catalogue
"$LAMINA" run -q "$TMP/nope.gguf" "hi" 2>"$TMP/err"; rc=$?
[ $rc -eq 1 ] && grep -q "nope.gguf" "$TMP/err" && ok "missing file named" || not_ok "missing file (exit $rc)"
"$LAMINA" run -q "no-such-model" "hi" 2>"$TMP/err"; rc=$?
[ $rc -eq 1 ] && grep -q "unknown model 'no-such-model'" "$TMP/err" && ok "unknown catalogue name" || not_ok "unknown name (exit $rc)"
"$LAMINA" run -q "../../etc/passwd:x" "hi" 2>"$TMP/err"; rc=$?
[ $rc -ne 0 ] && ok "path-like names refused ($(head -1 "$TMP/err"))" || not_ok "path-like name accepted"
# a prompt longer than the context
long=$(for i in $(seq 1 80); do printf 'word%d ' $i; done)
"$LAMINA" run -q -c 16 "$TMP/good.gguf" "$long" 2>"$TMP/err"; rc=$?
[ $rc -eq 1 ] && grep -q "more than the context length 16" "$TMP/err" && ok "prompt longer than the context" ||
  { not_ok "prompt longer than context (exit $rc)"; sed 's/^/#   /' "$TMP/err"; }
# the good model runs
"$LAMINA" run -q "$TMP/good.gguf" "hello" -n 4 --temp 0 >"$TMP/out" 2>"$TMP/err"; rc=$?
[ $rc -eq 0 ] && ok "the unbroken model runs" || { not_ok "good model (exit $rc)"; sed 's/^/#   /' "$TMP/err"; }
done_testing
