#!/usr/bin/env python3
"""Reference results of tests/scenario/eventtime/windows.yaml, computed independently.

Reads the CSV written by gen_events.py (`user,kind,ts,amount`, ts in epoch
ms) and writes the rows the job's three file sinks should hold, without the
header line, sorted bytewise (as `LC_ALL=C sort`), in the text the engine
writes (timestamps `YYYY-MM-DDTHH:MM:SS.mmmZ`, CSV quoting of the file sink):

  OUTDIR/tumbling.csv  user,window_start,window_end,n,total,lo,hi,first_kind,last_kind,kinds
  OUTDIR/sliding.csv   user,window_start,window_end,n,total
  OUTDIR/sessions.csv  user,window_start,window_end,n,total

Semantics (windows aligned to epoch 0, a window is written only if it holds
a record):
- tumbling size S: [floor(ts/S)*S, +S).
- sliding size S, slide L: every [s, s+S) with s a multiple of L, s <= ts < s+S.
- session gap G: per user, records by ts; a record at t covers [t, t+G), and
  a record joins the current session iff its ts < the session's end (max ts
  + G). window_start = min ts, window_end = max ts + G.
- first: value of the smallest ts, ties -> smallest value (bytewise);
  last: value of the largest ts, ties -> largest value; count_distinct:
  distinct values; count/sum/min/max as usual (int64).

  reference.py INPUT.csv OUTDIR
"""
import csv
import datetime
import os
import sys

TUMBLE_MS = 10000
SLIDE_SIZE_MS = 10000
SLIDE_MS = 5000
GAP_MS = 3000

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def fmt_ts(ms):
    """Epoch ms as the engine writes a timestamp: 2026-01-01T00:00:10.000Z."""
    d = EPOCH + datetime.timedelta(milliseconds=ms)
    return d.strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % (ms % 1000)


def csv_str(s):
    """A string cell as the file sink writes it."""
    if s == "" or any(c in s for c in ',"\r\n'):
        return '"' + s.replace('"', '""') + '"'
    return s


def b(s):
    return s.encode("utf-8")


def full_aggs(recs):
    """n,total,lo,hi,first_kind,last_kind,kinds of a list of (ts, kind, amount)."""
    amounts = [r[2] for r in recs]
    first = min(recs, key=lambda r: (r[0], b(r[1])))[1]
    last = max(recs, key=lambda r: (r[0], b(r[1])))[1]
    kinds = len(set(r[1] for r in recs))
    return [str(len(recs)), str(sum(amounts)), str(min(amounts)), str(max(amounts)),
            csv_str(first), csv_str(last), str(kinds)]


def small_aggs(recs):
    return [str(len(recs)), str(sum(r[2] for r in recs))]


def row(user, start, end, aggs):
    return ",".join([csv_str(user), fmt_ts(start), fmt_ts(end)] + aggs)


def write_sorted(path, lines):
    data = sorted(l.encode("utf-8") for l in lines)
    with open(path, "wb") as f:
        for l in data:
            f.write(l + b"\n")


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: reference.py INPUT.csv OUTDIR")
    by_user = {}
    with open(sys.argv[1], encoding="utf-8", newline="") as f:
        rd = csv.reader(f)
        header = next(rd)
        if header != ["user", "kind", "ts", "amount"]:
            sys.exit("reference.py: unexpected header %r" % header)
        for user, kind, ts, amount in rd:
            by_user.setdefault(user, []).append((int(ts), kind, int(amount)))

    tumbling, sliding, sessions = [], [], []
    for user, recs in by_user.items():
        # Tumbling.
        win = {}
        for r in recs:
            win.setdefault(r[0] // TUMBLE_MS * TUMBLE_MS, []).append(r)
        for s, rs in win.items():
            tumbling.append(row(user, s, s + TUMBLE_MS, full_aggs(rs)))
        # Sliding: the starts s = k*L with ts - S < s <= ts.
        win = {}
        for r in recs:
            s = r[0] // SLIDE_MS * SLIDE_MS
            while s > r[0] - SLIDE_SIZE_MS:
                win.setdefault(s, []).append(r)
                s -= SLIDE_MS
        for s, rs in win.items():
            sliding.append(row(user, s, s + SLIDE_SIZE_MS, small_aggs(rs)))
        # Sessions.
        cur, end = [], None
        for r in sorted(recs, key=lambda r: r[0]):
            if cur and r[0] >= end:
                sessions.append(row(user, cur[0][0], end, small_aggs(cur)))
                cur = []
            cur.append(r)
            end = r[0] + GAP_MS if len(cur) == 1 else max(end, r[0] + GAP_MS)
        if cur:
            sessions.append(row(user, cur[0][0], end, small_aggs(cur)))

    out = sys.argv[2]
    write_sorted(os.path.join(out, "tumbling.csv"), tumbling)
    write_sorted(os.path.join(out, "sliding.csv"), sliding)
    write_sorted(os.path.join(out, "sessions.csv"), sessions)
    print("reference: %d tumbling, %d sliding, %d session rows"
          % (len(tumbling), len(sliding), len(sessions)), file=sys.stderr)


if __name__ == "__main__":
    main()
