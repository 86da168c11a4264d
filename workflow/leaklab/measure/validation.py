"""The configuration's first checks, each ending in a one-line error before any job.

``leaklab.measure.config_check.check`` knows the experiments; this comes before it: YAML that does
not parse (file and line), ids that are not plain names (an id becomes a directory:
``..`` once wrote one experiment's runs into another's), numbers that are not finite,
an experiment that is neither built in nor declares a ``command``, and the JSON
schema, whose first error is turned into one line (key, bad value, what is allowed)
instead of a dump of the schema.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path

import yaml

from leaklab import experiments


class ConfigError(ValueError):
    """A configuration value that cannot work; the message names key and allowed values."""


ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
ID_FORM = "letters, digits, '_', '-' and '.', not starting with '.' or '-', at most 64 characters"


def load_yaml(path: str | Path) -> dict:
    """A YAML config file; a syntax error names the file and the line."""
    try:
        loaded = yaml.safe_load(Path(path).read_text())
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError(f"{where}: not valid YAML: {err.problem or err.context}") from None
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: {err}") from None
    if loaded is not None and not isinstance(loaded, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, not {type(loaded).__name__}")
    return loaded or {}


def _yaml_scalar(text: str) -> object:
    """``text`` as a plain YAML scalar means it (``4096`` a number, ``true`` a boolean);
    anything that would read as more than a scalar stays the text."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return text if isinstance(value, (dict, list)) or value is None and text.strip() not in ("null", "~") else value


def type_command_line(config: dict, given: Mapping) -> None:
    """Give the nested values of ``--config`` (``given``) their YAML types in ``config``.

    Snakemake reads ``--config limits={mem_cap_mb: 4096}`` with YAML's base loader, so
    every nested value arrives as text (``'4096' is not a number``); a value given on
    the command line means what it means in a config file."""
    def walk(target: object, source: object) -> None:
        pairs = source.items() if isinstance(source, Mapping) else enumerate(source)
        for key, value in pairs:
            try:
                current = target[key]  # type: ignore[index]
            except (KeyError, IndexError, TypeError):
                continue
            if isinstance(value, str) and isinstance(current, str) and current == value:
                target[key] = _yaml_scalar(value)  # type: ignore[index]
            elif isinstance(value, (Mapping, list)):
                walk(current, value)

    for key, value in given.items():
        if isinstance(value, (Mapping, list)) and key in config:
            walk(config[key], value)


def check_id(where: str, value: object) -> None:
    """Ids become directory names and wildcard values: plain names only."""
    if not isinstance(value, str) or not ID.fullmatch(value):
        raise ConfigError(f"{where}: {value!r} is not a plain name; allowed: {ID_FORM}")


def _check_finite(value: object, where: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where}: {value} is not a finite number")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_finite(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_finite(item, f"{where}[{index}]")


def _list(value: object) -> list:
    """The items of a list (the keys of a mapping: ``variants`` may map each variant to
    its settings); anything else is the schema's to report."""
    return list(value) if isinstance(value, (list, dict)) else []


def _check_ids(config: dict) -> None:
    entries = config.get("experiments")
    if not isinstance(entries, dict):
        return  # the schema says what experiments must be
    for name, entry in entries.items():
        check_id("experiments", name)
        if not isinstance(entry, dict):
            continue
        if "command" not in entry and name not in experiments.NAMES:
            raise ConfigError(f"experiments.{name}: unknown experiment {name!r}; known: {', '.join(experiments.NAMES)} "
                              f"(or declare your own with a `command:`)")
        for key in ("variants", "profile_variants"):
            for variant in _list(entry.get(key)):
                check_id(f"experiments.{name}.{key}", variant)
        if "baseline" in entry:
            check_id(f"experiments.{name}.baseline", entry["baseline"])
    sweep = config.get("version_sweep")
    if isinstance(sweep, dict):
        for key in ("experiment", "package"):
            if key in sweep:
                check_id(f"version_sweep.{key}", sweep[key])
        for key in ("variants", "versions"):
            for item in _list(sweep.get(key)):
                check_id(f"version_sweep.{key}", item)


def schema_error_line(error) -> str:
    """One line for a jsonschema error: the key, the bad value, what is allowed."""
    where = ".".join(str(p) for p in error.absolute_path) or "config"
    kind, limit, value = error.validator, error.validator_value, error.instance
    if kind == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(k for k in value if k not in allowed)
        return f"{where}: unknown key {', '.join(map(repr, extra))}; allowed: {', '.join(allowed)}"
    if kind == "enum":
        return f"{where}: {value!r}; allowed: {', '.join(map(str, limit))}"
    bounds = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}
    if kind in bounds:
        return f"{where}: {value!r} is out of range; allowed: {bounds[kind]} {limit}"
    if kind == "type":
        wanted = " or ".join(limit) if isinstance(limit, list) else limit
        return f"{where}: {value!r} is not {'an' if wanted[0] in 'aeiou' else 'a'} {wanted}"
    if kind == "pattern":
        return f"{where}: {value!r} does not match; allowed: {limit}"
    return f"{where}: {error.message}"


def check_schema(config: dict, schema_path: str | Path) -> None:
    """The schema's most relevant error, as one line."""
    import jsonschema

    schema = yaml.safe_load(Path(schema_path).read_text())
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(config))
    if error is not None:
        raise ConfigError(schema_error_line(error))


def stopping_from_command_line(config: dict) -> None:
    """``--config stopping={sequential: false}`` (the nightly profile's fixed length)
    reaches the config as strings: Snakemake reads nested command-line values with
    YAML's BaseLoader.  The stopping block's booleans and whole numbers are read back
    here; anything else is left for the schema to report."""
    block = config.get("stopping")
    if not isinstance(block, dict):
        return
    if isinstance(block.get("sequential"), str) and block["sequential"].lower() in ("true", "false"):
        block["sequential"] = block["sequential"].lower() == "true"
    if isinstance(block.get("min_units"), str) and block["min_units"].isdigit():
        block["min_units"] = int(block["min_units"])


def check_before_schema(config: dict, schema_path: str | Path) -> None:
    """Finite numbers, plain ids, known experiments, then the schema."""
    stopping_from_command_line(config)
    _check_finite(config, "")
    _check_ids(config)
    check_schema(config, schema_path)
