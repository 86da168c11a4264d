"""The pipeline around the runs, attacked as a hostile user would: a setup that fails,
hangs or leaves a daemon, values that look like shell syntax, damaged run files and
stores, configs outside the project, re-runs after a kill.  Real programs, real
Snakemake runs on small configs."""

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from leaklab.process import own_program
from leaklab.tables import tables
from measuring import measure

PROGRAM = r"""
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {  /* prog ITERATIONS LEAK_BYTES */
    int n = atoi(argv[1]); long leak = atol(argv[2]);
    for (int i = 1; i <= n; i++) {
        if (leak) { char *p = malloc(leak); for (long j = 0; j < leak; j += 4096) p[j] = 1; }
        usleep(20000); printf("Iteration %d finished\n", i); fflush(stdout);
    }
    return 0;
}
"""


def leaklab(*args, cwd=None, timeout=900):
    return subprocess.run([sys.executable, "-m", "leaklab", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout)


def snapshot(directory: Path) -> dict[str, str]:
    """Every file under ``directory`` with its sha256: what a reader must leave as it was."""
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def processes_with(marker: str) -> list[str]:
    found = subprocess.run(["pgrep", "-af", marker], capture_output=True, text=True).stdout
    return [line for line in found.splitlines() if "pgrep" not in line]


def snakemake_pids(workdir) -> list[int]:
    """The pipeline's own snakemake process (not its jobs, whose command lines name .snakemake/)."""
    found = subprocess.run(["pgrep", "-f", "--", f"-m snakemake .*{workdir}"], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


# ---------------------------------------------------------------- values never become syntax


@pytest.mark.parametrize("value", ["it's", "; touch {tmp}/INJECTED", "$(touch {tmp}/INJECTED)", "a b\tc", "`id`"])
def test_a_substituted_value_reaches_a_shell_command_as_itself(tmp_path, value):
    value = value.format(tmp=tmp_path)
    cmd = own_program.argv("printf '%s\\n' {note} > {out}", {"note": value, "out": str(tmp_path / "out")})
    assert cmd[:2] == ["/bin/sh", "-c"]
    subprocess.run(cmd, check=True, cwd=tmp_path)
    assert (tmp_path / "out").read_text() == value + "\n"
    assert not (tmp_path / "INJECTED").exists()


def test_a_workdir_file_outside_the_project_is_refused_before_any_job(root, tmp_path):
    for path, shown in (("/etc/shadow", "/etc/shadow"), ("../secret", "../secret"), ("{up}/x", "{up}/x")):
        config = tmp_path / "exp.yaml"
        config.write_text(yaml.safe_dump({"experiments": {"mine": {
            "command": "true", "variants": ["x"], "params": {"up": ".."}, "workdir_files": [path]}}}))
        done = leaklab("run", "--configfile", str(config), "--directory", str(tmp_path / "D"), "-n")
        assert done.returncode != 0
        assert f"experiments.mine.workdir_files[0]: {shown!r} leaves the project" in done.stdout + done.stderr


def test_a_workdir_file_reached_through_a_link_out_of_the_project_is_refused(tmp_path):
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "data").symlink_to("/etc/hostname")
    with pytest.raises(ValueError, match="outside {project}"):
        own_program.stage_workdir(["data"], {"project": str(tmp_path / "project")}, tmp_path)


# ---------------------------------------------------------------- configuration files


def test_config_files_missing_or_broken_are_one_line_naming_file_and_line(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("experiments:\n  mine:\n    command: [unclosed\n")
    done = leaklab("run", "--configfile", str(broken), "--directory", str(tmp_path), "-n")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert f"config: {broken}:4:" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    done = leaklab("run", "--configfile", str(tmp_path / "gone.yaml"), "--directory", str(tmp_path), "-n")
    assert done.returncode == 1
    assert done.stderr.strip() == f"leaklab: config: {tmp_path / 'gone.yaml'}: no such config file"


def test_nested_command_line_values_are_typed_as_in_a_file(root, tmp_path):
    done = leaklab("run", "--configfile", str(root / "tests" / "config.yaml"), "--directory", str(tmp_path),
                   "--config", "limits={mem_cap_mb: 2048, timeout_s: 90}", "only=[fd_leak]", "-n")
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_damaged_history_store_is_one_line(tmp_path):
    from leaklab import history

    store = tmp_path / "history.duckdb"
    store.write_bytes(b"not a database" * 1000)
    for attempt in (lambda: history.load(store),
                    lambda: history.append_night(store, {"night_id": "n", "date": "2026-12-05"}, {})):
        with pytest.raises(history.StoreError) as caught:
            attempt()
        assert "\n" not in str(caught.value) and str(store) in str(caught.value)


# ---------------------------------------------------------------- locks and directories


def test_lock_exits_1_when_it_keeps_a_live_pipelines_lock(tmp_path):
    locks = tmp_path / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    (locks / "0.input.lock").write_text(str(tmp_path) + "\n")
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "snakemake"], cwd=tmp_path)
    try:
        time.sleep(0.3)
        kept = leaklab("lock", str(tmp_path))
        assert kept.returncode == 1 and "keeping the lock" in kept.stderr
    finally:
        live.kill()
        live.wait()
    assert leaklab("lock", str(tmp_path)).returncode == 0 and not list(locks.iterdir())


