"""The nightly history store: appends that survive, and what counts as a regression."""

import json
import shutil
import subprocess
import uuid

import duckdb
import pandas as pd
import pytest

from leaklab import history

MIB = 2**20
META = {
    "versions": {"python": "3.11.7", "duckdb": "1.4.4", "faust-streaming-rocksdb": "0.9.3",
                 "snakemake": "9.27.1", "librocksdb": "librocksdb.so.7.8"},
    "host": {"hostname": "nightly-box", "kernel": "6.1.0", "cpus": 4, "mem_total_bytes": 16 * 2**30},
}


def growth_table() -> pd.DataFrame:
    rows = [
        # experiment, variant, metric, unit, growth, ci_low, ci_high, verdict
        ("rocksdb_merge", "capi-real", "rss_bytes", "pass", 12.0 * MIB, 11.0 * MIB, 13.0 * MIB, "leak"),
        ("rocksdb_merge", "capi_fixed-real", "rss_bytes", "pass", 0.01 * MIB, -0.05 * MIB, 0.08 * MIB, "stable"),
        ("rocksdb_merge", "capi_fixed-real", "malloc_in_use_bytes", "pass", 0.0, 0.0, 0.0, "stable"),
        ("fd_leak", "leak", "deleted_fds", "rotation", 1.0, 1.0, 1.0, "leak"),
        ("fd_leak", "close", "deleted_fds", "rotation", 0.0, 0.0, 0.0, "stable"),
        ("dict_shrink", "dict", "rss_bytes", "cycle", 0.2 * MIB, -0.5 * MIB, 0.9 * MIB, "retention"),
    ]
    frame = pd.DataFrame(rows, columns=["experiment", "variant", "metric", "unit", "growth_per_unit",
                                        "ci_low", "ci_high", "verdict"])
    frame.insert(2, "profiler", "plain")
    frame["n_replicates"] = 3
    return frame


def runs_table() -> pd.DataFrame:
    return pd.DataFrame({"experiment": ["rocksdb_merge", "fd_leak"], "variant": ["capi-real", "leak"],
                         "profiler": ["plain", "plain"], "replicate": [1, 1], "status": ["ok", "ok"],
                         "wall_s": [10.5, 3.2], "profile_error": [None, None]})


def add_night(store, project, date, growth=None, runs=None, meta=META) -> str:
    key = history.night_key(project, meta, uuid.uuid4().hex, date=date)  # each call: another run set
    return history.append_night(store, key, {"growth": growth_table() if growth is None else growth,
                                             "runs": runs_table() if runs is None else runs})


def row(frame: pd.DataFrame, experiment: str, variant: str, metric: str):
    return (frame["experiment"] == experiment) & (frame["variant"] == variant) & (frame["metric"] == metric)


def with_estimate(frame: pd.DataFrame, experiment: str, variant: str, growth: float, low: float,
                  high: float, metric: str = "rss_bytes") -> pd.DataFrame:
    """``frame`` with one row's growth estimate and interval replaced: a doctored night."""
    frame.loc[row(frame, experiment, variant, metric), ["growth_per_unit", "ci_low", "ci_high"]] = [growth, low, high]
    return frame


@pytest.fixture()
def store(tmp_path):
    return tmp_path / "history" / "nightly.duckdb"


def test_first_night_has_nothing_to_compare(store, tmp_path):
    night = add_night(store, tmp_path, "2024-05-01")
    assert history.regressions(store, night).empty
    assert list(history.regressions(store, night).columns) == history.REGRESSION_COLUMNS


def test_two_identical_nights_give_no_regression(store, tmp_path):
    add_night(store, tmp_path, "2024-05-01")
    second = add_night(store, tmp_path, "2024-05-02")
    for same_code in (False, True):
        found = history.regressions(store, second, same_code_only=same_code)
        assert not found["counts"].any() if len(found) else True
        assert history.exit_code(found) == 0


def test_planted_jump_is_one_growth_moved(store, tmp_path):
    first = add_night(store, tmp_path, "2024-05-01")
    doctored = with_estimate(growth_table(), "rocksdb_merge", "capi_fixed-real", 2.0 * MIB, 1.8 * MIB, 2.3 * MIB)
    # noise inside the intervals must not count
    wobble = row(doctored, "dict_shrink", "dict", "rss_bytes")
    doctored.loc[wobble, "growth_per_unit"] = 0.25 * MIB
    second = add_night(store, tmp_path, "2024-05-02", growth=doctored)
    found = history.regressions(store, second)
    counting = found[found["counts"]]
    assert len(counting) == 1
    hit = counting.iloc[0]
    assert (hit["kind"], hit["experiment"], hit["variant"], hit["metric"]) == \
        ("growth_moved", "rocksdb_merge", "capi_fixed-real", "rss_bytes")
    assert hit["previous_night"] == first and hit["value"] == 2.0 * MIB
    assert hit["previous_value"] == pytest.approx(0.01 * MIB)
    assert "up" in hit["note"] and "MiB/pass" in hit["note"]
    assert history.exit_code(found) == 1


