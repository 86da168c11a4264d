"""A user's own C program measured through configuration alone, and a runaway stopped."""

import subprocess
import sys

import pandas as pd
import pytest
import yaml

pytestmark = pytest.mark.e2e

MIB = 2**20


@pytest.fixture(scope="module")
def own_run(root, tmp_path_factory):
    """One replicate of each run: what these tests check (a capped runaway, the verdicts of
    a leak and its fixed twin, the profilers' leaking function) is decided by one run each."""
    workdir = tmp_path_factory.mktemp("own")
    config = {
        "replicates": 1,
        "sampler": {"interval_s": 0.02},
        "limits": {"timeout_s": 60, "mem_cap_mb": 300},
        "profiler_settings": {"massif": {"replicates": 1}, "heaptrack": {"replicates": 1}},
        "verdict": {"metrics": {"rss_bytes": {"leak_per_unit": 262144, "retained": 4194304},
                                "uss_bytes": {"leak_per_unit": 262144, "retained": 4194304}}},
        "experiments": {
            "c_cache": {
                "setup": f"cc -O0 -g -o {{setup_dir}}/leaky_loop {root}/tests/data/leaky_loop.c",
                "command": "{setup_dir}/leaky_loop {variant} {iterations} {block_bytes}",
                "variants": ["fixed", "leak", "runaway"],
                "baseline": "fixed",
                "unit": "iteration",
                "params": {"iterations": 30, "block_bytes": MIB},
                "warmup_units": 2,
                "profilers": ["plain", "massif", "heaptrack"],
                "profile_variants": ["fixed", "leak"],
            },
        },
    }
    (workdir / "own.yaml").write_text(yaml.safe_dump(config))
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(root / "Snakefile"), "--directory", str(workdir),
         "--configfile", str(workdir / "own.yaml"), "--cores", "2"],
        capture_output=True, text=True,
    )
    return workdir / "results", done


def test_the_pipeline_completes_but_says_a_run_failed(own_run):
    results, done = own_run
    assert done.returncode == 1, done.stderr[-3000:]
    assert "c_cache/runaway/plain/rep1: capped" in done.stderr
    for name in ("growth.csv", "comparisons.csv", "top_sites.csv"):
        assert (results / "tables" / name).exists()
    assert (results / "figures" / "timeline_c_cache.png").stat().st_size > 10_000


def test_a_runaway_is_capped_and_its_samples_kept(own_run):
    results, _ = own_run
    runs = pd.read_csv(results / "tables" / "runs.csv").set_index(["variant", "profiler", "replicate"])
    runaway = runs.loc[("runaway", "plain", 1)]
    assert runaway["status"] == "capped"
    # the run's cgroup holds it at the cap (the last sample lands at or just below it);
    # without a cgroup the sampler stops it within a few samples past the cap
    assert 150 * MIB < runaway["peak_rss_bytes"] < 600 * MIB
    samples = pd.read_parquet(results / "runs" / "c_cache" / "runaway" / "plain" / "rep1" / "samples.parquet")
    assert len(samples) > 3
    assert set(runs.drop(index="runaway", level="variant")["status"]) == {"ok"}


def test_verdicts_for_the_leak_and_its_fixed_twin(own_run):
    results, _ = own_run
    growth = pd.read_csv(results / "tables" / "growth.csv")
    rss = growth.query("metric == 'rss_bytes' and profiler == 'plain'").set_index("variant")
    assert rss.loc["leak", "verdict"] == "leak"
    assert rss.loc["leak", "growth_per_unit"] == pytest.approx(MIB, rel=0.1)  # one block per iteration
    assert rss.loc["leak", "unit"] == "iteration"
    assert rss.loc["fixed", "verdict"] == "stable"


def test_native_profilers_find_the_leaking_function(own_run):
    results, _ = own_run
    sites = pd.read_csv(results / "tables" / "top_sites.csv").query("kind == 'leaked'")
    for profiler in ("massif", "heaptrack"):
        top = sites.query("profiler == @profiler and variant == 'leak'").sort_values("rank").iloc[0]
        assert "cache_insert" in top["frame"], (profiler, top.to_dict())
        fixed = sites.query("profiler == @profiler and variant == 'fixed'")
        assert not fixed["frame"].str.contains("cache_insert").any()
