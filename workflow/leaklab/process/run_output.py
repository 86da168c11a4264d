"""A measured program's output: every line seen, ``run.log`` bounded.

The program writes into a pipe, not a file: a thread of the runner (``OutputPump``)
reads every byte of it as it comes, hands each line to the unit pattern (so no unit
line is skipped however fast the program writes: a program that writes faster than
the lines are judged waits on its pipe), and keeps in ``run.log`` the first half of
its cap and, at the end, the last half, with the number of bytes dropped in between
written where they were (``BoundedLog``).  The runner never holds more than half the
cap of output in memory, and never reads ``run.log`` back whole.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from leaklab.process.unit_protocol import MAX_LINE_BYTES

DEFAULT_LOG_CAP_BYTES = 16 * 2**20
READ_BYTES = 1 << 16


class BoundedLog:
    """``run.log`` keeping the first ``cap_bytes / 2`` of the output and the last
    ``cap_bytes / 2``; ``dropped`` bytes in between.  A write that fails (a full disk)
    is counted as dropped, never raised: the run goes on and says so."""

    def __init__(self, path: Path, cap_bytes: int = DEFAULT_LOG_CAP_BYTES):
        self.path = Path(path)
        self.head_cap = cap_bytes // 2
        self.tail_cap = cap_bytes - self.head_cap
        self.file = open(self.path, "wb")
        self.head_written = 0
        self.tail = bytearray()
        self.total = 0
        self.write_errors = 0
        self.lock = threading.Lock()  # a pump abandoned at the end may still be writing

    def write(self, data: bytes) -> None:
        with self.lock:
            if not self.file.closed:
                self._keep(data)

    def _keep(self, data: bytes) -> None:
        self.total += len(data)
        room = self.head_cap - self.head_written
        if room > 0:
            self._to_file(data[:room])
            self.head_written += min(room, len(data))
            data = data[room:]
        if data:
            self.tail += data
            if len(self.tail) > 2 * self.tail_cap:  # trimmed now and then, not at every write
                del self.tail[:-self.tail_cap]

    def _to_file(self, data: bytes) -> None:
        try:
            self.file.write(data)
            self.file.flush()
        except OSError:
            self.write_errors += 1

    def close(self) -> dict:
        """Write the kept tail and close; the facts for ``meta.json``."""
        with self.lock:
            return self._close()

    def _close(self) -> dict:
        tail = bytes(self.tail[-self.tail_cap:]) if self.tail_cap else b""
        dropped = self.total - self.head_written - len(tail)
        if dropped:
            self._to_file(f"\n[... {dropped} bytes of output dropped here: run.log keeps the first "
                          f"{self.head_cap} and the last {self.tail_cap} ...]\n".encode())
        self._to_file(tail)
        try:
            self.file.close()
        except OSError:
            self.write_errors += 1
        return {"output_bytes": self.total, "log_dropped_bytes": dropped, "log_write_errors": self.write_errors}


def log_tail(path: Path, lines: int, max_bytes: int = 1 << 16) -> list[str]:
    """The last ``lines`` lines of ``path``, reading at most its last ``max_bytes``."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - max_bytes))
            return f.read().decode(errors="replace").splitlines()[-lines:]
    except OSError:
        return []


class OutputPump(threading.Thread):
    """Reads the program's output pipe to its end: into ``log``, and line by line into
    ``on_line(raw, t)`` (``t``: when it was read, on the runner's clock).  A line longer
    than ``MAX_LINE_BYTES`` is handed on cut to that length, its rest skipped.  An
    error in ``on_line`` is kept (``error``) and the pumping goes on: the log and the
    program's pipe never stall on it."""

    def __init__(self, fd: int, log: BoundedLog, clock: Callable[[], float],
                 on_line: Callable[[bytes, float], None] | None = None):
        super().__init__(name="output-pump", daemon=True)
        self.fd, self.log, self.clock, self.on_line = fd, log, clock, on_line
        self.abandoned = False  # the runner gave up waiting: hand on nothing more
        self.error: str | None = None

    def run(self) -> None:
        pending, overlong = bytearray(), False
        try:
            while chunk := os.read(self.fd, READ_BYTES):
                self.log.write(chunk)
                if self.on_line is None or self.abandoned:
                    continue
                t = self.clock()
                pending += chunk
                *lines, rest = pending.split(b"\n")
                for line in lines:
                    if not overlong:
                        self._hand_on(bytes(line), t)
                    overlong = False
                pending = bytearray(rest)
                if len(pending) > MAX_LINE_BYTES:
                    if not overlong:
                        self._hand_on(bytes(pending[:MAX_LINE_BYTES + 1]), t)
                    pending, overlong = bytearray(), True
            if pending and not overlong and self.on_line is not None and not self.abandoned:
                self._hand_on(bytes(pending), self.clock())  # a last line without its newline
        finally:
            os.close(self.fd)

    def _hand_on(self, line: bytes, t: float) -> None:
        if self.abandoned:
            return
        try:
            self.on_line(line, t)
        except Exception as err:
            self.error = self.error or f"{type(err).__name__}: {err}"

    def finish(self, timeout_s: float) -> bool:
        """Wait for the end of the output (the tree is gone); False if the pump is still
        busy after ``timeout_s`` (it is abandoned: hands on nothing more)."""
        self.join(timeout_s)
        self.abandoned = self.is_alive()
        return not self.abandoned
