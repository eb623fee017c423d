#!/usr/bin/env python3
"""The Kubernetes manifests of deploy/kubernetes, rendered by
`kubectl kustomize` (tests/server/k8s.sh).

  k8s_check.py static OVERLAY RENDERED.yaml
      every object of a built-in kind validated with kubernetes_validate
      (strict: unknown fields are errors) against the newest Kubernetes it
      bundles and an older one; the custom resources (InferencePool,
      HTTPRoute, ScaledObject, ServiceMonitor), whose CRD schemas are not
      available offline, checked field by field for what the deployment
      relies on (or against CRD files in $LAMINA_K8S_CRDS, when set);
      then how the objects fit together: probe, container, Service,
      InferencePool and lamina.ini ports, the key file and the Secret, the
      model volume, the grace period against preStop + drain_timeout,
      memory_mib against the memory limit, selectors against pod labels.
  k8s_check.py extract RENDERED.yaml OUTDIR MODELDIR
      (no TAP) OUTDIR/lamina.orig.ini: lamina.ini of the ConfigMap as it
      is; OUTDIR/lamina.ini: the same rewritten to run here: listen
      127.0.0.1:0, [model] dirs MODELDIR, api_key_file OUTDIR/api-key
      (the Secret's key, in OUTDIR/api-key), threads 2, memory_mib 1024;
      OUTDIR/args: the container's arguments with the
      --preload model replaced by tiny-gemma3.
  k8s_check.py serve OVERLAY RENDERED.yaml URL [KEYFILE]
      against `lamina serve` started with that configuration: every
      httpGet probe path answers 200 without a key; /metrics with and
      without the key; every metric name the KEDA query, the
      ServiceMonitor and the endpoint picker's engineConfigs use appears
      in /metrics.
Prints TAP (static, serve)."""
import base64
import configparser
import os
import re
import sys
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from taplib import done, ok  # noqa: E402

import yaml  # noqa: E402  (a dependency of kubernetes_validate)

HERE = os.path.dirname(os.path.abspath(__file__))
BASE_INI = os.path.join(HERE, "..", "..", "deploy", "kubernetes", "base", "lamina.ini")

