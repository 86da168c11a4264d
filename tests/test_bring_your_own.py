"""Bring your own program, unmodified, in one config block: per-variant parameters,
units counted from its own progress lines, a working-directory fixture, no wrapper."""

import shutil
import subprocess
import sys

import pandas as pd
import pytest

pytestmark = pytest.mark.e2e

KIB = 1024
MIB = 2**20
# what a user writes: the program prints "Iteration N finished, cache=BYTES" and needs
# segments/ in its working directory; no verdict section (the defaults apply)
OWN = """
experiments:
  progress:
    setup: "cc -O0 -g -o {setup_dir}/progress_leak {project}/progress_leak.c"
    command: "{setup_dir}/progress_leak {rate} {iterations}"
    variants:
      clean: {params: {rate: 0}}
      leak_small: {params: {rate: 65536}}
      leak_big: {params: {rate: 1048576}}
      wrapped: {params: {rate: 1048576}, command: "sh -c '{setup_dir}/progress_leak {rate} {iterations}'"}
    params: {iterations: 30}
    unit: iteration
    unit_pattern: "Iteration \\\\d+ finished, cache=(?P<cache_bytes>\\\\d+)"
    key_metrics: [cache_bytes]
    workdir_files: [segments]
    warmup_units: 2
    verdict:
      rss_bytes: {leak_per_unit: 32768, retained: 4194304}
    profilers: [plain, heaptrack]
    profile_variants: [clean, leak_big, wrapped]
  fd_leak:
    variants: [close, leak]
replicates: 1
sampler: {interval_s: 0.02}
limits: {timeout_s: 60, mem_cap_mb: 512}
"""


@pytest.fixture(scope="module")
def own(root, tmp_path_factory):
    """The config above, one replicate of each run: what these tests check (which runs ran,
    units, per-variant verdicts, heaptrack's sites) holds run by run, and lives in the
    tables and the summary (a user's experiment's figures: tests/test_own_reproduction.py)."""
    project = tmp_path_factory.mktemp("project")  # the user's files: config, source, fixture
    shutil.copy(root / "tests" / "data" / "progress_leak.c", project)
    (project / "segments").mkdir()
    (project / "segments" / "journal").write_text("")
    (project / "my.yaml").write_text(OWN)
    results = tmp_path_factory.mktemp("elsewhere")  # results go to another directory
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(root / "Snakefile"), "--directory", str(results),
         "--configfile", str(project / "my.yaml"), "--config", "only=[progress]", "--cores", "2", "results/summary.md"],
        capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return project, results / "results"


def test_only_the_chosen_experiment_runs_with_project_kept(own):
    """Every variant of the chosen experiment ran, once per replicate (one here), and nothing else."""
    project, results = own
    runs = pd.read_csv(results / "tables" / "runs.csv")
    assert set(runs["experiment"]) == {"progress"}
    assert len(runs.query("profiler == 'plain'")) == 4 * 1 and set(runs["status"]) == {"ok"}
    assert not (project / "results").exists()  # {project} is where the config lives, results elsewhere
    assert (project / "segments" / "journal").read_text() == ""  # each run wrote its own copy
    journal = results / "runs" / "progress" / "clean" / "plain" / "rep1" / "work" / "segments" / "journal"
    assert journal.read_text().split() == [str(i) for i in range(1, 31)]


def test_units_come_from_the_programs_own_progress_lines(own):
    """Every run counted its 30 iterations; the named group reached 30 MiB in every replicate (one here)."""
    _, results = own
    runs = pd.read_csv(results / "tables" / "runs.csv")
    assert set(runs["n_units"]) == {30} and set(runs["unit"]) == {"iteration"}
    units = pd.read_csv(results / "tables" / "units.csv")
    cache = units.query("variant == 'leak_big' and metric == 'cache_bytes' and profiler == 'plain'")
    assert cache.groupby("replicate")["value"].max().tolist() == [30 * MIB]  # a named group, per replicate


def test_per_variant_params_give_each_variant_its_verdict(own):
    _, results = own
    growth = pd.read_csv(results / "tables" / "growth.csv")
    rss = growth.query("metric == 'rss_bytes' and profiler == 'plain'").set_index("variant")
    assert rss.loc["clean", "verdict"] == "stable"
    assert rss.loc["leak_small", "verdict"] == "leak"  # 64 KiB/iteration: caught at a 32 KiB bar
    assert rss.loc["leak_small", "growth_per_unit"] == pytest.approx(64 * KIB, rel=0.25)
    assert rss.loc["leak_big", "growth_per_unit"] == pytest.approx(MIB, rel=0.1)
    assert rss.loc["leak_big", "verdict"] == "leak"
    assert rss.loc["leak_big", "unit"] == "iteration"
    # the default thresholds apply to what the config does not set
    assert growth.query("metric == 'rss_bytes'")["leak_per_unit"].eq(32768).all()


def test_heaptrack_names_the_leaking_function_and_never_a_shell_as_ok(own):
    _, results = own
    runs = pd.read_csv(results / "tables" / "runs.csv").query("profiler == 'heaptrack'").set_index("variant")
    assert runs.loc["leak_big", "profile_status"] == "ok"
    assert runs.loc["wrapped", "profile_status"] == "wrapper"
    assert "shell" in runs.loc["wrapped", "profile_error"]
    sites = pd.read_csv(results / "tables" / "top_sites.csv").query("kind == 'leaked' and profiler == 'heaptrack'")
    top = sites.query("variant == 'leak_big'").sort_values("rank").iloc[0]
    assert "remember_request" in top["frame"], top.to_dict()
    assert not sites.query("variant == 'clean'")["frame"].str.contains("remember_request").any()
    summary = (results / "summary.md").read_text()
    assert "progress/wrapped/heaptrack/rep1: **wrapper**" in summary


def test_attribution_places_the_leak_by_glibc_heap_and_does_not_guess_without_it(own):
    """The program itself gets glibc's heap (libmemusage preloaded): its 1 MiB/iteration
    is placed in the native heap; behind a shell wrapper nothing can be preloaded into it,
    and attribution says so instead of guessing."""
    _, results = own
    attribution = pd.read_csv(results / "tables" / "attribution.csv")
    big = attribution.query("variant == 'leak_big'").set_index("layer")["growth_per_unit"]
    assert big["native heap"] == pytest.approx(MIB, rel=0.02)
    assert big["allocator retention / other"] == pytest.approx(0, abs=0.02 * MIB)
    wrapped = set(attribution.query("variant == 'wrapped'")["layer"])
    assert "native or allocator (no heap metric from this program)" in wrapped
    assert "allocator retention / other" not in wrapped
    assert "native or allocator (no heap metric from this program)" in (results / "summary.md").read_text()
