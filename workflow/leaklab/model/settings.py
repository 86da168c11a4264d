"""What the analysis needs to know of each experiment, resolved once from the config.

Verdicts, controls and the tables read only these small per-experiment settings
(thresholds per metric, warm-up, unit, baseline, whether units release), never the
whole configuration: that keeps each module honest about what it depends on, and lets a
rule's ``params:`` carry exactly them (``to_params``/``from_params``), so Snakemake
re-runs the analysis when a threshold changes and nothing else.

Thresholds: ``leak_per_unit`` is the smallest steady growth per unit the experiment
must catch; ``retained`` the smallest amount kept after release that counts as
retention.  ``DEFAULT_THRESHOLDS`` hold for every experiment; ``verdict.metrics`` in the
config overrides them for all, an experiment's own ``verdict`` for it alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from leaklab import experiments

MIB = 2**20

# Why each default: a leak the size of one small object per unit is noise for RSS
# (pages of 4 KiB, arenas of 64 MiB), so byte metrics start at 1 MiB per unit; a count
# that leaks leaks one object per unit at least; the system slab is shared with every
# other process, and one leaked deleted file holds about a kilobyte of it (dentry,
# inode, file).
DEFAULT_THRESHOLDS: dict[str, dict[str, float]] = {
    "rss_bytes": {"leak_per_unit": MIB, "retained": 16 * MIB},
    "uss_bytes": {"leak_per_unit": MIB, "retained": 16 * MIB},
    "malloc_in_use_bytes": {"leak_per_unit": MIB, "retained": 16 * MIB},
    "dict_size_bytes": {"leak_per_unit": MIB, "retained": 16 * MIB},
    "duckdb_memory_bytes": {"leak_per_unit": MIB, "retained": 16 * MIB},
    "deleted_fds": {"leak_per_unit": 1, "retained": 16},
    "fds": {"leak_per_unit": 1, "retained": 16},
    "slab_bytes": {"leak_per_unit": 1024, "retained": 2**30},
}
# Metrics that measure the same memory: one verdict per family, decided by the first
# member a run has (RSS and USS of one run cannot disagree on near-identical intervals).
FAMILIES: dict[str, tuple[str, ...]] = {"resident": ("rss_bytes", "pss_bytes", "uss_bytes")}
# System-wide metrics are judged and shown, but never decide a variant's verdict: other
# processes move them too.
SYSTEM_WIDE = ("slab_bytes",)


@dataclass(frozen=True)
class Threshold:
    leak_per_unit: float
    retained: float


@dataclass(frozen=True)
class ExperimentSettings:
    name: str
    unit: str
    releases: bool
    baseline: str
    warmup_units: int
    variants: tuple[str, ...] = ()
    key_metrics: tuple[str, ...] = ()
    thresholds: dict[str, Threshold] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)


def family(metric: str) -> str:
    """The family a metric belongs to (itself when it has none)."""
    return next((name for name, members in FAMILIES.items() if metric in members), metric)


def family_leaders(metrics: list[str]) -> list[str]:
    """The metrics that decide for their family, in the order given: the first member
    of each family present (``FAMILIES`` order: USS follows RSS)."""
    present = set(metrics)
    return [m for m in metrics if next(x for x in FAMILIES.get(family(m), (m,)) if x in present) == m]


def deciding_metrics(s: ExperimentSettings, verdict: str = "stable") -> list[str]:
    """The metrics a variant's verdict is taken from, in order of preference among equal
    verdicts (system-wide metrics never decide).  An all-clear (``stable``,
    ``inconclusive``) is named by resident memory, the symptom users watch; a finding
    (``leak``, ``retention``, ``settling``) by the experiment's own key metrics first,
    because they say where the memory is (the dict's table, the native heap), where RSS
    would say the same of a variant that only keeps freed pages."""
    judged = [m for m in s.thresholds if m not in SYSTEM_WIDE]
    first = ["rss_bytes", *s.key_metrics] if verdict in ("stable", "inconclusive") else [*s.key_metrics, "rss_bytes"]
    return [m for m in first if m in judged] + sorted(m for m in judged if m not in first)


def thresholds(config: dict, experiment: str) -> dict[str, Threshold]:
    """Defaults, overridden by ``verdict.metrics``, overridden by the experiment's ``verdict``."""
    merged = {metric: dict(values) for metric, values in DEFAULT_THRESHOLDS.items()}
    for source in (config.get("verdict", {}).get("metrics", {}),
                   config.get("experiments", {}).get(experiment, {}).get("verdict", {})):
        for metric, values in source.items():
            merged[metric] = {**merged.get(metric, {}), **values}
    for metric, values in merged.items():
        missing = {"leak_per_unit", "retained"} - set(values)
        if missing:
            raise ValueError(f"experiments.{experiment}.verdict.{metric}: {metric!r} has no default threshold; "
                             f"give {' and '.join(sorted(missing))}")
    return {metric: Threshold(float(v["leak_per_unit"]), float(v["retained"])) for metric, v in merged.items()}


# The keys of an experiment's entry the analysis reads (``analysis_subset``), and the
# ones a figure or summary needs to know a command experiment (``experiments.specs``).
ANALYSIS_KEYS = ("variants", "baseline", "unit", "unit_source", "key_metrics", "releases", "scaled_params",
                 "command", "warmup_units", "verdict", "params")
SPEC_KEYS = ("variants", "baseline", "unit", "unit_source", "key_metrics", "releases", "scaled_params", "command")


def canonical(value: Any) -> Any:
    """``value`` with every mapping in key order (lists keep theirs). Snakemake compares a
    rule's params by their repr, in which a dict's order shows: without this, reordering
    keys in a YAML file would look like a change and re-run jobs."""
    if isinstance(value, dict):
        return {key: canonical(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [canonical(item) for item in value]
    return value


def entries(config: dict, keys: tuple[str, ...], names: list[str]) -> dict[str, dict]:
    """The given keys of each named experiment's entry, canonical; the order of the
    experiments and of their variants (the first is the default baseline) is kept."""
    def variants(value: Any) -> Any:
        return [*value] if isinstance(value, list) else {v: canonical(s) for v, s in value.items()}

    return {name: {k: variants(v) if k == "variants" else canonical(v)
                   for k, v in sorted(config["experiments"][name].items()) if k in keys} for name in names}


def analysis_subset(config: dict, names: list[str] | None = None) -> dict:
    """The part of a configuration the analysis reads (``tables.build``): thresholds,
    warm-ups, units, baselines and parameters of ``names`` (default: every experiment).
    The pipeline passes exactly this to the aggregate job, and ``tables.build`` cuts any
    config down to it, so a caller with a whole config sees what the pipeline sees."""
    names = list(config["experiments"]) if names is None else names
    return {"verdict": canonical(config.get("verdict", {})), "experiments": entries(config, ANALYSIS_KEYS, names)}


def resolve(config: dict) -> dict[str, ExperimentSettings]:
    """Every configured experiment's analysis settings."""
    known = experiments.specs(config)
    return {name: resolve_one(config, known[name]) for name in config["experiments"]}


def resolve_one(config: dict, spec: experiments.Spec) -> ExperimentSettings:
    """One experiment's analysis settings, from its spec (``experiments.specs``) and its
    entry, for a job that needs only its own (a stopped run)."""
    name = spec.name
    entry = config["experiments"][name]
    return ExperimentSettings(
        name=name, unit=spec.unit, releases=spec.releases, baseline=spec.baseline,
        warmup_units=int(entry.get("warmup_units", 1)), variants=tuple(entry["variants"]),
        key_metrics=spec.key_metrics, thresholds=thresholds(config, name),
        params=dict(entry.get("params", {})),
    )


def to_params(resolved: dict[str, ExperimentSettings]) -> dict[str, dict]:
    """Plain data for a rule's ``params:`` (Snakemake compares it between runs)."""
    return {name: asdict(s) for name, s in resolved.items()}


def from_params(data: dict[str, dict]) -> dict[str, ExperimentSettings]:
    return {name: ExperimentSettings(**{**s, "variants": tuple(s["variants"]), "key_metrics": tuple(s["key_metrics"]),
                                        "thresholds": {m: Threshold(**t) for m, t in s["thresholds"].items()}})
            for name, s in data.items()}
