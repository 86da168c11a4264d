"""A measured program's signals never stop its runner.

A program may signal its parent (SIGUSR1 to ``$PPID`` is how some daemons report that
they are ready; SIGHUP, SIGINT, SIGALRM, SIGPIPE, SIGTERM are only a typo away), or any
process of its user.  Left to their default action most of these end the runner, and
with it the run's ``meta.json``; a stop signal would also fail the pipeline's job.

While a program runs, its runner blocks every catchable signal and takes the pending
ones itself, between two samples (``sigtimedwait``), with the sender's pid:

- a stop signal (SIGTERM, SIGINT, SIGHUP) from the kernel (a terminal's Ctrl-C) or from
  a live process outside the measured tree (snakemake, Slurm, a user's ``kill``) stops
  the runner as before (``Stopped``); so does the death of the runner's parent;
- every other signal, and any signal from the measured tree or from a sender already
  gone, is counted (``meta.json`` ``signals_from_program``) and otherwise ignored.

A signal is blocked for one thread only, and a process-directed signal goes to any
thread that does not block it (numpy's OpenBLAS starts threads at import): a job calls
``hold`` first thing, before any thread exists, so every thread blocks them all and the
main thread takes them.  A caller with threads of its own (a test) still never dies of
one: while a program runs, every catchable signal also has a handler that counts it
(``stray``; its sender cannot be known there, so a stop signal is counted, not obeyed).
Outside a run the stop signals act as usual.

The program itself starts with no signal blocked (``unblock_in_child``).  SIGKILL and
SIGSTOP cannot be blocked by anyone: a program that sends those to its runner on
purpose is not measured, it is an attack on the machine; the cgroup still holds its tree
and the next runner sweeps it.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Callable
from pathlib import Path

STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
# SIGCHLD is the kernel's news of a child's exit (ignored by default): not the program's word
CATCHABLE = frozenset(signal.valid_signals()) - {signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD}


# Faults the kernel raises in the faulting thread: a Python handler would return into the fault.
SYNCHRONOUS = frozenset({signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL, signal.SIGTRAP, signal.SIGSYS})


def hold() -> None:
    """Block every catchable signal in this thread and the threads it starts from now on:
    first thing in a job, before any import starts a thread.  A run's guard takes them."""
    signal.pthread_sigmask(signal.SIG_BLOCK, CATCHABLE)


class Stopped(Exception):
    """The runner itself was told to stop (the message names the signal or the cause)."""


def unblock_in_child() -> None:
    """Runs in a started child between fork and exec: the program gets the signal mask a
    process normally starts with (a blocked mask survives exec)."""
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


def _parent_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def in_tree(pid: int, root: int, members: Callable[[], list[int]]) -> bool:
    """Whether ``pid`` belongs to the measured tree rooted at ``root``: one of its
    descendants (or a zombie not yet reaped), or a member of its cgroup (``members``),
    which keeps those that daemonised."""
    seen = pid
    for _ in range(64):  # deeper than any real tree; a cycle cannot hold the runner
        if seen == root:
            return True
        if seen is None or seen <= 1:
            break
        seen = _parent_of(seen)
    return pid in members()


class Guard:
    """Blocks every catchable signal for the time a program runs; ``take`` between
    two samples.  ``outside(pid)`` says whether a live sender is outside the measured
    tree (its stop signals are obeyed).  On entry, a stop already pending (a pipeline
    stopped while the job started) stops the runner before its program starts."""

    def __init__(self, outside: Callable[[int], bool]):
        self.outside = outside
        self.parent = os.getppid()
        self.from_program: Counter[str] = Counter()
        self.previous: set[int] | None = None
        self.handlers: dict[int, object] = {}

    def _stray(self, signum: int, frame) -> None:
        self.from_program[signal.Signals(signum).name] += 1

    def __enter__(self) -> "Guard":
        self.previous = signal.pthread_sigmask(signal.SIG_BLOCK, CATCHABLE)
        for signum in CATCHABLE - SYNCHRONOUS:
            try:
                self.handlers[signum] = signal.signal(signum, self._stray)
            except (OSError, ValueError):  # reserved by the C library, or not the main thread
                pass
        try:
            self.take()
        except Stopped:
            self._restore()
            raise
        return self

    def take(self, obey: bool = True) -> None:
        """Take every pending signal; raise ``Stopped`` for one to obey (``obey``)."""
        while (info := signal.sigtimedwait(CATCHABLE, 0)) is not None:
            name = signal.Signals(info.si_signo).name
            sender_alive = info.si_pid == 0 or os.path.exists(f"/proc/{info.si_pid}")
            if obey and info.si_signo in STOP_SIGNALS and sender_alive and (info.si_pid == 0
                                                                            or self.outside(info.si_pid)):
                raise Stopped(f"{name} from {'the kernel' if info.si_pid == 0 else f'pid {info.si_pid}'}")
            self.from_program[name] += 1
        if obey and os.getppid() != self.parent:
            raise Stopped(f"parent {self.parent} gone")

    def _restore(self) -> None:
        """The dispositions from before; the mask too, except that stop signals act as usual."""
        for signum, handler in self.handlers.items():
            signal.signal(signum, handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, set(self.previous) - STOP_SIGNALS)

    def __exit__(self, kind, value, tb) -> None:
        try:
            self.take(obey=kind is None)  # nothing left pending to strike once unblocked
        finally:
            self._restore()
