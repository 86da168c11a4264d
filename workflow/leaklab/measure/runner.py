"""Run one experiment variant as its own process, watched by the sampler.

    python -m leaklab.measure.runner --experiment fd_leak --variant leak --outdir /tmp/run

Writes into ``outdir``: ``samples.parquet`` (outside view), ``marks.parquet`` (inside
view), ``meta.json`` (status, exit code, wall and CPU seconds, peak RSS, versions,
parameters, host) and ``run.log`` (the process's stdout and stderr, bounded:
``leaklab.process.run_output``).  The signals a program sends its runner are counted, never
obeyed (``leaklab.process.run_signals``), and each unit line gets its own reading of the
process (``leaklab.process.unit_readings``).

A run that fails, crashes, hangs past its time limit or grows past its memory cap is
stopped and recorded with that status; the runner itself still exits 0 with all its
outputs written, so one bad run never stops the rest of the pipeline.  Whatever the
measured program writes is untrusted input (bad unit or mark lines are counted and
quoted in ``meta.json``), and whatever goes wrong inside the runner itself ends as
status ``runner_error`` with its traceback, the measured process tree stopped.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType

import pandas as pd

from leaklab import experiments, profilers
from leaklab.experiments import marks
from leaklab.measure import stopping, watching
from leaklab.measure.run_spec import RunSpec
from leaklab.process import (allocator_heap, build, containment, glibc_heap, host, mappings, marks_file,
                             own_program, run_output, run_signals, sampler, unit_protocol, unit_readings)
from leaklab.tables.run_files import checksums, collect_profile

LOG_TAIL_LINES = 20
PACKAGE_DIR = Path(__file__).resolve().parents[2]


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


PUMP_WAIT_S = 2.0  # after the tree is gone, how long its last output may still take to be read


def _start_in_box(box: containment.ProcessGroup):
    """What a started child runs before exec: the signal mask a process normally starts
    with (the runner's is blocked), then into the run's containment."""
    def enter() -> None:
        run_signals.unblock_in_child()
        box.enter()
    return enter


def _guard(box: containment.ProcessGroup, root: list[int]) -> run_signals.Guard:
    """The runner's signal guard for one run: a sender is outside unless it belongs to the
    tree of ``root[0]`` (filled in once the program is started)."""
    return run_signals.Guard(lambda pid: not (root and run_signals.in_tree(pid, root[0], box.pids)))


def _child_env() -> dict[str, str]:
    """The environment of a process the runner starts: leaklab itself on the path (for
    interpreters it is not installed in), output unbuffered."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_DIR), os.environ.get("PYTHONPATH")]))
    return env


def _status(returncode: int, stopped_for: str | None) -> str:
    if stopped_for:
        return stopped_for
    if returncode == 0:
        return "ok"
    return "crashed" if returncode < 0 else "failed"


def run(run_spec: RunSpec) -> dict:
    """Run one variant to completion (or until stopped) and write the run directory.

    A stopping plan (``RunSpec.stopping_plan``, plain runs only) stops the run as soon
    as its verdict is decided (``leaklab.measure.stopping``); ``meta.json`` records
    ``stop_reason`` and ``stopped_at_unit`` either way.  ``run.log`` keeps at most
    ``log_cap_bytes`` of the program's output (``leaklab.process.run_output``).

    Under another interpreter (``python``: a version sweep's venv) the measured process
    needs only the standard library, leaklab's experiment modules and the library under
    test.  Every way this can go wrong after the variant is checked still writes
    ``meta.json``, ``samples.parquet`` and ``marks.parquet``: an error of the runner
    itself is status ``runner_error``."""
    spec = run_spec.experiment
    spec.check_variant(run_spec.variant)
    run_spec = replace(run_spec, outdir=Path(run_spec.outdir).resolve(), params=dict(run_spec.params))
    outdir = run_spec.outdir
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "meta.json").unlink(missing_ok=True)  # written last: a stale one never passes for this run
    meta = {
        "experiment": spec.name, "variant": run_spec.variant, "profiler": run_spec.profiler,
        "replicate": run_spec.replicate, "unit": spec.unit, "scale": run_spec.scale,
        "profiler_settings": run_spec.profiler_settings, "interval_s": run_spec.interval_s,
        "timeout_s": run_spec.timeout_s, "mem_cap_bytes": run_spec.mem_cap_bytes, "params": run_spec.params,
        "python": run_spec.python or sys.executable, "stopping": run_spec.stopping_plan or {},
    }
    box = containment.create(run_spec.contain, run_spec.mem_cap_bytes)
    rows: list[dict] = []
    bad = unit_protocol.BadLines()
    facts: dict = {}
    started = time.monotonic()
    try:
        meta.update(_measure(run_spec, box, rows, bad, facts))
    except run_signals.Stopped:
        raise  # the measured process tree goes with the runner (below); no outputs are written
    except Exception:
        meta.update(facts, wall_s=round(time.monotonic() - started, 3),
                    **_after_runner_error(outdir, rows, bad, traceback.format_exc()))
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
    except Exception:
        samples = pd.DataFrame(columns=list(sampler.SAMPLE_COLUMNS))
        samples.astype("float64").to_parquet(outdir / "samples.parquet", index=False)
    try:
        marks_file.read_marks(outdir / "marks.jsonl", bad).to_parquet(outdir / "marks.parquet", index=False)
    except Exception:
        marks_file.marks_frame([]).to_parquet(outdir / "marks.parquet", index=False)
    if not (outdir / "mappings.parquet").exists():  # declared: a failed run has one too
        mappings.frame([]).to_parquet(outdir / "mappings.parquet", index=False)
    return {"status": "runner_error", "stop_reason": "runner_error", "stopped_at_unit": None,
            "exit_code": None, "n_samples": len(samples), "n_units": 0,
            "peak_rss_bytes": int(max([0, *(r["rss_bytes"] for r in rows)])), "profile_status": "none",
            "profile_error": None, "error": error, "log_tail": error.splitlines()[-LOG_TAIL_LINES:]}


