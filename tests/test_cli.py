"""The ``leaklab`` command: one entry point for every verb, declared in pyproject.toml."""

import importlib
import subprocess
import sys
import tomllib

import yaml


def leaklab(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "leaklab", *args], capture_output=True, text=True, cwd=cwd)


def test_the_script_is_declared_and_lists_every_verb(root):
    target = tomllib.loads((root / "pyproject.toml").read_text())["project"]["scripts"]["leaklab"]
    module, function = target.split(":")
    assert getattr(importlib.import_module(module), function) is not None
    done = leaklab("--help")
    assert done.returncode == 0
    for verb in ("run", "nightly", "sweep", "report", "measure", "bench", "lock"):
        assert f"\n  {verb} " in done.stdout, verb


def test_run_passes_snakemake_options_through(root, tmp_path):
    done = leaklab("run", "--directory", str(tmp_path), "--configfile", str(root / "tests" / "config.yaml"),
                   "--config", "only=[fd_leak]", "-n")
    assert done.returncode == 0, done.stderr[-3000:]
    output = done.stdout + done.stderr
    assert "run_experiment" in output and "results/runs/fd_leak/" in output
    assert "results/runs/planted/" not in output  # only the chosen experiment
    bad = leaklab("run", "--directory", str(tmp_path), "--configfile", str(root / "tests" / "config.yaml"),
                  "--config", "only=[fd_laek]", "-n")
    assert bad.returncode != 0 and "only: 'fd_laek' names no configured experiment; allowed:" in bad.stdout + bad.stderr


def test_lock_and_measure(root, tmp_path):
    assert leaklab("lock", str(tmp_path)).returncode == 0  # nothing locked: nothing to do
    done = leaklab("measure", "--experiment", "planted", "--variant", "zero", "--outdir", str(tmp_path / "run"),
                   "--params", '{"steps": 4, "interval_s": 0.01}')
    assert done.returncode == 0, done.stderr[-3000:]
    assert "planted/zero/plain: ok" in done.stdout
    assert (tmp_path / "run" / "meta.json").exists()


def test_measure_resolves_a_command_experiment_from_its_config(tmp_path):
    """`--config` is resolved as a rule's slice is (``experiments.specs``): the command
    experiment it declares runs; a name neither built in nor declared is one line naming
    the allowed experiments, not a traceback."""
    config = tmp_path / "mine.yaml"
    config.write_text(yaml.safe_dump({"experiments": {"mine": {
        "command": "sh -c 'for i in 1 2 3; do echo step $i; sleep 0.05; done'", "variants": ["x"],
        "unit": "step", "unit_pattern": "step (\\d+)"}}}))
    done = leaklab("measure", "--experiment", "mine", "--variant", "x", "--outdir", str(tmp_path / "run"),
                   "--config", str(config))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "mine/x/plain: ok" in done.stdout and "3 step(s)" in done.stdout
    unknown = leaklab("measure", "--experiment", "mine", "--variant", "x", "--outdir", str(tmp_path / "other"))
    assert unknown.returncode != 0
    assert unknown.stderr.strip().splitlines()[-1] == (
        "leaklab measure: --experiment: unknown experiment 'mine'; allowed: rocksdb_merge, dict_shrink, duckdb_load, "
        "fd_leak, planted, go_merge, cpp_merge, go_map, go_fd")


def test_sweep_runs_the_version_sweep_target(root, tmp_path):
    config = tmp_path / "sweep.yaml"
    config.write_text(yaml.safe_dump({
        "experiments": {"duckdb_load": {"variants": ["load_on"], "params": {"duration": "PT30S", "resident_tables": 10}}},
        "version_sweep": {"experiment": "duckdb_load", "package": "duckdb", "versions": ["1.4.4"],
                          "variants": ["load_on"], "warmup_units": 2}}))
    done = leaklab("sweep", "--directory", str(tmp_path), "--configfile", str(config), "-n")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "sweep_run" in done.stdout + done.stderr and "version_sweep" in done.stdout + done.stderr


def test_every_verb_says_leaklab_in_its_help():
    """`leaklab <verb> --help` shows leaklab's own options under `usage: leaklab <verb>`;
    the verbs that hand the rest to Snakemake say so in one line and keep its help one
    flag away, instead of printing it under another program's name."""
    from leaklab.commands import VERBS

    for verb in VERBS:
        done = leaklab(verb, "--help")
        assert done.returncode == 0, (verb, done.stderr[-2000:])
        assert done.stdout.startswith(f"usage: leaklab {verb}"), (verb, done.stdout[:300])
    for verb in ("run", "sweep", "report"):
        shown = leaklab(verb, "--help").stdout
        assert "--directory" in shown and "passes through to Snakemake" in shown
        assert f"leaklab {verb} --snakemake-help" in shown and len(shown.splitlines()) < 30
    assert "passes through to Snakemake" in leaklab("nightly", "--help").stdout
    snakemake = leaklab("run", "--snakemake-help")
    assert snakemake.returncode == 0 and snakemake.stdout.startswith("usage: snakemake")
    assert "--configfile" in snakemake.stdout and len(snakemake.stdout.splitlines()) > 300


def test_report_asks_for_the_page_whatever_the_options_end_with(root, tmp_path):
    """The target goes before the user's options: ``--configfile a.yaml`` last must not
    read ``results/report.html`` as a second config file."""
    done = leaklab("report", "-n", "--directory", str(tmp_path), "--configfile", str(root / "tests" / "config.yaml"))
    assert done.returncode == 0, done.stderr[-3000:]
    output = done.stdout + done.stderr
    assert "rule report:" in output and "results/report.html" in output
