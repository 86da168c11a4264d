"""A user's own program: argv without a shell, wrappers named, progress lines as units,
per-variant settings, only the chosen experiments, and the verdict defaults."""

import copy
import json
import subprocess
import sys

import pytest
import yaml

from leaklab.measure import config as leaklab_config
from leaklab.measure import config_check
from leaklab.process import own_program, unit_protocol

ENTRY = {"command": "{setup_dir}/prog {rate} {n}", "params": {"n": 10},
         "variants": {"clean": {"params": {"rate": 0}}, "leak": {"params": {"rate": 4096}}}}


def test_commands_run_without_a_shell_unless_they_need_one():
    fields = {"setup_dir": "/opt/my dir", "variant": "leak", "n": 3}
    assert own_program.argv("{setup_dir}/prog --variant {variant} {n}", fields) == \
        ["/opt/my dir/prog", "--variant", "leak", "3"]  # filled after splitting: a space stays inside
    assert own_program.argv("{setup_dir}/prog {n} | tee out", fields) == \
        ["/bin/sh", "-c", "'/opt/my dir'/prog 3 | tee out"]  # under a shell every value is quoted
    assert not own_program.needs_shell("prog 'a|b' \"x > y\"")  # quoted: arguments, not operators
    assert own_program.needs_shell("prog $HOME") and own_program.needs_shell("a && b")


def test_a_shell_or_a_script_in_front_of_the_program_is_named(tmp_path):
    assert "shell" in own_program.wrapper_note(["sh", "-c", "prog"])
    script = tmp_path / "run.sh"
    script.write_text("#!/usr/bin/env bash\nexec prog\n")
    assert "script run by bash" in own_program.wrapper_note([str(script)])
    assert own_program.wrapper_note(["/bin/true"]) is None  # a program: its profile is its own


def test_workdir_files_are_fresh_copies(tmp_path):
    (tmp_path / "segments").mkdir()
    (tmp_path / "segments" / "a").write_text("data")
    work = tmp_path / "work"
    work.mkdir()
    staged = own_program.stage_workdir(["segments"], {"project": str(tmp_path)}, work)
    assert staged == [work / "segments"] and (work / "segments" / "a").read_text() == "data"
    (work / "segments" / "a").write_text("changed by the run")
    assert (tmp_path / "segments" / "a").read_text() == "data"
    with pytest.raises(FileNotFoundError, match="workdir_files"):
        own_program.stage_workdir(["missing"], {"project": str(tmp_path)}, work)


def test_progress_lines_are_units_and_named_groups_metrics(tmp_path):
    log, marks = tmp_path / "run.log", tmp_path / "marks.jsonl"
    protocol = unit_protocol.ProtocolMarks("pattern", log, marks,
                                          pattern=r"Iteration \d+ finished, cache=(?P<cache>\d+)")
    protocol.poll(0.1, 1)
    for t, line in [(0.5, b"starting"), (0.5, b"Iteration 1 finished, cache=10"), (0.6, b"\xff\xfe noise"),
                    (0.9, b"Iteration 2 finished, cache=20")]:
        protocol.line(line, t, 1)
    protocol.close()
    rows = [json.loads(line) for line in marks.read_text().splitlines()]
    assert [(r["unit"], r["phase"], r.get("cache")) for r in rows] == [(0, "start", None), (1, "unit", 10.0),
                                                                       (2, "unit", 20.0)]
    assert [r["t"] for r in rows[1:]] == [0.5, 0.9] and protocol.bad.count == 0


def test_per_variant_params_and_their_errors():
    config = {"verdict": {"metrics": {}}, "experiments": {"own": copy.deepcopy(ENTRY)}}
    config_check.check(config)
    assert leaklab_config.run_params(config, "own", "plain", "leak")["rate"] == 4096
    assert leaklab_config.run_params(config, "own", "plain", "clean")["rate"] == 0
    config["experiments"]["own"]["variants"]["leak"]["command"] = "{setup_dir}/prog {rat}"
    with pytest.raises(leaklab_config.ConfigError, match=r"experiments.own.variants.leak.command: unknown placeholder "
                                                         r"\{rat\}; allowed: .*\{rate\}"):
        config_check.check(config)
    builtin = {"verdict": {"metrics": {}},
               "experiments": {"fd_leak": {"variants": {"close": None, "leak": {"params": {"rotatoins": 9}}}}}}
    with pytest.raises(leaklab_config.ConfigError, match="experiments.fd_leak.variants.leak.params.rotatoins: "
                                                         "unknown parameter"):
        config_check.check(builtin)


def test_a_unit_pattern_that_does_not_compile_is_refused():
    config = {"verdict": {"metrics": {}}, "experiments": {"own": {**ENTRY, "unit_pattern": "Iteration ("}}}
    with pytest.raises(leaklab_config.ConfigError, match=r"experiments.own.unit_pattern: 'Iteration \(' is not"):
        config_check.check(config)


@pytest.mark.parametrize("group", ["rss_bytes", "unit", "pss_bytes", "t"])
def test_a_unit_pattern_group_may_not_shadow_a_reading_or_a_column(root, tmp_path, group):
    """A group named rss_bytes would replace the runner's reading (a program leaking
    2 MiB/unit was judged stable through it); one named unit made every line bad.  Both
    are refused before any job runs, by the workflow itself."""
    config = {"verdict": {"metrics": {}}, "experiments": {"own": {**ENTRY, "unit_pattern": f"done (?P<{group}>\\d+)"}}}
    with pytest.raises(leaklab_config.ConfigError,
                       match=rf"experiments.own.unit_pattern: group '{group}' of .* reserved: .*rss_bytes.*unit"):
        config_check.check(config)
    full = yaml.safe_load((root / "tests" / "config.yaml").read_text())
    full["experiments"] = {"own": {"command": "true", "variants": ["x"], "unit_pattern": f"done (?P<{group}>\\d+)"}}
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(full))
    dry = subprocess.run([sys.executable, "-m", "snakemake", "-n", "-s", str(root / "Snakefile"),
                          "--configfile", str(tmp_path / "exp.yaml"), "--directory", str(tmp_path)],
                         capture_output=True, text=True, cwd=root)
    assert dry.returncode != 0 and f"group '{group}'" in dry.stdout + dry.stderr


def test_only_keeps_the_chosen_experiments(root):
    config = yaml.safe_load((root / "config.yaml").read_text())
    config["experiments"]["own"] = copy.deepcopy(ENTRY)
    config["only"] = ["own"]
    leaklab_config.select_only(config)
    assert list(config["experiments"]) == ["own"]
    config["only"] = "nope"
    with pytest.raises(leaklab_config.ConfigError, match="only: 'nope' names no configured experiment; allowed: own"):
        leaklab_config.select_only(config)
