#!/usr/bin/env python3
"""Generates the inputs of the join scenario (tests/scenario/110_joins.sh).

Writes three CSV files into OUTDIR, timestamps as epoch milliseconds:

  orders.csv     order_id,customer,amount,ts     ~--count orders, ~60 ms apart
  payments.csv   payment_id,order_id,paid,ts     0, 1 or 2 per order
  customers.csv  customer,tier,region,ts         a changelog: every customer's
                                                 versions over time (upserts)

Payments fall around their order: mostly 0..20 s after it, some up to 3 s
before it, some 30 s or more after; a few exactly on the interval bounds of
the job (-2 s and +30 s, and 1 ms beyond). Some customers get their first
version only after their first orders (enrich finds no row: nulls); some
versions share the exact time of an order of their customer (ts <= t
includes them). Versions of one customer never share a time.

Disorder: each file is written in the order of ts + jitter, jitter in
[0, 4000) ms, so every record's ts is more than (max ts before it) - 4000:
within the job's 5 s watermark bound, no record is late. The script checks
the bound and exits 1 if it does not hold. The same seed gives the same
files.

  gen.py [--seed N] [--count N] OUTDIR
"""
import argparse
import os
import random
import sys

START_MS = 1767225600000 + 777  # 2026-01-01T00:00:00.777Z: not window-aligned
MAX_DISORDER_MS = 4000
BOUND_MS = 5000
TIERS = ["bronze", "silver", "gold", "platinum"]
REGIONS = ["north", "south", "east", "west", "centre"]


def jittered(records, rng):
    """records (tuples with ts first) in the order of ts + jitter."""
    keyed = sorted((r[0] + rng.randrange(MAX_DISORDER_MS), i, r) for i, r in enumerate(records))
    out = [k[2] for k in keyed]
    mx = None
    for n, r in enumerate(out):
        if mx is not None and mx - r[0] >= BOUND_MS - 1:
            sys.exit("gen: record %d is %d ms below the max ts before it" % (n + 1, mx - r[0]))
        mx = r[0] if mx is None else max(mx, r[0])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count", type=int, default=20000)
    ap.add_argument("--order-seed", type=int, default=None,
                    help="seed of the arrival order only (default: --seed): the same records, "
                         "reordered differently within the bound")
    ap.add_argument("outdir")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    ncust = 150
    customers = ["c%03d" % i for i in range(ncust)]

    orders = []
    t = START_MS
    for oid in range(1, a.count + 1):
        t += rng.randrange(0, 120)  # sometimes 0: equal times
        cust = customers[min(int(rng.expovariate(1 / 40.0)), ncust - 1)]
        orders.append((t, oid, cust, rng.randint(1, 50000)))
    end = t

    payments = []
    pid = 0
    for ts, oid, _, amount in orders:
        r = rng.random()
        n = 0 if r < 0.1 else 2 if r > 0.85 else 1
        for _ in range(n):
            r = rng.random()
            if r < 0.03:
                off = rng.choice([-2000, -2001, 30000, 30001])  # on and just past the bounds
            elif r < 0.12:
                off = -rng.randrange(1, 3000)
            elif r < 0.2:
                off = rng.randrange(30000, 60000)
            else:
                off = rng.randrange(0, 20000)
            pid += 1
            payments.append((ts + off, pid, oid, amount if rng.random() < 0.9 else amount // 2))

    versions = []
    for i, cust in enumerate(customers):
        # most customers exist from the start; some only appear later
        t = START_MS - 1000 if rng.random() < 0.8 else START_MS + rng.randrange(0, (end - START_MS) // 2)
        used = set()
        while t <= end + 10000:
            if t not in used:
                used.add(t)
                versions.append((t, cust, rng.choice(TIERS), rng.choice(REGIONS)))
            t += rng.randrange(5000, 120000)
    # versions exactly at the time of some orders of their customer
    for ts, _, cust, _ in orders[::97]:
        if not any(v[0] == ts and v[1] == cust for v in versions):
            versions.append((ts, cust, rng.choice(TIERS), rng.choice(REGIONS)))

    if a.order_seed is not None:
        rng = random.Random(a.order_seed)
    os.makedirs(a.outdir, exist_ok=True)
    with open(os.path.join(a.outdir, "orders.csv"), "w") as f:
        f.write("order_id,customer,amount,ts\n")
        for ts, oid, cust, amount in jittered(orders, rng):
            f.write("%d,%s,%d,%d\n" % (oid, cust, amount, ts))
    with open(os.path.join(a.outdir, "payments.csv"), "w") as f:
        f.write("payment_id,order_id,paid,ts\n")
        for ts, pid, oid, paid in jittered(payments, rng):
            f.write("%d,%d,%d,%d\n" % (pid, oid, paid, ts))
    with open(os.path.join(a.outdir, "customers.csv"), "w") as f:
        f.write("customer,tier,region,ts\n")
        for ts, cust, tier, region in jittered(versions, rng):
            f.write("%s,%s,%s,%d\n" % (cust, tier, region, ts))
    print("gen: %d orders, %d payments, %d customer versions"
          % (len(orders), len(payments), len(versions)), file=sys.stderr)


if __name__ == "__main__":
    main()
