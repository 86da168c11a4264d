"""How the default run's jobs are scheduled, read from a dry run of the real workflow on
config.yaml: the runs that may go on to their horizon start first (priority 1), and
paced runs (planted among them) take a `paced` slot, CPU-bound plain and profiled runs
one slot each."""

import re
import subprocess
import sys

from leaklab import experiments


def dry_run_jobs(root, tmp_path) -> list[dict]:
    (tmp_path / "config.yaml").write_text((root / "config.yaml").read_text())
    done = subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(root / "Snakefile"),
                           "--directory", str(tmp_path), "--cores", "4", "-n"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", done.stdout):
        if not re.match(r"(?:local)?rule run_experiment:", block):
            continue
        wildcards = dict(re.findall(r"(\w+)=([^,\s]+)", re.search(r"wildcards: (.*)", block).group(1)))
        priority = re.search(r"priority: (\d+)", block)
        resources = dict(re.findall(r"(measure|profile|paced)=(\d+)", re.search(r"resources: (.*)", block).group(1)))
        jobs.append({**wildcards, "priority": int(priority.group(1)) if priority else 0,
                     **{k: int(v) for k, v in resources.items()}})
    return jobs


def test_confirming_runs_start_first_and_paced_runs_take_a_paced_slot(root, tmp_path):
    jobs = dry_run_jobs(root, tmp_path)
    assert len(jobs) == 79
    first = {(j["experiment"], j["variant"], j["profiler"]) for j in jobs if j["priority"] == 1}
    assert first == {("duckdb_load", "load_on", "plain"), ("duckdb_load", "load_off", "plain")}
    assert experiments.builtin("planted").paced
    for job in jobs:
        paced = experiments.builtin(job["experiment"]).paced
        plain = job["profiler"] == "plain"
        slots = (0, 0, 1) if paced else (1, 0, 0) if plain else (0, 1, 0)
        assert (job["measure"], job["profile"], job["paced"]) == slots, job
    # the two CPU-bound chains, one beside the other: plain runs, profiled runs
    assert (sum(job["measure"] for job in jobs), sum(job["profile"] for job in jobs)) == (32, 19)
