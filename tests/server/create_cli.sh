#!/bin/sh
# `lamina create NAME [-f MODELFILE]`: an Ollama Modelfile (FROM a GGUF
# file relative to the Modelfile, PARAMETER, TEMPLATE, SYSTEM, LICENSE)
# into lamina's own store ([model] store) with the model file hard-linked
# (same inode: the test's folders are on one file system), PARAMETER stop
# in the params layer, the model run by name and listed by /api/tags;
# FROM a model of the store; ./Modelfile when -f is not given; the
# refusals (ADAPTER, a missing file, an unknown instruction, a bad
# PARAMETER, no FROM, a bad name) with exit 1 and one line on stderr
# naming them (the status lines before it, on stdout, as the API sends).
. "$top_srcdir/tests/server/common.sh"
need_serve
need_gguf
setup "tiny models made" make_models
OWN="$TMP/data/own"
printf '[model]\ndirs = %s\nstore = %s\n[server]\nlisten = 127.0.0.1:0\n' "$TMP/models" "$OWN" > "$TMP/s.ini"
mkdir -p "$TMP/mf/sub"
cp "$TMP/models/tiny-llama.gguf" "$TMP/mf/sub/m.gguf"
cat > "$TMP/mf/Modelfile.one" <<'MF'
# a tiny model
from ./sub/m.gguf
PARAMETER stop "<end>"
parameter stop </s>
PARAMETER temperature 0.5
SYSTEM """You are terse.
Very terse."""
LICENSE "MIT"
MF
man_of() { printf '%s/manifests/registry.ollama.ai/%s/%s' "$OWN" "$1" "$2"; }
blob_of() {   # blob_of NAME TAG MEDIA-SUFFIX: the blob path of that layer
  "$PYTHON" - "$(man_of "$1" "$2")" "$3" "$OWN" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
for l in m["layers"]:
    if l["mediaType"].endswith("." + sys.argv[2]):
        print(sys.argv[3] + "/blobs/" + l["digest"].replace(":", "-"))
PY
}

