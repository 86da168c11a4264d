"""Faults tried for real: crashes, broken profiler output, interrupted and concurrent pipelines."""

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import yaml

from leaklab import experiments, profilers, runner


def run_command(command: str, outdir) -> dict:
    """One run of a command experiment declared on the spot (variant ``x``)."""
    experiments.configure({"experiments": {"cmd": {"command": command, "variants": ["x"]}}})
    try:
        return runner.run("cmd", "x", outdir)
    finally:
        experiments.configure({})


def test_a_crashing_program_is_recorded_with_its_signal(tmp_path):
    meta = run_command("sh -c 'kill -SEGV $$'", tmp_path)
    assert meta["status"] == "crashed" and meta["exit_code"] == -signal.SIGSEGV


def test_a_program_that_cannot_start_is_a_failed_run(tmp_path):
    meta = run_command("/no/such/program {variant}", tmp_path)
    assert meta["status"] == "failed" and meta["exit_code"] == 127
    assert "cannot start" in (tmp_path / "run.log").read_text()


@pytest.mark.parametrize("damage", ["truncate", "garbage", "delete"])
def test_broken_profiler_output_is_a_recorded_parse_error(tmp_path, damage):
    meta = runner.run("fd_leak", "leak", tmp_path, {"rotations": 15, "interval_s": 0.01}, profiler="massif",
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
    status, error = runner.collect_profile(profilers.load("massif"), tmp_path, marks)
    assert status == "parse_error" and "massif.out" in error


def small_config(root, tmp_path, duration="PT6S"):
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
    from leaklab.lock import clear_stale

    assert clear_stale(tmp_path) == (how == signal.SIGKILL)  # only a killed pipeline leaves its lock
    again = start_pipeline(root, tmp_path, config)
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err[-3000:]
    runs = pd.read_csv(tmp_path / "results" / "tables" / "runs.csv")
    assert runs["status"].tolist() == ["ok"]
    marks = pd.read_parquet(run_dir / "marks.parquet")
    assert marks["unit"].max() == 5 and marks["t"].is_monotonic_increasing  # one run's marks, not two


@pytest.mark.e2e
def test_a_second_pipeline_on_the_same_results_is_refused(root, tmp_path):
    config = small_config(root, tmp_path, duration="PT4S")
    first = start_pipeline(root, tmp_path, config)
    wait_for(tmp_path / ".snakemake" / "locks", timeout=60)
    time.sleep(1.0)
    from leaklab.lock import clear_stale

    assert not clear_stale(tmp_path)  # the lock of a live pipeline is kept
    second = start_pipeline(root, tmp_path, config)
    _, err = second.communicate(timeout=120)
    assert second.returncode != 0 and "cannot be locked" in err
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-3000:]
    assert pd.read_csv(tmp_path / "results" / "tables" / "runs.csv")["status"].tolist() == ["ok"]
