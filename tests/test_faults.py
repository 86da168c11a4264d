"""Faults tried for real: crashes, broken profiler output, interrupted and concurrent pipelines."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from leaklab import experiments, profilers
from leaklab.measure import runner
from leaklab.tables import run_files
from leaklab.measure.run_spec import RunSpec


def measure(experiment: str, variant: str, outdir, params: dict | None = None, **how) -> dict:
    """One run through the runner, described as the pipeline describes it (``RunSpec``)."""
    return runner.run(RunSpec(experiments.get(experiment), variant, outdir, params or {}, **how))


def run_command(command: str, outdir) -> dict:
    """One run of a command experiment declared on the spot (variant ``x``)."""
    experiments.configure({"experiments": {"cmd": {"command": command, "variants": ["x"]}}})
    try:
        return measure("cmd", "x", outdir)
    finally:
        experiments.configure({})


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


def small_config(root, tmp_path, duration="PT4S"):
    """One run of duckdb_load (load_off), long enough to be interrupted while it measures."""
    config = yaml.safe_load((root / "tests" / "config.yaml").read_text())
    config["replicates"] = 1
    config["experiments"] = {"duckdb_load": {
        "variants": ["load_off"], "warmup_units": 1,
        "params": {"duration": duration, "rows": 100, "resident_tables": 5},
    }}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def start_pipeline(root, workdir, config):
    return subprocess.Popen(
        [sys.executable, "-m", "snakemake", "--snakefile", str(root / "Snakefile"), "--directory", str(workdir),
         "--configfile", str(config), "--cores", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )


def wait_for(path, timeout=60):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.2)


def experiment_processes(workdir) -> list[str]:
    found = subprocess.run(["pgrep", "-af", "leaklab.experiments"], capture_output=True, text=True).stdout
    return [line for line in found.splitlines() if str(workdir) in line]


@pytest.mark.e2e
@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL])
def test_an_interrupted_pipeline_finishes_cleanly_when_run_again(root, tmp_path, how):
    config = small_config(root, tmp_path)
    run_dir = tmp_path / "results" / "runs" / "duckdb_load" / "load_off" / "plain" / "rep1"
    first = start_pipeline(root, tmp_path, config)
    wait_for(run_dir / "marks.jsonl")
    time.sleep(1.0)
    if how == signal.SIGINT:
        os.killpg(first.pid, how)  # Ctrl-C reaches the terminal's whole foreground group
    else:
        os.kill(first.pid, how)  # the pipeline killed outright, its jobs left behind
    first.communicate(timeout=60)
    time.sleep(1.0)
    assert experiment_processes(tmp_path) == []  # the measured process did not outlive its pipeline
    from leaklab.commands.lock import clear_stale

    assert clear_stale(tmp_path) == (how == signal.SIGKILL)  # only a killed pipeline leaves its lock
    again = start_pipeline(root, tmp_path, config)
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err[-3000:]
    runs = pd.read_csv(tmp_path / "results" / "tables" / "runs.csv")
    assert runs["status"].tolist() == ["ok"]
    marks = pd.read_parquet(run_dir / "marks.parquet")
    assert (marks["phase"] == "start").sum() == 1 and marks["t"].is_monotonic_increasing  # one run's marks, not two


@pytest.mark.e2e
def test_a_second_pipeline_on_the_same_results_is_refused(root, tmp_path):
    config = small_config(root, tmp_path, duration="PT4S")
    first = start_pipeline(root, tmp_path, config)
    wait_for(tmp_path / ".snakemake" / "locks", timeout=60)
    time.sleep(1.0)
    from leaklab.commands.lock import clear_stale

    assert not clear_stale(tmp_path)  # the lock of a live pipeline is kept
    second = start_pipeline(root, tmp_path, config)
    _, err = second.communicate(timeout=120)
    assert second.returncode != 0 and "cannot be locked" in err
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-3000:]
    assert pd.read_csv(tmp_path / "results" / "tables" / "runs.csv")["status"].tolist() == ["ok"]


def run_script(script: str, args: str, outdir, **kwargs) -> dict:
    """One run of a Python test program from tests/data as a command experiment."""
    experiments.configure({"experiments": {"cmd": {
        "command": f"{sys.executable} {{script}} {args}", "variants": ["x"], "params": {"script": script}}}})
    try:
        return measure("cmd", "x", outdir, {"script": script}, **kwargs)
    finally:
        experiments.configure({})


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
    text = summary.render(built["runs"], built["growth"], built["controls"], built["attribution"])
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


def massif_run(root, tmp_path) -> tuple:
    """One profiled run and the small config its tables are built with."""
    run = tmp_path / "runs" / "fd_leak" / "leak" / "massif" / "rep1"
    meta = measure("fd_leak", "leak", run, {"rotations": 15, "interval_s": 0.01}, profiler="massif",
                   profiler_settings={"max_snapshots": 20})
    assert meta["profile_status"] == "ok" and "massif.out" in meta["artifacts"]
    return run, yaml.safe_load((root / "tests" / "config.yaml").read_text())


@pytest.mark.slow
def test_profile_files_damaged_after_the_run_are_noticed_at_aggregation(root, tmp_path):
    """A damaged derived table is derived again from massif's own file; a damaged
    massif file makes the run's profile a parse_error (checksums in meta.json)."""
    from leaklab.tables import tables

    run, config = massif_run(root, tmp_path)
    (run / "top_sites.parquet").write_bytes(b"PAR1 not parquet")
    built = tables.build([run], config)
    row = built["runs"].iloc[0]
    assert row["status"] == "ok" and row["profile_status"] == "ok" and "derived again" in row["profile_error"]
    assert len(built["top_sites"]) > 0
    (run / "massif.out").write_bytes((run / "massif.out").read_bytes().replace(b"mem_heap_B=", b"mem_heap_B=1", 1))
    row = tables.build([run], config)["runs"].iloc[0]
    assert row["profile_status"] == "parse_error" and "massif.out: changed since the run" in row["profile_error"]


