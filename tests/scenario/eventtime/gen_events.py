#!/usr/bin/env python3
"""Generates the input of the event-time scenario (tests/scenario/100_event_time.sh).

Writes a CSV `user,kind,ts,amount` to stdout (or --out): about --count
events of ~30 users over ~20 minutes of event time from 2026-01-01, with
timestamps as epoch milliseconds. Each user is bursty: runs of events a few
hundred ms apart, separated by idle gaps of 3 s or more, so session windows
(gap 3 s) of varied length occur. Some gaps are exactly 3000 ms (a session
ends exactly where the next record is: two sessions) or 2999 ms (one
session), some records of a user share a timestamp (ties for first/last),
and some timestamps fall exactly on window boundaries.

Disorder: the records are written in the order of ts + jitter, jitter in
[0, 4000) ms, so every record's ts is more than max(ts seen before it) - 4000:
within the 5 s bound of the job's watermark, so no record is late. The same
seed always gives the same records; --shuffle SEED2 writes the same records
in another order (other jitters), still within the bound. The bound is
checked before writing, and the script exits 1 if it does not hold.

  gen_events.py [--seed N] [--count N] [--shuffle SEED2] [--out FILE]
"""
import argparse
import random
import sys

START_MS = 1767225600000 + 1234  # 2026-01-01T00:00:01.234Z: not window-aligned
MAX_DISORDER_MS = 4000  # jitter is strictly below this
BOUND_MS = 5000  # the job's max_out_of_order

USERS = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
    "ivan", "judy", "mallory", "niaj", "olivia", "peggy", "rupert", "sybil",
    "trent", "victor", "walter", "yves", "zoë", "Łukasz", "josé", "Ærø",
    "李雷", "Ωmega", "mary ann", "o'brien", "Zed", "_under",
]


def user_events(rng, user, weight, horizon_ms):
    """One user's (ts, user, kind, amount) list up to horizon_ms, bursty."""
    out = []
    t = START_MS + rng.randrange(0, 20000)
    end = START_MS + horizon_ms
    while t < end:
        burst = max(1, int(rng.expovariate(1.0 / (30 * weight))))
        for i in range(burst):
            if i > 0:
                r = rng.random()
                if r < 0.06:
                    t += 0  # same timestamp: ties for first/last
                elif r < 0.09:
                    t += rng.randrange(2000, 3600)  # sometimes splits a session
                else:
                    t += rng.randrange(1, 600)
            if rng.random() < 0.01:  # snap onto a 5 s boundary (window edges)
                t = (t // 5000 + 1) * 5000
            kind = "click" if rng.random() < 0.45 else "view"
            amount = rng.randint(-50, 1000)
            out.append((t, user, kind, amount))
        r = rng.random()
        if r < 0.05:
            t += 3000  # touching: [t0, t0+3000) ends where the next starts
        elif r < 0.10:
            t += 2999  # just overlapping: same session
        elif r < 0.16:
            t += rng.randrange(15000, 60000)  # long silence
        else:
            t += rng.randrange(3000, 8000)
    return out


def order(records, seed, cubic):
    """The records in the order of ts + jitter (jitter in [0, MAX_DISORDER_MS))."""
    rng = random.Random(seed)
    keyed = []
    for i, rec in enumerate(records):
        u = rng.random()
        j = int(MAX_DISORDER_MS * (u * u * u if cubic else u))
        keyed.append((rec[0] + j, i, rec))
    keyed.sort()
    return [k[2] for k in keyed]


def check_bound(records):
    """Returns the largest (max ts so far - ts); exits 1 if it reaches the bound."""
    max_so_far = None
    worst = 0
    for n, (ts, _, _, _) in enumerate(records):
        if max_so_far is not None:
            lag = max_so_far - ts
            if lag >= MAX_DISORDER_MS or lag >= BOUND_MS - 1:
                sys.exit("gen_events: record %d (ts %d) is %d ms below the max ts before it"
                         % (n + 1, ts, lag))
            worst = max(worst, lag)
        max_so_far = ts if max_so_far is None else max(max_so_far, ts)
    return worst


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count", type=int, default=60000)
    ap.add_argument("--shuffle", type=int, metavar="SEED2", default=None,
                    help="write the same records in another order within the bound")
    ap.add_argument("--out", default="-")
    a = ap.parse_args()
    if a.count < 1:
        sys.exit("gen_events: --count must be positive")

    rng = random.Random(a.seed)
    weights = [0.3 + 1.7 * rng.random() for _ in USERS]
    # Roughly 1.5 events/s per user: 60000 events take ~21 minutes. Generate
    # well past that, then keep the first COUNT records by ts.
    horizon = int(a.count / (30 * 1.4) * 1000 * 2) + 60000
    records = []
    for user, w in zip(USERS, weights):
        records.extend(user_events(rng, user, w, horizon))
    records.sort(key=lambda r: (r[0], r[1].encode(), r[2], r[3]))
    if len(records) < a.count:
        sys.exit("gen_events: generated only %d records" % len(records))
    records = records[:a.count]

    if a.shuffle is None:
        written = order(records, a.seed * 7919 + 1, cubic=True)
    else:
        written = order(records, a.shuffle * 104729 + 2, cubic=False)
    worst = check_bound(written)

    text = "user,kind,ts,amount\n" + "".join(
        "%s,%s,%d,%d\n" % (user, kind, ts, amount) for ts, user, kind, amount in written)
    if a.out == "-":
        sys.stdout.buffer.write(text.encode("utf-8"))
    else:
        with open(a.out, "wb") as f:
            f.write(text.encode("utf-8"))
    span = records[-1][0] - records[0][0]
    print("gen_events: %d events, %.1f min of event time, max disorder %d ms"
          % (len(written), span / 60000.0, worst), file=sys.stderr)


if __name__ == "__main__":
    main()
