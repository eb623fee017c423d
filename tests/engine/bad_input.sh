#!/bin/sh
# Bad models and prompts: exit status 1, as documented (lamina(1), EXIT
# STATUS), and one line on stderr naming what was wrong and where (the
# file, and the offset of a corrupt layout).  A crash can never pass: a
# signal, a sanitizer's report (whose exit status may be 1 too) or any
# other status is a failure.
. "$top_srcdir/tests/engine/common.sh"
if ! have_python_gguf; then skip "python gguf package missing"; done_testing; exit 0; fi
"$PYTHON" "$S/tests/tools/make_tiny_model.py" --arch gemma3 --type q4_0 --seed 3 --out "$TMP/good.gguf" >/dev/null ||
  { not_ok "generate a tiny model"; done_testing; exit 1; }
"$PYTHON" "$S/tests/tools/make_tiny_model.py" --arch qwen2moe --type mixed --seed 3 --out "$TMP/moe.gguf" >/dev/null ||
  { not_ok "generate a tiny qwen2moe model"; done_testing; exit 1; }
"$PYTHON" "$S/tests/tools/make_tiny_model.py" --arch gpt-oss --type mixed --seed 3 --out "$TMP/oss.gguf" >/dev/null ||
  { not_ok "generate a tiny gpt-oss model"; done_testing; exit 1; }
"$PYTHON" "$S/tests/tools/make_tiny_model.py" --arch bert --type q8_0 --seed 3 --out "$TMP/bert.gguf" >/dev/null ||
  { not_ok "generate a tiny bert model"; done_testing; exit 1; }
"$PYTHON" "$S/tests/engine/make_bad_models.py" "$TMP/good.gguf" "$TMP/bad" "$TMP/moe.gguf" "$TMP/oss.gguf" \
  "$TMP/bert.gguf" > "$TMP/cases" ||
  { not_ok "generate bad models"; done_testing; exit 1; }

# refused DESC LINE_PREFIX WHAT WHERE CMD...: CMD exits 1 and its stderr is
# exactly one line that starts with LINE_PREFIX, contains WHAT, and with
# WHERE = offset ends with "(offset N)"
refused() {
  desc=$1 prefix=$2 what=$3 where=$4; shift 4
  "$@" >"$TMP/out" 2>"$TMP/err"; rc=$?
  line=$(head -1 "$TMP/err")
  good=1
  [ $rc -eq 1 ] || good=0
  [ "$(wc -l < "$TMP/err")" -eq 1 ] || good=0
  grep -qE 'Sanitizer|runtime error|AddressSanitizer|Segmentation|Aborted' "$TMP/err" && good=0
  case $line in "$prefix"*"$what"*) ;; *) good=0 ;; esac
  if [ "$where" = offset ]; then
    printf '%s\n' "$line" | grep -qE ' \(offset [0-9]+\)$' || good=0
  fi
  if [ $good = 1 ]; then
    ok "$desc: exit 1, '$line'"
  else
    not_ok "$desc: expected exit 1 and one line '$prefix...$what...'${where:+ ending in (offset N)}"
    if [ $rc -gt 128 ]; then diag "exit $rc (signal $((rc - 128)))"; else diag "exit $rc"; fi
    sed 's/^/#   /' "$TMP/err" | head -20
  fi
}
tab=$(printf '\t')
while IFS="$tab" read -r name what where; do
  f="$TMP/bad/$name.gguf"
  refused "$name" "lamina: $f: " "$what" "$where" "$LAMINA" run -q "$f" "hello" -n 2
done < "$TMP/cases"
# a file that does not exist, and a name that is not in the catalogue
refused "missing file named" "lamina: model file $TMP/nope.gguf: " "No such file or directory" "" \
  "$LAMINA" run -q "$TMP/nope.gguf" "hi"
refused "unknown catalogue name" "lamina: unknown model 'no-such-model': " "not in the catalogue, not in an Ollama store and not a file path" "" \
  "$LAMINA" run -q "no-such-model" "hi"
# a name with a slash is a file path (relative to the working directory),
# never looked up in the catalogue or the model directories
refused "path-like names are file paths" "lamina: model file ../../etc/passwd:x: " "No such file or directory" "" \
  "$LAMINA" run -q "../../etc/passwd:x" "hi"
# a prompt longer than the context
long=$(for i in $(seq 1 80); do printf 'word%d ' $i; done)
refused "prompt longer than the context" "lamina: the prompt is " "tokens, more than the context length 16 (use -c to raise it" "" \
  "$LAMINA" run -q -c 16 "$TMP/good.gguf" "$long"
# the good model runs
"$LAMINA" run -q "$TMP/good.gguf" "hello" -n 4 --temp 0 >"$TMP/out" 2>"$TMP/err"; rc=$?
[ $rc -eq 0 ] && [ ! -s "$TMP/err" ] && ok "the unbroken model runs" || { not_ok "good model (exit $rc)"; sed 's/^/#   /' "$TMP/err"; }
done_testing