@pytest.mark.slow
def test_samples_changed_after_the_run_make_it_a_parse_error(root, tmp_path):
    from leaklab.tables import tables

    run, config = massif_run(root, tmp_path)
    samples = pd.read_parquet(run / "samples.parquet")
    samples.assign(rss_bytes=samples["rss_bytes"] * 2).to_parquet(run / "samples.parquet")  # readable, not measured
    row = tables.build([run], config)["runs"].iloc[0]
    assert row["status"] == "parse_error" and "samples.parquet: changed since the run" in row["error"]


def test_previous_tables_stay_until_the_new_ones_are_complete(tmp_path):
    from leaklab.tables import tables

    tables.write_csv({"runs": pd.DataFrame({"status": ["ok"]}), "growth": pd.DataFrame({"x": [1]})}, tmp_path)
    with pytest.raises(AttributeError):
        tables.write_csv({"runs": pd.DataFrame({"status": ["new"]}), "growth": None}, tmp_path)
    assert pd.read_csv(tmp_path / "runs.csv")["status"].tolist() == ["ok"]  # not half replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["growth.csv", "runs.csv"]


def test_every_figure_and_the_summary_cope_with_only_unreadable_runs(root, tmp_path):
    """Every run lost (here: one whose meta.json is garbage): the tables still come out,
    and so do every figure and the summary, from the CSV files as the workflow reads them."""
    from leaklab.report import plots, profile_plots, summary
    from leaklab.tables import tables

    run = tmp_path / "runs" / "fd_leak" / "leak" / "heaptrack" / "rep1"
    run.mkdir(parents=True)
    (run / "meta.json").write_text("{not json")
    config = yaml.safe_load((root / "tests" / "config.yaml").read_text())
    tables.write_csv(tables.build([run], config), tmp_path / "tables")
    read = {name: tables.read_csv_table(tmp_path / "tables" / f"{name}.csv") for name in tables.TABLES}
    assert read["runs"]["status"].tolist() == ["parse_error"]
    figures = tmp_path / "figures"
    figures.mkdir()
    plots.timeline(read["samples"], read["units"], "fd_leak", figures / "timeline.png")
    plots.growth_overview(read["growth"], figures / "growth.png")
    profile_plots.profiler_overhead(read["profiler_overhead"], figures / "overhead.png")
    profile_plots.heap_timelines(read["heap_timeline"], "fd_leak", figures / "heap.png")
    profile_plots.top_sites(read["top_sites"], "fd_leak", figures / "sites.png")
    plots.verdict_matrix(read["variant_verdicts"], figures / "matrix.png")
    plots.attribution_bars(read["attribution"], read["growth"], figures / "attribution.png")
    plots.headline(read["units"], read["growth"], read["variant_verdicts"], "fd_leak", figures / "headline.png")
    assert all(p.stat().st_size > 1000 for p in figures.iterdir()) and len(list(figures.glob("*.png"))) == 8
    assert "parse_error" in summary.render(**{k: read[k] for k in ("runs", "growth", "controls", "attribution",
                                                                  "variant_verdicts", "sensitivity")})


