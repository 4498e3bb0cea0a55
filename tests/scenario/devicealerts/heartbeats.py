#!/usr/bin/env python3
"""Heartbeat traces and the alerts they must give (tests/scenario/120_device_alerts.sh).

  heartbeats.py trace --seed N [--shuffle SEED2] --out FILE
      Writes a CSV `device,ts` (ts in epoch ms) of ~60 devices over about
      an hour of event time. Devices beat every 0.5 to 12 s and now and
      then go silent for 31 s to 3 min at known times; some gaps are
      exactly 30000 ms (no alert) or 30001 ms (an alert), some heartbeats
      are sent twice, some devices beat only once. Records are written in
      the order of ts + jitter, jitter in [0, 4000) ms: out of order, but
      within the job's 5 s watermark bound (checked; exit 1 otherwise).
      --shuffle writes the same records in another order (other jitters).

  heartbeats.py expect TRACE
      Prints the expected alerts, sorted, as the job's CSV sink writes them
      (no header): for every device and every distinct heartbeat time s
      with no heartbeat in (s, s + 30 s], one row device,s,s + 30 s. This is
      computed from the sorted heartbeats, independently of the engine.
"""
import csv
import datetime
import random
import sys

START_MS = 1767225600000 + 777  # 2026-01-01T00:00:00.777Z
HORIZON_MS = 3600 * 1000
SILENCE_MS = 30000
MAX_DISORDER_MS = 4000
BOUND_MS = 5000
EPOCH = datetime.datetime(1970, 1, 1)

DEVICES = ["dev-%02d" % i for i in range(55)] + [
    "pump, north", 'valve "7"', "sensor ü", "lonely-1", "lonely-2"]


def device_beats(rng, dev):
    """One device's heartbeat times (with duplicates)."""
    if dev.startswith("lonely"):
        return [START_MS + rng.randrange(HORIZON_MS)]  # a single heartbeat
    t = START_MS + rng.randrange(20000)
    out = []
    while t < START_MS + HORIZON_MS:
        out.append(t)
        if rng.random() < 0.03:
            out.append(t)  # sent twice
        r = rng.random()
        if r < 0.02:
            t += SILENCE_MS  # exactly 30 s: not silent
        elif r < 0.04:
            t += SILENCE_MS + 1  # just over: an alert
        elif r < 0.07:
            t += rng.randrange(SILENCE_MS + 1000, 180000)  # silent
        else:
            t += rng.randrange(500, 12000)
    return out


def trace(seed, shuffle, path):
    rng = random.Random(seed)
    recs = []
    for dev in DEVICES:
        recs.extend((t, dev) for t in device_beats(rng, dev))
    jr = random.Random(shuffle if shuffle is not None else seed * 7919 + 1)
    keyed = sorted(((t + jr.randrange(MAX_DISORDER_MS), i, t, d) for i, (t, d) in enumerate(recs)))
    seen = None
    for _, _, t, _ in keyed:  # no record may be behind the watermark
        if seen is not None and t <= seen - BOUND_MS:
            sys.exit("record at %d behind the watermark %d" % (t, seen - BOUND_MS))
        seen = t if seen is None else max(seen, t)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["device", "ts"])
        for _, _, t, d in keyed:
            w.writerow([d, t])


def fmt_ts(ms):
    d = EPOCH + datetime.timedelta(milliseconds=ms)
    return d.strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % (ms % 1000)


def csv_str(s):
    if s == "" or any(c in s for c in ',"\r\n'):
        return '"' + s.replace('"', '""') + '"'
    return s


def expect(path):
    beats = {}
    with open(path, newline="", encoding="utf-8") as f:
        r = csv.reader(f)
        next(r)
        for dev, ts in r:
            beats.setdefault(dev, set()).add(int(ts))
    rows = []
    for dev, ts in beats.items():
        ts = sorted(ts)
        for i, s in enumerate(ts):
            if i + 1 == len(ts) or ts[i + 1] - s > SILENCE_MS:
                rows.append("%s,%s,%s" % (csv_str(dev), fmt_ts(s), fmt_ts(s + SILENCE_MS)))
    out = sys.stdout.buffer
    for row in sorted(r.encode("utf-8") for r in rows):
        out.write(row + b"\n")


def main(argv):
    if len(argv) >= 2 and argv[1] == "trace":
        args = dict(zip(argv[2::2], argv[3::2]))
        trace(int(args["--seed"]), int(args["--shuffle"]) if "--shuffle" in args else None,
              args["--out"])
    elif len(argv) == 3 and argv[1] == "expect":
        expect(argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
