"""The workflow on a real (one-node) Slurm cluster through snakemake-executor-plugin-slurm.

tests/slurm/cluster.sh starts munged, slurmctld and slurmd from Debian's packages on this
machine; a smaller config (one replicate of four runs of two experiments, plain profiler) then runs with
`--workflow-profile profiles/slurm` up to the tables, the summary and the overview
figure. The tests check that every job went
through Slurm (its job completion file and the plugin's per-job logs), that measurement
runs had the node to themselves and ran one at a time, and that the tables keep the
local run's contract. The cluster is stopped at the end, leaving no daemon behind.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
import yaml

pytestmark = pytest.mark.slurm

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "tests" / "slurm" / "cluster.sh"
STATE = Path(os.environ.get("LEAKLAB_SLURM_DIR", "/tmp/leaklab-slurm-test"))
DAEMONS = ("munged", "slurmctld", "slurmd")

# the columns the README documents for a local run's tables (a local run may add more)
RUN_COLUMNS = ["experiment", "variant", "profiler", "replicate", "status", "exit_code", "wall_s", "cpu_s",
               "peak_rss_bytes"]
GROWTH_COLUMNS = ["experiment", "variant", "profiler", "metric", "unit", "growth_per_unit", "retained", "level",
                  "n_units", "n_replicates", "verdict"]


def cluster(action):
    return subprocess.run(["bash", str(CLUSTER), action, str(STATE)], capture_output=True, text=True, timeout=180)


def cluster_env():
    """The submitting environment: SLURM_CONF, and the client wrappers first on PATH
    (the job's srun needs them: the jobstep plugin drops SLURM_CONF)."""
    env = dict(os.environ)
    for line in cluster("env").stdout.splitlines():
        key, _, value = line.partition("=")
        env[key] = value
    return env


# The runs the Slurm test keeps. Each run is its own Slurm job, run one at a time, at
# 15-40 s apiece (two snakemake start-ups and the plugin's status polling around a few
# seconds of work), and so is every per-experiment figure, so: the two leaks the local test
# also checks, each with its baseline, and no other experiment.  rocksdb_merge keeps the
# shared fixture job in the run; fd_leak is the cheapest experiment with a leak.  What the
# tests check (every job through Slurm, one at a time, the tables' contract) holds for
# whatever the config contains: they count against this config, not the local one.
VARIANTS = {"rocksdb_merge": ["binding-dummy", "capi-real"], "fd_leak": ["close", "leak"]}
# What the cluster makes: every rule up to the tables, the summary and one figure.  A
# figure job is like any other on Slurm (sbatch, the jobstep's srun, the script); the
# node's two CPUs ran the other 11 analysis and figure jobs two at a time at 10-20 s
# apiece (19 jobs in all, 160 s; 8 jobs, 106 s, on 2026-12-06), and what each figure
# draws is tested locally (test_workflow.py, test_plots.py).
TARGETS = ["results/summary.md", "results/figures/growth_overview.png"]


def small_config(path):
    """tests/config.yaml cut down to one replicate of the runs in VARIANTS, plain profiler only."""
    config = yaml.safe_load((ROOT / "tests" / "config.yaml").read_text())
    config["replicates"] = 1
    config["profilers"] = ["plain"]
    config["experiments"] = {name: config["experiments"][name] for name in VARIANTS}
    for name, entry in config["experiments"].items():
        for key in ("profilers", "profile_variants", "replicates"):
            entry.pop(key, None)
        entry["variants"] = [v for v in entry["variants"] if v in VARIANTS[name]]
    path.write_text(yaml.safe_dump(config))
    return config


def jobcomp():
    """Slurm's job completion records (jobcomp/filetxt): one dict per finished job."""
    records = []
    path = STATE / "log" / "jobcomp.txt"
    for line in path.read_text().splitlines() if path.exists() else []:
        records.append(dict(re.findall(r"(\w+)=(\S*)", line)))
    return records


def running(pid):
    """The process exists and is not a zombie (which PID 1 may take a while to reap)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def stamp(text):
    return datetime.fromisoformat(text).timestamp()


@pytest.fixture(scope="module")
def slurm():
    missing = [cmd for cmd in ("munged", "slurmctld", "slurmd", "sbatch")
               if not shutil.which(cmd, path=os.environ.get("PATH", "") + ":/usr/sbin")]
    assert not missing, f"{missing} not installed: apt-get install slurmctld slurmd slurm-client munge (make apt)"
    import snakemake_executor_plugin_slurm  # noqa: F401  (pip: snakemake-executor-plugin-slurm)

    cluster("stop")  # whatever an interrupted session left behind
    shutil.rmtree(STATE, ignore_errors=True)
    started = time.monotonic()
    up = cluster("start")
    assert up.returncode == 0, up.stdout + up.stderr
    print(f"cluster up in {time.monotonic() - started:.1f} s: {up.stderr.strip()}")
    try:
        yield cluster_env()
    finally:
        cluster("stop")


@pytest.fixture(scope="module")
def workflow(slurm, tmp_path_factory):
    """The small config through the Slurm profile up to TARGETS; returns the working directory, the
    config, the plugin's run id (every job's Slurm name) and the output."""
    workdir = tmp_path_factory.mktemp("slurm_workflow")
    config = small_config(workdir / "config.yaml")
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
         "--configfile", str(workdir / "config.yaml"), "--workflow-profile", str(ROOT / "profiles" / "slurm"),
         *TARGETS,
         # no slurmdbd on the test cluster: follow jobs with squeue (MinJobAge=3600)
         "--slurm-status-command", "squeue",
         "--slurm-init-seconds-before-status-checks", "3",
         "--slurm-keep-successful-logs",
         "--verbose"],  # logs each sbatch call
        capture_output=True, text=True, env=slurm, cwd=workdir, timeout=600,
    )
    print(f"workflow on Slurm in {time.monotonic() - started:.1f} s")
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    run_id = re.search(r"SLURM run ID: (\S+)", output).group(1)
    return workdir, config, run_id, output


def expected_runs(config):
    from leaklab.measure import config as leaklab_config  # tests/conftest.py puts it on the path

    return len(leaklab_config.runs(config))


def test_node_advertises_this_machine(slurm):
    sinfo = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %c %m %T"], capture_output=True, text=True, env=slurm)
    node, cpus, memory, state = sinfo.stdout.split()
    assert int(cpus) == os.cpu_count()
    total_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20
    assert 0.9 * total_mb <= int(memory) <= total_mb
    assert state in ("idle", "mixed", "allocated", "completing")  # completing: cluster.sh's own probe job


def test_every_job_went_through_slurm(workflow):
    workdir, config, run_id, output = workflow
    n_runs = expected_runs(config)
    jobs = [job for job in jobcomp() if job["Name"] == run_id]
    assert all(job["JobState"] == "COMPLETED" and job["WorkDir"] == str(workdir) for job in jobs), jobs
    submitted = set(re.findall(r"has been submitted with SLURM jobid (\d+)", output))
    assert {job["JobId"] for job in jobs} == submitted
    # the plugin's log of each job, under the rule's name and the job's wildcards
    logs = list((workdir / ".snakemake" / "slurm_logs").glob("rule_*/**/*.log"))
    assert {log.stem for log in logs} == submitted
    run_logs = [log for log in logs if log.parts[-3:-2] == ("rule_run_experiment",)]
    assert len(run_logs) == n_runs
    # each ran its rule through the jobstep executor (srun) on the node
    text = run_logs[0].read_text()
    assert "--executor slurm-jobstep" in text and "Finished jobid" in text, text[-2000:]
    # every rule the targets need: the fixture, one job per run, the aggregation, the
    # summary and the figure
    rules = {log.relative_to(workdir / ".snakemake" / "slurm_logs").parts[0] for log in logs}
    assert rules == {"rule_rocksdb_fixture", "rule_run_experiment", "rule_aggregate", "rule_summary",
                     "rule_plot_growth_overview"}, rules
    assert len(jobs) == n_runs + 4


def test_jobs_request_what_their_rules_declare(workflow):
    """Every job asks Slurm for its rule's CPUs, memory and time; measurement runs also
    ask for a node of their own."""
    workdir, config, run_id, output = workflow
    calls = [line.split("sbatch call: ", 1)[1].split(" --wrap", 1)[0]
             for line in output.splitlines() if "sbatch call: " in line]
    assert len(calls) == len(set(re.findall(r"has been submitted with SLURM jobid (\d+)", output)))
    runs = [call for call in calls if "--comment rule_run_experiment_" in call]
    assert len(runs) == expected_runs(config)
    for call in calls:
        assert re.search(r" --mem \d+", call) and re.search(r" -t \d+", call), call
        assert re.search(r" --cpus-per-task=\d+", call) and f" -D {workdir}" in call, call
        assert ("--exclusive" in call) == (call in runs), call


def test_jobs_share_the_venv_and_the_fixture(workflow):
    """Jobs run this venv's Python (the sbatch'ed snakemake and the one srun starts on the
    node), and rocksdb_merge runs read the fixture one job built in the shared workdir."""
    workdir, config, run_id, output = workflow
    for log in (workdir / ".snakemake" / "slurm_logs" / "rule_run_experiment").glob("*/*.log"):
        commands = re.findall(r"Command: (\S+)", log.read_text())
        assert len(commands) == 2 and all(c.startswith(sys.prefix + os.sep) for c in commands), (log, commands)
    fixtures = workdir / "results" / "fixtures"
    metas = list((workdir / "results" / "runs" / "rocksdb_merge").glob("*/plain/rep*/meta.json"))
    assert len(metas) == len(VARIANTS["rocksdb_merge"])
    for meta in metas:
        assert json.loads(meta.read_text())["params"]["fixture"].startswith(f"{fixtures}{os.sep}"), meta


def test_measurements_ran_alone_and_one_at_a_time(workflow):
    """--exclusive gives every run a node of its own, so on this one-node cluster no two
    runs share time, a paced one (paced=3 and no core, beside the CPU-bound ones on one
    machine; on Slurm one CPU, ``set-threads``) included; measure=1 and profile=1 keep
    the CPU-bound ones of a kind apart on any cluster."""
    workdir, config, run_id, output = workflow
    run_ids = {log.stem for log in (workdir / ".snakemake" / "slurm_logs" / "rule_run_experiment").glob("*/*.log")}
    jobs = [job for job in jobcomp() if job["Name"] == run_id]
    spans = {job["JobId"]: (stamp(job["StartTime"]), stamp(job["EndTime"])) for job in jobs}
    cpus = {job["JobId"]: int(job["ProcCnt"]) for job in jobs}
    assert len(run_ids) == expected_runs(config)
    for run in run_ids:
        start, end = spans[run]
        assert cpus[run] == os.cpu_count()  # the whole node
        for other, (other_start, other_end) in spans.items():
            if other != run:
                # one-second resolution: a job that starts as another ends shares no time with it
                assert not (other_start < end and start < other_end), (run, other, spans)


def test_tables_keep_the_local_contract(workflow):
    workdir, config, run_id, output = workflow
    tables = workdir / "results" / "tables"
    runs = pd.read_csv(tables / "runs.csv")
    assert len(runs) == expected_runs(config)
    assert set(runs["status"]) == {"ok"}, runs[["experiment", "variant", "status"]]
    assert set(RUN_COLUMNS) <= set(runs.columns), list(runs.columns)
    assert not runs.duplicated(["experiment", "variant", "profiler", "replicate"]).any()
    growth = pd.read_csv(tables / "growth.csv")
    assert set(GROWTH_COLUMNS) <= set(growth.columns), list(growth.columns)
    assert set(growth["experiment"]) == set(config["experiments"])
    assert (workdir / "results" / "leaklab.duckdb").stat().st_size > 0
    assert (workdir / "results" / "figures" / "growth_overview.png").stat().st_size > 20_000

    # the physics survives the cluster (growth per unit, as the local test checks it)
    def growth_per_unit(experiment, variant, metric):
        row = growth.query("experiment == @experiment and variant == @variant and metric == @metric")
        assert len(row) == 1, (experiment, variant, metric)
        return row.iloc[0]["growth_per_unit"]

    leak_per_unit = config["verdict"]["metrics"]["rss_bytes"]["leak_per_unit"]
    assert 6.0e6 <= growth_per_unit("rocksdb_merge", "capi-real", "rss_bytes") <= 8.5e6  # ~10,000 x 640 B a pass
    assert growth_per_unit("rocksdb_merge", "binding-dummy", "rss_bytes") < leak_per_unit
    assert growth_per_unit("fd_leak", "leak", "deleted_fds") == pytest.approx(1.0, abs=0.1)
    assert growth_per_unit("fd_leak", "close", "deleted_fds") == 0


def test_stop_leaves_no_daemon(slurm):
    pids = {name: (STATE / "run" / f"{name}.pid").read_text().strip() for name in DAEMONS}
    stopped = cluster("stop")
    assert stopped.returncode == 0, stopped.stderr
    for name, pid in pids.items():
        assert not running(pid), f"{name} (pid {pid}) still runs"
    # nor anything else the cluster started (all of it inherits the cluster's SLURM_CONF)
    marker = f"SLURM_CONF={STATE}/etc/slurm.conf".encode()
    left = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if marker in (proc / "environ").read_bytes().split(b"\0") and running(proc.name):
                left.append((proc.name, (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()))
        except OSError:
            continue
    assert not left, left
    assert cluster("status").returncode == 3
    again = cluster("stop")  # idempotent
    assert again.returncode == 0, again.stderr