@pytest.mark.e2e
def test_a_rerun_remeasures_a_lost_run_and_a_damaged_one_costs_no_table(root, tmp_path):
    """Deleting one run's samples.parquet makes a plain re-run measure that run again
    and nothing else; changing another's samples after the run makes it a parse_error
    in runs.csv while every table is rebuilt (none deleted) and the pipeline says so."""
    config = {"replicates": 1, "verdict": {}, "limits": {"timeout_s": 60, "mem_cap_mb": 1024},
              "experiments": {"fd_leak": {"variants": ["close", "leak"], "warmup_units": 2,
                                          "params": {"rotations": 12, "interval_s": 0.01}}}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))

    def pipeline():
        return subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(root / "Snakefile"),
                               "--directory", str(tmp_path), "--cores", "2"], capture_output=True, text=True)

    first = pipeline()
    assert first.returncode == 0, first.stderr[-3000:]
    runs_dir = tmp_path / "results" / "runs" / "fd_leak"
    lost, damaged = runs_dir / "close" / "plain" / "rep1", runs_dir / "leak" / "plain" / "rep1"
    kept_meta = (damaged / "meta.json").read_text()
    (lost / "samples.parquet").unlink()
    second = pipeline()
    assert second.returncode == 0, second.stderr[-3000:]
    assert (lost / "samples.parquet").exists() and (damaged / "meta.json").read_text() == kept_meta  # only the lost one
    samples = pd.read_parquet(damaged / "samples.parquet")
    samples.assign(rss_bytes=samples["rss_bytes"] + 1).to_parquet(damaged / "samples.parquet")
    third = pipeline()
    assert third.returncode == 1 and "fd_leak/leak/plain/rep1: parse_error" in third.stderr
    runs = pd.read_csv(tmp_path / "results" / "tables" / "runs.csv").set_index("variant")
    assert runs.loc["close", "status"] == "ok" and runs.loc["leak", "status"] == "parse_error"
    assert all((tmp_path / "results" / "tables" / f"{name}.csv").exists() for name in ("growth", "samples", "units"))
    assert (tmp_path / "results" / "leaklab.duckdb").exists() and (tmp_path / "results" / "summary.md").exists()


@pytest.fixture
def locked_dir(tmp_path_factory):
    """A results directory, readable by every user, with a Snakemake lock in it."""
    import tempfile

    directory = Path(tempfile.mkdtemp(prefix="leaklab-lock-"))
    directory.chmod(0o755)
    (directory / "config.yaml").write_text(yaml.safe_dump(
        {"verdict": {}, "experiments": {"fd_leak": {"variants": ["close"], "params": {"rotations": 8}}}}))
    locks = directory / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    (locks / "0.input.lock").write_text(str(directory) + "\n")
    yield directory
    import shutil

    shutil.rmtree(directory, ignore_errors=True)


def pretend_pipeline(directory) -> subprocess.Popen:
    """A process (run as root) whose command line says snakemake, working in ``directory``."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "snakemake"], cwd=directory)


def lock_as(uid: int, directory) -> subprocess.CompletedProcess:
    return subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                           sys.executable, "-m", "leaklab", "lock", str(directory)], capture_output=True, text=True)


@pytest.mark.slow
def test_the_lock_of_a_live_pipeline_is_kept_and_its_owner_named(locked_dir, capsys):
    from leaklab.commands.lock import clear_stale

    live = pretend_pipeline(locked_dir)
    try:
        time.sleep(0.3)
        assert not clear_stale(locked_dir)
        assert f"a pipeline may still be working there: pid {live.pid} (user root)" in capsys.readouterr().err
    finally:
        live.kill()
        live.wait()
    assert clear_stale(locked_dir) and not (locked_dir / ".snakemake" / "locks" / "0.input.lock").exists()


def test_another_user_never_removes_a_lock_it_cannot_prove_stale(locked_dir):
    """nobody cannot read root's /proc/<pid>/cwd: that process counts as alive.  And a
    lock root owns is not nobody's to judge at all."""
    live = pretend_pipeline(locked_dir)
    try:
        time.sleep(0.3)
        for path in [locked_dir / ".snakemake", *(locked_dir / ".snakemake").rglob("*")]:
            os.chown(path, 65534, 65534)
        kept = lock_as(65534, locked_dir)
        assert kept.returncode == 1, kept.stderr  # kept: `leaklab lock` says so in its status too
        assert f"pid {live.pid} (user root, working directory unreadable)" in kept.stderr
        os.chown(locked_dir / ".snakemake" / "locks" / "0.input.lock", 0, 0)
        refused = lock_as(65534, locked_dir)
        assert "it belongs to root, whose processes nobody cannot all see" in refused.stderr
    finally:
        live.kill()
        live.wait()
    assert (locked_dir / ".snakemake" / "locks" / "0.input.lock").exists()


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
            "experiments.configure({'experiments': {'cmd': {'command': sys.argv[1], 'variants': ['x']}}}); "
            "runner.run(RunSpec(experiments.get('cmd'), 'x', sys.argv[2], timeout_s=120))")
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


