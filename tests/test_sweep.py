"""The version sweep for real: two DuckDB versions, each in a venv built from PyPI wheels."""

import json
import subprocess
import sys

import pandas as pd
import pytest
import yaml

pytestmark = pytest.mark.e2e


def test_duckdb_version_sweep(root, tmp_path):
    """Four seconds a run (10 dropped tables, 8 judged): enough for a verdict per version."""
    config = {
        "replicates": 1,
        "verdict": {"metrics": {"rss_bytes": {"leak_per_unit": 262144, "retained": 16777216}}},
        "experiments": {"duckdb_load": {"variants": ["load_on", "load_off"], "warmup_units": 2,
                                        "params": {"duration": "PT4S", "rows": 2000, "resident_tables": 10}}},
        "version_sweep": {"experiment": "duckdb_load", "package": "duckdb", "versions": ["0.6.1", "1.4.4"],
                          "variants": ["load_on", "load_off"], "warmup_units": 2, "params": {"duration": "PT4S"}},
    }
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(config))
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(root / "Snakefile"), "--directory", str(tmp_path),
         "--configfile", str(tmp_path / "sweep.yaml"), "--cores", "2", "version_sweep"],
        capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    table = pd.read_csv(tmp_path / "results" / "tables" / "version_sweep.csv")
    rss = table[table["metric"] == "rss_bytes"]
    assert sorted(set(rss["version"].astype(str))) == ["0.6.1", "1.4.4"]
    assert set(rss["variant"]) == {"load_on", "load_off"}
    assert (rss["run_status"] == "ok").all()
    assert (rss["unit"] == "dropped table").all()
    assert {"variant_verdict", "decided_by", "variant_first_change_version"} <= set(table.columns)
    assert table["variant_verdict"].notna().all()
    for version in ("0.6.1", "1.4.4"):  # each run really used its own DuckDB
        meta = json.loads((tmp_path / "results" / "sweep" / f"duckdb-{version}" / "runs" / "duckdb_load" / "load_on"
                           / "plain" / "rep1" / "meta.json").read_text())
        assert meta["versions"]["duckdb"] == version
    assert (tmp_path / "results" / "figures" / "version_sweep.png").stat().st_size > 10_000
