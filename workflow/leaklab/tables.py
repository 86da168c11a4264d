"""Tidy tables from run directories, written to DuckDB and CSV.

Readers (``read_run``) are separate from the analysis (``leaklab.growth``) and from
the writers (``write_duckdb``, ``write_csv``).  A run directory that cannot be read
is recorded as a ``parse_error`` run rather than stopping the aggregation.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from leaklab import attribution, controls, experiments, growth, profiler_tables, profilers, sensitivity, verdicts
from leaklab import settings as leaklab_settings

TABLES = ("runs", "samples", "marks", "units", "replicate_growth", "growth", "variant_verdicts", "comparisons",
          "controls", "sensitivity", "attribution",
          "heap_timeline", "top_sites", "profiler_summary", "profiler_overhead", "agreement", "visibility")
RUN_COLUMNS = ["experiment", "variant", "profiler", "replicate", "status", "exit_code",
               "wall_s", "cpu_s", "peak_rss_bytes", "n_samples", "n_units", "unit",
               "scale", "profile_status", "profile_error"]


def read_run(rundir: Path) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """A run directory's meta, samples and marks."""
    rundir = Path(rundir)
    current = rundir / "meta.json"
    try:
        meta = json.loads(current.read_text())
        current = rundir / "samples.parquet"
        samples = pd.read_parquet(current)
        current = rundir / "marks.parquet"
        marks = pd.read_parquet(current)
    except (OSError, ValueError) as err:
        raise ValueError(f"{current}: {err}") from err
    return meta, samples, marks


def _keyed(frame: pd.DataFrame, meta: dict) -> pd.DataFrame:
    keys = {k: meta[k] for k in growth.RUN_KEYS}
    return frame.assign(**keys)[[*growth.RUN_KEYS, *frame.columns]]


def _long_marks(marks: pd.DataFrame) -> pd.DataFrame:
    value_columns = [c for c in marks.columns if c not in ("t", "unit", "phase")
                     and pd.api.types.is_numeric_dtype(marks[c])]
    long = marks.melt(id_vars=["t", "unit", "phase"], value_vars=value_columns,
                      var_name="metric", value_name="value")
    return long.dropna(subset=["value"])


def build(run_dirs: list[Path], config: dict) -> dict[str, pd.DataFrame]:
    """Every table, from the run directories the workflow produced."""
    resolved = leaklab_settings.resolve(config)
    runs, samples, marks, units = [], [], [], []
    timelines, sites, summaries, heap_growth = [], [], [], []
    for rundir in run_dirs:
        try:
            meta, run_samples, run_marks = read_run(rundir)
        except (OSError, ValueError, KeyError) as err:
            parts = Path(rundir).parts
            runs.append({"experiment": parts[-4], "variant": parts[-3], "profiler": parts[-2],
                         "replicate": int(parts[-1].removeprefix("rep")), "status": "parse_error",
                         "error": f"{type(err).__name__}: {err}"})
            continue
        wall_per_unit, cpu_per_unit = profiler_tables.per_unit_costs(run_marks)
        runs.append({**{k: meta.get(k) for k in RUN_COLUMNS},
                     "wall_per_unit_s": wall_per_unit, "cpu_per_unit_s": cpu_per_unit})
        samples.append(_keyed(run_samples, meta))
        marks.append(_keyed(_long_marks(run_marks), meta))
        spec = experiments.get(meta["experiment"])
        series = growth.unit_series(run_samples, run_marks)
        metric_names = dict.fromkeys([*resolved[meta["experiment"]].thresholds, *spec.key_metrics])
        present = [m for m in metric_names if m in series]
        units.append(_keyed(series.melt(id_vars=["unit", "t"], value_vars=present,
                                        var_name="metric", value_name="value").dropna(subset=["value"]), meta))
        warmup = resolved[meta["experiment"]].warmup_units
        profile = profiler_tables.read_profile(Path(rundir))
        if "heap_timeline" in profile:
            timelines.append(_keyed(profile["heap_timeline"], meta))
            slope, points = profiler_tables.heap_growth(profile["heap_timeline"], run_marks, meta["profiler"], warmup)
            heap_growth.append({**{k: meta[k] for k in growth.RUN_KEYS}, "unit": spec.unit,
                                "scale": meta.get("scale", 1.0), "layer": profilers.LAYERS[meta["profiler"]],
                                "heap_growth_per_unit": slope, "points": points})
        if "top_sites" in profile:
            sites.append(_keyed(profile["top_sites"], meta))
        if "summary" in profile:
            summaries.append(_keyed(profile["summary"], meta))

    tables = {
        "runs": pd.DataFrame(runs),
        "samples": pd.concat(samples, ignore_index=True) if samples else pd.DataFrame(),
        "marks": pd.concat(marks, ignore_index=True) if marks else pd.DataFrame(),
        "units": pd.concat(units, ignore_index=True) if units else pd.DataFrame(),
    }
    per_run = verdicts.replicate_slopes(tables["units"], verdicts.warmup_units(resolved))
    tables["replicate_growth"] = per_run
    tables["growth"] = verdicts.pooled_growth(per_run, resolved, tables["units"])
    tables["variant_verdicts"] = verdicts.variant_verdicts(tables["growth"], resolved).drop(columns="row")
    tables["controls"] = controls.check(tables["growth"], resolved)
    tables["sensitivity"] = sensitivity.table(tables["units"], resolved)
    # one failed control makes every verdict of this run suspect; no controls: unchecked
    tables["growth"]["controls_passed"] = controls.all_passed(tables["controls"])
    baselines = {name: s.baseline for name, s in resolved.items()}
    tables["comparisons"] = verdicts.compare_to_baseline(per_run, tables["growth"], baselines)
    tables["heap_timeline"] = pd.concat(timelines, ignore_index=True) if timelines else pd.DataFrame()
    tables["top_sites"] = pd.concat(sites, ignore_index=True) if sites else pd.DataFrame()
    tables["profiler_summary"] = pd.concat(summaries, ignore_index=True) if summaries else pd.DataFrame()
    ok_runs = tables["runs"][tables["runs"]["status"] != "parse_error"]
    tables["profiler_overhead"] = profiler_tables.overhead_table(ok_runs) if len(ok_runs) else pd.DataFrame()
    tables["agreement"] = profiler_tables.agreement_table(pd.DataFrame(heap_growth), tables["growth"]) \
        if heap_growth and len(tables["growth"]) else pd.DataFrame()
    tables["attribution"] = attribution.table(tables["growth"], tables["agreement"])
    used = {name: sorted(set(ok_runs.loc[ok_runs["experiment"] == name, "profiler"])) for name in config["experiments"]}
    tables["visibility"] = profiler_tables.visibility_table(used)
    return tables


def read_csv_table(path: Path) -> pd.DataFrame:
    """A table written by :func:`write_csv`; an empty table reads as an empty frame."""
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def write_csv(tables: dict[str, pd.DataFrame], directory: Path) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_csv(directory / f"{name}.csv", index=False)


def write_duckdb(tables: dict[str, pd.DataFrame], path: Path) -> None:
    """Write every table into a fresh DuckDB file, replacing the old one only when complete."""
    import duckdb

    path = Path(path)
    partial = path.with_suffix(".partial.duckdb")
    partial.unlink(missing_ok=True)
    con = duckdb.connect(str(partial))
    try:
        for name, frame in tables.items():
            if frame.empty and not len(frame.columns):
                con.execute(f"CREATE TABLE {name} (empty BOOLEAN)")
                continue
            con.register("frame", frame)
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM frame")
            con.unregister("frame")
    finally:
        con.close()
    os.replace(partial, path)
