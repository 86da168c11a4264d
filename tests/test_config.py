"""Configuration errors name the key, the bad value and what is allowed, before any job."""

import copy
import subprocess
import sys

import pytest
import yaml

from leaklab import config as leaklab_config


@pytest.fixture
def default_config(root):
    return yaml.safe_load((root / "config.yaml").read_text())


def test_default_config_passes_and_lists_every_run(default_config):
    leaklab_config.check(default_config)
    runs = leaklab_config.runs(default_config)
    plain = [run for run in runs if run.profiler == "plain"]
    replicates = {name: entry.get("replicates", default_config["replicates"])
                  for name, entry in default_config["experiments"].items()}
    assert len(plain) == sum(len(entry["variants"]) * replicates[name]
                             for name, entry in default_config["experiments"].items())
    assert len(plain) == (5 + 2 + 2 + 7) * 2 + 2  # duckdb_load runs long: one replicate
    assert runs[0].path == "rocksdb_merge/binding-dummy/plain/rep1"
    massif = [run.variant for run in runs if run.experiment == "rocksdb_merge" and run.profiler == "massif"]
    assert massif == default_config["experiments"]["rocksdb_merge"]["profile_variants"]


def test_heavy_profilers_run_a_scaled_workload(default_config):
    default_config["profiler_settings"]["massif"]["scale"] = 0.1
    assert leaklab_config.run_params(default_config, "rocksdb_merge", "massif")["keys"] == 5000
    assert leaklab_config.run_params(default_config, "rocksdb_merge", "plain")["keys"] == 50000
    assert leaklab_config.run_params(default_config, "fd_leak", "massif")["rotations"] == 300  # units never scale
    default_config["experiments"]["duckdb_load"]["profiler_settings"] = {"massif": {"pages_as_heap": True}}
    assert leaklab_config.profiler_settings(default_config, "duckdb_load", "massif")["pages_as_heap"] is True
    assert "scale" not in leaklab_config.profiler_settings(default_config, "duckdb_load", "massif")


@pytest.mark.parametrize("mutate, message", [
    (lambda c: c["experiments"]["rocksdb_merge"].update(variants=["capi-leaky"]),
     "experiments.rocksdb_merge.variants: unknown variant 'capi-leaky'; allowed: binding-dummy"),
    (lambda c: c["experiments"]["duckdb_load"]["params"].update(duration="an hour"),
     "experiments.duckdb_load.params.duration: duration 'an hour' is neither seconds nor ISO-8601"),
    (lambda c: c["experiments"]["fd_leak"]["params"].update(rotatoins=5),
     "experiments.fd_leak.params.rotatoins: unknown parameter; allowed: fd_headroom, interval_s"),
    (lambda c: c["experiments"]["dict_shrink"]["params"].update(entries=-5),
     "experiments.dict_shrink.params.entries: -5 must be positive"),
    (lambda c: c["experiments"]["dict_shrink"].update(warmup_units=4),
     "experiments.dict_shrink.warmup_units: 4 leaves 1 of 5 cycles"),
    (lambda c: c["experiments"]["rocksdb_merge"].update(profile_variants=["capi-real", "capi-fixed"]),
     "experiments.rocksdb_merge.profile_variants: 'capi-fixed' is not among its variants"),
    (lambda c: c["experiments"].update(go_map={"variants": ["x"]}),
     "experiments.go_map: unknown experiment; allowed: rocksdb_merge, dict_shrink"),
])
def test_config_errors_name_key_value_and_allowed(default_config, mutate, message):
    bad = copy.deepcopy(default_config)
    mutate(bad)
    with pytest.raises(leaklab_config.ConfigError) as err:
        leaklab_config.check(bad)
    assert message in str(err.value)


def test_iso_durations_parse_like_java_duration():
    from leaklab.experiments.duckdb_load import parse_duration

    assert parse_duration("PT1M") == 60
    assert parse_duration("PT1H") == 3600
    assert parse_duration("pt1m30s") == 90
    assert parse_duration(12) == 12
    for bad in ("PT", "P", "1M", "PT-1S", 0):
        with pytest.raises(ValueError):
            parse_duration(bad)


def dry_run(root, path, config) -> subprocess.CompletedProcess:
    path.write_text(yaml.safe_dump(config))
    return subprocess.run([sys.executable, "-m", "snakemake", "-n", "--configfile", str(path)],
                          cwd=root, capture_output=True, text=True)


def test_snakemake_refuses_a_bad_config_before_any_job(root, tmp_path, default_config):
    bad = copy.deepcopy(default_config)
    bad["experiments"]["fd_leak"]["variants"] = ["close", "laek"]
    bad["sampler"]["interval_s"] = 0.0001
    result = dry_run(root, tmp_path / "bad.yaml", bad)
    assert result.returncode != 0
    assert "interval_s" in result.stderr + result.stdout  # the schema names the key
    bad["sampler"]["interval_s"] = 0.05
    result = dry_run(root, tmp_path / "bad.yaml", bad)
    assert result.returncode != 0
    assert "experiments.fd_leak.variants: unknown variant 'laek'; allowed: close, leak" in result.stderr + result.stdout
    assert not (root / "results" / "runs" / "fd_leak" / "laek").exists()
