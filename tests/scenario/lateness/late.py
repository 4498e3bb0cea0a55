#!/usr/bin/env python3
"""Input and checks of 105_late_and_idle.sh, part 1: late records.

gen OUT.csv: a stream of records (key, ts, id) in event-time order, one per
100 ms over 120 s for keys a..e, into which "too late" records (behind the
watermark by more than the window plus the allowed lateness) and "late but
allowed" records (their window fired, but within the lateness) are mixed,
each after at least 80 on-time records that moved the watermark past it.
Ids are unique, so a window's sum of ids tells which records it counted.

check OUT.csv MAIN.csv LATE.csv: the side output holds exactly the too-late
records, and the last result of every window equals the reference over the
records that are not too late (tumbling 10 s, lateness 5 s, bound 1 s)."""
import csv
import random
import sys

SIZE, LATENESS, BOUND = 10000, 5000, 1000
BASE = 1767225600000


def gen(path):
    rnd = random.Random(3)
    rows, nid = [], 0
    kinds = {}
    for i in range(1200):
        t = BASE + i * 100
        for k in "abcde":
            nid += 1
            rows.append((k, t, nid))
            kinds[nid] = "ok"
        if i >= 300 and i % 37 == 0:
            # too late: 20..40 s behind the newest record (>= 80 on-time records after it moved the watermark)
            nid += 1
            rows.append((rnd.choice("abcde"), t - rnd.randint(20000, 40000), nid))
            kinds[nid] = "too_late"
        if i >= 300 and i % 41 == 0:
            # late but allowed: its window [w, w+10s) ended, but end - 1 + 5s is ahead of the watermark
            w = (t - BOUND - 1) // SIZE * SIZE  # window of the watermark
            ts = w - 1 - rnd.randint(0, 1500)   # in the previous window, which fired
            if ts + (SIZE - ts % SIZE) - 1 + LATENESS > t - BOUND - 1:
                nid += 1
                rows.append((rnd.choice("abcde"), ts, nid))
                kinds[nid] = "allowed"
    with open(path, "w", newline="") as f:
        f.write("key,ts,id\n")
        for k, t, i in rows:
            f.write(f"{k},{t},{i}\n")


def ms(text):
    # 2026-01-01T00:00:01.234Z -> epoch ms (UTC)
    import datetime
    d = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    return int(d.timestamp() * 1000 + 0.5)


def check(inp, main, late):
    rows = list(csv.DictReader(open(inp)))
    too_late, windows = set(), {}
    # The engine moves the watermark per batch, so it lags this per-record
    # one by a batch (the test runs with small batches); the generator left
    # 80 records of margin, so the classification below is exact.
    wm = -2**63
    for r in rows:
        t, i, k = int(r["ts"]), int(r["id"]), r["key"]
        end = (t // SIZE + 1) * SIZE
        if end - 1 + LATENESS <= wm:
            too_late.add(i)
        else:
            w = windows.setdefault((k, end - SIZE), [0, 0])
            w[0] += 1
            w[1] += i
        wm = max(wm, t - BOUND - 1)
    got_late = {int(r["id"]) for r in csv.DictReader(open(late))}
    if got_late != too_late:
        sys.exit(f"side output: {len(got_late)} records, expected {len(too_late)}; "
                 f"missing {sorted(too_late - got_late)[:5]}, extra {sorted(got_late - too_late)[:5]}")
    last = {}
    updates = 0
    for r in csv.DictReader(open(main)):
        key = (r["key"], ms(r["window_start"]))
        if key in last:
            updates += 1
        last[key] = (int(r["n"]), int(r["ids"]))
    want = {k: tuple(v) for k, v in windows.items()}
    if last != want:
        diff = [(k, last.get(k), want.get(k)) for k in sorted(set(last) | set(want)) if last.get(k) != want.get(k)]
        sys.exit(f"{len(diff)} windows differ (key, got, want): {diff[:5]}")
    if updates == 0:
        sys.exit("no window emitted an update for a late-but-allowed record")
    print(f"late records ok: {len(too_late)} to the side output, {updates} late updates")


if __name__ == "__main__":
    if sys.argv[1] == "gen":
        gen(sys.argv[2])
    else:
        check(*sys.argv[2:5])
