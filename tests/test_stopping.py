"""Sequential stopping, for real: runs of built-in experiments and of a user's own
program are stopped by the runner once their verdict is decided, and keep their final
sample and marks; undecided and unwatched runs run their configured length."""

import copy
import sys

import pandas as pd
import pytest
import yaml

from leaklab.measure import config as leaklab_config
from leaklab.measure import config_check, stopping
from leaklab.model import sequential
from measuring import measure

MIB = 2**20
STOPPING = {"sequential": True, "min_units": 5}


@pytest.fixture
def planted_config(root):
    config = yaml.safe_load((root / "config.yaml").read_text())
    config["stopping"] = dict(STOPPING)
    config["experiments"] = {"planted": config["experiments"]["planted"]}
    config["experiments"]["planted"]["params"].update(steps=60)
    return config


def run_planted(config, variant, out):
    plan = leaklab_config.stop_plan(config, "planted", "plain", variant)
    params = leaklab_config.run_params(config, "planted", "plain", variant)
    return measure("planted", variant, out, params, interval_s=0.02, timeout_s=120, stopping_plan=plan), plan


def read(out):
    return pd.read_parquet(out / "samples.parquet"), pd.read_parquet(out / "marks.parquet")


def test_a_clear_leak_stops_decided_well_before_its_maximum_with_its_final_sample(planted_config, tmp_path):
    meta, plan = run_planted(planted_config, "native_large", tmp_path)
    assert plan["max_units"] == 60 and meta["max_units"] == 60
    assert meta["status"] == "ok" and meta["exit_code"] == 0
    assert meta["stop_reason"] == "decided" and meta["decided_verdict"] == "leak"
    # decided at a look (units counted from the start, after a 2-unit warm-up), then
    # stopped after the unit in progress: far short of 60
    assert meta["decided_at_unit"] - 2 in meta["looks"] and meta["decided_at_unit"] <= 20
    assert meta["decided_at_unit"] <= meta["stopped_at_unit"] == meta["n_units"] < 30
    samples, marks = read(tmp_path)
    assert samples["final"].sum() == 1 and samples["final"].iloc[-1]  # still taken, by the handshake
    # the final sample still sees everything kept: 4 MiB per step up to the last unit
    units = marks[marks["phase"] == "unit"]
    assert list(units["unit"]) == list(range(1, meta["n_units"] + 1))
    assert marks["phase"].iloc[-1] == "end"
    assert samples["rss_bytes"].iloc[-1] >= units["rss_bytes"].iloc[-1] - MIB


def test_a_stable_run_runs_to_its_maximum_unless_stable_may_stop_it(planted_config, tmp_path):
    """By default a stable verdict does not end a run (it would speak for units never
    run); with `stable` in `stop_on` it does; unwatched, the run runs its full length."""
    meta, plan = run_planted(planted_config, "zero", tmp_path / "default")
    assert "stable" not in plan["stop_on"]
    assert meta["status"] == "ok" and meta["stop_reason"] == "max_units" and meta["n_units"] == 60
    planted_config["stopping"]["stop_on"] = ["leak", "stable"]
    meta, _ = run_planted(planted_config, "zero", tmp_path / "stable")
    assert meta["stop_reason"] == "decided" and meta["decided_verdict"] == "stable" and meta["n_units"] < 60
    assert set(meta["decided_metrics"]) >= {"rss_bytes", "malloc_in_use_bytes"}
    samples, _ = read(tmp_path / "stable")
    assert samples["final"].iloc[-1]
    planted_config["stopping"]["sequential"] = False
    meta, plan = run_planted(planted_config, "zero", tmp_path / "off")
    assert plan == {} and meta["stopping"] == {}
    assert meta["stop_reason"] == "finished" and meta["n_units"] == meta["stopped_at_unit"] == 60
    assert meta["decided_at_unit"] is None


# A user's program, speaking the unit-line protocol: it reports `cache_bytes`, growing by
# RATE per unit, and holds nothing itself; it does not handle SIGTERM (its default action
# ends it).
PROGRAM = """
import os, sys, time
rate, units = float(sys.argv[1]), int(sys.argv[2])
with open(os.environ["LEAKLAB_UNITS"], "a") as out:
    for unit in range(1, units + 1):
        time.sleep(0.02)
        out.write(f"{unit} cache_bytes={rate * unit:.0f}\\n")
        out.flush()
"""


