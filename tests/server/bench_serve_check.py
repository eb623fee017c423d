"""Reads the report of scripts/bench-serve.sh --no-peer (tests/server/bench_serve.sh)
and checks its figures are there and plausible: tokens/s, the TTFT
median and 90th percentile with their request counts, peak RSS beside the
model file's size.  No figure is compared with a speed: only signs, order
and counts.

    bench_serve_check.py REPORT MODEL.gguf "CLIENTS" K R
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from taplib import ok, done  # noqa: E402

report, model = sys.argv[1], sys.argv[2]
clients = [int(c) for c in sys.argv[3].split()]
K, R = int(sys.argv[4]), int(sys.argv[5])
lines = open(report).read().splitlines()
NUM = r"[0-9]+(?:\.[0-9]+)?"


def table(marker):
    """the rows of the table whose header contains marker: {clients: [cells]}"""
    rows = {}
    for i, l in enumerate(lines):
        if marker in l:
            for row in lines[i + 2:]:
                if not row.strip():
                    break
                cells = [c.split() for c in row.split("|")]
                if cells and len(cells[0]) == 1 and cells[0][0].isdigit():
                    rows[int(cells[0][0])] = cells[1:]
            break
    return rows


def num(s):
    return float(s) if re.fullmatch(NUM, s) else None


m = [l for l in lines if l.startswith("machine ")]
ok(m and re.match(r"machine  \S.*, [0-9]+ cores; threads [0-9]+$", m[0]),
   "the machine line names the CPU, cores and threads", m)

tps = table("lamina tok/s")
ok(sorted(tps) == clients, f"a tokens/s row per client count {clients}", sorted(tps))
for c in clients:
    cells = (tps.get(c) or [[]])[0]
    v = num(cells[0]) if cells else None
    ok(v is not None and v > 0, f"{c} client(s): tokens/s is a positive number", cells)

tt = table("lamina TTFT p50 ms")
ok(sorted(tt) == clients, f"a TTFT row per client count {clients}", sorted(tt))
for c in clients:
    cells = (tt.get(c) or [[]])[0]
    vals = [num(x) for x in cells]
    good = len(vals) == 3 and None not in vals
    ok(good and vals[0] > 0 and vals[1] >= vals[0],
       f"{c} client(s): TTFT median > 0 ms and 90th percentile >= median", cells)
    ok(good and vals[2] == int(vals[2]) and 1 <= vals[2] <= c * K * R,
       f"{c} client(s): TTFT over 1..{c * K * R} requests", cells)
ok(not any(len(v) > 1 for v in list(tt.values()) + list(tps.values())),
   "--no-peer: no llama-server columns")

msz = os.path.getsize(model) / 1048576.0
rss = [re.fullmatch(rf"peak RSS lamina +({NUM}) MiB +\(model file ({NUM}) MiB\)", l) for l in lines]
rss = [r for r in rss if r]
ok(len(rss) == 1, "one peak RSS line for lamina",
   [l for l in lines if "RSS" in l])
if rss:
    ok(float(rss[0].group(1)) > 0, "peak RSS is a positive number of MiB", rss[0].group(0))
    ok(abs(float(rss[0].group(2)) - msz) < 0.06, f"the model file's size beside it ({msz:.1f} MiB)",
       rss[0].group(0))
ok(not any("RSS llama-server" in l for l in lines), "--no-peer: no llama-server RSS line")
done()
