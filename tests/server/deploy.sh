#!/bin/sh
# The deployment files of `lamina serve`: the systemd unit (as generated
# for this build) passes systemd-analyze verify and runs `lamina serve`;
# the drop-in example is a [Service] override that sets the bind address
# and the key; the compose example gives every client container
# host.docker.internal through host-gateway; the manual page formats
# without warnings.
. "$top_srcdir/tests/lib.sh"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
UNIT="$B/conf/lamina.service"
check "lamina.service is generated" [ -s "$UNIT" ]
expect_grep "  it runs lamina serve from the install prefix" '^ExecStart=/.*/bin/lamina serve$' "$UNIT"
expect_grep "  and restarts on failure" '^Restart=on-failure' "$UNIT"
if command -v systemd-analyze >/dev/null 2>&1; then
  # verify a copy whose ExecStart points at a binary that exists here
  sed "s|^ExecStart=.*|ExecStart=$B/runtime/lamina serve|" "$UNIT" > "$T/lamina.service"
  if systemd-analyze verify --man=no "$T/lamina.service" > "$T/verify" 2>&1; then ok "systemd-analyze verify accepts the unit"
  else not_ok "systemd-analyze verify accepts the unit"; sed 's/^/#   /' "$T/verify"; fi
else
  skip "systemd-analyze not installed"
fi
D="$S/conf/lamina-override.conf"
expect_grep "the drop-in overrides [Service]" '^\[Service\]' "$D"
expect_grep "  sets the bind address" '^Environment=LAMINA_HOST=' "$D"
expect_grep "  and takes the key from a file" '^EnvironmentFile=' "$D"
Y=$(command -v python3)
if [ -n "$Y" ] && "$Y" -c 'import yaml' 2>/dev/null; then
  check "compose.yaml: every service reaches the host as host.docker.internal (host-gateway)" "$Y" - "$S/conf/compose.yaml" <<'PY'
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
svcs = d["services"]
ok = bool(svcs)
for name, s in svcs.items():
    hosts = s.get("extra_hosts", [])
    env = s.get("environment", {})
    ok &= "host.docker.internal:host-gateway" in hosts
    ok &= any("http://host.docker.internal:11434" in str(v) for v in env.values())
sys.exit(0 if ok else 1)
PY
else
  expect_grep "compose.yaml maps host.docker.internal to host-gateway" 'host.docker.internal:host-gateway' "$S/conf/compose.yaml"
fi
if command -v groff >/dev/null 2>&1; then
  groff -man -ww -z "$S/man/lamina-serve.1" > "$T/groff" 2>&1
  if [ ! -s "$T/groff" ]; then ok "lamina-serve(1) formats without warnings"
  else not_ok "lamina-serve(1) formats without warnings"; sed 's/^/#   /' "$T/groff" | head; fi
else
  skip "groff not installed"
fi
done_testing