# ----------------------------------------------------------------- hardened runs (issue: a program takes the runner down)

def run_program(root, script: str, args: str, outdir, entry: dict | None = None, **kwargs) -> dict:
    """One run of tests/data/``script`` as a command experiment, ``entry`` added to its declaration."""
    path = str(root / "tests" / "data" / script)
    experiments.configure({"experiments": {"cmd": {
        "command": f"{sys.executable} {{script}} {args}", "variants": ["x"], "params": {"script": path},
        **(entry or {})}}})
    try:
        return measure("cmd", "x", outdir, {"script": path}, **kwargs)
    finally:
        experiments.configure({})


@pytest.mark.parametrize("signals", [["SIGUSR1"], ["SIGUSR2", "SIGHUP", "SIGALRM", "SIGPIPE"],
                                     ["SIGINT", "SIGTERM", "SIGQUIT", "SIGTSTP"]])
def test_a_program_that_signals_its_parent_never_stops_the_runner(root, tmp_path, signals):
    """SIGUSR1 to $PPID (a daemon reporting readiness) killed the runner: no meta.json.
    Every catchable signal a program sends its runner is counted and ignored; the run
    goes on to its end and is recorded whole."""
    meta = run_program(root, "signal_parent.py", " ".join(signals), tmp_path, interval_s=0.02)
    assert meta["status"] == "ok" and meta["n_units"] == 3
    assert meta["signals_from_program"] == {name: 1 for name in signals}
    assert json.loads((tmp_path / "meta.json").read_text())["signals_from_program"] == meta["signals_from_program"]
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL and not signal.pthread_sigmask(signal.SIG_BLOCK, [])


def test_a_stop_signal_from_outside_the_tree_still_stops_the_runner(tmp_path):
    """The guard keeps the runner's own stop: SIGTERM from a process that is not the
    measured program (snakemake, a user) ends it, and the program with it."""
    code = ("import sys; from leaklab import experiments; from leaklab.measure import runner; "
            "from leaklab.measure.run_spec import RunSpec; "
            "experiments.configure({'experiments': {'cmd': {'command': 'sleep 61.75', 'variants': ['x']}}}); "
            "runner.run(RunSpec(experiments.get('cmd'), 'x', sys.argv[1], timeout_s=120))")
    doomed = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stderr=subprocess.PIPE, text=True)
    wait_for(tmp_path / "marks.jsonl", timeout=30)
    doomed.send_signal(signal.SIGTERM)
    _, err = doomed.communicate(timeout=30)
    assert doomed.returncode != 0 and "Stopped: SIGTERM from pid" in err
    assert subprocess.run(["pgrep", "-f", "^sleep 61.75$"], capture_output=True).returncode == 1


