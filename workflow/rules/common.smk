import os
import sys

from snakemake.utils import validate

# The leaklab package lives in workflow/ (installed into the venv by `make setup`, which
# jobs use); the path lets the workflow be parsed from a bare checkout too.
PACKAGE_DIR = os.path.abspath(os.path.join(workflow.basedir, "workflow"))
if PACKAGE_DIR not in sys.path:
    sys.path.insert(0, PACKAGE_DIR)

import leaklab.config  # noqa: E402
from leaklab import experiments  # noqa: E402
from leaklab.tables import TABLES  # noqa: E402

validate(config, "../schemas/config.schema.yaml")
try:
    leaklab.config.check(config)
except leaklab.config.ConfigError as error:
    raise WorkflowError(f"config: {error}") from None

RUNS = leaklab.config.runs(config)
EXPERIMENTS = list(config["experiments"])
RUN_DIR = "results/runs/{experiment}/{variant}/{profiler}/rep{replicate}"


wildcard_constraints:
    experiment="|".join(EXPERIMENTS),
    variant="|".join(sorted({v.replace("-", r"\-") for r in RUNS for v in [r.variant]})),
    profiler="|".join(config["profilers"]),
    replicate=r"\d+",


def run_outputs(name):
    """One file of every run the config asks for."""
    return [f"results/runs/{run.path}/{name}" for run in RUNS]


def run_inputs(wildcards):
    """The shared fixture a run reads, if its experiment has one."""
    if wildcards.experiment == "rocksdb_merge":
        return {"fixture": "results/fixtures/rocksdb_merge/db"}
    return {}


def run_params(wildcards):
    params = leaklab.config.experiment_params(config, wildcards.experiment)
    if wildcards.experiment == "rocksdb_merge":
        params["fixture"] = os.path.abspath("results/fixtures/rocksdb_merge/db")
    return params


def figure_outputs():
    return [f"results/figures/timeline_{name}.png" for name in EXPERIMENTS] + [
        "results/figures/growth_overview.png"
    ]


def all_outputs():
    return [
        "results/leaklab.duckdb",
        *[f"results/tables/{table}.csv" for table in TABLES],
        *figure_outputs(),
    ]
