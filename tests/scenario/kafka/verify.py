#!/usr/bin/env python3
"""The exactly-once oracle of the Kafka sink (docs/kafka.md), stdlib only.

  verify.py want COUNT RATE WANT        reference output of kafka/chaos.yaml:
                                        one line "k,window_start,n,s" per window
  verify.py check WANT GOT [--journal J] [--at-least-once]

GOT is `kcat -C -J` output (one JSON object per record, with headers).
With --journal only the records of journaled transactions count: a record
whose (job, subtask, epoch, attempt) has no journal line belongs to an
aborted or unfinished transaction (the dev broker keeps those visible). A
journaled transaction must be complete in the topic (as many records as its
journal line says, seq 0..n-1 each once). Prints one line
"records R kept K lost L duplicated D unexpected U incomplete I" and exits
1 when the guarantee does not hold: exactly-once needs L = D = U = I = 0;
at-least-once needs L = U = 0 (duplicates are counted, and allowed)."""
import collections
import datetime
import json
import sys


def ts_text(ms):
    d = datetime.datetime.fromtimestamp(ms // 1000, datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % (ms % 1000)


def want(count, rate, path):
    n, s = collections.Counter(), collections.Counter()
    for seq in range(count):
        w = (seq * 1000 // rate) // 1000 * 1000
        n[(seq % 97, w)] += 1
        s[(seq % 97, w)] += seq
    with open(path, "w") as f:
        for (k, w) in sorted(n):
            f.write("%d,%s,%d,%d\n" % (k, ts_text(w), n[(k, w)], s[(k, w)]))


def row(payload):
    v = json.loads(payload)
    return "%d,%s,%d,%d" % (v["k"], v["window_start"], v["n"], v["s"])


def check(wantf, gotf, journal, at_least_once):
    wanted = collections.Counter(l.strip() for l in open(wantf) if l.strip())
    txns = None
    if journal:
        txns = {}
        for line in open(journal):
            if not line.endswith("\n"):
                continue  # torn last line: no proof
            job, sub, ep, att, n = line.split()
            txns[(job, sub, ep, att)] = int(n)
    got = collections.Counter()
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
            continue
        seqs[tx][hd.get("seq")] += 1
        got[row(m["payload"])] += 1
    incomplete = 0
    if txns is not None:
        for tx, n in txns.items():
            have = seqs.get(tx, collections.Counter())
            if sorted(have) != sorted(str(i) for i in range(n)) or any(c != 1 for c in have.values()):
                incomplete += 1
                print("incomplete transaction %s: %d of %d records" % (tx, sum(have.values()), n),
                      file=sys.stderr)
    lost = sum(max(0, c - got[r]) for r, c in wanted.items())
    dup = sum(max(0, c - wanted[r]) for r, c in got.items() if r in wanted)
    unexpected = sum(c for r, c in got.items() if r not in wanted)
    print("records %d kept %d lost %d duplicated %d unexpected %d incomplete %d" %
          (records, sum(got.values()), lost, dup, unexpected, incomplete))
    for r in sorted(r for r in got if r not in wanted)[:5]:
        print("unexpected: " + r, file=sys.stderr)
    for r in sorted(r for r in wanted if got[r] < wanted[r])[:5]:
        print("lost: " + r, file=sys.stderr)
    ok = lost == 0 and unexpected == 0 and (at_least_once or (dup == 0 and incomplete == 0))
    return 0 if ok else 1


if __name__ == "__main__":
    a = sys.argv[1:]
    if a[0] == "want":
        want(int(a[1]), int(a[2]), a[3])
        sys.exit(0)
    journal = a[a.index("--journal") + 1] if "--journal" in a else None
    sys.exit(check(a[1], a[2], journal, "--at-least-once" in a))