def test_a_flood_of_output_keeps_every_unit_and_a_bounded_log(root, tmp_path):
    """200 MiB of output in 4 KiB lines with 100 progress lines among them: every unit
    counts (a flood once recorded 2 of 100), run.log keeps its cap (head and tail, the
    bytes dropped said where and in meta.json), and the runner never holds the output:
    its own peak memory stays far below what the program wrote."""
    code = ("import json, resource, sys; from leaklab import experiments; from leaklab.measure import runner; "
            "from leaklab.measure.run_spec import RunSpec; "
            "experiments.configure({'experiments': {'cmd': {'command': sys.argv[1], 'variants': ['x'], "
            "'unit_pattern': r'^step \\d+ done$', 'params': {'mb': 1}}}}); "
            "peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024; "
            "runner.run(RunSpec(experiments.get('cmd'), 'x', sys.argv[2] + '-small', {'mb': 1}, timeout_s=120, log_cap_bytes=2**20)); "
            "before = peak(); "
            "meta = runner.run(RunSpec(experiments.get('cmd'), 'x', sys.argv[2], {'mb': 200}, timeout_s=120, log_cap_bytes=2**20)); "
            "print(json.dumps({'meta': meta, 'growth': peak() - before}))")
    command = f"{sys.executable} {root / 'tests' / 'data' / 'flood.py'} 100 {{mb}}"
    done = subprocess.run([sys.executable, "-c", code, command, str(tmp_path / "run")], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout.splitlines()[-1])
    meta = got["meta"]
    assert meta["status"] == "ok" and meta["n_units"] == 100 and meta["units_may_be_missed"] == 0
    assert meta["output_bytes"] > 200 * 2**20 and meta["log_dropped_bytes"] > 199 * 2**20
    log = (tmp_path / "run" / "run.log").read_bytes()
    assert len(log) < 2**20 + 200 and log.startswith(b"step 1 done\n") and log.endswith(b"x\n")
    assert f"{meta['log_dropped_bytes']} bytes of output dropped here".encode() in log
    assert got["growth"] < 32 * 2**20  # the whole log once took the runner to 1.08 GB


def test_a_catastrophic_unit_pattern_never_holds_the_time_limit(root, tmp_path):
    """``^(a|aa)+$`` on long lines of a's backtracks for ever; the runner once spun in
    re.search past the time limit.  Each line may take the pattern a bounded time: the
    lines it gives up on are counted, the progress lines still count, and the time
    limit stops the run."""
    program = tmp_path / "prog.sh"
    program.write_text("while true; do echo done; printf 'a%.0s' $(seq 60); echo '!'; done\n")
    started = time.monotonic()
    meta = run_program(root, "signal_parent.py", "", tmp_path / "run", timeout_s=4,
                       entry={"command": f"sh {program}", "unit_pattern": r"^(a|aa)+$|^done$"})
    assert meta["status"] == "timeout" and time.monotonic() - started < 60  # it once ran on past 22 s of 5
    assert meta["pattern_timeouts"] >= 2 and meta["units_may_be_missed"] >= meta["pattern_timeouts"]
    assert meta["n_units"] >= 2
    assert any("unit_pattern gave up" in e for e in meta["bad_unit_line_examples"])


def test_shared_pages_of_a_preforked_program_count_once_against_the_cap(root, tmp_path):
    """A parent of 200 MiB with 6 workers sharing its pages: summed RSS is about 1.4 GiB,
    what it holds about 200 MiB.  Under a 1 GiB cap it runs to its end (it was once
    ``capped`` at 1,024 MB for 315 MB held)."""
    meta = run_program(root, "preforked.py", "200 6 5", tmp_path, mem_cap_bytes=2**30, timeout_s=120,
                       interval_s=0.05)
    samples = pd.read_parquet(tmp_path / "samples.parquet")
    assert samples["rss_bytes"].max() > 1.2 * 2**30  # the summed RSS would have capped it
    assert meta["status"] == "ok" and meta["n_units"] == 5, meta["log_tail"]
    held = samples["cgroup_bytes"].dropna().max() if samples["cgroup_bytes"].notna().any() else samples["pss_bytes"].max()
    assert held < 400 * 2**20


def test_a_unit_of_a_few_milliseconds_gets_its_own_reading(root, tmp_path):
    """40 units of ~5 ms keeping 1 MiB each, sampled every second: each unit line gets
    its own reading of the process, so the growth per unit is measured (a C extension's
    leak of 1.1 MiB/batch was once `settling` on 2 samples for 40 units)."""
    meta = run_program(root, "fast_units.py", "40 1024 5", tmp_path, interval_s=1.0)
    assert meta["status"] == "ok" and meta["n_units"] == 40
    assert meta["units_sharing_reading"] <= 2
    from leaklab.model import growth

    series = growth.unit_series(pd.read_parquet(tmp_path / "samples.parquet"),
                                pd.read_parquet(tmp_path / "marks.parquet"))
    units = series[series["unit"] >= 1]
    assert units["rss_bytes"].nunique() > 35
    assert growth.slope_per_unit(units["unit"], units["rss_bytes"]) == pytest.approx(2**20, rel=0.1)


