"""Snakemake entry point: run one variant under one profiler (see leaklab.runner)."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821

from leaklab import experiments, outcome, run_files, runner  # noqa: E402

experiments.configure(snakemake.params.registry)  # noqa: F821  (command experiments)
runner.die_with_parent()  # a killed pipeline takes its measurements down with it

w = snakemake.wildcards  # noqa: F821
params = snakemake.params  # noqa: F821
setup = outcome.setup_status(snakemake.input.setup) if "setup" in snakemake.input.keys() else None  # noqa: F821
if setup is not None and setup["status"] != "ok":  # nothing to measure: recorded, the pipeline goes on
    meta = run_files.write_unmeasured(
        Path(snakemake.output.meta).parent,  # noqa: F821
        {"experiment": w.experiment, "variant": w.variant, "profiler": w.profiler, "replicate": int(w.replicate),
         "unit": experiments.get(w.experiment).unit, "params": params.settings},
        "setup_failed", f"setup {setup['status']}: {setup.get('reason') or ''} (see results/logs/setup_{w.experiment}.log)")
    print(f"{w.experiment}/{w.variant}/{w.profiler}/rep{w.replicate}: {meta['error']}", file=sys.stderr)
    sys.exit(0)
meta = runner.run(
    w.experiment, w.variant, Path(snakemake.output.meta).parent,  # noqa: F821
    params=params.settings, profiler=w.profiler, replicate=int(w.replicate),
    interval_s=params.sampler["interval_s"], smaps=params.sampler["smaps"],
    timeout_s=params.limits["timeout_s"], mem_cap_bytes=params.limits["mem_cap_mb"] * 2**20,
    profiler_settings=params.profiler["settings"], scale=params.profiler["scale"],
    stopping_plan=params.stopping or None,
)
print(f"{w.experiment}/{w.variant}/{w.profiler}/rep{w.replicate}: {meta['status']}, "
      f"{meta['wall_s']:.1f} s, {meta['n_units']} {meta['unit']}s ({meta['stop_reason']})", file=sys.stderr)
