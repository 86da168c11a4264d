"""Benchmarks: the sampler's cost to the measured process, and the pipeline's wall times.

    python -m leaklab bench                  # both (make bench)
    python -m leaklab bench overhead [--pairs 40]
    python -m leaklab bench pipeline [--workdir DIR] [--configfile config.yaml]

``overhead`` runs real experiment workloads with the sampler switched on and off in
short paired blocks inside one process (see ``leaklab.benchmarks.overhead`` for why separate runs
cannot measure it here), at 20 Hz and back to back.  ``pipeline`` times, in a fresh
directory, a dry run, the whole run, a no-op re-run and a dry run of the finished run.
Absolute times on a shared machine are noisy: the host's load is printed beside them.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from leaklab.benchmarks import overhead
from leaklab.process import sampler

ROOT = Path(__file__).resolve().parents[3]
TARGET_HZ = 20.0
# real workloads whose units are CPU-bound and short: a dict's table mmapped and
# unmapped every cycle (mmap lock writes), and a RocksDB scan whose leak grows the heap
# (every smaps_rollup walk gets longer)
WORKLOADS = (
    overhead.Workload("dict_shrink", "dict", {"entries": 200_000, "value_bytes": 128}, "cycles"),
    overhead.Workload("rocksdb_merge", "capi-real", {"keys": 5_000, "operands": 10, "operand_bytes": 64}, "passes"),
)
QUICK_WORKLOADS = (overhead.Workload("dict_shrink", "dict", {"entries": 20_000, "value_bytes": 128}, "cycles"),)


def load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg()) + f" on {os.cpu_count()} CPUs"


def sample_cost_ms(samples: int = 200) -> float:
    """Wall milliseconds for one sample of this process (smaps_rollup included)."""
    start = time.perf_counter()
    for _ in range(samples):
        sampler.sample(os.getpid(), 0.0)
    return (time.perf_counter() - start) / samples * 1000


def bench_overhead(workloads: tuple[overhead.Workload, ...], pairs: int) -> None:
    print(f"# sampler overhead on the measured process ({pairs} pairs of blocks per setting; {load()})")
    for workload in workloads:
        name = f"{workload.experiment}/{workload.variant} {workload.params}"
        at_target = overhead.measure(workload, 1 / TARGET_HZ, pairs)
        flat_out = overhead.measure(workload, 0.0, pairs)
        per_sample = flat_out.cpu.scaled(TARGET_HZ / flat_out.rate_hz)
        print(f"{name}: one unit {flat_out.unit_cpu_s:.3f} s of CPU")
        print(f"  sampled at {at_target.rate_hz:.1f} Hz: CPU {at_target.cpu}; wall {at_target.wall}")
        print(f"  sampled back to back at {flat_out.rate_hz:.0f} Hz: CPU {flat_out.cpu}; wall {flat_out.wall}")
        no_smaps = overhead.measure(workload, 1 / TARGET_HZ, pairs, smaps=False)
        print(f"  sampled at {no_smaps.rate_hz:.1f} Hz without smaps_rollup: CPU {no_smaps.cpu}; wall {no_smaps.wall}")
        print(f"  => at {TARGET_HZ:.0f} Hz, from the back-to-back cost per sample: CPU {per_sample}")
    print(f"one /proc sample (status, smaps_rollup, fds): {sample_cost_ms():.3f} ms of the sampler's own time; {load()}")


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def snakemake(workdir: Path, configfile: Path, *args: str) -> tuple[float, float, subprocess.CompletedProcess]:
    """Wall and CPU seconds of one snakemake invocation (CPU, with its jobs, is what a
    loaded machine inflates least)."""
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(configfile), "--cores", "4", *args]
    start, cpu = time.monotonic(), _children_cpu_s()
    done = subprocess.run(cmd, capture_output=True, text=True)
    return time.monotonic() - start, _children_cpu_s() - cpu, done


def _jobs(dry_run_output: str) -> int:
    """Jobs a dry run plans (0 when there is nothing to be done)."""
    found = re.search(r"^total\s+(\d+)", dry_run_output, re.MULTILINE)
    return int(found.group(1)) if found else 0


def bench_pipeline(workdir: Path, configfile: Path, run_first: bool = True) -> dict[str, float]:
    """Wall seconds of a dry run, the run, a no-op re-run and a dry run of the result."""
    print(f"# pipeline wall times ({configfile}, in {workdir}; {load()})")
    seconds: dict[str, float] = {}
    steps = (["dry run before", "run"] if run_first else []) + ["no-op re-run", "dry run after"]
    for step in steps:
        took, cpu, done = snakemake(workdir, configfile, *(["--dry-run"] if step.startswith("dry") else []))
        if done.returncode != 0:
            raise RuntimeError(f"{step} failed:\n{done.stderr[-3000:]}")
        seconds[step] = took
        jobs = _jobs(done.stdout + done.stderr)
        print(f"{step}: {took:.1f} s wall, {cpu:.1f} s CPU" + (f" ({jobs} jobs)" if step.startswith("dry") else ""))
        if step in ("no-op re-run", "dry run after") and jobs:
            raise RuntimeError(f"{step}: {jobs} jobs to do after a finished run")
    print(f"after: {load()}")
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="leaklab bench", description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="?", choices=("overhead", "pipeline", "all"), default="all")
    parser.add_argument("--pairs", type=int, default=40, help="pairs of on/off blocks per setting (overhead)")
    parser.add_argument("--quick", action="store_true", help="a tiny workload (a smoke run of the overhead benchmark)")
    parser.add_argument("--configfile", type=Path, default=ROOT / "config.yaml", help="the pipeline's config")
    parser.add_argument("--workdir", type=Path, help="where the pipeline runs (default: a fresh temporary directory)")
    args = parser.parse_args(argv)
    if args.what in ("overhead", "all"):
        bench_overhead(QUICK_WORKLOADS if args.quick else WORKLOADS, args.pairs)
    if args.what in ("pipeline", "all"):
        if args.workdir:
            bench_pipeline(args.workdir, args.configfile.resolve())
        else:
            with tempfile.TemporaryDirectory(prefix="leaklab-bench-") as tmp:
                bench_pipeline(Path(tmp), args.configfile.resolve())


if __name__ == "__main__":
    main()