@pytest.fixture
def own_program(tmp_path):
    script = tmp_path / "prog.py"
    script.write_text(PROGRAM)
    config = {
        "stopping": dict(STOPPING),
        "experiments": {"prog": {
            "command": f"{sys.executable} {script} {{rate}} {{units}}",
            "variants": {"grows": {"params": {"rate": 8 * MIB}}, "on_the_bar": {"params": {"rate": MIB}}},
            "params": {"units": 200}, "length_param": "units", "key_metrics": ["cache_bytes"],
            "warmup_units": 1, "verdict": {"cache_bytes": {"leak_per_unit": 2 * MIB, "retained": 64 * MIB}},
        }},
        "verdict": {"metrics": {}},
    }
    return config


def run_own(config, variant, out):
    plan = leaklab_config.stop_plan(config, "prog", "plain", variant)
    params = leaklab_config.run_params(config, "prog", "plain", variant)
    return measure("prog", variant, out, params, config, interval_s=0.02, timeout_s=120, stopping_plan=plan)


def test_a_users_program_is_stopped_with_sigterm_once_decided_and_keeps_its_final_sample(own_program, tmp_path):
    meta = run_own(own_program, "grows", tmp_path)
    assert meta["status"] == "ok" and meta["stop_reason"] == "decided" and meta["decided_verdict"] == "leak"
    assert meta["exit_code"] == -stopping.STOP_SIGNAL  # ended by the signal's default action
    assert meta["decided_metrics"]["cache_bytes"] == "leak"
    assert meta["n_units"] < 40 and meta["wall_s"] < 20
    samples, marks = read(tmp_path)
    assert samples["final"].sum() == 1 and samples["final"].iloc[-1]  # the runner took it before the signal
    units = marks[marks["phase"] == "unit"]["unit"]
    assert list(units) == list(range(1, meta["n_units"] + 1))


def test_a_run_whose_growth_sits_on_the_bar_runs_to_its_maximum(own_program, tmp_path):
    """cache_bytes grows exactly at the bar (half the threshold): no look can decide it
    (its interval is the bar itself), so the run goes to its configured length."""
    meta = run_own(own_program, "on_the_bar", tmp_path)
    assert meta["status"] == "ok" and meta["exit_code"] == 0
    assert meta["stop_reason"] == "max_units" and meta["n_units"] == 200
    assert meta["looks"] == sequential.looks(199)


def test_profiled_runs_and_unknown_lengths_are_never_watched(own_program, planted_config):
    assert leaklab_config.stop_plan(planted_config, "planted", "massif", "zero") == {}
    no_length = copy.deepcopy(own_program)
    del no_length["experiments"]["prog"]["length_param"]
    assert leaklab_config.stop_plan(no_length, "prog", "plain", "grows") == {}
    plan = leaklab_config.stop_plan(own_program, "prog", "plain", "grows")
    assert plan["max_units"] == 200 and plan["min_units"] == 5
    assert stopping.Plan.from_params(plan).settings.thresholds["cache_bytes"].leak_per_unit == 2 * MIB


def test_the_config_defaults_are_the_schemas_and_the_first_look_the_time_to_verdict_tables(root):
    assert leaklab_config.DEFAULT_MIN_UNITS == sequential.MIN_LOOK
    schema = yaml.safe_load((root / "workflow" / "schemas" / "config.schema.yaml").read_text())
    assert schema["properties"]["stopping"]["properties"]["min_units"]["default"] == sequential.MIN_LOOK
    assert schema["properties"]["stopping"]["properties"]["stop_on"]["default"] == list(leaklab_config.DEFAULT_STOP_ON)


def test_a_length_param_that_is_not_a_whole_number_names_key_and_allowed(own_program):
    bad = copy.deepcopy(own_program)
    bad["experiments"]["prog"]["length_param"] = "rate"
    bad["experiments"]["prog"]["variants"]["grows"]["params"]["rate"] = 0.5
    with pytest.raises(leaklab_config.ConfigError, match=r"experiments.prog.length_param: 'rate' is not a whole-number "
                                                         r"parameter of variant 'grows' \(it is 0.5\); allowed: units"):
        config_check._check_stopping(bad)


