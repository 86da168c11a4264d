"""Run one experiment variant as its own process, watched by the sampler.

    python -m leaklab.runner --experiment fd_leak --variant leak --outdir /tmp/run

Writes into ``outdir``: ``samples.parquet`` (outside view), ``marks.parquet`` (inside
view), ``meta.json`` (status, exit code, wall and CPU seconds, peak RSS, versions,
parameters, host) and ``run.log`` (the process's stdout and stderr).

A run that fails, crashes, hangs past its time limit or grows past its memory cap is
stopped and recorded with that status; the runner itself still exits 0 with all its
outputs written, so one bad run never stops the rest of the pipeline.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from leaklab import experiments, flamegraph, marks, profilers, sampler, unit_protocol

LOG_TAIL_LINES = 20
PACKAGE_DIR = Path(__file__).resolve().parents[1]


MEASURED_DISTRIBUTIONS = ("duckdb", "faust-streaming-rocksdb", "snakemake")
_VERSIONS_SNIPPET = """import importlib.metadata as m, json, platform, sys
out = {"python": platform.python_version()}
for name in sys.argv[1:]:
    try:
        out[name] = m.version(name)
    except m.PackageNotFoundError:
        out[name] = None
print(json.dumps(out))"""


def library_versions(python: str | None = None) -> dict[str, str | None]:
    """Versions of what the experiments measure, for ``meta.json`` and the tables,
    asked of the interpreter that ran the experiment (a sweep's venv, say)."""
    import ctypes.util

    asked = subprocess.run([python or sys.executable, "-c", _VERSIONS_SNIPPET, *MEASURED_DISTRIBUTIONS],
                           capture_output=True, text=True)
    out: dict[str, str | None] = json.loads(asked.stdout) if asked.returncode == 0 else {}
    out["librocksdb"] = ctypes.util.find_library("rocksdb")
    return out


def host_facts() -> dict:
    with open("/proc/meminfo") as f:
        mem_total = int(f.readline().split()[1]) * 1024
    return {
        "hostname": socket.gethostname(),
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "mem_total_bytes": mem_total,
    }


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _stop(proc: subprocess.Popen) -> None:
    """Kill the whole process group (profilers and their children included)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask the kernel to send ``sig`` to this process when its parent dies: a runner
    whose pipeline was killed must not go on measuring (and writing) on its own."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, sig)


class _Stopped(Exception):
    """The runner itself was told to stop (SIGTERM, SIGINT, SIGHUP)."""


def _raise_stopped(signum, frame):
    raise _Stopped(signal.Signals(signum).name)


def _sample_until_exit(proc, ready_r, release_w, rows, protocol, t0, deadline, interval_s, smaps,
                       mem_cap_bytes, at_end_of_work) -> str | None:
    """Sample the process tree until it exits or must be stopped; returns why it was
    stopped (``capped``, ``timeout``) or None.  Waiting on the sync pipe doubles as
    the sampling sleep, so the final sample is taken the moment the process asks, and
    waiting on a pidfd ends the wait the moment it exits, whatever the interval.
    Samples after the final one (interpreter teardown) still enforce the limits but
    are not recorded: the final sample is the last one of the measured work."""
    final_taken, pipe_open = False, True
    exited = os.pidfd_open(proc.pid)  # readable once the process has exited
    while proc.poll() is None:
        wait_s = max(0.0, min(interval_s, deadline - time.monotonic()))  # the time limit holds too
        ready = select.select([ready_r, exited] if pipe_open else [exited], [], [], wait_s)[0]
        final = ready_r in ready and os.read(ready_r, 1) != b""
        pipe_open = pipe_open and ready_r not in ready  # asked once, or EOF: it closed its end
        row = sampler.sample(proc.pid, time.monotonic() - t0, smaps=smaps, final=final)
        if row is not None and not final_taken:
            rows.append(row)
            if protocol:
                protocol.poll(row["t"], proc.pid)
        final_taken = final_taken or final
        if final:
            if at_end_of_work:  # the process waits: a profiler may look at it now
                at_end_of_work(proc.pid)
            try:
                os.write(release_w, b"x")
            except BrokenPipeError:
                pass
        stopped_for = None
        if mem_cap_bytes and row and row["rss_bytes"] > mem_cap_bytes:
            stopped_for = "capped"
        elif time.monotonic() > deadline:
            stopped_for = "timeout"
        if stopped_for:
            _stop(proc)
            proc.wait()
            os.close(exited)
            return stopped_for
    os.close(exited)
    return None


def _status(returncode: int, stopped_for: str | None) -> str:
    if stopped_for:
        return stopped_for
    if returncode == 0:
        return "ok"
    return "crashed" if returncode < 0 else "failed"


def _read_marks(path: Path) -> pd.DataFrame:
    rows = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut short by a kill
                continue
    frame = pd.DataFrame(rows)
    for column in ("t", "unit", "phase"):
        if column not in frame:
            frame[column] = pd.Series(dtype="float64" if column != "phase" else "object")
    frame["unit"] = frame["unit"].astype("Int64")
    return frame


def command_line(spec: experiments.Spec, variant: str, params: dict, workdir: Path) -> list[str]:
    """A command experiment's argv: its template filled with the variant, the run's
    work directory and the parameters."""
    import shlex

    return shlex.split(spec.command.format(**{**params, "variant": variant, "workdir": workdir}))


def collect_profile(profiler_module, outdir: Path, mark_frame: pd.DataFrame) -> tuple[str, str | None]:
    """Read the profiler's native artifacts into ``<table>.parquet`` files in the run
    directory.  A missing, truncated or corrupt artifact is recorded, not raised: the
    run's samples and marks stay usable and the aggregation goes on."""
    from leaklab.profilers.errors import ParseError

    if not hasattr(profiler_module, "collect"):
        return "none", None
    try:
        frames = profiler_module.collect(outdir, mark_frame)
    except (ParseError, OSError, ValueError) as err:
        return "parse_error", f"{type(err).__name__}: {err}"
    for name, frame in frames.items():
        frame.to_parquet(outdir / f"{name}.parquet", index=False)
    for collapsed in sorted(outdir.glob("*.collapsed")):
        what = "growth between the first and last dumps" if ".growth." in collapsed.name else "bytes still allocated at exit"
        flamegraph.write(collapsed, collapsed.with_suffix(".svg"), f"{collapsed.stem}: {what}")
    return "ok", None


def run(
    experiment: str,
    variant: str,
    outdir: Path,
    params: dict | None = None,
    profiler: str = "plain",
    replicate: int = 1,
    interval_s: float = 0.05,
    timeout_s: float = 600.0,
    mem_cap_bytes: int | None = None,
    smaps: bool = True,
    profiler_settings: dict | None = None,
    scale: float = 1.0,
    python: str | None = None,
) -> dict:
    """Run one variant to completion (or until stopped) and write the run directory.

    ``python`` runs a built-in experiment under another interpreter (a version sweep's
    venv); the measured process needs only the standard library, leaklab's experiment
    modules and the library under test."""
    spec = experiments.get(experiment)
    spec.check_variant(variant)
    outdir = Path(outdir).resolve()
    outdir.mkdir(parents=True, exist_ok=True)
    workdir = outdir / "work"
    workdir.mkdir(exist_ok=True)
    marks_path = outdir / "marks.jsonl"
    marks_path.unlink(missing_ok=True)
    params = params or {}

    ready_r, ready_w = os.pipe()
    release_r, release_w = os.pipe()
    t0 = time.monotonic()
    env = dict(os.environ)
    env.update({
        marks.MARKS_ENV: str(marks_path),
        marks.T0_ENV: repr(t0),
        marks.SYNC_ENV: f"{ready_w},{release_r}",
        "PYTHONUNBUFFERED": "1",
        # leaklab itself, for interpreters it is not installed in
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PACKAGE_DIR), os.environ.get("PYTHONPATH")])),
    })
    protocol = None
    if spec.command:
        cmd = command_line(spec, variant, params, workdir)
        env[unit_protocol.UNITS_ENV] = str(outdir / "units.txt")
        (outdir / "units.txt").unlink(missing_ok=True)
        protocol = unit_protocol.ProtocolMarks(spec.unit_source, outdir / "units.txt", marks_path)
    else:
        cmd = [
            python or sys.executable, "-m", spec.module, "--variant", variant,
            "--params", json.dumps(params), "--workdir", str(workdir),
        ]
    profiler_module = profilers.load(profiler)
    cmd, env = profiler_module.wrap(cmd, env, outdir, profiler_settings or {})

    rows: list[dict] = []
    cpu_before = _children_cpu_s()
    with open(outdir / "run.log", "wb") as log:
        try:
            proc = subprocess.Popen(
                cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                pass_fds=(ready_w, release_r), start_new_session=True, cwd=workdir,
            )
        except OSError as err:  # a command that cannot start: recorded like any failure (exit 127)
            log.write(f"cannot start {cmd[0]!r}: {err}\n".encode())
            log.flush()
            proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(127)"])
        os.close(ready_w)
        os.close(release_r)
        deadline = t0 + timeout_s
        previous = {s: signal.signal(s, _raise_stopped) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
        try:
            hook = getattr(profiler_module, "at_end_of_work", None)
            stopped_for = _sample_until_exit(proc, ready_r, release_w, rows, protocol, t0, deadline,
                                             interval_s, smaps, mem_cap_bytes,
                                             hook and (lambda pid: hook(pid, outdir)))
        except _Stopped:
            _stop(proc)  # the measured process group goes with the runner; no outputs are written
            proc.wait()
            raise
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
        _stop(proc)  # leftovers of the group, if the main process left any
    os.close(ready_r)
    os.close(release_w)
    if protocol:  # lines written just before exit
        protocol.poll(time.monotonic() - t0, proc.pid)
    wall_s = time.monotonic() - t0
    cpu_s = _children_cpu_s() - cpu_before

    samples = pd.DataFrame(rows, columns=list(sampler.SAMPLE_COLUMNS))
    samples.to_parquet(outdir / "samples.parquet", index=False)
    mark_frame = _read_marks(marks_path)
    mark_frame.to_parquet(outdir / "marks.parquet", index=False)

    status = _status(proc.returncode, stopped_for)
    profile_status, profile_error = collect_profile(profiler_module, outdir, mark_frame)
    log_lines = (outdir / "run.log").read_text(errors="replace").splitlines()
    meta = {
        "experiment": experiment,
        "variant": variant,
        "profiler": profiler,
        "replicate": replicate,
        "status": status,
        "exit_code": proc.returncode,
        "wall_s": round(wall_s, 3),
        "cpu_s": round(cpu_s, 3),
        "peak_rss_bytes": int(max([0, *samples["rss_bytes"], *samples["vmhwm_bytes"]])),
        "n_samples": len(samples),
        "n_units": int(mark_frame["unit"].max()) if mark_frame["unit"].notna().any() else 0,
        "unit": spec.unit,
        "scale": scale,
        "profile_status": profile_status,
        "profile_error": profile_error,
        "profiler_settings": profiler_settings or {},
        "interval_s": interval_s,
        "timeout_s": timeout_s,
        "mem_cap_bytes": mem_cap_bytes,
        "params": params,
        "command": cmd,
        "versions": library_versions(python),
        "python": python or sys.executable,
        "host": host_facts(),
        "log_tail": log_lines[-LOG_TAIL_LINES:] if status != "ok" else [],
        "protocol_bad_lines": protocol.bad_lines if protocol else 0,
    }
    (outdir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m leaklab.runner",
        description="Run one leak reproduction variant under the sampler and write its run directory.",
    )
    parser.add_argument("--experiment", required=True, help=f"one of {', '.join(experiments.names())}, "
                        "or a command experiment declared in --config")
    parser.add_argument("--config", type=Path, help="a leaklab config.yaml that declares command experiments")
    parser.add_argument("--variant", required=True, help="variant id, e.g. capi-real (see README)")
    parser.add_argument("--outdir", required=True, type=Path)
    parser.add_argument("--params", default="{}", help="experiment parameters as JSON")
    parser.add_argument("--profiler", default="plain", choices=profilers.PROFILERS)
    parser.add_argument("--replicate", type=int, default=1)
    parser.add_argument("--interval", type=float, default=0.05, help="sampling interval, seconds")
    parser.add_argument("--timeout", type=float, default=600.0, help="time limit, seconds")
    parser.add_argument("--mem-cap", type=int, default=None, help="RSS cap in bytes")
    parser.add_argument("--profiler-settings", default="{}", help="profiler settings as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.config:
        import yaml

        experiments.configure(yaml.safe_load(args.config.read_text()))
    meta = run(
        args.experiment, args.variant, args.outdir, json.loads(args.params),
        profiler=args.profiler, replicate=args.replicate, interval_s=args.interval,
        timeout_s=args.timeout, mem_cap_bytes=args.mem_cap,
        profiler_settings=json.loads(args.profiler_settings),
    )
    print(f"{args.experiment}/{args.variant}/{args.profiler}: {meta['status']} in {meta['wall_s']:.1f} s, "
          f"{meta['n_units']} {meta['unit']}(s), peak RSS {meta['peak_rss_bytes'] / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
