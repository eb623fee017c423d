"""What every golden-recording script writes about where its figures came
from: file hashes and the peer build (scripts/peer-build.sh writes
peer-version.txt).  Imported by the recording scripts' Python parts
(PYTHONPATH=scripts/peer)."""
import datetime
import hashlib
import json
import os
import platform


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def peer_versions(verfile):
    """peer-version.txt as a dict (empty when the file is missing)."""
    ver = {}
    if os.path.exists(verfile):
        with open(verfile) as f:
            for line in f:
                k, _, v = line.strip().partition("=")
                ver[k] = v
    return ver


def model_provenance(generator, path, ver, **extra):
    """The provenance block of a golden recorded from the model file at
    path by generator (its script), the peer described by ver
    (peer_versions); extra keys follow (those given None are left out)."""
    p = {
        "generator": generator,
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "model_file": os.path.basename(path),
        "model_sha256": sha256(path),
        "model_size_bytes": os.path.getsize(path),
        "peer": "llama.cpp (vendor/llama.cpp of PyPI sdist llama-cpp-python==%s)" % ver.get("llama_cpp_python_version"),
        "llama_cpp_commit": ver.get("llama_cpp_commit"),
        "llama_cpp_commit_date": ver.get("llama_cpp_commit_date"),
        "sdist_sha256": ver.get("sdist_sha256"),
        "build": ("scripts/peer/dump_logits (lamina) linked to libllama built by scripts/peer-build.sh: "
                  "CMAKE_BUILD_TYPE=Release BUILD_SHARED_LIBS=ON GGML_NATIVE=ON LLAMA_CURL=OFF, CPU backend only"),
        "host": "%s %s" % (platform.system(), platform.machine()),
    }
    p.update({k: v for k, v in extra.items() if v is not None})
    return p


def peer_commit(ver, sdist_sha, known_golden):
    """llama.cpp's commit and its date.  The sdist carries no git metadata,
    so when peer-version.txt does not name the commit, a golden file
    recorded from the same sdist (same sha256) may."""
    commit, date = ver.get("llama_cpp_commit"), ver.get("llama_cpp_commit_date")
    if (not commit or commit == "unknown") and known_golden and os.path.exists(known_golden):
        p = json.load(open(known_golden)).get("provenance", {})
        if p.get("sdist_sha256") == sdist_sha:
            commit, date = p.get("llama_cpp_commit"), p.get("llama_cpp_commit_date")
    return commit or "unknown", date or "unknown"
