"""Tidy tables from run directories, written to DuckDB and CSV.

Readers (``leaklab.tables.run_files``) are separate from the analysis (``leaklab.model.growth``) and
from the writers (``write_duckdb``, ``write_csv``).  Runs are read one by one: a run
directory with a file that cannot be read, or that changed since the run, is recorded as
a ``parse_error`` run rather than stopping the aggregation (Snakemake deletes the outputs
of a failed job: one bad run must not cost every table).  The writers replace the
previous tables only once the new ones are complete.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd

from leaklab import experiments, profilers
from leaklab.model import baseline, controls, growth, horizon, sensitivity, sequential, stale_readings, verdicts
from leaklab.process import mappings
from leaklab.tables import attribution, placement, profiler_tables
from leaklab.tables.run_files import read_profile, read_run
from leaklab.model import settings as leaklab_settings
from leaklab.tables.table_names import TABLES  # noqa: F401  (re-exported)

MAPPING_TABLES = ("mapping_kinds", "processes", "mapping_sites")
RUN_COLUMNS = ["experiment", "variant", "profiler", "replicate", "status", "exit_code",
               "wall_s", "cpu_s", "peak_rss_bytes", "n_samples", "n_units", "stop_reason", "stopped_at_unit",
               "decided_at_unit", "window_units", "unit",
               "scale", "profile_status", "profile_error", "bad_unit_lines", "units_sharing_reading",
               "units_may_be_missed"]


def _keyed(frame: pd.DataFrame, meta: dict) -> pd.DataFrame:
    keys = {k: meta[k] for k in growth.RUN_KEYS}
    return frame.assign(**keys)[[*growth.RUN_KEYS, *frame.columns]]


def _long_marks(marks: pd.DataFrame) -> pd.DataFrame:
    value_columns = [c for c in marks.columns if c not in ("t", "unit", "phase")
                     and pd.api.types.is_numeric_dtype(marks[c])]
    long = marks.melt(id_vars=["t", "unit", "phase"], value_vars=value_columns,
                      var_name="metric", value_name="value")
    return long.dropna(subset=["value"])


def _one_run(rundir: Path, resolved: dict) -> dict:
    """Everything one run adds to the tables, read and checked before any of it is added."""
    meta, run_samples, run_marks = read_run(rundir)
    profile, profile_status, profile_error = read_profile(rundir, meta, run_marks)
    wall_per_unit, cpu_per_unit = profiler_tables.per_unit_costs(run_marks)
    got: dict[str, list] = {
        "run": {**{k: meta.get(k) for k in RUN_COLUMNS}, "profile_status": profile_status,
                "profile_error": profile_error, "containment": (meta.get("containment") or {}).get("kind"),
                "first_bad_unit_line": next(iter(meta.get("bad_unit_line_examples") or []), None),
                "wall_per_unit_s": wall_per_unit, "cpu_per_unit_s": cpu_per_unit},
        "samples": [_keyed(run_samples, meta)],
        "marks": [_keyed(_long_marks(run_marks), meta)],
    }
    own = resolved[meta["experiment"]]
    readings = pd.read_parquet(rundir / "mappings.parquet") if (rundir / "mappings.parquet").exists() else None
    series = growth.unit_series(run_samples, run_marks)
    if readings is not None and meta["profiler"] == "plain":  # a profiler's helpers are in the tree too
        own_line = "rss_bytes" in run_marks and bool(run_marks["rss_bytes"].notna().any())
        series = placement.rss_at_readings(series, readings, own_line)
    metric_names = dict.fromkeys([*own.thresholds, *own.key_metrics])
    present = [m for m in metric_names if m in series]
    got["units"] = [_keyed(series.melt(id_vars=["unit", "t"], value_vars=present,
                                       var_name="metric", value_name="value").dropna(subset=["value"]), meta)]
    warmup = own.warmup_units
    if "heap_timeline" in profile:
        got["heap_timeline"] = [_keyed(profile["heap_timeline"], meta)]
        slope, points = profiler_tables.heap_growth(profile["heap_timeline"], run_marks, meta["profiler"], warmup)
        got["heap_growth"] = [{**{k: meta[k] for k in growth.RUN_KEYS}, "unit": own.unit,
                               "scale": meta.get("scale", 1.0), "layer": profilers.LAYERS[meta["profiler"]],
                               "heap_growth_per_unit": slope, "points": points}]
    for name in ("top_sites", "summary", "site_timeline"):
        if name in profile:
            got[name] = [_keyed(profile[name], meta)]
    if readings is not None:
        got.update(_mapping_tables(readings, meta, own.unit, warmup))
    return got


def _mapping_tables(readings: pd.DataFrame, meta: dict, unit: str, warmup: int) -> dict[str, list]:
    """Growth by kind of mapping, by process and by mapping (``leaklab.process.mappings``)
    from a run's readings (none for a run from before mappings were read)."""
    got = {table: [_keyed(grown(readings, warmup).assign(unit=unit), meta)]
           for table, grown in (("processes", mappings.process_growth), ("mapping_sites", mappings.mapping_growth))}
    got["mapping_kinds"] = [_keyed(placement.kind_growth([readings], warmup).assign(unit=unit), meta)]
    got["kind_readings"] = [_keyed(readings[readings["level"] == "kind"], meta)]
    return got


# counts in `runs` stay whole numbers when a run has none (a parse_error row): Int64, not DOUBLE
INTEGER_RUN_COLUMNS = ("exit_code", "n_samples", "n_units", "stopped_at_unit", "decided_at_unit",
                       "bad_unit_lines")


