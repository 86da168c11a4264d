"""Run one experiment variant as its own process, watched by the sampler.

    python -m leaklab.runner --experiment fd_leak --variant leak --outdir /tmp/run

Writes into ``outdir``: ``samples.parquet`` (outside view), ``marks.parquet`` (inside
view), ``meta.json`` (status, exit code, wall and CPU seconds, peak RSS, versions,
parameters, host) and ``run.log`` (the process's stdout and stderr).

A run that fails, crashes, hangs past its time limit or grows past its memory cap is
stopped and recorded with that status; the runner itself still exits 0 with all its
outputs written, so one bad run never stops the rest of the pipeline.  Whatever the
measured program writes is untrusted input (bad unit or mark lines are counted and
quoted in ``meta.json``), and whatever goes wrong inside the runner itself ends as
status ``runner_error`` with its traceback, the measured process tree stopped.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import select
import signal
import socket
import subprocess
import sys
import time
import traceback
from pathlib import Path

import pandas as pd

from leaklab import (build, containment, experiments, marks, own_program, profilers, sampler, stopping,
                     unit_protocol)
from leaklab.run_files import checksums, collect_profile

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


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask the kernel to send ``sig`` to this process when its parent dies: a runner
    whose pipeline was killed must not go on measuring (and writing) on its own."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, sig)


class _Stopped(Exception):
    """The runner itself was told to stop (SIGTERM, SIGINT, SIGHUP)."""


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _raise_stopped(signum, frame):
    raise _Stopped(signal.Signals(signum).name)


def _child_env() -> dict[str, str]:
    """The environment of a process the runner starts: leaklab itself on the path (for
    interpreters it is not installed in), output unbuffered."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_DIR), os.environ.get("PYTHONPATH")]))
    return env


def run_limited(cmd: list[str], log_path: Path, timeout_s: float, mem_cap_bytes: int | None,
                interval_s: float = 0.1) -> dict:
    """Run a helper step (the fixture build) under the same limits as a measurement: its
    own containment, the memory cap, the time limit, stopped with the runner.  Nothing
    is recorded but the outcome: status, exit code, wall seconds and peak RSS."""
    box = containment.create("auto", mem_cap_bytes)
    ready_r, ready_w = os.pipe()  # no end-of-work handshake: the closed end reads as EOF at once
    release_r, release_w = os.pipe()
    os.close(ready_w)
    os.close(release_r)
    rows: list[dict] = []
    t0 = time.monotonic()
    previous = {s: signal.signal(s, _raise_stopped) for s in STOP_SIGNALS}
    try:
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(cmd, env=_child_env(), stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=box.enter)
        box.started(proc.pid)
        stopped_for = _sample_until_exit(proc, box, ready_r, release_w, rows, None, t0, t0 + timeout_s,
                                         interval_s, False, mem_cap_bytes, None)
    finally:
        box.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
        os.close(ready_r)
        os.close(release_w)
    proc.wait()
    return {"status": _status(proc.returncode, stopped_for), "exit_code": proc.returncode,
            "wall_s": round(time.monotonic() - t0, 3), "peak_rss_bytes": max([0, *(r["rss_bytes"] for r in rows)]),
            "containment": box.describe()}


