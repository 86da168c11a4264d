"""A pre-forking server: the parent touches ``mb`` MiB, then forks ``workers`` that only
read it (copy-on-write: the pages stay shared), for ``units`` units of 0.2 s each."""

import os
import sys
import time

mb, workers, units = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
data = bytearray(os.urandom(1 << 20)) * mb
children = []
for _ in range(workers):
    pid = os.fork()
    if pid == 0:
        total = sum(data[::4096])  # reads every page: resident in the worker, still shared
        time.sleep(units * 0.2 + 5)
        os._exit(0)
    children.append(pid)
for n in range(1, units + 1):
    time.sleep(0.2)
    with open(os.environ["LEAKLAB_UNITS"], "a") as f:
        f.write(f"{n}\n")
for pid in children:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