def _typed_runs(runs: pd.DataFrame) -> pd.DataFrame:
    for column in INTEGER_RUN_COLUMNS:
        if column in runs:
            runs[column] = pd.to_numeric(runs[column], errors="coerce").round().astype("Int64")
    return runs


def build(run_dirs: list[Path], config: dict) -> dict[str, pd.DataFrame]:
    """Every table, from the run directories the workflow produced, judged by the
    analysis part of ``config`` (``settings.analysis_subset``: what the pipeline passes)."""
    config = leaklab_settings.analysis_subset(config)
    resolved = leaklab_settings.resolve(config)
    runs, samples, marks, units = [], [], [], []
    timelines, sites, summaries, heap_growth, site_timelines = [], [], [], [], []
    places: dict[str, list] = {name: [] for name in (*MAPPING_TABLES, "kind_readings")}
    for rundir in run_dirs:
        try:
            got = _one_run(Path(rundir), resolved)
        except Exception as err:
            parts = Path(rundir).parts
            runs.append({"experiment": parts[-4], "variant": parts[-3], "profiler": parts[-2],
                         "replicate": int(parts[-1].removeprefix("rep")), "status": "parse_error",
                         "error": f"{type(err).__name__}: {err}"})
            continue
        runs.append(got["run"])
        for into, name in ((samples, "samples"), (marks, "marks"), (units, "units"), (timelines, "heap_timeline"),
                           (sites, "top_sites"), (summaries, "summary"), (heap_growth, "heap_growth"),
                           (site_timelines, "site_timeline")):
            into.extend(got.get(name, []))
        for name, into in places.items():
            into.extend(got.get(name, []))

    tables = {
        "runs": _typed_runs(pd.DataFrame(runs)),
        "samples": pd.concat(samples, ignore_index=True) if samples else pd.DataFrame(),
        "marks": pd.concat(marks, ignore_index=True) if marks else pd.DataFrame(),
        "units": pd.concat(units, ignore_index=True) if units else pd.DataFrame(),
    }
    per_run = verdicts.replicate_slopes(tables["units"], verdicts.warmup_units(resolved))
    tables["replicate_growth"] = per_run
    tables["growth"] = stale_readings.flag(
        horizon.annotate(verdicts.pooled_growth(per_run, resolved, tables["units"]), tables["units"], tables["runs"]),
        tables["runs"])
    chosen = verdicts.variant_verdicts(tables["growth"], resolved)
    tables["variant_verdicts"] = horizon.carry(chosen.drop(columns="row"), tables["growth"], chosen["row"])
    tables["controls"] = controls.check(tables["growth"], resolved)
    tables["sensitivity"] = sensitivity.table(tables["units"], resolved)
    tables["time_to_verdict"] = sequential.table(tables["units"], tables["growth"], resolved)
    # one failed control makes every verdict of this run suspect; no controls: unchecked
    tables["growth"]["controls_passed"] = controls.all_passed(tables["controls"])
    baselines = {name: s.baseline for name, s in resolved.items()}
    tables["comparisons"] = baseline.compare_to_baseline(per_run, tables["growth"], baselines)
    tables["heap_timeline"] = pd.concat(timelines, ignore_index=True) if timelines else pd.DataFrame()
    tables["top_sites"] = pd.concat(sites, ignore_index=True) if sites else pd.DataFrame()
    tables["profiler_summary"] = pd.concat(summaries, ignore_index=True) if summaries else pd.DataFrame()
    tables["site_timeline"] = pd.concat(site_timelines, ignore_index=True) if site_timelines else pd.DataFrame()
    ok_runs = tables["runs"][tables["runs"]["status"] != "parse_error"]
    tables["profiler_overhead"] = profiler_tables.overhead_table(ok_runs) if len(ok_runs) else pd.DataFrame()
    tables["agreement"] = profiler_tables.agreement_table(pd.DataFrame(heap_growth), tables["growth"]) \
        if heap_growth and len(tables["growth"]) else pd.DataFrame()
    for name in MAPPING_TABLES:
        tables[name] = pd.concat(places[name], ignore_index=True) if places[name] else pd.DataFrame()
    kind_readings = pd.concat(places["kind_readings"], ignore_index=True) if places["kind_readings"] else pd.DataFrame()
    tables["attribution"] = attribution.table(tables["growth"], tables["agreement"],
                                              placement.pooled(kind_readings, verdicts.warmup_units(resolved)),
                                              tables["processes"])
    used = {name: sorted(set(ok_runs.loc[ok_runs["experiment"] == name, "profiler"])) for name in config["experiments"]}
    visibility = profiler_tables.visibility_table(used, experiments.specs(config))
    tables["visibility"] = attribution.explain_visibility(visibility, tables["attribution"])
    tables["agreement"] = attribution.explain_agreement(tables["agreement"], tables["attribution"])
    return tables


def read_csv_table(path: Path) -> pd.DataFrame:
    """A table written by :func:`write_csv`; an empty table reads as an empty frame."""
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def write_csv(tables: dict[str, pd.DataFrame], directory: Path) -> None:
    """Every table as CSV: all written to temporary files first, then moved into place,
    so a failure on the way leaves the previous tables as they were."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory, prefix=".partial-") as partial:
        for name, frame in tables.items():
            frame.to_csv(Path(partial) / f"{name}.csv", index=False)
        for name in tables:
            os.replace(Path(partial) / f"{name}.csv", directory / f"{name}.csv")


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
