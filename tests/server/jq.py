#!/usr/bin/env python3
"""jq.py [--lines|--sse] FILE EXPR [--print]: check a server reply.

FILE holds one JSON document, or with --lines one JSON object per line
(NDJSON), or with --sse server-sent events (the JSON of each "data:" line,
and the string "[DONE]").  The document (or list) is bound to d and EXPR is
evaluated: exit status 0 when it is true, 1 when false or when the file
does not parse (the reason goes to stderr as a TAP comment).  With
--print, EXPR is a statement that is executed (to print a value).
limited(count, n, reason) is available to EXPR (see below).
"""
import json
import sys


def limited(count, n, reason):
    """A generation capped at n tokens: n of them and reason "length", or
    fewer because the model ended its answer (reason "stop")."""
    return (count == n and reason == "length") or (count < n and reason == "stop")


def main():
    args = [a for a in sys.argv[1:]]
    mode = "doc"
    if args and args[0] in ("--lines", "--sse"):
        mode = args.pop(0)[2:]
    do_print = "--print" in args
    args = [a for a in args if a != "--print"]
    path, expr = args[0], args[1]
    text = open(path, encoding="utf-8", errors="replace").read()
    try:
        if mode == "lines":
            d = [json.loads(l) for l in text.splitlines() if l.strip()]
        elif mode == "sse":
            d = []
            for l in text.splitlines():
                if not l.startswith("data: "):
                    continue
                v = l[6:]
                d.append(v if v == "[DONE]" else json.loads(v))
        else:
            d = json.loads(text)
    except Exception as e:  # a reply that does not parse fails the check
        print(f"# {path}: does not parse as {mode}: {e}: {text[:200]!r}", file=sys.stderr)
        return 1
    env = {"d": d, "json": json, "limited": limited}
    if do_print:
        exec(expr, env)
        return 0
    try:
        ok = eval(expr, env)
    except Exception as e:
        print(f"# {expr}: {type(e).__name__}: {e}; reply: {text[:300]!r}", file=sys.stderr)
        return 1
    if not ok:
        print(f"# false: {expr}; reply: {text[:300]!r}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