def _stop_facts(status: str, stopped_for: str | None, returncode: int, plan: stopping.Plan | None,
                watcher: stopping.Watcher | None) -> tuple[str, dict]:
    """The run's status and why it stopped: ``decided`` (its verdict was in before its
    last look; a program that ended because it was asked to is ``ok``), ``max_units``
    (watched, it ran its configured length: a decision at the last look cut nothing),
    ``finished`` (not watched: it ran its length), with confirmation (``leaklab.model.horizon``)
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


def units_sharing_reading(samples: pd.DataFrame, mark_frame: pd.DataFrame) -> int:
    """Units whose outside reading is the same sample as the previous unit's: their
    growth between them is not measured (stale readings).  A mark that carries its own
    RSS (a built-in experiment reads it at the mark) has its own reading."""
    own = mark_frame["rss_bytes"].notna() if "rss_bytes" in mark_frame else False
    units = mark_frame[(mark_frame["phase"] == "unit") & mark_frame["unit"].notna() & ~own][["t", "unit"]]
    if units.empty or samples.empty:
        return 0
    readings = samples[["t"]].sort_values("t").reset_index(drop=True).reset_index(names="reading")
    matched = pd.merge_asof(units.sort_values("t").astype({"t": "float64"}),
                            readings.astype({"t": "float64"}), on="t", direction="backward")
    return int(matched["reading"].dropna().duplicated().sum())


def _protocol_for(spec, outdir: Path, marks_path: Path, bad: unit_protocol.BadLines,
                  readings: unit_readings.UnitReadings | None) -> unit_protocol.ProtocolMarks:
    """How a command experiment's units arrive: its own output lines (``unit_pattern``),
    the clock, or its units file."""
    reserved = _reserved_names(spec)
    if spec.unit_pattern:
        return unit_protocol.ProtocolMarks("pattern", outdir / "run.log", marks_path, bad, spec.unit_pattern,
                                           reading=readings and readings.take, reserved=reserved)
    return unit_protocol.ProtocolMarks(spec.unit_source, outdir / "units.txt", marks_path, bad,
                                       reading=readings and readings.take, reserved=reserved)


def _reserved_names(spec) -> frozenset[str]:
    """The names a program's metrics may not take: a user's program may not name the
    runner's own readings (``rss_bytes`` would replace the reading it is judged by); the
    project's own reproductions (``spec.module``) report their RSS at the mark themselves."""
    return unit_protocol.RESERVED_NAMES if spec.module else unit_protocol.PROGRAM_RESERVED_NAMES


def _program_command(run_spec: RunSpec, env: dict[str, str]) -> tuple[list[str], str | None]:
    """The measured program's command line (before a profiler wraps it), and what wraps
    a command program (a shell, a script) if anything; a command program's working
    directory is staged and its units file named in ``env``."""
    spec, outdir = run_spec.experiment, run_spec.outdir
    workdir = outdir / "work"
    if not spec.command:
        return [run_spec.python or sys.executable, "-m", spec.module, "--variant", run_spec.variant,
                "--params", json.dumps(run_spec.params), "--workdir", str(workdir)], None
    fields = own_program.fields(run_spec.params, run_spec.variant, workdir)
    cmd = own_program.argv(spec.command, fields)
    own_program.stage_workdir(spec.workdir_files, fields, workdir)
    env[unit_protocol.UNITS_ENV] = str(outdir / "units.txt")
    (outdir / "units.txt").unlink(missing_ok=True)
    return cmd, own_program.wrapper_note(cmd)


