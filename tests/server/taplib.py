"""TAP lines and a JSON POST helper for the Python checks of tests/server
(imported from the script's own directory)."""
import json
import sys
import urllib.error
import urllib.request

_n = _failed = 0


def ok(cond, desc, detail=None):
    """One TAP line; on failure up to 12 lines of detail as comments."""
    global _n, _failed
    _n += 1
    if not cond:
        _failed += 1
    print(("ok" if cond else "not ok") + f" {_n} - {desc}", flush=True)
    if not cond and detail is not None:
        for line in str(detail)[:2000].splitlines()[:12]:
            print("#   " + line, flush=True)
    return cond


def done():
    """The plan line; exit status 1 when a test failed."""
    print(f"1..{_n}")
    sys.exit(1 if _failed else 0)


def poster(url):
    """post(path, body) -> (status, parsed JSON or the text) against url."""
    def post(path, body):
        req = urllib.request.Request(url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=300) as r:
                status, text = r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode()
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text
    return post