def test_move_needs_both_intervals(store, tmp_path):
    """Outside the previous (narrow) interval but the previous value inside tonight's wide one: noise."""
    add_night(store, tmp_path, "2024-05-01")
    noisy = with_estimate(growth_table(), "rocksdb_merge", "capi-real", 14.0 * MIB, 8.0 * MIB, 20.0 * MIB)
    second = add_night(store, tmp_path, "2024-05-02", growth=noisy)
    assert history.exit_code(history.regressions(store, second)) == 0


def test_verdict_flip_counts_inconclusive_does_not(store, tmp_path):
    add_night(store, tmp_path, "2024-05-01")
    flipped = growth_table()
    flipped.loc[row(flipped, "fd_leak", "close", "deleted_fds"), "verdict"] = "leak"
    flipped.loc[row(flipped, "rocksdb_merge", "capi-real", "rss_bytes"), ["verdict", "ci_low", "ci_high"]] = \
        ["inconclusive", float("nan"), float("nan")]
    second = add_night(store, tmp_path, "2024-05-02", growth=flipped)
    found = history.regressions(store, second)
    kinds = dict(zip(zip(found["variant"], found["kind"]), found["counts"]))
    assert kinds == {("close", "verdict_flip"): True, ("capi-real", "became_inconclusive"): False}
    flip = found[found["kind"] == "verdict_flip"].iloc[0]
    assert (flip["previous_verdict"], flip["verdict"]) == ("stable", "leak")
    assert history.exit_code(found) == 1
    assert history.exit_code(found[~found["counts"]]) == 0


def test_a_system_wide_metric_is_reported_but_never_counts(store, tmp_path):
    """The kernel's slab moves with every process on the host: a flip there is no regression."""
    slab = pd.DataFrame([("fd_leak", "plain", "close", "slab_bytes", "rotation", 0.0, -300.0, 300.0, "stable")],
                        columns=["experiment", "profiler", "variant", "metric", "unit", "growth_per_unit", "ci_low",
                                 "ci_high", "verdict"]).assign(n_replicates=3)
    add_night(store, tmp_path, "2024-05-01", growth=pd.concat([growth_table(), slab], ignore_index=True))
    moved = slab.assign(growth_per_unit=5000.0, ci_low=4000.0, ci_high=6000.0, verdict="leak")
    second = add_night(store, tmp_path, "2024-05-02", growth=pd.concat([growth_table(), moved], ignore_index=True))
    found = history.regressions(store, second)
    assert set(found["kind"]) == {"verdict_flip", "growth_moved"} and set(found["metric"]) == {"slab_bytes"}
    assert not found["counts"].any() and history.exit_code(found) == 0


def test_previous_night_is_on_the_same_host_and_code(store, tmp_path):
    first = add_night(store, tmp_path, "2024-05-01")
    other_host = {**META, "host": {**META["host"], "hostname": "laptop"}}
    jumped = growth_table()
    jumped["growth_per_unit"] *= 50
    jumped["ci_low"] *= 50
    jumped["ci_high"] *= 50
    add_night(store, tmp_path, "2024-05-02", growth=jumped, meta=other_host)
    newer_lib = {**META, "versions": {**META["versions"], "duckdb": "1.5.0"}}
    third = add_night(store, tmp_path, "2024-05-03", meta=newer_lib)
    found = history.regressions(store, third)
    assert history.exit_code(found) == 0
    assert history.regressions(store, third, same_code_only=True).empty
    assert set(history.regressions(store, third)["previous_night"]) <= {first}


def test_disappeared_rows_are_informational(store, tmp_path):
    add_night(store, tmp_path, "2024-05-01")
    fewer = growth_table()
    fewer = fewer[fewer["experiment"] != "fd_leak"]
    second = add_night(store, tmp_path, "2024-05-02", growth=fewer)
    found = history.regressions(store, second)
    assert set(found["kind"]) == {"disappeared"} and len(found) == 2
    assert history.exit_code(found) == 0


