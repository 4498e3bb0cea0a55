"""Events of tests/scenario/150_kafka_source_recovery.sh.

  events.py gen FIRST COUNT     kcat lines "KEY|JSON" for global indexes FIRST..FIRST+COUNT-1
  events.py check TOTAL OUT.csv compares the windows in OUT.csv with those of
                                events 0..TOTAL-1; prints lost/duplicated counts
Event i: key k(i % 8), per-key sequence number i // 8 + 1 (consecutive per key),
event time T0 + 2 ms * i."""
import csv
import datetime
import sys

T0 = 1700000000000
KEYS = 8


def event(i):
    return "k%d" % (i % KEYS), i // KEYS + 1, T0 + 2 * i


def gen(first, count):
    out = sys.stdout
    for i in range(first, first + count):
        k, seq, ts = event(i)
        out.write('%s|{"k":"%s","seq":%d,"ts":%d}\n' % (k, k, seq, ts))


def ms(text):
    d = datetime.datetime.strptime(text.rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f")
    return int(d.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000 + 0.5)


def check(total, path):
    want = {}
    for i in range(total):
        k, seq, ts = event(i)
        w = want.setdefault((k, ts // 1000 * 1000), [0, 0, seq, seq])
        w[0] += 1
        w[1] += seq
        w[2] = min(w[2], seq)
        w[3] = max(w[3], seq)
    got = {}
    rows = 0
    with open(path) as f:
        for r in csv.DictReader(f):
            rows += 1
            key = (r["k"], ms(r["window_start"]))
            if key in got:
                print("window %s twice" % (key,))
            got[key] = [int(r["n"]), int(r["s"]), int(r["lo"]), int(r["hi"])]
    lost = dup = 0
    for key, w in want.items():
        g = got.get(key, [0, 0, 0, 0])
        if g != w:
            lost += max(0, w[0] - g[0])
            dup += max(0, g[0] - w[0])
            if lost + dup < 20:
                print("window %s: want n,s,lo,hi %s got %s" % (key, w, g))
    extra = [k for k in got if k not in want]
    print("windows=%d rows=%d lost=%d duplicated=%d unexpected=%d"
          % (len(want), rows, lost, dup, len(extra)))
    return 0 if lost == 0 and dup == 0 and not extra and rows == len(want) else 1


if __name__ == "__main__":
    if sys.argv[1] == "gen":
        gen(int(sys.argv[2]), int(sys.argv[3]))
    else:
        sys.exit(check(int(sys.argv[2]), sys.argv[3]))
