"""Configuration errors name the key, the bad value and what is allowed, before any job."""

import copy
import subprocess
import sys

import pytest
import yaml

from leaklab.measure import config as leaklab_config
from leaklab.measure import config_check


@pytest.fixture
def default_config(root):
    return yaml.safe_load((root / "config.yaml").read_text())


def test_default_config_passes_and_lists_every_run(default_config):
    config_check.check(default_config)
    runs = leaklab_config.runs(default_config)
    plain = [run for run in runs if run.profiler == "plain"]
    replicates = {name: entry.get("replicates", default_config["replicates"])
                  for name, entry in default_config["experiments"].items()}
    assert len(plain) == sum(len(entry["variants"]) * replicates[name]
                             for name, entry in default_config["experiments"].items())
    # duckdb_load runs long: one replicate; so does go_fd, whose counts are exact
    assert len(plain) == (5 + 2 + 2 + 7) * 2 + 2 + (4 + 2 + 3) * 2 + 2
    assert runs[0].path == "rocksdb_merge/binding-dummy/plain/rep1"
    massif = [run.variant for run in runs if run.experiment == "rocksdb_merge" and run.profiler == "massif"]
    assert massif == default_config["experiments"]["rocksdb_merge"]["profile_variants"]


def test_heavy_profilers_run_a_scaled_workload(default_config):
    default_config["profiler_settings"]["massif"]["scale"] = 0.1
    assert leaklab_config.run_params(default_config, "rocksdb_merge", "massif")["keys"] == 5000
    assert leaklab_config.run_params(default_config, "rocksdb_merge", "plain")["keys"] == 50000
    # units never scale: a profiled run is shorter only because its purpose needs fewer
    assert leaklab_config.run_params(default_config, "fd_leak", "massif")["rotations"] == 10 + 6
    default_config["experiments"]["duckdb_load"]["profiler_settings"] = {"massif": {"pages_as_heap": True}}
    assert leaklab_config.profiler_settings(default_config, "duckdb_load", "massif")["pages_as_heap"] is True
    assert "scale" not in leaklab_config.profiler_settings(default_config, "duckdb_load", "massif")


def test_a_profiled_run_runs_its_warm_up_and_the_units_its_profile_needs(default_config):
    """Profiled rows are never judged: after the warm-up, ``stopping.profiled_units``
    units give the profiler's growth timeline and its sites; more only cost time."""
    default_config["experiments"]["go_merge"]["params"]["passes"] = 20
    assert leaklab_config.run_params(default_config, "go_merge", "plain", "leaky-real")["passes"] == 20
    assert leaklab_config.run_params(default_config, "go_merge", "heaptrack", "leaky-real")["passes"] == 1 + 6
    default_config["stopping"]["profiled_units"] = 12
    assert leaklab_config.run_params(default_config, "go_merge", "massif", "leaky-real")["passes"] == 1 + 12
    # a run configured shorter keeps its length; an explicit profile_params length wins
    assert leaklab_config.run_params(default_config, "dict_shrink", "massif")["cycles"] == 5
    default_config["experiments"]["go_merge"]["profile_params"] = {"passes": 3}
    assert leaklab_config.run_params(default_config, "go_merge", "massif", "leaky-real")["passes"] == 3
    # duckdb_load's length is a duration: its profile_params set it
    assert leaklab_config.run_params(default_config, "duckdb_load", "massif")["duration"] == "PT30S"
    # a command experiment is capped through its length_param
    default_config["experiments"]["own"] = {"command": "prog --steps {steps}", "variants": ["a"], "warmup_units": 2,
                                            "length_param": "steps", "params": {"steps": 100}}
    assert leaklab_config.run_params(default_config, "own", "heaptrack", "a")["steps"] == 2 + 12
    assert leaklab_config.run_params(default_config, "own", "plain", "a")["steps"] == 100


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
    (lambda c: c["experiments"].update(rust_map={"variants": ["x"]}),
     "experiments.rust_map: unknown experiment; allowed: rocksdb_merge, dict_shrink"),
])
def test_config_errors_name_key_value_and_allowed(default_config, mutate, message):
    bad = copy.deepcopy(default_config)
    mutate(bad)
    with pytest.raises(leaklab_config.ConfigError) as err:
        config_check.check(bad)
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


