"""Snakemake entry point: run one variant under one profiler (see leaklab.measure.runner)."""

import errno
import resource
import sys
from pathlib import Path

from leaklab.process.containment import die_with_parent  # no slow import before these two
from leaklab.process.run_signals import hold

die_with_parent()  # a pipeline killed from here on takes this job down with it
hold()  # every thread started from here on leaves a program's signals to the runner

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from leaklab import experiments
from leaklab.measure import runner
from leaklab.measure.run_spec import RunSpec
from leaklab.process import outcome
from leaklab.tables import run_files

w = snakemake.wildcards
params = snakemake.params
spec = experiments.specs(params.specs)[w.experiment]
missing = outcome.prerequisite_failure(snakemake.input.get("setup"), snakemake.input.get("fixture"))
if missing is not None:  # nothing to measure: recorded, the pipeline goes on
    meta = run_files.write_unmeasured(
        Path(snakemake.output.meta).parent,
        {"experiment": w.experiment, "variant": w.variant, "profiler": w.profiler, "replicate": int(w.replicate),
         "unit": spec.unit, "params": params.settings}, *missing)
    print(f"{w.experiment}/{w.variant}/{w.profiler}/rep{w.replicate}: {missing[0]}: {missing[1]}", file=sys.stderr)
    sys.exit(0)
reserve = run_files.SpaceReserve(Path(snakemake.log[0] + ".reserve"))
try:
    meta = runner.run(RunSpec.from_rule(
        spec, w.variant, Path(snakemake.output.meta).parent, int(w.replicate), params,
        profiler=w.profiler, profiler_settings=params.profiler["settings"], scale=params.profiler["scale"],
    ))
except OSError as error:  # the disk filled (the program's doing, often): free the reserve, record the run
    if error.errno != errno.ENOSPC:
        raise
    reserve.release()
    meta = run_files.write_unmeasured(
        Path(snakemake.output.meta).parent,
        {"experiment": w.experiment, "variant": w.variant, "profiler": w.profiler, "replicate": int(w.replicate),
         "unit": spec.unit, "params": params.settings},
        "runner_error", f"the results' filesystem is full ({error}); the run's outputs could not be written",
    )
finally:
    reserve.release()
job_cpu_s = sum(u.ru_utime + u.ru_stime for u in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)))
print(f"{w.experiment}/{w.variant}/{w.profiler}/rep{w.replicate}: {meta['status']}, "
      f"{meta['wall_s']:.1f} s, {meta['n_units']} {meta['unit']}s ({meta['stop_reason']}); "
      f"the job's CPU {job_cpu_s:.1f} s, the program's {meta.get('cpu_s') or 0:.1f} s", file=sys.stderr)
