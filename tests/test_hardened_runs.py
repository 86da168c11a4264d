"""Hardened runs: a measured program never takes its runner down, whatever it does
(signals its parent, floods its output, writes a catastrophic pattern, shares pages,
reports units faster than they can be read)."""

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

from test_faults import measure, wait_for
from test_pipeline_faults import start_pipeline


def run_program(root, script: str, args: str, outdir, entry: dict | None = None, **kwargs) -> dict:
    """One run of tests/data/``script`` as a command experiment, ``entry`` added to its declaration."""
    path = str(root / "tests" / "data" / script)
    config = {"experiments": {"cmd": {
        "command": f"{sys.executable} {{script}} {args}", "variants": ["x"], "params": {"script": path},
        **(entry or {})}}}
    return measure("cmd", "x", outdir, {"script": path}, config, **kwargs)


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
            "spec = experiments.specs({'experiments': {'cmd': {'command': 'sleep 61.75', 'variants': ['x']}}})['cmd']; "
            "runner.run(RunSpec(spec, 'x', sys.argv[1], timeout_s=120))")
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
            "spec = experiments.specs({'experiments': {'cmd': {'command': sys.argv[1], 'variants': ['x'], "
            "'unit_pattern': r'^step \\d+ done$', 'params': {'mb': 1}}}})['cmd']; "
            "peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024; "
            "runner.run(RunSpec(spec, 'x', sys.argv[2] + '-small', {'mb': 1}, timeout_s=120, log_cap_bytes=2**20)); "
            "before = peak(); "
            "meta = runner.run(RunSpec(spec, 'x', sys.argv[2], {'mb': 200}, timeout_s=120, log_cap_bytes=2**20)); "
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
    assert meta["status"] == "timeout" and time.monotonic() - started < 30  # it once ran on past 22 s of 4, then 54
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
    """Through the pipeline: one experiment's program sends SIGUSR1, SIGHUP, SIGINT
    and SIGTERM to its parent; it is recorded, and so is the other experiment, and the
    tables and the summary are written (they once were lost for every experiment).  The
    pipeline stops at the summary: the figures come after the tables and say nothing here."""
    data = root / "tests" / "data"
    config = command_pipeline_config(root, tmp_path, {
        "readiness": {"command": f"{sys.executable} {data / 'signal_parent.py'} SIGUSR1 SIGHUP SIGINT SIGTERM",
                      "variants": ["x"], "warmup_units": 0},
        "healthy": {"command": f"{sys.executable} {data / 'fast_units.py'} 20 64 5", "variants": ["x"],
                    "warmup_units": 0},
    })
    done = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(root / "Snakefile"),
                           "--directory", str(tmp_path), "--configfile", str(config), "--cores", "2",
                           "results/summary.md"], capture_output=True, text=True, timeout=600)
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
