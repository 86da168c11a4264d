"""Faults tried for real: crashes, broken profiler output, interrupted and concurrent pipelines."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from leaklab import experiments, profilers
from leaklab.tables import run_files
from measuring import measure


def run_command(command: str, outdir) -> dict:
    """One run of a command experiment declared on the spot (variant ``x``)."""
    return measure("cmd", "x", outdir, config={"experiments": {"cmd": {"command": command, "variants": ["x"]}}})


def test_a_crashing_program_is_recorded_with_its_signal(tmp_path):
    meta = run_command("sh -c 'kill -SEGV $$'", tmp_path)
    assert meta["status"] == "crashed" and meta["exit_code"] == -signal.SIGSEGV


def test_a_program_that_cannot_start_is_a_failed_run(tmp_path):
    meta = run_command("/no/such/program {variant}", tmp_path)
    assert meta["status"] == "failed" and meta["exit_code"] == 127
    assert "cannot start" in (tmp_path / "run.log").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncate", "garbage", "delete"])
def test_broken_profiler_output_is_a_recorded_parse_error(tmp_path, damage):
    meta = measure("fd_leak", "leak", tmp_path, {"rotations": 15, "interval_s": 0.01}, profiler="massif",
                   profiler_settings={"max_snapshots": 20})
    assert meta["profile_status"] == "ok"
    out = tmp_path / "massif.out"
    if damage == "truncate":
        out.write_bytes(out.read_bytes()[: out.stat().st_size // 2])
    elif damage == "garbage":
        out.write_bytes(b"\x00\xffnot massif at all\n")
    else:
        out.unlink()
    marks = pd.read_parquet(tmp_path / "marks.parquet")
    status, error = run_files.collect_profile(profilers.load("massif"), tmp_path, marks)
    assert status == "parse_error" and "massif.out" in error


def wait_for(path, timeout=60):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.2)


def run_script(script: str, args: str, outdir, **kwargs) -> dict:
    """One run of a Python test program from tests/data as a command experiment."""
    config = {"experiments": {"cmd": {
        "command": f"{sys.executable} {{script}} {args}", "variants": ["x"], "params": {"script": script}}}}
    return measure("cmd", "x", outdir, {"script": script}, config, **kwargs)


def gone(pid: int) -> bool:
    """No such process, or only its exit status is left (a zombie holds no memory)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return any(line.startswith("State:") and "Z" in line for line in f)
    except FileNotFoundError:
        return True


def test_bad_unit_lines_are_counted_and_quoted_never_raised(root, tmp_path):
    """Non-UTF-8 bytes, a unit past int64, reserved metric names, negative and repeated
    units, non-finite values, duplicates, a 5,000-byte line: each is one bad line; the
    good ones are kept.  The last line, read after the program exited, carries the
    time of the last sample taken before the exit, not a teardown time."""
    run = tmp_path / "runs" / "cmd" / "x" / "plain" / "rep1"
    meta = run_script(str(root / "tests" / "data" / "hostile_units.py"), "0.6", run, interval_s=1.0)
    assert meta["status"] == "ok", meta["log_tail"]
    assert meta["bad_unit_lines"] == 12
    assert len(meta["bad_unit_line_examples"]) == 5
    assert "units.txt line 2: not UTF-8 text" in meta["bad_unit_line_examples"][0]
    assert "outside 0..1000000000" in meta["bad_unit_line_examples"][1]
    assert "metric name 'phase' is reserved" in meta["bad_unit_line_examples"][2]
    marks = pd.read_parquet(run / "marks.parquet")
    units = marks[marks["phase"] == "unit"]
    assert units["unit"].tolist() == [1, 2, 3, 4, 5] and units["live"].tolist() == [1, 2, 3, 4, 5]
    assert marks["phase"].map(type).eq(str).all() and marks["t"].is_monotonic_increasing
    samples = pd.read_parquet(run / "samples.parquet")
    assert units["t"].iloc[-1] == pytest.approx(samples["t"].iloc[-1])  # stamped before exit
    from leaklab.report import summary
    from leaklab.tables import tables

    script = str(root / "tests" / "data" / "hostile_units.py")
    config = {"verdict": {}, "experiments": {"cmd": {"command": f"{sys.executable} {{script}} 0.6", "variants": ["x"],
                                                     "params": {"script": script}, "warmup_units": 0}}}
    built = tables.build([run], config)
    assert built["runs"]["bad_unit_lines"].tolist() == [12]
    text = summary.render(built["runs"], built["growth"], built["controls"], built["attribution"],
                          specs=experiments.specs(config))
    assert "**Bad unit lines**" in text and "cmd/x/plain/rep1: 12, first: `units.txt line 2: not UTF-8 text" in text


def test_marks_written_by_the_program_itself_are_checked_too(tmp_path):
    """``LEAKLAB_MARKS`` is in the program's environment: what it writes there is
    checked like a unit line (a metric named ``phase`` once broke the Parquet writer)."""
    script = tmp_path / "marks.sh"
    script.write_text('echo \'{"t": 1, "unit": 1, "phase": 7}\' >> "$LEAKLAB_MARKS"\n'
                      'printf \'not json\\n[1]\\n\' >> "$LEAKLAB_MARKS"\n'
                      'echo 1 >> "$LEAKLAB_UNITS"\n')
    meta = run_command(f"sh {script}", tmp_path / "run")
    assert meta["status"] == "ok" and meta["bad_unit_lines"] == 3
    assert any("phase 7 is not a short name" in e for e in meta["bad_unit_line_examples"])
    assert pd.read_parquet(tmp_path / "run" / "marks.parquet")["unit"].max() == 1


