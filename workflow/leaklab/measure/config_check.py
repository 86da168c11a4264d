"""Checks on the configuration that a JSON schema cannot express.

The schema (``workflow/schemas/config.schema.yaml``, after ``leaklab.measure.validation``)
checks shapes and types; here we check what depends on the experiments themselves:
variant ids, parameter names, whole numbers where a count is meant, sizes and limits
that fit this machine, durations that must parse, warm-ups shorter than the run,
verdict metrics that exist.  Every error names the key, the bad value and what is
allowed, and is raised before any job starts.  The run list and run lengths these
checks are about live in ``leaklab.measure.config``.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping

from leaklab import experiments, profilers  # light: the Snakefile parse imports this
from leaklab.model import settings
from leaklab.process import sampler, unit_protocol
from leaklab.model.amounts import plural
from leaklab.measure.config import (Run, confirmation, experiment_params, experiment_profilers, horizon_params,
                                    length_param, marked_by_the_second, runs, units_in, variant_settings)
from leaklab.measure.validation import ConfigError

MIN_POST_WARMUP_UNITS = 3
# What marks carry besides the experiments' own key metrics (``leaklab.experiments.marks``).
IN_PROCESS_METRICS = ("rss_bytes", "malloc_in_use_bytes", "py_blocks", "py_heap_bytes")


def machine_memory_bytes() -> int:
    """MemTotal of this machine (``/proc/meminfo``)."""
    with open("/proc/meminfo") as f:
        return int(f.readline().split()[1]) * 1024


def _check_template(where: str, template: str, values: dict) -> None:
    """A command template filled with the real parameter values, so format specs such
    as ``{n:05d}`` work; an unknown placeholder or a bad spec is a config error."""
    try:
        template.format(**values)
    except KeyError as err:
        raise ConfigError(f"{where}: unknown placeholder {{{err.args[0]}}}; "
                          f"allowed: {', '.join('{' + a + '}' for a in values)}") from None
    except (ValueError, IndexError, TypeError) as err:
        raise ConfigError(f"{where}: {template!r} is not a valid template ({err}); "
                          f"allowed: placeholders such as {{variant}} or {{n:05d}}") from None


def _check_inside_project(where: str, template: str, values: dict) -> None:
    """A workdir file is copied from inside ``{project}`` (or ``{setup_dir}``): an
    absolute path or a ``..`` is a config error, before any job."""
    roots = {"project": "\0project", "setup_dir": "\0setup_dir"}
    filled = template.format(**{**values, **roots})
    for marker in roots.values():
        filled = filled.removeprefix(marker).lstrip("/") if filled.startswith(marker) else filled
    if filled.startswith("/") or ".." in filled.split("/") or "\0" in filled:
        raise ConfigError(f"{where}: {template!r} leaves the project; allowed: paths relative to {{project}} "
                          f"(or under {{setup_dir}}), without '..'")


def _check_command(name: str, entry: dict) -> None:
    """A command experiment: placeholders that resolve (for every variant, with its own
    parameters and command), a baseline among the variants, a unit pattern that
    compiles, scaled parameters that are numbers."""
    params = entry.get("params", {})
    fixed = {"variant": "x", "workdir": "x", "setup_dir": "x", "project": "x"}
    if "setup" in entry:
        _check_template(f"experiments.{name}.setup", entry["setup"], {**fixed, **params})
    for variant in entry["variants"]:
        own = variant_settings(entry, variant)
        values = {**fixed, **params, **own.get("params", {})}
        where = f"experiments.{name}.variants.{variant}.command" if "command" in own else f"experiments.{name}.command"
        _check_template(where, own.get("command", entry["command"]), values)
        for i, path in enumerate(entry.get("workdir_files", [])):
            _check_template(f"experiments.{name}.workdir_files[{i}]", path, values)
            _check_inside_project(f"experiments.{name}.workdir_files[{i}]", path, values)
    if "unit_pattern" in entry:
        try:
            unit_protocol.compile_pattern(entry["unit_pattern"])
        except ValueError as err:
            raise ConfigError(f"experiments.{name}.unit_pattern: {err}") from None
    baseline = entry.get("baseline", next(iter(entry["variants"])))
    if baseline not in entry["variants"]:
        raise ConfigError(f"experiments.{name}.baseline: {baseline!r} is not among its variants; "
                          f"allowed: {', '.join(entry['variants'])}")
    for key in entry.get("scaled_params", []):
        if not isinstance(params.get(key), (int, float)) or isinstance(params.get(key), bool):
            raise ConfigError(f"experiments.{name}.scaled_params: {key!r} is not a numeric parameter; "
                              f"numeric parameters: {', '.join(k for k, v in params.items() if isinstance(v, (int, float)))}")


def _check_params(name: str, given: dict, key: str = "params") -> None:
    """Known names; numbers where the default is one, whole where it is whole, within
    the documented maximum."""
    module = importlib.import_module(f"leaklab.experiments.{name}")
    spec = experiments.builtin(name)
    allowed = sorted(module.DEFAULTS)
    section = key
    for key, value in given.items():
        where = f"experiments.{name}.{section}.{key}"
        if key not in module.DEFAULTS:
            raise ConfigError(f"{where}: unknown parameter; allowed: {', '.join(allowed)}")
        default = module.DEFAULTS[key]
        if key == spec.duration_param:
            try:
                spec.parse_duration(value)
            except ValueError as err:
                raise ConfigError(f"{where}: {err}") from None
        elif isinstance(default, (int, float)) and not isinstance(default, bool):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{where}: {value!r} is not a number")
            if isinstance(default, int) and not isinstance(value, int):
                raise ConfigError(f"{where}: {value!r} is not a whole number; allowed: whole numbers such as {default}")
            if value < 0 or (value == 0 and key not in ("interval_s", "seed", "rows")):
                raise ConfigError(f"{where}: {value!r} must be positive")
            maximum = spec.param_maxima.get(key)
            if maximum is not None and value > maximum:
                raise ConfigError(f"{where}: {value!r} is too large; allowed: up to {maximum:,}")


def _check_footprint(config: dict, name: str) -> None:
    """A data set larger than this machine's memory cannot be measured here, whatever the
    cap (which only stops a run late)."""
    spec = experiments.builtin(name)
    if spec is None or spec.footprint is None:
        return
    size, memory = spec.footprint(experiment_params(config, name)), machine_memory_bytes()
    if size > memory // 2:
        raise ConfigError(f"experiments.{name}.params: the data set takes {size / 2**30:.1f} GiB; "
                          f"allowed: up to half of this machine's memory ({memory / 2**31:.1f} GiB)")


def known_metrics(config: dict, specs: Mapping[str, experiments.Spec], name: str | None = None) -> set[str]:
    """Metrics a verdict can be about: the sampler's, the in-process ones, the
    experiments' key metrics (one experiment's, or every configured one's)."""
    names = [name] if name else list(config["experiments"])
    known = {*settings.DEFAULT_THRESHOLDS, *sampler.OUTSIDE_METRICS, *IN_PROCESS_METRICS}
    for experiment in names:
        known.update(specs[experiment].key_metrics)
    return known


