"""Each experiment's mechanics at tiny scale, run for real as its own process."""

import json
import subprocess
import sys

import pandas as pd
import pytest

from measuring import measure

MIB = 2**20


def units(meta_dir) -> pd.DataFrame:
    marks = pd.read_parquet(meta_dir / "marks.parquet")
    return marks[marks["phase"] == "unit"].set_index("unit")


def run(tmp_path, experiment, variant, params, **kw):
    out = tmp_path / f"{experiment}-{variant}"
    meta = measure(experiment, variant, out, params, interval_s=0.02, timeout_s=120, **kw)
    assert meta["status"] == "ok", (out / "run.log").read_text()
    return meta, out


def test_rocksdb_fixture_keeps_operands_unmerged(rocksdb_fixture):
    ssts = list(rocksdb_fixture.glob("*.sst"))
    assert len(ssts) == 10  # one flush per operand round, never compacted


@pytest.mark.parametrize("variant, leaks", [
    ("capi-real", True), ("capi_fixed-real", False), ("capi-dummy", False),
    ("binding-real", False), ("binding-dummy", False),
])
def test_rocksdb_merge_leaks_only_through_the_empty_delete_value(tmp_path, rocksdb_fixture, variant, leaks):
    meta, out = run(tmp_path, "rocksdb_merge", variant, {"fixture": str(rocksdb_fixture), "passes": 4})
    frame = units(out)
    assert frame["keys_read"].tolist() == [2000] * 4
    merged_value = 10 * 64 if variant.endswith("real") else 0
    assert frame["value_bytes_read"].iloc[-1] == 2000 * merged_value
    per_pass = frame["malloc_in_use_bytes"].diff().iloc[1:].median()
    if leaks:  # every merged value stays allocated: keys x (value + malloc header)
        assert 2000 * 640 <= per_pass <= 2000 * (640 + 32)
    else:
        assert abs(per_pass) < 16 * 1024


def test_dict_retains_its_table_and_rebuilt_gives_it_back(tmp_path):
    params = {"entries": 100_000, "cycles": 3}
    _, kept = run(tmp_path, "dict_shrink", "dict", params)
    _, rebuilt = run(tmp_path, "dict_shrink", "rebuilt", params)
    kept_sizes = units(kept)["dict_size_bytes"]
    assert (kept_sizes > 2 * MIB).all() and kept_sizes.nunique() == 1  # retained, not growing
    assert (units(kept)["dict_len"] == 0).all()
    assert (units(rebuilt)["dict_size_bytes"] < 1024).all()
    filled = pd.read_parquet(rebuilt / "marks.parquet").query("phase == 'filled'")
    assert (filled["dict_size_bytes"] == kept_sizes.iloc[0]).all()


def test_duckdb_load_keeps_the_resident_table_count(tmp_path):
    params = {"duration": "PT4S", "rows": 1000, "resident_tables": 5, "tables_per_second": 5}
    meta, out = run(tmp_path, "duckdb_load", "load_on", params)
    frame = units(out)
    assert len(frame) >= 3
    assert frame["tables_resident"].max() == 5
    assert frame["tables_dropped"].iloc[-1] >= 5
    assert frame["tasks_failed"].max() == 0
    assert frame["duckdb_memory_bytes"].max() > 0  # DuckDB >= 0.10 reports its own memory
    assert frame["tasks_per_second"].iloc[1:].between(3, 7).all()
    assert frame["quiescent"].mean() >= 0.8  # the heap read between tasks, nearly always
    assert 1 <= frame["cursors_opened"].max() <= 4  # one per worker thread, not one per table


def test_duckdb_load_opens_one_cursor_per_worker_thread_not_per_table():
    """Up to DuckDB 1.0 the binding keeps every cursor a connection hands out (~280 B)
    until the connection closes: a cursor per table would read as a leak per table."""
    from concurrent.futures import ThreadPoolExecutor

    import duckdb

    from leaklab.experiments.duckdb_load import TableLoader

    con = duckdb.connect()
    loader = TableLoader(con, rows=0, resident=3)
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(loader.task, range(200)))
    assert (loader.created, loader.dropped, loader.failed) == (200, 197, 0)
    cursors = list(loader.cursors)
    assert 1 <= len(cursors) <= 2
    assert [cur.execute("SELECT 1").fetchone() for cur in cursors] == [(1,)] * len(cursors)  # kept open for the run
    loader.close()
    assert loader.cursors == []
    for cur in cursors:
        with pytest.raises(duckdb.Error):
            cur.execute("SELECT 1")
    con.close()


@pytest.mark.parametrize("variant, deleted_per_rotation", [("leak", 1), ("close", 0)])
def test_fd_leak_holds_one_deleted_lock_per_rotation(tmp_path, variant, deleted_per_rotation):
    meta, out = run(tmp_path, "fd_leak", variant, {"rotations": 30, "interval_s": 0.01})
    frame = units(out)
    assert frame["deleted_fds"].tolist() == [deleted_per_rotation * r for r in range(1, 31)]
    # Dolt's regression test: the next fd number stays put unless fds leak
    assert abs(frame["next_fd"].iloc[-1] - frame["next_fd"].iloc[0] - 29 * deleted_per_rotation) <= 2
    samples = pd.read_parquet(out / "samples.parquet")
    assert samples["deleted_fds"].iloc[-1] == 30 * deleted_per_rotation  # the outside view agrees
    assert samples["final"].iloc[-1]
    assert frame["slab_bytes"].notna().all()


@pytest.mark.slow
def test_fd_leak_stops_cleanly_before_the_fd_limit(tmp_path, root):
    out = tmp_path / "capped-fds"
    result = subprocess.run(
        ["prlimit", "--nofile=128:128", "--", sys.executable, "-m", "leaklab.measure.runner", "--experiment", "fd_leak",
         "--variant", "leak", "--outdir", str(out), "--params", json.dumps({"rotations": 500, "interval_s": 0})],
        capture_output=True, text=True, cwd=root,
    )
    assert result.returncode == 0, result.stderr
    meta = json.loads((out / "meta.json").read_text())
    assert meta["status"] == "ok"
    marks = pd.read_parquet(out / "marks.parquet")
    stop = marks[marks["phase"] == "fd_limit"]
    assert len(stop) == 1 and stop["fd_soft_limit"].iloc[0] == 128
    assert 40 < meta["n_units"] < 128
