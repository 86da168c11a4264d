"""Signals its parent (the way some daemons report that they are ready), then goes on:
units 1..3 through LEAKLAB_UNITS, the signal(s) named in argv sent to getppid() after unit 1."""

import os
import signal
import sys
import time


def unit(n: int) -> None:
    with open(os.environ["LEAKLAB_UNITS"], "a") as f:
        f.write(f"{n}\n")


unit(1)
for name in sys.argv[1:]:
    os.kill(os.getppid(), getattr(signal, name))
    time.sleep(0.05)
for n in (2, 3):
    time.sleep(0.1)
    unit(n)
