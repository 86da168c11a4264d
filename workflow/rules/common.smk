import hashlib
import json
import os
import re

from snakemake.utils import validate

# only light modules here: a dry run or a no-op re-run should not pay for pandas and scipy
import leaklab.process.build
import leaklab.measure.config
import leaklab.measure.config_check
import leaklab.model.settings
import leaklab.process.outcome  # the exit status in onsuccess
import leaklab.process.own_program
import leaklab.measure.validation
from leaklab import experiments
from leaklab.tables import sweep
from leaklab.tables.table_names import TABLES

# leaklab's own one-line errors first (ids, finite numbers, unknown experiments, the
# schema's first error), then the schema again to fill in its defaults, then the checks
# that know the experiments: all before any job.
SCHEMA = os.path.join(workflow.basedir, "workflow", "schemas", "config.schema.yaml")
try:
    leaklab.measure.validation.type_command_line(config, workflow.config_settings.config)  # --config a={b: 1}
    leaklab.measure.validation.check_before_schema(config, SCHEMA)
    validate(config, SCHEMA)
    leaklab.measure.config.select_only(config)
    leaklab.measure.config_check.check(config)
except leaklab.measure.config.ConfigError as error:
    raise WorkflowError(f"config: {error}") from None

# {project} in a command experiment: the directory of the user's config file (the last
# --configfile), else this checkout; --directory (where results/ goes) does not change it.
PROJECT_DIR = (os.path.dirname(os.path.abspath(workflow.overwrite_configfiles[-1])) if workflow.overwrite_configfiles
               else workflow.basedir)
RUNS = leaklab.measure.config.runs(config)
EXPERIMENTS = list(config["experiments"])
SWEEP = config.get("version_sweep") or {"experiment": None, "variants": []}
NATIVE_ROOT = os.path.join(workflow.basedir, "native")
# The verdict model's source, every file of workflow/leaklab/model/ (names and contents, in
# order): a change to the model re-runs every analysis that decides verdicts (through params:),
# never a measurement.
MODEL_DIR = os.path.join(workflow.basedir, "workflow", "leaklab", "model")
_model = hashlib.sha256()
for _name in sorted(n for n in os.listdir(MODEL_DIR) if n.endswith(".py")):
    _model.update(_name.encode())
    _model.update(b"\0")
    with open(os.path.join(MODEL_DIR, _name), "rb") as _source:
        _model.update(_source.read())
VERDICT_MODEL = _model.hexdigest()[:16]
RUN_DIR = "results/runs/{experiment}/{variant}/{profiler}/rep{replicate}"
SWEEP_RUN_DIR = "results/sweep/{package}-{version}/runs/{experiment}/{variant}/plain/rep{replicate}"


wildcard_constraints:
    experiment="|".join(re.escape(e) for e in {*EXPERIMENTS, SWEEP["experiment"]} - {None}),
    variant="|".join(sorted(re.escape(v) for v in {*(run.variant for run in RUNS), *SWEEP["variants"]})),
    profiler="|".join(sorted({run.profiler for run in RUNS})),
    n_keys=r"\d+",
    package=r"[A-Za-z0-9_.]+",
    version=r"[0-9][0-9A-Za-z.]*",
    replicate=r"\d+",
    program="|".join(leaklab.process.build.PROGRAMS),


canonical = leaklab.model.settings.canonical


def run_outputs(name):
    """One file of every run the config asks for."""
    return [f"results/runs/{run.path}/{name}" for run in RUNS]


def rocksdb_fixture(params):
    """One fixture database per key count: heavy profilers read a scaled-down one."""
    return f"results/fixtures/rocksdb_merge/keys{params['keys']}"


def rocksdb_fixture_settings():
    """Operands, their size and the seed of every fixture: rocksdb_merge's, or its
    defaults when only the Go and C++ merge programs are configured."""
    if "rocksdb_merge" in config["experiments"]:
        return leaklab.measure.config.experiment_params(config, "rocksdb_merge")
    from leaklab.experiments import rocksdb_merge

    return rocksdb_merge.DEFAULTS


def workdir_files(wildcards):
    """The files a command experiment's run gets in its working directory, resolved."""
    entry = config["experiments"][wildcards.experiment]
    fields = {**run_params(wildcards), "variant": wildcards.variant, "workdir": "."}
    return [os.path.join(PROJECT_DIR, path.format(**fields)) for path in entry.get("workdir_files", [])]


