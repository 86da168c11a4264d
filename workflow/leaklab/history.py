"""Nightly history: every night's tables kept across runs, and what changed since the last night.

``results/`` is rebuilt from scratch by every pipeline run, so it cannot tell whether a
growth figure is new.  The history store is a DuckDB file at a path of its own (outside
``results/``) that only ever grows: each night appends one row to ``nights`` (who, what,
where: date, project commit, library versions, host) and its tables, keyed by that
night's ``night_id``.  Comparing a night with the previous one turns "RSS grows by
12 MiB per pass" into "RSS grows by 12 MiB per pass *since commit abc123*".

Tables in the history file:

- ``nights``: one row per night -- ``night_id``, ``seq`` (append order), ``date``,
  ``recorded_at`` (UTC), ``commit``, ``dirty``, ``diff_sha256``, ``versions_json`` and
  ``version_<library>`` columns, ``hostname``, ``kernel``, ``cpus``, ``mem_total_bytes``,
  ``config_sha256`` (plus anything else the key carries).
- ``<table>_history`` for every table appended (``growth_history``, ``runs_history``,
  ...): the night's table as it was, with ``night_id`` as its first column.

A later night may carry columns the earlier ones did not (the tables grow with the
project): they are added to the history table, earlier nights read as NULL there; a
column whose type changes is widened (integers to DOUBLE, anything else to VARCHAR)
rather than truncating a value.  An append is one transaction: a crash in the middle
leaves the earlier nights exactly as they were.

The comparison rule (:func:`regressions`) is documented there; :func:`exit_code` says
whether the nightly command must fail.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
import subprocess
import uuid
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from leaklab.amounts import MIB, amount

GROUP_KEYS = ["experiment", "variant", "profiler", "metric"]
KEY_VERSIONS = ("python", "duckdb", "faust-streaming-rocksdb", "librocksdb")
HOST_FIELDS = ("hostname", "kernel", "cpus", "mem_total_bytes")
CONCLUSIVE = ("leak", "stable", "retention")
REGRESSION_COLUMNS = [
    "night_id", "previous_night", "previous_date", *GROUP_KEYS, "unit", "kind", "counts",
    "previous_verdict", "verdict", "previous_value", "value",
    "previous_ci_low", "previous_ci_high", "ci_low", "ci_high", "note",
]
TREND_COLUMNS = [
    "night_id", "seq", "date", "commit", "dirty", "hostname", "night_label", *GROUP_KEYS, "unit",
    "growth_per_unit", "ci_low", "ci_high", "verdict",
]
# types of the key's columns, for a first night where one of them is unknown (NULL)
NIGHTS_TYPES = {"seq": "BIGINT", "date": "DATE", "recorded_at": "TIMESTAMP", "commit": "VARCHAR",
                "dirty": "BOOLEAN", "diff_sha256": "VARCHAR", "versions_json": "VARCHAR",
                "hostname": "VARCHAR", "kernel": "VARCHAR", "cpus": "BIGINT", "mem_total_bytes": "BIGINT",
                "config_sha256": "VARCHAR"}

_INTEGER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT",
                  "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"}
_FLOAT_TYPES = {"FLOAT", "REAL", "DOUBLE"}


# ---------------------------------------------------------------------------- the key


def _git(project_dir: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(project_dir), *args], capture_output=True,
                              timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.decode(errors="replace") if done.returncode == 0 else None


def git_state(project_dir: str | Path) -> tuple[str, bool | None, str | None]:
    """(commit, dirty, diff_sha256) of the project, ``("unknown", None, None)`` outside git.

    ``dirty`` looks at tracked files only: ``results/``, the venv and the history store
    itself are untracked (or ignored) and change every night without changing the code.
    A dirty tree also gets the SHA-256 of ``git diff HEAD``, so two nights on the same
    uncommitted edit still count as the same code and two different edits do not.
    """
    head = _git(Path(project_dir), "rev-parse", "HEAD")
    if head is None or not head.strip():
        return "unknown", None, None
    status = _git(Path(project_dir), "status", "--porcelain", "--untracked-files=no")
    if status is None:
        return head.strip(), None, None
    dirty = bool(status.strip())
    diff_sha = None
    if dirty:
        diff = _git(Path(project_dir), "diff", "HEAD", "--binary", "--no-color", "--no-ext-diff")
        diff_sha = hashlib.sha256((diff or "").encode()).hexdigest()[:16]
    return head.strip(), dirty, diff_sha


def _version_column(name: str) -> str:
    return "version_" + re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower()


def night_key(project_dir: str | Path, meta: dict, date: str | None = None, *,
              config: dict | None = None) -> dict:
    """Who, what and where of tonight's run: the row this night gets in ``nights``.

    ``meta`` is any run's ``meta.json`` (every run of a pipeline records the same
    ``versions`` and ``host``; see :func:`read_meta`).  ``date`` defaults to today's local
    date, the night the run belongs to; pass it explicitly when a run crosses midnight or
    when backfilling.  ``night_id`` is unique even for two runs on the same date and
    commit (time of day and a random suffix), readable in a CSV (date and short commit
    first).  The library versions are kept whole as canonical JSON (``versions_json``,
    what :func:`regressions` compares for "same code") and the key ones as
    ``version_<name>`` columns to filter on.  With ``config`` the SHA-256 of the
    configuration is recorded too (``config_sha256``), so a change of nightly settings
    is visible next to a change of growth.
    """
    recorded_at = dt.datetime.now(dt.timezone.utc)
    day = dt.date.fromisoformat(date) if date else dt.datetime.now().astimezone().date()
    commit, dirty, diff_sha = git_state(project_dir)
    versions = dict(meta.get("versions") or {})
    host = dict(meta.get("host") or {})
    key = {
        "night_id": f"{day.isoformat()}_{recorded_at:%H%M%S}_{commit[:10]}_{uuid.uuid4().hex[:6]}",
        "date": day.isoformat(),
        "recorded_at": recorded_at.replace(tzinfo=None).isoformat(timespec="microseconds"),
        "commit": commit,
        "dirty": dirty,
        "diff_sha256": diff_sha,
        "versions_json": json.dumps(versions, sort_keys=True),
    }
    for name in (*KEY_VERSIONS, *sorted(set(versions) - set(KEY_VERSIONS))):
        key[_version_column(name)] = None if versions.get(name) is None else str(versions[name])
    for field in HOST_FIELDS:
        key[field] = host.get(field)
    key["config_sha256"] = (hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
                            .hexdigest()[:16] if config is not None else None)
    return key


def read_meta(results_dir: str | Path) -> dict:
    """The ``meta.json`` of the first readable run under ``results_dir/runs`` (or ``{}``).

    The nightly command needs versions and host once per night; every run records them,
    so the first one that parses (and has them) is as good as any.
    """
    for path in sorted(Path(results_dir).glob("runs/*/*/*/rep*/meta.json")):
        try:
            meta = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(meta, dict) and (meta.get("versions") or meta.get("host")):
            return meta
    return {}


# ---------------------------------------------------------------------------- appending


def _quote(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def _base_type(sql_type: str) -> str:
    return sql_type.split("(")[0].strip().upper()


def _widened(existing: str, incoming: str) -> str:
    """The type a column needs so both its stored and its incoming values fit unchanged."""
    if existing == incoming:
        return existing
    a, b = _base_type(existing), _base_type(incoming)
    numeric = _INTEGER_TYPES | _FLOAT_TYPES | {"DECIMAL"}
    if a in _INTEGER_TYPES and b in _INTEGER_TYPES:
        return "BIGINT" if a != "HUGEINT" and b != "HUGEINT" else "HUGEINT"
    if a in numeric and b in numeric:
        return "DOUBLE"
    return "VARCHAR"


def _incoming_types(con, frame: pd.DataFrame) -> dict[str, str | None]:
    """DuckDB's type for each column of ``frame``; None for a column with no value at all.

    A column that is all NULL tonight (``profile_error`` on a night without errors) says
    nothing about its type: DuckDB would call it INTEGER, and the first real value a
    later night brings (a string) would no longer fit.  An empty table's numeric columns
    still say what they are (their pandas dtype).
    """
    described = con.execute("DESCRIBE SELECT * FROM incoming").fetchall()
    types: dict[str, str | None] = {}
    for name, sql_type, *_ in described:
        column = frame[name]
        unknown = column.isna().all() and (column.dtype == object or len(column) > 0)
        types[name] = None if unknown else sql_type
    return types


def _append_table(con, table: str, frame: pd.DataFrame, night_id: str,
                  hints: Mapping[str, str] | None = None) -> None:
    """Create or extend ``table`` so ``frame`` fits, then insert it (inside the caller's transaction).

    ``hints`` name the type of a column that may arrive all NULL (``dirty`` outside git).
    """
    hints = hints or {}
    frame = frame.copy()
    frame.columns = [str(c) for c in frame.columns]
    frame = frame.drop(columns=["night_id"], errors="ignore")
    frame.insert(0, "night_id", night_id)
    con.register("incoming", frame)
    try:
        incoming = _incoming_types(con, frame)
        exists = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ? "
                             "AND table_schema = 'main'", [table]).fetchone()[0]
        if not exists:
            stored = {c: (t or hints.get(c, "VARCHAR")) for c, t in incoming.items()}
            columns = ", ".join(f"{_quote(c)} {t}" for c, t in stored.items())
            con.execute(f"CREATE TABLE {_quote(table)} ({columns})")
        else:
            stored = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                                      "WHERE table_name = ? AND table_schema = 'main'", [table]).fetchall())
            for column, sql_type in incoming.items():
                if column not in stored:
                    stored[column] = sql_type or hints.get(column, "VARCHAR")
                    con.execute(f"ALTER TABLE {_quote(table)} ADD COLUMN {_quote(column)} {stored[column]}")
                elif sql_type is not None and (wider := _widened(stored[column], sql_type)) != stored[column]:
                    con.execute(f"ALTER TABLE {_quote(table)} ALTER COLUMN {_quote(column)} SET DATA TYPE {wider}")
                    stored[column] = wider
        if len(frame):
            select = ", ".join(f"CAST({'NULL' if t is None else _quote(c)} AS {stored[c]}) AS {_quote(c)}"
                               for c, t in incoming.items())
            con.execute(f"INSERT INTO {_quote(table)} BY NAME SELECT {select} FROM incoming")
    finally:
        con.unregister("incoming")


def history_table(name: str) -> str:
    """The history table a night's table goes to: ``growth`` -> ``growth_history``."""
    return "nights" if name == "nights" else f"{name}_history"


def append_night(history_path: str | Path, key: dict, tables: Mapping[str, pd.DataFrame]) -> str:
    """Append one night (its key and its tables) to the history store; returns its night_id.

    The file and its tables are created when missing.  Everything -- the ``nights`` row,
    every ``<name>_history`` table, any column added or widened -- happens in one
    transaction, so the store holds either the whole night or none of it, and a crash
    mid-append leaves the previous nights intact.  A night_id already in the store is
    refused (appending the same night twice would make it its own previous night).
    A table given as a frame without columns (a table a night did not produce) is
    skipped; one with columns but no rows still creates or extends its history table.
    """
    import duckdb

    if "night_id" not in key or "date" not in key:
        raise ValueError("key needs at least night_id and date (see night_key)")
    night_id = str(key["night_id"])
    if "nights" in tables:
        raise ValueError("'nights' is the key's table; pass the night's tables only")
    path = Path(history_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    row = {k: (json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v) for k, v in key.items()}
    row["date"] = dt.date.fromisoformat(str(row["date"])[:10])
    if row.get("recorded_at") is not None:
        stamp = pd.Timestamp(row["recorded_at"])
        if stamp.tzinfo is not None:
            stamp = stamp.tz_convert("UTC").tz_localize(None)
        row["recorded_at"] = stamp.to_pydatetime()
    con = duckdb.connect(str(path))
    try:
        con.execute("BEGIN TRANSACTION")
        try:
            known = con.execute("SELECT count(*) FROM information_schema.tables "
                                "WHERE table_name = 'nights' AND table_schema = 'main'").fetchone()[0]
            seq = 1
            if known:
                if con.execute("SELECT count(*) FROM nights WHERE night_id = ?", [night_id]).fetchone()[0]:
                    raise ValueError(f"night {night_id!r} is already in {path}")
                seq = int(con.execute("SELECT coalesce(max(seq), 0) + 1 FROM nights").fetchone()[0])
            nights = pd.DataFrame([{"night_id": night_id, "seq": seq,
                                    **{k: v for k, v in row.items() if k not in ("night_id", "seq")}}])
            _append_table(con, "nights", nights.drop(columns="night_id"), night_id, NIGHTS_TYPES)
            for name, frame in tables.items():
                if frame is None or not len(frame.columns):
                    continue
                _append_table(con, history_table(name), frame, night_id)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    finally:
        con.close()
    return night_id


# ---------------------------------------------------------------------------- reading


def _connect_read_only(history_path: str | Path):
    import duckdb

    path = Path(history_path)
    if not path.exists():
        raise FileNotFoundError(f"no history store at {path}")
    return duckdb.connect(str(path), read_only=True)


def _has_table(con, name: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ? "
                            "AND table_schema = 'main'", [name]).fetchone()[0])


def read_history(history_path: str | Path, table: str = "growth") -> pd.DataFrame:
    """One history table joined with its nights' key (date, commit, host, ...), oldest first."""
    con = _connect_read_only(history_path)
    try:
        name = history_table(table)
        if not _has_table(con, name):
            return pd.DataFrame()
        if name == "nights":
            return con.execute("SELECT * FROM nights ORDER BY date, seq").df()
        return con.execute(f"SELECT n.date, n.seq, n.commit, n.dirty, n.hostname, h.* "
                           f"FROM {_quote(name)} h JOIN nights n USING (night_id) "
                           f"ORDER BY n.date, n.seq").df()
    finally:
        con.close()


def _same(a, b) -> bool:
    """Equality where two missing values are the same (two nights with no hostname)."""
    a_missing = a is None or (isinstance(a, float) and math.isnan(a)) or a is pd.NA
    b_missing = b is None or (isinstance(b, float) and math.isnan(b)) or b is pd.NA
    return (a_missing and b_missing) or (not a_missing and not b_missing and a == b)


def _finite(*values) -> bool:
    try:
        return all(v is not None and math.isfinite(float(v)) for v in values)
    except (TypeError, ValueError):
        return False


def _num(value) -> float:
    try:
        return float(value) if value is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


def _text(value) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    return str(value)


def _iso(day) -> str | None:
    return None if day is None or pd.isna(day) else pd.Timestamp(day).date().isoformat()


def _fmt(value: float, metric: str) -> str:
    return amount(value, metric, ".4g")


def _rate(value: float, low: float, high: float, metric: str, unit: str | None) -> str:
    per = f"/{unit}" if unit else " per unit"
    ci = f" [{_fmt(low, metric)}, {_fmt(high, metric)}]" if _finite(low, high) else " [no interval]"
    return f"{_fmt(value, metric)}{per}{ci}"


def _floor(min_change: Mapping | float | None, experiment: str, metric: str) -> float:
    if min_change is None:
        return 0.0
    if isinstance(min_change, Mapping):
        value = min_change.get((experiment, metric), min_change.get(metric, 0.0))
        return float(value or 0.0)
    return float(min_change)


def min_change_from_config(config: dict, fraction: float = 0.25) -> dict[tuple[str, str], float]:
    """Smallest growth change worth a regression, per (experiment, metric): a share of the leak bar.

    The interval rule alone trusts the intervals; when both are degenerate (points exactly
    on a line give a zero-width interval, e.g. a page-sized step) a move of a few bytes
    per unit would be "outside both".  A quarter of ``leak_per_unit`` is far below what
    changes a verdict, and far above such noise.
    """
    from leaklab import settings

    floors = {}
    for experiment in config.get("experiments", {}):
        for metric, limits in settings.thresholds(config, experiment).items():
            floors[(experiment, metric)] = fraction * limits.leak_per_unit
    return floors


def regressions(history_path: str | Path, night_id: str, same_code_only: bool = False, *,
                rel_tol: float = 0.05, min_change: Mapping | float | None = None) -> pd.DataFrame:
    """What changed in night ``night_id`` against the previous night on the same host.

    For every experiment x variant x profiler x metric of the night's ``growth``, the
    previous night is the most recent earlier night (by ``date``, then append order
    ``seq``) on the same ``hostname`` that has that row -- other hosts differ in kernel,
    allocator and page cache, so their growth is no baseline.  With ``same_code_only``
    only nights on the same code qualify: same commit, same ``diff_sha256`` (the same
    uncommitted edit, or none) and the same library versions; that is the check that two
    nights on the same code give no regression.  A night with no earlier comparable
    night (the first one) gives an empty table.

    Kinds (``counts`` says whether the row makes the nightly command fail):

    - ``verdict_flip`` (counts): the verdict changed between two conclusive verdicts
      (``leak``, ``stable``, ``retention``), e.g. ``stable`` -> ``leak``.  A flip towards
      ``stable`` counts too: an unexplained cure usually means a broken reproduction.
    - ``growth_moved`` (counts): tonight's growth per unit lies outside the previous
      night's confidence interval *and* the previous growth lies outside tonight's
      interval, and the two differ by more than ``rel_tol`` of the larger one and by more
      than ``min_change`` (absolute, per ``(experiment, metric)`` or per metric, see
      :func:`min_change_from_config`).  Requiring both directions keeps one night's
      narrow interval (few noisy units that happened to line up) from making a
      regression alone; the tolerances guard against zero-width intervals.  Both
      intervals must be finite: without one there is nothing to judge by, and the
      verdict is ``inconclusive`` anyway.
    - ``became_inconclusive`` / ``became_conclusive`` (informational): the verdict moved
      to or from ``inconclusive``; too few units or too wide an interval is not a
      change in the code's memory behaviour.
    - ``disappeared`` (informational): a row of the most recent comparable night that
      tonight's ``growth`` lacks (a run that failed or a dropped experiment); the runs
      table says why.

    A row may have both a ``verdict_flip`` and a ``growth_moved`` entry.
    """
    con = _connect_read_only(history_path)
    try:
        nights = con.execute("SELECT * FROM nights").df()
        growth = con.execute("SELECT * FROM growth_history").df() if _has_table(con, "growth_history") \
            else pd.DataFrame(columns=["night_id", *GROUP_KEYS])
    finally:
        con.close()
    if night_id not in set(nights["night_id"]):
        raise KeyError(f"night {night_id!r} is not in {history_path}")
    for column in ("diff_sha256", "versions_json", "hostname", "commit"):
        if column not in nights:
            nights[column] = None
    for column in ("unit", "growth_per_unit", "ci_low", "ci_high", "verdict"):
        if column not in growth:
            growth[column] = None
    current = nights[nights["night_id"] == night_id].iloc[0]
    order = (pd.Timestamp(current["date"]), int(current["seq"]))
    earlier = nights[[(pd.Timestamp(d), int(s)) < order for d, s in zip(nights["date"], nights["seq"])]]
    earlier = earlier[[_same(h, current["hostname"]) for h in earlier["hostname"]]]
    if same_code_only:
        same_code = [_same(r.commit, current["commit"]) and _same(r.diff_sha256, current["diff_sha256"])
                     and _same(r.versions_json, current["versions_json"]) for r in earlier.itertuples()]
        earlier = earlier[same_code]
    if earlier.empty:
        return pd.DataFrame(columns=REGRESSION_COLUMNS)
    earlier = earlier.assign(_date=pd.to_datetime(earlier["date"])).sort_values(["_date", "seq"], ascending=False)
    rank = {nid: i for i, nid in enumerate(earlier["night_id"])}
    dates = dict(zip(nights["night_id"], nights["date"]))

    tonight = growth[growth["night_id"] == night_id].drop_duplicates(GROUP_KEYS)
    before = growth[growth["night_id"].isin(rank)].copy()
    before["_rank"] = before["night_id"].map(rank)
    before = before.sort_values("_rank").drop_duplicates(GROUP_KEYS)
    latest = earlier["night_id"].iloc[0]

    rows = []
    merged = tonight.merge(before, on=GROUP_KEYS, how="inner", suffixes=("", "_prev"))
    for r in merged.to_dict("records"):
        metric, unit = str(r["metric"]), _text(r["unit"]) or _text(r["unit_prev"])
        g, lo, hi = _num(r["growth_per_unit"]), _num(r["ci_low"]), _num(r["ci_high"])
        pg, plo, phi = _num(r["growth_per_unit_prev"]), _num(r["ci_low_prev"]), _num(r["ci_high_prev"])
        v, pv = _text(r["verdict"]), _text(r["verdict_prev"])
        base = {
            "night_id": night_id, "previous_night": r["night_id_prev"],
            "previous_date": _iso(dates.get(r["night_id_prev"])),
            **{k: r[k] for k in GROUP_KEYS}, "unit": unit,
            "previous_verdict": pv, "verdict": v, "previous_value": pg, "value": g,
            "previous_ci_low": plo, "previous_ci_high": phi, "ci_low": lo, "ci_high": hi,
        }
        now_text = _rate(g, lo, hi, metric, unit)
        was_text = _rate(pg, plo, phi, metric, unit)
        if pv is not None and v is not None and pv != v:
            if pv in CONCLUSIVE and v in CONCLUSIVE:
                kind, counts = "verdict_flip", True
            elif pv in CONCLUSIVE:
                kind, counts = "became_inconclusive", False
            elif v in CONCLUSIVE:
                kind, counts = "became_conclusive", False
            else:
                kind = None
            if kind:
                rows.append({**base, "kind": kind, "counts": counts,
                             "note": f"{metric}: {pv} -> {v}; growth {now_text}, was {was_text}"})
        if _finite(g, lo, hi, pg, plo, phi):
            outside_previous = g < plo or g > phi
            outside_tonight = pg < lo or pg > hi
            change = abs(g - pg)
            big = change > rel_tol * max(abs(g), abs(pg)) and change > _floor(min_change, r["experiment"], metric)
            if outside_previous and outside_tonight and big:
                direction = "up" if g > pg else "down"
                moved = f"{_fmt(abs(g - pg), metric)}/{unit or 'unit'}"
                rows.append({**base, "kind": "growth_moved", "counts": True,
                             "note": f"{metric} growth moved {direction} by {moved}: "
                                     f"{now_text}, was {was_text}; each outside the other's interval"})
    previous_rows = growth[growth["night_id"] == latest]
    gone = previous_rows.merge(tonight[GROUP_KEYS], on=GROUP_KEYS, how="left", indicator=True)
    for r in gone[gone["_merge"] == "left_only"].to_dict("records"):
        metric, unit = str(r["metric"]), _text(r["unit"])
        g, lo, hi = _num(r["growth_per_unit"]), _num(r["ci_low"]), _num(r["ci_high"])
        rows.append({
            "night_id": night_id, "previous_night": latest, "previous_date": _iso(dates.get(latest)),
            **{k: r[k] for k in GROUP_KEYS}, "unit": unit, "kind": "disappeared", "counts": False,
            "previous_verdict": _text(r["verdict"]), "verdict": None, "previous_value": g, "value": math.nan,
            "previous_ci_low": lo, "previous_ci_high": hi, "ci_low": math.nan, "ci_high": math.nan,
            "note": f"{metric}: no growth row tonight; was {_rate(g, lo, hi, metric, unit)} (see runs)",
        })
    result = pd.DataFrame(rows, columns=REGRESSION_COLUMNS)
    if result.empty:
        return result
    result["counts"] = result["counts"].astype(bool)
    return result.sort_values(["counts", *GROUP_KEYS, "kind"], ascending=[False, True, True, True, True, True],
                              kind="stable").reset_index(drop=True)


def _counting(counts: pd.Series) -> pd.Series:
    """``counts`` as booleans, also when read back from CSV as text ("False" is truthy)."""
    if counts.dtype == bool:
        return counts
    return counts.map(lambda v: str(v).strip().lower() in ("true", "1", "1.0", "yes"))


def exit_code(found: pd.DataFrame) -> int:
    """The nightly command's exit status: 1 when any regression counts, else 0.

    Takes the frame :func:`regressions` returns or ``regressions.csv`` read back.
    """
    return int(bool(len(found)) and "counts" in found and bool(_counting(found["counts"]).any()))


def trend(history_path: str | Path, metric: str = "rss_bytes", profiler: str | None = "plain",
          hostname: str | None = None) -> pd.DataFrame:
    """Growth per unit of one metric, per night, oldest first: the data of the trend figure.

    ``profiler`` defaults to ``plain`` (the sampler's runs with every replicate; profiled
    runs are scaled and single); ``None`` keeps all.  ``night_label`` is the night's date
    and short commit (and host, when the history holds several), for the x axis.
    """
    con = _connect_read_only(history_path)
    try:
        if not _has_table(con, "growth_history"):
            return pd.DataFrame(columns=TREND_COLUMNS)
        columns = {c for (c,) in con.execute("SELECT column_name FROM information_schema.columns "
                                             "WHERE table_name = 'growth_history'").fetchall()}
        wanted = ["experiment", "variant", "profiler", "metric", "unit", "growth_per_unit", "ci_low", "ci_high",
                  "verdict"]
        select = ", ".join(f"g.{_quote(c)}" if c in columns else f"NULL AS {_quote(c)}" for c in wanted)
        where, params = ["g.metric = ?"], [metric]
        if profiler is not None:
            where.append("g.profiler = ?")
            params.append(profiler)
        if hostname is not None:
            where.append("n.hostname = ?")
            params.append(hostname)
        frame = con.execute(
            f"SELECT n.night_id, n.seq, n.date, n.commit, n.dirty, n.hostname, {select} "
            f"FROM growth_history g JOIN nights n USING (night_id) WHERE {' AND '.join(where)} "
            f"ORDER BY n.date, n.seq, g.experiment, g.variant", params).df()
    finally:
        con.close()
    several_hosts = frame["hostname"].nunique(dropna=False) > 1
    frame["night_label"] = [
        f"{pd.Timestamp(d):%Y-%m-%d}\n{str(c)[:7]}{'*' if dirty is True else ''}" + (f"\n{h}" if several_hosts else "")
        for d, c, dirty, h in zip(frame["date"], frame["commit"], frame["dirty"], frame["hostname"])
    ]
    for column in ("growth_per_unit", "ci_low", "ci_high"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame[TREND_COLUMNS]


def _variant_order(experiment: str, present: set) -> list[str]:
    try:
        from leaklab import experiments

        known = [v for v in experiments.get(experiment).variants if v in present]
    except Exception:  # an experiment no longer in the project still has its history
        known = []
    return known + sorted(present - set(known))


def _experiment_order(present: set) -> list[str]:
    try:
        from leaklab import experiments

        known = [n for n in experiments.names() if n in present]
    except Exception:
        known = []
    return known + sorted(present - set(known))


def plot_trend(trend_df: pd.DataFrame, out_png: str | Path, regressions_df: pd.DataFrame | None = None) -> None:
    """Growth per unit across nights: one panel per experiment, one line per variant.

    Error bars are each night's confidence interval, so a point that moved beyond the
    previous night's bar is visible as such; nights where a regression counts are ringed
    in red when ``regressions_df`` is given.  Byte metrics are drawn in MiB per unit of
    work; a dashed line marks zero growth.  An empty trend still gives a figure saying so.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    data = trend_df.copy()
    if data.empty:
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.text(0.5, 0.5, "no nights in the history yet", ha="center", va="center")
        ax.axis("off")
        fig.savefig(out_png, dpi=120)
        plt.close(fig)
        return
    metric = str(data["metric"].iloc[0])
    scale, shown = (MIB, f"{metric.removesuffix('_bytes')} growth (MiB") if metric.endswith("_bytes") \
        else (1.0, f"{metric} growth (")
    data["_date"] = pd.to_datetime(data["date"])
    nights = data.drop_duplicates("night_id").sort_values(["_date", "seq"])
    position = {nid: i for i, nid in enumerate(nights["night_id"])}
    labels = list(nights["night_label"])
    names = _experiment_order(set(data["experiment"]))
    cols = min(2, len(names))
    rows = -(-len(names) // cols)
    width = max(6.0, min(16.0, 1.1 * len(labels) + 3))
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, 3.6 * rows), squeeze=False, sharex=True)
    flagged = set()
    if regressions_df is not None and len(regressions_df):
        hits = regressions_df[_counting(regressions_df["counts"]) & (regressions_df["metric"] == metric)]
        flagged = set(zip(hits["night_id"], hits["experiment"], hits["variant"], hits["profiler"]))
    for ax, name in zip(axes.flat, names):
        part = data[data["experiment"] == name]
        variants = _variant_order(name, set(part["variant"]))
        colours = dict(zip(variants, sns.color_palette("tab10", len(variants))))
        width_dodge = 0.3 / max(1, len(variants))
        for i, variant in enumerate(variants):
            line = part[part["variant"] == variant].sort_values(["_date", "seq"])
            for profiler, one in line.groupby("profiler", sort=True):
                x = one["night_id"].map(position).to_numpy(dtype=float) + (i - (len(variants) - 1) / 2) * width_dodge
                y = one["growth_per_unit"].to_numpy(dtype=float) / scale
                low = (one["growth_per_unit"] - one["ci_low"]).clip(lower=0).to_numpy(dtype=float) / scale
                high = (one["ci_high"] - one["growth_per_unit"]).clip(lower=0).to_numpy(dtype=float) / scale
                low[np.isnan(low)] = 0.0
                high[np.isnan(high)] = 0.0
                label = variant if line["profiler"].nunique() == 1 else f"{variant} ({profiler})"
                ax.errorbar(x, y, yerr=[low, high], fmt="-o", markersize=4, capsize=3, linewidth=1.2,
                            color=colours[variant], label=label)
                ringed = [(xx, yy) for xx, yy, nid in zip(x, y, one["night_id"])
                          if (nid, name, variant, profiler) in flagged]
                if ringed:
                    ax.scatter(*zip(*ringed), s=140, facecolors="none", edgecolors="#d62728", linewidths=1.8,
                               zorder=5, label="regression")
        ax.axhline(0, color="black", linewidth=0.6, linestyle="--")
        unit = part["unit"].dropna().iloc[0] if part["unit"].notna().any() else "unit"
        ax.set(title=name, ylabel=f"{shown} per {unit})", xlabel="night (date, commit; * = uncommitted edits)")
        ax.set_xticks(range(len(labels)), labels, fontsize=8)
        ax.set_xlim(-0.5, len(labels) - 0.5)
        handles, names_ = ax.get_legend_handles_labels()
        unique = dict(zip(names_, handles))
        if "regression" in unique:  # after the variants, not before the first line drawn
            unique["regression"] = unique.pop("regression")
        ax.legend(unique.values(), unique.keys(), fontsize=8, title="variant", title_fontsize=8, loc="best")
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    for ax in axes.flat:
        ax.tick_params(axis="x", labelbottom=True)
    profilers = ", ".join(sorted(set(data["profiler"].astype(str))))
    fig.suptitle(f"{metric}: growth per unit of work across nights ({profilers}); bars: 95 % interval")
    fig.tight_layout()
    fig.savefig(out_png, dpi=120)
    plt.close(fig)
