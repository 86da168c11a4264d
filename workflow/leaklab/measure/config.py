"""The run list and what each run is given: parameters, lengths, profilers, replicates.

Everything here is read from a configuration that ``leaklab.measure.config_check``
has accepted; the experiments' own facts (length parameter, scaled parameters,
durations) come from their specs (``leaklab.experiments.specs``).
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from dataclasses import dataclass
from typing import Any

from leaklab import experiments  # light: the Snakefile parse imports this
from leaklab.model import settings
from leaklab.process import build
from leaklab.measure.validation import ConfigError

# A profiled run's purpose is the profiler's growth timeline and its sites, not a
# verdict: this many units after the warm-up give both (``stopping.profiled_units``).
DEFAULT_PROFILED_UNITS = 6
DEFAULT_MIN_UNITS = 5  # sequential.MIN_LOOK (not imported: the Snakefile's parse stays light)
# The verdicts that end a run early unless ``stopping.stop_on`` says otherwise: not
# ``stable``, which claims no growth over units a stopped run never ran (a step or an
# onset after the stop; README "Sequential stopping" has the accuracy figures).
DEFAULT_STOP_ON = ("leak", "retention", "settling")


@dataclass(frozen=True)
class Run:
    experiment: str
    variant: str
    profiler: str
    replicate: int

    @property
    def path(self) -> str:
        return f"{self.experiment}/{self.variant}/{self.profiler}/rep{self.replicate}"


def spec(config: dict, name: str) -> experiments.Spec:
    """The spec of one experiment ``config`` names (a built-in one, or a command
    experiment its entry declares)."""
    return experiments.specs(config)[name]


def variant_settings(entry: dict, variant: str) -> dict[str, Any]:
    """A variant's own settings (``params``, ``command``) when ``variants`` is a mapping."""
    variants = entry["variants"]
    return dict(variants.get(variant) or {}) if isinstance(variants, dict) else {}


def experiment_params(config: dict, name: str, variant: str | None = None) -> dict[str, Any]:
    """The experiment's defaults overlaid with the configured parameters, then with the
    variant's own (a command experiment also gets ``setup_dir``, where its ``setup``
    step built things; a native reproduction ``binary``, where the workflow builds it)."""
    entry = config["experiments"][name]
    own = variant_settings(entry, variant).get("params", {}) if variant else {}
    if "command" in entry:
        return {**entry.get("params", {}), **own, "setup_dir": setup_dir(name)}
    module = importlib.import_module(f"leaklab.experiments.{name}")
    params = {**module.DEFAULTS, **entry.get("params", {}), **own}
    if name in build.PROGRAMS:
        params["binary"] = build.binary_path(name)
    return params


def setup_dir(name: str) -> str:
    """Where a command experiment's setup step runs (absolute: runs use other cwds)."""
    import os

    return os.path.abspath(f"results/commands/{name}")


# Keys of ``profiler_settings.<profiler>`` the workflow uses; the rest go to the profiler.
WORKFLOW_KEYS = ("scale", "replicates")


def experiment_profilers(config: dict, name: str) -> list[str]:
    """Profilers an experiment runs under: its own list, or the global one."""
    return list(config["experiments"][name].get("profilers", config.get("profilers", ["plain"])))


def _profiler_entry(config: dict, name: str, profiler: str) -> dict[str, Any]:
    """Global ``profiler_settings.<profiler>``, overridden by the experiment's own."""
    entry = dict(config.get("profiler_settings", {}).get(profiler, {}))
    entry.update(config["experiments"].get(name, {}).get("profiler_settings", {}).get(profiler, {}))
    return entry


def profiler_settings(config: dict, name: str, profiler: str) -> dict[str, Any]:
    """What the profiler module gets (``scale`` and ``replicates`` are the workflow's;
    pprof gets a command experiment's ``pprof_url`` as ``url``)."""
    settings = {k: v for k, v in _profiler_entry(config, name, profiler).items() if k not in WORKFLOW_KEYS}
    url = config["experiments"].get(name, {}).get("pprof_url")
    if profiler == "pprof" and url:
        settings["url"] = url
    return settings


def scale(config: dict, name: str, profiler: str) -> float:
    return float(_profiler_entry(config, name, profiler).get("scale", 1.0))


def replicates(config: dict, name: str, profiler: str) -> int:
    """``plain``: the experiment's ``replicates``, else the global one; other
    profilers: their own setting (default 1)."""
    if profiler == "plain":
        default = config["experiments"][name].get("replicates", config.get("replicates", 1))
    else:
        default = 1
    return int(_profiler_entry(config, name, profiler).get("replicates", default))


def run_params(config: dict, name: str, profiler: str, variant: str | None = None) -> dict[str, Any]:
    """The experiment's parameters for one variant and profiler: the variant's own
    overlaid, for profilers other than plain ``profile_params`` overlaid, then size
    parameters scaled down (rounded, at least 1), so growth stays comparable per unit."""
    params = experiment_params(config, name, variant)
    if profiler != "plain":
        own = config["experiments"][name].get("profile_params", {})
        params.update(own)
        length_key = length_param(config, name)
        if length_key is not None and length_key not in own:
            params[length_key] = min(int(params[length_key]), profiled_length(config, name))
    if profiler == "plain" and confirmation(config, name):
        params.update(horizon_params(config, name, params))
    factor = scale(config, name, profiler)
    if factor != 1.0:
        for key in spec(config, name).scaled_params:
            params[key] = max(1, int(round(params[key] * factor)))
    return params