@pytest.mark.e2e
def test_a_config_outside_the_project_runs_again_after_kill_9(tmp_path):
    """The directory has no config.yaml: the unlock must not need one."""
    (tmp_path / "prog.c").write_text(PROGRAM)
    config = tmp_path / "exp.yaml"
    config.write_text(yaml.safe_dump({"replicates": 1, "experiments": {"slow": {
        "setup": "cc -o {setup_dir}/prog {project}/prog.c", "command": "{setup_dir}/prog {n} 0",
        "variants": ["x"], "params": {"n": 400}, "unit": "iteration", "unit_pattern": r"Iteration \d+ finished",
        "profilers": ["plain"]}}}))
    workdir = tmp_path / "D"
    target = "results/runs/slow/x/plain/rep1/meta.json"
    first = subprocess.Popen([sys.executable, "-m", "leaklab", "run", "--configfile", str(config), "--directory",
                              str(workdir), "--cores", "2", target], start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (workdir / "results" / "runs" / "slow" / "x" / "plain" / "rep1" / "marks.jsonl").exists():
        assert time.monotonic() < deadline and first.poll() is None
        time.sleep(0.2)
    for pid in snakemake_pids(workdir):
        os.kill(pid, signal.SIGKILL)
    first.wait(timeout=60)
    assert list((workdir / ".snakemake" / "locks").iterdir())  # the kill left its lock
    time.sleep(1.0)
    again = leaklab("run", "--configfile", str(config), "--directory", str(workdir), "--cores", "2", target)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "removing the stale lock" in again.stderr


# ---------------------------------------------------------------- nightly reads its own directory


def test_nightly_never_reports_an_earlier_night_or_another_directory(root, tmp_path):
    """-d DIR with a config that stops the pipeline before any job: the night.json and
    regressions.csv left in DIR by an earlier night are not tonight's."""
    from leaklab.commands import pipeline

    for argv in (["-d", "X"], ["-dX"], ["--directory", "X"], ["--directory=X"]):
        assert pipeline.options([*argv, "-n"]).directory == Path("X")
    (tmp_path / "results" / "nightly").mkdir(parents=True)
    (tmp_path / "results" / "nightly" / "night.json").write_text(
        '{"night_id": "old", "recorded_now": true, "store": "s"}')
    (tmp_path / "results" / "tables").mkdir()
    (tmp_path / "results" / "tables" / "regressions.csv").write_text("counts\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"experiments": {"plantd": {"variants": ["x"]}}}))
    old = time.time() - 3600
    for path in (tmp_path / "results").rglob("*.*"):
        os.utime(path, (old, old))
    done = leaklab("nightly", "-d", str(tmp_path), "--configfile", str(bad), cwd=root)
    assert done.returncode == 1
    assert "night old" not in done.stderr and "no regression" not in done.stderr
    assert "tonight was not compared nor recorded" in done.stderr


# ---------------------------------------------------------------- the aggregation only reads runs


@pytest.mark.slow
def test_a_repaired_profile_is_never_thrown_away_and_the_run_is_left_as_it_was(root, tmp_path):
    """Damage heaptrack's top_sites.parquet: every aggregation derives it again aside,
    none writes into the run directory, so the next one still trusts heaptrack's files."""
    subprocess.run(["cc", "-O0", "-g", "-o", str(tmp_path / "prog"), "-x", "c", "-"], input=PROGRAM, text=True,
                   check=True)
    declared = {"experiments": {"mine": {
        "command": f"{tmp_path / 'prog'} 8 262144", "variants": ["x"], "unit": "iteration",
        "unit_pattern": r"Iteration \d+ finished"}}}
    run = tmp_path / "runs" / "mine" / "x" / "heaptrack" / "rep1"
    meta = measure("mine", "x", run, config=declared, profiler="heaptrack")
    assert meta["profile_status"] == "ok", meta.get("profile_error")
    config = {"verdict": {}, "experiments": {"mine": {"command": "x", "variants": ["x"], "unit": "iteration"}}}
    (run / "top_sites.parquet").write_bytes(b"PAR1 damaged")
    before = snapshot(run)
    for _ in range(2):  # the second aggregation is the one that used to lose top_sites
        built = tables.build([run], config)
        row = built["runs"].iloc[0]
        assert row["status"] == "ok" and row["profile_status"] == "ok", row["profile_error"]
        assert "derived again" in row["profile_error"] and len(built["top_sites"]) > 0
        assert snapshot(run) == before
    data = next(run.glob("heaptrack*.zst"))
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    row = tables.build([run], config)["runs"].iloc[0]
    assert row["profile_status"] == "parse_error" and data.name in row["profile_error"]
    assert "changed since the run" in row["profile_error"]


def test_counts_stay_integers_when_a_run_is_unreadable(root, tmp_path):
    run = tmp_path / "runs" / "planted" / "zero" / "plain" / "rep1"
    measure("planted", "zero", run, {"steps": 4, "interval_s": 0.01})
    lost = tmp_path / "runs" / "planted" / "zero" / "plain" / "rep2"
    lost.mkdir(parents=True)
    (lost / "meta.json").write_text("{not json")
    config = yaml.safe_load((root / "tests" / "config.yaml").read_text())
    built = tables.build([run, lost], config)
    assert list(built["runs"]["status"]) == ["ok", "parse_error"]
    for column in ("exit_code", "n_units"):
        assert str(built["runs"][column].dtype) == "Int64"
    tables.write_csv(built, tmp_path / "tables")
    import csv

    with open(tmp_path / "tables" / "runs.csv", newline="") as f:
        ok, lost_row = csv.DictReader(f)
    assert (ok["exit_code"], ok["n_units"], lost_row["exit_code"]) == ("0", "4", "")


# ---------------------------------------------------------------- a setup is contained, and costs only its own runs


@pytest.fixture(scope="module")
def two_experiments(tmp_path_factory):
    """``good`` (its setup leaves a daemon behind, its values look like shell syntax) and
    ``broken`` (its setup fails until the file it reads is fixed), one pipeline run."""
    project = tmp_path_factory.mktemp("project")
    (project / "prog.c").write_text(PROGRAM)
    (project / "broken_setup.sh").write_text("exit 3\n")
    note = f"it's ; touch {project}/INJECTED"
    config = project / "exp.yaml"
    marker = f"sleep 8{os.getpid()}"  # the daemon, found by its unusual argument
    config.write_text(yaml.safe_dump({"replicates": 1, "limits": {"timeout_s": 60, "mem_cap_mb": 512}, "experiments": {
        "good": {"setup": "cc -O0 -o {setup_dir}/prog {project}/prog.c && echo {note} && "
                          f"(setsid sh -c '{marker}' &)",
                 "command": "{setup_dir}/prog {iterations} {leak} 2>&1 # {note}",
                 "variants": {"clean": {"params": {"leak": 0}}, "leaky": {"params": {"leak": 4194304}}},
                 "params": {"iterations": 10, "note": note}, "unit": "iteration",
                 "unit_pattern": r"Iteration \d+ finished", "warmup_units": 2, "profilers": ["plain"]},
        "broken": {"setup": "sh {project}/broken_setup.sh && cc -o {setup_dir}/prog {project}/prog.c",
                   "command": "{setup_dir}/prog 10 0",
                   "variants": {"x": {}, "fails": {"command": "{setup_dir}/prog 3 0; exit 4"}}, "unit": "iteration",
                   "unit_pattern": r"Iteration \d+ finished", "warmup_units": 2, "profilers": ["plain"]}}}))
    workdir = project / "D"

    def pipeline(*extra):
        return leaklab("run", "--configfile", str(config), "--directory", str(workdir), "--cores", "2", *extra)

    first = pipeline()
    return project, workdir, marker, pipeline, first


def runs_of(workdir) -> dict:
    runs = pd.read_csv(workdir / "results" / "tables" / "runs.csv")
    return {f"{r.experiment}/{r.variant}": r.status for r in runs.itertuples()}


@pytest.mark.e2e
def test_a_failed_setup_costs_no_other_experiment_its_tables(two_experiments):
    project, workdir, marker, _, first = two_experiments
    assert first.returncode == 1, first.stderr[-3000:]
    assert runs_of(workdir) == {"good/clean": "ok", "good/leaky": "ok", "broken/x": "setup_failed",
                                "broken/fails": "setup_failed"}
    assert "broken/x/plain/rep1: setup_failed" in first.stderr
    results = workdir / "results"
    verdicts = pd.read_csv(results / "tables" / "variant_verdicts.csv")
    assert set(verdicts.loc[verdicts["experiment"] == "good", "variant"]) == {"clean", "leaky"}
    growth = pd.read_csv(results / "tables" / "growth.csv").query("experiment == 'good' and metric == 'rss_bytes'")
    assert growth.set_index("variant").loc["leaky", "growth_per_unit"] > 2 * 2**20  # 4 MiB kept per iteration
    assert (results / "summary.md").exists() and (results / "figures" / "headline_good.png").exists()
    assert "setup failed: exited 3" in (results / "runs" / "broken" / "x" / "plain" / "rep1" / "meta.json").read_text()


@pytest.mark.e2e
def test_a_setup_leaves_no_daemon_and_its_values_run_nothing(two_experiments):
    project, workdir, marker, _, _ = two_experiments
    assert processes_with(marker) == []
    assert not (project / "INJECTED").exists()
    assert f"it's ; touch {project}/INJECTED" in (workdir / "results" / "logs" / "setup_good.log").read_text()


@pytest.mark.e2e
def test_every_rerun_says_the_same_and_retries_what_was_not_the_programs_doing(two_experiments):
    project, workdir, _, pipeline, _ = two_experiments
    # the two re-runs before the fix stop at the summary: what they say comes from the
    # setup, the runs and the tables; the figures are drawn by the first and the last run
    again = pipeline("results/summary.md")  # the setup is retried (and fails again): same status
    assert again.returncode == 1 and "broken/x/plain/rep1: setup_failed" in again.stderr
    assert "results/commands/broken/setup.json" in again.stderr  # said what it did again
    good = workdir / "results" / "runs" / "good" / "clean" / "plain" / "rep1"
    samples = pd.read_parquet(good / "samples.parquet")
    samples.assign(rss_bytes=samples["rss_bytes"] + 1).to_parquet(good / "samples.parquet")
    (project / "broken_setup.sh").write_text("exit 0\n")  # the user fixes their build
    aggregated = pipeline("results/summary.md", "--forcerun", "aggregate")
    assert aggregated.returncode == 1 and "good/clean/plain/rep1: parse_error" in aggregated.stderr
    meta_before = (good / "meta.json").read_text()
    fixed = pipeline()  # re-measures the parse_error run; the fixed setup's runs are measured
    assert fixed.returncode == 1 and "broken/fails/plain/rep1: failed" in fixed.stderr
    assert (good / "meta.json").read_text() != meta_before
    assert runs_of(workdir) == {"good/clean": "ok", "good/leaky": "ok", "broken/x": "ok", "broken/fails": "failed"}
    for _ in range(2):  # nothing left to do: the failed run (the program's own outcome) still fails the pipeline
        noop = pipeline()
        assert noop.returncode == 1 and "Nothing to be done" in noop.stdout + noop.stderr
        assert "broken/fails/plain/rep1: failed" in noop.stderr


# ---------------------------------------------------------------- a hung setup, a full disk


def run_pipeline(config: dict, workdir: Path, *targets: str) -> subprocess.Popen:
    path = workdir.parent / f"{workdir.name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return subprocess.Popen([sys.executable, "-m", "leaklab", "run", "--configfile", str(path), "--directory",
                             str(workdir), "--cores", "2", *targets], start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.e2e
def test_a_hung_setup_honours_sigterm_and_its_daemon_goes_with_it(tmp_path):
    marker = f"sleep 9{os.getpid()}"  # the step and its daemon, found by their unusual argument
    pipeline = run_pipeline({"replicates": 1, "experiments": {"hung": {
        "setup": f"(setsid sh -c '{marker}' &); trap '' TERM INT; {marker}",
        "command": "true", "variants": ["x"], "unit_source": "seconds", "profilers": ["plain"]}}},
        tmp_path / "D", "results/commands/hung/setup.json")
    deadline = time.monotonic() + 120
    while len(processes_with(marker)) < 2:
        assert time.monotonic() < deadline and pipeline.poll() is None, pipeline.communicate()[1][-2000:]
        time.sleep(0.2)
    for pid in snakemake_pids(tmp_path):
        os.kill(pid, signal.SIGTERM)
    pipeline.communicate(timeout=60)
    time.sleep(1.0)
    assert processes_with(marker) == []


@pytest.mark.e2e
def test_a_setup_past_its_time_limit_is_stopped_and_recorded(tmp_path):
    pipeline = run_pipeline({"replicates": 1, "limits": {"timeout_s": 3, "mem_cap_mb": 256}, "experiments": {"slow": {
        "setup": "sleep 300", "command": "true", "variants": ["x"], "unit_source": "seconds",
        "profilers": ["plain"]}}}, tmp_path / "D", "results/runs/slow/x/plain/rep1/meta.json")
    _, err = pipeline.communicate(timeout=120)
    assert pipeline.returncode == 0, err[-3000:]
    record = yaml.safe_load((tmp_path / "D" / "results" / "commands" / "slow" / "setup.json").read_text())
    assert record["status"] == "timeout" and "limits.timeout_s" in record["reason"]
    run = tmp_path / "D" / "results" / "runs" / "slow" / "x" / "plain" / "rep1"
    meta = yaml.safe_load((run / "meta.json").read_text())
    assert meta["status"] == "setup_failed"


@pytest.mark.e2e
def test_a_disk_filled_by_the_program_leaves_a_status_and_a_job_log(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(disk)]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        pipeline = run_pipeline({"replicates": 1, "limits": {"timeout_s": 60, "mem_cap_mb": 512}, "experiments": {
            "filler": {"command": "sh -c 'echo Iteration 1 finished; head -c 200000000 /dev/zero > big; "
                                  "echo Iteration 2 finished'",
                       "variants": ["x"], "unit": "iteration", "unit_pattern": r"Iteration \d+ finished",
                       "profilers": ["plain"]}}}, disk / "D", "results/runs/filler/x/plain/rep1/meta.json")
        _, err = pipeline.communicate(timeout=300)
        assert pipeline.returncode == 0, err[-3000:]
        results = disk / "D" / "results"
        meta = yaml.safe_load((results / "runs" / "filler" / "x" / "plain" / "rep1" / "meta.json").read_text())
        assert meta["status"] == "runner_error" and "filesystem is full" in meta["error"]
        assert "runner_error" in (results / "logs" / "run" / "filler" / "x" / "plain" / "rep1.log").read_text()
    finally:
        subprocess.run(["umount", "-l", str(disk)])
