"""check.py DIR PARALLELISM SEEN [COUNT]: the parts a rolling file sink
(`publish: checkpoint`, tests/scenario/132_file_sink_rolling.sh) published
into DIR, read as they are now.

Sink subtask S receives generator subtask S's records, seq = S, S + P,
S + 2P, ... in order (forward, same parallelism), as rows seq,k,x with
k = seq % P and x = 3 * seq + 1. Every published file must be complete (the
header, whole rows, ending in a newline, at least one row) and the files of
subtask S, in the order of their names, must hold a gapless prefix of that
sequence: nothing of an epoch whose checkpoint did not complete, no
duplicate, no hole. With COUNT, every prefix must be complete (the whole
output). A file once published is final: every file listed in SEEN (name
and size, from the checks before) must still be there with its size, and
the files seen now are added to it. Prints the number of files and rows;
exits 1 saying what is wrong.
"""
import os
import re
import sys

d, par, seen_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
count = int(sys.argv[4]) if len(sys.argv) > 4 else None
seen = {}
if os.path.exists(seen_path):
    with open(seen_path) as f:
        for line in f:
            name, size = line.split()
            seen[name] = int(size)
files = {}
for name in sorted(os.listdir(d)):
    m = re.fullmatch(r"part-(\d{3})-(\d{6})\.csv", name)
    if m:
        files.setdefault(int(m.group(1)), []).append((int(m.group(2)), name))
    elif not name.startswith((".sluice-staging-", ".sluice-end-")):
        sys.exit(f"unexpected file {name} in {d}")
nfiles = nrows = 0
for sub in sorted(files):
    if sub >= par:
        sys.exit(f"files of subtask {sub} (parallelism {par})")
    want = sub
    seqs = [s for s, _ in files[sub]]
    if seqs != list(range(len(seqs))):
        sys.exit(f"subtask {sub}: part numbers {seqs} are not 0..{len(seqs) - 1}")
    for _, name in files[sub]:
        with open(os.path.join(d, name), "rb") as f:
            text = f.read().decode()
        nfiles += 1
        if name in seen and seen[name] != len(text.encode()):
            sys.exit(f"{name} changed after it was published ({seen[name]} -> {len(text)} bytes)")
        seen[name] = len(text.encode())
        if not text.startswith("seq,k,x\n") or not text.endswith("\n"):
            sys.exit(f"{name} is not a complete file: {text[:60]!r} ... {text[-60:]!r}")
        rows = text[len("seq,k,x\n"):].splitlines()
        if not rows:
            sys.exit(f"{name} holds no row")
        for row in rows:
            want_row = f"{want},{want % par},{3 * want + 1}"
            if row != want_row:
                sys.exit(f"{name}: row {row!r} where {want_row!r} was due "
                         "(a gap, a duplicate or a foreign row)")
            want += par
            nrows += 1
    if count is not None and want < count:
        sys.exit(f"subtask {sub}: its rows end before seq {want} (count {count})")
if count is not None and sorted(files) != list(range(par)):
    sys.exit(f"subtasks with output: {sorted(files)}, not 0..{par - 1}")
if count is not None and nrows != count:
    sys.exit(f"{nrows} rows, not {count}")
for name in seen:
    if not os.path.exists(os.path.join(d, name)):
        sys.exit(f"{name} was published, then taken back")
with open(seen_path + ".tmp", "w") as f:
    f.writelines(f"{name} {size}\n" for name, size in sorted(seen.items()))
os.replace(seen_path + ".tmp", seen_path)
print(nfiles, nrows)
