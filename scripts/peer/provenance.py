"""What every golden-recording script writes about where its figures came
from: file hashes and the peer build (scripts/peer-build.sh writes
peer-version.txt).  Imported by the recording scripts' Python parts
(PYTHONPATH=scripts/peer)."""
import hashlib
import json
import os


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
