"""The runner records every outcome and always leaves a complete run directory."""

import json
import os
import select
import subprocess
import sys

import pandas as pd
import pytest

from leaklab.experiments import marks
from leaklab.process import unit_readings
from leaklab.tables import tables
from leaklab import experiments
from measuring import measure

MIB = 2**20


def outputs_complete(out):
    for name in ("meta.json", "samples.parquet", "marks.parquet", "run.log"):
        assert (out / name).exists(), name


def test_ok_run_has_samples_marks_meta_and_a_final_sample(tmp_path):
    meta = measure("dict_shrink", "dict", tmp_path, {"entries": 50_000, "cycles": 3}, interval_s=0.01)
    outputs_complete(tmp_path)
    assert meta["status"] == "ok" and meta["exit_code"] == 0
    assert meta["n_units"] == 3 and meta["unit"] == "cycle"
    assert meta["cpu_s"] > 0 and meta["wall_s"] >= meta["cpu_s"] * 0.5
    assert meta["versions"]["python"].startswith("3.11")
    assert meta["versions"]["duckdb"] and meta["host"]["cpus"] >= 1
    samples = pd.read_parquet(tmp_path / "samples.parquet")
    assert samples["final"].sum() == 1 and samples["final"].iloc[-1]
    assert samples["t"].is_monotonic_increasing
    assert meta["peak_rss_bytes"] >= samples["rss_bytes"].max()


def test_the_runner_returns_when_the_process_exits_whatever_the_interval(tmp_path):
    """A one-hour interval (the benchmark's unsampled baseline): the run still ends the
    moment the program exits, with its final sample."""
    meta = measure("dict_shrink", "dict", tmp_path, {"entries": 20_000, "cycles": 2}, interval_s=3600)
    assert meta["status"] == "ok" and meta["wall_s"] < 30
    samples = pd.read_parquet(tmp_path / "samples.parquet")
    assert samples["final"].iloc[-1] and len(samples) <= 3


def test_a_program_that_exits_leaving_a_child_behind_ends_the_run_promptly(tmp_path):
    """It never asks for a final sample and its child keeps the sync pipe open: the
    program's exit alone ends the wait, and its leftovers go with the run."""
    command = {"command": "sh -c 'sleep 60 & exit 0'", "variants": ["a"], "baseline": "a"}
    meta = measure("quick", "a", tmp_path, config={"experiments": {"quick": command}}, interval_s=3600, timeout_s=600)
    assert meta["status"] == "ok" and meta["wall_s"] < 30


def test_a_failing_experiment_is_recorded_with_its_log_tail(tmp_path):
    meta = measure("fd_leak", "leak", tmp_path, {"rotations": "many"})
    outputs_complete(tmp_path)
    assert meta["status"] == "failed" and meta["exit_code"] == 1
    assert any("ValueError" in line for line in meta["log_tail"])


def test_a_hanging_experiment_is_stopped_at_its_time_limit(tmp_path):
    meta = measure("duckdb_load", "load_off", tmp_path,
                   {"duration": "PT1H", "tables_per_second": 20, "resident_tables": 2}, timeout_s=3)
    outputs_complete(tmp_path)
    assert meta["status"] == "timeout"
    assert 3 <= meta["wall_s"] < 10
    assert meta["n_units"] >= 1  # what it measured before the stop is kept
    assert len(pd.read_parquet(tmp_path / "samples.parquet")) > 10


def test_a_runaway_experiment_is_stopped_at_its_memory_cap(tmp_path):
    meta = measure("dict_shrink", "dict", tmp_path, {"entries": 5_000_000, "cycles": 50},
                   mem_cap_bytes=150 * MIB, timeout_s=60)
    assert meta["status"] == "capped"
    assert meta["peak_rss_bytes"] < 400 * MIB


def test_unknown_variant_is_refused_with_the_allowed_ones(tmp_path):
    with pytest.raises(ValueError, match="allowed: close, leak"):
        measure("fd_leak", "laek", tmp_path)


