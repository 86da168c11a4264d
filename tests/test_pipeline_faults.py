"""Faults of the pipeline tried for real: interrupted and concurrent pipelines, its lock,
and results damaged after the runs (lost or changed files, unreadable runs)."""

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
from test_workflow import job_counts


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


def start_pipeline(root, workdir, config, *targets):
    return subprocess.Popen(
        [sys.executable, "-m", "snakemake", "--snakefile", str(root / "Snakefile"), "--directory", str(workdir),
         "--configfile", str(config), "--cores", "2", *targets],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )


def experiment_processes(workdir) -> list[str]:
    found = subprocess.run(["pgrep", "-af", "leaklab.experiments"], capture_output=True, text=True).stdout
    return [line for line in found.splitlines() if str(workdir) in line]


@pytest.mark.e2e
def test_an_interrupted_pipeline_finishes_cleanly_when_run_again(root, tmp_path):
    """Ctrl-C, then kill -9 of the pipeline that ran again, each while the run measures;
    the third pipeline finishes that run once, up to the summary (the figures come after
    what is checked here).  One chain tries both interruptions: the pipeline after the
    Ctrl-C must start and measure again for the kill to land."""
    config = small_config(root, tmp_path)
    run_dir = tmp_path / "results" / "runs" / "duckdb_load" / "load_off" / "plain" / "rep1"
    from leaklab.commands.lock import clear_stale

    for how in (signal.SIGINT, signal.SIGKILL):
        (run_dir / "marks.jsonl").unlink(missing_ok=True)  # the next pipeline measures from the start
        pipeline = start_pipeline(root, tmp_path, config)
        wait_for(run_dir / "marks.jsonl")
        time.sleep(1.0)
        if how == signal.SIGINT:
            os.killpg(pipeline.pid, how)  # Ctrl-C reaches the terminal's whole foreground group
        else:
            os.kill(pipeline.pid, how)  # the pipeline killed outright, its jobs left behind
        pipeline.communicate(timeout=60)
        time.sleep(1.0)
        assert experiment_processes(tmp_path) == [], how  # the measured process did not outlive its pipeline
        assert not (run_dir / "meta.json").exists(), how  # interrupted while it measured
        assert clear_stale(tmp_path) == (how == signal.SIGKILL)  # only a killed pipeline leaves its lock
    again = start_pipeline(root, tmp_path, config, "results/summary.md")
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err[-3000:]
    runs = pd.read_csv(tmp_path / "results" / "tables" / "runs.csv")
    assert runs["status"].tolist() == ["ok"]
    marks = pd.read_parquet(run_dir / "marks.parquet")
    assert (marks["phase"] == "start").sum() == 1 and marks["t"].is_monotonic_increasing  # one run's marks, not two


@pytest.mark.e2e
def test_a_second_pipeline_on_the_same_results_is_refused(root, tmp_path):
    """The first pipeline, refusing the second, goes on to its summary (its figures say nothing here)."""
    config = small_config(root, tmp_path, duration="PT4S")
    first = start_pipeline(root, tmp_path, config, "results/summary.md")
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
    from leaklab import experiments
    from leaklab.report import attribution_plots, plots, profile_plots, summary, timeline_plots
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
    specs = experiments.specs(config)
    timeline_plots.timeline(read["samples"], read["units"], "fd_leak", figures / "timeline.png", specs=specs)
    plots.growth_overview(read["growth"], figures / "growth.png", specs=specs)
    profile_plots.profiler_overhead(read["profiler_overhead"], figures / "overhead.png", specs=specs)
    profile_plots.heap_timelines(read["heap_timeline"], "fd_leak", figures / "heap.png", specs=specs)
    profile_plots.top_sites(read["top_sites"], "fd_leak", figures / "sites.png", specs=specs)
    plots.verdict_matrix(read["variant_verdicts"], figures / "matrix.png", specs=specs)
    attribution_plots.attribution_bars(read["attribution"], read["growth"], figures / "attribution.png", specs=specs)
    plots.headline(read["units"], read["growth"], read["variant_verdicts"], "fd_leak", figures / "headline.png",
                   specs=specs)
    assert all(p.stat().st_size > 1000 for p in figures.iterdir()) and len(list(figures.glob("*.png"))) == 8
    assert "parse_error" in summary.render(**{k: read[k] for k in ("runs", "growth", "controls", "attribution",
                                                                  "variant_verdicts", "sensitivity")}, specs=specs)


@pytest.mark.e2e
def test_a_rerun_remeasures_a_lost_run_and_a_damaged_one_costs_no_table(root, tmp_path):
    """Deleting one run's samples.parquet makes a plain re-run measure that run again
    and nothing else; changing another's samples after the run makes it a parse_error
    in runs.csv while every table is rebuilt (none deleted) and the pipeline says so.
    One re-run sees both (the lost run measured again, the damaged one read, not
    measured), where a re-run each cost a third pipeline."""
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
    lost_meta = (lost / "meta.json").read_text()
    (lost / "samples.parquet").unlink()
    samples = pd.read_parquet(damaged / "samples.parquet")
    samples.assign(rss_bytes=samples["rss_bytes"] + 1).to_parquet(damaged / "samples.parquet")
    second = pipeline()
    assert second.returncode == 1 and "fd_leak/leak/plain/rep1: parse_error" in second.stderr
    # only the lost run was measured again: a new meta.json beside it, the damaged one's as it was
    assert job_counts(second.stdout + second.stderr)["run_experiment"] == 1
    assert (lost / "samples.parquet").exists() and (lost / "meta.json").read_text() != lost_meta
    assert (damaged / "meta.json").read_text() == kept_meta
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
