#!/bin/sh
# Structured output (Ollama "format", OpenAI "response_format") on tiny
# random-weight models: every output of a corpus of schemas (numeric ranges,
# formats, patterns, nesting, $ref, recursion...), streamed and not, at
# temperature 0 and 1, validates with jsonschema; the ollama and openai
# clients with pydantic schemas; unsupported keywords refused with 400
# (tests/server/format_check.py).
. "$top_srcdir/tests/server/common.sh"
need_serve
need_gguf
need_clients
if ! "$PYTHON" -c 'import jsonschema' 2>/dev/null; then
  skip "python package jsonschema missing (./setup.sh --deps-only installs it)"; done_testing; exit 0
fi
setup "tiny models generated" make_models
write_ini "$TMP/f.ini" "parallel = 4"
if start_server "$TMP/f.ini"; then
  run_tap "format" "$PYTHON" "$S/tests/server/format_check.py" "$URL" tiny-gemma3 tiny-llama
  check "server stops cleanly" stop_server
else
  not_ok "server starts"
fi
# lamina run --format: a schema from a file, and json
printf '%s' '{"type":"object","properties":{"a":{"type":"integer"},"b":{"enum":["x","y"]}},"required":["a","b"]}' > "$TMP/s.json"
for seed in 1 2 3; do
  "$LAMINA" --config "$TMP/f.ini" run -q "$TMP/models/tiny-llama.gguf" "x" --raw --temp 1 --seed $seed -n 300 --format "@$TMP/s.json" >"$TMP/run.out" 2>"$TMP/run.err"
  check "lamina run --format @schema.json, seed $seed: valid" "$PYTHON" -c '
import json, sys, jsonschema
jsonschema.validate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2])))' "$TMP/run.out" "$TMP/s.json"
done
"$LAMINA" --config "$TMP/f.ini" run -q "$TMP/models/tiny-llama.gguf" "x" --raw --format '{"type":"integer","not":{"multipleOf":2}}' >"$TMP/run.out" 2>"$TMP/run.err"
check "lamina run --format with an unsupported keyword: exit status 2" [ $? -eq 2 ]
expect_grep "  the message names it" 'keyword .not. at [$] is not supported' "$TMP/run.err"
"$LAMINA" --config "$TMP/f.ini" run -q "$TMP/models/tiny-llama.gguf" "x" --raw --format '{"type":"string","pattern":"^(a|b)*?$"}' >"$TMP/run.out" 2>"$TMP/run.err"
check "lamina run --format with an unsupported pattern construct: exit status 2" [ $? -eq 2 ]
expect_grep "  the message names it and its position" 'keyword .pattern. at [$]: lazy quantifier at position 7' "$TMP/run.err"
# a pattern, a format and a range from the command line
printf '%s' '{"type":"object","properties":{"code":{"type":"string","pattern":"^[A-Z]{3}-[0-9]{2}$"},"day":{"type":"string","format":"date"},"n":{"type":"integer","minimum":10,"maximum":99}},"required":["code","day","n"]}' > "$TMP/p.json"
"$LAMINA" --config "$TMP/f.ini" run -q "$TMP/models/tiny-llama.gguf" "x" --raw --temp 1 --seed 5 -n 300 --format "@$TMP/p.json" >"$TMP/run.out" 2>"$TMP/run.err"
check "lamina run --format with pattern, format and minimum/maximum: valid" "$PYTHON" -c '
import datetime, json, re, sys
v = json.load(open(sys.argv[1]))
assert re.search("^[A-Z]{3}-[0-9]{2}$", v["code"]) and 10 <= v["n"] <= 99, v
datetime.date.fromisoformat(v["day"])' "$TMP/run.out"
done_testing
