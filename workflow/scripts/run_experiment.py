"""Snakemake entry point: run one variant under one profiler (see leaklab.runner)."""

import sys
from pathlib import Path

from leaklab.containment import die_with_parent  # no slow import before these two
from leaklab.run_signals import hold

die_with_parent()  # a pipeline killed from here on takes this job down with it
hold()  # every thread started from here on leaves a program's signals to the runner

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821

from leaklab import experiments, runner  # noqa: E402

experiments.configure(snakemake.params.registry)  # noqa: F821  (command experiments)

w = snakemake.wildcards  # noqa: F821
params = snakemake.params  # noqa: F821
meta = runner.run(
    w.experiment, w.variant, Path(snakemake.output.meta).parent,  # noqa: F821
    params=params.settings, profiler=w.profiler, replicate=int(w.replicate),
    interval_s=params.sampler["interval_s"], smaps=params.sampler["smaps"],
    timeout_s=params.limits["timeout_s"], mem_cap_bytes=params.limits["mem_cap_mb"] * 2**20,
    log_cap_bytes=params.limits["log_mb"] * 2**20,
    profiler_settings=params.profiler["settings"], scale=params.profiler["scale"],
    stopping_plan=params.stopping or None,
)
print(f"{w.experiment}/{w.variant}/{w.profiler}/rep{w.replicate}: {meta['status']}, "
      f"{meta['wall_s']:.1f} s, {meta['n_units']} {meta['unit']}s ({meta['stop_reason']})", file=sys.stderr)
