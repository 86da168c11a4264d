"""Checks on the configuration that a JSON schema cannot express, and the run list.

The schema (``workflow/schemas/config.schema.yaml``) checks shapes and types; here we
check what depends on the experiments themselves: variant ids, parameter names,
durations that must parse, warm-ups shorter than the run.  Every error names the key,
the bad value and what is allowed, and is raised before any job starts.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from leaklab import experiments, profilers
from leaklab.experiments.duckdb_load import parse_duration

# How many units a run of each experiment has, from its parameters.
UNITS_FROM_PARAMS = {
    "rocksdb_merge": lambda p: int(p["passes"]),
    "dict_shrink": lambda p: int(p["cycles"]),
    "duckdb_load": lambda p: int(parse_duration(p["duration"])),
    "fd_leak": lambda p: int(p["rotations"]),
}
MIN_POST_WARMUP_UNITS = 3


class ConfigError(ValueError):
    """A configuration value that cannot work; the message names key and allowed values."""


@dataclass(frozen=True)
class Run:
    experiment: str
    variant: str
    profiler: str
    replicate: int

    @property
    def path(self) -> str:
        return f"{self.experiment}/{self.variant}/{self.profiler}/rep{self.replicate}"


def experiment_params(config: dict, name: str) -> dict[str, Any]:
    """The experiment's defaults overlaid with the configured parameters."""
    module = importlib.import_module(f"leaklab.experiments.{name}")
    return {**module.DEFAULTS, **config["experiments"][name].get("params", {})}


def _check_params(name: str, given: dict) -> None:
    module = importlib.import_module(f"leaklab.experiments.{name}")
    allowed = sorted(module.DEFAULTS)
    for key, value in given.items():
        where = f"experiments.{name}.params.{key}"
        if key not in module.DEFAULTS:
            raise ConfigError(f"{where}: unknown parameter; allowed: {', '.join(allowed)}")
        default = module.DEFAULTS[key]
        if key == "duration":
            try:
                parse_duration(value)
            except ValueError as err:
                raise ConfigError(f"{where}: {err}") from None
        elif isinstance(default, (int, float)) and not isinstance(default, bool):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{where}: {value!r} is not a number")
            if value < 0 or (value == 0 and key not in ("interval_s", "seed", "rows")):
                raise ConfigError(f"{where}: {value!r} must be positive")


def check(config: dict) -> None:
    """Raise ConfigError on the first value that cannot work."""
    for profiler in config.get("profilers", ["plain"]):
        if profiler not in profilers.PROFILERS:
            raise ConfigError(f"profilers: unknown profiler {profiler!r}; allowed: {', '.join(profilers.PROFILERS)}")
    known = experiments.names()
    for name, entry in config["experiments"].items():
        if name not in known:
            raise ConfigError(f"experiments.{name}: unknown experiment; allowed: {', '.join(known)}")
        spec = experiments.get(name)
        for variant in entry["variants"]:
            if variant not in spec.variants:
                raise ConfigError(
                    f"experiments.{name}.variants: unknown variant {variant!r}; allowed: {', '.join(spec.variants)}"
                )
        _check_params(name, entry.get("params", {}))
        units = UNITS_FROM_PARAMS[name](experiment_params(config, name))
        warmup = entry.get("warmup_units", 1)
        if units - warmup < MIN_POST_WARMUP_UNITS:
            raise ConfigError(
                f"experiments.{name}.warmup_units: {warmup} leaves {units - warmup} of {units} {spec.unit}s; "
                f"growth needs at least {MIN_POST_WARMUP_UNITS} after the warm-up"
            )


def runs(config: dict) -> list[Run]:
    """Every run the configuration asks for, in a stable order."""
    return [
        Run(name, variant, profiler, replicate)
        for name, entry in config["experiments"].items()
        for variant in entry["variants"]
        for profiler in config.get("profilers", ["plain"])
        for replicate in range(1, config.get("replicates", 1) + 1)
    ]


def thresholds(config: dict, experiment: str) -> dict[str, dict[str, float]]:
    """Verdict thresholds per metric: the global ones, overridden per experiment."""
    merged = dict(config["verdict"]["metrics"])
    merged.update(config["experiments"].get(experiment, {}).get("verdict", {}))
    return merged