def run_inputs(wildcards):
    """The shared fixture a run reads, the native program it runs, or a command
    experiment's setup step and the files it copies into each run's working directory
    (a change re-runs the runs)."""
    entry = config["experiments"][wildcards.experiment]
    if "command" in entry:
        setup = {"setup": f"results/commands/{wildcards.experiment}/setup.json"} if entry.get("setup") else {}
        return {**setup, "workdir_files": workdir_files(wildcards)}
    inputs = {}
    if _reads_rocksdb_fixture(wildcards.experiment):
        params = leaklab.measure.config.run_params(config, wildcards.experiment, wildcards.profiler)
        inputs["fixture"] = rocksdb_fixture(params)
    if wildcards.experiment in leaklab.process.build.PROGRAMS:
        inputs["binary"] = f"results/build/{wildcards.experiment}/{wildcards.experiment}"
    return inputs


def _reads_rocksdb_fixture(name):
    """Whether a built-in experiment reads the rocksdb_merge fixture database (its
    module's ``READS_ROCKSDB_FIXTURE``)."""
    spec = experiments.builtin(name)
    return spec is not None and spec.reads_rocksdb_fixture


def run_params(wildcards):
    """The experiment's parameters for this variant and profiler (scaled), its fixture,
    and for a command experiment {project}."""
    params = leaklab.measure.config.run_params(config, wildcards.experiment, wildcards.profiler, wildcards.variant)
    if "command" in config["experiments"][wildcards.experiment]:
        params["project"] = PROJECT_DIR
    if _reads_rocksdb_fixture(wildcards.experiment):
        params["fixture"] = os.path.abspath(rocksdb_fixture(params))
    return canonical(params)


def paced(wildcards):
    """Whether this run's experiment waits for its own clock (its module's ``PACED``):
    it is measured beside the CPU-bound runs, on one core."""
    spec = experiments.builtin(wildcards.experiment)
    return spec is not None and spec.paced


def run_threads(wildcards):
    """0 for a paced run: it waits for its own clock and takes no core, so the slots
    (``run_slot``) alone decide what runs together and no --cores keeps it from its slot
    (profiles/slurm asks sbatch for one, which refuses 0); 1 otherwise."""
    return 0 if paced(wildcards) else 1


def run_slot(wildcards, slot):
    """1 when this run takes ``slot`` (profiles/default: measure=1, profile=1, paced=3):
    a paced experiment's runs take ``paced``; a CPU-bound plain run ``measure``, whose
    timings (time to verdict, the profilers' baseline) are read; a CPU-bound profiled
    run ``profile``, read for its sites and heap, which a neighbour on the other core
    does not change."""
    if paced(wildcards):
        return int(slot == "paced")
    plain = getattr(wildcards, "profiler", "plain") == "plain"
    return int(slot == ("measure" if plain else "profile"))


def run_priority(wildcards):
    """A plain run that may go on past its window to its horizon (``confirm``) starts before
    every other run: it is the longest (duckdb_load's: up to 8 minutes at its own pace), and
    started after the others it would end after them."""
    confirms = wildcards.profiler == "plain" and leaklab.measure.config.confirmation(config, wildcards.experiment)
    return 1 if confirms else 0


def stop_params(wildcards):
    """Sequential stopping's plan for this run (``leaklab.measure.config.stop_plan``): empty when
    it is off or the run is profiled, so only what a stopped run depends on re-runs it."""
    return canonical(leaklab.measure.config.stop_plan(config, wildcards.experiment, wildcards.profiler, wildcards.variant))


def setup_command(wildcards):
    """A command experiment's setup step as argv, its placeholders filled (quoted when
    it runs under a shell, as a run's command is)."""
    entry = config["experiments"][wildcards.experiment]
    params = leaklab.measure.config.experiment_params(config, wildcards.experiment)
    return leaklab.process.own_program.argv(entry["setup"], {**params, "project": PROJECT_DIR})


# What the analysis reads of an experiment's entry, and what a script needs to resolve a
# command experiment. Rules get exactly these through params:, so a changed threshold or
# warm-up re-runs the analysis (aggregate and what follows) and never a measurement.
def analysis_settings(names=None):
    """The config subset tables.build reads: thresholds, warm-ups, units, baselines and
    the planted controls' parameters of ``names`` (default: every experiment)."""
    return {**leaklab.model.settings.analysis_subset(config, EXPERIMENTS if names is None else names),
            "model": VERDICT_MODEL}


