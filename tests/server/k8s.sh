#!/bin/sh
# The Kubernetes deployment (deploy/kubernetes) and the container files
# (deploy/container), offline: every overlay renders with
# `kubectl kustomize`; every object of a built-in kind validates with
# kubernetes-validate (strict: unknown fields are errors) and the custom
# resources (InferencePool, HTTPRoute, ScaledObject, ServiceMonitor), whose
# CRD schemas are not available offline, are checked field by field
# (tests/server/k8s_check.py; with $LAMINA_K8S_CRDS naming a directory of
# CRD files, against those too); each overlay's lamina.ini parses
# (`lamina backends`); then `lamina serve` runs here with the rendered
# configuration (addresses and paths moved to this machine) and the
# Deployment's arguments: every httpGet probe path answers 200, /metrics
# asks for the key the Secret holds, and every metric name the KEDA query
# and the endpoint picker's engineConfigs use is in /metrics; the
# Containerfile's HEALTHCHECK command passes against it.
# Nothing is applied to a cluster.
. "$top_srcdir/tests/server/common.sh"
K="$S/deploy/kubernetes"
C="$S/deploy/container"
OVERLAYS="base cpu nvidia amd vulkan inference-pool keda"
if [ ! -d "$K/overlays" ]; then skip "deploy/kubernetes is not in this source tree"; done_testing; exit 0; fi
if ! command -v kubectl >/dev/null 2>&1; then
  skip "kubectl missing: cannot render the kustomizations"; done_testing; exit 0
fi
if ! "$PYTHON" -c 'import kubernetes_validate, yaml, jsonschema' 2>/dev/null; then
  if [ "${LAMINA_REQUIRE_CLIENTS:-0}" = 1 ]; then not_ok "python package kubernetes-validate installed"
  else skip "python package kubernetes-validate missing (./setup.sh --deps-only installs it)"; fi
  done_testing; exit $?
fi

# render and check every overlay
for o in $OVERLAYS; do
  mkdir -p "$TMP/$o"
  d=overlays/$o; [ "$o" = base ] && d=base
  if kubectl kustomize "$K/$d" > "$TMP/$o/rendered.yaml" 2> "$TMP/$o/kustomize.err"; then
    ok "$d renders (kubectl kustomize)"
  else
    not_ok "$d renders (kubectl kustomize)"; sed 's/^/#   /' "$TMP/$o/kustomize.err" | head -20
    continue
  fi
  run_tap "$o" "$PYTHON" "$S/tests/server/k8s_check.py" static "$o" "$TMP/$o/rendered.yaml"
done

# each overlay's lamina.ini as lamina reads it (probe results are cached
# under $XDG_CACHE_HOME: only the first run probes)
for o in $OVERLAYS; do
  [ -s "$TMP/$o/rendered.yaml" ] || continue
  if "$PYTHON" "$S/tests/server/k8s_check.py" extract "$TMP/$o/rendered.yaml" "$TMP/$o" "$TMP/models" 2> "$TMP/$o/extract.err"; then
    if "$LAMINA" --config "$TMP/$o/lamina.orig.ini" backends > "$TMP/$o/backends.out" 2>&1; then ok "$o: lamina accepts the rendered lamina.ini (lamina backends)"
    else not_ok "$o: lamina accepts the rendered lamina.ini (lamina backends)"; sed 's/^/#   /' "$TMP/$o/backends.out" | head -20; fi
  else
    not_ok "$o: lamina.ini and arguments extracted"; sed 's/^/#   /' "$TMP/$o/extract.err"
  fi
done

need_serve
need_gguf
setup "tiny models generated" make_models

