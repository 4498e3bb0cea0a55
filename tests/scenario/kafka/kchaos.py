#!/usr/bin/env python3
"""Helpers of tests/scenario/158_kafka_chaos.sh, stdlib only.

  kchaos.py gen COUNT EVRATE NPARTS DIR
        DIR/in-P for each partition P < NPARTS: for seq in 0..COUNT-1 with
        seq % 97 % NPARTS == P, one "k|{"k","v","ts"}" line (kcat -P -K '|'):
        k = seq % 97, v = seq, ts = seq * 1000 // EVRATE, the input of
        kafka/kchaos.yaml; and DIR/want, its output (`verify.py want`)
  kchaos.py resumed CKROOT SOURCE LOG...
        checks every "source 'SOURCE' ... resuming topic 'T' partition P at
        offset N (checkpoint chk-C)" line of the worker logs LOG against the
        offset that checkpoint's state files (CKROOT/chk-C/task-*.state, the
        format of worker/task.c and worker/op_kafka_source.c) hold for T/P;
        prints "resumed R past0 Z" (R lines, Z of them past offset 0) and
        exits 1 on a mismatch or when no line was found."""
import glob
import os
import re
import struct
import sys

import verify


def gen(count, evrate, nparts, outdir):
    outs = [open(os.path.join(outdir, "in-%d" % p), "w") for p in range(nparts)]
    for seq in range(count):
        k = seq % 97
        outs[k % nparts].write('%d|{"k":%d,"v":%d,"ts":%d}\n' % (k, k, seq, seq * 1000 // evrate))
    for f in outs:
        f.close()
    verify.want(count, evrate, os.path.join(outdir, "want"))


class Reader:
    def __init__(self, b):
        self.b, self.p = b, 0

    def take(self, fmt):
        v = struct.unpack_from("<" + fmt, self.b, self.p)
        self.p += struct.calcsize("<" + fmt)
        return v[0]

    def bytes(self):
        n = self.take("I")
        v = self.b[self.p:self.p + n]
        self.p += n
        return v


def offsets(chkdir, source):
    """{(topic, partition): next} of the partitions the source's subtasks own."""
    got = {}
    for path in sorted(glob.glob(os.path.join(chkdir, "task-*.state"))):
        r = Reader(open(path, "rb").read())
        r.take("I")  # magic
        r.take("I")  # version
        for _ in range(r.take("I")):
            name, state = r.bytes(), r.bytes()
            if name.decode() != source:
                continue
            s = Reader(state)
            s.take("B")  # version
            for _ in range(s.take("I")):
                topic = s.bytes().decode()
                partition, owned = s.take("I"), s.take("B")
                nxt, _end = s.take("q"), s.take("q")
                if owned:
                    got[(topic, partition)] = nxt
    return got


def resumed(ckroot, source, logs):
    pat = re.compile(r"source '%s' subtask \d+: resuming topic '([^']*)' partition (\d+) at "
                     r"offset (\d+) \(checkpoint (chk-\d+)\)" % re.escape(source))
    n = past0 = 0
    bad = []
    cache = {}
    for log in logs:
        for line in open(log, errors="replace"):
            m = pat.search(line)
            if not m:
                continue
            topic, part, off, chk = m.group(1), int(m.group(2)), int(m.group(3)), m.group(4)
            n += 1
            past0 += off > 0
            if chk not in cache:
                d = os.path.join(ckroot, chk)
                cache[chk] = offsets(d, source) if os.path.isdir(d) else None
            have = cache[chk]
            if have is None:
                bad.append("%s/%d resumed from %s, which is not in %s" % (topic, part, chk, ckroot))
            elif have.get((topic, part)) != off:
                bad.append("%s/%d resumed at offset %d; %s holds %s" %
                           (topic, part, off, chk, have.get((topic, part))))
    print("resumed %d past0 %d" % (n, past0))
    for b in bad[:10]:
        print(b, file=sys.stderr)
    return 1 if bad or n == 0 else 0


if __name__ == "__main__":
    a = sys.argv[1:]
    if a[0] == "gen":
        gen(int(a[1]), int(a[2]), int(a[3]), a[4])
    else:
        sys.exit(resumed(a[1], a[2], a[3:]))