# the custom resources this deployment uses: checked structurally
CRD_KINDS = {
    ("inference.networking.k8s.io/v1", "InferencePool"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"),
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
}
# overlay -> (device plugin resource, first backend)
DEVICES = {
    "cpu": (None, "cpu"),
    "nvidia": ("nvidia.com/gpu", "cuda"),
    "amd": ("amd.com/gpu", "rocm"),
    "vulkan": ("squat.ai/dri", "vulkan"),
}
PROMQL_WORDS = {"sum", "avg", "min", "max", "count", "by", "without", "on", "ignoring",
                "group_left", "group_right", "or", "and", "unless", "vector", "rate",
                "irate", "increase", "avg_over_time", "max_over_time", "clamp_min",
                "clamp_max", "bool", "offset"}


def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def by_kind(objs, kind):
    return [o for o in objs if o.get("kind") == kind]


def one(objs, kind):
    found = by_kind(objs, kind)
    return found[0] if len(found) == 1 else None


def parse_ini(text):
    cp = configparser.ConfigParser(delimiters=("=",), comment_prefixes=("#", ";"),
                                   inline_comment_prefixes=None, interpolation=None,
                                   strict=True, empty_lines_in_values=False)
    cp.optionxform = str
    cp.read_string(text)
    return cp


def ini_get(cp, sec, key, default=None):
    return cp.get(sec, key) if cp.has_section(sec) and cp.has_option(sec, key) else default


def ini_bool(v):
    return str(v).strip().lower() in ("true", "yes", "on", "1")


def split_listen(v):
    m = re.match(r"^\[?([^\]]*?)\]?:(\d+)$", v.strip())
    return (m.group(1), int(m.group(2))) if m else (None, None)


def mib(q):
    """A Kubernetes memory quantity in MiB."""
    m = re.match(r"^(\d+(?:\.\d+)?)([KMGTE]i?|[kmgte]?)$", str(q))
    if not m:
        return None
    f = {"": 1, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 1024, "Mi": 1024**2,
         "Gi": 1024**3, "Ti": 1024**4}.get(m.group(2), 1)
    return float(m.group(1)) * f / 1024**2


def cpus(q):
    s = str(q)
    return float(s[:-1]) / 1000 if s.endswith("m") else float(s)


def promql_metrics(query):
    q = re.sub(r"\{[^}]*\}", " ", query)
    q = re.sub(r"\[[^\]]*\]", " ", q)
    names = re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*(?=\s*[^\sA-Za-z0-9_:(]|\s*$)", q)
    return sorted({n for n in names if n not in PROMQL_WORDS and not re.fullmatch(r"\d+", n)})


def promql_labels(query):
    out = {}
    for block in re.findall(r"\{([^}]*)\}", query):
        for k, v in re.findall(r'(\w+)\s*=\s*"([^"]*)"', block):
            out[k] = v
    return out


def spec_metric(spec):
    """An EPP metric spec: name{label=value,...} -> name."""
    return re.match(r"^\s*([A-Za-z_:][A-Za-z0-9_:]*)", spec).group(1) if spec else None


class Rendered:
    """The objects of one rendered overlay and what the checks need from them."""

    def __init__(self, path):
        self.objs = load(path)
        self.deploy = one(self.objs, "Deployment")
        self.pod = self.deploy["spec"]["template"] if self.deploy else {}
        self.podspec = self.pod.get("spec", {})
        cs = self.podspec.get("containers", [])
        self.ctr = cs[0] if len(cs) == 1 else None
        self.pod_labels = self.pod.get("metadata", {}).get("labels", {})
        self.ports = {p.get("name"): p["containerPort"] for p in (self.ctr or {}).get("ports", [])}
        self.env = {e["name"]: e.get("value") for e in (self.ctr or {}).get("env", [])}
        self.volumes = {v["name"]: v for v in self.podspec.get("volumes", [])}
        self.mounts = {m["mountPath"]: m for m in (self.ctr or {}).get("volumeMounts", [])}
        self.config_map = self.ini_text = None
        cfg = self.env.get("LAMINA_CONFIG", "/etc/lamina/lamina.ini")
        m = self.mounts.get(os.path.dirname(cfg))
        if m and "configMap" in self.volumes.get(m["name"], {}):
            name = self.volumes[m["name"]]["configMap"]["name"]
            self.config_map = next((o for o in by_kind(self.objs, "ConfigMap")
                                    if o["metadata"]["name"] == name), None)
            if self.config_map:
                self.ini_text = self.config_map.get("data", {}).get(os.path.basename(cfg))
        self.ini = parse_ini(self.ini_text) if self.ini_text is not None else None

    def port(self, p):
        """A probe's or targetPort's port: a number, or a container port name."""
        return p if isinstance(p, int) else self.ports.get(p)

    def secret_for(self, path):
        """The Secret mounted at the directory of path, and the key file name."""
        m = self.mounts.get(os.path.dirname(path))
        vol = self.volumes.get(m["name"], {}) if m else {}
        if "secret" not in vol:
            return None, None
        name = vol["secret"]["secretName"]
        sec = next((o for o in by_kind(self.objs, "Secret") if o["metadata"]["name"] == name), None)
        return sec, os.path.basename(path)

    def probes(self):
        out = []
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            p = (self.ctr or {}).get(kind)
            if p and "httpGet" in p:
                out.append((kind, p["httpGet"].get("path", "/"), self.port(p["httpGet"]["port"])))
        return out

    def keda_queries(self):
        return [t["metadata"]["query"] for so in by_kind(self.objs, "ScaledObject")
                for t in so["spec"].get("triggers", []) if t.get("type") == "prometheus"]

    def epp_config(self):
        for cm in by_kind(self.objs, "ConfigMap"):
            for v in cm.get("data", {}).values():
                if "EndpointPickerConfig" in v:
                    return yaml.safe_load(v)
        return None

    def epp_metric_names(self):
        cfg = self.epp_config() or {}
        names = []
        for p in cfg.get("plugins", []):
            if p.get("type") == "core-metrics-extractor":
                for ec in (p.get("parameters") or {}).get("engineConfigs", []):
                    for k in ("queuedRequestsSpec", "runningRequestsSpec", "kvUsageSpec"):
                        if ec.get(k):
                            names.append(spec_metric(ec[k]))
        return names


# ---------------------------------------------------------------- static

def k8s_versions():
    from kubernetes_validate import utils
    vs = sorted(utils.all_versions(), key=lambda v: tuple(int(x) for x in v.split(".")))
    newest = vs[-1]
    older = [v for v in vs if tuple(int(x) for x in v.split("."))[:2] >= (1, 30)]
    return [newest] + ([older[0]] if older and older[0] != newest else [])


def validate_builtin(obj, versions):
    import kubernetes_validate
    for v in versions:
        try:
            kubernetes_validate.validate(obj, v, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            return False, f"Kubernetes {v}: {path}: {e.message}"
        except kubernetes_validate.SchemaNotFoundError:
            return False, f"no schema for {obj['apiVersion']} {obj['kind']} in Kubernetes {v}"
    return True, None


def strict_schema(s):
    """A CRD's openAPIV3Schema with unknown fields refused (as the API
    server's strict field validation does) and x-kubernetes-* dropped."""
    if isinstance(s, list):
        return [strict_schema(x) for x in s]
    if not isinstance(s, dict):
        return s
    s = {k: strict_schema(v) for k, v in s.items() if not k.startswith("x-kubernetes-")}
    if s.get("type") == "object" and "properties" in s and "additionalProperties" not in s:
        s["additionalProperties"] = False
    return s


def crd_schemas(d):
    out = {}
    for fn in sorted(os.listdir(d)):
        if not fn.endswith((".yaml", ".yml", ".json")):
            continue
        for doc in load(os.path.join(d, fn)):
            if doc.get("kind") != "CustomResourceDefinition":
                continue
            g, k = doc["spec"]["group"], doc["spec"]["names"]["kind"]
            for v in doc["spec"]["versions"]:
                out[(f"{g}/{v['name']}", k)] = strict_schema(v["schema"]["openAPIV3Schema"])
    return out


def check_crd_schema(obj, schemas):
    import jsonschema
    s = schemas.get((obj["apiVersion"], obj["kind"]))
    if s is None:
        return None, None
    errs = sorted(jsonschema.Draft7Validator(s).iter_errors(obj), key=lambda e: list(e.path))
    return not errs, "; ".join(f"{'.'.join(map(str, e.path))}: {e.message}" for e in errs[:5])


def subset(sel, labels):
    return bool(sel) and all(labels.get(k) == v for k, v in sel.items())


def check_inferencepool(r, o, name):
    s = o.get("spec", {})
    ok(set(s) <= {"selector", "targetPorts", "endpointPickerRef", "appProtocol"},
       f"{name}: spec has only the v1 fields (selector, targetPorts, endpointPickerRef)", sorted(s))
    sel = s.get("selector", {})
    ok(set(sel) == {"matchLabels"} and subset(sel.get("matchLabels"), r.pod_labels),
       f"{name}: selector.matchLabels selects the lamina pods", sel)
    tp = s.get("targetPorts", [])
    ok(len(tp) == 1 and set(tp[0]) == {"number"} and tp[0]["number"] == r.ports.get("http"),
       f"{name}: targetPorts is the one container port ({r.ports.get('http')})", tp)
    ep = s.get("endpointPickerRef", {})
    good = (set(ep) <= {"group", "kind", "name", "port", "failureMode"} and bool(ep.get("name"))
            and ep.get("kind", "Service") == "Service"
            and isinstance(ep.get("port", {}).get("number"), int) and set(ep.get("port", {})) == {"number"}
            and ep.get("failureMode", "FailClose") in ("FailOpen", "FailClose"))
    ok(good, f"{name}: endpointPickerRef names a Service, port.number and a failureMode", ep)


def check_httproute(r, o, name):
    s = o.get("spec", {})
    pools = {p["metadata"]["name"] for p in by_kind(r.objs, "InferencePool")}
    svcs = {sv["metadata"]["name"]: {p["port"] for p in sv["spec"]["ports"]} for sv in by_kind(r.objs, "Service")}
    refs = [b for rule in s.get("rules", []) for b in rule.get("backendRefs", [])]
    good = bool(s.get("parentRefs")) and bool(refs)
    for b in refs:
        if b.get("kind") == "InferencePool":
            good &= b.get("group") == "inference.networking.k8s.io" and b.get("name") in pools
        elif b.get("kind", "Service") == "Service":
            good &= b.get("port") in svcs.get(b.get("name"), set())
        else:
            good = False
    ok(good, f"{name}: parentRefs, and backendRefs to this InferencePool or the Service port", refs)
    ok(any(b.get("kind") == "InferencePool" for b in refs), f"{name}: routes to the InferencePool")


def check_scaledobject(r, o, name):
    s = o.get("spec", {})
    t = s.get("scaleTargetRef", {})
    ok(t.get("kind", "Deployment") == "Deployment" and r.deploy is not None
       and t.get("name") == r.deploy["metadata"]["name"],
       f"{name}: scaleTargetRef is the Deployment", t)
    lo, hi = s.get("minReplicaCount", 0), s.get("maxReplicaCount", 100)
    ok(isinstance(lo, int) and isinstance(hi, int) and 1 <= lo <= hi,
       f"{name}: 1 <= minReplicaCount <= maxReplicaCount ({lo}, {hi})")
    ok(r.deploy is not None and "replicas" not in r.deploy["spec"],
       f"{name}: the Deployment leaves spec.replicas to the HPA")
    trig = s.get("triggers", [])
    good = bool(trig)
    for tr in trig:
        md = tr.get("metadata", {})
        good &= tr.get("type") == "prometheus" and all(isinstance(v, str) for v in md.values())
        good &= {"serverAddress", "query", "threshold"} <= set(md)
        good &= re.fullmatch(r"\d+(\.\d+)?", md.get("threshold", "")) is not None
    ok(good, f"{name}: prometheus triggers with string metadata serverAddress, query, threshold", trig)
    svc_names = {sv["metadata"]["name"] for sv in by_kind(r.objs, "Service")}
    for q in r.keda_queries():
        job = promql_labels(q).get("job")
        ok(job is None or job in svc_names, f"{name}: the query's job label is the Service's name ({job})", q)
        ok(bool(promql_metrics(q)), f"{name}: the query names a metric ({', '.join(promql_metrics(q))})", q)


def check_servicemonitor(r, o, name):
    s = o.get("spec", {})
    svc = one(r.objs, "Service")
    ok(svc is not None and subset(s.get("selector", {}).get("matchLabels"), svc["metadata"].get("labels", {})),
       f"{name}: selector matches the Service's labels")
    names = {p.get("name") for p in svc["spec"]["ports"]} if svc else set()
    for ep in s.get("endpoints", []):
        ok(ep.get("port") in names and ep.get("path", "/metrics") == "/metrics",
           f"{name}: scrapes /metrics on the Service port {ep.get('port')}")
        cred = ep.get("authorization", {}).get("credentials", {})
        sec = next((x for x in by_kind(r.objs, "Secret") if x["metadata"]["name"] == cred.get("name")), None)
        ok(ep.get("authorization", {}).get("type", "Bearer") == "Bearer" and sec is not None
           and cred.get("key") in sec.get("data", {}),
           f"{name}: the bearer token is the API key of the rendered Secret", cred)
        tok = base64.b64decode(sec["data"][cred["key"]]).decode() if sec and cred.get("key") in sec.get("data", {}) else ""
        ok(tok and tok == tok.strip(), f"{name}: the Secret's key has no trailing newline (it goes into a header)",
           repr(tok[-3:]))


def check_epp_config(r):
    cfg = r.epp_config()
    if cfg is None:
        return
    ok(cfg.get("kind") == "EndpointPickerConfig" and str(cfg.get("apiVersion", "")).endswith("/v1alpha1"),
       "EPP config: an EndpointPickerConfig")
    names = {p.get("name", p.get("type")) for p in cfg.get("plugins", [])}
    refs = [pr["pluginRef"] for prof in cfg.get("schedulingProfiles", []) for pr in prof.get("plugins", [])]
    ok(bool(refs) and set(refs) <= names, "EPP config: every pluginRef of the profiles is a declared plugin",
       f"declared {sorted(names)}, referenced {refs}")
    ex = [p for p in cfg.get("plugins", []) if p.get("type") == "core-metrics-extractor"]
    params = (ex[0].get("parameters") or {}) if ex else {}
    engines = {e.get("name"): e for e in params.get("engineConfigs", [])}
    key = params.get("engineLabelKey")
    ok(bool(ex) and params.get("defaultEngine") in engines and r.pod_labels.get(key) in engines,
       f"EPP config: engineConfigs has the default engine and the pods' {key} label",
       f"engines {sorted(engines)}, default {params.get('defaultEngine')}, pod label {r.pod_labels.get(key)}")
    ok(len(r.epp_metric_names()) == 3, "EPP config: queued, running and KV-usage metric specs",
       r.epp_metric_names())


def static(overlay, path):
    r = Rendered(path)
    versions = k8s_versions()
    schemas = crd_schemas(os.environ["LAMINA_K8S_CRDS"]) if os.environ.get("LAMINA_K8S_CRDS") else {}
    for o in r.objs:
        name = f"{o.get('kind')}/{o.get('metadata', {}).get('name')}"
        key = (o.get("apiVersion"), o.get("kind"))
        if key in CRD_KINDS:
            good, why = check_crd_schema(o, schemas)
            if good is not None:
                ok(good, f"{name}: valid against its CRD in $LAMINA_K8S_CRDS (unknown fields refused)", why)
            else:
                print(f"# {name}: custom resource, CRD schema not available offline: checked field by field")
            {"InferencePool": check_inferencepool, "HTTPRoute": check_httproute,
             "ScaledObject": check_scaledobject, "ServiceMonitor": check_servicemonitor}[o["kind"]](r, o, name)
        else:
            good, why = validate_builtin(o, versions)
            ok(good, f"{name}: valid {o.get('apiVersion')} (Kubernetes {' and '.join(versions)}, strict)", why)

    # how the pieces fit
    ok(r.deploy is not None and r.ctr is not None, "one Deployment with one container")
    if r.ctr is None:
        return
    cport = r.ports.get("http")
    ok(cport == 11434, f"container port \"http\" is 11434 ({cport})")
    probes = r.probes()
    kinds = {k: p for k, p, _ in probes}
    ok(kinds.get("startupProbe") == "/readyz" and kinds.get("readinessProbe") == "/readyz"
       and kinds.get("livenessProbe") == "/health",
       "startup and readiness probes on /readyz, liveness on /health", probes)
    ok(all(port == cport for _, _, port in probes), "every probe's port is the container port", probes)
    svc = one(r.objs, "Service")
    sp = [p for p in svc["spec"]["ports"] if p.get("name") == "http"] if svc else []
    ok(len(sp) == 1 and sp[0]["port"] == 11434 and r.port(sp[0].get("targetPort", sp[0]["port"])) == cport,
       "Service port \"http\" 11434, targetPort the container port", sp)
    ok(svc is not None and subset(svc["spec"].get("selector"), r.pod_labels), "the Service selects the pods")
    for kind in ("PodDisruptionBudget", "NetworkPolicy"):
        for o in by_kind(r.objs, kind):
            sel = (o["spec"].get("selector") or o["spec"].get("podSelector") or {}).get("matchLabels")
            ok(subset(sel, r.pod_labels), f"the {kind} selects the pods")
    ok(r.ini is not None, f"the ConfigMap's lamina.ini is mounted at {r.env.get('LAMINA_CONFIG')} ($LAMINA_CONFIG)")
    if r.ini is None:
        return
    host, lport = split_listen(ini_get(r.ini, "server", "listen", "127.0.0.1:11434"))
    ok(lport == cport and host in ("0.0.0.0", "::"),
       f"lamina.ini listens on every interface at the container port ({host}:{lport})")
    keyfile = ini_get(r.ini, "server", "api_key_file")
    unauth = ini_bool(ini_get(r.ini, "server", "allow_unauthenticated", "false"))
    if keyfile:
        sec, fname = r.secret_for(keyfile)
        ok(sec is not None and fname in sec.get("data", {}) and r.mounts[os.path.dirname(keyfile)].get("readOnly"),
           f"api_key_file {keyfile} is a key of the Secret mounted there, read-only")
    else:
        ok(unauth and any(o["kind"] == "NetworkPolicy" for o in r.objs),
           "no api_key_file: allow_unauthenticated = true, and a NetworkPolicy limits who connects")
    dirs = [d.strip() for d in ini_get(r.ini, "model", "dirs", "").split(",") if d.strip()]
    mvol = [m for m in dirs if m in r.mounts and "persistentVolumeClaim" in r.volumes.get(r.mounts[m]["name"], {})]
    claims = {o["metadata"]["name"] for o in by_kind(r.objs, "PersistentVolumeClaim")}
    ok(bool(mvol) and all(r.mounts[m].get("readOnly") for m in mvol)
       and r.volumes[r.mounts[mvol[0]]["name"]]["persistentVolumeClaim"]["claimName"] in claims,
       f"[model] dirs {dirs} is the models PVC, mounted read-only")
    drain = int(ini_get(r.ini, "server", "drain_timeout", "30"))
    pre = (r.ctr.get("lifecycle", {}).get("preStop") or {})
    sleep = pre.get("sleep", {}).get("seconds")
    cmd = pre.get("exec", {}).get("command", [])
    if sleep is None and len(cmd) == 2 and cmd[0].endswith("sleep"):
        sleep = int(cmd[1])
    grace = r.podspec.get("terminationGracePeriodSeconds", 30)
    ok(sleep is not None and grace >= sleep + drain,
       f"terminationGracePeriodSeconds {grace} >= preStop sleep {sleep} + drain_timeout {drain}")
    res = r.ctr.get("resources", {})
    lim = mib(res.get("limits", {}).get("memory", "0"))
    mm = int(ini_get(r.ini, "server", "memory_mib", "0"))
    ok(lim and 0 < mm < lim, f"[server] memory_mib {mm} is set and below the memory limit ({lim:.0f} MiB)")
    thr = int(ini_get(r.ini, "model", "threads", "0"))
    req = cpus(res.get("requests", {}).get("cpu", "0"))
    ok(0 < thr <= max(1, round(req)), f"[model] threads {thr} is set and within the cpu request ({req:g})")
    sc, psc = r.ctr.get("securityContext", {}), r.podspec.get("securityContext", {})
    ok(psc.get("runAsNonRoot") is True and psc.get("runAsUser", 0) != 0 and sc.get("readOnlyRootFilesystem") is True
       and sc.get("allowPrivilegeEscalation") is False and "ALL" in sc.get("capabilities", {}).get("drop", []),
       "non-root, read-only root file system, no privilege escalation, no capabilities")
    writable = [p for p in ("/tmp", r.env.get("XDG_CACHE_HOME")) if p]
    ok(all(p in r.mounts and "emptyDir" in r.volumes[r.mounts[p]["name"]] for p in writable),
       f"writable emptyDirs for {', '.join(writable)}")
    # the same [server]/[model] settings as base/lamina.ini
    base = parse_ini(open(BASE_INI).read())
    same = all(ini_get(r.ini, s, k) == ini_get(base, s, k)
               for s, k in (("server", "listen"), ("server", "drain_timeout"), ("model", "dirs")))
    same &= keyfile == ini_get(base, "server", "api_key_file") or (unauth and not keyfile)
    ok(same, "listen, drain_timeout, dirs and api_key_file as in base/lamina.ini")
    backends = [b.strip() for b in ini_get(r.ini, "scheduler", "backends", "auto").split(",")]
    for b in ("cpu", "cuda", "rocm", "vulkan"):
        if b not in backends and b != "cpu":
            ok(not ini_bool(ini_get(r.ini, f"backend.{b}", "enabled", "true")),
               f"[backend.{b}] not in backends ({', '.join(backends)}): enabled = false, never probed")
    if overlay in DEVICES:
        resource, first = DEVICES[overlay]
        limits = res.get("limits", {})
        ok(backends[0] == first and backends[-1] == "cpu",
           f"{overlay}: backends start with {first} and end with cpu ({', '.join(backends)})")
        if resource:
            ok(str(limits.get(resource)) == "1", f"{overlay}: limits {resource}: 1")
    if overlay == "amd":
        arch = [a.strip() for a in ini_get(r.ini, "backend.rocm", "allow_arch", "").split(",")]
        ok("gfx906" in arch, f"amd: [backend.rocm] allow_arch admits the MI50's gfx906 ({', '.join(arch)})")
    check_epp_config(r)


# ---------------------------------------------------------------- extract

def extract(path, outdir, modeldir):
    r = Rendered(path)
    if r.ini_text is None or r.ctr is None:
        sys.exit("no lamina.ini or no container in " + path)
    keyfile = ini_get(r.ini, "server", "api_key_file")
    if keyfile:
        sec, fname = r.secret_for(keyfile)
        key = base64.b64decode(sec["data"][fname]).decode()
        with open(os.path.join(outdir, "api-key"), "w") as f:
            f.write(key)
    with open(os.path.join(outdir, "lamina.orig.ini"), "w") as f:
        f.write(r.ini_text)
    out, section = [], None
    for line in r.ini_text.splitlines():
        m = re.match(r"^\s*\[([^\]]+)\]", line)
        if m:
            section = m.group(1).strip()
        k = re.match(r"^\s*([A-Za-z0-9_.]+)\s*=", line)
        key = k.group(1) if k else None
        if section == "server" and key == "listen":
            line = "listen = 127.0.0.1:0"
        elif section == "server" and key == "api_key_file":
            line = "api_key_file = " + os.path.join(outdir, "api-key")
        elif section == "model" and key == "dirs":
            line = "dirs = " + modeldir
        elif section == "model" and key == "threads":
            line = "threads = 2"
        elif section == "server" and key == "memory_mib":
            line = "memory_mib = 1024"
        out.append(line)
    with open(os.path.join(outdir, "lamina.ini"), "w") as f:
        f.write("\n".join(out) + "\n")
    args = list(r.ctr.get("args", []))
    for i, a in enumerate(args):
        if a == "--preload" and i + 1 < len(args):
            args[i + 1] = "tiny-gemma3"
    with open(os.path.join(outdir, "args"), "w") as f:
        f.write("".join(a + "\n" for a in args))


# ---------------------------------------------------------------- serve

def get(url, key=None):
    h = {"Authorization": "Bearer " + key} if key else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=h), timeout=60) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def serve(overlay, path, url, keyfile):
    r = Rendered(path)
    key = open(keyfile).read().strip() if keyfile else None
    for kind, p, _ in r.probes():
        st, body = get(url + p)
        ok(st == 200, f"{kind} GET {p} without a key: 200 on the running server ({st})", body)
    st, body = get(url + "/metrics")
    if key:
        ok(st == 401, f"GET /metrics without the key: 401 ({st}), so scrapers need the key", body)
        st, body = get(url + "/metrics", key)
        ok(st == 200, f"GET /metrics with the Secret's key: 200 ({st})", body)
    else:
        ok(st == 200, f"GET /metrics without credentials: 200 ({st}), as the endpoint picker scrapes it", body)
    samples = {re.split(r"[{ ]", line, 1)[0] for line in body.splitlines() if line and not line.startswith("#")}
    names = []
    for q in r.keda_queries():
        names += [(n, "the KEDA query") for n in promql_metrics(q)]
    names += [(n, "engineConfigs") for n in r.epp_metric_names()]
    for n, where in names:
        ok(n in samples, f"{where}: {n} is a sample of /metrics", sorted(samples))
    if not names:
        print("# no KEDA query or engineConfigs in this overlay")
    # what a router reads must move with the load: present and numeric
    for n, _ in names:
        vals = [line.rsplit(" ", 1)[-1] for line in body.splitlines()
                if line.startswith(n + " ") or line.startswith(n + "{")]
        ok(all(re.fullmatch(r"-?[0-9.e+-]+", v) for v in vals) and vals, f"{n}: numeric value(s) {vals}")


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "static" and len(sys.argv) == 4:
        static(sys.argv[2], sys.argv[3])
        done()
    elif cmd == "extract" and len(sys.argv) == 5:
        extract(sys.argv[2], sys.argv[3], sys.argv[4])
    elif cmd == "serve" and len(sys.argv) in (5, 6):
        serve(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5] if len(sys.argv) == 6 else None)
        done()
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