def test_units_faster_than_readings_are_counted_and_their_verdict_says_so(root, tmp_path):
    """Units far faster than the reading rate's bound share readings: the run says how
    many (meta.json, runs table), and a decisive verdict on them says so in its reason."""
    from leaklab.tables import tables

    run = tmp_path / "runs" / "cmd" / "x" / "plain" / "rep1"
    meta = run_program(root, "fast_units.py", "3000 64 0", run, interval_s=1.0)
    assert meta["status"] == "ok" and meta["n_units"] == 3000
    assert meta["units_sharing_reading"] > 100
    script = str(root / "tests" / "data" / "fast_units.py")
    config = {"verdict": {}, "experiments": {"cmd": {"command": f"{sys.executable} {{script}} 3000 64 0",
                                                     "variants": ["x"], "params": {"script": script}}}}
    built = tables.build([run], config)
    assert built["runs"]["units_sharing_reading"].tolist() == [meta["units_sharing_reading"]]
    rss = built["growth"].query("metric == 'rss_bytes'").iloc[0]
    assert rss["verdict"] != "inconclusive" and rss["stale_reading_share"] > 0.03
    assert f"stale readings: {meta['units_sharing_reading']} of 3000 units shared a reading" in rss["verdict_reason"]


def command_pipeline_config(root, tmp_path, experiments_block: dict) -> Path:
    """tests/config.yaml with only the given command experiments (one replicate, plain)."""
    config = yaml.safe_load((root / "tests" / "config.yaml").read_text())
    config.update(replicates=1, experiments=experiments_block)
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.e2e
def test_a_program_signalling_its_parent_costs_no_run_and_no_table(root, tmp_path):
    """Through the whole pipeline: one experiment's program sends SIGUSR1, SIGHUP, SIGINT
    and SIGTERM to its parent; it is recorded, and so is the other experiment, and the
    tables and the summary are written (they once were lost for every experiment)."""
    data = root / "tests" / "data"
    config = command_pipeline_config(root, tmp_path, {
        "readiness": {"command": f"{sys.executable} {data / 'signal_parent.py'} SIGUSR1 SIGHUP SIGINT SIGTERM",
                      "variants": ["x"], "warmup_units": 0},
        "healthy": {"command": f"{sys.executable} {data / 'fast_units.py'} 20 64 5", "variants": ["x"],
                    "warmup_units": 0},
    })
    done = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(root / "Snakefile"),
                           "--directory", str(tmp_path), "--configfile", str(config), "--cores", "2"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = pd.read_csv(tmp_path / "results" / "tables" / "runs.csv").set_index("experiment")
    assert runs.loc["readiness", "status"] == "ok" and runs.loc["readiness", "n_units"] == 3
    assert runs.loc["healthy", "status"] == "ok" and runs.loc["healthy", "n_units"] == 20
    meta = json.loads((tmp_path / "results" / "runs" / "readiness" / "x" / "plain" / "rep1" / "meta.json").read_text())
    assert meta["signals_from_program"] == {"SIGUSR1": 1, "SIGHUP": 1, "SIGINT": 1, "SIGTERM": 1}
    assert (tmp_path / "results" / "summary.md").exists()


@pytest.mark.e2e
def test_a_runner_killed_at_start_up_never_runs_its_program(root, tmp_path):
    """kill -9 of snakemake the moment a run job starts (its log appears, before the
    runner's slow imports): the job dies with its pipeline and its program never starts
    (the die-with-parent signal was once armed only after the imports)."""
    marker = tmp_path / "program-started"
    config = command_pipeline_config(root, tmp_path, {
        "late": {"command": f"sh -c 'touch {marker}; sleep 30'", "variants": ["x"], "warmup_units": 0}})
    pipeline = start_pipeline(root, tmp_path, config)
    job_log = tmp_path / "results" / "logs" / "run" / "late" / "x" / "plain" / "rep1.log"
    deadline = time.monotonic() + 120
    while not job_log.exists():
        assert time.monotonic() < deadline and pipeline.poll() is None, "the run job never started"
        time.sleep(0.01)
    os.kill(pipeline.pid, signal.SIGKILL)
    pipeline.communicate(timeout=60)
    time.sleep(5.0)  # a runner that survived would have started its program by now
    assert not marker.exists()
    assert subprocess.run(["pgrep", "-f", str(marker)], capture_output=True).returncode == 1