def _follow_program(pid: int, out_r: int, log: run_output.BoundedLog, clock,
                    protocol: unit_protocol.ProtocolMarks | None,
                    exited: threading.Event) -> tuple[run_output.OutputPump, threading.Thread | None]:
    """Start reading what the program writes: its output (into run.log, and line by line
    into the unit pattern) and its units file (until ``exited``)."""
    on_line = (lambda raw, t: protocol.line(raw, t, pid)) if protocol and protocol.pattern else None
    pump = run_output.OutputPump(out_r, log, clock, on_line)
    pump.start()
    follower = None
    if protocol and not protocol.pattern and protocol.source != "seconds":
        follower = threading.Thread(target=protocol.follow, args=(clock, pid, exited), name="units-follower",
                                    daemon=True)
        follower.start()
    return pump, follower


@dataclass(frozen=True)
class _Program:
    """The measured program as it is started: its command and environment (a profiler's
    wrapping included), and what is read beside it."""

    cmd: list[str]
    env: dict[str, str]
    wrapper: str | None  # a command program's shell or script, which a profiler would see instead
    profiler: ModuleType
    heap_metric: dict
    heap_file: Path | None
    at_unit: Callable[[int], None] | None  # the profiler's hook at each unit mark (pprof's heap profile)


def _prepare_program(run_spec: RunSpec, marks_path: Path, t0: float, sync: watching.SyncPipes) -> _Program:
    """The program's command line, wrapped by its profiler, with the environment that
    tells it where its marks go and how to ask for its final sample (``sync``)."""
    outdir, settings = run_spec.outdir, run_spec.profiler_settings
    env = _child_env()
    env.update({
        marks.MARKS_ENV: str(marks_path),
        marks.T0_ENV: repr(t0),
        marks.SYNC_ENV: "{},{}".format(*sync.program_ends),
        unit_readings.PACE_ENV: unit_readings.pace(),
    })
    cmd, wrapper = _program_command(run_spec, env)
    profiler_module = profilers.load(run_spec.profiler)
    cmd, env = profiler_module.wrap(cmd, env, outdir, settings)
    heap_metric, env, heap_file = allocator_heap.prepare(run_spec.experiment, cmd, env, run_spec.profiler, wrapper,
                                                         outdir)
    at_unit = getattr(profiler_module, "at_unit", None)
    return _Program(cmd, env, wrapper, profiler_module, heap_metric, heap_file,
                    at_unit and (lambda unit: at_unit(unit, outdir, settings)))


def _start(program: _Program, out_w: int, sync: watching.SyncPipes, workdir: Path,
           box: containment.ProcessGroup, log: run_output.BoundedLog) -> subprocess.Popen:
    """Start the program in ``box``; a command that cannot start is recorded like any
    failure (exit 127)."""
    try:
        return subprocess.Popen(
            program.cmd, env=program.env, stdout=out_w, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            pass_fds=sync.program_ends, start_new_session=True, cwd=workdir, preexec_fn=_start_in_box(box),
        )
    except OSError as err:
        log.write(f"cannot start {program.cmd[0]!r}: {err}\n".encode())
        return subprocess.Popen([sys.executable, "-c", "raise SystemExit(127)"])