def cgroup_or_skip(kind: str) -> None:
    from leaklab.process import containment

    try:
        containment.create(kind).close()
    except containment.Unavailable as err:
        pytest.skip(f"{kind} is not usable here: {err}")


@pytest.mark.parametrize("kind", ["cgroup_v1", "cgroup_v2"])
def test_a_daemonised_grandchild_is_sampled_capped_and_gone_afterwards(root, tmp_path, kind):
    """setsid + double fork takes a process out of the tree and the process group, not
    out of the run's cgroup: its memory counts, the cap stops it, nothing outlives the run."""
    cgroup_or_skip(kind)
    meta = run_script(str(root / "tests" / "data" / "escaping_grandchild.py"), "2000 60", tmp_path,
                      mem_cap_bytes=200 * 2**20, timeout_s=60, contain=kind)
    assert meta["containment"]["kind"] == kind
    assert meta["status"] == "capped" and meta["wall_s"] < 30
    samples = pd.read_parquet(tmp_path / "samples.parquet")
    assert samples["pids"].max() >= 2 and samples["rss_bytes"].max() > 100 * 2**20  # the grandchild was sampled
    if kind == "cgroup_v1":  # the cgroup's own memory figure is sampled too (v2 here has no memory controller)
        assert samples["cgroup_bytes"].max() > 100 * 2**20
    assert gone(int((tmp_path / "work" / "grandchild.pid").read_text()))
    assert not os.path.exists(meta["containment"]["path"])  # the run's cgroup is removed


def test_without_cgroups_the_process_group_is_the_fallback_and_says_so(tmp_path):
    meta = measure("fd_leak", "close", tmp_path, {"rotations": 3}, contain="process_group")
    assert meta["status"] == "ok" and meta["containment"] == {"kind": "process_group", "path": None,
                                                              "reason": "asked for"}


def test_an_error_inside_the_runner_stops_the_tree_and_is_recorded(root, tmp_path, monkeypatch):
    """A fault in the runner's own code (here: the sampler failing on its 20th reading)
    still stops the measured tree, daemonised grandchild included, and writes every output."""
    from leaklab.process import sampler

    real, calls = sampler.sample, []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 20:
            raise RuntimeError("sampler fault")
        return real(*args, **kwargs)

    monkeypatch.setattr(sampler, "sample", failing)
    meta = run_script(str(root / "tests" / "data" / "escaping_grandchild.py"), "100 60", tmp_path, timeout_s=60)
    assert meta["status"] == "runner_error" and "RuntimeError: sampler fault" in meta["error"]
    assert json.loads((tmp_path / "meta.json").read_text())["status"] == "runner_error"
    assert meta["wall_s"] > 0  # the job's status line and the runs table read it, as for any run
    assert len(pd.read_parquet(tmp_path / "samples.parquet")) == 19
    assert (tmp_path / "marks.parquet").exists()
    assert gone(int((tmp_path / "work" / "grandchild.pid").read_text()))


def test_the_fixture_build_runs_under_the_measurements_limits(tmp_path):
    """The fixture builder once had no limit (4.1 GB in 70 s from one bad key count):
    it now runs like a measurement, capped, timed and stopped whole."""
    from leaklab.process import contained
    from leaklab.experiments.rocksdb_merge import fixture_command

    small = contained.run(fixture_command(tmp_path / "small", 2000, 3, 64, 1), tmp_path / "small.log",
                          timeout_s=60, mem_cap_bytes=512 * 2**20)
    assert small["status"] == "ok" and (tmp_path / "small" / "CURRENT").exists()
    big = contained.run(fixture_command(tmp_path / "big", 3_000_000, 10, 64, 1), tmp_path / "big.log",
                        timeout_s=60, mem_cap_bytes=120 * 2**20)
    assert big["status"] == "capped" and big["wall_s"] < 60
    slow = contained.run([sys.executable, "-c", "import time; time.sleep(60)"], tmp_path / "slow.log",
                         timeout_s=1, mem_cap_bytes=None)
    assert slow["status"] == "timeout" and slow["wall_s"] < 5


@pytest.mark.slow
def test_what_a_runner_killed_outright_leaves_is_killed_by_the_next_one(root, tmp_path):
    """SIGKILL gives the runner no chance to clean up: its measured process dies with it
    (parent-death signal); its daemonised grandchild survives in the run's cgroup until
    the next runner sweeps the cgroups of runners that no longer exist."""
    from leaklab.process import containment

    cgroup_or_skip("cgroup_v1")
    script = root / "tests" / "data" / "escaping_grandchild.py"
    code = ("import sys; from leaklab import experiments; from leaklab.measure import runner; "
            "from leaklab.measure.run_spec import RunSpec; "
            "spec = experiments.specs({'experiments': {'cmd': {'command': sys.argv[1], 'variants': ['x']}}})['cmd']; "
            "runner.run(RunSpec(spec, 'x', sys.argv[2], timeout_s=120))")
    doomed = subprocess.Popen([sys.executable, "-c", code, f"{sys.executable} {script} 50 120", str(tmp_path)])
    pid_file = tmp_path / "work" / "grandchild.pid"
    wait_for(pid_file, timeout=30)
    time.sleep(0.5)
    doomed.kill()
    doomed.wait()
    grandchild = int(pid_file.read_text())
    time.sleep(0.5)
    assert not gone(grandchild)  # outlived its runner: only the cgroup still holds it
    containment.create("cgroup_v1").close()
    assert gone(grandchild)
