#!/usr/bin/env python3
"""Reference results of tests/scenario/joins/joins.yaml, computed independently.

Reads the CSVs of gen.py from INDIR and writes, into OUTDIR, the rows the
job's three file sinks should hold, without the header line, sorted bytewise
(as `LC_ALL=C sort`), in the text the engine writes (timestamps
`YYYY-MM-DDTHH:MM:SS.mmmZ`, null as an empty cell):

  interval.csv  order_id,customer,amount,ts,payment_id,right_order_id,paid,right_ts
                every (order, payment) of the same order_id with
                order.ts - 2 s <= payment.ts <= order.ts + 30 s
  window.csv    window_start,window_end,<order fields>,<payment fields>
                every such pair in the same sliding window (size 20 s, slide
                10 s, aligned to epoch 0), once per window holding both
  enrich.csv    order_id,customer,amount,ts,right_customer,tier,region,right_ts
                every order with the customer version of the largest ts <=
                the order's ts; no such version: empty customer fields

  reference.py INDIR OUTDIR
"""
import collections
import csv
import datetime
import os
import sys

LOWER, UPPER = -2000, 30000
SIZE, SLIDE = 20000, 10000
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def fmt_ts(ms):
    d = EPOCH + datetime.timedelta(milliseconds=ms)
    return d.strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % (ms % 1000)


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_sorted(path, lines):
    with open(path, "wb") as f:
        for l in sorted(l.encode("utf-8") for l in lines):
            f.write(l + b"\n")


def main():
    indir, outdir = sys.argv[1], sys.argv[2]
    orders = [(int(r["order_id"]), r["customer"], int(r["amount"]), int(r["ts"]))
              for r in read(os.path.join(indir, "orders.csv"))]
    payments = [(int(r["payment_id"]), int(r["order_id"]), int(r["paid"]), int(r["ts"]))
                for r in read(os.path.join(indir, "payments.csv"))]
    versions = [(r["customer"], r["tier"], r["region"], int(r["ts"]))
                for r in read(os.path.join(indir, "customers.csv"))]

    def o_cells(o):
        return [str(o[0]), o[1], str(o[2]), fmt_ts(o[3])]

    def p_cells(p):
        return [str(p[0]), str(p[1]), str(p[2]), fmt_ts(p[3])]

    by_order = collections.defaultdict(list)
    for p in payments:
        by_order[p[1]].append(p)
    interval, window = [], []
    for o in orders:
        for p in by_order[o[0]]:
            if o[3] + LOWER <= p[3] <= o[3] + UPPER:
                interval.append(",".join(o_cells(o) + p_cells(p)))
            lo, hi = min(o[3], p[3]), max(o[3], p[3])
            s = lo - lo % SLIDE
            while s > hi - SIZE:
                window.append(",".join([fmt_ts(s), fmt_ts(s + SIZE)] + o_cells(o) + p_cells(p)))
                s -= SLIDE

    by_cust = collections.defaultdict(list)
    for v in versions:
        by_cust[v[0]].append(v)
    enrich = []
    for o in orders:
        best = None
        for v in by_cust[o[1]]:
            if v[3] <= o[3] and (best is None or v[3] > best[3]):
                best = v
        right = [best[0], best[1], best[2], fmt_ts(best[3])] if best else ["", "", "", ""]
        enrich.append(",".join(o_cells(o) + right))

    os.makedirs(outdir, exist_ok=True)
    write_sorted(os.path.join(outdir, "interval.csv"), interval)
    write_sorted(os.path.join(outdir, "window.csv"), window)
    write_sorted(os.path.join(outdir, "enrich.csv"), enrich)


if __name__ == "__main__":
    main()
