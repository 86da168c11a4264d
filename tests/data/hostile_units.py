"""A measured program that writes every kind of bad unit line between good ones.

Good lines are units 1..5 with ``live=<n>``; the last good line is written just
before exit.  ``sys.argv[1]`` seconds pass between lines.
"""

import os
import sys
import time

BAD = [
    b"\xff\xfe not utf-8\n",
    b"99999999999999999999999\n",
    b"2 phase=3\n",
    b"2 t=5\n",
    b"2 unit=7\n",
    b"-1\n",
    b"2 x=nan\n",
    b"2 x=1e999\n",
    b"1 live=1\n",  # not after the previous unit
    b"2 rss\n",
    b"2 live=1 live=2\n",
    b"x" * 5000 + b"\n",
]
pause = float(sys.argv[1])
with open(os.environ["LEAKLAB_UNITS"], "ab", buffering=0) as units:
    for unit in range(1, 6):
        units.write(f"{unit} live={unit}\n".encode())
        if unit < 5:
            for line in BAD[(unit - 1) * 3: unit * 3]:
                units.write(line)
            time.sleep(pause)