def planned_units(config: dict, name: str, variant: str) -> int | None:
    """How many units a plain run of ``variant`` is configured to run (the most a
    stopped run measures), or None where that is not known in units: an experiment
    marked by the second, a command experiment without ``length_param``."""
    key = length_param(config, name)
    if key is None or marked_by_the_second(name):
        return None
    return int(experiment_params(config, name, variant)[key])


def length_param(config: dict, name: str) -> str | None:
    """The parameter holding how many units a run of ``name`` runs, if there is one."""
    return spec(config, name).length_param


def marked_by_the_second(name: str) -> bool:
    """Whether a run's length is a time (``duration_param``): it marks once a second, not
    once a unit, so the looks of sequential stopping, counted in marks, never cut it short."""
    module_facts = experiments.builtin(name)
    return module_facts is not None and module_facts.duration_param is not None


def units_in(name: str, params: dict[str, Any]) -> int:
    """How many units a run of a built-in experiment has, from its parameters."""
    module_facts = experiments.builtin(name)
    return module_facts.units_in(params) if module_facts.units_in else int(params[module_facts.length_param])


def confirmation(config: dict, name: str) -> dict[str, Any] | None:
    """The experiment's ``confirm`` entry when it asks for a horizon beyond its window
    (README "Confirmation"), else None."""
    entry = config["experiments"][name].get("confirm") or {}
    return entry if float(entry.get("horizon", 1)) > 1 else None


def horizon_params(config: dict, name: str, params: dict[str, Any]) -> dict[str, Any]:
    """The length parameter of a plain run stretched to the horizon: the program is
    configured to run that long, and the runner stops it once its verdict no longer
    depends on what follows (``leaklab.measure.stopping``)."""
    factor = float(confirmation(config, name)["horizon"])
    if marked_by_the_second(name):
        module_facts = experiments.builtin(name)
        return {module_facts.duration_param: module_facts.parse_duration(params[module_facts.duration_param]) * factor}
    key = length_param(config, name)
    return {key: int(math.ceil(int(params[key]) * factor))}


def window_units(config: dict, name: str, variant: str, horizon: bool = False) -> int | None:
    """The unit at which a plain run's configured length (its window; ``horizon``: its
    horizon) ends, or None where the length is not known in units."""
    params = experiment_params(config, name, variant)
    if horizon:
        params.update(horizon_params(config, name, params))
    if marked_by_the_second(name):
        return units_in(name, params)
    key = length_param(config, name)
    return int(params[key]) if key is not None else None


def profiled_length(config: dict, name: str) -> int:
    """How many units a profiled run of ``name`` runs at most: its warm-up and
    ``stopping.profiled_units`` more, enough for the profiler's growth timeline and its
    sites (README "Sequential stopping"); a longer run only makes the profile cost more."""
    units = int((config.get("stopping") or {}).get("profiled_units", DEFAULT_PROFILED_UNITS))
    return int(config["experiments"][name].get("warmup_units", 1)) + units


def stop_plan(config: dict, name: str, profiler: str, variant: str) -> dict[str, Any]:
    """What a run needs to stop as soon as its verdict is decided (``leaklab.measure.stopping``):
    empty, so not watched, when ``stopping.sequential`` is off, for profiled runs (their
    rows are never judged) and where the length in units is unknown.  The thresholds and
    warm-up are in it only when stopping is on: otherwise a changed threshold re-runs the
    analysis, never a measurement."""
    stopping = config.get("stopping") or {}
    if profiler != "plain":
        return {}
    max_units = planned_units(config, name, variant)
    sequential = bool(stopping.get("sequential", False)) and max_units is not None
    confirm = confirmation(config, name)
    if not sequential and not confirm:
        return {}
    window = window_units(config, name, variant)
    confirmed = {"window_units": window, "confirm_leak": confirm.get("leak", False)} if confirm else {}
    return {"max_units": window_units(config, name, variant, horizon=True) if confirm else max_units,
            "sequential": sequential, **confirmed,
            "min_units": int(stopping.get("min_units", DEFAULT_MIN_UNITS)),
            "stop_on": list(stopping.get("stop_on", DEFAULT_STOP_ON)),
            # only what the looks read (thresholds, warm-up, unit, key metrics): another
            # variant, baseline or parameter must not re-run this run
            "settings": dataclasses.asdict(dataclasses.replace(settings.resolve_one(config, spec(config, name)),
                                                               variants=(), baseline="", params={}))}


def select_only(config: dict) -> None:
    """Keep only the experiments ``only`` names (``--config only=[my_exp]``), in place."""
    only = config.get("only")
    if only is None:
        return
    only = [only] if isinstance(only, str) else list(only)
    unknown = [name for name in only if name not in config["experiments"]]
    if unknown or not only:
        raise ConfigError(f"only: {', '.join(map(repr, unknown)) or 'an empty list'} names no configured experiment; "
                          f"allowed: {', '.join(config['experiments'])}")
    config["experiments"] = {name: config["experiments"][name] for name in only}


def runs(config: dict) -> list[Run]:
    """Every run the configuration asks for, in a stable order.  ``plain`` runs every
    variant; other profilers run the experiment's ``profile_variants`` (all variants
    when it names none)."""
    out = []
    for name, entry in config["experiments"].items():
        for profiler in experiment_profilers(config, name):
            variants = entry["variants"] if profiler == "plain" else entry.get("profile_variants", entry["variants"])
            for variant in variants:
                out.extend(Run(name, variant, profiler, r) for r in range(1, replicates(config, name, profiler) + 1))
    return out
