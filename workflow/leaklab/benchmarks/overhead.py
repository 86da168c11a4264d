"""What the sampler costs the measured process, measured against the VM's noise.

On this shared 2-core VM one run's CPU time varies by 10-25 % from run to run, far more
than the sampler could cost, so comparing separate sampled and unsampled runs says
nothing.  Here one long-lived process runs a real experiment's units of work while the
sampler is switched on and off in short blocks of units, in pairs (on/off, the order of
each pair drawn at random): each pair is compared within itself, a few seconds apart in
the same process, so drift, load from neighbours and the process's own layout cancel.
The first unit of every block is a guard (the switch may land a little after it starts)
and is not counted.  The estimate is the mean of the pairs' log ratios of CPU seconds
per unit (what ``marks`` records), with a t interval over pairs.

What the sampler can cost the measured process is interference, not its own work (the
kernel walks the page tables for ``smaps_rollup`` in the reader's context, on the
reader's CPU time): the measured process waits when it wants its mmap lock for writing
(mmap, munmap, brk) while a read holds it, and shares caches.  That cost is per sample,
so it grows with the rate: sampling back to back (hundreds of samples a second) gives a
signal far above the noise, and its cost per sample, times 20, bounds the cost at 20 Hz
much more tightly than a 20 Hz measurement can.
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from leaklab.experiments import marks
from leaklab.process import sampler

POLL_S = 0.005  # how often the controller looks for a finished unit (same in both states)


@dataclass(frozen=True)
class Workload:
    """A real experiment run for many units: ``units_param`` sets how many."""

    experiment: str
    variant: str
    params: dict
    units_param: str


@dataclass(frozen=True)
class Estimate:
    """A ratio on/off as a relative change, with its 95 % interval (fractions)."""

    mean: float
    low: float
    high: float
    n_pairs: int

    def scaled(self, factor: float) -> Estimate:
        return Estimate(self.mean * factor, self.low * factor, self.high * factor, self.n_pairs)

    def __str__(self) -> str:
        return f"{100 * self.mean:+.2f} % (95% CI {100 * self.low:+.2f} .. {100 * self.high:+.2f} %, {self.n_pairs} pairs)"


def schedule(pairs: int, seed: int) -> list[bool]:
    """On/off per block: each pair holds one of each, in a random order."""
    rng = random.Random(seed)
    blocks: list[bool] = []
    for _ in range(pairs):
        first = rng.random() < 0.5
        blocks += [first, not first]
    return blocks


def _read_units(stream, pending: str) -> tuple[list[dict], str]:
    """Unit marks completed since the last read (a line may arrive in two pieces)."""
    pending += stream.read()
    *lines, pending = pending.split("\n")
    return [m for m in map(json.loads, lines) if m["phase"] == "unit"], pending


def run_blocks(workload: Workload, interval_s: float, pairs: int, block_units: int, workdir: Path,
               warmup_units: int = 1, seed: int = 1, smaps: bool = True) -> tuple[list[dict], list[bool], list[int]]:
    """Run the workload once, sampling it every ``interval_s`` (0: back to back) in the
    blocks where the schedule says on.  Returns the unit marks, the schedule and the
    number of samples taken in each block."""
    blocks = schedule(pairs, seed)
    units = warmup_units + len(blocks) * block_units
    marks_path = workdir / "marks.jsonl"
    params = {**workload.params, workload.units_param: units}
    env = {**os.environ, marks.MARKS_ENV: str(marks_path), marks.T0_ENV: repr(time.monotonic())}
    env.pop(marks.SYNC_ENV, None)
    marks_path.touch()
    cmd = [sys.executable, "-m", f"leaklab.experiments.{workload.experiment}", "--variant", workload.variant,
           "--params", json.dumps(params), "--workdir", str(workdir)]
    seen: list[dict] = []
    samples = [0] * len(blocks)
    with open(workdir / "run.log", "wb") as log, open(marks_path) as stream:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        pending, next_tick = "", 0.0
        while proc.poll() is None:
            new, pending = _read_units(stream, pending)
            seen += new
            block = (len(seen) - warmup_units) // block_units  # the block of the unit now running
            now = time.monotonic()
            if 0 <= block < len(blocks) and blocks[block] and now >= next_tick:
                if sampler.sample(proc.pid, now, smaps=smaps) is not None:
                    samples[block] += 1
                next_tick = now + interval_s
            else:
                time.sleep(POLL_S)
        seen += _read_units(stream, pending)[0]
    if proc.returncode != 0:
        raise RuntimeError(f"{workload.experiment}/{workload.variant} failed: "
                           f"{(workdir / 'run.log').read_text(errors='replace')[-2000:]}")
    return seen, blocks, samples


def per_block(unit_marks: list[dict], blocks: list[bool], block_units: int, warmup_units: int,
              column: str) -> np.ndarray:
    """Mean ``column`` increase per unit in each block, the guard unit left out."""
    values = np.array([m[column] for m in unit_marks], dtype=float)
    cost = np.diff(values)  # cost[u - 2] is unit u's (the warm-up's first unit has no start mark)
    means = []
    for b in range(len(blocks)):
        guard = warmup_units + b * block_units + 1
        means.append(cost[guard - 1: guard + block_units - 2].mean())  # units guard+1 .. the block's last
    return np.array(means)


def paired_estimate(on_off: np.ndarray, blocks: list[bool]) -> Estimate:
    """Mean within-pair log ratio (on / off) with a t interval over pairs."""
    from scipy import stats

    logs = []
    for i in range(0, len(blocks), 2):
        on, off = (on_off[i], on_off[i + 1]) if blocks[i] else (on_off[i + 1], on_off[i])
        logs.append(math.log(on / off))
    logs = np.array(logs)
    mean = logs.mean()
    half = stats.t.ppf(0.975, len(logs) - 1) * logs.std(ddof=1) / math.sqrt(len(logs)) if len(logs) > 1 else math.inf
    return Estimate(math.expm1(mean), math.expm1(mean - half), math.expm1(mean + half), len(logs))


@dataclass(frozen=True)
class Result:
    workload: Workload
    interval_s: float
    rate_hz: float  # samples per second while on
    cpu: Estimate
    wall: Estimate
    unit_cpu_s: float


def measure(workload: Workload, interval_s: float, pairs: int, block_units: int = 3, seed: int = 1,
            smaps: bool = True) -> Result:
    """``smaps=False`` leaves out ``smaps_rollup`` (``sampler.smaps: false``), the one read
    that takes the measured process's mmap lock."""
    with tempfile.TemporaryDirectory(prefix="leaklab-overhead-") as tmp:
        unit_marks, blocks, samples = run_blocks(workload, interval_s, pairs, block_units, Path(tmp), seed=seed,
                                                 smaps=smaps)
    cpu = per_block(unit_marks, blocks, block_units, 1, "cpu_s")
    wall = per_block(unit_marks, blocks, block_units, 1, "t")
    on_seconds = sum(w * block_units for w, on in zip(wall, blocks) if on)  # about: guards included
    return Result(workload, interval_s, sum(samples) / on_seconds, paired_estimate(cpu, blocks),
                  paired_estimate(wall, blocks), float(np.median(cpu)))