def sweep_settings():
    """The config subset the version sweep's table reads: its settings, the swept
    experiment's analysis settings and the thresholds."""
    name = config["version_sweep"]["experiment"]
    return {**analysis_settings([name] if name in config["experiments"] else []),
            "version_sweep": canonical(config["version_sweep"])}


def command_specs():
    """The command experiments as a config subset ``experiments.specs`` resolves (their
    units, variants and key metrics name plots and summary rows)."""
    return {"experiments": leaklab.model.settings.entries(
        config, leaklab.model.settings.SPEC_KEYS, [n for n in EXPERIMENTS if "command" in config["experiments"][n]])}


def run_spec(wildcards):
    """What the runner needs of a command experiment for one run (this variant's command,
    the unit and how units are counted, the workdir files); empty for a built-in one.
    Only this variant, so adding a variant re-runs no other run."""
    entry = config["experiments"][wildcards.experiment]
    if "command" not in entry:
        return {"experiments": {}}
    spec = {k: entry[k] for k in ("command", "unit", "unit_source", "unit_pattern", "workdir_files") if k in entry}
    own = leaklab.measure.config.variant_settings(entry, wildcards.variant)
    return canonical({"experiments": {wildcards.experiment: {**spec, "command": own.get("command", entry["command"]),
                                                             "variants": [wildcards.variant]}}})


def profiler_params(wildcards):
    return canonical({
        "settings": leaklab.measure.config.profiler_settings(config, wildcards.experiment, wildcards.profiler),
        "scale": leaklab.measure.config.scale(config, wildcards.experiment, wildcards.profiler),
    })


def profiled_experiments():
    return sorted({run.experiment for run in RUNS if run.profiler != "plain"})


def figure_outputs():
    """Every figure, as PNG and as the SVG beside it."""
    names = (
        [f"{kind}_{name}" for name in EXPERIMENTS for kind in ("headline", "compare", "timeline")]
        + [f"{kind}_{name}" for name in profiled_experiments() for kind in ("heap", "top_sites")]
        + ["growth_overview", "profiler_overhead", "verdict_matrix", "attribution", "time_to_verdict"]
        + ["cross_language"]
    )
    return [f"results/figures/{name}.{ext}" for name in names for ext in ("png", "svg")]


# The tables the report shows or links: every table of the run and the cross-language one.
REPORT_TABLES = (*TABLES, "cross_language")
# Figures other targets make (version sweep, accuracy, nightly): in the report when present.
OTHER_FIGURES = ("results/figures/version_sweep.png", "results/figures/accuracy.png",
                 "results/figures/nightly_trend.png")


def report_figures():
    """The PNGs the report embeds: every figure of the run, and those of the other
    targets that were made in this directory."""
    return [path for path in figure_outputs() if path.endswith(".png")] + [
        path for path in OTHER_FIGURES if os.path.exists(path)]


def all_outputs():
    """Everything `rule all` asks for; every run's own files are targets too, so a plain
    re-run measures again a run whose samples or marks were lost (Snakemake leaves a
    missing intermediate file alone while what was built from it is up to date)."""
    return [
        *[path for name in ("meta.json", "samples.parquet", "marks.parquet") for path in run_outputs(name)],
        "results/leaklab.duckdb",
        *[f"results/tables/{table}.csv" for table in TABLES],
        "results/tables/cross_language.csv",
        *figure_outputs(),
        "results/summary.md",
    ]


def sweep_outputs():
    """meta.json of every run the version sweep asks for."""
    settings = config.get("version_sweep")
    if not settings:
        return []
    return [
        os.path.join(sweep.run_dir(settings["package"], version, settings["experiment"], variant, replicate), "meta.json")
        for version in settings["versions"]
        for variant in settings["variants"]
        for replicate in range(1, settings.get("replicates", 1) + 1)
    ]


def history_path():
    return config.get("history", {}).get("path", "history/leaklab-history.duckdb")


def history_store():
    """The history store once it exists: nightly_history reads earlier nights from it and
    appends tonight (ancient: its own appends do not make the night stale)."""
    return [ancient(history_path())] if os.path.exists(history_path()) else []


def config_sha256():
    """The configuration's hash, recorded with the night: changed settings show next to changed growth."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def accuracy_inputs(wildcards):
    """The accuracy benchmark's real tier: the verdicts of the run, and the sweep's when one is configured."""
    inputs = {"variant_verdicts": "results/tables/variant_verdicts.csv"}
    if config.get("version_sweep"):
        inputs["sweep"] = "results/tables/version_sweep.csv"
    return inputs