def _check_metrics(config: dict, specs: Mapping[str, experiments.Spec]) -> None:
    for name in [None, *config["experiments"]]:
        given = (config.get("verdict") or {}).get("metrics", {}) if name is None \
            else config["experiments"][name].get("verdict", {})
        where = "verdict.metrics" if name is None else f"experiments.{name}.verdict"
        known = known_metrics(config, specs, name)
        for metric in given:
            if metric not in known:
                raise ConfigError(f"{where}.{metric}: unknown metric {metric!r}; allowed: {', '.join(sorted(known))} "
                                  f"(a command experiment's own metrics: list them in its key_metrics)")
        if name is not None and "malloc_in_use_bytes" in given and "command" in config["experiments"][name]:
            _check_heap_metric(config["experiments"][name], where)


def _check_heap_metric(entry: dict, where: str) -> None:
    """A command experiment judged by ``malloc_in_use_bytes`` needs a program whose
    allocator has a mechanism leaklab reads (``leaklab.process.allocator_heap``: jemalloc's
    heap profile dumps for a program linked with libjemalloc, glibc's libmemusage preloaded
    into any other dynamically linked one); a program the setup has not built yet is
    checked when it runs (``meta.json`` ``heap_metric``)."""
    import shlex

    from leaklab.process import allocator_heap, own_program

    variants = entry.get("variants") or {}
    commands = [entry.get("command")] + [v.get("command") for v in (variants.values() if isinstance(variants, dict)
                                                                   else []) if isinstance(v, dict)]
    for command in filter(None, commands):
        try:
            argv = shlex.split(command)
        except ValueError:
            continue  # the command's own check names it
        if not argv or "{" in argv[0]:
            continue
        why = own_program.wrapper_note(argv)
        usable, why = (False, why) if why else allocator_heap.applies(argv[0])
        if not usable and "not found (yet)" not in why:
            raise ConfigError(f"{where}.malloc_in_use_bytes: no heap metric for {command!r}: {why}; allowed: a "
                              "dynamically linked program given as the command itself (one linked with libjemalloc "
                              "is read through jemalloc's heap profile dumps, any other through glibc's "
                              "libmemusage preloaded into it), or leave malloc_in_use_bytes out of its verdict")