@pytest.mark.slow
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


def first_error(root, config) -> str:
    """The error leaklab gives before any job: its own checks, the schema, the config checks."""
    from snakemake.utils import validate

    from leaklab.measure import validation

    schema = root / "workflow" / "schemas" / "config.schema.yaml"
    with pytest.raises(leaklab_config.ConfigError) as err:
        validation.check_before_schema(config, schema)
        validate(config, str(schema))
        config_check.check(config)
    return str(err.value)


def minimal(**experiments) -> dict:
    return {"verdict": {},
            "experiments": experiments or {"fd_leak": {"variants": ["close", "leak"], "params": {"rotations": 20}}}}


@pytest.mark.parametrize("variant", ["..", ".", "a/b", "a b", ".hidden", "-x", "", "x" * 65])
def test_ids_are_plain_names(root, variant):
    message = first_error(root, minimal(cmd={"command": "true {variant}", "variants": ["ok", variant]}))
    assert message.startswith(f"experiments.cmd.variants: {variant!r} is not a plain name; allowed: letters, digits")
    assert "\n" not in message


@pytest.mark.parametrize("mutate, message", [
    (lambda c: c["experiments"].update(plantd={"variants": ["zero"]}),
     "experiments.plantd: unknown experiment 'plantd'; known: rocksdb_merge, dict_shrink, duckdb_load, fd_leak, planted"),
    (lambda c: c["experiments"].update(planted={"variants": ["zero"], "params": {"steps": 8.7}}),
     "experiments.planted.params.steps: 8.7 is not a whole number"),
    (lambda c: c["experiments"].update(planted={"variants": ["zero"], "params": {"interval_s": float("nan")}}),
     "experiments.planted.params.interval_s: nan is not a finite number"),
    (lambda c: c.update(verdict={"metrics": {"rss_bytes": {"leak_per_unit": float("inf")}}}),
     "verdict.metrics.rss_bytes.leak_per_unit: inf is not a finite number"),
    (lambda c: c["experiments"].update(rocksdb_merge={"variants": ["capi-real"], "params": {"keys": 10**12}}),
     "experiments.rocksdb_merge.params.keys: 1000000000000 is too large; allowed: up to 10,000,000"),
    (lambda c: c["experiments"].update(rocksdb_merge={"variants": ["capi-real"],
                                                      "params": {"keys": 10**7, "operand_bytes": 2**20}}),
     "experiments.rocksdb_merge.params: the data set takes"),
    (lambda c: c.update(verdict={"metrics": {"rss_byte": {"leak_per_unit": 1, "retained": 1}}}),
     "verdict.metrics.rss_byte: unknown metric 'rss_byte'; allowed: "),
    (lambda c: c.update(limits={"mem_cap_mb": 10**12}),
     "limits.mem_cap_mb: 1000000000000 is out of range; allowed: <= 1048576"),
    (lambda c: c.update(limits={"mem_cap_mb": 1048576}),
     "limits.mem_cap_mb: 1048576 is more than this machine's memory; allowed: up to "),
    (lambda c: c.update(limits={"timeout_s": 1e15}),
     "limits.timeout_s: 1000000000000000.0 is out of range; allowed: <= 86400"),
    (lambda c: c.update(sampler={"interval_s": 0.0001}),
     "sampler.interval_s: 0.0001 is out of range; allowed: >= 0.001"),
    (lambda c: c.update(sampler={"intervall_s": 0.1}),
     "sampler: unknown key 'intervall_s'; allowed: interval_s, smaps"),
    (lambda c: c.update(profilers=["plain", "masif"]),
     "profilers.1: 'masif'; allowed: plain, massif, jemalloc, heaptrack, tracemalloc"),
    (lambda c: c["experiments"].update(cmd={"command": "prog {n:05x}", "variants": ["a"], "params": {"n": "x"}}),
     "experiments.cmd.command: 'prog {n:05x}' is not a valid template"),
])
def test_bad_values_get_one_line_naming_key_value_and_allowed(root, mutate, message):
    config = minimal()
    mutate(config)
    error = first_error(root, config)
    assert error.startswith(message) and "\n" not in error