def test_the_nightly_profile_keeps_fixed_length_whatever_the_config_says(root):
    """The profile's `config:` entries are parsed as Snakemake parses --config (nested
    values as strings), then read back and checked like any config."""
    from snakemake.cli import parse_config
    from snakemake.utils import update_config

    from leaklab.measure import validation

    config = yaml.safe_load((root / "config.yaml").read_text())
    config["stopping"] = {"sequential": True, "min_units": 8}
    profile = yaml.safe_load((root / "profiles" / "nightly" / "config.yaml").read_text())
    update_config(config, parse_config(profile["config"]))
    validation.check_before_schema(config, root / "workflow" / "schemas" / "config.schema.yaml")
    assert config["stopping"] == {"sequential": False, "min_units": 8}
    assert leaklab_config.stop_plan(config, "planted", "plain", "zero") == {}


@pytest.mark.parametrize("stopping, message", [
    ({"sequential": "yes"}, "stopping.sequential: 'yes' is not a boolean"),
    ({"min_units": 1}, "stopping.min_units: 1 is out of range; allowed: >= 3"),
    ({"stop_on": ["leak", "leaks"]}, "stopping.stop_on.1: 'leaks'; allowed: leak, retention, settling, stable"),
    ({"sequentail": True}, "stopping: unknown key 'sequentail'; allowed: min_units, profiled_units, sequential, stop_on"),
])
def test_a_bad_stopping_block_names_the_key_and_what_is_allowed(root, stopping, message):
    from leaklab.measure import validation

    config = yaml.safe_load((root / "config.yaml").read_text())
    config["stopping"] = stopping
    with pytest.raises(validation.ConfigError) as err:
        validation.check_before_schema(config, root / "workflow" / "schemas" / "config.schema.yaml")
    assert str(err.value) == message


SMALL = """
replicates: 1
profilers: [plain]
sampler: {interval_s: 0.02, smaps: true}
limits: {timeout_s: 120, mem_cap_mb: 2048}
stopping: {sequential: true}
experiments:
  planted:
    variants: [zero, native_large]
    warmup_units: 2
    params: {steps: 60, interval_s: 0.01}
    verdict:
      rss_bytes: {leak_per_unit: 65536}
      malloc_in_use_bytes: {leak_per_unit: 65536}
"""


@pytest.mark.e2e
def test_the_plan_reaches_the_runs_through_params_and_runs_carry_why_they_stopped(root, tmp_path):
    """Through Snakemake: the leak is stopped, the stable run goes to its maximum, the
    `runs` table says so; a changed `stopping` re-runs the watched runs, and with
    stopping off a threshold change re-runs none."""
    import subprocess

    from leaklab.tables import tables

    (tmp_path / "config.yaml").write_text(SMALL)
    targets = [f"results/runs/planted/{v}/plain/rep1/meta.json" for v in ("zero", "native_large")]

    def snakemake(*args):
        return subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(root / "Snakefile"),
                               "--directory", str(tmp_path), "--configfile", str(tmp_path / "config.yaml"),
                               "--cores", "2", *targets, *args], capture_output=True, text=True, cwd=root)

    done = snakemake()
    assert done.returncode == 0, done.stderr[-3000:]
    runs_dir = tmp_path / "results" / "runs" / "planted"
    config = yaml.safe_load(SMALL)
    built = tables.build([runs_dir / v / "plain" / "rep1" for v in ("zero", "native_large")], config)
    runs = built["runs"].set_index("variant")
    assert runs.loc["native_large", "stop_reason"] == "decided" and runs.loc["native_large", "stopped_at_unit"] < 30
    assert runs.loc["zero", "stop_reason"] == "max_units" and runs.loc["zero", "stopped_at_unit"] == 60
    again = snakemake("-n", "--config", "stopping={min_units: 8}")
    assert again.returncode == 0 and "run_experiment        2" in again.stdout, again.stdout[-2000:]
    (tmp_path / "config.yaml").write_text(SMALL.replace("sequential: true", "sequential: false"))
    assert snakemake().returncode == 0
    (tmp_path / "config.yaml").write_text(SMALL.replace("sequential: true", "sequential: false")
                                          .replace("rss_bytes: {leak_per_unit: 65536}", "rss_bytes: {leak_per_unit: 131072}"))
    threshold = snakemake("-n")
    assert threshold.returncode == 0 and "run_experiment" not in threshold.stdout, threshold.stdout[-2000:]
