"""Snakemake entry point: one run of the swept experiment under one library version."""

import sys
from pathlib import Path

from leaklab.process.containment import die_with_parent  # no slow import before these two
from leaklab.process.run_signals import hold

die_with_parent()  # a pipeline killed from here on takes this job down with it
hold()  # every thread started from here on leaves a program's signals to the runner

sys.stderr = open(snakemake.log[0], "w")

from leaklab.measure import runner

w = snakemake.wildcards
params = snakemake.params
meta = runner.run(
    w.experiment, w.variant, Path(snakemake.output.meta).parent,
    params=params.settings, replicate=int(w.replicate), python=params.python,
    interval_s=params.sampler["interval_s"], smaps=params.sampler["smaps"],
    timeout_s=params.limits["timeout_s"], mem_cap_bytes=params.limits["mem_cap_mb"] * 2**20,
    log_cap_bytes=params.limits["log_mb"] * 2**20,
    stopping_plan=params.stopping or None,
)
print(f"{w.package}=={w.version} {w.experiment}/{w.variant}: {meta['status']}, {meta['wall_s']:.1f} s", file=sys.stderr)
