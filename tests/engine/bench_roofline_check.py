#!/usr/bin/env python3
"""bench_roofline_check.py MODEL.gguf BENCH.json: the tgN row's roofline
fields against the GGUF file: the weight bytes one token reads (every
blk.* tensor, an expert tensor's n_expert_used / n_expert share, the
output norm and head, one row of the token embedding when the head is not
tied to it), and the limit and fraction from the row's own figures."""
import json
import sys

from gguf import GGUFReader


def kv(r, key):
    f = r.fields.get(key)
    return None if f is None else f.parts[f.data[0]][0]


def main():
    r = GGUFReader(sys.argv[1])
    arch = bytes(r.fields["general.architecture"].parts[-1]).decode()
    used, total = kv(r, f"{arch}.expert_used_count"), kv(r, f"{arch}.expert_count")
    names = {t.name for t in r.tensors}
    want = 0
    for t in r.tensors:
        n = int(t.n_bytes)
        if t.name.startswith("blk."):
            if "_exps" in t.name and total:
                n = n // int(total) * int(used)
            want += n
        elif t.name in ("output_norm.weight", "output.weight", "rope_freqs.weight"):
            want += n
        elif t.name == "token_embd.weight":
            want += n // int(t.shape[1]) if "output.weight" in names else n
    rows = [json.loads(l) for l in open(sys.argv[2]) if l.startswith("{")]
    tg = [x for x in rows if x["test"].startswith("tg")]
    bad = 0
    if len(tg) != 1:
        print(f"expected one tg row, got {len(tg)}")
        return 1
    x = tg[0]
    for k in ("read_gbps", "read_threads", "token_weight_bytes", "token_kv_bytes", "limit_tps",
              "roofline_fraction"):
        if k not in x:
            print(f"missing {k}")
            return 1
    print(f"{arch}: token_weight_bytes {x['token_weight_bytes']} (file: {want}), kv {x['token_kv_bytes']}, "
          f"{x['read_gbps']} GB/s on {x['read_threads']}, limit {x['limit_tps']} t/s, "
          f"fraction {x['roofline_fraction']}")
    if x["token_weight_bytes"] != want:
        print("the weight bytes differ from the file's"); bad += 1
    if not (x["read_gbps"] > 0 and x["read_threads"] >= 1 and x["token_kv_bytes"] > 0):
        print("bandwidth, threads and KV bytes must be positive"); bad += 1
    tok = x["token_weight_bytes"] + x["token_kv_bytes"]
    limit = x["read_gbps"] * 1e9 / tok
    if abs(limit - x["limit_tps"]) > 1e-3 * limit + 1e-3:
        print(f"limit {x['limit_tps']} is not bandwidth / bytes ({limit:.3f})"); bad += 1
    frac = x["tps_median"] / limit
    if abs(frac - x["roofline_fraction"]) > 1e-3 * frac + 1e-4:
        print(f"fraction {x['roofline_fraction']} is not t/s / limit ({frac:.4f})"); bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
