"""A measured program whose grandchild daemonises (setsid + double fork) and grows.

The main process sleeps; the grandchild, no longer in its process tree or group,
writes its pid to ``grandchild.pid`` in the working directory and allocates
10 MiB every 50 ms (touched, so it is resident) up to ``sys.argv[1]`` MiB, then sleeps.
"""

import os
import sys
import time

if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        with open("grandchild.pid.tmp", "w") as f:
            f.write(str(os.getpid()))
        os.replace("grandchild.pid.tmp", "grandchild.pid")
        blocks = []
        while len(blocks) * 10 < int(sys.argv[1]):
            blocks.append(bytearray(os.urandom(1)) * (10 << 20))
            time.sleep(0.05)
        time.sleep(3600)
    os._exit(0)
os.wait()
time.sleep(float(sys.argv[2]))
