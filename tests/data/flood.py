"""Writes as fast as it can: ``units`` progress lines ("step N done"), each followed by
``junk_mb`` / ``units`` MiB of other output in 4 KiB lines."""

import sys

units, junk_mb = int(sys.argv[1]), float(sys.argv[2])
junk = (b"x" * 4095 + b"\n") * 16  # 64 KiB
per_unit = int(junk_mb * 2**20 / units / len(junk))
out = sys.stdout.buffer
for n in range(1, units + 1):
    out.write(f"step {n} done\n".encode())
    for _ in range(per_unit):
        out.write(junk)
out.flush()