def test_schema_evolution_and_history_survives(store, tmp_path):
    first = add_night(store, tmp_path, "2024-05-01")
    growth = growth_table().assign(ci_method="theil-sen", verdict_reason="interval above the bar")
    runs = runs_table().assign(profile_error=["massif.out truncated", None], replicate=[1.0, 2.5],
                               cpu_per_unit_s=[0.1, 0.2])
    second = add_night(store, tmp_path, "2024-05-02", growth=growth, runs=runs)
    con = duckdb.connect(str(store), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM nights").fetchone()[0] == 2
        assert con.execute("SELECT count(*) FROM growth_history").fetchone()[0] == 2 * len(growth)
        assert con.execute("SELECT count(*) FROM runs_history").fetchone()[0] == 4
        methods = dict(con.execute("SELECT night_id, any_value(ci_method) FROM growth_history "
                                   "GROUP BY night_id").fetchall())
        assert methods == {first: None, second: "theil-sen"}
        errors = con.execute("SELECT profile_error FROM runs_history WHERE night_id = ? ORDER BY replicate",
                             [second]).fetchall()
        assert errors == [("massif.out truncated",), (None,)]
        assert con.execute("SELECT max(replicate) FROM runs_history").fetchone()[0] == 2.5
        key = con.execute("SELECT seq, date, version_duckdb, hostname, cpus FROM nights WHERE night_id = ?",
                          [second]).fetchone()
        assert key[0] == 2 and str(key[1]) == "2024-05-02" and key[2:] == ("1.4.4", "nightly-box", 4)
    finally:
        con.close()
    assert history.exit_code(history.regressions(store, second)) == 0


def test_crash_mid_append_leaves_previous_nights(store, tmp_path, monkeypatch):
    first = add_night(store, tmp_path, "2024-05-01")
    real = history.store._append_table

    def crash_on_runs(con, table, *args, **kwargs):
        if table == "runs_history":
            raise RuntimeError("power cut")
        return real(con, table, *args, **kwargs)

    monkeypatch.setattr(history.store, "_append_table", crash_on_runs)
    with pytest.raises(RuntimeError):
        add_night(store, tmp_path, "2024-05-02", growth=growth_table().assign(extra=1))
    monkeypatch.undo()
    con = duckdb.connect(str(store), read_only=True)
    try:
        assert con.execute("SELECT list(night_id) FROM nights").fetchone()[0] == [first]
        assert con.execute("SELECT count(DISTINCT night_id) FROM growth_history").fetchone()[0] == 1
        assert "extra" not in [c for (c,) in con.execute("SELECT column_name FROM information_schema.columns "
                                                         "WHERE table_name = 'growth_history'").fetchall()]
    finally:
        con.close()
    key = history.night_key(tmp_path, META, "another run set", date="2024-05-01")
    key["night_id"] = first
    with pytest.raises(ValueError, match="already"):
        history.append_night(store, key, {"growth": growth_table()})


def test_night_key_outside_and_inside_git(tmp_path):
    key = history.night_key(tmp_path, META, "ab" * 32, date="2024-05-01")
    assert key["commit"] == "unknown" and key["dirty"] is None
    assert key["date"] == "2024-05-01" and key["night_id"].startswith("2024-05-01_")
    assert key["version_faust_streaming_rocksdb"] == "0.9.3" and key["version_snakemake"] == "9.27.1"
    assert key["hostname"] == "nightly-box"
    assert key["night_id"] == f"2024-05-01_unknown_{'ab' * 6}" and key["runs_sha256"] == "ab" * 32
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], check=True)
    (repo / "a.txt").write_text("one\n")
    subprocess.run([*git, "add", "a.txt"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one"], check=True)
    (repo / "results").mkdir()
    (repo / "results" / "new.csv").write_text("untracked output\n")
    clean = history.night_key(repo, META, "cd" * 32)
    assert len(clean["commit"]) == 40 and clean["dirty"] is False and clean["diff_sha256"] is None
    (repo / "a.txt").write_text("two\n")
    dirty = history.night_key(repo, META, "cd" * 32, config_sha256="0123abcd")
    assert dirty["commit"] == clean["commit"] and dirty["dirty"] is True and dirty["diff_sha256"]
    assert dirty["config_sha256"] == "0123abcd" and dirty["night_id"].startswith(dirty["date"] + "_" + clean["commit"][:10])


@pytest.mark.slow
def test_trend_and_plot(store, tmp_path):
    add_night(store, tmp_path, "2024-05-01")
    jumped = with_estimate(growth_table(), "rocksdb_merge", "capi_fixed-real", 2.0 * MIB, 1.8 * MIB, 2.3 * MIB)
    second = add_night(store, tmp_path, "2024-05-02", growth=jumped)
    add_night(store, tmp_path, "2024-05-03", growth=jumped)
    frame = history.trend(store)
    assert list(frame.columns) == history.TREND_COLUMNS
    assert len(frame) == 3 * 3 and set(frame["metric"]) == {"rss_bytes"}
    assert frame["night_label"].iloc[0].startswith("2024-05-01\nunknown")
    out = tmp_path / "figures" / "history_trend.png"
    history.plot_trend(frame, out, history.regressions(store, second))
    assert out.stat().st_size > 10_000
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    empty = tmp_path / "empty.png"
    history.plot_trend(history.trend(store, metric="no_such_metric"), empty)
    assert empty.stat().st_size > 0


def test_exit_code_reads_the_csv_back(tmp_path):
    found = pd.DataFrame([{"kind": "became_inconclusive", "counts": False}])
    found.to_csv(tmp_path / "r.csv", index=False)
    assert history.exit_code(pd.read_csv(tmp_path / "r.csv")) == 0
    assert history.exit_code(pd.read_csv(tmp_path / "r.csv", dtype=str)) == 0
    found.assign(counts=True).to_csv(tmp_path / "r.csv", index=False)
    assert history.exit_code(pd.read_csv(tmp_path / "r.csv", dtype=str)) == 1
    # an empty table still has a header, so the CSV reads back with its columns
    empty = pd.DataFrame(columns=history.REGRESSION_COLUMNS)
    empty.to_csv(tmp_path / "e.csv", index=False)
    assert history.exit_code(pd.read_csv(tmp_path / "e.csv")) == 0


def write_runs(root, walls) -> list:
    """meta.json files of a run set (one per wall time), as the workflow lays them out."""
    paths = []
    for i, wall in enumerate(walls):
        path = root / "runs" / "fd_leak" / "leak" / "plain" / f"rep{i + 1}" / "meta.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**META, "wall_s": wall}))
        paths.append(path)
    return paths


def test_a_run_set_is_recorded_once(store, tmp_path):
    """A night is what it measured: recording the same runs again (a re-run history step,
    another day) adds nothing; re-measured runs are a new night."""
    runs = write_runs(tmp_path / "a", [1.0, 2.0])
    digest = history.run_set_sha256(runs)
    first = history.append_night(store, history.night_key(tmp_path, META, digest, date="2024-05-01"),
                                 {"growth": growth_table()})
    again = history.append_night(store, history.night_key(tmp_path, META, digest, date="2024-05-02"),
                                 {"growth": growth_table()})
    assert again == first
    remeasured = history.run_set_sha256(write_runs(tmp_path / "b", [1.0, 2.5]))
    assert remeasured != digest and history.run_set_sha256(write_runs(tmp_path / "c", [1.0, 2.0])) == digest
    history.append_night(store, history.night_key(tmp_path, META, remeasured, date="2024-05-02"),
                         {"growth": growth_table()})
    con = duckdb.connect(str(store), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM nights").fetchone()[0] == 2
        assert con.execute("SELECT count(DISTINCT night_id) FROM growth_history").fetchone()[0] == 2
    finally:
        con.close()


def test_tonight_is_compared_before_it_is_recorded(store, tmp_path):
    """The comparison and the trend see tonight in memory, as they will once it is appended."""
    add_night(store, tmp_path, "2024-05-01")
    jumped = with_estimate(growth_table(), "rocksdb_merge", "capi_fixed-real", 2.0 * MIB, 1.8 * MIB, 2.3 * MIB)
    key = history.night_key(tmp_path, META, "ef" * 32, date="2024-05-02")
    nights, growth, night = history.with_night(*history.load(store), key, jumped)
    found = history.compare(nights, growth, night)
    assert night == key["night_id"] and list(found.loc[found["counts"], "kind"]) == ["growth_moved"]
    assert set(history.trend_frame(nights, growth)["night_id"]) == {night, *history.load(store)[0]["night_id"]}
    history.append_night(store, key, {"growth": jumped})
    assert history.regressions(store, night).equals(found)
    assert history.with_night(*history.load(store), key, jumped)[2] == night  # recorded: not added twice


def test_profiled_rows_are_not_compared(store, tmp_path):
    """Like with like: a profiled row (scaled workload, the profiler inside RSS) never
    makes a regression, however much it moved."""
    profiled = growth_table().assign(profiler="heaptrack")
    add_night(store, tmp_path, "2024-05-01", growth=pd.concat([growth_table(), profiled]))
    moved = profiled.assign(growth_per_unit=50 * MIB, ci_low=49 * MIB, ci_high=51 * MIB, verdict="leak")
    second = add_night(store, tmp_path, "2024-05-02", growth=pd.concat([growth_table(), moved]))
    found = history.regressions(store, second)
    assert found.empty, found.to_dict("records")