def test_aggregation_records_a_corrupt_run_and_keeps_the_others(tmp_path, root):
    import yaml

    good = tmp_path / "runs" / "fd_leak" / "leak" / "plain" / "rep1"
    bad = tmp_path / "runs" / "fd_leak" / "close" / "plain" / "rep1"
    measure("fd_leak", "leak", good, {"rotations": 20, "interval_s": 0.01})
    measure("fd_leak", "close", bad, {"rotations": 20, "interval_s": 0.01})
    (bad / "samples.parquet").write_bytes(b"PAR1 truncated")
    config = yaml.safe_load((root / "config.yaml").read_text())
    config["experiments"]["fd_leak"]["warmup_units"] = 2
    built = tables.build([good, bad], config)
    statuses = dict(zip(built["runs"]["variant"], built["runs"]["status"]))
    assert statuses == {"leak": "ok", "close": "parse_error"}
    error = built["runs"].set_index("variant").loc["close", "error"]
    assert "samples.parquet" in error or "Parquet" in error
    row = built["growth"].query("metric == 'deleted_fds'").iloc[0]
    assert row["growth_per_unit"] == pytest.approx(1.0) and row["verdict"] == "leak"
    tables.write_duckdb(built, tmp_path / "leaklab.duckdb")
    import duckdb

    con = duckdb.connect(str(tmp_path / "leaklab.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 2
    assert json.loads((good / "meta.json").read_text())["status"] == "ok"


def test_aggregation_and_summary_survive_a_run_set_with_no_plain_run(tmp_path, root):
    """Every plain run lost: the tables, the summary and the figures still come out,
    and the summary says the controls could not be checked."""
    import yaml

    from leaklab.report import attribution_plots, plots, summary

    run = tmp_path / "runs" / "fd_leak" / "leak" / "heaptrack" / "rep1"
    measure("fd_leak", "leak", run, {"rotations": 12, "interval_s": 0.01}, profiler="heaptrack")
    config = yaml.safe_load((root / "tests" / "config.yaml").read_text())
    built = tables.build([run], config)
    assert len(built["profiler_summary"]) == 1 and built["profiler_summary"]["leaked_bytes"].iloc[0] >= 0
    specs = experiments.specs(config)
    text = summary.render(built["runs"], built["growth"], built["controls"], built["attribution"], specs=specs)
    assert "Controls: FAILED" in text and "expected leak, got missing" in text
    plots.verdict_matrix(built["variant_verdicts"], tmp_path / "matrix.png", specs=specs)
    attribution_plots.attribution_bars(built["attribution"], built["growth"], tmp_path / "attribution.png", specs=specs)
    assert (tmp_path / "matrix.png").stat().st_size > 1000 and (tmp_path / "attribution.png").stat().st_size > 1000


@pytest.mark.slow
def test_heaptrack_names_what_grows_per_dropped_table_in_duckdb(tmp_path):
    """DuckDB 1.4.4: the glibc memory that grows with dropped tables is freed at close,
    so only the growth sites, read from the recording while it ran, name it.  Twelve
    seconds: heaptrack's start-up takes the first few, and at ten (26 drops, 2026-12-06)
    DuckDB's two growth sites already held 9,200 and 8,400 B against 660 B for the next."""
    meta = measure("duckdb_load", "load_on", tmp_path, {"duration": "PT12S", "resident_tables": 20},
                   profiler="heaptrack", profiler_settings={"growth_from_unit": 1}, timeout_s=120)
    assert meta["status"] == "ok" and meta["profile_status"] == "ok", meta
    sites = pd.read_parquet(tmp_path / "top_sites.parquet")
    grown = sites[sites["kind"] == "growth"]
    frames = " | ".join(grown["frame"].head(3))
    assert "RegisterMemory" in frames or "AddToEvictionQueue" in frames, grown
    assert not sites[sites["kind"] == "leaked"]["frame"].str.contains("RegisterMemory").any()


WAITING_PROGRAM = """
import time
from leaklab.experiments import marks
for unit in (1, 2):
    start = time.monotonic()
    marks.mark(unit, "unit")
    print(round(time.monotonic() - start, 3), flush=True)
marks.finish()
print("done", flush=True)
"""


def test_a_program_waits_at_its_mark_for_a_bounded_time_and_a_late_answer_is_dropped(tmp_path):
    """A runner that never answers holds a mark for at most ``READING_WAIT_S``, and the
    next mark does not ask again so soon (the pace counts the wait); an answer that comes
    after the program gave up does not let its final wait through early."""
    ready_r, ready_w = os.pipe()
    release_r, release_w = os.pipe()
    env = {**os.environ, marks.MARKS_ENV: str(tmp_path / "marks.jsonl"), marks.SYNC_ENV: f"{ready_w},{release_r}",
           unit_readings.PACE_ENV: unit_readings.pace()}
    proc = subprocess.Popen([sys.executable, "-c", WAITING_PROGRAM], env=env, stdout=subprocess.PIPE,
                            pass_fds=(ready_w, release_r), text=True)
    os.close(ready_w)
    os.close(release_r)
    try:
        assert os.read(ready_r, 64) == b"u1\n"  # not answered
        first, second = float(proc.stdout.readline()), float(proc.stdout.readline())
        assert marks.READING_WAIT_S * 0.9 <= first < marks.READING_WAIT_S * 3 and second < marks.READING_WAIT_S / 2
        os.write(release_w, b"u")  # the late answer to unit 1
        assert os.read(ready_r, 64) == b"x"  # unit 2 did not ask: the final sample does
        assert not select.select([proc.stdout], [], [], 0.5)[0]  # still waiting for its own answer
        os.write(release_w, b"x")
        assert proc.stdout.readline() == "done\n" and proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        for fd in (ready_r, release_w):
            os.close(fd)


def test_what_a_program_writes_into_the_sync_pipe_is_read_as_units_or_skipped():
    assert unit_readings.requested_units(b"u3\nu4\nx") == [3, 4]
    assert unit_readings.requested_units(b"u-1\nuabc\nu99999999999999\n\xff\nu\n") == []
