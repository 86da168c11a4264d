"""A cache that grows 1 MiB per unit up to unit FULL_AT, then stays full; each reading
scatters by up to 256 KiB.  Writes its units to LEAKLAB_UNITS, PAUSE_S apart.

    fills_cache.py UNITS FULL_AT PAUSE_S
"""
import os
import random
import sys
import time

units, full_at, pause_s = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
with open(os.environ["LEAKLAB_UNITS"], "a") as out:
    for unit in range(1, units + 1):
        time.sleep(pause_s)
        noise = random.Random(unit).randint(0, 256) * 1024
        out.write(f"{unit} cache_bytes={min(unit, full_at) * 1048576 + noise}\n")
        out.flush()
