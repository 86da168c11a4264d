"""One run described by one value: what the runner measures, how and within which limits.

The runner (``leaklab.measure.runner.run``) takes a :class:`RunSpec` and nothing else, so
a rule's script, the ``leaklab measure`` verb and the tests describe a run the same
way, and a new setting is one field here instead of a parameter threaded through
every call.  The experiment travels as its resolved ``experiments.Spec``: the runner
never looks an experiment up by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leaklab.experiments import Spec
from leaklab.process import run_output

MIB = 2**20


@dataclass(frozen=True)
class RunSpec:
    """One variant of one experiment under one profiler, and the limits it runs within.

    ``stopping_plan`` (``leaklab.measure.config.stop_plan``, plain runs only) stops the
    run as soon as its verdict is decided; ``python`` runs a built-in experiment under
    another interpreter (a version sweep's venv); ``contain`` picks the containment
    (``leaklab.process.containment``; ``auto``: the strongest available); ``log_cap_bytes``
    bounds ``run.log``; ``mem_cap_bytes`` caps the tree (its cgroup, else its summed PSS)."""

    experiment: Spec
    variant: str
    outdir: Path
    params: dict[str, Any] = field(default_factory=dict)
    profiler: str = "plain"
    profiler_settings: dict[str, Any] = field(default_factory=dict)
    scale: float = 1.0
    replicate: int = 1
    interval_s: float = 0.05
    smaps: bool = True
    timeout_s: float = 600.0
    mem_cap_bytes: int | None = None
    log_cap_bytes: int = run_output.DEFAULT_LOG_CAP_BYTES
    python: str | None = None
    contain: str = "auto"
    stopping_plan: dict[str, Any] | None = None

    @classmethod
    def from_rule(cls, experiment: Spec, variant: str, outdir: Path, replicate: int, params: Any,
                  **more: Any) -> RunSpec:
        """The run a rule describes in its ``params:`` (``settings``, ``sampler``,
        ``limits``, ``stopping``: rules ``run_experiment`` and ``sweep_run``); ``more``
        holds what only one of them sets (the profiler, the sweep's interpreter)."""
        return cls(
            experiment, variant, Path(outdir), dict(params.settings), replicate=replicate,
            interval_s=params.sampler["interval_s"], smaps=params.sampler["smaps"],
            timeout_s=params.limits["timeout_s"], mem_cap_bytes=params.limits["mem_cap_mb"] * MIB,
            log_cap_bytes=params.limits["log_mb"] * MIB, stopping_plan=params.stopping or None, **more,
        )
