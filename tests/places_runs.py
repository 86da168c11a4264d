"""One command experiment, ``places``, around tests/data/places_leak.c (or a build of it):
each mode a variant, run through the runner as the pipeline runs it, then every table.
Shared by the tests of where the memory is and of a program's heap metric."""

from pathlib import Path

from leaklab import experiments
from leaklab.measure import runner
from leaklab.measure.run_spec import RunSpec


def run_modes(exe: str, modes: tuple[str, ...], base: Path, *, steps: int, step_bytes: int, verdict: dict,
              replicates: int = 1, warmup_units: int = 2) -> tuple[dict, dict]:
    """Every mode of ``exe`` ``replicates`` times under ``base``/places/<mode>/plain/rep<n>:
    the tables built from them, and each run's meta.json by (mode, replicate)."""
    from leaklab.tables import tables

    entry = {"command": f"{exe} {{mode}} {steps} {step_bytes}", "unit": "step", "unit_pattern": "step (\\d+)",
             "variants": {mode: {"params": {"mode": mode}} for mode in modes}, "baseline": modes[-1],
             "warmup_units": warmup_units, "verdict": verdict}
    config = {"experiments": {"places": entry}}
    spec = experiments.specs(config)["places"]
    dirs, metas = [], {}
    for mode in modes:
        for replicate in range(1, replicates + 1):
            rundir = base / "places" / mode / "plain" / f"rep{replicate}"
            metas[mode, replicate] = runner.run(RunSpec(spec, mode, rundir, {"mode": mode},
                                                        replicate=replicate, timeout_s=120))
            dirs.append(rundir)
    return tables.build(dirs, config), metas
