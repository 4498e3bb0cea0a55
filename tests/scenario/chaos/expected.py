#!/usr/bin/env python3
"""Expected outputs of chaos/keyed.yaml (count and rate as given), and a
comparison that counts lost and duplicated records separately.

  expected.py want COUNT RATE TOTALS.csv WINDOWS.csv
  expected.py check WANT.csv GOT.csv   (prints "lost L duplicated D")"""
import datetime
import sys


def ts_text(ms):
    d = datetime.datetime.fromtimestamp(ms // 1000, datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % (ms % 1000)


def want(count, rate, totals, windows):
    n, s, hi = {}, {}, {}
    wn, ws = {}, {}
    for seq in range(count):
        k = seq % 97
        n[k] = n.get(k, 0) + 1
        s[k] = s.get(k, 0) + seq
        hi[k] = seq
        w = (seq * 1000 // rate) // 1000 * 1000
        wn[(k, w)] = wn.get((k, w), 0) + 1
        ws[(k, w)] = ws.get((k, w), 0) + seq
    with open(totals, "w") as f:
        for k in sorted(n):
            f.write("%d,%d,%d,%d\n" % (k, n[k], s[k], hi[k]))
    with open(windows, "w") as f:
        for (k, w) in sorted(wn):
            f.write("%d,%s,%s,%d,%d\n" % (k, ts_text(w), ts_text(w + 1000), wn[(k, w)], ws[(k, w)]))


def rows(path):
    out = {}
    with open(path) as f:
        for i, line in enumerate(f):
            if i == 0 and not line[:1].isdigit():
                continue  # header
            parts = line.rstrip("\n").split(",")
            key = tuple(parts[:-2]) if len(parts) == 5 else (parts[0],)
            out.setdefault(key, []).append(parts)
    return out


def check(wantf, gotf):
    w, g = rows(wantf), rows(gotf)
    lost = dup = 0
    for key, wr in w.items():
        gr = g.get(key, [])
        nw = int(wr[0][-2]) if len(wr[0]) == 5 else int(wr[0][1])
        ng = sum(int(r[-2]) if len(r) == 5 else int(r[1]) for r in gr)
        if ng < nw:
            lost += nw - ng
        if ng > nw:
            dup += ng - nw
    extra = [k for k in g if k not in w]
    print("lost %d duplicated %d unexpected-keys %d" % (lost, dup, len(extra)))


if __name__ == "__main__":
    if sys.argv[1] == "want":
        want(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5])
    else:
        check(sys.argv[2], sys.argv[3])
