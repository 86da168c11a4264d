"""``go_fd``: Dolt's leaked handles to deleted ``LOCK`` files, in Go (``native/go_fd``).

Each rotation opens a new storage directory whose ``LOCK`` file is held with a file
lock on a raw descriptor, then deletes the previous directory: ``leak`` without
closing its ``LOCK`` first (Dolt before PR #9557), ``close`` closing it (the fix).
One unit = one rotation; it reports descriptors on deleted files and the next free
descriptor number (Dolt's ``TestGCDoesNotLeakFd``).
"""

VARIANTS = ("close", "leak")
BASELINE = "close"
UNIT = "rotation"
KEY_METRICS = ("deleted_fds", "next_fd")
DEFAULTS = {"rotations": 300, "interval_s": 0.05, "payload_bytes": 4096}
LENGTH_PARAM = "rotations"
PACED = True  # waits between rotations, like fd_leak
COMMAND = "{binary} -variant {variant} -dir {workdir} -rotations {rotations} -payload-bytes {payload_bytes} -interval {interval_s}s"
RUNTIME_HEAP = "Go"
