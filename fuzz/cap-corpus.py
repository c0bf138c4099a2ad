#!/usr/bin/env python3
"""Cap a minimised corpus for committing: keep every file of SEEDS (named seed inputs), then files
of MINIMISED (libFuzzer's -set_cover_merge output) picked evenly across its size order (small
and large inputs both), up to MAX_FILES files and MAX_BYTES bytes in total, written to OUT
under their content hash.

    fuzz/cap-corpus.py SEEDS MINIMISED OUT [MAX_FILES=200] [MAX_BYTES=2000000]
"""
import hashlib, os, shutil, sys

seeds, minimised, out = sys.argv[1:4]
max_files = int(sys.argv[4]) if len(sys.argv) > 4 else 200
max_bytes = int(sys.argv[5]) if len(sys.argv) > 5 else 2_000_000

def files(d):
    return [os.path.join(d, f) for f in sorted(os.listdir(d)) if os.path.isfile(os.path.join(d, f))]

os.makedirs(out, exist_ok=True)
seen, count, total = set(), 0, 0
def add(path, name):
    global count, total
    data = open(path, 'rb').read()
    h = hashlib.sha1(data).hexdigest()
    if h in seen:
        return
    seen.add(h)
    with open(os.path.join(out, name or h), 'wb') as f:
        f.write(data)
    count += 1
    total += len(data)

for p in files(seeds) if os.path.isdir(seeds) else []:
    add(p, os.path.basename(p))
ranked = sorted(files(minimised), key=os.path.getsize)
room = max(max_files - count, 0)
if len(ranked) > room:
    # Evenly spaced ranks, then drop the largest picks until the byte budget holds.
    picks = [ranked[i * len(ranked) // room] for i in range(room)] if room else []
else:
    picks = ranked
budget = max_bytes - total
while picks and sum(os.path.getsize(p) for p in picks) > budget:
    picks.pop()
for p in picks:
    add(p, None)
print(f"{out}: {count} files, {total} bytes")
