#!/usr/bin/env python3
"""Input and oracle of tests/scenario/157_kafka_end_to_end.sh, stdlib only.

  e2e.py gen COUNT KEYS SIZE_MS IN WANT
                                     IN: the event stream, one "KEY|JSON" line
                                     per event (kcat -P -K '|' input): JSON
                                     {"user", "ts" (epoch ms), "amount"}, the
                                     Kafka key = user; event times go forward
                                     with a little disorder. WANT: the
                                     reference of kafka/e2e.yaml computed from
                                     IN: per user and tumbling window of
                                     SIZE_MS, one line "user,window_start,n,sum"
  e2e.py check WANT GOT [--journal J [--no-aborted]]
                                     GOT is `kcat -C -J` output of the sink's
                                     topic. Every record's Kafka key must be
                                     its window's key, and the sorted rows
                                     must equal WANT exactly (each once).
                                     With --journal, only records of
                                     journaled transactions count, and every
                                     journaled transaction must be complete
                                     (seq 0..n-1 once each); --no-aborted: and
                                     every record of the topic belongs to one
                                     (a run without failures aborts nothing).
Prints "records R kept K transactions T" and exits 1 on a difference."""
import collections
import datetime
import json
import random
import sys

BASE = 1700000000000  # 2023-11-14T22:13:20Z


def ts_text(ms):
    d = datetime.datetime.fromtimestamp(ms // 1000, datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % (ms % 1000)


def gen(count, keys, path):
    rnd = random.Random(157)
    with open(path, "w") as f:
        for i in range(count):
            user = "u%02d" % rnd.randrange(keys)
            ts = BASE + i * 13 + rnd.randrange(-400, 400)  # about 77 events/s of event time
            amount = rnd.randrange(1, 1000)
            f.write('%s|{"user":"%s","ts":%d,"amount":%d}\n' % (user, user, ts, amount))


def want(inp, size, path):
    n, s = collections.Counter(), collections.Counter()
    for line in open(inp):
        v = json.loads(line.split("|", 1)[1])
        w = (v["ts"] // size) * size
        n[(v["user"], w)] += 1
        s[(v["user"], w)] += v["amount"]
    with open(path, "w") as f:
        for (u, w) in sorted(n):
            f.write("%s,%s,%d,%d\n" % (u, ts_text(w), n[(u, w)], s[(u, w)]))


def check(wantf, gotf, journal, no_aborted):
    wanted = sorted(l.strip() for l in open(wantf) if l.strip())
    txns = None
    if journal:
        txns = {}
        for line in open(journal):
            if line.endswith("\n"):
                job, sub, ep, att, n = line.split()
                txns[(job, sub, ep, att)] = int(n)
    got, bad = [], []
    seqs = collections.defaultdict(collections.Counter)
    records = 0
    for line in open(gotf):
        if not line.strip():
            continue
        m = json.loads(line)
        records += 1
        h = m.get("headers") or []
        hd = dict(zip(h[0::2], h[1::2]))
        tx = (hd.get("job"), hd.get("subtask"), hd.get("epoch"), hd.get("attempt"))
        if txns is not None and tx not in txns:
            if no_aborted:
                bad.append("record of a transaction not journaled: %s" % (tx,))
            continue
        seqs[tx][hd.get("seq")] += 1
        v = json.loads(m["payload"])
        if m.get("key") != v["key"]:
            bad.append("record key %r, window key %r" % (m.get("key"), v["key"]))
        got.append("%s,%s,%d,%d" % (v["key"], v["window_start"], v["n"], v["s"]))
    if txns is not None:
        for tx, n in txns.items():
            have = seqs.get(tx, collections.Counter())
            if sorted(have) != sorted(str(i) for i in range(n)) or any(c != 1 for c in have.values()):
                bad.append("incomplete transaction %s: %d of %d records" % (tx, sum(have.values()), n))
    got.sort()
    print("records %d kept %d transactions %s" % (records, len(got), len(txns) if txns is not None else "-"))
    if got != wanted:
        w, g = collections.Counter(wanted), collections.Counter(got)
        for r in sorted((w - g).elements())[:5]:
            bad.append("missing: " + r)
        for r in sorted((g - w).elements())[:5]:
            bad.append("extra: " + r)
        bad.append("%d rows expected, %d kept" % (len(wanted), len(got)))
    for b in bad[:10]:
        print(b, file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    a = sys.argv[1:]
    if a[0] == "gen":
        gen(int(a[1]), int(a[2]), a[4])
        want(a[4], int(a[3]), a[5])
    else:
        journal = a[a.index("--journal") + 1] if "--journal" in a else None
        sys.exit(check(a[1], a[2], journal, "--no-aborted" in a))