def _run_program(run_spec: RunSpec, program: _Program, box: containment.ProcessGroup, rows: list[dict],
                 bad: unit_protocol.BadLines, facts: dict, t0: float, sync: watching.SyncPipes,
                 marks_path: Path, watcher: stopping.Watcher | None
                 ) -> tuple[subprocess.Popen, str | None, unit_readings.UnitReadings]:
    """Start the program, follow its output and units and sample it until it ends or
    is stopped; the finished process and why it was stopped, if it was.  ``facts``
    receives what is known of its output and signals, even when the runner fails."""
    spec, outdir = run_spec.experiment, run_spec.outdir
    ended_at: list[float] = []  # the last sample's time once the program is gone

    def clock() -> float:
        """The run's clock for lines as they arrive; a line read after the program is gone
        was written before: it gets the time of the last sample taken, not a teardown time."""
        return ended_at[0] if ended_at else time.monotonic() - t0
    out_r, out_w = os.pipe()
    log = run_output.BoundedLog(outdir / "run.log", run_spec.log_cap_bytes)
    root: list[int] = []
    protocol, pump, follower, exited = None, None, None, threading.Event()
    with _guard(box, root) as guard:
        try:
            proc = _start(program, out_w, sync, outdir / "work", box, log)
            root.append(proc.pid)
            box.started(proc.pid)
            for fd in (out_w, *sync.program_ends):
                os.close(fd)
            readings = unit_readings.UnitReadings(proc.pid, box, run_spec.smaps, rows, program.heap_file,
                                                  program.at_unit, own=spec.module is not None)
            protocol = _protocol_for(spec, outdir, marks_path, bad, readings) if spec.command else None
            pump, follower = _follow_program(proc.pid, out_r, log, clock, protocol, exited)
            hook = getattr(program.profiler, "at_end_of_work", None)
            stopped_for = watching.until_exit(
                proc, box, run_spec, sync, rows, t0, protocol=protocol,
                at_end_of_work=hook and (lambda pid: hook(pid, outdir)), watcher=watcher, guard=guard,
                readings=readings)
        finally:
            box.close()  # leftovers of the tree (daemonised ones included), whatever happened
            ended_at.append(max([row["t"] for row in rows], default=clock()))
            exited.set()
            if pump is None:
                os.close(out_r)
            facts.update(_end_of_output(pump, follower, protocol, log, rows, clock))
            if root:
                proc.wait()
    facts["signals_from_program"] = dict(guard.from_program)
    sync.close_runner_ends()
    return proc, stopped_for, readings


def _measure(run_spec: RunSpec, box: containment.ProcessGroup, rows: list[dict], bad: unit_protocol.BadLines,
             facts: dict) -> dict:
    """Start the measured process in ``box``, sample it until it ends or is stopped,
    write samples and marks and read the profiler's files; the facts for ``meta.json``.
    ``facts`` receives what is known of the run as it goes (signals, output), kept even
    when the runner itself fails."""
    spec, outdir = run_spec.experiment, run_spec.outdir
    (outdir / "work").mkdir(exist_ok=True)
    marks_path = outdir / "marks.jsonl"
    marks_path.unlink(missing_ok=True)
    plan = stopping.Plan.from_params(run_spec.stopping_plan) if run_spec.profiler == "plain" else None
    parse_mark = functools.partial(marks_file.mark_record, reserved=_reserved_names(spec))
    watcher = stopping.Watcher(plan, marks_path, parse_mark) if plan else None
    sync = watching.SyncPipes.open()
    t0 = time.monotonic()
    program = _prepare_program(run_spec, marks_path, t0, sync)
    cpu_before = _children_cpu_s()
    proc, stopped_for, readings = _run_program(run_spec, program, box, rows, bad, facts, t0, sync, marks_path,
                                               watcher)
    wall_s = time.monotonic() - t0
    cpu_s = _children_cpu_s() - cpu_before

    samples, mark_frame = _write_samples_and_marks(rows, outdir, bad, parse_mark, readings.heap_by_unit)
    if program.heap_file is not None:
        glibc_heap.strip_summary(outdir / "run.log")
    readings.write(outdir / "mappings.parquet")
    status, stop_facts = _stop_facts(_status(proc.returncode, stopped_for), stopped_for, proc.returncode, plan,
                                     watcher)
    n_units = int(mark_frame["unit"].max()) if mark_frame["unit"].notna().any() else 0
    profile_status, profile_error = collect_profile(program.profiler, outdir, mark_frame)
    if program.wrapper and run_spec.profiler != "plain":  # never `ok` for the wrong process
        profile_status, profile_error = "wrapper", "; ".join(filter(None, [program.wrapper, profile_error]))
    return {
        "status": status,
        "exit_code": proc.returncode,
        "wall_s": round(wall_s, 3),
        "cpu_s": round(cpu_s, 3),
        "peak_rss_bytes": int(max([0, *samples["rss_bytes"], *samples["vmhwm_bytes"]])),
        "n_samples": len(samples),
        "n_units": n_units,
        "stopped_at_unit": n_units,
        "heap_metric": program.heap_metric,
        "mappings_readings": readings.readings,
        "mappings_read_s": round(readings.seconds, 3),
        **stop_facts,
        **facts,
        "units_sharing_reading": units_sharing_reading(samples, mark_frame),
        "profile_status": profile_status,
        "profile_error": profile_error,
        "command": program.cmd,
        "versions": {**host.library_versions(run_spec.python), **build.recorded_versions(run_spec.params)},
        "host": host.host_facts(),
        "log_tail": run_output.log_tail(outdir / "run.log", LOG_TAIL_LINES) if status != "ok" else [],
        "artifacts": checksums(outdir),
    }