def _check_limits(config: dict) -> None:
    memory_mb = machine_memory_bytes() // 2**20
    cap = config.get("limits", {}).get("mem_cap_mb", 0)
    if cap > memory_mb:
        raise ConfigError(f"limits.mem_cap_mb: {cap} is more than this machine's memory; allowed: up to {memory_mb}")


def _check_run_dirs(config: dict) -> None:
    """Two runs never share a directory (plain ids make this hold; checked all the same)."""
    seen: dict[str, Run] = {}
    for run in runs(config):
        key = os.path.normpath(run.path)
        if key in seen or key.startswith("..") or key.count("/") != 3:
            raise ConfigError(f"experiments.{run.experiment}.variants: {run.variant!r} would write into "
                              f"results/runs/{key}, shared with {seen.get(key, 'another directory')}")
        seen[key] = run


def _check_stopping(config: dict) -> None:
    """A command experiment's ``length_param`` names a whole-number parameter of every
    variant; an experiment that asks for confirmation has a length to stretch."""
    for name, entry in config["experiments"].items():
        if entry.get("confirm") and not marked_by_the_second(name) and length_param(config, name) is None:
            raise ConfigError(f"experiments.{name}.confirm: the run's length must be known to stretch it to the "
                              f"horizon; give experiments.{name}.length_param (allowed: a whole-number parameter)")
        if confirmation(config, name) and marked_by_the_second(name):
            spec = experiments.builtin(name)
            seconds = spec.parse_duration(horizon_params(config, name, experiment_params(config, name))[
                spec.duration_param])
            timeout = float((config.get("limits") or {}).get("timeout_s", 300))
            if seconds >= timeout:
                raise ConfigError(f"experiments.{name}.confirm.horizon: {entry['confirm']['horizon']} x the duration "
                                  f"is {seconds:.0f} s, past limits.timeout_s ({timeout:.0f} s); allowed: a horizon "
                                  f"that ends before the time limit")
        key = entry.get("length_param")
        if key is None or "command" not in entry:
            continue
        for variant in entry["variants"]:
            value = experiment_params(config, name, variant).get(key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                numeric = [k for k, v in experiment_params(config, name, variant).items()
                           if isinstance(v, int) and not isinstance(v, bool)]
                raise ConfigError(f"experiments.{name}.length_param: {key!r} is not a whole-number parameter of "
                                  f"variant {variant!r} (it is {value!r}); allowed: {', '.join(numeric) or 'none'}")


def check(config: dict) -> None:
    """Raise ConfigError on the first value that cannot work."""
    known = experiments.specs(config)
    for name in config["experiments"]:
        for profiler in experiment_profilers(config, name):
            if profiler not in profilers.PROFILERS:
                raise ConfigError(
                    f"experiments.{name}.profilers: unknown profiler {profiler!r}; "
                    f"allowed: {', '.join(profilers.PROFILERS)}"
                )
            if profiler == "pprof" and name in known and known[name].runtime_heap != "Go" \
                    and not config["experiments"][name].get("pprof_url"):
                raise ConfigError(f"experiments.{name}.profilers: pprof reads Go heap profiles; allowed for the Go "
                                  f"experiments and for a command experiment that gives its pprof_url")
    for name, entry in config["experiments"].items():
        if name not in known:
            raise ConfigError(f"experiments.{name}: unknown experiment; allowed: {', '.join(known)}")
        spec = known[name]
        if spec.module is None:
            _check_command(name, entry)
        for variant in entry["variants"]:
            if variant not in spec.variants:
                raise ConfigError(
                    f"experiments.{name}.variants: unknown variant {variant!r}; allowed: {', '.join(spec.variants)}"
                )
        for variant in entry.get("profile_variants", []):
            if variant not in entry["variants"]:
                raise ConfigError(
                    f"experiments.{name}.profile_variants: {variant!r} is not among its variants; "
                    f"allowed: {', '.join(entry['variants'])}"
                )
        if spec.module is None:
            continue  # the program decides how many units it runs
        _check_params(name, entry.get("params", {}))
        for variant in entry["variants"]:
            _check_params(name, variant_settings(entry, variant).get("params", {}), key=f"variants.{variant}.params")
        _check_params(name, entry.get("profile_params", {}), key="profile_params")
        units = units_in(name, experiment_params(config, name))
        warmup = entry.get("warmup_units", 1)
        if units - warmup < MIN_POST_WARMUP_UNITS:
            raise ConfigError(
                f"experiments.{name}.warmup_units: {warmup} leaves {units - warmup} of {units} {plural(spec.unit)}; "
                f"growth needs at least {MIN_POST_WARMUP_UNITS} after the warm-up"
            )
        _check_footprint(config, name)
    _check_metrics(config, known)
    try:
        settings.resolve(config)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    _check_limits(config)
    _check_stopping(config)
    _check_run_dirs(config)
    _check_sweep(config)


def _check_sweep(config: dict) -> None:
    sweep = config.get("version_sweep")
    if not sweep:
        return
    name = sweep["experiment"]
    spec = experiments.builtin(name)
    if spec is None or spec.command:
        raise ConfigError(f"version_sweep.experiment: {name!r} is not a built-in experiment; "
                          f"allowed: {', '.join(n for n in experiments.NAMES if not experiments.builtin(n).command)}")
    for variant in sweep["variants"]:
        if variant not in spec.variants:
            raise ConfigError(f"version_sweep.variants: unknown variant {variant!r}; allowed: {', '.join(spec.variants)}")
    _check_params(name, sweep.get("params", {}), key="params (version_sweep)")
    base = config["experiments"].get(name, {})
    params = {**importlib.import_module(f"leaklab.experiments.{name}").DEFAULTS, **base.get("params", {}),
              **sweep.get("params", {})}
    units, warmup = units_in(name, params), sweep.get("warmup_units", base.get("warmup_units", 1))
    if units - warmup < MIN_POST_WARMUP_UNITS:
        raise ConfigError(f"version_sweep.warmup_units: {warmup} leaves {units - warmup} of {units} "
                          f"{plural(spec.unit)}; growth needs at least {MIN_POST_WARMUP_UNITS} after the warm-up")
    from leaklab.tables.sweep import sweep_config

    try:
        _check_stopping(sweep_config(config))
    except ConfigError as err:
        raise ConfigError(str(err).replace(f"experiments.{name}.confirm", "version_sweep.confirm")) from None