"$LAMINA" --config "$TMP/s.ini" create user/tiny:one -f "$TMP/mf/Modelfile.one" > "$TMP/c.out" 2>&1
check "lamina create user/tiny:one -f Modelfile: exit 0" [ $? -eq 0 ] || sed 's/^/#   /' "$TMP/c.out"
expect_grep "  prints Ollama's status lines" '^parsing GGUF$' "$TMP/c.out"
expect_grep "  ending with success" '^success$' "$TMP/c.out"
check "  the manifest is in the store" [ -f "$(man_of user/tiny one)" ]
MB=$(blob_of user/tiny one model)
same_inode() { [ -n "$1" ] && [ "$(stat -c %i "$1")" = "$(stat -c %i "$2")" ]; }
holds() { [ -n "$1" ] && [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }
check "  the model blob is the GGUF file hard-linked (same inode)" same_inode "$MB" "$TMP/mf/sub/m.gguf"
PB=$(blob_of user/tiny one params)
check "  a params layer" [ -f "$PB" ]
check "  PARAMETER stop (both) and temperature in it" \
  "$PYTHON" -c 'import json,sys; p=json.load(open(sys.argv[1])); sys.exit(0 if p.get("stop")==["<end>","</s>"] and p.get("temperature")==0.5 else 1)' "$PB"
SB=$(blob_of user/tiny one system)
check "  the multi-line SYSTEM in the system layer" holds "$SB" "$(printf 'You are terse.\nVery terse.')"
LB=$(blob_of user/tiny one license)
check "  the LICENSE layer" holds "$LB" MIT
"$LAMINA" --config "$TMP/s.ini" run -q user/tiny:one "Hello" --raw -n 2 > "$TMP/r.out" 2>&1
check "lamina run user/tiny:one works" [ $? -eq 0 ] || sed 's/^/#   /' "$TMP/r.out" | tail -5

# FROM a model of the store, in ./Modelfile (no -f)
printf 'FROM user/tiny:one\nTEMPLATE """{{ .Prompt }}"""\nPARAMETER top_k 7\n' > "$TMP/mf/Modelfile"
(cd "$TMP/mf" && "$LAMINA" --config "$TMP/s.ini" create derived) > "$TMP/c.out" 2>&1
check "lamina create derived (./Modelfile, FROM a model of the store): exit 0" [ $? -eq 0 ] || sed 's/^/#   /' "$TMP/c.out"
check "  shares the model blob" [ "$(blob_of library/derived latest model)" = "$MB" ]
check "  its params merge over the base's" \
  "$PYTHON" -c 'import json,sys; p=json.load(open(sys.argv[1])); sys.exit(0 if p.get("stop")==["<end>","</s>"] and p.get("top_k")==7 else 1)' \
  "$(blob_of library/derived latest params)"
check "  a template layer" holds "$(blob_of library/derived latest template)" '{{ .Prompt }}'

if start_server "$TMP/s.ini"; then
  curl -s "$URL/api/tags" > "$TMP/tags.json"
  check "/api/tags lists user/tiny:one and derived:latest" "$PYTHON" -c '
import json, sys
n = {m["name"] for m in json.load(open(sys.argv[1]))["models"]}
sys.exit(0 if {"user/tiny:one", "derived:latest"} <= n else 1)' "$TMP/tags.json"
  check "server stops cleanly" stop_server
else
  not_ok "server starts"
fi

# refusals: exit 1, one line naming what and where
refuse() {   # refuse DESCRIPTION PATTERN MODELFILE-TEXT [NAME]
  printf '%s' "$3" > "$TMP/mf/Modelfile.bad"
  "$LAMINA" --config "$TMP/s.ini" create "${4:-user/bad}" -f "$TMP/mf/Modelfile.bad" > "$TMP/c.out" 2> "$TMP/c.err"
  check "$1: exit 1" [ $? -eq 1 ]
  expect_grep "  naming it" "$2" "$TMP/c.err"
  check "  one line on stderr" [ "$(wc -l < "$TMP/c.err")" -eq 1 ]
}
refuse "ADAPTER" 'Modelfile.bad:2: ADAPTER: LoRA adapters are not supported' "$(printf 'FROM ./sub/m.gguf\nADAPTER ./lora.gguf\n')"
refuse "MESSAGE" 'Modelfile.bad:2: MESSAGE' "$(printf 'FROM ./sub/m.gguf\nMESSAGE user hi\n')"
refuse "an unknown instruction" "Modelfile.bad:3: unknown instruction 'QUANTIZE'" "$(printf 'FROM ./sub/m.gguf\n#\nQUANTIZE q4_0\n')"
refuse "no FROM" 'Modelfile.bad: no FROM' "$(printf 'SYSTEM hi\n')"
refuse "an unterminated \"\"\"" 'Modelfile.bad:2: TEMPLATE: unterminated """' "$(printf 'FROM ./sub/m.gguf\nTEMPLATE """x\n')"
refuse "a missing GGUF file" 'Modelfile.bad:1: FROM .*nothere.gguf' "$(printf 'FROM ./nothere.gguf\n')"
refuse "a model not in any store" 'Modelfile.bad:1: FROM nosuch' "$(printf 'FROM nosuch\n')"
refuse "a bad PARAMETER value" 'Modelfile.bad:2: PARAMETER temperature: .*temperature' "$(printf 'FROM ./sub/m.gguf\nPARAMETER temperature hot\n')"
refuse "a file that is not a GGUF" 'not a GGUF file' "$(printf 'FROM ./Modelfile\n')"
refuse "a bad model name" 'invalid model name' "$(printf 'FROM ./sub/m.gguf\n')" '../../x'
"$LAMINA" --config "$TMP/s.ini" create user/bad -f "$TMP/mf/none" > "$TMP/c.out" 2>&1
check "a missing Modelfile: exit 1" [ $? -eq 1 ]
expect_grep "  naming it" 'mf/none' "$TMP/c.out"
check "no refused model was written" [ ! -e "$OWN/manifests/registry.ollama.ai/user/bad" ]
done_testing
