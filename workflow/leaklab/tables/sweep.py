"""Version sweep: the same experiment under several versions of one library.

Each version gets its own venv holding only that library (built by a rule from PyPI
wheels); the measured process runs leaklab's experiment module from this checkout
under that venv's interpreter, while the sampler and the analysis stay in the main
venv.  The ``version_sweep`` table gives growth per unit by version with its
interval and verdict, and names the first version whose verdict differs from the
one before it.  Sweeping another pinned library is a config change.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: parsing the Snakefile imports this module
    import pandas as pd

ROOT = "results/sweep"
DECISIVE = ("leak", "retention", "settling", "stable")


def version_key(version: str) -> tuple:
    """Sort ``0.10.3`` after ``0.9.2``."""
    return tuple(int(part) if part.isdigit() else part for part in version.replace("-", ".").split("."))


def venv_dir(package: str, version: str) -> str:
    return f"{ROOT}/venvs/{package}-{version}"


def run_dir(package: str, version: str, experiment: str, variant: str, replicate: int) -> str:
    return f"{ROOT}/{package}-{version}/runs/{experiment}/{variant}/plain/rep{replicate}"


def sweep_config(config: dict) -> dict:
    """The configuration the sweep's runs are analysed with: only the swept
    experiment, with the sweep's parameters, warm-up and the usual thresholds."""
    sweep = config["version_sweep"]
    name = sweep["experiment"]
    entry = copy.deepcopy(config["experiments"].get(name, {"variants": sweep["variants"]}))
    entry.update(variants=sweep["variants"], warmup_units=sweep.get("warmup_units", entry.get("warmup_units", 1)),
                 params={**entry.get("params", {}), **sweep.get("params", {})})
    if "confirm" in sweep:  # the sweep's own horizon, for its own length
        entry["confirm"] = sweep["confirm"]
    for key in ("profilers", "profile_variants", "profile_params", "replicates"):
        entry.pop(key, None)
    return {**config, "experiments": {name: entry}}


def _mark_changes(sweep: pd.DataFrame, column: str, keys: list[str], first_column: str) -> None:
    """Where ``column`` first differs from the version before it, per ``keys``.  Only
    decisive verdicts count: a version that cannot decide changes nothing."""
    changed_column = f"{column}_changed"
    sweep[changed_column] = False
    versions = sweep.drop_duplicates([*keys, "version"]) if keys == ["variant"] else sweep
    for _, group in versions.groupby(keys):
        decisive = group[group[column].isin(DECISIVE)]
        previous = decisive[column].shift()
        changed = decisive.index[previous.notna() & (decisive[column] != previous)]
        sweep.loc[changed, changed_column] = True
    first = sweep[sweep[changed_column]].groupby(keys)["version"].first()
    sweep[first_column] = [first.get(key if len(keys) > 1 else key[0]) for key in zip(*(sweep[k] for k in keys))]
    if column != "verdict":
        sweep.drop(columns=changed_column, inplace=True)


def table(run_dirs_by_version: dict[str, list[Path]], config: dict) -> pd.DataFrame:
    """Growth per unit of every metric by version, and where the verdict first changes."""
    import pandas as pd

    from leaklab.tables import tables

    analysed = sweep_config(config)
    package = config["version_sweep"]["package"]
    frames = []
    for version in sorted(run_dirs_by_version, key=version_key):
        built = tables.build(run_dirs_by_version[version], analysed)
        growth = built["growth"]
        if growth.empty:
            continue
        statuses = built["runs"].groupby("variant")["status"].agg(lambda s: ",".join(sorted(set(s))))
        decided = built["variant_verdicts"].set_index("variant")
        frames.append(growth.assign(package=package, version=version, run_status=growth["variant"].map(statuses),
                                    variant_verdict=growth["variant"].map(decided["verdict"]),
                                    decided_by=growth["variant"].map(decided["metric"])))
    if not frames:
        return pd.DataFrame()
    sweep = pd.concat(frames, ignore_index=True)
    _mark_changes(sweep, "verdict", ["variant", "metric"], "first_change_version")
    _mark_changes(sweep, "variant_verdict", ["variant"], "variant_first_change_version")
    columns = ["package", "version", "experiment", "variant", "metric", "unit", "growth_per_unit", "ci_low",
               "ci_high", "leak_per_unit", "verdict", "verdict_changed", "first_change_version", "variant_verdict",
               "decided_by", "variant_first_change_version", "n_replicates", "run_status", "units_observed",
               "confirmation", "levelled_off_unit", "plateau_level", "runs_not_ok"]
    return sweep[[c for c in columns if c in sweep.columns]]
