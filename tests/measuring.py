"""One run through the runner, described as the pipeline describes it: shared by the test
modules that measure a program without Snakemake."""

from leaklab import experiments
from leaklab.measure import runner
from leaklab.measure.run_spec import RunSpec


def measure(experiment: str, variant: str, outdir, params: dict | None = None, config: dict | None = None,
            **how) -> dict:
    """A ``RunSpec`` with the experiment's spec resolved from ``config`` as the run rule
    resolves it (a built-in experiment needs none), run by the runner; its meta.json."""
    return runner.run(RunSpec(experiments.specs(config or {})[experiment], variant, outdir, params or {}, **how))