def _sample_until_exit(proc, box, ready_r, release_w, rows, protocol, t0, deadline, interval_s, smaps,
                       mem_cap_bytes, at_end_of_work, watcher: stopping.Watcher | None = None,
                       own_final_sample: bool = True) -> str | None:
    """Sample the process tree (and its cgroup's members) until it exits or must be
    stopped; returns why it was stopped (``capped``, ``timeout``) or None.  Waiting on
    the sync pipe doubles as the sampling sleep, so the final sample is taken the
    moment the process asks, and waiting on a pidfd ends the wait the moment it exits,
    whatever the interval.  Samples after the final one (interpreter teardown) still
    enforce the limits but are not recorded: the final sample is the last one of the
    measured work.

    With a ``watcher`` (sequential stopping) every sample is also a chance to look at
    the marks: once the verdict is decided the program is asked to stop
    (``stopping.request_stop``).  A program that does not take its own final sample
    (``own_final_sample`` false: not a built-in experiment) has the sample just taken
    marked final instead, the last one of its measured work, and gets
    ``stopping.STOP_GRACE_S`` to exit before it is killed."""
    final_taken, pipe_open = False, True
    exited = os.pidfd_open(proc.pid)  # readable once the process has exited
    while proc.poll() is None:
        wait_s = max(0.0, min(interval_s, deadline - time.monotonic()))  # the time limit holds too
        ready = select.select([ready_r, exited] if pipe_open else [exited], [], [], wait_s)[0]
        final = ready_r in ready and os.read(ready_r, 1) != b""
        pipe_open = pipe_open and ready_r not in ready  # asked once, or EOF: it closed its end
        row = sampler.sample(proc.pid, time.monotonic() - t0, smaps=smaps, final=final, members=box.pids())
        if row is not None:
            row["cgroup_bytes"] = box.memory_bytes()
        if row is not None and not final_taken:
            rows.append(row)
            if protocol:
                protocol.poll(row["t"], proc.pid)
        final_taken = final_taken or final
        if watcher is not None and row is not None and not final_taken and watcher.decided is None \
                and watcher.update(rows) is not None and watcher.cuts_short():
            if not own_final_sample:
                rows[-1]["final"] = final_taken = True  # taken while it still held everything
            stopping.request_stop(proc.pid, own_final_sample)
            deadline = min(deadline, time.monotonic() + stopping.STOP_GRACE_S)
        if final:
            if at_end_of_work:  # the process waits: a profiler may look at it now
                at_end_of_work(proc.pid)
            try:
                os.write(release_w, b"x")
            except BrokenPipeError:
                pass
        stopped_for = None
        if box.oom_killed() or (mem_cap_bytes and row and max(row["rss_bytes"], row["cgroup_bytes"] or 0) > mem_cap_bytes):
            stopped_for = "capped"
        elif time.monotonic() > deadline:
            # past the grace after the stop signal: killed, but stopped because it was decided
            stopped_for = "killed_after_stop" if watcher is not None and watcher.cuts_short() else "timeout"
        if stopped_for:
            box.stop()
            proc.wait()
            os.close(exited)
            return stopped_for
    os.close(exited)
    return "capped" if box.oom_killed() else None


def _status(returncode: int, stopped_for: str | None) -> str:
    if stopped_for:
        return stopped_for
    if returncode == 0:
        return "ok"
    return "crashed" if returncode < 0 else "failed"


def _mark_record(line: bytes) -> dict:
    """One line of ``marks.jsonl`` checked like a unit line: the measured program can
    write there too (``LEAKLAB_MARKS`` is in its environment)."""
    try:
        record = json.loads(line)
    except (UnicodeDecodeError, ValueError):
        raise unit_protocol.BadLine("not a JSON mark") from None
    if not isinstance(record, dict):
        raise unit_protocol.BadLine("not a JSON object")
    t, unit, phase = record.pop("t", None), record.pop("unit", None), record.pop("phase", None)
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
        raise unit_protocol.BadLine(f"time {t!r} is not a finite number")
    if not isinstance(phase, str) or not 0 < len(phase) <= 64:
        raise unit_protocol.BadLine(f"phase {phase!r} is not a short name")
    out = {"t": float(t), "unit": None if unit is None else unit_protocol.check_unit(unit), "phase": phase}
    for name, value in record.items():
        if value is None or (isinstance(value, float) and math.isnan(value)):
            out[name] = None  # not measured (glibc's heap under jemalloc, say)
        elif name == "cpu_s":
            out[name] = unit_protocol.check_metric("process_cpu_s", value)
        else:
            out[name] = unit_protocol.check_metric(name, value)
    return out