# serve_overlay OVERLAY: lamina serve with the overlay's rendered lamina.ini
# and container arguments; the probes and metrics of its manifests
serve_overlay() {
  local o="$1" key='' args
  [ -s "$TMP/$o/lamina.ini" ] || { not_ok "$o: server configuration extracted"; return 1; }
  [ -s "$TMP/$o/api-key" ] && key="$TMP/$o/api-key"
  args=$(tr '\n' ' ' < "$TMP/$o/args"); args=${args% }
  # shellcheck disable=SC2086
  if start_server "$TMP/$o/lamina.ini" $args; then
    for i in $(seq 600); do [ "$(code "$TMP/h.json" GET /readyz)" = 200 ] && break; sleep 0.1; done
    expect_grep "$o: the server runs with the overlay's lamina.ini and arguments ($args)" \
      "$([ -n "$key" ] && echo 'API key required' || echo 'no API key')" "$SERVER_LOG"
    run_tap "$o serve" "$PYTHON" "$S/tests/server/k8s_check.py" serve "$o" "$TMP/$o/rendered.yaml" "$URL" $key
    return 0
  fi
  not_ok "$o: server starts with the overlay's configuration"
  return 1
}

# the keyed deployment (base settings, KEDA and the ServiceMonitor), and the
# Containerfile's HEALTHCHECK against it
if serve_overlay keda; then
  port=${URL##*:}
  if "$PYTHON" - "$C/Containerfile" "$port" > "$TMP/hc.cmd" 2> "$TMP/hc.err" <<'PY'
import json, sys
text = open(sys.argv[1]).read().replace("\\\n", " ")
line = [l for l in text.splitlines() if l.startswith("HEALTHCHECK")][0]
argv = json.loads(line.split(" CMD ", 1)[1])
assert argv[:2] == ["/bin/bash", "-c"] and len(argv) == 3 and "127.0.0.1/11434" in argv[2], argv
print(argv[2].replace("127.0.0.1/11434", "127.0.0.1/" + sys.argv[2]), end="")
PY
  then
    check "Containerfile HEALTHCHECK (bash /dev/tcp, GET /health) passes against the server" \
      /bin/bash -c "$(cat "$TMP/hc.cmd")"
  else
    not_ok "Containerfile HEALTHCHECK is a JSON exec form on port 11434"; sed 's/^/#   /' "$TMP/hc.err"
  fi
  check "server stops cleanly" stop_server
fi
# the deployment for the endpoint picker: no key, /metrics open
if serve_overlay inference-pool; then
  check "server stops cleanly" stop_server
fi

# the container files
expect_grep "Containerfile: two stages, debian:12 to build" '^FROM docker.io/library/debian:\$\{DEBIAN_RELEASE\} AS build' "$C/Containerfile"
expect_grep "  configure, make, make install into a staging directory" 'make install DESTDIR=/staging' "$C/Containerfile"
check "  the final stage is debian:12-slim, with no compiler, running as uid 10001, exposing 11434" \
  "$PYTHON" - "$C/Containerfile" <<'PY'
import re, sys
stages = re.split(r"(?m)^FROM ", open(sys.argv[1]).read().replace("\\\n", " "))
final = stages[-1]
ok = final.startswith("docker.io/library/debian:${DEBIAN_RELEASE}-slim")
ok &= not re.search(r"build-essential|\bgcc\b|hipcc|glslc|nvcc|-dev\b", final)
ok &= bool(re.search(r"(?m)^USER 10001", final)) and bool(re.search(r"(?m)^EXPOSE 11434$", final))
ok &= '"/usr/local/bin/lamina", "serve"' in final and "COPY --from=build" in final
sys.exit(0 if ok else 1)
PY
check "client-example.yaml: the client reaches the lamina service on 11434 with the key" \
  "$PYTHON" - "$C/client-example.yaml" <<'PY'
import sys, yaml
svcs = yaml.safe_load(open(sys.argv[1]))["services"]
srv = svcs["lamina"]["environment"]
ok = srv["LAMINA_HOST"] == "0.0.0.0:11434" and "LAMINA_API_KEY" in srv
cli = [s for n, s in svcs.items() if n != "lamina"]
for s in cli:
    env = s["environment"]
    ok &= env["OPENAI_BASE_URL"] == "http://lamina:11434/v1" and env["OPENAI_API_KEY"] == srv["LAMINA_API_KEY"]
    ok &= s["depends_on"]["lamina"]["condition"] == "service_healthy"
sys.exit(0 if ok and cli else 1)
PY
done_testing
