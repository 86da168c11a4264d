"""The leak reproductions: one module per experiment, each run as its own process.

Every experiment module defines ``VARIANTS``, ``BASELINE`` (the variant others are
compared with), ``UNIT`` (what one unit of work is), ``KEY_METRICS`` (what its
figures show besides RSS), optionally ``RELEASES`` (every unit ends by
handing its memory back, so what stays is retention), ``SCALED_PARAMS`` (the
size parameters a heavy profiler's ``scale`` multiplies), ``native_libraries()``
(shared objects worth checking for a bundled allocator) and ``run(variant, params, workdir)``, and ends with
``main = cli(run, VARIANTS)`` so ``python -m leaklab.experiments.<name>`` runs it.
A native reproduction (a Go or C++ program under ``native/``, built by the workflow)
defines ``COMMAND`` instead of ``run``: the argv template a command experiment has,
filled with its parameters, ``binary`` and (for the merge programs) ``fixture``; it
speaks the unit-line protocol like a user's program.  ``RUNTIME_HEAP`` names a
language runtime that keeps its own heap outside malloc (Go).

Each module also declares the facts the configuration checks and the run list need:
``LENGTH_PARAM`` (the parameter that holds a run's length in units) or, for an
experiment whose length is a time, ``DURATION_PARAM`` with ``parse_duration`` and
``units_in(params)``; ``PARAM_MAXIMA`` (documented maxima: a typo is an error, not a
job that fills the disk); ``footprint(params)`` (bytes its data set takes at once);
``PACED`` (it waits for its own clock most of the time, 1-20 % of one core under every
profiler: scheduled beside the CPU-bound runs, rule run_experiment's resource ``paced``)
and ``READS_ROCKSDB_FIXTURE`` (it reads the rocksdb_merge fixture database).

Users' own reproductions need no module: an ``experiments`` entry with a ``command``
(see ``command_spec``) declares one through the configuration alone.  :func:`specs`
resolves a configuration's experiments once into an immutable mapping of specs; that
value (or the one spec a job needs) is what the runner, the tables and the figures are
given, so no module keeps a registry that depends on which configuration was read last.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from leaklab.experiments import marks

NAMES = ("rocksdb_merge", "dict_shrink", "duckdb_load", "fd_leak", "planted", "go_merge", "cpp_merge", "go_map", "go_fd")
UNIT_SOURCES = ("marks", "seconds")


def _no_libraries() -> list[str]:
    return []


@dataclass(frozen=True)
class Spec:
    name: str
    module: str | None
    variants: tuple[str, ...]
    baseline: str
    unit: str
    key_metrics: tuple[str, ...]
    releases: bool
    scaled_params: tuple[str, ...]
    native_libraries: Callable[[], list[str]]
    command: str | None = None  # a user's program: a template with {variant}, {workdir}, params
    unit_source: str = "marks"  # command experiments: unit lines from the program, or seconds
    setup: str | None = None    # command experiments: run once before any run (a build step)
    unit_pattern: str | None = None          # command experiments: a unit per matching output line
    workdir_files: tuple[str, ...] = ()      # command experiments: copied into each run's workdir
    runtime_heap: str | None = None  # a runtime whose own heap malloc-hooking profilers cannot see
    length_param: str | None = None  # the parameter that holds a run's length in units
    duration_param: str | None = None  # or the one that holds it in seconds (marked by the second)
    parse_duration: Callable[[object], float] | None = None  # seconds of a ``duration_param`` value
    units_in: Callable[[dict], int] | None = None  # units a run has, for a length given in seconds
    param_maxima: Mapping[str, float] = field(default_factory=dict, hash=False)
    footprint: Callable[[dict], int] | None = None  # bytes the data set takes at once
    paced: bool = False  # waits for its own clock most of the time: scheduled beside CPU-bound runs
    reads_rocksdb_fixture: bool = False

    def check_variant(self, variant: str) -> None:
        if variant not in self.variants:
            raise ValueError(
                f"unknown variant {variant!r} for experiment {self.name!r}; "
                f"allowed: {', '.join(self.variants)}"
            )


class UnknownExperiment(KeyError, ValueError):
    """A name no spec is known for: a KeyError for the mapping, a ValueError whose
    message names the allowed experiments for a user."""

    def __str__(self) -> str:
        return str(self.args[0])


class Specs(Mapping):
    """Every experiment one configuration can name, read only: the built-ins (their specs
    read from their modules when first looked up, so a dry run imports none it does not
    use) and, after them, the configuration's command experiments."""

    def __init__(self, commands: Mapping[str, Spec]):
        self._commands = dict(commands)
        self._names = (*NAMES, *(n for n in self._commands if n not in NAMES))

    def __getitem__(self, name: str) -> Spec:
        if name in self._commands:
            return self._commands[name]
        if name not in NAMES:
            raise UnknownExperiment(f"unknown experiment {name!r}; allowed: {', '.join(self._names)}")
        return builtin(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._commands or name in NAMES


def specs(config: Mapping) -> Specs:
    """The specs of the experiments ``config`` can name: every built-in one and the
    command experiments its ``experiments`` entries declare (a rule's config slice is
    enough: an entry needs ``command`` and ``variants``, the rest has defaults)."""
    return Specs({name: command_spec(name, entry) for name, entry in (config.get("experiments") or {}).items()
                  if "command" in entry})


def command_spec(name: str, entry: dict) -> Spec:
    """The spec of a configured command experiment (``experiments.<name>.command``)."""
    return Spec(
        name=name,
        module=None,
        variants=tuple(entry["variants"]),
        baseline=entry.get("baseline", next(iter(entry["variants"]))),
        unit=entry.get("unit", "second" if entry.get("unit_source") == "seconds" else "unit"),
        key_metrics=tuple(entry.get("key_metrics", ())),
        releases=bool(entry.get("releases", False)),
        scaled_params=tuple(entry.get("scaled_params", ())),
        native_libraries=_no_libraries,
        command=entry["command"],
        unit_source=entry.get("unit_source", "marks"),
        setup=entry.get("setup"),
        unit_pattern=entry.get("unit_pattern"),
        workdir_files=tuple(entry.get("workdir_files", ())),
        length_param=entry.get("length_param"),
    )


@functools.cache
def builtin(name: str) -> Spec | None:
    """The spec of a built-in experiment, read once from its module; None for any other
    name (a command experiment is declared by the configuration, not here)."""
    if name not in NAMES:
        return None
    module = importlib.import_module(f"leaklab.experiments.{name}")
    return Spec(
        name=name,
        module=module.__name__,
        variants=tuple(module.VARIANTS),
        baseline=module.BASELINE,
        unit=module.UNIT,
        key_metrics=tuple(module.KEY_METRICS),
        releases=getattr(module, "RELEASES", False),
        scaled_params=tuple(getattr(module, "SCALED_PARAMS", ())),
        native_libraries=getattr(module, "native_libraries", list),
        command=getattr(module, "COMMAND", None),
        runtime_heap=getattr(module, "RUNTIME_HEAP", None),
        length_param=getattr(module, "LENGTH_PARAM", None),
        duration_param=getattr(module, "DURATION_PARAM", None),
        parse_duration=getattr(module, "parse_duration", None),
        units_in=getattr(module, "units_in", None),
        param_maxima=dict(getattr(module, "PARAM_MAXIMA", {})),
        footprint=getattr(module, "footprint", None),
        paced=getattr(module, "PACED", False),
        reads_rocksdb_fixture=getattr(module, "READS_ROCKSDB_FIXTURE", False),
    )


def cli(run: Callable[[str, dict, Path], object], variants: tuple[str, ...]) -> Callable[[list[str] | None], None]:
    """Build the ``main`` of an experiment module: parse args, run, write the end mark."""

    def main(argv: list[str] | None = None) -> None:
        parser = argparse.ArgumentParser(description=run.__module__ + ": " + (run.__doc__ or "").strip().splitlines()[0])
        parser.add_argument("--variant", required=True, choices=variants)
        parser.add_argument("--params", default="{}", help="parameters as JSON (see config.yaml)")
        parser.add_argument("--workdir", type=Path, default=Path("."))
        args = parser.parse_args(argv)
        marks.start_tracing_if_asked()
        args.workdir.mkdir(parents=True, exist_ok=True)
        # what run() returns stays alive through the end mark and the final sample
        # (and a profiler's end-of-work snapshot): a leak held until exit shows there
        marks.stop_on_signal()  # a run decided early ends after its unit in progress
        try:
            kept = run(args.variant, json.loads(args.params), args.workdir)
        except marks.StopRequested as stop:
            # the traceback holds run()'s frames, and with them everything it kept:
            # alive through the end mark and the final sample, as after a full run
            kept = stop.__traceback__
        marks.finish()
        del kept

    return main
