"""Benchmark: what the sampler costs the measured process, and what one sample costs.

    python -m leaklab.bench [--repeats 5] [--interval 0.05 0.01]

The same CPU-bound workload (dict_shrink, 1M entries x 3 cycles) runs without
sampling (one final sample only) and with the sampler at each interval, in an order
rotated every repeat; the overhead is the difference of the mean CPU seconds of the
measured process, with two standard errors: on a shared 2-core VM the same run's
CPU time varies by tens of percent, and the figure says how much of it is noise.
Absolute times on shared machines are noisy, so only ratios from one run are quoted.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
from pathlib import Path

from leaklab import runner, sampler

WORKLOAD = ("dict_shrink", "dict", {"entries": 1_000_000, "cycles": 3})
UNSAMPLED_INTERVAL_S = 3600.0


def cpu_seconds(interval_s: float, workdir: Path) -> float:
    experiment, variant, params = WORKLOAD
    meta = runner.run(experiment, variant, workdir, params, interval_s=interval_s, timeout_s=600)
    if meta["status"] != "ok":
        raise RuntimeError(f"benchmark run failed: {meta['log_tail']}")
    return meta["cpu_s"]


def sample_cost_ms(samples: int = 200) -> float:
    """Wall milliseconds for one sample of this process (smaps_rollup included)."""
    start = time.perf_counter()
    for _ in range(samples):
        sampler.sample(os.getpid(), 0.0)
    return (time.perf_counter() - start) / samples * 1000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m leaklab.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=12)
    parser.add_argument("--interval", type=float, nargs="+", default=[0.05, 0.01])
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        results: dict[float, list[float]] = {UNSAMPLED_INTERVAL_S: [], **{i: [] for i in args.interval}}
        intervals = list(results)
        for repeat in range(args.repeats):
            # rotate the order each repeat, so drift (warm caches, clock) favours no setting
            shift = repeat % len(intervals)
            for interval in intervals[shift:] + intervals[:shift]:
                results[interval].append(cpu_seconds(interval, Path(tmp) / f"{interval}-{repeat}"))
            print(f"repeat {repeat + 1}/{args.repeats} done", flush=True)
    unsampled = results.pop(UNSAMPLED_INTERVAL_S)
    base = statistics.mean(unsampled)
    print(f"workload: {WORKLOAD[0]}/{WORKLOAD[1]} {WORKLOAD[2]}, {args.repeats} repeats")
    print(f"measured process CPU without sampling: mean {base:.3f} s, sd {statistics.stdev(unsampled):.3f} "
          f"({min(unsampled):.2f}..{max(unsampled):.2f})")
    for interval, values in results.items():
        cpu = statistics.mean(values)
        # two standard errors of the difference of the means: what the noise allows
        noise = 2 * math.sqrt(statistics.variance(values) / len(values) + statistics.variance(unsampled) / len(unsampled))
        print(f"sampler every {interval * 1000:.0f} ms: CPU mean {cpu:.3f} s ({min(values):.2f}..{max(values):.2f}), "
              f"overhead {100 * (cpu / base - 1):+.1f} % +/- {100 * noise / base:.1f} % (2 SE)")
    print(f"one /proc sample (status, smaps_rollup, fds): {sample_cost_ms():.3f} ms of sampler time")


if __name__ == "__main__":
    main()
