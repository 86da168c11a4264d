"""Units of a few milliseconds that each keep ``kib`` KiB (touched): ``units`` lines
through LEAKLAB_UNITS, ``pause_ms`` of work per unit (0: as fast as it can)."""

import os
import sys
import time

units, kib, pause_ms = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
kept = []
with open(os.environ["LEAKLAB_UNITS"], "a", buffering=1) as out:
    for n in range(1, units + 1):
        kept.append(bytearray(os.urandom(16)) * (kib * 64))  # kib KiB, every page written
        end = time.monotonic() + pause_ms / 1000
        while time.monotonic() < end:
            pass
        out.write(f"{n}\n")