def _read_marks(path: Path, bad: unit_protocol.BadLines) -> pd.DataFrame:
    """``marks.jsonl`` as a frame; bad lines are counted in ``bad``, a last line cut
    short by a kill is dropped."""
    rows = []
    if path.exists():
        lines = path.read_bytes().split(b"\n")[:-1]  # the last piece has no newline: cut short
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                rows.append(_mark_record(line))
            except unit_protocol.BadLine as err:
                bad.add(f"{path.name} line {number}", line, str(err))
    return _marks_frame(rows)


def _marks_frame(rows: list[dict]) -> pd.DataFrame:
    """Checked mark records as a frame that always has ``t``, ``unit`` and ``phase``."""
    frame = pd.DataFrame(rows)
    for column in ("t", "unit", "phase"):
        if column not in frame:
            frame[column] = pd.Series(dtype="float64" if column != "phase" else "object")
    frame["unit"] = frame["unit"].astype("Int64")
    return frame


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
    contain: str = "auto",
    stopping_plan: dict | None = None,
) -> dict:
    """Run one variant to completion (or until stopped) and write the run directory.

    ``stopping_plan`` (``leaklab.config.stop_plan``, plain runs only) stops the run as
    soon as its verdict is decided (``leaklab.stopping``); ``meta.json`` records
    ``stop_reason`` and ``stopped_at_unit`` either way.

    ``python`` runs a built-in experiment under another interpreter (a version sweep's
    venv); the measured process needs only the standard library, leaklab's experiment
    modules and the library under test.  ``contain`` picks the containment
    (``leaklab.containment``; ``auto``: the strongest available).  Every way this can
    go wrong after the arguments are checked still writes ``meta.json``, ``samples.parquet``
    and ``marks.parquet``: an error of the runner itself is status ``runner_error``."""
    spec = experiments.get(experiment)
    spec.check_variant(variant)
    outdir = Path(outdir).resolve()
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "meta.json").unlink(missing_ok=True)  # written last: a stale one never passes for this run
    params = params or {}
    meta = {
        "experiment": experiment, "variant": variant, "profiler": profiler, "replicate": replicate,
        "unit": spec.unit, "scale": scale, "profiler_settings": profiler_settings or {},
        "interval_s": interval_s, "timeout_s": timeout_s, "mem_cap_bytes": mem_cap_bytes, "params": params,
        "python": python or sys.executable, "stopping": stopping_plan or {},
    }
    box = containment.create(contain, mem_cap_bytes)
    rows: list[dict] = []
    bad = unit_protocol.BadLines()
    try:
        meta.update(_measure(spec, variant, outdir, params, profiler, interval_s, timeout_s, mem_cap_bytes, smaps,
                             profiler_settings or {}, python, box, rows, bad,
                             stopping.Plan.from_params(stopping_plan) if profiler == "plain" else None))
    except _Stopped:
        raise  # the measured process tree goes with the runner (below); no outputs are written
    except Exception:  # noqa: BLE001  (anything at all: recorded, never lost)
        meta.update(_after_runner_error(outdir, rows, bad, traceback.format_exc()))
    finally:
        box.close()
    meta.update(containment=box.describe(), bad_unit_lines=bad.count, bad_unit_line_examples=bad.examples)
    (outdir / "meta.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
    return meta


def _after_runner_error(outdir: Path, rows: list[dict], bad: unit_protocol.BadLines, error: str) -> dict:
    """Keep what the run measured before the runner failed, and say what failed."""
    try:
        samples = pd.DataFrame(rows, columns=list(sampler.SAMPLE_COLUMNS))
        samples.to_parquet(outdir / "samples.parquet", index=False)
    except Exception:  # noqa: BLE001
        samples = pd.DataFrame(columns=list(sampler.SAMPLE_COLUMNS))
        samples.astype("float64").to_parquet(outdir / "samples.parquet", index=False)
    try:
        _read_marks(outdir / "marks.jsonl", bad).to_parquet(outdir / "marks.parquet", index=False)
    except Exception:  # noqa: BLE001
        _marks_frame([]).to_parquet(outdir / "marks.parquet", index=False)
    return {"status": "runner_error", "stop_reason": "runner_error", "stopped_at_unit": None,
            "exit_code": None, "n_samples": len(samples), "n_units": 0,
            "peak_rss_bytes": int(max([0, *(r["rss_bytes"] for r in rows)])), "profile_status": "none",
            "profile_error": None, "error": error, "log_tail": error.splitlines()[-LOG_TAIL_LINES:]}


def _stop_facts(status: str, stopped_for: str | None, returncode: int, plan: stopping.Plan | None,
                watcher: stopping.Watcher | None) -> tuple[str, dict]:
    """The run's status and why it stopped: ``decided`` (its verdict was in before its
    last look; a program that ended because it was asked to is ``ok``), ``max_units``
    (watched, it ran its configured length: a decision at the last look cut nothing),
    ``finished`` (not watched: it ran its length), with confirmation (``leaklab.horizon``)
    ``window`` (nothing depended on what follows the window), ``confirmed`` (decided
    beyond it) or ``horizon`` (ran to the horizon), else its status (``timeout``,
    ``capped``, ``failed``, ``crashed``)."""
    decision = watcher.decided if watcher else None
    if decision is not None and watcher.cuts_short():
        if stopped_for in (None, "killed_after_stop") and returncode in stopping.STOPPED_EXITS:
            status = "ok"
        elif stopped_for == "killed_after_stop":
            status = _status(returncode, None)
        reason = decision["reason"]
    elif status == "ok":
        reason = ("horizon" if plan.window_units is not None else "max_units") if plan else "finished"
    else:
        reason = status
    facts = {"stop_reason": reason, "max_units": plan.max_units if plan else None,
             "window_units": plan.window_units if plan else None,
             "looks": watcher.looks if watcher else None,
             "look_confidence": watcher.confidence if watcher else None,
             "decided_at_unit": decision["unit"] if decision else None,
             "decided_at_s": round(decision["t"], 3) if decision else None,
             "decided_verdict": decision["verdict"] if decision else None,
             "decided_metrics": decision["metrics"] if decision else None}
    return status, facts


def _measure(spec, variant, outdir, params, profiler, interval_s, timeout_s, mem_cap_bytes, smaps,
             profiler_settings, python, box, rows, bad, plan: stopping.Plan | None = None) -> dict:
    """Start the measured process in ``box``, sample it until it ends or is stopped,
    write samples and marks and read the profiler's files; the facts for ``meta.json``."""
    workdir = outdir / "work"
    workdir.mkdir(exist_ok=True)
    marks_path = outdir / "marks.jsonl"
    marks_path.unlink(missing_ok=True)
    ready_r, ready_w = os.pipe()
    release_r, release_w = os.pipe()
    t0 = time.monotonic()
    env = _child_env()
    env.update({
        marks.MARKS_ENV: str(marks_path),
        marks.T0_ENV: repr(t0),
        marks.SYNC_ENV: f"{ready_w},{release_r}",
    })
    protocol, wrapper = None, None
    if spec.command:
        fields = own_program.fields(params, variant, workdir)
        cmd = own_program.argv(spec.command, fields)
        wrapper = own_program.wrapper_note(cmd)
        own_program.stage_workdir(spec.workdir_files, fields, workdir)
        env[unit_protocol.UNITS_ENV] = str(outdir / "units.txt")
        (outdir / "units.txt").unlink(missing_ok=True)
        if spec.unit_pattern:  # the program's own progress lines, as it prints them
            protocol = unit_protocol.ProtocolMarks("pattern", outdir / "run.log", marks_path, bad, spec.unit_pattern)
        else:
            protocol = unit_protocol.ProtocolMarks(spec.unit_source, outdir / "units.txt", marks_path, bad)
    else:
        cmd = [
            python or sys.executable, "-m", spec.module, "--variant", variant,
            "--params", json.dumps(params), "--workdir", str(workdir),
        ]
    profiler_module = profilers.load(profiler)
    cmd, env = profiler_module.wrap(cmd, env, outdir, profiler_settings)

    cpu_before = _children_cpu_s()
    with open(outdir / "run.log", "wb") as log:
        try:
            proc = subprocess.Popen(
                cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                pass_fds=(ready_w, release_r), start_new_session=True, cwd=workdir, preexec_fn=box.enter,
            )
        except OSError as err:  # a command that cannot start: recorded like any failure (exit 127)
            log.write(f"cannot start {cmd[0]!r}: {err}\n".encode())
            log.flush()
            proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(127)"])
        box.started(proc.pid)
        os.close(ready_w)
        os.close(release_r)
        deadline = t0 + timeout_s
        watcher = stopping.Watcher(plan, marks_path, _mark_record) if plan else None
        previous = {s: signal.signal(s, _raise_stopped) for s in STOP_SIGNALS}
        try:
            hook = getattr(profiler_module, "at_end_of_work", None)
            stopped_for = _sample_until_exit(proc, box, ready_r, release_w, rows, protocol, t0, deadline,
                                             interval_s, smaps, mem_cap_bytes,
                                             hook and (lambda pid: hook(pid, outdir)), watcher,
                                             own_final_sample=not spec.command)
        finally:
            box.close()  # leftovers of the tree (daemonised ones included), whatever happened
            proc.wait()
            for s, handler in previous.items():
                signal.signal(s, handler)
    os.close(ready_r)
    os.close(release_w)
    if protocol:  # lines written just before exit: stamped with the last sample taken before it
        protocol.poll(rows[-1]["t"] if rows else time.monotonic() - t0, proc.pid)
    wall_s = time.monotonic() - t0
    cpu_s = _children_cpu_s() - cpu_before

    samples = pd.DataFrame(rows, columns=list(sampler.SAMPLE_COLUMNS))
    samples["cgroup_bytes"] = samples["cgroup_bytes"].astype("float64")
    samples.to_parquet(outdir / "samples.parquet", index=False)
    mark_frame = _read_marks(marks_path, bad)
    mark_frame.to_parquet(outdir / "marks.parquet", index=False)

    status, stop_facts = _stop_facts(_status(proc.returncode, stopped_for), stopped_for, proc.returncode, plan,
                                     watcher)
    n_units = int(mark_frame["unit"].max()) if mark_frame["unit"].notna().any() else 0
    profile_status, profile_error = collect_profile(profiler_module, outdir, mark_frame)
    if wrapper and profiler != "plain":  # never `ok` for the wrong process
        profile_status, profile_error = "wrapper", "; ".join(filter(None, [wrapper, profile_error]))
    log_lines = (outdir / "run.log").read_text(errors="replace").splitlines()
    return {
        "status": status,
        "exit_code": proc.returncode,
        "wall_s": round(wall_s, 3),
        "cpu_s": round(cpu_s, 3),
        "peak_rss_bytes": int(max([0, *samples["rss_bytes"], *samples["vmhwm_bytes"]])),
        "n_samples": len(samples),
        "n_units": n_units,
        "stopped_at_unit": n_units,
        **stop_facts,
        "profile_status": profile_status,
        "profile_error": profile_error,
        "command": cmd,
        "versions": {**library_versions(python), **build.recorded_versions(params)},
        "host": host_facts(),
        "log_tail": log_lines[-LOG_TAIL_LINES:] if status != "ok" else [],
        "artifacts": checksums(outdir),
    }


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
    parser.add_argument("--containment", default="auto", choices=containment.KINDS,
                        help="how the process tree is kept together (default: the strongest available)")
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
        profiler_settings=json.loads(args.profiler_settings), contain=args.containment,
    )
    print(f"{args.experiment}/{args.variant}/{args.profiler}: {meta['status']} in {meta['wall_s']:.1f} s, "
          f"{meta['n_units']} {meta['unit']}(s), peak RSS {meta['peak_rss_bytes'] / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
