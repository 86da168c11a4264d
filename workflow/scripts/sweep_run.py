"""Snakemake entry point: one run of the swept experiment under one library version."""

import sys
from pathlib import Path

from leaklab.process.containment import die_with_parent  # no slow import before these two
from leaklab.process.run_signals import hold

die_with_parent()  # a pipeline killed from here on takes this job down with it
hold()  # every thread started from here on leaves a program's signals to the runner

sys.stderr = open(snakemake.log[0], "w")

from leaklab import experiments
from leaklab.measure import runner
from leaklab.measure.run_spec import RunSpec

w = snakemake.wildcards
params = snakemake.params
meta = runner.run(RunSpec.from_rule(experiments.builtin(w.experiment), w.variant, Path(snakemake.output.meta).parent,
                                    int(w.replicate), params, python=params.python))
print(f"{w.package}=={w.version} {w.experiment}/{w.variant}: {meta['status']}, {meta['wall_s']:.1f} s", file=sys.stderr)