def _write_samples_and_marks(rows: list[dict], outdir: Path, bad: unit_protocol.BadLines,
                             parse_mark: Callable[[bytes], dict],
                             heap_by_unit: dict[int, int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``samples.parquet`` (in time order: per-unit readings come from another thread)
    and ``marks.parquet`` from the checked ``marks.jsonl``, with glibc's heap in use read
    at each unit (``leaklab.process.glibc_heap``)."""
    rows.sort(key=lambda row: row["t"])
    samples = pd.DataFrame(rows, columns=list(sampler.SAMPLE_COLUMNS))
    samples["cgroup_bytes"] = samples["cgroup_bytes"].astype("float64")
    samples.to_parquet(outdir / "samples.parquet", index=False)
    mark_frame = glibc_heap.into_marks(marks_file.read_marks(outdir / "marks.jsonl", bad, parse_mark), heap_by_unit)
    mark_frame.to_parquet(outdir / "marks.parquet", index=False)
    return samples, mark_frame


def _end_of_output(pump: run_output.OutputPump | None, follower: threading.Thread | None,
                   protocol: unit_protocol.ProtocolMarks | None, log: run_output.BoundedLog,
                   rows: list[dict], clock) -> dict:
    """Once the tree is gone: read the rest of its output and units (lines written just
    before exit still count), close run.log; how much may have been missed."""
    pump_done = pump.finish(PUMP_WAIT_S) if pump is not None else True
    if follower is not None:
        follower.join(unit_protocol.DRAIN_BUDGET_S + PUMP_WAIT_S)
    if protocol is not None:
        protocol.poll(clock(), 0)  # the start mark, should no sample have been taken
        protocol.close()
    return {
        **log.close(),
        "output_unread": not pump_done,  # the pattern was still busy when the runner gave up waiting
        "pattern_timeouts": protocol.pattern_timeouts if protocol else 0,
        "unit_lines_unread": protocol.unread_lines if protocol else 0,
        "units_may_be_missed": (protocol.pattern_timeouts + protocol.unread_lines if protocol else 0)
        + (1 if not pump_done else 0),
        "output_error": pump.error if pump is not None else None,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="leaklab measure",
        description="Run one leak reproduction variant under the sampler and write its run directory.",
    )
    parser.add_argument("--experiment", required=True, help=f"one of {', '.join(experiments.NAMES)}, "
                        "or a command experiment declared in --config")
    parser.add_argument("--config", type=Path, help="a leaklab config.yaml that declares command experiments")
    parser.add_argument("--variant", required=True, help="variant id, e.g. capi-real (see README)")
    parser.add_argument("--outdir", required=True, type=Path)
    parser.add_argument("--params", default="{}", help="experiment parameters as JSON")
    parser.add_argument("--profiler", default="plain", choices=profilers.PROFILERS)
    parser.add_argument("--replicate", type=int, default=1)
    parser.add_argument("--interval", type=float, default=0.05, help="sampling interval, seconds")
    parser.add_argument("--timeout", type=float, default=600.0, help="time limit, seconds")
    parser.add_argument("--mem-cap", type=int, default=None,
                        help="memory cap in bytes (the run's cgroup, else its summed PSS)")
    parser.add_argument("--log-cap", type=int, default=run_output.DEFAULT_LOG_CAP_BYTES,
                        help="bytes of the program's output run.log keeps (its first and last halves)")
    parser.add_argument("--profiler-settings", default="{}", help="profiler settings as JSON")
    parser.add_argument("--containment", default="auto", choices=containment.KINDS,
                        help="how the process tree is kept together (default: the strongest available)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = {}
    if args.config:
        import yaml

        config = yaml.safe_load(args.config.read_text()) or {}
    try:
        spec = experiments.specs(config)[args.experiment]
    except experiments.UnknownExperiment as err:
        sys.exit(f"leaklab measure: --experiment: {err}")
    meta = run(RunSpec(
        spec, args.variant, args.outdir, json.loads(args.params),
        profiler=args.profiler, profiler_settings=json.loads(args.profiler_settings), replicate=args.replicate,
        interval_s=args.interval, timeout_s=args.timeout, mem_cap_bytes=args.mem_cap, log_cap_bytes=args.log_cap,
        contain=args.containment,
    ))
    print(f"{args.experiment}/{args.variant}/{args.profiler}: {meta['status']} in {meta['wall_s']:.1f} s, "
          f"{meta['n_units']} {meta['unit']}(s), peak RSS {meta['peak_rss_bytes'] / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
