"""The nightly command for real: two nights on the same code, then a doctored history."""

import json
import subprocess
import sys

import duckdb
import pandas as pd
import pytest
import yaml

from test_workflow import job_counts

pytestmark = pytest.mark.e2e


def nightly(tmp_path, config, *extra):
    return subprocess.run(
        [sys.executable, "-m", "leaklab", "nightly", "-d", str(tmp_path), "--configfile", str(config),
         "--config", "replicates=2", "--cores", "2", *extra],
        capture_output=True, text=True,
    )


@pytest.fixture(scope="module")
def nights(root, tmp_path_factory):
    """Two nights of the smallest run set that still has a leak to follow and controls to
    pass: fd_leak (close, leak) and two planted controls (zero, native_large), twice each.
    The nightly mechanism (record, compare, report) does not depend on how many runs a night has."""
    tmp_path = tmp_path_factory.mktemp("nightly")
    config = yaml.safe_load((root / "tests" / "config.yaml").read_text())
    config["experiments"] = {name: config["experiments"][name] for name in ("fd_leak", "planted")}
    config["experiments"]["planted"]["variants"] = ["zero", "native_large"]
    config["history"] = {"path": str(tmp_path / "store" / "history.duckdb")}
    path = tmp_path / "nightly.yaml"
    path.write_text(yaml.safe_dump(config))
    first, second = nightly(tmp_path, path), nightly(tmp_path, path)
    return tmp_path, path, first, second


def test_two_nights_on_the_same_code_give_no_regression(nights):
    tmp_path, _, first, second = nights
    assert first.returncode == 0, first.stderr[-3000:]
    assert second.returncode == 0, second.stderr[-3000:]
    assert "no regression, controls passed" in second.stderr
    found = pd.read_csv(tmp_path / "results" / "tables" / "regressions.csv")
    assert not found["counts"].astype(bool).any() if len(found) else True
    con = duckdb.connect(str(tmp_path / "store" / "history.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM nights").fetchone()[0] == 2
    # the second night really measured again: its runs are not the first night's
    runs = con.execute("SELECT night_id, sum(wall_s) FROM runs_history GROUP BY night_id").fetchall()
    assert len(runs) == 2 and runs[0][1] != runs[1][1]
    assert (tmp_path / "results" / "figures" / "nightly_trend.png").stat().st_size > 10_000


def test_the_history_step_run_again_records_the_same_night_once(root, nights):
    """A re-run after a failure (here: forced) finds tonight's run set already recorded."""
    tmp_path, path, _, _ = nights
    before = json.loads((tmp_path / "results" / "nightly" / "night.json").read_text())
    again = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(root / "Snakefile"), "--directory", str(tmp_path),
         "--configfile", str(path), "--config", "replicates=2", "--cores", "2", "--forcerun", "nightly_history",
         "nightly"], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "run_experiment" not in job_counts(again.stdout + again.stderr)
    after = json.loads((tmp_path / "results" / "nightly" / "night.json").read_text())
    assert after["night_id"] == before["night_id"] and after["recorded_now"] is False
    con = duckdb.connect(str(tmp_path / "store" / "history.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM nights").fetchone()[0] == 2
    assert con.execute("SELECT count(DISTINCT night_id) FROM runs_history").fetchone()[0] == 2


def test_a_planted_jump_in_the_history_is_a_regression(nights):
    """The first night's fd_leak growth doctored to 5 fds a unit: the second night, compared
    with it again by the nightly command (its history step forced, the runs left as they
    are: a third night measured would meet the same comparison 40 s later), is a regression."""
    tmp_path, config, _, _ = nights
    con = duckdb.connect(str(tmp_path / "store" / "history.duckdb"))
    first, last = [row[0] for row in con.execute("SELECT night_id FROM nights ORDER BY seq").fetchall()]
    con.execute("""UPDATE growth_history SET growth_per_unit = 5, ci_low = 4.5, ci_high = 5.5
                   WHERE night_id = ? AND experiment = 'fd_leak' AND variant = 'leak'
                   AND metric = 'deleted_fds' AND profiler = 'plain'""", [first])
    con.close()
    third = nightly(tmp_path, config, "--forcerun", "nightly_history")
    assert "run_experiment" not in job_counts(third.stdout + third.stderr)  # nothing measured again
    assert f"night {last} was already recorded" in third.stderr
    assert third.returncode == 1
    assert "regression(s) against the previous night" in third.stderr
    found = pd.read_csv(tmp_path / "results" / "tables" / "regressions.csv")
    moved = found[found["counts"].astype(bool)]
    assert list(zip(moved["variant"], moved["metric"], moved["kind"])) == [("leak", "deleted_fds", "growth_moved")]