def test_format_specs_in_command_templates_work(root):
    from leaklab import experiments
    from leaklab.process import own_program

    config = minimal(cmd={"command": "prog {variant} {n:05d} {ratio:.2f}", "variants": ["a"], "params": {"n": 7, "ratio": 0.5}})
    config_check.check(config)
    spec = experiments.specs(config)["cmd"]
    fields = own_program.fields(config["experiments"]["cmd"]["params"], "a", root)
    assert own_program.argv(spec.command, fields)[1:] == ["a", "00007", "0.50"]


def test_specs_are_resolved_per_config_and_read_only():
    """Two configurations resolved one after the other: neither's command experiment
    replaces or leaks into the other's (no registry), the built-ins come first, and the
    mapping cannot be changed after it is resolved."""
    from leaklab import experiments

    first = experiments.specs({"experiments": {"cmd": {"command": "a", "variants": ["x"]}}})
    second = experiments.specs({"experiments": {"fd_leak": {"variants": ["close"]},
                                                "cmd": {"command": "b", "variants": ["y", "z"], "length_param": "n"}}})
    assert first["cmd"].command == "a" and first["cmd"].variants == ("x",) and first["cmd"].length_param is None
    assert second["cmd"].command == "b" and second["cmd"].variants == ("y", "z") and second["cmd"].length_param == "n"
    assert list(first) == [*experiments.NAMES, "cmd"] and first["planted"] is experiments.builtin("planted")
    assert "cmd" not in experiments.specs({"experiments": {}}) and first.get("nope") is None
    with pytest.raises(ValueError, match=r"unknown experiment 'nope'; allowed: rocksdb_merge, .*, go_fd, cmd$"):
        first["nope"]
    with pytest.raises(TypeError):
        first["cmd"] = second["cmd"]


def test_two_experiments_never_share_a_run_directory(root):
    """Every run of the default config has its own directory; a variant `..` (which
    once made `plain/rep1` of one experiment the run of another) is refused by the id
    check, and by the run-directory check even when the id check is bypassed."""
    config = yaml.safe_load((root / "config.yaml").read_text())
    paths = [run.path for run in leaklab_config.runs(config)]
    assert len(set(paths)) == len(paths)
    two = minimal(a={"command": "true", "variants": ["x", ".."]}, b={"command": "true", "variants": ["x", "y"]})
    assert "'..' is not a plain name" in first_error(root, two)
    with pytest.raises(leaklab_config.ConfigError, match=r"experiments.a.variants: '\.\.' would write into"):
        config_check.check(two)


@pytest.mark.slow
def test_bad_yaml_names_file_and_line(root, tmp_path):
    (tmp_path / "config.yaml").write_text("replicates: 2\nexperiments:\n  fd_leak: {variants: [close, leak}\n")
    result = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--snakefile", str(root / "Snakefile"),
                             "--directory", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "config: config.yaml:3:" in output and "not valid YAML" in output


@pytest.mark.slow
def test_an_unknown_experiment_is_one_line_not_a_schema_dump(root, tmp_path):
    config = minimal()
    config["experiments"]["plantd"] = {"variants": ["zero"]}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--snakefile", str(root / "Snakefile"),
                             "--directory", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "config: experiments.plantd: unknown experiment 'plantd'; known: rocksdb_merge" in output
    assert "required property" not in output and not (tmp_path / "results").exists()
